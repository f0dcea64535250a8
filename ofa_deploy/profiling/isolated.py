"""The isolated LUT build method: one model per layer (any backend, device pools and the on-device script).

Tasks are (layer, round) pairs. Round r visits all layers in a seeded random order, so every layer gets one
sample from each phase of a drifting machine; the per-round value is the minimum of `repeats` runs after
`warmup` runs (`TimerSettings`). A constant per-run overhead (an Identity model with the same input binding)
is timed every round and subtracted: a subnet pays it once, not once per layer. The anchor model is visited
at the start of each round, every `anchor_every` items and at the end, and every layer is divided by the
anchor visits around it, so entries are in anchor units.
"""
from __future__ import annotations

import statistics
from collections import OrderedDict, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ofa_deploy.errors import ConfigError
from ofa_deploy.profiling.methods import MethodResult, Task, drift, task_record
from ofa_deploy.profiling.models import export_layer, export_subnet, layer_model, write_identity_model
from ofa_deploy.profiling.plan import ANCHOR_ID, CALIBRATION_PREFIX, OVERHEAD_ID, Plan, make_plan
from ofa_deploy.profiling.timing.timer import CacheFlusher, TimerSettings, measure_round
from ofa_deploy.spaces import SearchSpace, SubnetConfig

ESTIMATE = ("isolated: median over rounds of per-round minima divided by the anchor visits around them, minus "
            "per-call overhead")


def task_model(space: SearchSpace | None, plan: Plan, item_id: str, model_dir: Path, *, model_format: str = "onnx",
               anchor: tuple[Any, tuple[int, ...]] | None = None) -> tuple[Any, tuple[int, ...]]:
    """The model (ONNX path, or an eager module for ``model_format="module"``) and input shape of a task id:
    a layer of `plan`, the overhead Identity model, the anchor, or a calibration subnet."""
    module = model_format == "module"
    if item_id == ANCHOR_ID:
        if anchor is None:
            raise ConfigError("this layer-timing job was built without an anchor model")
        return anchor
    if item_id == OVERHEAD_ID:
        if module:
            from torch import nn

            return nn.Identity(), (1, 1, 1, 1)
        return write_identity_model(model_dir / "overhead.onnx"), (1, 1, 1, 1)
    if item_id.startswith(CALIBRATION_PREFIX):
        if space is None:
            raise ConfigError(f"task {item_id!r} is a calibration subnet; this job was built without its space")
        cfg = SubnetConfig.from_string(item_id[len(CALIBRATION_PREFIX):])
        shape = (plan.batch_size, 3, cfg.resolution, cfg.resolution)
        if module:
            from ofa_deploy.nn.layers import SubnetModel

            return SubnetModel(space.walk_layers(cfg)).eval(), shape
        return export_subnet(space, cfg, model_dir, batch_size=plan.batch_size), shape
    item = plan.by_id.get(item_id)
    if item is None:
        raise ConfigError(f"task {item_id!r} is not a layer of this build's plan")
    if module:
        return layer_model(item.spec), item.input_shape
    return export_layer(item, model_dir / f"{item.id}_b{item.input_shape[0]}.onnx"), item.input_shape


