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

Every measurement is tied to the profile's anchor model (`profiling.anchor`, `profiling.protocol`): in-context
tasks time their subnet bracketed by the anchor (A, subnet, A), isolated builds visit the anchor through every
round and divide each layer by the anchor visits around it. Entries are stored in anchor units with the
anchor's median absolute time (`AnchorInfo`), so a machine that is faster or slower for a while shifts the
anchor and the items alike. Each round also times `calibration_subnets` random whole subnets against the
anchor; a calibration ``scale * sum + offset + per_layer * n_layers`` is fitted on them, scored on held-out
halves, and stored with the table. The table records the host's fingerprint (`profiling.host`).
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
from ofa_deploy.executors import Executor, LocalExecutor
from ofa_deploy.profiling.host import cpu_model
from ofa_deploy.profiling.measure import PairedVisits
from ofa_deploy.profiling.models import export_layer, layer_model, model_cache_dir, write_identity_model
from ofa_deploy.profiling.plan import ANCHOR_ID, CALIBRATION_PREFIX, OVERHEAD_ID, Plan, covering_set, make_plan
from ofa_deploy.profiling.protocol import ProtocolSettings
from ofa_deploy.profiling.timer import CacheFlusher, TimerSettings, measure_round
from ofa_deploy.spaces import SearchSpace
from ofa_deploy.store import JsonlStore

log = logging.getLogger(__name__)

#: seed of the random whole subnets a build measures for its calibration
CALIBRATION_SEED = 20_261_130
#: seed of the extra random in-context subnets (fixed, and distinct from validation's default seed 0)
CONTEXT_SEED = 20_241_122


@dataclass(frozen=True)
class Task:
    """One unit of work: time `item_id` for round `round` (`anchor`: an extra drift visit)."""

    item_id: str
    round: int
    seq: int
    anchor: bool = False


class CalibrationJob:
    """Times calibration tasks (``calib:<subnet>``): the whole subnet against the anchor; other tasks go to
    `inner` (the layer-timing job)."""

    def __init__(self, inner: Any, space: SearchSpace, paired: PairedVisits, model_dir: Path, batch_size: int
                 ) -> None:
        self.inner = inner
        self.space = space
        self.paired = paired
        self.model_dir = model_dir
        self.batch_size = batch_size
        self.calibrations = 0

    @property
    def measurements(self) -> int:
        """Tasks timed by this job (layer tasks and calibration subnets)."""
        return int(getattr(self.inner, "measurements", 0)) + self.calibrations

    def __call__(self, task: Task) -> dict[str, Any]:
        if not task.item_id.startswith(CALIBRATION_PREFIX):
            return self.inner(task)
        self.calibrations += 1
        from ofa_deploy.profiling.models import export_subnet
        from ofa_deploy.spaces import SubnetConfig

        cfg = SubnetConfig.from_string(task.item_id[len(CALIBRATION_PREFIX):])
        if self.paired.backend.model_format == "module":
            from ofa_deploy.nn.layers import SubnetModel

            path: Any = SubnetModel(self.space.walk_layers(cfg)).eval()
        else:
            path = export_subnet(self.space, cfg, self.model_dir, batch_size=self.batch_size)
        with self.backend_prepare(path, cfg) as runner:
            visit = self.paired(runner)
        return {"id": task.item_id, "round": task.round, "seq": task.seq, "anchor": False, **visit,
                "t": time.time()}

    def backend_prepare(self, path: Any, cfg: Any) -> Any:
        return self.paired.backend.prepare(path, (self.batch_size, 3, cfg.resolution, cfg.resolution))

    def close(self) -> None:
        self.inner.close()
        self.paired.close()


class LayerTimingJob:
    """Times one task: prepares (and caches) a runner per layer, then runs one round of the timer.

    Runners are kept in an LRU cache of `max_runners` (session reuse across rounds); models are exported on
    first use into `model_dir` and reused by later builds and rounds.
    """

    def __init__(self, plan: Plan, backend: Any, settings: TimerSettings, model_dir: Path, *,
                 max_runners: int = 512, anchor: tuple[Any, tuple[int, ...]] | None = None) -> None:
        self.items = {i.id: i for i in plan.items}
        self.anchor = anchor
        self.backend = backend
        self.settings = settings
        self.model_dir = model_dir
        self.max_runners = max_runners
        self._runners: OrderedDict[str, Any] = OrderedDict()
        self._flusher = CacheFlusher(settings.flush_kb) if settings.flush_kb else None
        self.measurements = 0

    def _model(self, item_id: str) -> tuple[Any, tuple[int, ...]]:
        if item_id == ANCHOR_ID:
            if self.anchor is None:
                raise ConfigError("this layer-timing job was built without an anchor model")
            return self.anchor
        if item_id == OVERHEAD_ID:
            if self.backend.model_format == "module":
                from torch import nn

                return nn.Identity(), (1, 1, 1, 1)
            return write_identity_model(self.model_dir / "overhead.onnx"), (1, 1, 1, 1)
        item = self.items[item_id]
        if self.backend.model_format == "module":
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
    #: device-pool builds: devices, each one's anchor median, the flagged ones (their records are kept apart)
    pool: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        out = {"path": str(self.path), "store": str(self.store_path), "entries": len(self.table),
               "measured": self.measured, "reused": self.reused, "seconds": round(self.seconds, 2),
               "overhead_ms": self.overhead_ms, "drift": self.drift}
        return {**out, "pool": self.pool} if self.pool else out


