"""In-context layer timing with the ONNX Runtime profiler (the default for ORT LUT builds on the host).

A layer timed alone runs with its weights and input hot in the private caches; inside a network it does not,
and ORT's layout transforms and fusions differ at the model's edges. Summed isolated timings therefore
underestimate whole-network latency by 20-40% on this host (a factor that drifts with machine load). Here the
layers are timed where they live: whole *covering* subnets (the configs of `plan.covering_configs`, which
together contain every distinct layer) run with ``enable_profiling``; every kernel event is attributed to its
layer through the exporter's scope names (``/layers.<i>/...``; unnamed nodes such as NCHWc reorders go to the
layer being executed), and per layer the *minimum over the runs of a round* is kept. Taking the minimum per
layer (not per whole run) discards preemptions, which hit only a few layers of any run, so wall-clock kernel
events stay usable on a loaded machine. A spec occurring several times (repeated blocks, several covering
configs) gets the median of its occurrences per round; the LUT value is the median over rounds.

The time between kernels (ORT's executor work per node) is charged to the next kernel's layer, and each task
also times the same subnet without the profiler, bracketed by the anchor model (A, subnet, A; see
`profiling.timing.protocol`): the layer values of that task are scaled so that they sum to the subnet's anchor ratio.
This removes the profiler's own overhead and puts every entry in anchor units, immune to the machine's drift.
"""
from __future__ import annotations

import json
import logging
import os
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ofa_deploy.errors import ConfigError
from ofa_deploy.profiling.methods import MethodResult, Task, drift, task_record
from ofa_deploy.profiling.models import export_config
from ofa_deploy.profiling.plan import CALIBRATION_PREFIX, Plan, covering_set, make_plan
from ofa_deploy.profiling.timing.timer import TimerSettings
from ofa_deploy.spaces import SearchSpace, SubnetConfig

log = logging.getLogger(__name__)

LAYER_SCOPE = re.compile(r"^/layers\.(\d+)/")
#: seed of the extra random in-context subnets (fixed, and distinct from validation's default seed 0)
CONTEXT_SEED = 20_241_122
ESTIMATE = ("in-context: per-layer minimum over the runs of each round (ORT profiler kernel times inside covering "
            "subnets), scaled to the subnet's anchor ratio, median over occurrences, then over rounds")


