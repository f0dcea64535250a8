"""The `local` runner: this machine's backend, optionally pinned to some CPUs (``cpus: [1]``).

The CPUs a device may pin to are the ones this process may run on (`ofa_deploy.hostinfo.read_host`); asking
for others is a `DeviceUnavailableError` that names what this machine offers.
"""
from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ofa_deploy import hostinfo
from ofa_deploy.profiling.hosts.devices import DeviceUnavailableError
from ofa_deploy.scale.runners.base import DeviceRunner


def pinned_cpus(device: str, cpus: Any, host: hostinfo.HostInfo) -> set[int]:
    """The CPU ids `device` asks for (``cpus: [0, 2]``), checked against the CPUs `host` lets this process use."""
    usable = f"this machine lets this process use CPUs {list(host.usable_cpus)} (of {host.cores})"
    if isinstance(cpus, (str, bytes)) or not isinstance(cpus, Sequence) or not cpus \
            or not all(isinstance(c, int) and not isinstance(c, bool) for c in cpus):
        raise DeviceUnavailableError(f"device {device}: cpus {cpus!r} must be a non-empty list of CPU ids "
                                     f"(integers); {usable}")
    wanted = set(cpus)
    missing = sorted(wanted - set(host.usable_cpus))
    if missing:
        raise DeviceUnavailableError(f"device {device}: cannot pin to cpus {sorted(wanted)}: {missing} not available; "
                                     f"{usable}")
    return wanted


class LocalRunner(DeviceRunner):
    """Times models with the profile's backend in this process (the device actor), pinned to `cpus`."""

    max_sessions = 64

    def connect(self) -> dict[str, Any]:
        from ofa_deploy.profiling.timing.backends import create_backend

        cpus = self.device.settings.get("cpus")
        if cpus is not None:
            wanted = pinned_cpus(self.device.name, cpus, hostinfo.read_host())
            try:
                os.sched_setaffinity(0, wanted)
            except (OSError, AttributeError) as exc:  # AttributeError: no CPU pinning on this OS
                raise DeviceUnavailableError(f"device {self.device.name}: cannot pin to cpus {sorted(wanted)} "
                                             f"({exc})") from None
        self.backend = create_backend(self.profile)
        self._paired: Any = None
        self._runners: OrderedDict[tuple[str, tuple[int, ...]], Any] = OrderedDict()
        return {"runner": "local", "pid": os.getpid(), "cpus": list(hostinfo.read_host().usable_cpus),
                **self.backend.describe()}

    def _runner(self, model: Path, shape: Sequence[int]) -> Any:
        key = (str(model), tuple(shape))
        if key not in self._runners:
            self._runners[key] = self.backend.prepare(model, tuple(shape))
            while len(self._runners) > self.max_sessions:
                self._runners.popitem(last=False)[1].close()
        self._runners.move_to_end(key)
        return self._runners[key]

    def paired_visit(self, model: Path, shape: Sequence[int], anchor: Path, anchor_shape: Sequence[int]
                     ) -> dict[str, float]:
        from ofa_deploy.profiling.timing.measure import PairedVisits

        if self._paired is None:
            self._paired = PairedVisits(self.backend, anchor, anchor_shape, self.protocol)
        return self._paired(self._runner(model, shape))

    def close(self) -> None:
        for runner in getattr(self, "_runners", {}).values():
            runner.close()
        if getattr(self, "_paired", None) is not None:
            self._paired.close()