class LayerTimingJob:
    """Times one task: prepares (and caches) a runner per layer, then runs one round of the timer.

    Runners are kept in an LRU cache of `max_runners` (session reuse across rounds); models are exported on
    first use into `model_dir` and reused by later builds and rounds.
    """

    def __init__(self, plan: Plan, backend: Any, settings: TimerSettings, model_dir: Path, *,
                 max_runners: int = 512, anchor: tuple[Any, tuple[int, ...]] | None = None,
                 space: SearchSpace | None = None) -> None:
        self.plan = plan
        self.space = space
        self.anchor = anchor
        self.backend = backend
        self.settings = settings
        self.model_dir = model_dir
        self.max_runners = max_runners
        self._runners: OrderedDict[str, Any] = OrderedDict()
        self._flusher = CacheFlusher(settings.flush_kb) if settings.flush_kb else None
        self.measurements = 0

    def runner(self, item_id: str) -> Any:
        if item_id in self._runners:
            self._runners.move_to_end(item_id)
            return self._runners[item_id]
        model, shape = task_model(self.space, self.plan, item_id, self.model_dir,
                                  model_format=self.backend.model_format, anchor=self.anchor)
        runner = self.backend.prepare(model, shape)
        self._runners[item_id] = runner
        while len(self._runners) > self.max_runners:
            self._runners.popitem(last=False)[1].close()
        return runner

    def __call__(self, task: Task) -> dict[str, Any]:
        runner = self.runner(task.item_id)
        value, raw = measure_round(runner, self.settings, self._flusher)
        self.measurements += 1
        return task_record(task, ms=value, raw_min=min(raw), raw_median=float(np.median(raw)))

    def close(self) -> None:
        for runner in self._runners.values():
            runner.close()
        self._runners.clear()


def schedule(plan: Plan, settings: TimerSettings, anchors: Sequence[str], calibration: Sequence[str] = ()
             ) -> list[Task]:
    """All isolated-build tasks in execution order: per round, overhead + anchors, then the layers and the
    calibration subnets in a seeded random order with the anchors re-timed every `settings.anchor_every` items
    and at the end of the round (so every item has an anchor visit on both sides)."""
    rng = np.random.default_rng(settings.seed)
    ids = [i.id for i in plan.items] + list(calibration)
    every = settings.anchor_every or len(ids)
    tasks: list[Task] = []
    for r in range(settings.rounds):
        seq = 0

        def visit_anchors() -> None:
            nonlocal seq
            for a in anchors:
                tasks.append(Task(a, r, seq, anchor=True))
                seq += 1

        tasks.append(Task(OVERHEAD_ID, r, seq))
        seq += 1
        visit_anchors()
        for n, j in enumerate(rng.permutation(len(ids)), 1):
            tasks.append(Task(ids[j], r, seq))
            seq += 1
            if anchors and (n % every == 0 or n == len(ids)):
                visit_anchors()
    return tasks


