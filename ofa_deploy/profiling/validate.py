"""Check a latency table against whole-subnet measurements on the same backend.

N random subnets are exported whole (random init: weights do not change latency; BN folded by the exporter)
and timed exactly like the layers: per-round minima over several rounds, interleaved across subnets in a
fresh order each round (`time_interleaved`). Two independent passes are made; their agreement is the noise
floor, i.e. the best any predictor could score against one pass. The predicted-vs-measured figures use both
passes together. Optionally a linear calibration is fitted on one half and scored on the other.
"""
from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ofa_deploy.errors import ConfigError
from ofa_deploy.profiling.timer import TimerSettings, time_interleaved
from ofa_deploy.spaces import SearchSpace, SubnetConfig

log = logging.getLogger(__name__)


def agreement(predicted: Sequence[float], measured: Sequence[float], *, tolerance: float = 0.10) -> dict[str, float]:
    """Share within ±tolerance, Spearman, Kendall, mean/max abs % error, mean signed % error."""
    from scipy import stats

    p = np.asarray(predicted, dtype=float)
    m = np.asarray(measured, dtype=float)
    if p.shape != m.shape or p.size < 2:
        raise ConfigError(f"agreement needs two equal-length series of >= 2 values, got {p.shape} and {m.shape}")
    rel = (p - m) / m
    return {
        "n": int(p.size),
        "within_10pct": float(np.mean(np.abs(rel) <= tolerance)),
        "spearman": float(stats.spearmanr(p, m).statistic),
        "kendall": float(stats.kendalltau(p, m).statistic),
        "mean_abs_pct_error": float(np.mean(np.abs(rel)) * 100),
        "max_abs_pct_error": float(np.max(np.abs(rel)) * 100),
        "mean_pct_error": float(np.mean(rel) * 100),
    }


@dataclass
class ValidationReport:
    """Predicted vs measured whole-subnet latency, the noise floor, and (optionally) a calibrated split."""

    space: str
    profile: str
    configs: list[str]
    predicted_ms: list[float]
    measured_ms: list[float]
    pass_a_ms: list[float]
    pass_b_ms: list[float]
    metrics: dict[str, float]
    noise_floor: dict[str, float]
    calibrated: dict[str, Any] = field(default_factory=dict)
    timer: dict[str, Any] = field(default_factory=dict)
    drift: dict[str, float] = field(default_factory=dict)
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


def export_subnets(space: SearchSpace, cfgs: Sequence[SubnetConfig], out_dir: Path, *, batch_size: int = 1
                   ) -> list[Path]:
    """One ONNX file per subnet (random init with a fixed seed: file names are content keys); reused if present."""
    import torch

    from ofa_deploy.export.onnx import torch_to_onnx
    from ofa_deploy.nn.layers import SubnetModel

    paths = []
    for i, cfg in enumerate(cfgs):
        path = out_dir / f"{cfg.to_string().replace(',', '_')}_b{batch_size}.onnx"
        if not path.is_file():
            torch.manual_seed(0)
            torch_to_onnx(SubnetModel(space.walk_layers(cfg)), path, dynamic_batch=False,
                          input_shape=(batch_size, 3, cfg.resolution, cfg.resolution))
        paths.append(path)
    return paths


def validate_lut(
    space: SearchSpace,
    table: Any,
    profile: Any,
    n: int = 50,
    seed: int = 0,
    *,
    resolutions: Sequence[int] | None = None,
    timer: TimerSettings | None = None,
    calibrate: bool = True,
    work_dir: str | os.PathLike[str] | None = None,
    out_path: str | os.PathLike[str] | None = None,
    backend: Any = None,
    progress: bool = True,
) -> ValidationReport:
    """Predict `n` random subnets with `table`, measure them whole on `profile`'s backend, compare.

    Args:
        space, table, profile: what to check, with what, where.
        n, seed: how many random subnets, and their seed.
        resolutions: resolutions to sample (default: the table's).
        timer: timing settings (default: the profile's); the two passes use seeds `seed` and `seed + 1`.
        calibrate: also fit ``measured ~ a * sum + b`` on the first half and score the second half.
        work_dir: where the subnet models go (default: a temporary directory).
        out_path: save the report JSON here.
    """
    import tempfile

    from ofa_deploy.predictors.latency import LatencyPredictor
    from ofa_deploy.profiling.backends import create_backend

    start = time.perf_counter()
    res = list(resolutions or table_resolutions(table))
    if not res:
        raise ConfigError("the latency table has no stem entries, so its resolutions are unknown; pass resolutions=")
    cfgs = sample_configs(space, n, res, seed)
    predictor = LatencyPredictor(space, table)
    predicted = predictor.predict(cfgs)
    settings = timer or TimerSettings.from_profile(profile)
    backend = backend or create_backend(profile)
    batch = int(getattr(profile, "batch_size", 1))
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(work_dir) if work_dir else Path(tmp)
        model_dir.mkdir(parents=True, exist_ok=True)
        paths = export_subnets(space, cfgs, model_dir, batch_size=batch)
        runners = {i: backend.prepare(p, (batch, 3, c.resolution, c.resolution)) for i, (p, c) in
                   enumerate(zip(paths, cfgs))}
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=2 * settings.rounds * len(cfgs), desc="validating", unit="run", file=sys.stderr,
                       leave=False)
        try:
            step = bar.update if bar is not None else None
            anchors = [0] if len(cfgs) > 1 else []
            pass_a = time_interleaved(runners, settings, anchors=anchors, progress=step)
            settings_b = TimerSettings(**{**settings.to_dict(), "seed": settings.seed + 1})
            pass_b = time_interleaved(runners, settings_b, anchors=anchors, progress=step)
        finally:
            if bar is not None:
                bar.close()
            for r in runners.values():
                r.close()
    a = np.array([pass_a.samples[i].estimate for i in range(len(cfgs))])
    b = np.array([pass_b.samples[i].estimate for i in range(len(cfgs))])
    both = np.array([np.median(pass_a.samples[i].per_round + pass_b.samples[i].per_round) for i in range(len(cfgs))])
    report = ValidationReport(
        space=space.name, profile=getattr(profile, "name", str(profile)), configs=[c.to_string() for c in cfgs],
        predicted_ms=[float(x) for x in predicted], measured_ms=both.tolist(), pass_a_ms=a.tolist(),
        pass_b_ms=b.tolist(), metrics=agreement(predicted, both), noise_floor=agreement(a, b),
        timer=settings.to_dict(), drift={"a": pass_a.drift_summary(), "b": pass_b.drift_summary()},
    )
    if calibrate and len(cfgs) >= 4:
        half = len(cfgs) // 2
        fit = predictor.fit_calibration(cfgs[:half], both[:half])
        held_out = predictor.predict(cfgs[half:])
        report.calibrated = {"fit": fit.to_dict(), "fit_on": half, "held_out": agreement(held_out, both[half:])}
    report.seconds = time.perf_counter() - start
    if out_path is not None:
        report.save(out_path)
    log.info("validation of %s on %s: %s (noise floor %s)", space.name, report.profile, report.metrics,
             report.noise_floor)
    return report
