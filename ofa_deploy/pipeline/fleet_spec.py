"""The fleet file: one supernet, its weights, accuracy predictor and data, and the devices to specialise it for.

    supernet: ofa_mbv3_w10              # registry name (given once for the fleet)
    weights: supernet.pt                # optional: released name, checkpoint, or .pt with its .json sidecar
    predictor: predictor/               # a saved AccuracyPredictor dir (or ofa_predictor: OFA's .pth)
    data: digits                        # none | digits | imagefolder:PATH (BN recalibration, measured top-1)
    search: {generations: 100, population: 40, seed: 0, pareto_generations: 20, n_checks: 0, max_tries: 4}
    timing: {rounds: 5, repeats: 10}    # optional: override the profiles' per-visit timing
    devices:
      - name: host-1t
        profile: ort-cpu-1t             # a profile name, a YAML path, or an inline mapping
        runner: local                   # or {type: ssh, host: 127.0.0.1, port: 22, user: pi}, {type: adb, ...}
        budget: {latency_ms: 0.04, macs_m: 1.0, params_m: 0.5}
        format: onnx                    # onnx | ort | int8 | tvm, one the profile's backend runs
        table: stored                   # stored | PATH | build | {build: PATH} | {adapt: SOURCE}

Relative paths are relative to the fleet file. `load_fleet` validates everything it can without measuring
(`yaml.safe_load`; unknown keys are refused with close-match suggestions; every error names the device and the
fix); `deploy_fleet` checks the budgets against each table before any work starts.
"""
from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ofa_deploy.errors import ConfigError, OfaDeployError, unknown_name

TOP_KEYS = ("supernet", "weights", "predictor", "ofa_predictor", "data", "search", "timing", "devices")
DEVICE_KEYS = ("name", "profile", "runner", "budget", "format", "table")
BUDGET_KEYS = ("latency_ms", "macs_m", "params_m")
SEARCH_KEYS = ("generations", "population", "seed", "pareto_generations", "n_checks", "max_tries", "validate_export")
TIMING_KEYS = ("rounds", "repeats")
TABLE_KINDS = ("stored", "build", "adapt")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class TableChoice:
    """Where a device's table comes from: ``stored`` (`find_table`), ``path`` (a file), ``build`` (at `path`,
    default inside the device's directory) or ``adapt`` (adapt the table at `path` to this device)."""

    kind: str
    path: Path | None = None

    def describe(self) -> str:
        return self.kind if self.path is None else f"{self.kind}: {self.path}"


@dataclass(frozen=True)
class FleetDevice:
    """One device of a fleet: where it is, how it is reached, what it must meet, what it runs."""

    name: str
    profile: Any                       # a HardwareProfile
    runner: Any                        # a DeviceSpec (`ofa_deploy.profiling.hosts.devices`)
    latency_ms: float
    macs_m: float | None = None
    params_m: float | None = None
    format: str = "onnx"
    table: TableChoice = TableChoice("stored")

    @property
    def remote(self) -> bool:
        """Reached through ssh or adb (its table describes that device, not this host)."""
        return self.runner.runner != "local"

    def entry(self) -> dict[str, Any]:
        """The fields of a manifest row that come from the fleet file."""
        d = self.to_dict()
        return {"profile": d["profile"], "runner": d["runner"], "format": d["format"], "budget": d["budget"],
                "table_source": d["table"]}

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "profile": self.profile.name, "profile_sha256": self.profile.sha256,
                "runner": self.runner.to_dict(), "budget": {"latency_ms": self.latency_ms, "macs_m": self.macs_m,
                                                            "params_m": self.params_m},
                "format": self.format, "table": {"kind": self.table.kind,
                                                 "path": str(self.table.path) if self.table.path else None}}


@dataclass(frozen=True)
class FleetSettings:
    """Search and timing settings shared by every device of the fleet."""

    generations: int = 200
    population: int = 60
    seed: int = 0
    pareto_generations: int = 30
    n_checks: int = 0
    max_tries: int = 4
    validate_export: bool = True
    timing_rounds: int | None = None
    timing_repeats: int | None = None


@dataclass(frozen=True)
class FleetSpec:
    """A validated fleet file."""

    devices: tuple[FleetDevice, ...]
    supernet: str | None = None
    weights: str | None = None
    predictor: str | None = None
    ofa_predictor: str | None = None
    data: str | None = None
    settings: FleetSettings = field(default_factory=FleetSettings)
    source: str = "<fleet>"

    def device(self, name: str) -> FleetDevice:
        for d in self.devices:
            if d.name == name:
                return d
        raise unknown_name("fleet device", name, [d.name for d in self.devices])


