"""Hardware profiles: how and where latency is measured (backend, provider, threads, precision, timing plan).

A profile is a small YAML file, read with `yaml.safe_load` and validated field by field::

    name: ort-cpu-1t
    description: ONNX Runtime, CPU, one intra-op thread
    backend: onnxruntime            # onnxruntime | tvm | torch
    execution_provider: CPUExecutionProvider
    provider_options: {}
    intra_op_threads: 1             # int or "all" (= the machine's logical CPUs)
    inter_op_threads: 1
    graph_optimization_level: all   # disable | basic | extended | all
    precision: fp32                 # fp32 | int8
    batch_size: 1
    tvm_target: null                # TVM only: "llvm -mcpu=..." or {kind: llvm, mcpu: ...}
    warmup: 10                      # untimed runs per entry and round
    repeats: 50                     # timed runs per entry and round
    rounds: 3                       # rounds spread over time, interleaved across entries
    device_kind: host               # host | mobile | gpu
    # the anchor-paired protocol (ofa_deploy.profiling.timing.protocol); null: the protocol's defaults
    anchor: auto                    # the anchor subnet (a subnet string of the space) or auto (middle choices)
    interval_target: 0.03           # stop once the 95% interval of the median ratio is within ±3%
    min_rounds: 5                   # paired rounds before convergence is judged
    max_rounds: 30                  # paired rounds at most
    time_cap_s: 300                 # no new paired round after this many seconds
    visit_warmup: 3                 # untimed runs before each paired visit
    visit_repeats: 10               # timed runs per paired visit (their minimum is the visit's value)
    # optional: session_config (ORT session config entries), and the timer's statistic / clock /
    # anchor_every / seed (null: the profiler's defaults; validated by the profiler's TimerSettings)
    # optional: devices, a pool of devices of this kind (ofa_deploy.profiling.hosts.devices), e.g.
    #   devices: [{name: pi4-01, runner: ssh, host: 10.0.0.21}, {name: pi4-02, runner: ssh, host: 10.0.0.22}]

`HardwareProfile.load(name_or_path)` resolves a bare name against the user directory
(``$OFA_DEPLOY_PROFILES`` or ``~/.config/ofa-deploy/hardware_profiles``) and then the profiles packaged with
ofa-deploy (``ofa_deploy/hardware_profiles/``, read through `importlib.resources`). `sha256` hashes the canonical content (threads as written, so "all" hashes the
same on every machine) and is stored in the provenance of every table measured with the profile.
"""
from __future__ import annotations

import difflib
import hashlib
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ofa_deploy import hostinfo
from ofa_deploy.errors import ConfigError, unknown_name
from ofa_deploy.fileio import is_regular_file, read_yaml_file
from ofa_deploy.paths import packaged_profile_dir

BACKENDS = ("onnxruntime", "tvm", "torch")
EXECUTION_PROVIDERS = (
    "CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider", "XNNPACKExecutionProvider",
    "NnapiExecutionProvider", "CoreMLExecutionProvider", "OpenVINOExecutionProvider", "DnnlExecutionProvider",
    "ROCMExecutionProvider", "QNNExecutionProvider", "DmlExecutionProvider", "WebGpuExecutionProvider",
)
GRAPH_OPT_LEVELS = ("disable", "basic", "extended", "all")
PRECISIONS = ("fp32", "int8")
DEVICE_KINDS = ("host", "mobile", "gpu")
PACKAGED_PROFILE_DIR = packaged_profile_dir()
REPO_PROFILE_DIR = PACKAGED_PROFILE_DIR  # the former name (profiles lived at the repository root)
USER_PROFILE_ENV = "OFA_DEPLOY_PROFILES"

_DEFAULTS: dict[str, Any] = {
    "description": "",
    "backend": "onnxruntime",
    "execution_provider": None,
    "provider_options": {},
    "session_config": {},
    "intra_op_threads": 1,
    "inter_op_threads": 1,
    "graph_optimization_level": "all",
    "precision": "fp32",
    "batch_size": 1,
    "tvm_target": None,
    "tvm_opt_level": 3,
    "warmup": 10,
    "repeats": 50,
    "rounds": 3,
    "statistic": None,
    "clock": None,
    "anchor_every": None,
    "seed": None,
    "device_kind": "host",
    "anchor": None,
    "interval_target": None,
    "min_rounds": None,
    "max_rounds": None,
    "time_cap_s": None,
    "visit_warmup": None,
    "visit_repeats": None,
    "devices": None,
}
_FIELDS = ("name", *_DEFAULTS)
TIMING_FIELDS = ("warmup", "repeats", "rounds")  # a profile without them gets a warning naming the defaults used
log = logging.getLogger(__name__)


def _fail(source: str, field_name: str, value: Any, expected: str) -> ConfigError:
    return ConfigError(f"hardware profile {source}: field {field_name!r} = {value!r} is invalid; expected {expected}")


