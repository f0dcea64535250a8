"""Build a latency lookup table: time every distinct layer of a space once per hardware profile.

Two methods:
- ``"in_context"`` (default for ONNX Runtime on MobileNet-style spaces): layers are timed inside whole covering subnets with the ORT
  profiler (`ofa_deploy.profiling.incontext`); sums of these entries match whole-network latency.
- ``"isolated"`` (any backend, and the on-device script): one model per layer, as described below.

In both, work items are independent and idempotent, results go to a resumable JSON-lines store, and rounds are
interleaved in a fresh seeded order. Isolated work items are (layer, round) pairs. Round r visits all layers in a
seeded random order, so every layer gets one sample from each phase of a drifting machine; the per-round value is the minimum of `repeats` runs after
`warmup` runs (`TimerSettings`). Every finished item is appended to a JSON-lines store next to the output
(``<out>.measurements.jsonl``), so an interrupted build resumes without re-measuring anything. A constant
per-run overhead (an Identity model with the same input binding) is timed every round too and subtracted:
a subnet pays it once, not once per layer. A few anchor layers are re-timed through each round to record drift.
The table is written atomically at the end, with provenance.
"""
from __future__ import annotations

import json
import logging
import os
import platform
import statistics
import sys
import time
from collections import OrderedDict, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ofa_deploy.errors import ConfigError
from ofa_deploy.fileio import atomic_path
from ofa_deploy.profiling.executor import Executor, LocalExecutor
from ofa_deploy.profiling.plan import Plan, choose_anchors, export_layer, make_plan
from ofa_deploy.profiling.store import JsonlStore
from ofa_deploy.profiling.timer import CacheFlusher, TimerSettings, measure_round
from ofa_deploy.spaces import SearchSpace

log = logging.getLogger(__name__)

OVERHEAD_ID = "__overhead__"
#: seed of the extra random in-context subnets (fixed, and distinct from validation's default seed 0)
CONTEXT_SEED = 20_241_122


@dataclass(frozen=True)
class Task:
    """One unit of work: time `item_id` for round `round` (`anchor`: an extra drift visit)."""

    item_id: str
    round: int
    seq: int
    anchor: bool = False


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def write_identity_model(path: Path) -> Path:
    """A 1-element Identity ONNX model: its run time is the backend's fixed per-call overhead."""
    if path.is_file():
        return path
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["input"], ["output"])], "overhead",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 1, 1, 1])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1, 1, 1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    with atomic_path(path) as tmp:
        onnx.save(model, str(tmp))
    return path


class LayerTimingJob:
    """Times one task: prepares (and caches) a runner per layer, then runs one round of the timer.

    Runners are kept in an LRU cache of `max_runners` (session reuse across rounds); models are exported on
    first use into `model_dir` and reused by later builds and rounds.
    """

    def __init__(self, plan: Plan, backend: Any, settings: TimerSettings, model_dir: Path, *,
                 max_runners: int = 512) -> None:
        self.items = {i.id: i for i in plan.items}
        self.backend = backend
        self.settings = settings
        self.model_dir = model_dir
        self.max_runners = max_runners
        self._runners: OrderedDict[str, Any] = OrderedDict()
        self._flusher = CacheFlusher(settings.flush_kb) if settings.flush_kb else None
        self.measurements = 0

    def _model(self, item_id: str) -> tuple[Any, tuple[int, ...]]:
        if item_id == OVERHEAD_ID:
            if self.backend.model_format == "module":
                from torch import nn

                return nn.Identity(), (1, 1, 1, 1)
            return write_identity_model(self.model_dir / "overhead.onnx"), (1, 1, 1, 1)
        item = self.items[item_id]
        if self.backend.model_format == "module":
            from ofa_deploy.profiling.plan import layer_model

            return layer_model(item.spec), item.input_shape
        return export_layer(item, self.model_dir / f"{item.id}_b{item.input_shape[0]}.onnx"), item.input_shape

    def runner(self, item_id: str) -> Any:
        if item_id in self._runners:
            self._runners.move_to_end(item_id)
            return self._runners[item_id]
        model, shape = self._model(item_id)
        runner = self.backend.prepare(model, shape)
        self._runners[item_id] = runner
        while len(self._runners) > self.max_runners:
            self._runners.popitem(last=False)[1].close()
        return runner

    def __call__(self, task: Task) -> dict[str, Any]:
        runner = self.runner(task.item_id)
        value, raw = measure_round(runner, self.settings, self._flusher)
        self.measurements += 1
        return {"id": task.item_id, "round": task.round, "seq": task.seq, "anchor": task.anchor,
                "ms": value, "raw_min": min(raw), "raw_median": float(np.median(raw)), "t": time.time()}

    def close(self) -> None:
        for runner in self._runners.values():
            runner.close()
        self._runners.clear()


