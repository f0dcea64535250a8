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
`profiling.protocol`): the layer values of that task are scaled so that they sum to the subnet's anchor ratio.
This removes the profiler's own overhead and puts every entry in anchor units, immune to the machine's drift.
"""
from __future__ import annotations

import json
import logging
import os
import re
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ofa_deploy.errors import ConfigError
from ofa_deploy.profiling.models import export_config
from ofa_deploy.profiling.plan import covering_set  # noqa: F401 - re-exported (moved to plan)
from ofa_deploy.profiling.timer import TimerSettings
from ofa_deploy.spaces import SearchSpace, SubnetConfig

log = logging.getLogger(__name__)

LAYER_SCOPE = re.compile(r"^/layers\.(\d+)/")


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

    def __call__(self, task: Any) -> dict[str, Any]:
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
        return {"id": task.item_id, "round": task.round, "seq": task.seq, "anchor": task.anchor,
                "layers": layers.tolist(), **visit, "t": time.time()}

    def close(self) -> None:
        pass


def table_entries(space: SearchSpace, records: Sequence[dict[str, Any]], *, rescale: bool = True
                  ) -> dict[Any, list[float]]:
    """spec → per-round values: median over the spec's occurrences within each round.

    With `rescale`, each record's layer times are scaled so they sum to the same subnet's anchor ratio measured
    without the profiler in the same task (removes the profiler's own per-node cost and gives anchor units; the
    shares between layers come from the profiler, the total from the paired end-to-end timing).
    """
    per_round: dict[tuple[Any, int], list[float]] = defaultdict(list)
    for rec in records:
        cfg = SubnetConfig.from_string(rec["id"])
        scale = float(rec["ratio"]) / float(sum(rec["layers"])) if rescale else 1.0
        for spec, value in zip(space.walk_layers(cfg), rec["layers"]):
            per_round[(spec, rec["round"])].append(value * scale)
    out: dict[Any, list[float]] = defaultdict(list)
    for (spec, _), values in sorted(per_round.items(), key=lambda kv: kv[0][1]):
        out[spec].append(float(np.median(values)))
    return out
