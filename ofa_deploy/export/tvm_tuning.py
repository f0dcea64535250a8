"""MetaSchedule tuning for TVM 0.27 Relax with the fixes measured on this machine (see backends.md §3.3).

* GPU tensor-intrinsic modules are stubbed in the main process *and* in every LocalBuilder worker (importing
  ``tvm.s_tir.tensor_intrin`` costs ~25 s, nearly the whole default 30 s builder timeout).
* LocalBuilder gets a generous timeout; the cost model is ``xgb`` when xgboost (``xgboost-cpu``) is importable,
  else ``random``.
* Tasks are selected as objects (heaviest first), never by op-name substring (``"mean"`` also matches
  ``mean1..mean5`` in ``tune_relax(op_names=...)`` and duplicates tasks).
* The JSON database lives in a caller-chosen directory: tune once, later builds just apply it.
"""
from __future__ import annotations

import importlib.util
import logging
import sys
import types
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def stub_gpu_intrinsics() -> None:
    """Register empty modules for the CUDA/ROCm/Hexagon tensor intrinsics (importable; used as worker initializer)."""
    for name in ("cuda", "rocm", "hexagon"):
        full = f"tvm.s_tir.tensor_intrin.{name}"
        sys.modules.setdefault(full, types.ModuleType(full))


def cost_model_name() -> str:
    """``xgb`` when xgboost is importable (install ``xgboost-cpu``), else ``random``."""
    return "xgb" if importlib.util.find_spec("xgboost") is not None else "random"


def database_has_records(db_dir: Path) -> bool:
    rec = db_dir / "database_tuning_record.json"
    return rec.is_file() and rec.stat().st_size > 0


def _n_records(db_dir: Path) -> int:
    rec = db_dir / "database_tuning_record.json"
    if not rec.is_file():
        return 0
    with rec.open() as fh:
        return sum(1 for line in fh if line.strip())


def _task_cost(task: Any) -> float:
    from tvm.s_tir.analysis import estimate_tir_flops

    try:
        return float(estimate_tir_flops(task.dispatched[0])) * float(task.weight)
    except Exception:  # some tasks have symbolic shapes
        return float(task.weight)


def tune(
    mod: Any, target: Any, *, db_dir: Path, trials_per_task: int, max_tasks: int | None = None,
    builder_workers: int = 2, builder_timeout_s: float = 120.0, seed: int = 0,
) -> tuple[Any, dict[str, Any]]:
    """Tune the heaviest `max_tasks` tasks of `mod` with `trials_per_task` trials each into a JSON database.

    Returns ``(database, info)``; `mod` must have static shapes and be lowered with the ``zero`` pipeline.
    """
    stub_gpu_intrinsics()
    from tvm.s_tir import meta_schedule as ms

    db_dir.mkdir(parents=True, exist_ok=True)
    tasks = ms.relax_integration.extract_tasks(mod, target)
    ranked = sorted(tasks, key=_task_cost, reverse=True)
    chosen = ranked[:max_tasks] if max_tasks else ranked
    database = ms.database.JSONDatabase(work_dir=str(db_dir))
    info: dict[str, Any] = {"n_tasks": len(tasks), "tuned_tasks": [], "trials_per_task": trials_per_task,
                            "cost_model": cost_model_name(), "records_before": _n_records(db_dir)}
    if trials_per_task <= 0 or not chosen:
        log.info("MetaSchedule: no tuning requested; applying the %d records in %s", info["records_before"], db_dir)
        return database, info
    info["tuned_tasks"] = [t.task_name for t in chosen]
    contexts, weights = ms.relax_integration.extracted_tasks_to_tune_contexts(
        extracted_tasks=chosen, work_dir=str(db_dir),
        strategy=ms.search_strategy.EvolutionarySearch(population_size=32, init_min_unmeasured=8,
                                                       genetic_num_iters=1),
        seed=seed,
    )
    builder = ms.builder.LocalBuilder(max_workers=builder_workers, timeout_sec=builder_timeout_s,
                                      initializer=stub_gpu_intrinsics)
    per_iter = min(8, trials_per_task)
    log.info("MetaSchedule: tuning %d of %d tasks x %d trials (cost model %s) into %s", len(chosen), len(tasks),
             trials_per_task, info["cost_model"], db_dir)
    database = ms.tune.tune_tasks(
        tasks=contexts, task_weights=weights, work_dir=str(db_dir), max_trials_global=trials_per_task * len(chosen),
        max_trials_per_task=trials_per_task, num_trials_per_iter=per_iter, builder=builder,
        database=database, cost_model=info["cost_model"],
    )
    return database, info


def apply_database(mod: Any, target: Any, database: Any) -> Any:
    """Replace the tuned TIR functions of `mod` by the best records of `database`."""
    import tvm
    from tvm import relax

    with target, database, tvm.transform.PassContext(opt_level=3):
        return relax.transform.MetaScheduleApplyDatabase()(mod)
