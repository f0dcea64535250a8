"""The ``devices:`` of a hardware profile: several devices of one kind, each with a name and a runner.

    devices:
      - {name: pi4-01, runner: ssh, host: 127.0.0.1, port: 2222, user: pi, python: python3}
      - {name: pixel4-01, runner: adb, serial: 9A0AY1234, perf_test: ./onnxruntime_perf_test, cpus: "f0"}
      - {name: host-core1, runner: local, cpus: [1]}

Each device becomes a Ray actor holding the custom resource ``device:<name>`` (capacity 1: one job at a time).
Every device also times the profile's anchor; `flag_devices` marks a device whose anchor median is off the
pool's by more than a tolerance, so its entries are kept apart instead of being mixed into the table.
"""
from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ofa_deploy.errors import BackendUnavailableError, ConfigError

#: runner → the settings a device entry may carry for it
RUNNER_SETTINGS: dict[str, tuple[str, ...]] = {
    "local": ("cpus",),
    "ssh": ("host", "port", "user", "identity_file", "python", "workdir", "ssh_options", "connect_timeout"),
    "adb": ("serial", "perf_test", "workdir", "cpus", "adb", "runs"),
}
REQUIRED: dict[str, tuple[str, ...]] = {"local": (), "ssh": ("host",), "adb": ("perf_test",)}
DEFAULT_TOLERANCE = 0.15


class DeviceUnavailableError(BackendUnavailableError):
    """A device of a pool cannot be reached (or stopped answering)."""


@dataclass(frozen=True)
class DeviceSpec:
    """One device of a pool: its name, its runner and the runner's settings."""

    name: str
    runner: str
    settings: Mapping[str, Any] = field(default_factory=dict)

    @property
    def resource(self) -> str:
        """The Ray custom resource that stands for this device."""
        return f"device:{self.name}"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "runner": self.runner, **self.settings}


def parse_devices(value: Any, *, source: str = "<profile>") -> tuple[DeviceSpec, ...]:
    """Validate a profile's ``devices:`` list; every error names the device, the field and what is allowed."""
    if value is None:
        return ()
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise ConfigError(f"hardware profile {source}: 'devices' must be a list of mappings "
                          "({name: ..., runner: local|ssh|adb, ...}), got " + type(value).__name__)
    out: list[DeviceSpec] = []
    for n, entry in enumerate(value):
        where = f"hardware profile {source}: devices[{n}]"
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{where} must be a mapping with 'name' and 'runner', got {entry!r}")
        name, runner = entry.get("name"), entry.get("runner", "local")
        if not isinstance(name, str) or not name.strip() or any(c in name for c in "/\\ :"):
            raise ConfigError(f"{where}: 'name' = {name!r} is invalid; expected a non-empty string without spaces, "
                              "slashes or colons")
        if runner not in RUNNER_SETTINGS:
            raise ConfigError(f"{where} ({name}): runner {runner!r} is unknown; expected one of "
                              f"{', '.join(RUNNER_SETTINGS)}")
        settings = {k: v for k, v in entry.items() if k not in ("name", "runner")}
        unknown = sorted(set(settings) - set(RUNNER_SETTINGS[runner]))
        if unknown:
            raise ConfigError(f"{where} ({name}): unknown setting(s) {unknown} for the {runner} runner; allowed: "
                              f"{', '.join(RUNNER_SETTINGS[runner])}")
        missing = [k for k in REQUIRED[runner] if not settings.get(k)]
        if missing:
            raise ConfigError(f"{where} ({name}): the {runner} runner needs {', '.join(missing)}")
        out.append(DeviceSpec(name, runner, settings))
    names = [d.name for d in out]
    dupes = sorted({x for x in names if names.count(x) > 1})
    if dupes:
        raise ConfigError(f"hardware profile {source}: device names must be unique; repeated: {dupes}")
    return tuple(out)


def flag_devices(anchor_ms: Mapping[str, Sequence[float]], tolerance: float = DEFAULT_TOLERANCE) -> dict[str, Any]:
    """Per device: the median of its anchor visits, and whether it is off the pool by more than `tolerance`.

    The pool's reference is the low median of the device medians (always one real device, so with two devices
    the faster one is the reference and never both are flagged).
    """
    if not 0 < tolerance < math.inf:
        raise ConfigError(f"the anchor tolerance must be a number > 0 (0.15 = ±15%), got {tolerance!r}")
    medians = {name: float(statistics.median(v)) for name, v in anchor_ms.items() if len(v)}
    if not medians:
        return {"tolerance": tolerance, "reference_ms": None, "devices": {}, "flagged": []}
    reference = float(statistics.median_low(medians.values()))
    devices = {name: {"anchor_ms": ms, "visits": len(anchor_ms[name]), "off": ms / reference - 1,
                      "flagged": abs(ms / reference - 1) > tolerance} for name, ms in sorted(medians.items())}
    return {"tolerance": tolerance, "reference_ms": reference, "devices": devices,
            "flagged": [n for n, d in devices.items() if d["flagged"]]}


__all__ = ["DEFAULT_TOLERANCE", "DeviceSpec", "DeviceUnavailableError", "flag_devices", "parse_devices"]
