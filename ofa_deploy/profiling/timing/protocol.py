"""The anchor-paired timing protocol: latency as a ratio to a fixed anchor model timed alongside.

This VM's CPU speed drifts by 1.5x within minutes (thread CPU time drifts as much), so an absolute time from
one moment says little about another. A ratio to a reference measured *at the same moment* does hold. Every
timed item is therefore bracketed by the anchor (a fixed subnet of the space)::

    round r (fresh random order):  A  I1  A  I2  A  I3  A ...

Item k's value in a round is ``I_k / mean(A before, A after)``. Rounds repeat until the 95% bootstrap interval
of each item's median ratio is within ``±target`` (relative) or a time cap is hit; items that converged drop
out of later rounds. A result carries the ratio, its interval, the anchor's absolute median, the number of
rounds and whether it converged. Multiplying a ratio by an anchor time gives milliseconds: by the anchor time
stored with a latency table (the device at its reference speed), or by the anchor time of this run (wall clock
now).

`measure_paired` takes a `visit(runner) -> ms` function, so tests drive it with synthetic runners and a
deterministic drifting "machine" (no sleeps), and real runs use `timer.measure_round`.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ofa_deploy.errors import ConfigError
from ofa_deploy.profiling.timing.timer import TimerSettings, measure_round

log = logging.getLogger(__name__)

Visit = Callable[[Any], float]


@dataclass(frozen=True)
class ProtocolSettings:
    """How paired rounds are run and when they stop.

    Attributes:
        target: stop an item once its interval half-width is within ``target`` of its median ratio (0.03 = ±3%).
        confidence: coverage of the bootstrap interval.
        min_rounds: rounds every item gets before convergence is judged.
        max_rounds: rounds at most.
        time_cap_s: no new round starts after this many seconds (after `min_rounds`).
        warmup, repeats, statistic, clock: one visit = `warmup` untimed runs, then the `statistic` (min by
            default) of `repeats` timed runs.
        bootstrap: bootstrap resamples for the interval.
        seed: seed of the visiting order and the bootstrap.
    """

    target: float = 0.03
    confidence: float = 0.95
    min_rounds: int = 5
    max_rounds: int = 30
    time_cap_s: float = 300.0
    warmup: int = 3
    repeats: int = 10
    statistic: str = "min"
    clock: str = "auto"
    bootstrap: int = 2000
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.target < 1 or not 0.5 <= self.confidence < 1:
            raise ConfigError(f"protocol needs 0 < target < 1 and 0.5 <= confidence < 1; got {self}")
        if self.min_rounds < 2 or self.max_rounds < self.min_rounds:
            raise ConfigError(f"protocol needs 2 <= min_rounds <= max_rounds; got {self.min_rounds}, "
                              f"{self.max_rounds}")
        if self.time_cap_s <= 0 or self.bootstrap < 100:
            raise ConfigError(f"protocol needs time_cap_s > 0 and bootstrap >= 100; got {self}")
        self.timer()  # validates warmup/repeats/statistic/clock

    def timer(self) -> TimerSettings:
        """The per-visit timer settings."""
        return TimerSettings(warmup=self.warmup, repeats=self.repeats, rounds=1, statistic=self.statistic,
                             clock=self.clock, seed=self.seed)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_profile(cls, profile: Any, **overrides: Any) -> ProtocolSettings:
        """Settings from a `HardwareProfile`'s protocol fields (`interval_target`, `min_rounds`, `max_rounds`,
        `time_cap_s`, `visit_warmup`, `visit_repeats`, `statistic`, `clock`); None values keep the defaults."""
        names = {"target": "interval_target", "min_rounds": "min_rounds", "max_rounds": "max_rounds",
                 "time_cap_s": "time_cap_s", "warmup": "visit_warmup", "repeats": "visit_repeats",
                 "statistic": "statistic", "clock": "clock", "seed": "seed"}
        values: dict[str, Any] = {}
        for mine, theirs in names.items():
            value = getattr(profile, theirs, None) if not isinstance(profile, Mapping) else profile.get(theirs)
            if value is not None:
                values[mine] = value
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def median_interval(values: np.ndarray | list[float], *, confidence: float = 0.95, n_boot: int = 2000,
                    rng: np.random.Generator | int = 0) -> tuple[float, float]:
    """Percentile-bootstrap interval of the median of `values`."""
    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        raise ConfigError("median_interval needs at least one value")
    if arr.size == 1:
        return float(arr[0]), float(arr[0])
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    medians = np.median(arr[gen.integers(0, arr.size, size=(n_boot, arr.size))], axis=1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(medians, [tail, 1 - tail])
    return float(low), float(high)


def relative_halfwidth(median: float, interval: tuple[float, float]) -> float:
    """The larger distance from the median to an interval end, relative to the median."""
    if median <= 0:
        return float("inf")
    return max(median - interval[0], interval[1] - median) / median


@dataclass
class PairedResult:
    """One item's outcome: median ratio to the anchor, its interval, and the raw rounds.

    `ratios[i]` is round i's item/anchor; `item_ms[i]` and `anchor_ms[i]` are that round's absolute values.
    """

    ratio: float
    interval: tuple[float, float]
    anchor_ms: float
    rounds: int
    converged: bool
    ratios: list[float] = field(default_factory=list)
    item_ms: list[float] = field(default_factory=list)
    anchor_visits_ms: list[float] = field(default_factory=list)

    @property
    def wall_ms(self) -> float:
        """The item's median absolute time in this run (wall clock now, not comparable across moments)."""
        return float(np.median(self.item_ms))

    def ms(self, anchor_ms: float | None = None) -> float:
        """Milliseconds at the given anchor time (default: this run's median anchor time)."""
        return self.ratio * (self.anchor_ms if anchor_ms is None else anchor_ms)

    def interval_ms(self, anchor_ms: float | None = None) -> tuple[float, float]:
        ref = self.anchor_ms if anchor_ms is None else anchor_ms
        return self.interval[0] * ref, self.interval[1] * ref

    def halves(self) -> tuple[float, float]:
        """Median ratio of the even rounds and of the odd rounds (test-retest within one run)."""
        return float(np.median(self.ratios[0::2])), float(np.median(self.ratios[1::2] or self.ratios[0::2]))

    def to_dict(self) -> dict[str, Any]:
        return {"ratio": self.ratio, "interval": list(self.interval),
                "halfwidth": relative_halfwidth(self.ratio, self.interval), "anchor_ms": self.anchor_ms,
                "wall_ms": self.wall_ms, "rounds": self.rounds, "converged": self.converged,
                "ratios": self.ratios, "item_ms": self.item_ms}