def layer_times_from_trace(events: Sequence[dict[str, Any]], n_layers: int, *, skip_runs: int = 0,
                           gaps: bool = True) -> np.ndarray:
    """(runs, n_layers) ms from an ORT profiling trace: kernel durations summed per layer for each model run.

    Nodes without a ``/layers.<i>/`` scope are attributed to the layer last seen in the same run. With `gaps`,
    the time between kernels (the executor's per-node work) is added to the layer of the next kernel, and the
    time after the last kernel to the last layer, so each run's layers sum to the run's duration.
    """
    runs = sorted((e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"),
                  key=lambda e: e["ts"])[skip_runs:]
    nodes = sorted((e for e in events if e.get("cat") == "Node" and str(e.get("name", "")).endswith("_kernel_time")),
                   key=lambda e: e["ts"])
    out = np.zeros((len(runs), n_layers))
    k = 0
    for r, run in enumerate(runs):
        start, end = run["ts"], run["ts"] + run["dur"]
        while k < len(nodes) and nodes[k]["ts"] < start:
            k += 1
        current = 0
        cursor = start
        while k < len(nodes) and nodes[k]["ts"] <= end:
            match = LAYER_SCOPE.match(nodes[k]["name"])
            if match:
                current = int(match.group(1))
            if current >= n_layers:
                raise ConfigError(f"profiler node {nodes[k]['name']!r} names layer {current} of a {n_layers}-layer model")
            gap = max(nodes[k]["ts"] - cursor, 0) if gaps else 0
            out[r, current] += (nodes[k]["dur"] + gap) / 1000.0
            cursor = nodes[k]["ts"] + nodes[k]["dur"]
            k += 1
        if gaps:
            out[r, current] += max(end - cursor, 0) / 1000.0
    empty = [i for i in range(n_layers) if runs and not out[:, i].any()]
    if empty:
        raise ConfigError(f"no profiler events could be attributed to layers {empty}; the model must be exported from "
                          "SubnetModel so node names carry the '/layers.<i>/' scope")
    return out


class InContextJob:
    """Times one (covering config, round) task with a profiling ORT session; returns per-layer minima (ms)."""

    def __init__(self, space: SearchSpace, backend: Any, settings: TimerSettings, model_dir: Path, *,
                 batch_size: int = 1, paired: Any) -> None:
        if getattr(backend, "name", "") != "onnxruntime":
            raise ConfigError(f"in-context timing needs the onnxruntime backend (its profiler), got "
                              f"{getattr(backend, 'name', backend)!r}; use method='isolated'")
        self.space = space
        self.backend = backend
        self.settings = settings
        self.model_dir = model_dir
        self.batch_size = batch_size
        self.paired = paired
        self.measurements = 0

    def __call__(self, task: Task) -> dict[str, Any]:
        import onnxruntime as ort

        cfg = SubnetConfig.from_string(task.item_id)
        n_layers = len(self.space.walk_layers(cfg))
        path = export_config(self.space, cfg, self.model_dir, self.batch_size)
        so = self.backend.session_options()
        so.enable_profiling = True
        so.profile_file_prefix = str(self.model_dir / f"prof_{os.getpid()}_{task.round}_{task.seq}")
        providers = [self.backend.provider] + (["CPUExecutionProvider"]
                                               if self.backend.provider != "CPUExecutionProvider" else [])
        session = ort.InferenceSession(str(path), so, providers=providers)
        name = session.get_inputs()[0].name
        x = np.random.default_rng(0).standard_normal((self.batch_size, 3, cfg.resolution, cfg.resolution)
                                                     ).astype(np.float32)
        for _ in range(self.settings.warmup + self.settings.repeats):
            session.run(None, {name: x})
        trace = Path(session.end_profiling())
        try:
            events = json.loads(trace.read_text())
        finally:
            trace.unlink(missing_ok=True)
        per_run = layer_times_from_trace(events, n_layers, skip_runs=self.settings.warmup)
        layers = per_run.min(axis=0)
        # the same subnet without the profiler, bracketed by the anchor
        with self.backend.prepare(path, (self.batch_size, 3, cfg.resolution, cfg.resolution)) as runner:
            visit = self.paired(runner)
        self.measurements += 1
        return task_record(task, layers=layers.tolist(), **visit)

    def close(self) -> None:
        pass


def table_entries(records: Sequence[dict[str, Any]], layers_of: Callable[[str], Sequence[Any]], *,
                  rescale: bool = True) -> dict[Any, list[float]]:
    """spec → per-round values: median over the spec's occurrences within each round.

    `layers_of(config_id)` gives the specs of a record's subnet in order (its ``layers`` are timed in that
    order). With `rescale`, each record's layer times are scaled so they sum to the same subnet's anchor ratio
    measured without the profiler in the same task (removes the profiler's own per-node cost and gives anchor
    units; the shares between layers come from the profiler, the total from the paired end-to-end timing).
    Records of the older on-device format carry ``scale`` instead of ``ratio``.
    """
    per_round: dict[tuple[Any, int], list[float]] = defaultdict(list)
    for rec in records:
        if not rescale:
            scale = 1.0
        elif "ratio" in rec:
            scale = float(rec["ratio"]) / float(sum(rec["layers"]))
        else:
            scale = float(rec.get("scale", 1.0))
        for spec, value in zip(layers_of(rec["id"]), rec["layers"]):
            per_round[(spec, rec["round"])].append(value * scale)
    out: dict[Any, list[float]] = defaultdict(list)
    for (spec, _), values in sorted(per_round.items(), key=lambda kv: kv[0][1]):
        out[spec].append(float(np.median(values)))
    return out


def schedule_configs(config_ids: Sequence[str], settings: TimerSettings) -> list[Task]:
    """In-context tasks: every config once per round, in a seeded random order per round."""
    rng = np.random.default_rng(settings.seed)
    return [Task(config_ids[j], r, seq) for r in range(settings.rounds)
            for seq, j in enumerate(rng.permutation(len(config_ids)))]


def context_configs(space: SearchSpace, plan: Plan, *, limit: int | None = None, context_subnets: int = 0
                    ) -> list[str]:
    """The subnets an in-context build profiles: the covering set of `plan` (its first `limit`), then
    `context_subnets` extra random subnets per resolution (seeded, fixed), so each layer is also seen in mixed
    contexts."""
    cfgs = covering_set(space, plan.resolutions, {i.spec for i in plan.items})
    ids = [c.to_string() for c in cfgs][:limit]
    if context_subnets:
        rng = np.random.default_rng(CONTEXT_SEED)
        extra = [space.sample(rng, resolution=r).to_string() for r in plan.resolutions for _ in range(context_subnets)]
        ids += [c for c in dict.fromkeys(extra) if c not in ids]
    return ids


@dataclass
class InContextMethod:
    """The in-context method (see the module docstring): profiles the subnets `config_ids` of `space`.

    `layer_ids` (config id → the plan's spec ids in layer order) stands in for walking `space` where the space
    object is not at hand (results of the on-device script); `complete` demands that every plan item was seen.
    """

    space: SearchSpace | None
    plan: Plan
    config_ids: list[str]
    settings: TimerSettings | None = None
    model_dir: Path | None = None
    layer_ids: dict[str, list[str]] | None = None
    complete: bool = True
    name: str = "in_context"
    estimate: str = ESTIMATE

    @classmethod
    def create(cls, space: SearchSpace, resolutions: Sequence[int] | None, *, batch_size: int,
               settings: TimerSettings, model_dir: Path, anchor: Any = None, limit: int | None = None,
               context_subnets: int = 0) -> InContextMethod:
        """The method for `space` at `resolutions`: the whole plan, its covering subnets (the first `limit`)
        and `context_subnets` random ones per resolution (`anchor`: the build pairs every task with it)."""
        plan = make_plan(space, resolutions, batch_size=batch_size)
        configs = context_configs(space, plan, limit=limit, context_subnets=context_subnets)
        return cls(space, plan, configs, settings, model_dir, complete=limit is None)

    def header(self) -> dict[str, Any]:
        return {"configs": len(self.config_ids)}

    def tasks(self, calibration_ids: Sequence[str]) -> list[Task]:
        if self.settings is None:
            raise ConfigError("this in-context method was made without timer settings; it can only reduce records")
        return schedule_configs(list(self.config_ids) + list(calibration_ids), self.settings)

    def job(self, backend: Any, paired: Any) -> InContextJob:
        if self.space is None or self.settings is None or self.model_dir is None:
            raise ConfigError("this in-context method was made without a space; it can only reduce records")
        return InContextJob(self.space, backend, self.settings, self.model_dir, batch_size=self.plan.batch_size,
                            paired=paired)

    def layers(self, config_id: str) -> Sequence[Any]:
        """The specs of subnet `config_id` in layer order."""
        if self.layer_ids is not None:
            if config_id not in self.layer_ids:
                raise ConfigError(f"results name subnet {config_id!r}, which the plan does not list")
            unknown = [sid for sid in self.layer_ids[config_id] if sid not in self.plan.by_id]
            if unknown:
                raise ConfigError(f"the plan lists layer {unknown[0]!r} in subnet {config_id!r}, but not among its "
                                  "items; write the plan again (`ofa-deploy profile plan`)")
            return [self.plan.by_id[sid].spec for sid in self.layer_ids[config_id]]
        if self.space is None:
            raise ConfigError("an in-context method needs its space or the plan's layer ids to reduce records")
        return self.space.walk_layers(SubnetConfig.from_string(config_id))

    def reduce(self, records: Sequence[dict[str, Any]], provenance: Any) -> MethodResult:
        from ofa_deploy.tables.latency import LatencyStats, LatencyTable

        layer_records = [r for r in records if not r["id"].startswith(CALIBRATION_PREFIX)]
        entries = table_entries(layer_records, self.layers)
        if self.complete:
            missing = [i.id for i in self.plan.items if i.spec not in entries]
            if missing:
                raise ConfigError(f"{len(missing)} planned layers have no in-context measurement (e.g. {missing[0]}); "
                                  "resume the build (on a device: rerun the script, it resumes)")
        table = LatencyTable(provenance=provenance, stat="median")
        for spec, values in entries.items():
            table[spec] = LatencyStats.from_samples(values)
        visits = [float(r["anchor_ms"]) for r in records if "anchor_ms" in r]
        return MethodResult(table, 0.0, drift(visits), visits)
