"""Measuring whole subnets on the adaptation target, with the anchor-paired protocol, wherever the target is.

`open_target` gives the target of a hardware profile: this machine through the profile's backend
(`LocalTarget`, timing with `profiling.timing.measure.measure_models`), or the first reachable device of the
profile's pool (`DeviceTarget`: ssh boards with the on-device script, adb phones, local pinned cores), where
each visit is the runner's own (A, item, A) on the device and rounds repeat until each item's median ratio
converges by the protocol's rule. Both count the device seconds spent timing (session creation and model export
are host work, counted apart) and keep every anchor visit, so the adapted table's anchor time is the target's.
"""
from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ofa_deploy.profiling.timing.protocol import ProtocolSettings, measure_paired_visits
from ofa_deploy.spaces import SearchSpace, SubnetConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Measurement:
    """One subnet on the target: its median ratio to the anchor, whether it converged, its rounds' ratios."""

    ratio: float
    converged: bool
    rounds: int
    ratios: tuple[float, ...] = ()

    def merged(self, other: Measurement) -> Measurement:
        """Both measurements' rounds as one (the median of all their ratios)."""
        ratios = self.ratios + other.ratios
        return Measurement(float(np.median(ratios)), self.converged or other.converged, len(ratios), ratios)


@dataclass
class Target:
    """What every target keeps: the anchor visits (ms), device and host seconds, and models measured."""

    space: SearchSpace
    profile: Any
    anchor: SubnetConfig
    protocol: ProtocolSettings
    model_dir: Path
    anchor_visits_ms: list[float] = field(default_factory=list)
    device_seconds: float = 0.0
    host_seconds: float = 0.0
    measured: int = 0

    def describe(self) -> dict[str, Any]:
        raise NotImplementedError

    def backend(self) -> Any:
        """The local backend (None for a device target)."""
        return None

    def visit_seconds(self) -> float:
        """Seconds one anchor visit takes now (to estimate the cost of a measurement before starting it)."""
        raise NotImplementedError

    def measure(self, cfgs: Sequence[SubnetConfig], time_cap_s: float) -> dict[SubnetConfig, Measurement]:
        raise NotImplementedError

    def shorten_visits(self, visit_s: float, longest_s: float) -> float:
        """Fewer runs per visit when one visit (`visit_s` with the current settings) takes longer than
        `longest_s`: slow models (untuned TVM, big eager nets) need no 6 timed runs for a stable minimum. Returns
        the new visit's estimated seconds. Device targets keep the settings they connected with."""
        return visit_s

    def close(self) -> None:
        """Release sessions and connections."""

    def __enter__(self) -> Target:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LocalTarget(Target):
    """This machine, through the profile's backend (ONNX Runtime, TVM, eager torch; int8 models for int8 profiles)."""

    #: subnets prepared at once (eager torch keeps a module copy per runner)
    chunk = {"module": 12, "onnx": 32}

    def open(self, backend: Any = None) -> LocalTarget:
        """Create the profile's backend (or use `backend`, which the caller keeps and closes)."""
        from ofa_deploy.profiling.timing.backends import create_backend

        self._own_backend = backend is None
        self._backend = backend or create_backend(self.profile)
        self._anchor_model = self._model(self.anchor, anchor=True)
        return self

    def backend(self) -> Any:
        return self._backend

    def describe(self) -> dict[str, Any]:
        return {"runner": "local", **self._backend.describe()}

    def _model(self, cfg: SubnetConfig, *, anchor: bool = False) -> tuple[Any, tuple[int, ...]]:
        from ofa_deploy.profiling.models import export_subnet, profile_model

        start = time.perf_counter()
        try:
            fmt = self._backend.model_format
            if anchor and fmt != "module":  # the anchor stays fp32 ONNX: what later measurements pair with
                batch = int(getattr(self.profile, "batch_size", 1))
                return export_subnet(self.space, cfg, self.model_dir, batch_size=batch), \
                    (batch, 3, cfg.resolution, cfg.resolution)
            return profile_model(self.space, cfg, self.profile, self.model_dir, model_format=fmt)
        finally:
            self.host_seconds += time.perf_counter() - start

    def visit_seconds(self) -> float:
        from ofa_deploy.profiling.timing.measure import prepare_anchor
        from ofa_deploy.profiling.timing.protocol import runner_visit

        visit = runner_visit(self.protocol)
        with prepare_anchor(self._backend, self._anchor_model, self.profile) as runner:
            visit(runner)
            start = time.perf_counter()
            for _ in range(3):
                visit(runner)
            return (time.perf_counter() - start) / 3

    def shorten_visits(self, visit_s: float, longest_s: float) -> float:
        runs = self.protocol.warmup + self.protocol.repeats
        if visit_s <= longest_s or runs <= 3:
            return visit_s
        per_run = visit_s / runs
        repeats = max(2, min(self.protocol.repeats, math.ceil(longest_s / per_run) - 1))
        self.protocol = replace(self.protocol, warmup=1, repeats=repeats)
        return per_run * (1 + repeats)

    def measure(self, cfgs: Sequence[SubnetConfig], time_cap_s: float) -> dict[SubnetConfig, Measurement]:
        from ofa_deploy.profiling.timing.measure import measure_models

        out: dict[SubnetConfig, Measurement] = {}
        size = self.chunk.get(self._backend.model_format, 32)
        for begin in range(0, len(cfgs), size):
            part = cfgs[begin:begin + size]
            models = {c: self._model(c) for c in part}
            settings = replace(self.protocol, time_cap_s=max(time_cap_s * len(part) / len(cfgs), 1.0))
            prepare = time.perf_counter()
            run = measure_models(models, self._anchor_model, self.profile, protocol=settings, backend=self._backend)
            self.host_seconds += time.perf_counter() - prepare - run.seconds  # session creation / compilation
            self.device_seconds += run.seconds
            self.anchor_visits_ms += run.anchor_visits_ms
            for cfg in part:
                result = run.results[cfg]
                out[cfg] = Measurement(result.ratio, result.converged, result.rounds, tuple(result.ratios))
        self.measured += len(cfgs)
        return out

    def close(self) -> None:
        backend = getattr(self, "_backend", None)
        if backend is not None and self._own_backend:
            backend.close()


