"""Check a latency table against whole subnets measured on the same backend with the anchor-paired protocol.

N random subnets are exported whole (seeded random init: weights do not change latency; BN folded by the
exporter) and timed against the table's anchor model in paired rounds until each converges
(`profiling.timing.protocol`). A measured ratio times the anchor's build-time median (stored with the table) is the
subnet's time at the table's reference speed, which is what the table predicts; the wall-clock figure of this
run is kept beside it. The protocol's own test-retest noise floor compares the even rounds with the odd ones.
Figures: share within ±5% / ±10%, raw and after one global scale, Spearman, Kendall, bias. Tables without an
anchor (OFA's, older builds) are compared with wall-clock times of this run, and the report says so.
"""
from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ofa_deploy.errors import ConfigError
from ofa_deploy.profiling.timing.protocol import PairedRun, ProtocolSettings
from ofa_deploy.spaces import SearchSpace, SubnetConfig

log = logging.getLogger(__name__)


def agreement(predicted: Sequence[float], measured: Sequence[float], *, tolerance: float = 0.10) -> dict[str, float]:
    """Share within ±5% and ±tolerance, Spearman, Kendall, mean/max abs % error, mean signed % error (bias)."""
    from scipy import stats

    p = np.asarray(predicted, dtype=float)
    m = np.asarray(measured, dtype=float)
    if p.shape != m.shape or p.size < 2:
        raise ConfigError(f"agreement needs two equal-length series of >= 2 values, got {p.shape} and {m.shape}")
    rel = (p - m) / m
    return {
        "n": int(p.size),
        "within_5pct": float(np.mean(np.abs(rel) <= 0.05)),
        "within_10pct": float(np.mean(np.abs(rel) <= tolerance)),
        "spearman": float(stats.spearmanr(p, m).statistic),
        "kendall": float(stats.kendalltau(p, m).statistic),
        "mean_abs_pct_error": float(np.mean(np.abs(rel)) * 100),
        "max_abs_pct_error": float(np.max(np.abs(rel)) * 100),
        "mean_pct_error": float(np.mean(rel) * 100),
    }


def scaled_agreement(predicted: Sequence[float], measured: Sequence[float]) -> dict[str, float]:
    """`agreement` after one global scale (the median of measured/predicted), which is also returned."""
    p = np.asarray(predicted, dtype=float)
    m = np.asarray(measured, dtype=float)
    scale = float(np.median(m / p))
    return {**agreement(p * scale, m), "scale": scale}


@dataclass
class ValidationReport:
    """Predicted vs measured whole-subnet latency, the protocol's noise floor, and how the run went.

    `measured_ms` is at the table's reference speed (ratio x the table's anchor ms) for anchored tables, else
    this run's wall clock; `wall_ms` is always this run's wall clock. `pass_a_ms`/`pass_b_ms` are the even and
    odd rounds (the noise floor compares them).
    """

    space: str
    profile: str
    configs: list[str]
    predicted_ms: list[float]
    measured_ms: list[float]
    pass_a_ms: list[float]
    pass_b_ms: list[float]
    metrics: dict[str, float]
    noise_floor: dict[str, float]
    raw_predicted_ms: list[float] = field(default_factory=list)
    raw_metrics: dict[str, float] = field(default_factory=dict)
    scaled_metrics: dict[str, float] = field(default_factory=dict)
    wall_ms: list[float] = field(default_factory=list)
    intervals_ms: list[list[float]] = field(default_factory=list)
    converged: int = 0
    reference: str = "anchor"
    anchor: dict[str, Any] = field(default_factory=dict)
    host: dict[str, Any] = field(default_factory=dict)
    calibrated: dict[str, Any] = field(default_factory=dict)
    protocol: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def save(self, path: str | os.PathLike[str]) -> Path:
        from ofa_deploy.fileio import atomic_write_text

        path = Path(path)
        atomic_write_text(path, json.dumps(self.to_dict(), indent=1))
        return path


def table_resolutions(table: Any) -> list[int]:
    """Input resolutions a table covers, read off its stem entries (3 input channels)."""
    return sorted({s.in_size for s in table if s.role == "stem" and s.in_channels == 3})


def sample_configs(space: SearchSpace, n: int, resolutions: Sequence[int], seed: int) -> list[SubnetConfig]:
    rng = np.random.default_rng(seed)
    return [space.sample(rng, resolution=int(rng.choice(list(resolutions)))) for _ in range(n)]


