"""How a pool reaches a device: `local` (this machine), `ssh` (boards with python + onnxruntime), `adb` (Android
with ``onnxruntime_perf_test``). Every runner times one model against the anchor on its device (A, item, A)."""
from __future__ import annotations

from typing import Any

from ofa_deploy.profiling.hosts.devices import DeviceSpec
from ofa_deploy.scale.runners.base import DeviceRunner


def make_runner(device: DeviceSpec, profile: Any, protocol: Any) -> DeviceRunner:
    """The runner a device entry names, not yet connected."""
    if device.runner == "ssh":
        from ofa_deploy.scale.runners.ssh import SshRunner

        return SshRunner(device, profile, protocol)
    if device.runner == "adb":
        from ofa_deploy.scale.runners.adb import AdbRunner

        return AdbRunner(device, profile, protocol)
    from ofa_deploy.scale.runners.local import LocalRunner

    return LocalRunner(device, profile, protocol)


__all__ = ["DeviceRunner", "make_runner"]
