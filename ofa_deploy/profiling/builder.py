"""Build a latency lookup table: time every distinct layer of a space once per hardware profile.

The build is the same whatever the method (`profiling.methods`): the method gives the tasks, the job that
times one task and the reduce from records to entries; the build schedules the tasks with the calibration
subnets, runs them through an executor into a resumable JSON-lines store next to the output
(``<out>.measurements.jsonl``, so an interrupted build resumes without re-measuring anything), reduces, and
writes the table atomically with provenance. Methods:

- ``"in_context"`` (`profiling.incontext`, default for ONNX Runtime on MobileNet-style spaces): layers are
  timed inside whole covering subnets with the ORT profiler; sums of these entries match whole-network latency.
- ``"isolated"`` (`profiling.isolated`; any backend, device pools and the on-device script): one model per layer.

Every measurement is tied to the profile's anchor model (`profiling.timing.anchor`, `profiling.timing.protocol`):
in-context tasks time their subnet bracketed by the anchor (A, subnet, A), isolated builds visit the anchor
through every round and divide each layer by the anchor visits around it. Entries are stored in anchor units with the
anchor's median absolute time (`AnchorInfo`), so a machine that is faster or slower for a while shifts the
anchor and the items alike. Each round also times `calibration_subnets` random whole subnets against the
anchor; a calibration ``scale * sum + offset + per_layer * n_layers`` is fitted on them, scored on held-out
halves, and stored with the table. The table records the host's fingerprint (`profiling.hosts.fingerprint`).
"""
from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ofa_deploy import hostinfo
from ofa_deploy.errors import ConfigError
from ofa_deploy.executors import Executor, LocalExecutor
from ofa_deploy.profiling.incontext import InContextMethod
from ofa_deploy.profiling.isolated import IsolatedMethod, task_model
from ofa_deploy.profiling.timing.measure import PairedVisits
from ofa_deploy.profiling.methods import BuildMethod, Task, task_key, task_record
from ofa_deploy.profiling.models import model_cache_dir
from ofa_deploy.profiling.plan import CALIBRATION_PREFIX
from ofa_deploy.profiling.timing.protocol import ProtocolSettings
from ofa_deploy.profiling.timing.timer import TimerSettings
from ofa_deploy.spaces import SearchSpace
from ofa_deploy.spaces.family import family_of
from ofa_deploy.store import JsonlStore

log = logging.getLogger(__name__)

#: seed of the random whole subnets a build measures for its calibration
CALIBRATION_SEED = 20_261_130


