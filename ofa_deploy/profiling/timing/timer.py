"""Timing one visit of a model: warm-up runs, then a robust statistic of individually timed runs.

A visit warms the entry up, times `repeats` single runs and keeps one robust value (the minimum by default, or
a low percentile such as ``"p10"``), with the garbage collector paused. Rounds, random visiting orders and the
anchor model that ties every visit to the machine's speed at that moment are the job of
`ofa_deploy.profiling.timing.protocol` (and of the LUT builder's schedules), which call `measure_round`.

Clocks: ``"wall"`` (``perf_counter_ns``) or ``"thread"`` (``thread_time_ns``: CPU time of the calling thread,
valid when the backend computes on the calling thread only, e.g. ONNX Runtime / torch with 1 thread; it does not
count time the thread spent preempted). ``"auto"`` uses the runner's ``natural_clock``.
"""
from __future__ import annotations

import gc
import logging
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ofa_deploy.errors import ConfigError

log = logging.getLogger(__name__)

CLOCKS = ("auto", "wall", "thread")


@dataclass(frozen=True)
class TimerSettings:
    """How one entry is timed in one round, and how many rounds there are.

    Attributes:
        warmup: untimed runs before each round's timed runs.
        repeats: timed runs per entry per round.
        rounds: rounds; each visits every entry once, in a fresh random order.
        statistic: per-round statistic over the `repeats` runs: ``"min"``, ``"median"`` or ``"pNN"``.
        clock: ``"auto"`` | ``"wall"`` | ``"thread"``.
        seed: seed of the visiting order.
        anchor_every: re-time the anchors after this many entries (0: once at the start of each round).
        flush_kb: before every timed run, stream through a buffer of this many KiB (untimed) so the layer starts
            with cold private caches, as it does inside a whole network (0: off).
    """

    warmup: int = 5
    repeats: int = 20
    rounds: int = 5
    statistic: str = "min"
    clock: str = "auto"
    seed: int = 0
    anchor_every: int = 25
    flush_kb: int = 0

    def __post_init__(self) -> None:
        if self.warmup < 0 or self.repeats < 1 or self.rounds < 1:
            raise ConfigError(f"timer needs warmup >= 0, repeats >= 1, rounds >= 1; got {self}")
        if self.clock not in CLOCKS:
            raise ConfigError(f"unknown clock {self.clock!r}; expected one of {CLOCKS}")
        round_statistic([1.0], self.statistic)  # validates the name

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_profile(cls, profile: Any, **overrides: Any) -> TimerSettings:
        """Settings from a HardwareProfile's warmup/repeats/rounds/statistic/clock fields (missing → defaults)."""
        values: dict[str, Any] = {}
        for name in ("warmup", "repeats", "rounds", "statistic", "clock", "seed", "anchor_every", "flush_kb"):
            value = profile.get(name) if isinstance(profile, dict) else getattr(profile, name, None)
            if value is not None:
                values[name] = value
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def round_statistic(samples_ms: Sequence[float], statistic: str) -> float:
    """The robust value of one round's samples: min, median, or a percentile ``"pNN"``."""
    if statistic == "min":
        return float(min(samples_ms))
    if statistic == "median":
        return float(statistics.median(samples_ms))
    if statistic.startswith("p") and statistic[1:].replace(".", "", 1).isdigit():
        return float(np.percentile(np.asarray(samples_ms), float(statistic[1:])))
    raise ConfigError(f"unknown timing statistic {statistic!r}; expected 'min', 'median' or 'pNN' (e.g. 'p10')")


def resolve_clock(clock: str, runner: Any) -> str:
    if clock == "auto":
        return getattr(runner, "natural_clock", "wall")
    return clock


class CacheFlusher:
    """Reads through `kb` KiB of memory to evict the private caches with clean lines; callable."""

    def __init__(self, kb: int) -> None:
        self._buf = np.ones(max(kb, 1) * 256, dtype=np.float32)

    def __call__(self) -> None:
        self._buf.sum()


def time_runs(run: Callable[[], None], *, warmup: int, repeats: int, clock: str = "wall",
              before: Callable[[], None] | None = None) -> list[float]:
    """`warmup` untimed calls, then `repeats` individually timed calls (ms), each preceded by an untimed
    `before()` if given. GC is paused meanwhile."""
    now = time.thread_time_ns if clock == "thread" else time.perf_counter_ns
    for _ in range(warmup):
        run()
    out = []
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeats):
            if before is not None:
                before()
            t0 = now()
            run()
            out.append((now() - t0) / 1e6)
    finally:
        if gc_was_enabled:
            gc.enable()
    return out


def measure_round(runner: Any, settings: TimerSettings, flusher: Callable[[], None] | None = None
                  ) -> tuple[float, list[float]]:
    """One round for one runner: (robust value, raw samples) in ms."""
    if flusher is None and settings.flush_kb:
        flusher = CacheFlusher(settings.flush_kb)
    samples = time_runs(runner.run, warmup=settings.warmup, repeats=settings.repeats,
                        clock=resolve_clock(settings.clock, runner), before=flusher)
    return round_statistic(samples, settings.statistic), samples