def schedule(plan: Plan, settings: TimerSettings, anchors: Sequence[str]) -> list[Task]:
    """All tasks in execution order: per round, overhead + anchors, then the layers in a seeded random order
    with the anchors re-timed every `settings.anchor_every` layers."""
    rng = np.random.default_rng(settings.seed)
    ids = [i.id for i in plan.items]
    tasks: list[Task] = []
    for r in range(settings.rounds):
        seq = 0
        tasks.append(Task(OVERHEAD_ID, r, seq))
        seq += 1
        for a in anchors:
            tasks.append(Task(a, r, seq, anchor=True))
            seq += 1
        for n, j in enumerate(rng.permutation(len(ids)), 1):
            tasks.append(Task(ids[j], r, seq))
            seq += 1
            if anchors and settings.anchor_every and n % settings.anchor_every == 0 and n < len(ids):
                for a in anchors:
                    tasks.append(Task(a, r, seq, anchor=True))
                    seq += 1
    return tasks


def _key(task_or_record: Any) -> tuple[str, int, int]:
    if isinstance(task_or_record, dict):
        return task_or_record["id"], task_or_record["round"], task_or_record["seq"]
    return task_or_record.item_id, task_or_record.round, task_or_record.seq


@dataclass
class BuildResult:
    """What `build_lut` did: the table, its path, how many items were measured now vs reused from the store."""

    table: Any
    path: Path
    store_path: Path
    measured: int
    reused: int
    seconds: float
    overhead_ms: float
    drift: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {"path": str(self.path), "store": str(self.store_path), "entries": len(self.table),
                "measured": self.measured, "reused": self.reused, "seconds": round(self.seconds, 2),
                "overhead_ms": self.overhead_ms, "drift": self.drift}


def model_cache_dir() -> Path:
    """Where exported layer/subnet models are kept between builds: ``$OFA_DEPLOY_CACHE/profiling/models``
    (default ``~/.cache/ofa-deploy/profiling/models``); file names are content keys, so profiles share them."""
    env = os.environ.get("OFA_DEPLOY_CACHE")
    return (Path(env) if env else Path.home() / ".cache" / "ofa-deploy") / "profiling" / "models"


def store_path_for(out_path: Path) -> Path:
    return out_path.with_name(out_path.name + ".measurements.jsonl")


def table_from_records(plan: Plan, records: Sequence[dict[str, Any]], *, provenance: Any,
                       subtract_overhead: bool = True) -> tuple[Any, float, dict[str, float]]:
    """Per-layer LatencyStats from store records: per-round values minus the round's overhead.

    Returns (table, overhead estimate ms, drift summary). Anchor visits give the drift series only.
    """
    from ofa_deploy.profiling.lut import LatencyStats, LatencyTable

    overhead: dict[int, float] = {r["round"]: r["ms"] for r in records if r["id"] == OVERHEAD_ID}
    per_item: dict[str, list[float]] = defaultdict(list)
    anchors: dict[str, list[float]] = defaultdict(list)
    for rec in records:
        if rec["id"] == OVERHEAD_ID:
            continue
        if rec.get("anchor"):
            anchors[rec["id"]].append(rec["ms"])
            continue
        cut = overhead.get(rec["round"], 0.0) if subtract_overhead else 0.0
        per_item[rec["id"]].append(max(rec["ms"] - cut, 0.0))
    missing = [i.id for i in plan.items if i.id not in per_item]
    if missing:
        raise ConfigError(f"{len(missing)} layers have no measurement yet (e.g. {missing[0]}); resume the build")
    table = LatencyTable(provenance=provenance, stat="median")
    for item in plan.items:
        table[item.spec] = LatencyStats.from_samples(per_item[item.id])
    ratios = [v / statistics.median(vs) for vs in anchors.values() for v in vs if statistics.median(vs) > 0]
    drift = ({"visits": len(ratios), "min": float(min(ratios)), "max": float(max(ratios)),
              "std": float(np.std(ratios))} if ratios else {})
    over = float(statistics.median(overhead.values())) if overhead else 0.0
    return table, over, drift


