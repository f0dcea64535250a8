"""Measure model files on a hardware profile with the anchor-paired protocol.

One entry point for every whole-model measurement (table validation, deploy's budget check, timing any
exported model): prepare each model and the anchor on the profile's backend, run `measure_paired`, and express
the ratios in milliseconds at a reference anchor time: a table's (the device at the table's reference speed)
or, without one, this run's (wall clock now).
"""
from __future__ import annotations

import logging
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


__all__ = ["Measured", "anchor_for", "measure_models", "prepare_anchor", "reference_ms", "space_anchor"]