def measure_subnets(space: SearchSpace, cfgs: Sequence[SubnetConfig], profile: Any, *, table: Any = None,
                    protocol: ProtocolSettings | None = None, work_dir: Path | None = None, backend: Any = None,
                    progress: bool = False) -> tuple[PairedRun, float | None]:
    """Time whole subnets against the table's (or profile's) anchor; returns the run and the reference anchor ms
    (the table's, or None for a table without an anchor)."""
    from ofa_deploy.profiling.timing.measure import measure_models, reference_ms, space_anchor
    from ofa_deploy.profiling.models import export_subnet, model_cache_dir

    batch = int(getattr(profile, "batch_size", 1))
    model_dir = Path(work_dir) if work_dir else model_cache_dir()
    anchor = space_anchor(space, table, profile, model_dir)
    models = {i: (export_subnet(space, c, model_dir, batch_size=batch), (batch, 3, c.resolution, c.resolution))
              for i, c in enumerate(cfgs)}
    run = measure_models(models, anchor, profile, protocol=protocol, backend=backend, progress=progress)
    return run, reference_ms(table)


def validate_lut(
    space: SearchSpace,
    table: Any,
    profile: Any,
    n: int = 50,
    seed: int = 0,
    *,
    resolutions: Sequence[int] | None = None,
    protocol: ProtocolSettings | None = None,
    calibrate: bool = True,
    work_dir: str | os.PathLike[str] | None = None,
    out_path: str | os.PathLike[str] | None = None,
    backend: Any = None,
    progress: bool = True,
) -> ValidationReport:
    """Predict `n` random subnets with `table`, measure them whole with the anchor-paired protocol, compare.

    Args:
        space, table, profile: what to check, with what, where.
        n, seed: how many random subnets, and their seed.
        resolutions: resolutions to sample (default: the table's).
        protocol: paired-timing settings (default: the profile's).
        calibrate: also fit ``measured ~ a * sum + b`` on the first half and score the second half.
        work_dir: where the subnet models go (default: the shared profiling model cache).
        out_path: save the report JSON here.
    """
    from ofa_deploy.predictors.latency import LatencyPredictor
    from ofa_deploy.profiling.hosts.fingerprint import check_table_host
    from ofa_deploy.profiling.timing.measure import anchor_for

    start = time.perf_counter()
    res = list(resolutions or table_resolutions(table))
    if not res:
        raise ConfigError("the latency table has no stem entries, so its resolutions are unknown; pass resolutions=")
    cfgs = sample_configs(space, n, res, seed)
    predictor = LatencyPredictor(space, table)
    predicted = predictor.predict(cfgs)
    raw = LatencyPredictor(space, table, calibrated=False).predict(cfgs)
    run, reference = measure_subnets(space, cfgs, profile, table=table, protocol=protocol,
                                     work_dir=Path(work_dir) if work_dir else None, backend=backend,
                                     progress=progress)
    results = [run.results[i] for i in range(len(cfgs))]
    ref = reference if reference is not None else run.anchor_ms
    measured = np.array([r.ms(ref) for r in results])
    halves = np.array([r.halves() for r in results]) * ref
    host = check_table_host(table, profile)
    report = ValidationReport(
        space=space.name, profile=getattr(profile, "name", str(profile)), configs=[c.to_string() for c in cfgs],
        predicted_ms=[float(x) for x in predicted], measured_ms=measured.tolist(),
        pass_a_ms=halves[:, 0].tolist(), pass_b_ms=halves[:, 1].tolist(),
        metrics=agreement(predicted, measured), noise_floor=agreement(halves[:, 0], halves[:, 1]),
        raw_predicted_ms=[float(x) for x in raw], raw_metrics=agreement(raw, measured),
        scaled_metrics=scaled_agreement(raw, measured), wall_ms=[r.wall_ms for r in results],
        intervals_ms=[list(r.interval_ms(ref)) for r in results], converged=sum(r.converged for r in results),
        reference="table anchor" if reference is not None else "wall clock of this run (table has no anchor)",
        anchor={"config": anchor_for(space, table, profile).to_string(), "table_ms": reference,
                "run_ms": run.anchor_ms, "swing": run.anchor_swing},
        host=host.to_dict(), protocol=run.summary(),
    )
    if calibrate and len(cfgs) >= 4:
        half = len(cfgs) // 2
        fitter = LatencyPredictor(space, table, calibrated=False)
        fit = fitter.fit_calibration(cfgs[:half], measured[:half])
        held_out = fitter.predict(cfgs[half:])
        report.calibrated = {"fit": fit.to_dict(), "fit_on": half, "held_out": agreement(held_out, measured[half:])}
    report.seconds = time.perf_counter() - start
    if out_path is not None:
        report.save(out_path)
    log.info("validation of %s on %s: %s (noise floor %s)", space.name, report.profile, report.metrics,
             report.noise_floor)
    return report