def in_context_table(space: SearchSpace, records: Sequence[dict[str, Any]], provenance: Any
                     ) -> tuple[Any, float, dict[str, float]]:
    """LatencyTable from in-context records; drift = spread of each config's per-round run sums."""
    from ofa_deploy.profiling.incontext import table_entries
    from ofa_deploy.profiling.lut import LatencyStats, LatencyTable

    table = LatencyTable(provenance=provenance, stat="median")
    for spec, values in table_entries(space, records).items():
        table[spec] = LatencyStats.from_samples(values)
    sums: dict[str, list[float]] = defaultdict(list)
    for rec in records:
        sums[rec["id"]].append(float(sum(rec["layers"])))
    ratios = [v / statistics.median(vs) for vs in sums.values() for v in vs]
    drift = ({"visits": len(ratios), "min": float(min(ratios)), "max": float(max(ratios)),
              "std": float(np.std(ratios))} if len(ratios) > 1 else {})
    return table, 0.0, drift


def make_provenance(profile: Any, backend: Any, space_name: str, settings: TimerSettings, *, notes: str = "",
                    estimate: str = "", method: str = "isolated") -> Any:
    from ofa_deploy.profiling.lut import Provenance, tool_version

    desc = backend.describe() if backend is not None else {}
    return Provenance(
        device=platform.node() or "host", cpu_model=cpu_model(),
        backend=str(desc.get("backend", getattr(profile, "backend", ""))),
        backend_version=str(desc.get("version", "")),
        execution_provider=str(desc.get("provider", getattr(profile, "execution_provider", "") or "")),
        threads=getattr(profile, "intra_op_threads", desc.get("threads")),
        precision=getattr(profile, "precision", "fp32"), batch_size=getattr(profile, "batch_size", 1),
        profile_name=getattr(profile, "name", ""), profile_sha256=getattr(profile, "sha256", ""),
        supernet=space_name, date=Provenance.now(), tool_version=tool_version(),
        notes=notes or json.dumps({"method": method, "timer": settings.to_dict(), "estimate": estimate,
                                   "python": sys.version.split()[0]}),
    )


METHODS = ("auto", "in_context", "isolated")


def resolve_method(method: str, backend: Any, family: str = "mbv3") -> str:
    """'auto' → 'in_context' for ONNX Runtime backends (profiler available) on MobileNet-style spaces, else
    'isolated'. ResNet covering sets are 54 whole ResNets per resolution (~50-100 MB of ONNX each), so ResNet
    spaces default to isolated timing; pass method='in_context' explicitly to use it anyway."""
    if method not in METHODS:
        raise ConfigError(f"unknown LUT build method {method!r}; expected one of {METHODS}")
    if method == "auto":
        ort = getattr(backend, "name", "") == "onnxruntime"
        return "in_context" if ort and family in ("mbv3", "proxyless") else "isolated"
    return method


def schedule_configs(config_ids: Sequence[str], settings: TimerSettings) -> list[Task]:
    """In-context tasks: every covering config once per round, in a seeded random order per round."""
    rng = np.random.default_rng(settings.seed)
    return [Task(config_ids[j], r, seq) for r in range(settings.rounds)
            for seq, j in enumerate(rng.permutation(len(config_ids)))]