@dataclass
class PairedRun:
    """All items of one `measure_paired` call, the anchor's absolute series, and the settings used."""

    results: dict[Hashable, PairedResult]
    anchor_visits_ms: list[float]
    settings: ProtocolSettings
    rounds: int
    seconds: float

    @property
    def anchor_ms(self) -> float:
        return float(np.median(self.anchor_visits_ms))

    @property
    def anchor_swing(self) -> float:
        """Slowest over fastest anchor visit: how much the machine's speed moved during the run."""
        a = np.asarray(self.anchor_visits_ms)
        return float(a.max() / a.min()) if a.size and a.min() > 0 else float("nan")

    @property
    def converged(self) -> bool:
        return all(r.converged for r in self.results.values())

    def summary(self) -> dict[str, Any]:
        return {"items": len(self.results), "converged": sum(r.converged for r in self.results.values()),
                "rounds": self.rounds, "seconds": round(self.seconds, 2), "anchor_ms": self.anchor_ms,
                "anchor_swing": self.anchor_swing, "settings": self.settings.to_dict()}


def runner_visit(settings: ProtocolSettings) -> Visit:
    """The real visit: `settings.warmup` untimed runs, then the statistic of `settings.repeats` timed runs."""
    timer = settings.timer()
    return lambda runner: measure_round(runner, timer)[0]


def run_rounds(
    keys: Sequence[Hashable],
    visit_round: Callable[[list[Hashable]], list[float]],
    settings: ProtocolSettings,
    *,
    now: Callable[[], float] = time.perf_counter,
) -> tuple[dict[Hashable, list[float]], dict[Hashable, tuple[float, float]], int, float]:
    """The protocol's loop: rounds over the still-active keys in a fresh random order until each key's median
    ratio is within ``±settings.target`` (bootstrap interval) or the rounds or time run out.

    Args:
        keys: the items to time.
        visit_round: visits the given keys in that order and returns each one's ratio to the anchor, in order.
        settings: the stopping rule and the seed of the visiting order and the bootstrap.
        now: the clock the time cap reads.

    Returns:
        each key's ratios, the converged keys with their interval at convergence, the rounds run, and the
        `now()` reading when the rounds started.
    """
    rng = np.random.default_rng(settings.seed)
    ratios: dict[Hashable, list[float]] = {k: [] for k in keys}
    done: dict[Hashable, tuple[float, float]] = {}  # converged items → their interval at convergence
    start = now()
    rounds = 0
    active = list(keys)
    while active and rounds < settings.max_rounds:
        if rounds >= settings.min_rounds and now() - start > settings.time_cap_s:
            break
        order = [active[i] for i in rng.permutation(len(active))]
        for key, ratio in zip(order, visit_round(order), strict=True):
            ratios[key].append(ratio)
        rounds += 1
        if rounds >= settings.min_rounds:
            for key in list(active):
                med = float(np.median(ratios[key]))
                ci = median_interval(ratios[key], confidence=settings.confidence, n_boot=settings.bootstrap, rng=rng)
                if relative_halfwidth(med, ci) <= settings.target:
                    done[key] = ci
                    active.remove(key)
    return ratios, done, rounds, start


