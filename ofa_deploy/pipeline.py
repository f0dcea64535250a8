"""deploy: search under a budget → extract → export → measure on the target → report.

One call takes a supernet, an accuracy predictor and a hardware profile (with its latency table, built
on the fly for small spaces) to an exported, measured model and a run directory::

    run/
      report.json      everything below, machine-readable
      summary.md       the same for people
      pareto.png       predicted accuracy vs latency: the Pareto front, the chosen subnet, the measured points
      lut.json         the latency table used (when it was built for this run)
      model/           the exported best subnet (ONNX + export_report.json; TVM adds model_tvm/)
      checks/          exported comparison subnets timed alongside it (predicted vs measured)

Progress goes to the logger and the optional `progress` callback (the CLI prints it on stderr).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ofa_deploy.errors import ConfigError
from ofa_deploy.fileio import atomic_write_json
from ofa_deploy.search import Budget, EvolutionSettings, GeneDomain, evolution_search, feasible_range
from ofa_deploy.search.inputs import predictor_threads
from ofa_deploy.search.objectives import Objective, accuracy_objective, latency_objective, macs_objective
from ofa_deploy.search.pareto import ParetoSettings, pareto_search
from ofa_deploy.spaces.config import SubnetConfig

log = logging.getLogger(__name__)

Progress = Callable[[str], None]


@dataclass(frozen=True)
class DeployRequest:
    """What to deploy, where, and under which budget.

    Attributes:
        out_dir: the run directory (created; an existing one is reused, files are replaced).
        profile: hardware profile name or YAML path (e.g. ``"ort-cpu-1t"``).
        lut: latency table file for the profile; None: build one for the space on the profile now
            (cached at `lut_cache` when given; meant for small spaces such as the demo's).
        latency_budget_ms: upper bound on predicted latency; None: `budget_fraction` of the way from
            the fastest to the slowest subnet (always feasible).
        macs_budget: optional upper bound on MACs (millions).
        resolutions: search only these resolutions (default: all of the predictor's space).
        generations, population, seed: evolution settings (OFA's defaults: 500, 100).
        pareto_generations: NSGA-II generations for the front in the plot and report (0: skip).
        n_checks: how many other front subnets to export and time next to the chosen one.
        timing_rounds, timing_repeats: override the profile's timer (LUT build and measurement).
        search_threads: torch threads while searching (None: leave as is).
        validate_export: compare exported outputs to PyTorch.
    """

    out_dir: Path
    profile: str = "ort-cpu-1t"
    lut: Path | None = None
    lut_cache: Path | None = None
    latency_budget_ms: float | None = None
    budget_fraction: float = 0.35
    macs_budget: float | None = None
    resolutions: tuple[int, ...] | None = None
    generations: int = 500
    population: int = 100
    seed: int = 0
    pareto_generations: int = 60
    n_checks: int = 3
    timing_rounds: int | None = None
    timing_repeats: int | None = None
    validate_export: bool = True
    search_threads: int | None = 1

    def to_dict(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else list(v) if isinstance(v, tuple) else v)
                for k, v in asdict(self).items()}


@dataclass
class DeployResult:
    """What `deploy` produced (also written to ``report.json``)."""

    out_dir: Path
    config: SubnetConfig
    predicted: dict[str, float]           # accuracy (%), latency (ms), macs (M)
    measured: dict[str, float]            # latency_ms (+ top1 (%) when data was given)
    budget: dict[str, Any]
    report: dict[str, Any] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)


def _say(progress: Progress | None, msg: str) -> None:
    log.info(msg)
    if progress is not None:
        progress(msg)


def deploy(request: DeployRequest, *, supernet: Any, predictor: Any, data: Any = None,
           supernet_name: str | None = None, progress: Progress | None = None) -> DeployResult:
    """Run the whole pipeline.

    Args:
        request: settings (see `DeployRequest`).
        supernet: a `Supernet` with trained (or random) weights; its space must match the predictor's.
        predictor: an `AccuracyPredictor` (batched ``predict_genes``) for the supernet's space.
        data: `DataSplits` for BN recalibration and the measured top-1 on the holdout (optional).
        supernet_name: name shown in reports (default: the space name).
    """
    from ofa_deploy.predictors.latency import LatencyPredictor, MacsPredictor
    from ofa_deploy.profiling.hardware import HardwareProfile

    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    out = Path(request.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    space = supernet.space  # the network that is deployed; the predictor only has to share its gene layout
    _check_same_space(predictor.space, space)
    profile = HardwareProfile.load(request.profile)
    name = supernet_name or space.name

    # ---- latency table ------------------------------------------------------------------------------
    t0 = time.perf_counter()
    domain = GeneDomain.for_space(space, resolutions=request.resolutions)
    table, lut_info = _latency_table(request, space, domain.resolutions, profile, out, progress)
    timings["lut_s"] = time.perf_counter() - t0

    acc = accuracy_objective(predictor)
    lat = latency_objective(LatencyPredictor(space, table), target=profile.name)
    macs = macs_objective(MacsPredictor(space))

    # ---- budget and search ---------------------------------------------------------------------------
    t0 = time.perf_counter()
    lat_range = feasible_range(domain, lat)
    limit = request.latency_budget_ms
    if limit is None:
        limit = round(lat_range.low + request.budget_fraction * (lat_range.high - lat_range.low), 4)
        _say(progress, f"latency budget {limit:.4g} ms picked at {request.budget_fraction:.0%} of the feasible range "
                       f"{lat_range.low:.4g}..{lat_range.high:.4g} ms")
    budgets = [Budget(lat, float(limit))]
    if request.macs_budget is not None:
        budgets.append(Budget(macs, float(request.macs_budget)))
    _say(progress, f"searching {space.name} ({domain.describe_resolutions()}): {request.generations} generations x "
                   f"{request.population}, budget {', '.join(b.describe() for b in budgets)}")
    with predictor_threads(request.search_threads):
        result = evolution_search(domain=domain, objective=acc, budgets=budgets, seed=request.seed,
                                  settings=EvolutionSettings(population_size=request.population,
                                                             generations=request.generations))
    timings["search_s"] = time.perf_counter() - t0
    best = result.best_genes[None, :]
    cfg = result.best_config
    predicted = {"accuracy": result.score, "latency_ms": float(lat.predict_genes(best)[0]),
                 "macs_m": float(macs.predict_genes(best)[0])}
    _say(progress, f"best: {cfg.to_string()}  predicted {predicted['accuracy']:.2f}% @ "
                   f"{predicted['latency_ms']:.4g} ms, {predicted['macs_m']:.4g}M MACs "
                   f"({result.timings['total_s']:.2f} s)")

    front = None
    if request.pareto_generations > 0:
        t0 = time.perf_counter()
        with predictor_threads(request.search_threads):
            front = pareto_search(domain=domain, objectives=[acc, lat, macs], seed=request.seed,
                                  settings=ParetoSettings(population_size=request.population,
                                                          generations=request.pareto_generations))
        timings["pareto_s"] = time.perf_counter() - t0
        _say(progress, f"Pareto front: {len(front)} subnets ({timings['pareto_s']:.1f} s)")

    # ---- extract, recalibrate, export ------------------------------------------------------------
    checks = _check_configs(cfg, front, lat, request.n_checks)
    exported: dict[str, dict[str, Any]] = {}
    t0 = time.perf_counter()
    for key, c in [("best", cfg), *checks]:
        target_dir = out / "model" if key == "best" else out / "checks" / key
        _say(progress, f"extract + export {key}: {c.to_string()}")
        exported[key] = _extract_and_export(supernet, c, data, target_dir, profile, request.validate_export)
    timings["export_s"] = time.perf_counter() - t0

    # ---- measure on the target ------------------------------------------------------------------------
    t0 = time.perf_counter()
    _say(progress, f"timing {len(exported)} exported model(s) on {profile.name} (interleaved rounds)")
    measured_ms, timing_info = _measure(exported, profile, request)
    timings["measure_s"] = time.perf_counter() - t0
    cfgs = {"best": cfg, **dict(checks)}
    genes = space.to_genes([cfgs[k] for k in exported])
    pred_ms = dict(zip(exported, lat.predict_genes(genes)))
    pred_acc = dict(zip(exported, acc.predict_genes(genes)))
    points = []
    for key in exported:
        row = {"name": key, "config": cfgs[key].to_string(), "predicted_latency_ms": float(pred_ms[key]),
               "measured_latency_ms": float(measured_ms[key]), "predicted_accuracy": float(pred_acc[key]),
               "ratio": float(measured_ms[key] / pred_ms[key]) if pred_ms[key] else None}
        if exported[key].get("top1") is not None:
            row["measured_top1"] = exported[key]["top1"]
        points.append(row)
    measured = {"latency_ms": float(measured_ms["best"])}
    if exported["best"].get("top1") is not None:
        measured["top1"] = exported["best"]["top1"]
    timings["total_s"] = time.perf_counter() - t_start

    report = {
        "supernet": name, "space": space.name, "profile": profile.to_dict(), "request": request.to_dict(),
        "budget": {"latency_ms": float(limit), "macs_m": request.macs_budget,
                   "feasible_latency_ms": [lat_range.low, lat_range.high]},
        "best": {"config": cfg.to_dict(), "config_string": cfg.to_string(), "predicted": predicted,
                 "measured": measured},
        "predicted_vs_measured": {"points": points, **_agreement(points)},
        "search": {k: v for k, v in result.to_dict().items() if k not in ("best_config",)},
        "pareto": front.to_dict() if front is not None else None,
        "lut": lut_info,
        "export": {k: v["report"] for k, v in exported.items()},
        "timing": timing_info,
        "timings_s": timings,
    }
    from ofa_deploy.report import write_run_report

    files = write_run_report(out, report)
    files["model"] = str(out / "model")
    _say(progress, f"done in {timings['total_s']:.1f} s: {out}")
    return DeployResult(out_dir=out, config=cfg, predicted=predicted, measured=measured, budget=report["budget"],
                        report=report, files=files)


# ---- steps ---------------------------------------------------------------------------------------------
def _check_same_space(a: Any, b: Any) -> None:
    """The predictor's space `a` must have the supernet's gene layout `b` (widths may differ: a
    predictor header stores the genes, not the channel widths)."""
    if a.genes() != b.genes() or type(a) is not type(b):
        raise ConfigError(f"the accuracy predictor's space ({a.name}, {len(a.genes())} genes) does not match the "
                          f"supernet's ({b.name}, {len(b.genes())} genes); train or load the predictor for this "
                          "supernet")


def _latency_table(request: DeployRequest, space: Any, resolutions: Sequence[int], profile: Any, out: Path,
                   progress: Progress | None) -> tuple[Any, dict[str, Any]]:
    from ofa_deploy.profiling.lut import LatencyTable

    if request.lut is not None:
        table = LatencyTable.load(request.lut)
        return table, {"path": str(request.lut), "built": False, "entries": len(table)}
    path = Path(request.lut_cache) if request.lut_cache else out / "lut.json"
    if path.is_file():
        table = LatencyTable.load(path)
        from ofa_deploy.predictors.latency import LatencyPredictor

        if not any(LatencyPredictor(space, table).check_coverage(list(resolutions)).values()):
            _say(progress, f"reusing latency table {path} ({len(table)} layers)")
            return table, {"path": str(path), "built": False, "entries": len(table), "reused": True}
    from ofa_deploy.profiling.builder import build_lut

    _say(progress, f"building a latency table for {space.name} at {list(resolutions)} on {profile.name} -> {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    from ofa_deploy.profiling.timer import TimerSettings

    timer = TimerSettings.from_profile(profile, rounds=request.timing_rounds, repeats=request.timing_repeats)
    built = build_lut(space, list(resolutions), profile, path, progress=progress is not None, timer=timer)
    return built.table, {"path": str(path), "built": True, **built.summary()}


def _check_configs(best: SubnetConfig, front: Any, lat: Objective, n: int) -> list[tuple[str, SubnetConfig]]:
    """Up to `n` front subnets spread over latency (not the best one), to test the LUT next to it."""
    if front is None or n <= 0 or len(front) == 0:
        return []
    order = np.argsort(front.values[lat.label], kind="stable")
    picks = np.unique(np.linspace(0, len(order) - 1, n + 2).round().astype(int))
    out: list[tuple[str, SubnetConfig]] = []
    best_s = best.to_string()
    for i in picks:
        c = front.configs[int(order[i])]
        if c.to_string() != best_s and all(c.to_string() != o.to_string() for _, o in out):
            out.append((f"check{len(out) + 1}", c))
        if len(out) == n:
            break
    return out


def _extract_and_export(supernet: Any, cfg: SubnetConfig, data: Any, out_dir: Path, profile: Any,
                        validate: bool) -> dict[str, Any]:
    from ofa_deploy.export.onnx import export_onnx
    from ofa_deploy.nn.bn import recalibrate_bn

    model = supernet.extract(cfg).eval()
    n_calib = 0
    if data is not None:
        n_calib = recalibrate_bn(model, data.calibration.batches(cfg.resolution, 256))
    shape = (int(profile.batch_size), 3, cfg.resolution, cfg.resolution)
    report = export_onnx(model, out_dir, input_shape=shape, validate=validate, overwrite=True,
                         subnet_info={"config": cfg.to_dict(), "config_string": cfg.to_string()})
    onnx_path = report.path("model")
    info: dict[str, Any] = {"onnx": onnx_path, "shape": shape, "report": report.to_dict(), "bn_images": n_calib}
    if profile.backend == "tvm":
        from ofa_deploy.export.tvm import export_tvm

        tvm_report = export_tvm(onnx_path, out_dir.parent / (out_dir.name + "_tvm"), target=profile.tvm_target,
                                input_shape=shape, reference=model, validate=validate, overwrite=True)
        info["report"] = {"onnx": info["report"], "tvm": tvm_report.to_dict()}
    if data is not None:
        info["top1"] = 100.0 * _onnx_top1(onnx_path, data, cfg.resolution)
    return info


def _onnx_top1(onnx_path: Path, data: Any, resolution: int) -> float:
    """Top-1 of the exported model on the holdout, run in ONNX Runtime."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    correct = total = 0
    for images, labels in data.holdout.batches(resolution, 256):
        logits = sess.run(None, {name: images.numpy()})[0]
        correct += int((logits.argmax(axis=1) == labels.numpy()).sum())
        total += int(labels.shape[0])
    return correct / max(total, 1)


def _measure(exported: dict[str, dict[str, Any]], profile: Any, request: DeployRequest
             ) -> tuple[dict[str, float], dict[str, Any]]:
    from ofa_deploy.profiling.backends import create_backend
    from ofa_deploy.profiling.timer import TimerSettings, time_interleaved

    backend = create_backend(profile)
    settings = TimerSettings.from_profile(profile, rounds=request.timing_rounds, repeats=request.timing_repeats)
    runners = {k: backend.prepare(v["onnx"], v["shape"]) for k, v in exported.items()}
    try:
        res = time_interleaved(runners, settings)
    finally:
        for r in runners.values():
            r.close()
        backend.close()
    est = res.estimates()
    info = {"backend": backend.describe(), "settings": settings.to_dict(), "seconds": res.seconds,
            "per_model": {k: s.summary() for k, s in res.samples.items()}}
    return {k: float(est[k]) for k in exported}, info


def _agreement(points: list[dict[str, Any]]) -> dict[str, Any]:
    ratios = np.array([p["ratio"] for p in points if p["ratio"]], dtype=float)
    if ratios.size == 0:
        return {}
    out: dict[str, Any] = {"n": int(ratios.size), "median_ratio": float(np.median(ratios)),
                           "within_10pct": float(np.mean(np.abs(ratios - 1) <= 0.10)),
                           "within_25pct": float(np.mean(np.abs(ratios - 1) <= 0.25))}
    if ratios.size >= 3:
        from scipy.stats import spearmanr

        pred = [p["predicted_latency_ms"] for p in points]
        meas = [p["measured_latency_ms"] for p in points]
        out["spearman"] = float(spearmanr(pred, meas).statistic)
    return out


def save_json(path: Path, data: Any) -> None:
    atomic_write_json(path, data)
