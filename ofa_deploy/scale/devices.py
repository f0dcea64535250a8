"""The ``devices:`` of a hardware profile (re-exported from `ofa_deploy.profiling.devices`, where the hardware
profile parses them, so `profiling` does not import `scale`)."""
from __future__ import annotations

from ofa_deploy.profiling.devices import (
    DEFAULT_TOLERANCE,
    REQUIRED,
    RUNNER_SETTINGS,
    DeviceSpec,
    DeviceUnavailableError,
    flag_devices,
    parse_devices,
)

__all__ = ["DEFAULT_TOLERANCE", "REQUIRED", "RUNNER_SETTINGS", "DeviceSpec", "DeviceUnavailableError", "flag_devices",
           "parse_devices"]