def load_fleet(path: str | os.PathLike[str]) -> FleetSpec:
    """Read and validate a fleet YAML file (relative paths are taken from its directory)."""
    from ofa_deploy.fileio import read_yaml_file

    path = Path(path)
    data = read_yaml_file(path, what="fleet file", hint="pass the YAML file that lists the fleet's devices")
    return parse_fleet(data, source=str(path), base=path.parent)


def parse_fleet(data: Any, *, source: str = "<fleet>", base: Path | None = None) -> FleetSpec:
    """Validate a fleet mapping; every error names the field (and the device) and what is allowed."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"fleet {source}: expected a mapping with 'devices:' (and supernet, weights, predictor, "
                          f"data), got {type(data).__name__}")
    _known(data, TOP_KEYS, f"fleet {source}")
    devices = data.get("devices")
    if not isinstance(devices, list) or not devices:
        raise ConfigError(f"fleet {source}: 'devices' must be a non-empty list of devices, each with name, profile, "
                          "budget (latency_ms) and optionally runner, format, table")
    parsed = tuple(_device(entry, n, source, base) for n, entry in enumerate(devices))
    names = [d.name for d in parsed]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"fleet {source}: device names must be unique; {', '.join(map(repr, dupes))} appears more "
                          "than once. Rename one of them (each device gets its own directory and manifest row)")
    top = {k: data.get(k) for k in ("supernet", "weights", "predictor", "ofa_predictor", "data")}
    for key, value in top.items():
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"fleet {source}: {key!r} must be a string, got {value!r}")
    for key in ("weights", "predictor", "ofa_predictor"):
        if top[key] is not None and base is not None and not _is_name(top[key]):
            top[key] = str(_resolve(top[key], base))
    return FleetSpec(devices=parsed, settings=_settings(data, source), source=source, **top)


def _is_name(text: str) -> bool:
    """A registry-style name (no path separator, no file suffix) rather than a path."""
    return os.sep not in text and "/" not in text and not Path(text).suffix


def _resolve(text: str, base: Path | None) -> Path:
    path = Path(text).expanduser()
    return path if path.is_absolute() or base is None else base / path


def _known(mapping: Mapping[str, Any], allowed: tuple[str, ...], where: str, kind: str = "key") -> None:
    """Refuse a key outside `allowed`, with close matches (`errors.unknown_name`), prefixed by `where`."""
    from ofa_deploy.errors import UnknownNameError

    for key in mapping:
        if key not in allowed:
            raise UnknownNameError(f"{where}: {unknown_name(kind, str(key), allowed)}")


def _settings(data: Mapping[str, Any], source: str) -> FleetSettings:
    search = data.get("search") or {}
    timing = data.get("timing") or {}
    for name, value, keys in (("search", search, SEARCH_KEYS), ("timing", timing, TIMING_KEYS)):
        if not isinstance(value, Mapping):
            raise ConfigError(f"fleet {source}: {name!r} must be a mapping ({', '.join(keys)}), got {value!r}")
        _known(value, keys, f"fleet {source}: {name}", kind=f"{name} setting")
    values: dict[str, Any] = {}
    for key in SEARCH_KEYS:
        if key in search:
            values[key] = search[key]
    for key in TIMING_KEYS:
        if key in timing:
            values[f"timing_{key}"] = timing[key]
    for key, value in values.items():
        ok = isinstance(value, bool) if key == "validate_export" else \
            isinstance(value, int) and not isinstance(value, bool) and value >= (0 if key in (
                "seed", "pareto_generations", "n_checks") else 1)
        if not ok:
            raise ConfigError(f"fleet {source}: {key} = {value!r} is invalid; expected "
                              + ("true or false" if key == "validate_export" else "a non-negative integer"))
    return FleetSettings(**values)


def _device(entry: Any, n: int, source: str, base: Path | None) -> FleetDevice:
    if not isinstance(entry, Mapping):
        raise ConfigError(f"fleet {source}: devices[{n}] must be a mapping with name, profile, budget, got {entry!r}")
    name = entry.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"fleet {source}: devices[{n}] needs a 'name' of letters, digits, '.', '_' or '-' (it "
                          f"names the device's directory), got {name!r}")
    where = f"fleet {source}: device {name!r}"
    _known(entry, DEVICE_KEYS, where)
    profile = _profile(entry.get("profile"), where, base)
    runner = _runner(entry.get("runner", "local"), name, where)
    budget = entry.get("budget")
    if not isinstance(budget, Mapping) or "latency_ms" not in budget:
        raise ConfigError(f"{where}: 'budget' must be a mapping with latency_ms (and optionally macs_m, params_m), "
                          f"e.g. budget: {{latency_ms: 5}}; got {budget!r}")
    _known(budget, BUDGET_KEYS, where, kind="budget")
    for key, value in budget.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0):
            raise ConfigError(f"{where}: budget {key} = {value!r} must be a number > 0")
    fmt = entry.get("format", "onnx")
    from ofa_deploy.pipeline.exporting import check_format

    try:
        check_format(profile, fmt)
    except OfaDeployError as exc:
        raise type(exc)(f"{where}: {exc}") from None
    return FleetDevice(name=name, profile=profile, runner=runner, latency_ms=float(budget["latency_ms"]),
                       macs_m=_opt_float(budget.get("macs_m")), params_m=_opt_float(budget.get("params_m")),
                       format=fmt, table=_table(entry.get("table", "stored"), where, base))


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _profile(value: Any, where: str, base: Path | None) -> Any:
    from ofa_deploy.profiling.hardware import HardwareProfile

    if value is None:
        raise ConfigError(f"{where}: 'profile' is missing; give a profile name (`ofa-deploy profile list`), a YAML "
                          "path or an inline mapping")
    try:
        if isinstance(value, Mapping):
            return HardwareProfile.from_dict(value, source=f"{where} (inline profile)")
        if not isinstance(value, str):
            raise ConfigError(f"profile must be a name, a YAML path or a mapping, got {value!r}")
        text = str(_resolve(value, base)) if not _is_name(value) else value
        return HardwareProfile.load(text)
    except OfaDeployError as exc:
        raise type(exc)(f"{where}: {exc}") from None


def _runner(value: Any, name: str, where: str) -> Any:
    from ofa_deploy.profiling.hosts.devices import RUNNER_SETTINGS, parse_devices

    if isinstance(value, str):
        entry: dict[str, Any] = {"name": name, "runner": value}
    elif isinstance(value, Mapping):
        settings = {k: v for k, v in value.items() if k != "type"}
        entry = {"name": name, "runner": value.get("type"), **settings}
    else:
        raise ConfigError(f"{where}: 'runner' must be local, or a mapping such as {{type: ssh, host: 10.0.0.5}}, "
                          f"got {value!r}")
    if entry["runner"] not in RUNNER_SETTINGS:
        from ofa_deploy.errors import UnknownNameError

        raise UnknownNameError(f"{where}: {unknown_name('runner type', str(entry['runner']), RUNNER_SETTINGS)}")
    try:
        return parse_devices([entry], source=where)[0]
    except OfaDeployError as exc:
        raise type(exc)(str(exc).replace(f"hardware profile {where}: devices[0]", where)) from None


def _table(value: Any, where: str, base: Path | None) -> TableChoice:
    if value in ("stored", "build"):
        return TableChoice(value)
    if isinstance(value, str):
        path = _resolve(value, base)
        if not path.is_file():
            raise ConfigError(f"{where}: table {value!r} is not a file; give a table file, or stored, build, "
                              "{build: PATH} or {adapt: SOURCE}")
        return TableChoice("path", path)
    if isinstance(value, Mapping) and len(value) == 1:
        kind, arg = next(iter(value.items()))
        if kind not in ("build", "adapt"):
            _known(value, ("build", "adapt"), where, kind="table source")
        if not isinstance(arg, str):
            raise ConfigError(f"{where}: table {kind}: expects a file path, got {arg!r}")
        path = _resolve(arg, base)
        if kind == "adapt" and not path.is_file():
            raise ConfigError(f"{where}: table adapt: {arg!r} is not a file; give the table measured elsewhere to "
                              "adapt to this device")
        return TableChoice(kind, path)
    raise ConfigError(f"{where}: table must be stored, build, a table file, {{build: PATH}} or {{adapt: SOURCE}}; "
                      f"got {value!r}")


__all__ = ["FleetDevice", "FleetSettings", "FleetSpec", "TableChoice", "load_fleet", "parse_fleet"]
