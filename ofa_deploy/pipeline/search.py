"""Step 2, search: the best subnet under a device's budgets (constrained evolution over the predictors) and the
Pareto front drawn in the report.

`searched_space` aligns the supernet's space with the accuracy predictor's; `prepare_search` adds the latency
tables (the target's and other devices') and builds the objectives; `search` picks the budget and runs the
evolution, and its `Searcher` is asked again for faster picks while the budget is verified.
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ofa_deploy.errors import ConfigError
from ofa_deploy.pipeline.request import Progress, say
from ofa_deploy.search import Budget, EvolutionSettings, GeneDomain, evolution_search, feasible_range
from ofa_deploy.search.inputs import predictor_threads
from ofa_deploy.search.objectives import (
    Objective,
    accuracy_objective,
    as_objective,
    latency_objective,
    macs_objective,
)
from ofa_deploy.search.pareto import ParetoSettings, pareto_search
from ofa_deploy.spaces.config import SubnetConfig


@dataclass(frozen=True)
class OtherTable:
    """Another device's latency table: an extra objective of the search, reported as a prediction."""

    label: str
    source: str
    table: Any


@dataclass(frozen=True)
class SearchSetup:
    """The searched space and the objectives over it (accuracy, the target's latency, MACs, params, and other
    devices' latencies with their budgets)."""

    space: Any
    domain: GeneDomain
    acc: Objective
    lat: Objective
    macs: Objective
    params: Objective
    others: tuple[OtherTable, ...] = ()
    extras: tuple[Objective, ...] = ()
    device_budgets: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class SearchSettings:
    """How to search: the budgets and the evolution's and the front's settings.

    Attributes:
        latency_budget_ms: the target's budget; None: `budget_fraction` into the feasible range.
        macs_budget, params_budget: optional caps (millions).
    """

    latency_budget_ms: float | None = None
    budget_fraction: float = 0.35
    macs_budget: float | None = None
    params_budget: float | None = None
    generations: int = 500
    population: int = 100
    seed: int = 0
    pareto_generations: int = 60
    search_threads: int | None = 1


@dataclass(frozen=True)
class SearchOutcome:
    """The budget, the feasible latency range, the best pick, the Pareto front (or None) and the searcher that
    finds faster picks for retries."""

    limit: float
    feasible: tuple[float, float]
    result: Any
    front: Any
    searcher: Searcher
    timings: dict[str, float]

    @property
    def best(self) -> SubnetConfig:
        return self.result.best_config


def searched_space(predictor: Any, space: Any, resolutions: Sequence[int] | None,
                   progress: Progress | None = None) -> Any:
    """`space` restricted to the resolutions the predictor covers (and `resolutions`); a predictor whose space
    differs otherwise is refused with the difference named."""
    from ofa_deploy.spaces import align_space, describe_values

    searched = align_space(predictor.space, space, what=f"the accuracy predictor ({predictor.space.name})",
                           resolutions=resolutions)
    if searched.resolutions != space.resolutions:
        say(progress, f"searching {space.name} at resolutions {describe_values(list(searched.resolutions))}: the "
                      f"accuracy predictor covers those (the supernet: {describe_values(list(space.resolutions))})")
    return searched


def prepare_search(predictor: Any, space: Any, table: Any, target: str, *, resolutions: Sequence[int] | None = None,
                   extra_luts: Sequence[Path] = (), ofa_luts: Sequence[Path] = (),
                   device_budgets: Sequence[tuple[str, float]] = (), progress: Progress | None = None) -> SearchSetup:
    """Objectives over `space` restricted to what every table covers: the target's latency (`table`), MACs,
    params, predicted accuracy, and other devices' tables (`extra_luts`, `ofa_luts`) with their budgets."""
    from ofa_deploy.predictors.latency import LatencyPredictor, MacsPredictor, ParamsPredictor

    others = other_tables(extra_luts, ofa_luts, space, target)
    space = restrict_to_tables(space, [LatencyPredictor(space, t) for t in (table, *(o.table for o in others))],
                               resolutions, progress)
    extras = tuple(latency_objective(LatencyPredictor(space, o.table), target=o.label) for o in others)
    acc = accuracy_objective(predictor_for(predictor, space))
    return SearchSetup(space=space, domain=GeneDomain.for_space(space), acc=acc,
                       lat=latency_objective(LatencyPredictor(space, table), target=target),
                       macs=macs_objective(MacsPredictor(space)),
                       params=as_objective(ParamsPredictor(space), name="params", unit="M", direction="min"),
                       others=others, extras=extras,
                       device_budgets=_device_budgets(device_budgets, target, extras))


