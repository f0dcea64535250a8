"""deploy: search under a budget → extract → export → measure on the target → verify the budget → report.

One call takes a supernet, an accuracy predictor and a hardware profile (with its latency table, built on the
fly for small spaces) to an exported, measured model and a run directory::

    run/
      report.json      everything below, machine-readable
      summary.md       the same for people
      pareto.png       predicted accuracy vs latency: the Pareto front, the chosen subnet, the measured points
      lut.json         the latency table used (when it was built for this run)
      model/           the exported subnet that was shipped (ONNX + export_report.json; TVM adds model_tvm/)
      tries/           every pick exported and measured while verifying the budget
      checks/          exported comparison subnets timed alongside it (predicted vs measured)

The steps, each a module of this package: resolve the table (`tables`), search (`search`), export (`exporting`),
measure and verify (`verify`), report (`reporting`). `BudgetNotVerifiedError` (CLI exit 4) is raised after the
report is written when no pick was verified under the budget. A table measured on another host is refused
unless `allow_foreign_lut` (or adapted to this host with `adapt`).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ofa_deploy.errors import BudgetNotVerifiedError, ConfigError
from ofa_deploy.pipeline.exporting import ExportedPick, export_for_device, export_subnet, profile_format
from ofa_deploy.pipeline.reporting import write_deploy_report
from ofa_deploy.pipeline.request import DeployRequest, DeployResult, Progress, say
from ofa_deploy.pipeline.search import SearchSettings, check_configs, prepare_search, search, searched_space
from ofa_deploy.pipeline.tables import TableSource, resolve_table
from ofa_deploy.pipeline.verify import Meter, VerifySettings, measure_and_verify
from ofa_deploy.spaces.config import SubnetConfig


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
        ForeignTableError: the table was measured on another host and neither `allow_foreign_lut` nor `adapt`.
    """
    from ofa_deploy.profiling.hardware import HardwareProfile

    if request.max_tries < 1:
        raise ConfigError(f"max_tries must be >= 1, got {request.max_tries}")
    t_start = time.perf_counter()
    out = Path(request.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    space = searched_space(predictor, supernet.space, request.resolutions, progress)
    profile = HardwareProfile.load(request.profile)

    t0 = time.perf_counter()
    table = resolve_table(_table_source(request), space, profile, out_dir=out, progress=progress)
    setup = prepare_search(predictor, space, table.table, profile.name, resolutions=request.resolutions,
                           extra_luts=request.extra_luts, ofa_luts=request.ofa_luts,
                           device_budgets=request.device_budgets, progress=progress)
    timings = {"lut_s": time.perf_counter() - t0}

    outcome = search(setup, _search_settings(request, profile.name), progress)
    timings.update(outcome.timings)

    fmt = profile_format(profile)

    def export_pick(key: str, cfg: SubnetConfig) -> ExportedPick:
        target = out / ("tries" if key.startswith("try") else "checks") / key
        subnet = export_subnet(supernet, cfg, data, target, batch_size=profile.batch_size,
                               validate=request.validate_export)
        return export_for_device(subnet, fmt, target, profile, data=data, validate=request.validate_export)

    t0 = time.perf_counter()
    checks = check_configs(outcome.best, outcome.front, setup.lat, request.n_checks)
    picks = {}
    for key, cfg in [("try1", outcome.best), *checks]:
        say(progress, f"extract + export {key}: {cfg.to_string()}")
        picks[key] = export_pick(key, cfg)
    timings["export_s"] = time.perf_counter() - t0

    settings = VerifySettings(max_tries=request.max_tries, verify_budget=request.verify_budget,
                              timing_rounds=request.timing_rounds, timing_repeats=request.timing_repeats)
    meter = Meter(supernet.space, table.table, profile, settings, progress, out)
    verification = measure_and_verify(outcome, setup, picks, export_pick, meter, settings, progress)
    timings.update(verification.timings)
    timings["total_s"] = time.perf_counter() - t_start

    result = write_deploy_report(out, name=supernet_name or supernet.space.name, profile=profile, request=request,
                                 data=data, setup=setup, outcome=outcome, table=table, verification=verification,
                                 timings=timings)
    verdict = "verified under budget" if verification.verified else "NOT verified under budget"
    say(progress, f"done in {timings['total_s']:.1f} s, {verdict}: {result.budget['message']}: {out}")
    if request.verify_budget and not verification.verified:
        raise BudgetNotVerifiedError(f"NOT verified under budget: {result.budget['message']}; the report is in {out}",
                                     report=result)
    return result


def _table_source(request: DeployRequest) -> TableSource:
    return TableSource(path=request.lut, build_at=request.lut_cache, adapt_if_foreign=request.adapt,
                       allow_foreign=request.allow_foreign_lut, timing_rounds=request.timing_rounds,
                       timing_repeats=request.timing_repeats)


def _search_settings(request: DeployRequest, target: str) -> SearchSettings:
    limit = request.latency_budget_ms if request.latency_budget_ms is not None else \
        dict(request.device_budgets).get(target)
    return SearchSettings(latency_budget_ms=limit, budget_fraction=request.budget_fraction,
                          macs_budget=request.macs_budget, generations=request.generations,
                          population=request.population, seed=request.seed,
                          pareto_generations=request.pareto_generations, search_threads=request.search_threads)


__all__ = ["deploy"]