class DeviceTarget(Target):
    """The first reachable device of the profile's pool; ONNX models (int8 for int8 profiles) sent to it."""

    def open(self, backend: Any = None) -> DeviceTarget:
        from ofa_deploy.profiling.hosts.devices import DeviceUnavailableError
        from ofa_deploy.scale.runners import make_runner

        why = []
        for device in self.profile.devices:
            runner = make_runner(device, self.profile, self.protocol)
            try:
                self._described = {"device": device.name, **runner.connect()}
            except DeviceUnavailableError as exc:
                runner.close()
                why.append(f"{device.name}: {exc}")
                continue
            self._runner = runner
            self._device = device.name
            self._anchor_model = self._model(self.anchor)
            return self
        raise DeviceUnavailableError(f"no device of profile {self.profile.name} could be reached to adapt a table: "
                                     + "; ".join(why))

    def describe(self) -> dict[str, Any]:
        return dict(self._described)

    def _model(self, cfg: SubnetConfig) -> tuple[Any, tuple[int, ...]]:
        from ofa_deploy.profiling.models import profile_model

        start = time.perf_counter()
        try:
            return profile_model(self.space, cfg, self.profile, self.model_dir)
        finally:
            self.host_seconds += time.perf_counter() - start

    def _visit(self, model: tuple[Any, tuple[int, ...]]) -> dict[str, float]:
        return self._runner.paired_visit(Path(model[0]), model[1], Path(self._anchor_model[0]), self._anchor_model[1])

    def visit_seconds(self) -> float:
        start = time.perf_counter()
        self._visit(self._anchor_model)
        return (time.perf_counter() - start) / 3

    def measure(self, cfgs: Sequence[SubnetConfig], time_cap_s: float) -> dict[SubnetConfig, Measurement]:
        if not cfgs:
            return {}
        models = {c: self._model(c) for c in cfgs}
        start = time.perf_counter()
        run = measure_paired_visits(list(models), lambda c: self._visit(models[c]),
                                    replace(self.protocol, time_cap_s=max(time_cap_s, 1.0)))
        self.device_seconds += time.perf_counter() - start
        self.anchor_visits_ms += run.anchor_visits_ms
        self.measured += len(cfgs)
        return {c: Measurement(r.ratio, r.converged, r.rounds, tuple(r.ratios)) for c, r in run.results.items()}

    def close(self) -> None:
        runner = getattr(self, "_runner", None)
        if runner is not None:
            runner.close()


def open_target(space: SearchSpace, profile: Any, anchor: SubnetConfig, protocol: ProtocolSettings,
                model_dir: Path, *, backend: Any = None) -> Target:
    """The target of `profile`, connected: its device pool when it lists devices, else this machine (through
    `backend` when given: a prepared backend the caller keeps)."""
    if getattr(profile, "devices", ()) and backend is None:
        return DeviceTarget(space, profile, anchor, protocol, model_dir).open()
    return LocalTarget(space, profile, anchor, protocol, model_dir).open(backend)


__all__ = ["DeviceTarget", "LocalTarget", "Measurement", "Target", "open_target"]
