"""The small protocol every LUT build method implements: its tasks, the job that times one task, the reduce.

A build (`profiling.builder.build_lut`) does the same thing whatever the method: schedule the method's tasks
(plus the calibration subnets), run them through an executor into a resumable store, reduce the records to a
`LatencyTable` in anchor units, attach the anchor and the calibration, and write the table. What differs
between methods is only what a task is, how one is timed and how records become entries:

- ``isolated`` (`profiling.isolated`): one model per layer; tasks are (layer, round) pairs with anchor visits
  through every round.
- ``in_context`` (`profiling.incontext`): layers timed with the ONNX Runtime profiler inside whole covering
  subnets; tasks are (subnet, round) pairs, each bracketed by the anchor.

A method object is picklable (workers of a process or Ray executor build their job from it).
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ofa_deploy.profiling.plan import Plan


@dataclass(frozen=True)
class Task:
    """One unit of work: time `item_id` for round `round` (`anchor`: an extra drift visit)."""

    item_id: str
    round: int
    seq: int
    anchor: bool = False


#: what times one task where it runs: task -> record (a JSON-able dict with id, round, seq)
Job = Callable[[Task], dict[str, Any]]


@dataclass
class MethodResult:
    """What a method's reduce gives the build: the table (anchor units, without anchor info or calibration),
    the per-call overhead in anchor units, the anchor's drift summary and its absolute visits (ms)."""

    table: Any
    overhead_units: float = 0.0
    drift: dict[str, float] = field(default_factory=dict)
    anchor_visits_ms: list[float] = field(default_factory=list)


@runtime_checkable
class BuildMethod(Protocol):
    """How a LUT build times layers (see the module docstring)."""

    #: the method's name as stored in the measurement store's header and the table's provenance
    name: str
    #: one sentence for the provenance: how an entry is estimated
    estimate: str
    #: the layers the table will hold
    plan: Plan

    def header(self) -> dict[str, Any]:
        """Fields this method adds to the measurement store's header (a resume must match them)."""
        ...

    def tasks(self, calibration_ids: Sequence[str]) -> list[Task]:
        """Every task of the build in execution order, the calibration subnets interleaved."""
        ...

    def job(self, backend: Any, paired: Any) -> Job:
        """The callable that times this method's tasks on `backend` (`paired`: anchor-bracketed visits)."""
        ...

    def reduce(self, records: Sequence[dict[str, Any]], provenance: Any) -> MethodResult:
        """The table from the store's records (calibration records are ignored)."""
        ...


def drift(anchor_visits_ms: Sequence[float]) -> dict[str, float]:
    """The anchor's absolute series over the build, relative to its median (how much the machine moved)."""
    if len(anchor_visits_ms) < 2:
        return {}
    ratios = np.asarray(anchor_visits_ms) / float(np.median(anchor_visits_ms))
    return {"visits": int(ratios.size), "min": float(ratios.min()), "max": float(ratios.max()),
            "std": float(ratios.std())}


def task_key(task_or_record: Task | dict[str, Any]) -> tuple[str, int, int]:
    """(id, round, seq): what identifies a task and the record it produced (resume skips stored keys)."""
    if isinstance(task_or_record, dict):
        return task_or_record["id"], task_or_record["round"], task_or_record["seq"]
    return task_or_record.item_id, task_or_record.round, task_or_record.seq


def task_record(task: Task, **fields: Any) -> dict[str, Any]:
    """The record of a finished task: its key, its anchor flag and the measured `fields`."""
    return {"id": task.item_id, "round": task.round, "seq": task.seq, "anchor": task.anchor, **fields,
            "t": time.time()}