def store_path_for(out_path: Path) -> Path:
    return out_path.with_name(out_path.name + ".measurements.jsonl")


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


def _drift(anchor_visits: Sequence[float]) -> dict[str, float]:
    """The anchor's absolute series over the build, relative to its median (how much the machine moved)."""
    if len(anchor_visits) < 2:
        return {}
    ratios = np.asarray(anchor_visits) / float(np.median(anchor_visits))
    return {"visits": int(ratios.size), "min": float(ratios.min()), "max": float(ratios.max()),
            "std": float(ratios.std())}


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
    return table, over, _drift(anchors)


def in_context_table(space: SearchSpace, records: Sequence[dict[str, Any]], provenance: Any
                     ) -> tuple[Any, float, dict[str, float]]:
    """LatencyTable (anchor units) from in-context records; drift = the anchor's spread over the build."""
    from ofa_deploy.profiling.incontext import table_entries
    from ofa_deploy.tables.latency import LatencyStats, LatencyTable

    layer_records = [r for r in records if not r["id"].startswith(CALIBRATION_PREFIX)]
    table = LatencyTable(provenance=provenance, stat="median")
    for spec, values in table_entries(space, layer_records).items():
        table[spec] = LatencyStats.from_samples(values)
    return table, 0.0, _drift([r["anchor_ms"] for r in records])


def calibration_points(space: SearchSpace, records: Sequence[dict[str, Any]]) -> tuple[list[Any], np.ndarray]:
    """(configs, median anchor ratio over rounds) of the build's calibration subnets."""
    from ofa_deploy.spaces import SubnetConfig

    ratios: dict[str, list[float]] = defaultdict(list)
    for rec in records:
        if rec["id"].startswith(CALIBRATION_PREFIX):
            ratios[rec["id"][len(CALIBRATION_PREFIX):]].append(rec["ratio"])
    cfgs = [SubnetConfig.from_string(c) for c in ratios]
    return cfgs, np.array([np.median(v) for v in ratios.values()])


def fit_table_calibration(space: SearchSpace, table: Any, cfgs: Sequence[Any], measured_units: np.ndarray) -> Any:
    """Fit the table's calibration on all calibration subnets; score it by two-fold cross-validation.

    `fit` records the held-out scores (each half predicted by a fit on the other half) next to the raw sum's.
    """
    from ofa_deploy.predictors.latency import LatencyPredictor, fit_linear_calibration
    from ofa_deploy.tables.latency import Calibration

    if len(cfgs) < 6:
        return Calibration(fit={"n": len(cfgs), "note": "too few calibration subnets to fit (need >= 6)"})
    raw = LatencyPredictor(space, table, calibrated=False)
    sums = raw.predict_units(cfgs)
    counts = np.array([len(space.walk_layers(c)) for c in cfgs], dtype=float)
    folds = np.arange(len(cfgs)) % 2
    held_out = np.empty_like(sums)
    for k in (0, 1):
        train, test = folds != k, folds == k
        cal = fit_linear_calibration(sums[train], counts[train], measured_units[train])
        held_out[test] = cal.apply(sums[test], counts[test])
    final = fit_linear_calibration(sums, counts, measured_units)
    scale_only = sums * float(np.median(measured_units / sums))
    from ofa_deploy.profiling.validate import agreement

    fit = {"n": len(cfgs), "model": "scale * sum + offset + per_layer * n_layers (anchor units)",
           "raw_sum": agreement(sums, measured_units), "global_scale": agreement(scale_only, measured_units),
           "held_out_2fold": agreement(held_out, measured_units),
           "configs": [c.to_string() for c in cfgs], "measured_units": measured_units.tolist()}
    return Calibration(scale=final.scale, offset=final.offset, per_layer=final.per_layer, fit=fit)


