"""Measure model files on a hardware profile with the anchor-paired protocol: the one module that does.

One entry point for every whole-model measurement (table validation, deploy's budget check, adaptation):
`measure_models` prepares each model and the anchor on the profile's backend, runs `measure_paired`, and the
ratios are expressed in milliseconds at a reference anchor time: a table's (the device at the table's reference
speed) or, without one, this run's (wall clock now). `time_model` (``ofa-deploy measure``) is `measure_models`
on one file (``.onnx``, ``.ort``, TVM ``.so``; see `model_files` for finding and checking it), recording this
run's raw wall-clock runs as `onnxruntime_perf_test` does for ORT alone.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ofa_deploy.profiling.timing.backends.base import Runner
from ofa_deploy.profiling.timing.protocol import PairedResult, PairedRun, ProtocolSettings, measure_paired, runner_visit
from ofa_deploy.spaces import SearchSpace, SubnetConfig

log = logging.getLogger(__name__)

Model = tuple[Any, Sequence[int]]  # (model file or module, input shape)


@dataclass(frozen=True)
class Measured:
    """One model's latency: at the reference anchor time (`ms`, `interval_ms`) and on this run's clock."""

    ms: float
    interval_ms: tuple[float, float]
    wall_ms: float
    ratio: float
    converged: bool
    rounds: int

    @classmethod
    def of(cls, result: PairedResult, reference_ms: float) -> Measured:
        return cls(ms=result.ms(reference_ms), interval_ms=result.interval_ms(reference_ms), wall_ms=result.wall_ms,
                   ratio=result.ratio, converged=result.converged, rounds=result.rounds)

    def to_dict(self) -> dict[str, Any]:
        return {"ms": self.ms, "interval_ms": list(self.interval_ms), "wall_ms": self.wall_ms, "ratio": self.ratio,
                "converged": self.converged, "rounds": self.rounds}


def anchor_for(space: SearchSpace, table: Any, profile: Any) -> SubnetConfig:
    """The anchor to pair with: the table's own, else the profile's for the space."""
    from ofa_deploy.profiling.timing.anchor import resolve_anchor_config

    if table is not None and getattr(table, "anchor", None) is not None:
        return resolve_anchor_config(space, table.anchor.config, source="the latency table")
    return resolve_anchor_config(space, getattr(profile, "anchor", None),
                                 source=f"profile {getattr(profile, 'name', profile)}")


def reference_ms(table: Any) -> float | None:
    """The table's anchor time (ms) that ratios are converted with; None for a table without an anchor."""
    anchor = getattr(table, "anchor", None) if table is not None else None
    return anchor.ms if anchor is not None else None


def measure_models(
    models: Mapping[Hashable, Model],
    anchor: Model,
    profile: Any,
    *,
    protocol: ProtocolSettings | None = None,
    backend: Any = None,
    progress: bool = False,
) -> PairedRun:
    """Prepare every model and the anchor on `profile`'s backend and time them in paired rounds."""
    from ofa_deploy.profiling.timing.backends import create_backend

    settings = protocol or ProtocolSettings.from_profile(profile)
    own_backend = backend is None
    backend = backend or create_backend(profile)
    runners: dict[Hashable, Any] = {}
    anchor_runner = None
    bar = None
    try:
        anchor_runner = prepare_anchor(backend, anchor, profile)
        for key, (model, shape) in models.items():
            runners[key] = backend.prepare(model, tuple(shape))
        if progress:
            from ofa_deploy.progress import progress_bar

            bar = progress_bar(desc="timing (anchor-paired)", unit="visit", leave=False)
        return measure_paired(runners, anchor_runner, settings, progress=bar.update if bar is not None else None)
    finally:
        if bar is not None:
            bar.close()
        for runner in [*runners.values(), anchor_runner]:
            if runner is not None:
                runner.close()
        if own_backend:
            backend.close()


def prepare_anchor(backend: Any, anchor: Model, profile: Any) -> Any:
    """The anchor's runner; any failure to load or run it becomes a ConfigError naming the profile."""
    from ofa_deploy.errors import ConfigError, OfaDeployError

    try:
        return backend.prepare(anchor[0], tuple(anchor[1]))
    except OfaDeployError:
        raise
    except Exception as exc:  # noqa: BLE001 - any runtime failure of the anchor is one clear error
        raise ConfigError(f"the anchor model {anchor[0]} of profile {getattr(profile, 'name', profile)} cannot run on "
                          f"{getattr(backend, 'name', backend)}: {exc}") from exc


def space_anchor(space: SearchSpace, table: Any, profile: Any, model_dir: Path | None = None) -> Model:
    """The anchor model file (exported if needed) and its input shape for `space` on `profile`."""
    from ofa_deploy.profiling.timing.anchor import anchor_model
    from ofa_deploy.profiling.models import model_cache_dir

    cfg = anchor_for(space, table, profile)
    batch = int(getattr(profile, "batch_size", 1))
    path = anchor_model(space, cfg, model_dir or model_cache_dir(), batch_size=batch,
                        profile=getattr(profile, "name", ""))
    return path, (batch, 3, cfg.resolution, cfg.resolution)