def build_lut(
    space: SearchSpace,
    resolutions: Sequence[int] | None,
    profile: Any,
    out_path: str | os.PathLike[str],
    *,
    executor: Executor | None = None,
    progress: bool = True,
    resume: bool = True,
    timer: TimerSettings | None = None,
    limit: int | None = None,
    n_anchors: int = 3,
    model_dir: str | os.PathLike[str] | None = None,
    backend: Any = None,
    method: str = "auto",
    context_subnets: int = 0,
) -> BuildResult:
    """Measure every distinct layer of `space` at `resolutions` on `profile`'s backend; write the LUT.

    Args:
        space: the search space (its `walk_layers` defines the layers).
        resolutions: input sides (None: all of the space's).
        profile: a `HardwareProfile` (backend, threads, warm-up/repeats/rounds).
        out_path: the LUT JSON to write (atomically, at the end).
        executor: runs the work items (default `LocalExecutor`: sequential, in this process).
        progress: a tqdm bar on stderr.
        resume: continue from ``<out>.measurements.jsonl`` if present (False: start over).
        timer: timing settings (default: from the profile).
        limit: only the first `limit` layers of the plan (quick runs and tests).
        n_anchors: layers re-timed through every round to record drift.
        model_dir: where models are exported (default: `model_cache_dir()`, shared across builds).
        backend: a prepared backend (default: `create_backend(profile)`).
        method: "in_context" (ORT profiler inside covering subnets), "isolated" (one model per layer) or
            "auto" (in_context for ONNX Runtime, else isolated). With in_context, `limit` caps the number of
            covering subnets instead of layers.
        context_subnets: in_context only: this many extra random subnets per resolution (seeded, fixed) are
            profiled besides the covering ones, so each layer is also seen in mixed contexts.
    """
    from ofa_deploy.profiling.backends import create_backend

    start = time.perf_counter()
    out = Path(out_path)
    settings = timer or TimerSettings.from_profile(profile)
    plan = make_plan(space, resolutions, batch_size=int(getattr(profile, "batch_size", 1)), limit=limit)
    backend = backend or create_backend(profile)
    method = resolve_method(method, backend, space.family)
    models = Path(model_dir) if model_dir else model_cache_dir()
    models.mkdir(parents=True, exist_ok=True)
    header: dict[str, Any] = {
        "job": "lut-build", "method": method, "space": space.name, "resolutions": list(plan.resolutions),
        "limit": limit, "profile": getattr(profile, "name", str(profile)),
        "profile_sha256": getattr(profile, "sha256", ""), "timer": settings.to_dict()}
    if method == "isolated":
        anchors = [i.id for i in choose_anchors(plan, n_anchors)]
        header["anchors"] = anchors
        all_tasks = schedule(plan, settings, anchors)
        job: Any = LayerTimingJob(plan, backend, settings, models)
    else:
        from ofa_deploy.profiling.incontext import InContextJob, covering_set

        plan = make_plan(space, resolutions, batch_size=plan.batch_size)
        cfgs = covering_set(space, plan.resolutions, {i.spec for i in plan.items})
        cfg_ids = [c.to_string() for c in cfgs][:limit]
        if context_subnets:
            rng = np.random.default_rng(CONTEXT_SEED)
            extra = [space.sample(rng, resolution=r).to_string() for r in plan.resolutions
                     for _ in range(context_subnets)]
            cfg_ids += [c for c in dict.fromkeys(extra) if c not in cfg_ids]
        header["configs"] = len(cfg_ids)
        all_tasks = schedule_configs(cfg_ids, settings)
        job = InContextJob(space, backend, settings, models, batch_size=plan.batch_size)
    store = JsonlStore(store_path_for(out), header, resume=resume)
    done = {_key(r) for r in store}
    tasks = [t for t in all_tasks if _key(t) not in done]
    reused = len(done)
    executor = executor or LocalExecutor()
    bar = None
    if progress and tasks:
        from tqdm import tqdm

        bar = tqdm(total=len(tasks), desc=f"profiling {space.name}", unit="item", file=sys.stderr, leave=False)
    measured = 0
    try:
        for record in executor.map(job, tasks):
            store.append(record)
            measured += 1
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
        job.close()
    estimate = ("in-context: per-layer minimum over the runs of each round (ORT profiler kernel times inside "
                "covering subnets), median over occurrences, then over rounds" if method == "in_context" else
                "isolated: median over rounds of per-round minima, minus per-call overhead")
    provenance = make_provenance(profile, backend, space.name, settings, estimate=estimate, method=method)
    if method == "isolated":
        table, overhead, drift = table_from_records(plan, store.records, provenance=provenance)
    else:
        table, overhead, drift = in_context_table(space, store.records, provenance)
    table.save(out)
    seconds = time.perf_counter() - start
    log.info("wrote %s: %d layers, %d measured now, %d reused, %.1f s", out, len(table), measured, reused, seconds)
    return BuildResult(table, out, store.path, measured, reused, seconds, overhead, drift)