def make_provenance(profile: Any, backend: Any, space_name: str, settings: TimerSettings, *, notes: str = "",
                    estimate: str = "", method: str = "isolated", protocol: ProtocolSettings | None = None) -> Any:
    from ofa_deploy.profiling.host import host_fingerprint
    from ofa_deploy.tables.latency import Provenance, tool_version

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
                                   "protocol": protocol.to_dict() if protocol else None,
                                   "python": sys.version.split()[0]}),
        host=host_fingerprint(backend=desc, profile=profile),
    )


@dataclass
class BuildJobFactory:
    """Everything a worker needs to build the timing job of a LUT build where it runs (picklable: the backend
    is created from the profile in the worker)."""

    space: SearchSpace
    plan: Plan
    method: str
    profile: Any
    settings: TimerSettings
    protocol: ProtocolSettings
    model_dir: Path
    anchor_path: Any
    anchor_shape: tuple[int, ...]

    def make(self, backend: Any, paired: PairedVisits | None = None) -> CalibrationJob:
        paired = paired or PairedVisits(backend, self.anchor_path, self.anchor_shape, self.protocol)
        if self.method == "isolated":
            inner: Any = LayerTimingJob(self.plan, backend, self.settings, self.model_dir,
                                        anchor=(self.anchor_path, self.anchor_shape))
        else:
            from ofa_deploy.profiling.incontext import InContextJob

            inner = InContextJob(self.space, backend, self.settings, self.model_dir,
                                 batch_size=self.plan.batch_size, paired=paired)
        return CalibrationJob(inner, self.space, paired, self.model_dir, self.plan.batch_size)

    def build(self) -> CalibrationJob:
        from ofa_deploy.profiling.backends import create_backend

        return self.make(create_backend(self.profile))


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
    protocol: ProtocolSettings | None = None,
    limit: int | None = None,
    model_dir: str | os.PathLike[str] | None = None,
    backend: Any = None,
    method: str = "auto",
    context_subnets: int = 0,
    calibration_subnets: int = 24,
) -> BuildResult:
    """Measure every distinct layer of `space` at `resolutions` on `profile`'s backend; write the LUT.

    Args:
        space: the search space (its `walk_layers` defines the layers).
        resolutions: input sides (None: all of the space's).
        profile: a `HardwareProfile` (backend, threads, anchor, warm-up/repeats/rounds).
        out_path: the LUT JSON to write (atomically, at the end).
        executor: runs the work items (default `LocalExecutor`: sequential, in this process).
        progress: a progress bar on stderr (shown on a terminal only).
        resume: continue from ``<out>.measurements.jsonl`` if present (False: start over).
        timer: layer timing settings (default: from the profile): rounds, and runs per profiled/isolated visit.
        protocol: anchor-paired visit settings (default: from the profile).
        limit: only the first `limit` layers of the plan (quick runs and tests).
        model_dir: where models are exported (default: `model_cache_dir()`, shared across builds).
        backend: a prepared backend (default: `create_backend(profile)`).
        method: "in_context" (ORT profiler inside covering subnets), "isolated" (one model per layer) or
            "auto" (in_context for ONNX Runtime, else isolated). With in_context, `limit` caps the number of
            covering subnets instead of layers.
        context_subnets: in_context only: this many extra random subnets per resolution (seeded, fixed) are
            profiled besides the covering ones, so each layer is also seen in mixed contexts.
        calibration_subnets: random whole subnets timed against the anchor every round; the table's
            calibration is fitted on them (0: no calibration).
    """
    from ofa_deploy.profiling.anchor import AnchorInfo, anchor_model, resolve_anchor_config
    from ofa_deploy.profiling.backends import create_backend

    start = time.perf_counter()
    out = Path(out_path)
    settings = timer or TimerSettings.from_profile(profile)
    paired_settings = protocol or ProtocolSettings.from_profile(profile)
    plan = make_plan(space, resolutions, batch_size=int(getattr(profile, "batch_size", 1)), limit=limit)
    backend = backend or create_backend(profile)
    if getattr(executor, "pooled", False) and method == "auto":
        method = "isolated"  # device pools pair every item with the anchor on its own device
    method = resolve_method(method, backend, space.family)
    models = Path(model_dir) if model_dir else model_cache_dir()
    models.mkdir(parents=True, exist_ok=True)
    profile_name = getattr(profile, "name", str(profile))
    anchor_cfg = resolve_anchor_config(space, getattr(profile, "anchor", None), source=f"profile {profile_name}")
    if backend.model_format == "module":
        from ofa_deploy.nn.layers import SubnetModel

        anchor_path: Any = SubnetModel(space.walk_layers(anchor_cfg)).eval()
    else:
        anchor_path = anchor_model(space, anchor_cfg, models, batch_size=plan.batch_size, profile=profile_name)
    anchor_shape = (plan.batch_size, 3, anchor_cfg.resolution, anchor_cfg.resolution)
    paired = PairedVisits(backend, anchor_path, anchor_shape, paired_settings, profile_name)
    if limit is not None:
        calibration_subnets = 0  # a partial table cannot predict whole subnets
    rng = np.random.default_rng(CALIBRATION_SEED)
    calib_ids = list(dict.fromkeys(
        CALIBRATION_PREFIX + space.sample(rng, resolution=int(rng.choice(plan.resolutions))).to_string()
        for _ in range(calibration_subnets)))
    header: dict[str, Any] = {
        "job": "lut-build", "method": method, "space": space.name, "resolutions": list(plan.resolutions),
        "limit": limit, "profile": profile_name, "profile_sha256": getattr(profile, "sha256", ""),
        "timer": settings.to_dict(), "protocol": paired_settings.to_dict(), "anchor": anchor_cfg.to_string(),
        "calibration_subnets": calibration_subnets}
    if method == "isolated":
        all_tasks = schedule(plan, settings, [ANCHOR_ID], calib_ids)
    else:
        plan = make_plan(space, resolutions, batch_size=plan.batch_size)
        cfgs = covering_set(space, plan.resolutions, {i.spec for i in plan.items})
        cfg_ids = [c.to_string() for c in cfgs][:limit]
        if context_subnets:
            ctx_rng = np.random.default_rng(CONTEXT_SEED)
            extra = [space.sample(ctx_rng, resolution=r).to_string() for r in plan.resolutions
                     for _ in range(context_subnets)]
            cfg_ids += [c for c in dict.fromkeys(extra) if c not in cfg_ids]
        header["configs"] = len(cfg_ids)
        all_tasks = schedule_configs(cfg_ids + calib_ids, settings)
    factory = BuildJobFactory(space, plan, method, profile, settings, paired_settings, models, anchor_path,
                              anchor_shape)
    executor = executor or LocalExecutor()
    pooled = bool(getattr(executor, "pooled", False))
    if pooled:
        job: Any = executor.build_job(factory)  # type: ignore[attr-defined]
    elif isinstance(executor, LocalExecutor):
        job = factory.make(backend, paired)  # the caller's backend, in this process
    else:
        job = factory  # built by each worker with its own backend
    # every header key must match to resume; --no-resume starts the store over
    store = JsonlStore(store_path_for(out), header, resume=resume, overwrite=True, what="measurement store")
    done = {_key(r) for r in store}
    tasks = [t for t in all_tasks if _key(t) not in done]
    reused = len(done)
    bar = None
    if progress and tasks:
        from ofa_deploy.progress import progress_bar

        bar = progress_bar(total=len(tasks), desc=f"profiling {space.name}", unit="item", leave=False)
    measured = 0
    records: list[dict[str, Any]] = store.records
    pool: dict[str, Any] = {}
    try:
        if pooled:
            records, pool, measured = executor.run_build(  # type: ignore[attr-defined]
                job, tasks, all_tasks, store, on_record=bar.update if bar is not None else None)
        else:
            for record in executor.map(job, tasks):
                store.append(record)
                measured += 1
                if bar is not None:
                    bar.update(1)
    finally:
        if bar is not None:
            bar.close()
        if hasattr(job, "close") and not hasattr(job, "build"):
            job.close()
    estimate = ("in-context: per-layer minimum over the runs of each round (ORT profiler kernel times inside "
                "covering subnets), scaled to the subnet's anchor ratio, median over occurrences, then over rounds"
                if method == "in_context" else
                "isolated: median over rounds of per-round minima divided by the anchor visits around them, minus "
                "per-call overhead")
    provenance = make_provenance(profile, backend, space.name, settings, estimate=estimate, method=method,
                                 protocol=paired_settings)
    if pool:
        provenance = executor.build_provenance(provenance, pool)  # type: ignore[attr-defined]
    if method == "isolated":
        table, overhead, drift = table_from_records(plan, records, provenance=provenance)
        anchor_visits = [r["ms"] for r in records if r["id"] == ANCHOR_ID]
    else:
        table, overhead, drift = in_context_table(space, records, provenance)
        anchor_visits = [r["anchor_ms"] for r in records]
    table.anchor = AnchorInfo.from_visits(anchor_cfg.to_string(), space.name, plan.batch_size, anchor_visits)
    cal_cfgs, cal_units = calibration_points(space, records)
    if calibration_subnets:
        table.calibration = fit_table_calibration(space, table, cal_cfgs, cal_units)
    table.save(out)
    seconds = time.perf_counter() - start
    log.info("wrote %s: %d layers, %d measured now, %d reused, %.1f s", out, len(table), measured, reused, seconds)
    return BuildResult(table, out, store.path, measured, reused, seconds, overhead * table.anchor.ms, drift, pool)
