"""Robust latency timing for noisy machines.

A shared VM drifts by 30-50% over minutes and other processes preempt the timing thread. The timer therefore
- warms every entry up before each batch of timed runs,
- times `repeats` single runs per entry and keeps one robust value per *round* (the minimum by default,
  or a low percentile such as ``"p10"``),
- repeats this over several `rounds`, visiting the entries in a fresh random order each round so slow phases
  of the machine are spread over all entries instead of hitting a few,
- keeps the median over rounds of those per-round values as the estimate (`Samples.estimate`),
- re-times a few fixed *anchor* entries every `anchor_every` entries to record drift (`TimingResult.drift`).

Clocks: ``"wall"`` (``perf_counter_ns``) or ``"thread"`` (``thread_time_ns``: CPU time of the calling thread,
valid when the backend computes on the calling thread only, e.g. ONNX Runtime / torch with 1 thread; it does not
count time the thread spent preempted). ``"auto"`` uses the runner's ``natural_clock``.
"""
from __future__ import annotations

import gc
import logging
import statistics
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
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


@dataclass
class Samples:
    """Per-round robust values of one entry (ms), plus all raw samples."""

    per_round: list[float] = field(default_factory=list)
    raw: list[float] = field(default_factory=list)

    @property
    def estimate(self) -> float:
        """Median over rounds of the per-round values."""
        return float(statistics.median(self.per_round))

    def summary(self) -> dict[str, float]:
        """median/mean/std/p90/n over the per-round values (the LatencyStats fields)."""
        return summarize(self.per_round)


def summarize(values: Sequence[float]) -> dict[str, float]:
    arr = np.asarray(values, dtype=float)
    return {"median": float(np.median(arr)), "mean": float(arr.mean()),
            "std": float(arr.std(ddof=1)) if arr.size > 1 else 0.0,
            "p90": float(np.percentile(arr, 90)), "n": int(arr.size)}


@dataclass
class TimingResult:
    """Samples per entry and the anchors' drift series (ratio of each anchor visit to the anchors' median)."""

    samples: dict[Hashable, Samples]
    drift: list[float]
    settings: TimerSettings
    seconds: float

    def estimates(self) -> dict[Hashable, float]:
        return {k: s.estimate for k, s in self.samples.items()}

    def drift_summary(self) -> dict[str, float]:
        if not self.drift:
            return {}
        d = np.asarray(self.drift)
        return {"n": int(d.size), "min": float(d.min()), "max": float(d.max()), "std": float(d.std())}


def time_interleaved(
    runners: Mapping[Hashable, Any],
    settings: TimerSettings,
    *,
    anchors: Sequence[Hashable] = (),
    progress: Callable[[int], None] | None = None,
) -> TimingResult:
    """Time every runner in `settings.rounds` rounds, each in a fresh random order, with anchors for drift.

    Args:
        runners: key → object with ``run()`` (a backend `Runner`).
        settings: warm-up/repeats/rounds/statistic/clock.
        anchors: keys of `runners` re-timed every `settings.anchor_every` entries; their ratio to their own
            median is the drift series (anchor visits also count as samples of those entries).
        progress: called with the number of entries finished after each entry.
    """
    keys = list(runners)
    missing = [a for a in anchors if a not in runners]
    if missing:
        raise ConfigError(f"anchor keys {missing} are not among the timed entries")
    rng = np.random.default_rng(settings.seed)
    samples = {k: Samples() for k in keys}
    anchor_visits: dict[Hashable, list[float]] = {a: [] for a in anchors}
    anchor_rounds: list[dict[Hashable, float]] = []
    start = time.perf_counter()

    flusher = CacheFlusher(settings.flush_kb) if settings.flush_kb else None

    def visit(key: Hashable) -> float:
        value, raw = measure_round(runners[key], settings, flusher)
        samples[key].raw.extend(raw)
        return value

    def time_anchors() -> None:
        if anchors:
            anchor_rounds.append({a: visit(a) for a in anchors})

    for _ in range(settings.rounds):
        order = [keys[i] for i in rng.permutation(len(keys))]
        time_anchors()
        for i, key in enumerate(order, 1):
            samples[key].per_round.append(visit(key))
            if progress is not None:
                progress(1)
            if settings.anchor_every and i % settings.anchor_every == 0 and i < len(order):
                time_anchors()
    drift: list[float] = []
    if anchor_rounds:
        for a in anchors:
            anchor_visits[a] = [r[a] for r in anchor_rounds]
        medians = {a: statistics.median(v) for a, v in anchor_visits.items()}
        drift = [float(statistics.median(r[a] / medians[a] for a in anchors)) for r in anchor_rounds]
    return TimingResult(samples=samples, drift=drift, settings=settings, seconds=time.perf_counter() - start)
