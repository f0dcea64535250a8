"""deploy: search under a budget → extract → export → measure on the target → verify the budget → report.

One call takes a supernet, an accuracy predictor and a hardware profile (with its latency table, built
on the fly for small spaces) to an exported, measured model and a run directory::

    run/
      report.json      everything below, machine-readable
      summary.md       the same for people
      pareto.png       predicted accuracy vs latency: the Pareto front, the chosen subnet, the measured points
      lut.json         the latency table used (when it was built for this run)
      model/           the exported subnet that was shipped (ONNX + export_report.json; TVM adds model_tvm/)
      tries/           every pick exported and measured while verifying the budget
      checks/          exported comparison subnets timed alongside it (predicted vs measured)

**Budget verification.** The pick is measured on the target with the anchor-paired protocol against the
table's anchor. Its latency at the table's reference speed is the measured ratio times the anchor time stored
with the table, so a machine that is momentarily slower or faster does not flip the verdict (the raw wall-clock
figure is reported beside it). If the upper end of its 95% interval exceeds the budget, the next subnet is
searched under a predicted budget tightened by the worst measured/predicted ratio seen so far, exported and
measured, up to `max_tries` picks. The report's ``budget`` says whether the shipped model was verified;
`BudgetNotVerifiedError` (CLI exit 4) is raised after the report is written when none was.

A table measured on another host (its fingerprint differs from this one's) is refused unless
`allow_foreign_lut`.

Progress goes to the logger and the optional `progress` callback (the CLI prints it on stderr).
"""
from __future__ import annotations

