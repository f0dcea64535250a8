"""The `local` runner: this machine's backend, optionally pinned to some CPUs (``cpus: [1]``)."""
from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ofa_deploy.profiling.devices import DeviceUnavailableError
from ofa_deploy.scale.runners.base import DeviceRunner


class LocalRunner(DeviceRunner):
    """Times models with the profile's backend in this process (the device actor), pinned to `cpus`."""

    max_sessions = 64

    def connect(self) -> dict[str, Any]:
        from ofa_deploy.profiling.backends import create_backend

        cpus = self.device.settings.get("cpus")
        if cpus is not None:
            try:
                os.sched_setaffinity(0, {int(c) for c in cpus})
            except (OSError, ValueError, TypeError) as exc:
                raise DeviceUnavailableError(
                    f"device {self.device.name}: cannot pin to cpus {cpus!r} ({exc}); this machine has CPUs "
                    f"{sorted(os.sched_getaffinity(0))}") from None
        self.backend = create_backend(self.profile)
        self._paired: Any = None
        self._runners: OrderedDict[tuple[str, tuple[int, ...]], Any] = OrderedDict()
        return {"runner": "local", "pid": os.getpid(), "cpus": sorted(os.sched_getaffinity(0)),
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
        from ofa_deploy.profiling.measure import PairedVisits

        if self._paired is None:
            self._paired = PairedVisits(self.backend, anchor, anchor_shape, self.protocol)
        return self._paired(self._runner(model, shape))

    def close(self) -> None:
        for runner in getattr(self, "_runners", {}).values():
            runner.close()
        if getattr(self, "_paired", None) is not None:
            self._paired.close()