def search(setup: SearchSetup, settings: SearchSettings, progress: Progress | None = None) -> SearchOutcome:
    """The budget (given, or `budget_fraction` into the feasible range), the best pick under it, the front."""
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    lat_range = feasible_range(setup.domain, setup.lat)
    limit = settings.latency_budget_ms
    if limit is None:
        limit = round(lat_range.low + settings.budget_fraction * (lat_range.high - lat_range.low), 4)
        say(progress, f"latency budget {limit:.4g} ms picked at {settings.budget_fraction:.0%} of the feasible range "
                      f"{lat_range.low:.4g}..{lat_range.high:.4g} ms")
    limit = float(limit)
    searcher = Searcher(setup, settings, progress)
    result = searcher.best(limit)
    timings["search_s"] = time.perf_counter() - t0
    front = None
    if settings.pareto_generations > 0:
        t0 = time.perf_counter()
        with predictor_threads(settings.search_threads):
            front = pareto_search(domain=setup.domain, objectives=[setup.acc, setup.lat, *setup.extras, setup.macs],
                                  seed=settings.seed, settings=ParetoSettings(population_size=settings.population,
                                                                              generations=settings.pareto_generations))
        timings["pareto_s"] = time.perf_counter() - t0
        say(progress, f"Pareto front: {len(front)} subnets ({timings['pareto_s']:.1f} s)")
    return SearchOutcome(limit=limit, feasible=(lat_range.low, lat_range.high), result=result, front=front,
                         searcher=searcher, timings=timings)


class Searcher:
    """Evolution under a latency budget (plus the optional MACs and params caps and other devices' budgets),
    skipping configs already tried."""

    def __init__(self, setup: SearchSetup, settings: SearchSettings, progress: Progress | None = None) -> None:
        self.setup = setup
        self.settings = settings
        self.progress = progress
        self.extra = [Budget(o, setup.device_budgets[o.target]) for o in setup.extras
                      if o.target in setup.device_budgets]

    def best(self, latency_ms: float, exclude: Sequence[str] = ()) -> Any:
        s, setup = self.settings, self.setup
        budgets = [Budget(setup.lat, float(latency_ms)), *self.extra]
        if s.macs_budget is not None:
            budgets.append(Budget(setup.macs, float(s.macs_budget)))
        if s.params_budget is not None:
            budgets.append(Budget(setup.params, float(s.params_budget)))
        say(self.progress, f"searching {setup.domain.space.name} ({setup.domain.describe_resolutions()}): "
                           f"{s.generations} generations x {s.population}, budget "
                           f"{', '.join(b.describe() for b in budgets)}")
        for attempt in range(4):
            with predictor_threads(s.search_threads):
                result = evolution_search(domain=setup.domain, objective=setup.acc, budgets=budgets,
                                          seed=s.seed + attempt,
                                          settings=EvolutionSettings(population_size=s.population,
                                                                     generations=s.generations))
            if result.best_config.to_string() not in exclude:
                break
            budgets[0] = Budget(setup.lat, budgets[0].limit * 0.98)  # same pick again: ask for a slightly faster one
        say(self.progress, f"best: {result.best_config.to_string()}  predicted {result.score:.2f}% @ "
                           f"{float(setup.lat.predict_genes(result.best_genes[None, :])[0]):.4g} ms "
                           f"({result.timings['total_s']:.2f} s)")
        return result