import hashlib
import json
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
        max_tries: picks exported and measured at most while verifying the budget.
        allow_foreign_lut: use a table measured on another host (its verdicts are then about that host's speed).
        verify_budget: measure the pick against the budget and retry; False: measure and report only.
        extra_luts, ofa_luts: latency tables of other devices (ofa-deploy JSON, OFA YAML directories): extra
            objectives the search respects (with a budget in `device_budgets`) and the report predicts; the model
            is measured on the profile's target only, so their figures stay predictions.
        device_budgets: (device, ms) budgets on those tables, by their device/profile name (e.g. ``note10``).
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
    max_tries: int = 4
    allow_foreign_lut: bool = False
    verify_budget: bool = True
    extra_luts: tuple[Path, ...] = ()
    ofa_luts: tuple[Path, ...] = ()
    device_budgets: tuple[tuple[str, float], ...] = ()

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

    Raises:
        BudgetNotVerifiedError: no pick was verified under the budget (the run dir and report are written).
        ForeignTableError: the table was measured on another host and `allow_foreign_lut` is False.
    """
    from ofa_deploy.predictors.latency import LatencyPredictor, MacsPredictor
    from ofa_deploy.profiling.hardware import HardwareProfile

    if request.max_tries < 1:
        raise ConfigError(f"max_tries must be >= 1, got {request.max_tries}")
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    out = Path(request.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # the searched space: the supernet's, restricted to the resolutions the predictor covers (and the request's)
    space = _search_space(predictor, supernet.space, request.resolutions, progress)
    profile = HardwareProfile.load(request.profile)
    name = supernet_name or supernet.space.name

    # ---- latency tables -----------------------------------------------------------------------------
    t0 = time.perf_counter()
    table, lut_info = _latency_table(request, space, space.resolutions, profile, out, progress)
    lut_info["host"] = _check_host(table, profile, request, progress)
    lut_info.update(unit=table.unit, anchor=table.anchor.to_dict() if table.anchor else None,
                    calibration=table.calibration.to_dict() if not table.calibration.is_identity else None)
    others = _other_tables(request, space, profile.name)
    space = _restrict_to_tables(space, [LatencyPredictor(space, t) for t in (table, *(t for _, _, t in others))],
                                request.resolutions, progress)
    extras = [latency_objective(LatencyPredictor(space, t), target=label) for label, _, t in others]
    predictor = _predictor_for(predictor, space)
    domain = GeneDomain.for_space(space)
    timings["lut_s"] = time.perf_counter() - t0

    acc = accuracy_objective(predictor)
    lat = latency_objective(LatencyPredictor(space, table), target=profile.name)
    macs = macs_objective(MacsPredictor(space))
    device_budgets = _device_budgets(request, profile.name, extras)

    # ---- budget and search ---------------------------------------------------------------------------
    t0 = time.perf_counter()
    lat_range = feasible_range(domain, lat)
    limit = request.latency_budget_ms if request.latency_budget_ms is not None else \
        dict(request.device_budgets).get(profile.name)
    if limit is None:
        limit = round(lat_range.low + request.budget_fraction * (lat_range.high - lat_range.low), 4)
        _say(progress, f"latency budget {limit:.4g} ms picked at {request.budget_fraction:.0%} of the feasible range "
                       f"{lat_range.low:.4g}..{lat_range.high:.4g} ms")
    limit = float(limit)
    search = _Searcher(domain, acc, lat, macs, request, progress,
                       extra=[Budget(o, device_budgets[o.target]) for o in extras if o.target in device_budgets])
    result = search.best(limit)
    timings["search_s"] = time.perf_counter() - t0
    cfg = result.best_config

    front = None
    if request.pareto_generations > 0:
        t0 = time.perf_counter()
        with predictor_threads(request.search_threads):
            front = pareto_search(domain=domain, objectives=[acc, lat, *extras, macs], seed=request.seed,
                                  settings=ParetoSettings(population_size=request.population,
                                                          generations=request.pareto_generations))
        timings["pareto_s"] = time.perf_counter() - t0
        _say(progress, f"Pareto front: {len(front)} subnets ({timings['pareto_s']:.1f} s)")

    # ---- extract, recalibrate, export ------------------------------------------------------------
    checks = _check_configs(cfg, front, lat, request.n_checks)
    exported: dict[str, dict[str, Any]] = {}
    t0 = time.perf_counter()
    for key, c in [("try1", cfg), *checks]:
        target_dir = out / "tries" / key if key == "try1" else out / "checks" / key
        _say(progress, f"extract + export {key}: {c.to_string()}")
        exported[key] = _extract_and_export(supernet, c, data, target_dir, profile, request.validate_export)
    timings["export_s"] = time.perf_counter() - t0

    # ---- measure on the target and verify the budget ----------------------------------------------
    t0 = time.perf_counter()
    meter = _Meter(supernet.space, table, profile, request, progress, out)
    measured_now = meter.measure(exported)
    cfgs: dict[str, SubnetConfig] = {"try1": cfg, **dict(checks)}
    tries = [_try_record("try1", space, cfg, lat, acc, measured_now["try1"], limit, limit)]
    _say(progress, _try_line(tries[-1], limit))
    while request.verify_budget and not tries[-1]["verified"] and len(tries) < request.max_tries:
        worst = max(t["measured_hi_ms"] / t["predicted_ms"] for t in tries)
        predicted_budget = limit / worst
        if predicted_budget < lat_range.low:
            _say(progress, f"no retry: the tightened predicted budget {predicted_budget:.4g} ms is below the fastest "
                           f"predicted subnet ({lat_range.low:.4g} ms)")
            break
        t1 = time.perf_counter()
        nxt = search.best(predicted_budget, exclude=[t["config"] for t in tries]).best_config
        key = f"try{len(tries) + 1}"
        _say(progress, f"{key}: predicted budget tightened to {predicted_budget:.4g} ms (worst measured/predicted "
                       f"{worst:.3f}); extract + export {nxt.to_string()}")
        exported[key] = _extract_and_export(supernet, nxt, data, out / "tries" / key, profile,
                                            request.validate_export)
        cfgs[key] = nxt
        measured_now.update(meter.measure({key: exported[key]}))
        tries.append(_try_record(key, space, nxt, lat, acc, measured_now[key], limit, predicted_budget))
        _say(progress, _try_line(tries[-1], limit))
        timings["retry_s"] = timings.get("retry_s", 0.0) + time.perf_counter() - t1
    timings["measure_s"] = time.perf_counter() - t0 - timings.get("retry_s", 0.0)
    shipped = _pick_shipped(tries)
    _publish_model(exported[shipped["name"]], out / "model")
    ship_cfg = cfgs[shipped["name"]]
    verified = bool(shipped["verified"])

    genes = space.to_genes([cfgs[k] for k in exported])
    pred_ms = dict(zip(exported, lat.predict_genes(genes)))
    pred_acc = dict(zip(exported, acc.predict_genes(genes)))
    points = []
    for key in exported:
        m = measured_now[key]
        row = {"name": "best" if key == shipped["name"] else key, "try": key, "config": cfgs[key].to_string(),
               "predicted_latency_ms": float(pred_ms[key]), "measured_latency_ms": m.ms,
               "measured_interval_ms": list(m.interval_ms), "measured_wall_ms": m.wall_ms,
               "predicted_accuracy": float(pred_acc[key]),
               "ratio": float(m.ms / pred_ms[key]) if pred_ms[key] else None}
        if exported[key].get("top1") is not None:
            row["measured_top1"] = exported[key]["top1"]
        points.append(row)
    points.sort(key=lambda p: p["name"] != "best")
    ship_genes = space.to_genes([ship_cfg])
    predicted = {"accuracy": float(acc.predict_genes(ship_genes)[0]), "latency_ms": float(pred_ms[shipped["name"]]),
                 "macs_m": float(macs.predict_genes(ship_genes)[0])}
    devices = [{"device": o.target, "predicted_ms": float(o.predict_genes(ship_genes)[0]),
                "budget_ms": device_budgets.get(o.target), "table": source,
                "verdict": "predicted only: this device is not here to measure on"}
               for o, (_, source, _) in zip(extras, others)]
    best_m = measured_now[shipped["name"]]
    measured = {"latency_ms": best_m.ms, "latency_interval_ms": list(best_m.interval_ms),
                "wall_ms": best_m.wall_ms}
    if exported[shipped["name"]].get("top1") is not None:
        measured["top1"] = exported[shipped["name"]]["top1"]
    timings["total_s"] = time.perf_counter() - t_start

    budget = {"ms": limit, "latency_ms": limit, "verified": verified, "measured_ms": best_m.ms,
              "interval": list(best_m.interval_ms), "wall_ms": best_m.wall_ms,
              "reference": meter.reference_label, "macs_m": request.macs_budget,
              "feasible_latency_ms": [lat_range.low, lat_range.high], "tries": tries,
              "message": _budget_message(verified, shipped, tries, limit)}
    report = {
        "supernet": name, "space": space.name, "profile": profile.to_dict(), "request": request.to_dict(),
        "budget": budget,
        "other_devices": devices,
        "searched_resolutions": list(space.resolutions),
        "data": data.describe() if data is not None else None,
        "best": {"config": ship_cfg.to_dict(), "config_string": ship_cfg.to_string(), "try": shipped["name"],
                 "predicted": predicted, "measured": measured},
        "predicted_vs_measured": {"points": points, **_agreement(points)},
        "search": {k: v for k, v in result.to_dict().items() if k not in ("best_config",)},
        "pareto": front.to_dict() if front is not None else None,
        "lut": lut_info,
        "export": {k: v["report"] for k, v in exported.items()},
        "timing": meter.info,
        "timings_s": timings,
    }
    from ofa_deploy.report import write_run_report

    files = write_run_report(out, report)
    files["model"] = str(out / "model")
    verdict = "verified under budget" if verified else "NOT verified under budget"
    _say(progress, f"done in {timings['total_s']:.1f} s, {verdict}: {budget['message']}: {out}")
    deployed = DeployResult(out_dir=out, config=ship_cfg, predicted=predicted, measured=measured, budget=budget,
                            report=report, files=files)
    if request.verify_budget and not verified:
        from ofa_deploy.errors import BudgetNotVerifiedError

        raise BudgetNotVerifiedError(f"NOT verified under budget: {budget['message']}; the report is in {out}",
                                     report=deployed)
    return deployed


# ---- budget verification ---------------------------------------------------------------------------------
class _Searcher:
    """Evolution under a latency budget (plus the optional MACs budget and other devices' budgets), skipping
    configs already tried."""

    def __init__(self, domain: GeneDomain, acc: Objective, lat: Objective, macs: Objective, request: DeployRequest,
                 progress: Progress | None, extra: Sequence[Budget] = ()) -> None:
        self.domain, self.acc, self.lat, self.macs = domain, acc, lat, macs
        self.request = request
        self.progress = progress
        self.extra = list(extra)

    def best(self, latency_ms: float, exclude: Sequence[str] = ()) -> Any:
        budgets = [Budget(self.lat, float(latency_ms)), *self.extra]
        if self.request.macs_budget is not None:
            budgets.append(Budget(self.macs, float(self.request.macs_budget)))
        _say(self.progress, f"searching {self.domain.space.name} ({self.domain.describe_resolutions()}): "
                            f"{self.request.generations} generations x {self.request.population}, budget "
                            f"{', '.join(b.describe() for b in budgets)}")
        for attempt in range(4):
            with predictor_threads(self.request.search_threads):
                result = evolution_search(domain=self.domain, objective=self.acc, budgets=budgets,
                                          seed=self.request.seed + attempt,
                                          settings=EvolutionSettings(population_size=self.request.population,
                                                                     generations=self.request.generations))
            if result.best_config.to_string() not in exclude:
                break
            budgets[0] = Budget(self.lat, budgets[0].limit * 0.98)  # same pick again: ask for a slightly faster one
        _say(self.progress, f"best: {result.best_config.to_string()}  predicted {result.score:.2f}% @ "
                            f"{float(self.lat.predict_genes(result.best_genes[None, :])[0]):.4g} ms "
                            f"({result.timings['total_s']:.2f} s)")
        return result


class _Meter:
    """Measures exported models against the table's anchor; remembers the anchor model and the run info.

    Every measurement is also written (atomically) to ``<out>/measurements.json`` under a key of the subnet,
    the profile, the anchor, the reference time and the protocol, so a deploy that is interrupted and run again
    into the same directory reuses what was measured instead of timing it again.
    """

    def __init__(self, space: Any, table: Any, profile: Any, request: DeployRequest, progress: Progress | None,
                 out: Path | None = None) -> None:
        from ofa_deploy.profiling.measure import reference_ms, space_anchor
        from ofa_deploy.profiling.protocol import ProtocolSettings

        self.profile = profile
        self.progress = progress
        self.anchor = space_anchor(space, table, profile)
        self.reference = reference_ms(table)
        self.reference_label = ("the table's anchor time (reference speed)" if self.reference is not None
                                else "wall clock of this run (the table has no anchor)")
        self.settings = ProtocolSettings.from_profile(profile, repeats=request.timing_repeats,
                                                      min_rounds=request.timing_rounds)
        self.info: dict[str, Any] = {"anchor": str(self.anchor[0]), "reference_ms": self.reference,
                                     "protocol": self.settings.to_dict(), "runs": [], "reused": []}
        self.cache_path = out / "measurements.json" if out is not None else None
        self.cache: dict[str, Any] = {}
        if self.cache_path is not None and self.cache_path.is_file():
            try:
                self.cache = json.loads(self.cache_path.read_text(encoding="utf-8"))
            except (ValueError, OSError):
                log.warning("ignoring unreadable measurement cache %s", self.cache_path)

    def _key(self, info: dict[str, Any]) -> str:
        subnet = (info.get("report", {}).get("onnx", info.get("report", {})).get("subnet") or {})
        parts = {"subnet": subnet.get("config_string"), "profile": self.profile.sha256, "shape": list(info["shape"]),
                 "anchor": Path(self.anchor[0]).name, "reference": self.reference, "protocol": self.settings.to_dict(),
                 "format": Path(_timed_model(info)).suffix}
        return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:20]

    def measure(self, exported: dict[str, dict[str, Any]]) -> dict[str, Any]:
        from ofa_deploy.profiling.measure import Measured, measure_models

        keys = {k: self._key(v) for k, v in exported.items()}
        found = {k: Measured(**{**self.cache[c], "interval_ms": tuple(self.cache[c]["interval_ms"])})
                 for k, c in keys.items() if c in self.cache}
        if found:
            _say(self.progress, f"reusing earlier measurements of {', '.join(found)} from {self.cache_path}")
            self.info["reused"] += list(found)
        todo = {k: v for k, v in exported.items() if k not in found}
        if not todo:
            return found
        _say(self.progress, f"timing {len(todo)} exported model(s) on {self.profile.name} against the anchor "
                            "(paired rounds)")
        models = {k: (_timed_model(v), v["shape"]) for k, v in todo.items()}
        run = measure_models(models, self.anchor, self.profile, protocol=self.settings)
        ref = self.reference if self.reference is not None else run.anchor_ms
        self.info["runs"].append({"items": list(todo), **run.summary(),
                                  "per_model": {k: r.to_dict() for k, r in run.results.items()}})
        measured = {k: Measured.of(r, ref) for k, r in run.results.items()}
        if self.cache_path is not None:
            self.cache.update({keys[k]: m.to_dict() for k, m in measured.items()})
            atomic_write_json(self.cache_path, self.cache)
        return {**found, **measured}


def _timed_model(info: dict[str, Any]) -> Any:
    """The file the profile's backend prepares: the exported ONNX model (TVM profiles compile it with the
    profile's target, as the export did)."""
    return info["onnx"]


def _try_record(key: str, space: Any, cfg: SubnetConfig, lat: Objective, acc: Objective, m: Any, limit: float,
                predicted_budget: float) -> dict[str, Any]:
    genes = space.to_genes([cfg])
    predicted = float(lat.predict_genes(genes)[0])
    return {"name": key, "config": cfg.to_string(), "predicted_budget_ms": predicted_budget,
            "predicted_ms": predicted, "predicted_accuracy": float(acc.predict_genes(genes)[0]),
            "measured_ms": m.ms, "measured_interval_ms": list(m.interval_ms), "measured_hi_ms": m.interval_ms[1],
            "wall_ms": m.wall_ms, "converged": m.converged, "rounds": m.rounds,
            "verified": bool(m.interval_ms[1] <= limit)}


def _try_line(t: dict[str, Any], limit: float) -> str:
    verdict = "verified under budget" if t["verified"] else "NOT verified under budget"
    return (f"{t['name']}: measured {t['measured_ms']:.4g} ms (95% interval {t['measured_interval_ms'][0]:.4g}.."
            f"{t['measured_interval_ms'][1]:.4g}; wall clock now {t['wall_ms']:.4g}) vs budget {limit:.4g} ms, "
            f"predicted {t['predicted_ms']:.4g}: {verdict}")


def _pick_shipped(tries: list[dict[str, Any]]) -> dict[str, Any]:
    """The most accurate verified pick; with none verified, the one with the lowest measured upper bound."""
    verified = [t for t in tries if t["verified"]]
    if verified:
        return max(verified, key=lambda t: t["predicted_accuracy"])
    return min(tries, key=lambda t: t["measured_hi_ms"])


def _budget_message(verified: bool, shipped: dict[str, Any], tries: list[dict[str, Any]], limit: float) -> str:
    lo = min(t["measured_ms"] for t in tries)
    if verified:
        return (f"{shipped['name']} measured {shipped['measured_ms']:.4g} ms (95% interval up to "
                f"{shipped['measured_hi_ms']:.4g}) against {limit:.4g} ms after {len(tries)} pick(s)")
    return (f"none of {len(tries)} pick(s) measured under {limit:.4g} ms (fastest "
            f"measured {lo:.4g} ms, upper bound {shipped['measured_hi_ms']:.4g}); model/ holds the closest pick, "
            f"{shipped['name']}. Raise the budget, or rebuild the latency table here")


def _publish_model(info: dict[str, Any], target: Path) -> None:
    """Copy the shipped pick's artifact dir(s) to `target` (and ``<target>_tvm``), each staged beside it and
    published atomically like an export (`export.artifacts.publish`)."""
    import shutil

    from ofa_deploy.export.artifacts import publish

    pairs = [(Path(info["onnx"]).parent, target)]
    if info.get("tvm_lib"):
        pairs.append((Path(info["tvm_lib"]).parent, target.parent / (target.name + "_tvm")))
    for source, dest in pairs:
        staging = dest.parent / f".{dest.name}.staging"
        if staging.exists():
            shutil.rmtree(staging)
        shutil.copytree(source, staging)
        publish(staging, dest)


# ---- steps ---------------------------------------------------------------------------------------------
def _search_space(predictor: Any, space: Any, resolutions: Sequence[int] | None, progress: Progress | None) -> Any:
    """`space` restricted to the resolutions the predictor covers (and `resolutions`); a predictor whose space
    differs otherwise is refused with the difference named."""
    from ofa_deploy.spaces import align_space

    searched = align_space(predictor.space, space, what=f"the accuracy predictor ({predictor.space.name})",
                           resolutions=resolutions)
    if searched.resolutions != space.resolutions:
        from ofa_deploy.spaces import describe_values as _describe_values

        _say(progress, f"searching {space.name} at resolutions {_describe_values(list(searched.resolutions))}: the "
                       f"accuracy predictor covers those (the supernet: {_describe_values(list(space.resolutions))})")
    return searched


def _restrict_to_tables(space: Any, predictors: Sequence[Any], resolutions: Sequence[int] | None,
                        progress: Progress | None) -> Any:
    """`space` restricted to the resolutions every latency table covers; an explicit request outside them fails."""
    from ofa_deploy.spaces import describe_values as _describe_values, space_from_dict, space_to_dict

    covered = [r for r in space.resolutions if all(r in p.covered_resolutions() for p in predictors)]
    if tuple(covered) == tuple(space.resolutions):
        return space
    names = ", ".join(p.name for p in predictors)
    if not covered:
        raise ConfigError(f"the latency tables ({names}) cover none of the searched resolutions "
                          f"{_describe_values(list(space.resolutions))}; build a table for them (ofa-deploy profile "
                          "build --resolutions ...) or pass tables that cover them")
    if resolutions is not None:
        raise ConfigError(f"--resolutions {_describe_values(list(space.resolutions))}: the latency tables ({names}) "
                          f"cover only {_describe_values(covered)}; pick among those or build a table for the rest")
    _say(progress, f"searching resolutions {_describe_values(covered)}: the latency tables cover only those")
    return space_from_dict({**space_to_dict(space), "resolutions": covered})


def _other_tables(request: DeployRequest, space: Any, target: str) -> list[tuple[str, str, Any]]:
    """(device label, source, table) of the other devices' tables (`extra_luts`, `ofa_luts`), labels unique."""
    from ofa_deploy.compat.ofa_lut import load_ofa_lut
    from ofa_deploy.profiling.host import warn_if_foreign
    from ofa_deploy.tables.latency import LatencyTable

    loaded: list[tuple[str, Any]] = []
    for path in request.extra_luts:
        table = LatencyTable.load(path)
        warn_if_foreign(table, source=f"latency table {path}")
        loaded.append((str(path), table))
    loaded += [(str(path), load_ofa_lut(path, space)) for path in request.ofa_luts]
    out: list[tuple[str, str, Any]] = []
    seen = {target}
    for source, table in loaded:
        label = table.provenance.profile_name or table.provenance.device or Path(source).stem
        while label in seen:
            label += "'"
        seen.add(label)
        out.append((label, source, table))
    return out


def _predictor_for(predictor: Any, space: Any) -> Any:
    """The accuracy predictor re-encoded for `space` (same network; the space is a resolution subset)."""
    if list(predictor.space.gene_sizes()) == list(space.gene_sizes()) and \
            tuple(predictor.space.resolutions) == tuple(space.resolutions):
        return predictor
    if not hasattr(predictor, "for_space"):
        raise ConfigError(f"the accuracy predictor's space {predictor.space.name} does not match the searched space "
                          f"(resolutions {list(space.resolutions)}); pass an AccuracyPredictor for it")
    return predictor.for_space(space)


def _device_budgets(request: DeployRequest, target: str, extras: Sequence[Objective]) -> dict[str, float]:
    """Budgets of the other devices, by name; a budget for an unknown device names the tables."""
    names = [o.target for o in extras]
    out = {}
    for device, ms in request.device_budgets:
        if device == target:
            continue
        if device not in names:
            raise ConfigError(f"latency budget {device}={ms:g}: no latency table for {device!r}; the target is "
                              f"{target} and the other tables are {', '.join(names) or 'none'}")
        out[device] = float(ms)
    return out


def _check_host(table: Any, profile: Any, request: DeployRequest, progress: Progress | None) -> dict[str, Any]:
    """Refuse a table measured on another host (or with no fingerprint) unless `allow_foreign_lut`."""
    from ofa_deploy.errors import ForeignTableError
    from ofa_deploy.profiling.host import check_table_host

    check = check_table_host(table, profile)
    if not check.ok:
        if not request.allow_foreign_lut:
            raise ForeignTableError(
                f"the latency table cannot be trusted on this host: {check.describe()}. Build one here with "
                f"`ofa-deploy profile build --profile {profile.name} --supernet <space>` (or omit --lut so deploy "
                "builds it), or pass --allow-foreign-lut to deploy with it anyway (its verdicts are then about "
                "the other host's speed)")
        _say(progress, f"warning: using a foreign latency table (--allow-foreign-lut): {check.describe()}")
    return check.to_dict()


def _latency_table(request: DeployRequest, space: Any, resolutions: Sequence[int], profile: Any, out: Path,
                   progress: Progress | None) -> tuple[Any, dict[str, Any]]:
    from ofa_deploy.tables.latency import LatencyTable

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
                         subnet_info={"supernet": supernet.space.name, "config": cfg.to_dict(),
                                      "config_string": cfg.to_string()})
    onnx_path = report.path("model")
    info: dict[str, Any] = {"onnx": onnx_path, "shape": shape, "report": report.to_dict(), "bn_images": n_calib}
    if profile.backend == "tvm":
        from ofa_deploy.export.tvm import export_tvm

        tvm_report = export_tvm(onnx_path, out_dir.parent / (out_dir.name + "_tvm"), target=profile.tvm_target,
                                input_shape=shape, reference=model, validate=validate, overwrite=True)
        info["report"] = {"onnx": info["report"], "tvm": tvm_report.to_dict()}
        info["tvm_lib"] = tvm_report.path("model")
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