def _results(keys: Sequence[Hashable], ratios: Mapping[Hashable, list[float]],
             item_ms: Mapping[Hashable, list[float]], brackets: Mapping[Hashable, list[float]],
             done: Mapping[Hashable, tuple[float, float]], settings: ProtocolSettings) -> dict[Hashable, PairedResult]:
    """Each key's `PairedResult`: its interval at convergence, else one bootstrapped from all its rounds."""
    results = {}
    for key in keys:
        ci = done.get(key) or median_interval(ratios[key], confidence=settings.confidence,
                                              n_boot=settings.bootstrap, rng=np.random.default_rng(settings.seed))
        results[key] = PairedResult(ratio=float(np.median(ratios[key])), interval=ci,
                                    anchor_ms=float(np.median(brackets[key])), rounds=len(ratios[key]),
                                    converged=key in done, ratios=ratios[key], item_ms=item_ms[key],
                                    anchor_visits_ms=brackets[key])
    return results


def measure_paired(
    items: Mapping[Hashable, Any],
    anchor: Any,
    settings: ProtocolSettings = ProtocolSettings(),
    *,
    visit: Visit | None = None,
    now: Callable[[], float] = time.perf_counter,
    progress: Callable[[int], None] | None = None,
) -> PairedRun:
    """Time every item against `anchor` in paired rounds until each converges or the cap is hit.

    Args:
        items: key → runner (anything `visit` accepts; backend runners have ``run()``).
        anchor: the anchor runner.
        settings: targets, caps and the per-visit timing.
        visit: runner → ms for one visit (default: `runner_visit(settings)`).
        now: the clock the time cap reads (tests pass a fake one).
        progress: called with 1 after each item visit.
    """
    if not items:
        raise ConfigError("measure_paired needs at least one item to time")
    visit = visit or runner_visit(settings)
    keys = list(items)
    item_ms: dict[Hashable, list[float]] = {k: [] for k in keys}
    brackets: dict[Hashable, list[float]] = {k: [] for k in keys}
    anchor_series: list[float] = []

    def visit_round(order: list[Hashable]) -> list[float]:
        """A I1 A I2 A ...: each item bracketed by the anchor visits before and after it."""
        out = []
        before = visit(anchor)
        anchor_series.append(before)
        for key in order:
            value = visit(items[key])
            after = visit(anchor)
            anchor_series.append(after)
            bracket = (before + after) / 2
            out.append(value / bracket)
            item_ms[key].append(value)
            brackets[key].append(bracket)
            before = after
            if progress is not None:
                progress(1)
        return out

    ratios, done, rounds, start = run_rounds(keys, visit_round, settings, now=now)
    results = _results(keys, ratios, item_ms, brackets, done, settings)
    unconverged = [k for k in keys if k not in done]
    if unconverged:
        log.warning("%d of %d items did not reach ±%.1f%% within %d rounds / %.0f s (e.g. %s: ±%.1f%%)",
                    len(unconverged), len(keys), settings.target * 100, rounds, settings.time_cap_s, unconverged[0],
                    100 * relative_halfwidth(results[unconverged[0]].ratio, results[unconverged[0]].interval))
    return PairedRun(results=results, anchor_visits_ms=anchor_series, settings=settings, rounds=rounds,
                     seconds=now() - start)


def measure_paired_visits(
    items: Sequence[Hashable],
    paired_visit: Callable[[Hashable], Mapping[str, float]],
    settings: ProtocolSettings = ProtocolSettings(),
    *,
    now: Callable[[], float] = time.perf_counter,
) -> PairedRun:
    """`measure_paired` for devices that time an item and its anchor brackets in one call (A, item, A), such as
    the ssh and adb runners of a device pool: rounds in a fresh random order, the same stopping rule.

    Args:
        items: the keys to time.
        paired_visit: key -> ``{"item_ms", "anchor_ms", "ratio"}`` (one bracketed visit on the device).
    """
    if not items:
        raise ConfigError("measure_paired_visits needs at least one item to time")
    keys = list(items)
    item_ms: dict[Hashable, list[float]] = {k: [] for k in keys}
    brackets: dict[Hashable, list[float]] = {k: [] for k in keys}

    def visit_round(order: list[Hashable]) -> list[float]:
        out = []
        for key in order:
            visit = paired_visit(key)
            out.append(float(visit["ratio"]))
            item_ms[key].append(float(visit["item_ms"]))
            brackets[key].append(float(visit["anchor_ms"]))
        return out

    ratios, done, rounds, start = run_rounds(keys, visit_round, settings, now=now)
    return PairedRun(results=_results(keys, ratios, item_ms, brackets, done, settings),
                     anchor_visits_ms=[v for k in keys for v in brackets[k]], settings=settings,
                     rounds=rounds, seconds=now() - start)


__all__ = ["PairedResult", "PairedRun", "ProtocolSettings", "measure_paired", "measure_paired_visits",
           "median_interval", "relative_halfwidth", "run_rounds", "runner_visit"]