def anchor_units(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Isolated-build records with ``ratio`` = ms / the anchor visits around them in the same round.

    Each record is divided by the mean of the nearest anchor visit before it and the nearest after it (either
    alone at a round's edge); anchor records themselves get ratio 1. Needs `ANCHOR_ID` visits in every round;
    records with no anchor visit at all (on-device results from plans without an anchor) keep ``ratio = ms``.
    """
    visits: dict[int, list[tuple[int, float]]] = defaultdict(list)
    for rec in records:
        if rec["id"] == ANCHOR_ID:
            visits[rec["round"]].append((rec["seq"], rec["ms"]))
    if not visits:
        return [{**rec, "ratio": rec["ms"], "anchor_ms": 1.0} for rec in records]
    for round_visits in visits.values():
        round_visits.sort()
    out = []
    for rec in records:
        if rec["id"] == ANCHOR_ID or "ratio" in rec:
            out.append({**rec, "ratio": rec.get("ratio", 1.0), "anchor_ms": rec.get("anchor_ms", rec.get("ms"))})
            continue
        around = visits.get(rec["round"], [])
        if not around:
            raise ConfigError(f"round {rec['round']} of the measurement store has no anchor visit; resume the build")
        before = [ms for seq, ms in around if seq < rec["seq"]][-1:]
        after = [ms for seq, ms in around if seq > rec["seq"]][:1]
        bracket = float(np.mean(before + after))
        out.append({**rec, "ratio": rec["ms"] / bracket, "anchor_ms": bracket})
    return out


def table_from_records(plan: Plan, records: Sequence[dict[str, Any]], *, provenance: Any,
                       subtract_overhead: bool = True) -> tuple[Any, float, dict[str, float]]:
    """Per-layer LatencyStats (anchor units) from isolated-build records: per-round ratios minus the round's
    overhead ratio. Returns (table without anchor info, overhead in anchor units, drift of the anchor)."""
    from ofa_deploy.tables.latency import LatencyStats, LatencyTable

    records = anchor_units(records)
    overhead: dict[int, float] = {r["round"]: r["ratio"] for r in records if r["id"] == OVERHEAD_ID}
    per_item: dict[str, list[float]] = defaultdict(list)
    for rec in records:
        if rec["id"] in (OVERHEAD_ID, ANCHOR_ID) or rec["id"].startswith(CALIBRATION_PREFIX):
            continue
        cut = overhead.get(rec["round"], 0.0) if subtract_overhead else 0.0
        per_item[rec["id"]].append(max(rec["ratio"] - cut, 0.0))
    missing = [i.id for i in plan.items if i.id not in per_item]
    if missing:
        raise ConfigError(f"{len(missing)} layers have no measurement yet (e.g. {missing[0]}); resume the build")
    table = LatencyTable(provenance=provenance, stat="median")
    for item in plan.items:
        table[item.spec] = LatencyStats.from_samples(per_item[item.id])
    anchors = [r["ms"] for r in records if r["id"] == ANCHOR_ID]
    over = float(statistics.median(overhead.values())) if overhead else 0.0
    return table, over, drift(anchors)


@dataclass
class IsolatedMethod:
    """The isolated method (see the module docstring) for `plan` of `space`.

    Made with the plan alone (`space`, `settings`, `model_dir` None), it can only reduce records (results of
    the on-device script)."""

    space: SearchSpace | None
    plan: Plan
    settings: TimerSettings | None = None
    model_dir: Path | None = None
    anchor: tuple[Any, tuple[int, ...]] | None = None
    name: str = "isolated"
    estimate: str = ESTIMATE

    @classmethod
    def create(cls, space: SearchSpace, resolutions: Sequence[int] | None, *, batch_size: int,
               settings: TimerSettings, model_dir: Path, anchor: tuple[Any, tuple[int, ...]] | None,
               limit: int | None = None, context_subnets: int = 0) -> IsolatedMethod:
        """The method for `space` at `resolutions`; `limit` keeps the plan's first layers (`context_subnets`
        has no meaning here)."""
        return cls(space, make_plan(space, resolutions, batch_size=batch_size, limit=limit), settings, model_dir,
                   anchor)

    def header(self) -> dict[str, Any]:
        return {}

    def _timing(self) -> tuple[SearchSpace, TimerSettings, Path]:
        if self.space is None or self.settings is None or self.model_dir is None:
            raise ConfigError("this isolated method was made from a plan alone; it can only reduce records")
        return self.space, self.settings, self.model_dir

    def tasks(self, calibration_ids: Sequence[str]) -> list[Task]:
        _, settings, _ = self._timing()
        return schedule(self.plan, settings, [ANCHOR_ID] if self.anchor is not None else [], calibration_ids)

    def job(self, backend: Any, paired: Any) -> LayerTimingJob:
        space, settings, model_dir = self._timing()
        return LayerTimingJob(self.plan, backend, settings, model_dir, anchor=self.anchor, space=space)

    def model(self, item_id: str, model_format: str = "onnx") -> tuple[Any, tuple[int, ...]]:
        """The model and input shape of one of this build's task ids (what a device pool sends a device)."""
        space, _, model_dir = self._timing()
        return task_model(space, self.plan, item_id, model_dir, model_format=model_format, anchor=self.anchor)

    def reduce(self, records: Sequence[dict[str, Any]], provenance: Any) -> MethodResult:
        table, overhead, moved = table_from_records(self.plan, records, provenance=provenance)
        return MethodResult(table, overhead, moved, [r["ms"] for r in records if r["id"] == ANCHOR_ID])