class CalibrationJob:
    """Times calibration tasks (``calib:<subnet>``): the whole subnet against the anchor; other tasks go to
    `inner` (the method's job)."""

    def __init__(self, inner: Any, space: SearchSpace, plan: Any, paired: PairedVisits, model_dir: Path) -> None:
        self.inner = inner
        self.space = space
        self.plan = plan
        self.paired = paired
        self.model_dir = model_dir
        self.calibrations = 0

    @property
    def measurements(self) -> int:
        """Tasks timed by this job (layer tasks and calibration subnets)."""
        return int(getattr(self.inner, "measurements", 0)) + self.calibrations

    def __call__(self, task: Task) -> dict[str, Any]:
        if not task.item_id.startswith(CALIBRATION_PREFIX):
            return self.inner(task)
        self.calibrations += 1
        backend = self.paired.backend
        model, shape = task_model(self.space, self.plan, task.item_id, self.model_dir,
                                  model_format=backend.model_format)
        with backend.prepare(model, shape) as runner:
            visit = self.paired(runner)
        return task_record(task, **visit)

    def close(self) -> None:
        self.inner.close()
        self.paired.close()


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
    from ofa_deploy.profiling.hosts.fingerprint import host_fingerprint
    from ofa_deploy.tables.latency import Provenance, tool_version

    desc = backend.describe() if backend is not None else {}
    host = hostinfo.read_host()
    return Provenance(
        device=host.node or "host",
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
    method: BuildMethod
    profile: Any
    protocol: ProtocolSettings
    model_dir: Path
    anchor_path: Any
    anchor_shape: tuple[int, ...]

    @property
    def plan(self) -> Any:
        return self.method.plan

    def make(self, backend: Any, paired: PairedVisits | None = None) -> CalibrationJob:
        paired = paired or PairedVisits(backend, self.anchor_path, self.anchor_shape, self.protocol)
        return CalibrationJob(self.method.job(backend, paired), self.space, self.plan, paired, self.model_dir)

    def build(self) -> CalibrationJob:
        from ofa_deploy.profiling.timing.backends import create_backend

        return self.make(create_backend(self.profile))


#: the build methods by name (each implements `profiling.methods.BuildMethod` and has a `create` constructor)
BUILD_METHODS: dict[str, Any] = {"in_context": InContextMethod, "isolated": IsolatedMethod}
METHODS = ("auto", *BUILD_METHODS)


def resolve_method(method: str, backend: Any, space: SearchSpace, *, pooled: bool = False) -> str:
    """'auto' → 'isolated' on a device pool (every item is paired with the anchor on its own device), else
    'in_context' for ONNX Runtime backends (profiler available) when the space's family allows it
    (`ModelFamily.in_context_lut`: the MobileNet families), else 'isolated'. ResNet covering sets are 54 whole
    ResNets per resolution (~50-100 MB of ONNX each), so ResNet spaces default to isolated timing; pass
    method='in_context' explicitly to use it anyway."""
    if method not in METHODS:
        raise ConfigError(f"unknown LUT build method {method!r}; expected one of {METHODS}")
    if method != "auto":
        return method
    profiler = getattr(backend, "name", "") == "onnxruntime" and family_of(space).in_context_lut
    return "in_context" if profiler and not pooled else "isolated"


def make_method(name: str, space: SearchSpace, resolutions: Sequence[int] | None, *, batch_size: int,
                settings: TimerSettings, model_dir: Path, anchor: tuple[Any, tuple[int, ...]],
                limit: int | None = None, context_subnets: int = 0) -> BuildMethod:
    """The build method `name` (a key of `BUILD_METHODS`; resolve "auto" first) for `space` at `resolutions`.

    `limit` keeps the first layers of the plan (isolated) or the first covering subnets (in_context);
    `context_subnets` adds random subnets per resolution to an in-context build."""
    if name not in BUILD_METHODS:
        raise ConfigError(f"unknown LUT build method {name!r}; expected one of {sorted(BUILD_METHODS)}")
    return BUILD_METHODS[name].create(space, resolutions, batch_size=batch_size, settings=settings,
                                      model_dir=model_dir, anchor=anchor, limit=limit,
                                      context_subnets=context_subnets)


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
    from ofa_deploy.profiling.timing.anchor import anchor_model, resolve_anchor_config
    from ofa_deploy.tables.anchor import AnchorInfo
    from ofa_deploy.profiling.timing.backends import create_backend

    start = time.perf_counter()
    out = Path(out_path)
    settings = timer or TimerSettings.from_profile(profile)
    paired_settings = protocol or ProtocolSettings.from_profile(profile)
    batch_size = int(getattr(profile, "batch_size", 1))
    backend = backend or create_backend(profile)
    method = resolve_method(method, backend, space, pooled=bool(getattr(executor, "pooled", False)))
    models = Path(model_dir) if model_dir else model_cache_dir()
    models.mkdir(parents=True, exist_ok=True)
    profile_name = getattr(profile, "name", str(profile))
    anchor_cfg = resolve_anchor_config(space, getattr(profile, "anchor", None), source=f"profile {profile_name}")
    if backend.model_format == "module":
        from ofa_deploy.nn.layers import SubnetModel

        anchor_path: Any = SubnetModel(space.walk_layers(anchor_cfg)).eval()
    else:
        anchor_path = anchor_model(space, anchor_cfg, models, batch_size=batch_size, profile=profile_name)
    anchor_shape = (batch_size, 3, anchor_cfg.resolution, anchor_cfg.resolution)
    build = make_method(method, space, resolutions, batch_size=batch_size, settings=settings, model_dir=models,
                        anchor=(anchor_path, anchor_shape), limit=limit, context_subnets=context_subnets)
    plan = build.plan
    paired = PairedVisits(backend, anchor_path, anchor_shape, paired_settings, profile_name)
    if limit is not None:
        calibration_subnets = 0  # a partial table cannot predict whole subnets
    rng = np.random.default_rng(CALIBRATION_SEED)
    calib_ids = list(dict.fromkeys(
        CALIBRATION_PREFIX + space.sample(rng, resolution=int(rng.choice(plan.resolutions))).to_string()
        for _ in range(calibration_subnets)))
    header: dict[str, Any] = {
        "job": "lut-build", "method": build.name, "space": space.name, "resolutions": list(plan.resolutions),
        "limit": limit, "profile": profile_name, "profile_sha256": getattr(profile, "sha256", ""),
        "timer": settings.to_dict(), "protocol": paired_settings.to_dict(), "anchor": anchor_cfg.to_string(),
        "calibration_subnets": calibration_subnets, **build.header()}
    all_tasks = build.tasks(calib_ids)
    factory = BuildJobFactory(space, build, profile, paired_settings, models, anchor_path, anchor_shape)
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
    done = {task_key(r) for r in store}
    tasks = [t for t in all_tasks if task_key(t) not in done]
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
    provenance = make_provenance(profile, backend, space.name, settings, estimate=build.estimate, method=build.name,
                                 protocol=paired_settings)
    if pool:
        provenance = executor.build_provenance(provenance, pool)  # type: ignore[attr-defined]
    result = build.reduce(records, provenance)
    table = result.table
    table.anchor = AnchorInfo.from_visits(anchor_cfg.to_string(), space.name, plan.batch_size, result.anchor_visits_ms)
    cal_cfgs, cal_units = calibration_points(space, records)
    if calibration_subnets:
        table.calibration = fit_table_calibration(space, table, cal_cfgs, cal_units)
    table.save(out)
    seconds = time.perf_counter() - start
    log.info("wrote %s: %d layers, %d measured now, %d reused, %.1f s", out, len(table), measured, reused, seconds)
    return BuildResult(table, out, store.path, measured, reused, seconds, result.overhead_units * table.anchor.ms,
                       result.drift, pool)


__all__ = ["BUILD_METHODS", "METHODS", "BuildJobFactory", "BuildResult", "CalibrationJob", "build_lut",
           "calibration_points", "fit_table_calibration", "make_method", "make_provenance", "resolve_method",
           "store_path_for"]