def _choice(source: str, name: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        close = difflib.get_close_matches(str(value), allowed, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise _fail(source, name, value, f"one of {', '.join(allowed)}{hint}")
    return value


def _int(source: str, name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _fail(source, name, value, f"an integer >= {minimum}")
    return value


def _optional_int(source: str, name: str, value: Any, minimum: int) -> int | None:
    return None if value is None else _int(source, name, value, minimum)


def _optional_str(source: str, name: str, value: Any) -> str | None:
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise _fail(source, name, value, "a non-empty string or null")
    return value


def _optional_positive(source: str, name: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
        raise _fail(source, name, value, "a finite number > 0 or null")
    return float(value)


def _optional_fraction(source: str, name: str, value: Any) -> float | None:
    number = _optional_positive(source, name, value)
    if number is not None and number >= 1:
        raise _fail(source, name, value, "a fraction between 0 and 1 (0.03 = ±3%) or null")
    return number


def _threads(source: str, name: str, value: Any) -> int:
    if value == "all":
        return hostinfo.read_host().cores
    return _int(source, name, value, 1)


def _devices(source: str, value: Any) -> tuple[Any, ...]:
    from ofa_deploy.profiling.hosts.devices import parse_devices

    return parse_devices(value, source=source)


@dataclass(frozen=True)
class HardwareProfile:
    """A validated hardware profile. Thread counts are resolved ("all" -> the machine's logical CPUs)."""

    name: str
    description: str
    backend: str
    execution_provider: str | None
    provider_options: Mapping[str, Any]
    session_config: Mapping[str, str]
    intra_op_threads: int
    inter_op_threads: int
    graph_optimization_level: str
    precision: str
    batch_size: int
    tvm_target: str | Mapping[str, Any] | None
    tvm_opt_level: int
    warmup: int
    repeats: int
    rounds: int
    statistic: str | None
    clock: str | None
    anchor_every: int | None
    seed: int | None
    device_kind: str
    anchor: str | None
    interval_target: float | None
    min_rounds: int | None
    max_rounds: int | None
    time_cap_s: float | None
    visit_warmup: int | None
    visit_repeats: int | None
    #: a device pool of this kind (`ofa_deploy.profiling.hosts.devices.DeviceSpec`); empty: this machine only
    devices: tuple[Any, ...]
    raw: Mapping[str, Any] = field(repr=False, compare=False)
    path: Path | None = field(default=None, compare=False)

    # ---- construction --------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "<dict>", path: Path | None = None) -> HardwareProfile:
        """Validate a profile mapping; every error names the field and the allowed values."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"hardware profile {source}: expected a YAML mapping of fields, got {type(data).__name__}")
        unknown = [k for k in data if k not in _FIELDS]
        if unknown:
            key = str(unknown[0])
            close = difflib.get_close_matches(key, _FIELDS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"hardware profile {source}: unknown field {key!r}{hint}; known fields: {', '.join(_FIELDS)}")
        name = data.get("name")
        if not isinstance(name, str) or not name.strip() or any(c in name for c in "/\\ "):
            raise _fail(source, "name", name, "a non-empty string without spaces or slashes")
        raw = {"name": name, **{k: data.get(k, v) for k, v in _DEFAULTS.items()}}
        filled = [k for k in TIMING_FIELDS if k not in data]
        if filled:
            log.warning("hardware profile %s: no %s given; using the defaults %s (write them into the profile to "
                        "make the timing plan explicit)", source, ", ".join(filled),
                        ", ".join(f"{k}={_DEFAULTS[k]}" for k in filled))
        if raw["devices"] is None:
            del raw["devices"]  # profiles without a pool hash as they always did

        backend = _choice(source, "backend", raw["backend"], BACKENDS)
        provider = raw["execution_provider"]
        if backend == "onnxruntime":
            provider = _choice(source, "execution_provider", provider or "CPUExecutionProvider", EXECUTION_PROVIDERS)
            raw["execution_provider"] = provider
        elif provider is not None:
            raise _fail(source, "execution_provider", provider, "null (execution providers are an onnxruntime setting)")
        options = raw["provider_options"]
        if not isinstance(options, Mapping):
            raise _fail(source, "provider_options", options, "a mapping of provider option names to values")
        session_config = raw["session_config"]
        if not isinstance(session_config, Mapping) or (session_config and backend != "onnxruntime"):
            raise _fail(source, "session_config", session_config,
                        "a mapping of ONNX Runtime session config keys to string values (onnxruntime only)")
        for opt in ("statistic", "clock"):
            if raw[opt] is not None and not isinstance(raw[opt], str):
                raise _fail(source, opt, raw[opt], "a string or null (the profiler's default)")
        target = raw["tvm_target"]
        if backend == "tvm":
            target = "llvm" if target is None else target
            raw["tvm_target"] = target
            if not (isinstance(target, str) and target.strip()) and not (isinstance(target, Mapping) and "kind" in target):
                raise _fail(source, "tvm_target", target, "a target string (e.g. 'llvm -mcpu=skylake') or a mapping with 'kind'")
        elif target is not None:
            raise _fail(source, "tvm_target", target, "null (tvm_target is a TVM setting)")
        if not isinstance(raw["description"], str):
            raise _fail(source, "description", raw["description"], "a string")
        return cls(
            name=name,
            description=raw["description"],
            backend=backend,
            execution_provider=provider,
            provider_options=dict(options),
            session_config={str(k): str(v) for k, v in session_config.items()},
            intra_op_threads=_threads(source, "intra_op_threads", raw["intra_op_threads"]),
            inter_op_threads=_threads(source, "inter_op_threads", raw["inter_op_threads"]),
            graph_optimization_level=_choice(source, "graph_optimization_level", raw["graph_optimization_level"],
                                             GRAPH_OPT_LEVELS),
            precision=_choice(source, "precision", raw["precision"], PRECISIONS),
            batch_size=_int(source, "batch_size", raw["batch_size"], 1),
            tvm_target=dict(target) if isinstance(target, Mapping) else target,
            tvm_opt_level=_int(source, "tvm_opt_level", raw["tvm_opt_level"], 0),
            warmup=_int(source, "warmup", raw["warmup"], 0),
            repeats=_int(source, "repeats", raw["repeats"], 1),
            rounds=_int(source, "rounds", raw["rounds"], 1),
            statistic=raw["statistic"],
            clock=raw["clock"],
            anchor_every=None if raw["anchor_every"] is None else _int(source, "anchor_every", raw["anchor_every"], 0),
            seed=None if raw["seed"] is None else _int(source, "seed", raw["seed"], 0),
            device_kind=_choice(source, "device_kind", raw["device_kind"], DEVICE_KINDS),
            anchor=_optional_str(source, "anchor", raw["anchor"]),
            interval_target=_optional_fraction(source, "interval_target", raw["interval_target"]),
            min_rounds=_optional_int(source, "min_rounds", raw["min_rounds"], 2),
            max_rounds=_optional_int(source, "max_rounds", raw["max_rounds"], 2),
            time_cap_s=_optional_positive(source, "time_cap_s", raw["time_cap_s"]),
            visit_warmup=_optional_int(source, "visit_warmup", raw["visit_warmup"], 0),
            visit_repeats=_optional_int(source, "visit_repeats", raw["visit_repeats"], 1),
            devices=_devices(source, raw.get("devices")),
            raw=raw,
            path=path,
        )

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str]) -> HardwareProfile:
        """Read and validate the profile file `path` (a regular UTF-8 YAML file)."""
        path = Path(path)
        data = read_yaml_file(path, what="hardware profile",
                              hint="pass a profile name (see `ofa-deploy profile list`) or a .yaml file")
        return cls.from_dict({} if data is None else data, source=str(path), path=path)

    @classmethod
    def load(cls, name_or_path: str | os.PathLike[str]) -> HardwareProfile:
        """A profile by file path, or by name from the user dir then the packaged profiles."""
        text = str(name_or_path)
        candidate = Path(text).expanduser()
        if candidate.suffix in (".yaml", ".yml") or os.sep in text or is_regular_file(candidate) \
                or (os.path.lexists(candidate) and not os.path.isdir(candidate)):
            return cls.from_yaml(candidate)
        for directory in profile_dirs():
            for suffix in (".yaml", ".yml"):
                path = directory / f"{text}{suffix}"
                if is_regular_file(path):
                    return cls.from_yaml(path)
        raise unknown_name("hardware profile", text, list_profiles())

    # ---- views ---------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The canonical content (defaults filled in, threads as written)."""
        return json.loads(json.dumps(dict(self.raw), sort_keys=True))

    @property
    def sha256(self) -> str:
        """SHA-256 of the canonical JSON of `to_dict()` (independent of file formatting and key order)."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def describe(self) -> str:
        where = self.execution_provider or (self.tvm_target if self.backend == "tvm" else "cpu")
        return (f"{self.name}: {self.backend} ({where}), {self.intra_op_threads} thread(s), {self.precision}, "
                f"batch {self.batch_size}, {self.rounds}x{self.repeats} runs after {self.warmup} warm-up")


def profile_dirs() -> list[Path]:
    """Directories searched for profiles by name: the user dir first, then the packaged profiles."""
    return [user_profile_dir(), PACKAGED_PROFILE_DIR]


def user_profile_dir() -> Path:
    """``$OFA_DEPLOY_PROFILES``, else ``~/.config/ofa-deploy/hardware_profiles``: the user's own profiles."""
    return Path(os.environ.get(USER_PROFILE_ENV, "~/.config/ofa-deploy/hardware_profiles")).expanduser()


def list_profiles() -> list[str]:
    """Names of the profiles found in `profile_dirs()`."""
    names: set[str] = set()
    for directory in profile_dirs():
        if directory.is_dir():
            names.update(p.stem for p in directory.iterdir() if p.suffix in (".yaml", ".yml"))
    return sorted(names)


__all__ = ["BACKENDS", "DEVICE_KINDS", "EXECUTION_PROVIDERS", "GRAPH_OPT_LEVELS", "PACKAGED_PROFILE_DIR", "PRECISIONS",
           "HardwareProfile", "list_profiles", "profile_dirs", "user_profile_dir"]