def check_configs(best: SubnetConfig, front: Any, lat: Objective, n: int) -> list[tuple[str, SubnetConfig]]:
    """Up to `n` front subnets spread over latency (not the best one), to test the LUT next to it."""
    if front is None or n <= 0 or len(front) == 0:
        return []
    order = np.argsort(front.values[lat.label], kind="stable")
    picks = np.unique(np.linspace(0, len(order) - 1, n + 2).round().astype(int))
    out: list[tuple[str, SubnetConfig]] = []
    best_s = best.to_string()
    for i in picks:
        c = front.configs[int(order[i])]
        if c.to_string() != best_s and all(c.to_string() != o.to_string() for _, o in out):
            out.append((f"check{len(out) + 1}", c))
        if len(out) == n:
            break
    return out


def restrict_to_tables(space: Any, predictors: Sequence[Any], resolutions: Sequence[int] | None,
                       progress: Progress | None = None) -> Any:
    """`space` restricted to the resolutions every latency table covers; an explicit request outside them fails."""
    from ofa_deploy.spaces import describe_values, space_from_dict, space_to_dict

    covered = [r for r in space.resolutions if all(r in p.covered_resolutions() for p in predictors)]
    if tuple(covered) == tuple(space.resolutions):
        return space
    names = ", ".join(p.name for p in predictors)
    if not covered:
        raise ConfigError(f"the latency tables ({names}) cover none of the searched resolutions "
                          f"{describe_values(list(space.resolutions))}; build a table for them (ofa-deploy profile "
                          "build --resolutions ...) or pass tables that cover them")
    if resolutions is not None:
        raise ConfigError(f"--resolutions {describe_values(list(space.resolutions))}: the latency tables ({names}) "
                          f"cover only {describe_values(covered)}; pick among those or build a table for the rest")
    say(progress, f"searching resolutions {describe_values(covered)}: the latency tables cover only those")
    return space_from_dict({**space_to_dict(space), "resolutions": covered})


def other_tables(extra_luts: Sequence[Path], ofa_luts: Sequence[Path], space: Any, target: str
                 ) -> tuple[OtherTable, ...]:
    """The other devices' tables (`extra_luts`: ofa-deploy JSON, `ofa_luts`: OFA YAML), labels unique."""
    from ofa_deploy.compat.ofa_lut import load_ofa_lut
    from ofa_deploy.profiling.hosts.fingerprint import warn_if_foreign
    from ofa_deploy.tables.latency import LatencyTable

    loaded: list[tuple[str, Any]] = []
    for path in extra_luts:
        table = LatencyTable.load(path)
        warn_if_foreign(table, source=f"latency table {path}")
        loaded.append((str(path), table))
    loaded += [(str(path), load_ofa_lut(path, space)) for path in ofa_luts]
    out: list[OtherTable] = []
    seen = {target}
    for source, table in loaded:
        label = table.provenance.profile_name or table.provenance.device or Path(source).stem
        while label in seen:
            label += "'"
        seen.add(label)
        out.append(OtherTable(label, source, table))
    return tuple(out)


def predictor_for(predictor: Any, space: Any) -> Any:
    """The accuracy predictor re-encoded for `space` (same network; the space is a resolution subset)."""
    if list(predictor.space.gene_sizes()) == list(space.gene_sizes()) and \
            tuple(predictor.space.resolutions) == tuple(space.resolutions):
        return predictor
    if not hasattr(predictor, "for_space"):
        raise ConfigError(f"the accuracy predictor's space {predictor.space.name} does not match the searched space "
                          f"(resolutions {list(space.resolutions)}); pass an AccuracyPredictor for it")
    return predictor.for_space(space)


def _device_budgets(budgets: Sequence[tuple[str, float]], target: str, extras: Sequence[Objective]
                    ) -> dict[str, float]:
    """Budgets of the other devices, by name; a budget for an unknown device names the tables."""
    names = [o.target for o in extras]
    out = {}
    for device, ms in budgets:
        if device == target:
            continue
        if device not in names:
            raise ConfigError(f"latency budget {device}={ms:g}: no latency table for {device!r}; the target is "
                              f"{target} and the other tables are {', '.join(names) or 'none'}")
        out[device] = float(ms)
    return out


__all__ = ["OtherTable", "SearchOutcome", "SearchSettings", "SearchSetup", "Searcher", "check_configs",
           "other_tables", "predictor_for", "prepare_search", "restrict_to_tables", "search", "searched_space"]