class PairedVisits:
    """Times a runner bracketed by the anchor (A, item, A) with the protocol's per-visit settings.

    The anchor runner is prepared on first use and kept for the job's life.
    """

    def __init__(self, backend: Any, anchor_path: Any, anchor_shape: Sequence[int], protocol: ProtocolSettings,
                 profile_name: str = "") -> None:
        self.backend = backend
        self.anchor_path = anchor_path
        self.anchor_shape = tuple(anchor_shape)
        self.visit = runner_visit(protocol)
        self.profile_name = profile_name
        self._anchor: Any = None

    def anchor(self) -> float:
        """One visit of the anchor alone (ms)."""
        if self._anchor is None:
            self._anchor = prepare_anchor(self.backend, (self.anchor_path, self.anchor_shape), self.profile_name)
        return self.visit(self._anchor)

    def __call__(self, runner: Any) -> dict[str, float]:
        before = self.anchor()
        item = self.visit(runner)
        after = self.anchor()
        bracket = (before + after) / 2
        return {"item_ms": item, "anchor_ms": bracket, "ratio": item / bracket}

    def close(self) -> None:
        if self._anchor is not None:
            self._anchor.close()
            self._anchor = None


class _RecordingRunner(Runner):
    """Delegates to a runner and records the wall time of every timed run (warm-up runs skipped)."""

    def __init__(self, inner: Runner, warmup: int, repeats: int) -> None:
        self.inner, self.warmup, self.period = inner, warmup, warmup + repeats
        self.natural_clock = inner.natural_clock
        self.calls = 0
        self.runs_ms: list[float] = []

    def run(self) -> None:
        t0 = time.perf_counter_ns()
        self.inner.run()
        if self.calls % self.period >= self.warmup:
            self.runs_ms.append((time.perf_counter_ns() - t0) / 1e6)
        self.calls += 1

    def output(self) -> Any:
        return self.inner.output()

    def close(self) -> None:
        self.inner.close()


class _RecordingBackend:
    """Wraps a backend so the runner of `key_model` records its raw runs."""

    def __init__(self, inner: Any, model: Path, warmup: int, repeats: int) -> None:
        self.inner, self.model, self.warmup, self.repeats = inner, model, warmup, repeats
        self.recorder: _RecordingRunner | None = None

    def prepare(self, model: Any, input_shape: Sequence[int]) -> Runner:
        if isinstance(model, (str, Path)) and Path(model).suffix == ".so":
            runner = _load_tvm_library(self.inner, Path(model), input_shape)
        else:
            runner = self.inner.prepare(model, input_shape)
        if Path(str(model)) == self.model and self.recorder is None:
            self.recorder = _RecordingRunner(runner, self.warmup, self.repeats)
            return self.recorder
        return runner

    def close(self) -> None:
        self.inner.close()


def _load_tvm_library(backend: Any, path: Path, input_shape: Sequence[int]) -> Runner:
    """An exported TVM ``.so`` in a fresh Relax VM on the backend's device."""
    import tvm

    return backend.prepare(tvm.runtime.load_module(str(path)), input_shape)


@dataclass
class ModelTiming:
    """The outcome of `time_model`; `to_dict()` is the CLI's JSON."""

    model: str
    input_shape: tuple[int, ...]
    profile: str
    anchor: dict[str, Any]
    ratio: float
    ratio_interval: tuple[float, float]
    converged: bool
    rounds: int
    seconds: float
    anchor_ms_now: float
    anchor_swing: float
    runs_ms: list[float] = field(default_factory=list)
    table: dict[str, Any] | None = None

    @property
    def ms_now(self) -> float:
        return self.ratio * self.anchor_ms_now

    def percentiles(self) -> dict[str, float]:
        arr = np.asarray(self.runs_ms, dtype=float)
        return {f"p{q}": float(np.percentile(arr, q)) for q in (50, 90, 99)} if arr.size else {}

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "model": self.model, "input_shape": list(self.input_shape), "profile": self.profile, "anchor": self.anchor,
            "ratio": self.ratio, "ratio_interval": list(self.ratio_interval), "converged": self.converged,
            "rounds": self.rounds, "seconds": round(self.seconds, 2),
            "now": {"ms": self.ms_now, "interval_ms": [r * self.anchor_ms_now for r in self.ratio_interval],
                    "anchor_ms": self.anchor_ms_now, "anchor_swing": self.anchor_swing},
            "wall_ms": {**self.percentiles(), "n_runs": len(self.runs_ms)},
        }
        if self.table is not None:
            out["at_table_reference"] = self.table
        return out


def time_model(model: Path, profile: Any, anchor: tuple[Any, Sequence[int]], *, input_shape: Sequence[int],
               protocol: Any, table: Any = None, table_path: str | None = None,
               anchor_info: dict[str, Any] | None = None) -> ModelTiming:
    """Time `model` against `anchor` on `profile` with `protocol` (`measure_models`), recording the raw runs."""
    from ofa_deploy.profiling.timing.backends import create_backend

    backend = _RecordingBackend(create_backend(profile), model, protocol.warmup, protocol.repeats)
    try:
        run = measure_models({"model": (model, tuple(input_shape))}, anchor, profile, protocol=protocol,
                             backend=backend, progress=True)
    finally:
        backend.close()
    result = run.results["model"]
    timing = ModelTiming(model=str(model), input_shape=tuple(input_shape), profile=profile.name,
                         anchor=anchor_info or {"model": str(anchor[0])}, ratio=result.ratio,
                         ratio_interval=tuple(result.interval), converged=result.converged, rounds=result.rounds,
                         seconds=run.seconds, anchor_ms_now=run.anchor_ms, anchor_swing=run.anchor_swing,
                         runs_ms=list(backend.recorder.runs_ms) if backend.recorder else [])
    ref = reference_ms(table)
    if ref is not None:
        timing.table = {"path": table_path, "anchor_ms": ref, "ms": result.ratio * ref,
                        "interval_ms": [r * ref for r in result.interval]}
    return timing


__all__ = ["Measured", "ModelTiming", "anchor_for", "measure_models", "prepare_anchor", "reference_ms",
           "space_anchor", "time_model"]
