"""Budgets (upper bounds on latency, MACs, params, ...) and their feasible ranges.

A budget below the cheapest subnet of the (restricted) space raises `InfeasibleConstraintError`
that states the feasible range, instead of looping forever like OFA's ``EvolutionFinder`` or
asking for a new value with ``input()`` like its tutorial version.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ofa_deploy.errors import ConfigError, InfeasibleConstraintError
from ofa_deploy.search.domain import GeneDomain
from ofa_deploy.search.objectives import Objective

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Budget:
    """``objective(subnet) <= limit`` for a cost objective (direction ``"min"``)."""

    objective: Objective
    limit: float

    def __post_init__(self) -> None:
        if self.objective.direction != "min":
            raise ConfigError(f"a budget needs a cost to minimise; {self.objective.label!r} is maximised")
        if not np.isfinite(self.limit):
            raise ConfigError(f"budget on {self.objective.label!r} must be a finite number, got {self.limit}")

    def describe(self) -> str:
        return f"{self.objective.label} <= {_fmt(self.limit)} {self.objective.unit}".rstrip()


@dataclass(frozen=True)
class FeasibleRange:
    """Estimated min and max of an objective over a domain, with the rows that attain them."""

    objective: Objective
    low: float
    high: float
    low_genes: np.ndarray
    high_genes: np.ndarray

    def to_dict(self) -> dict[str, object]:
        return {"objective": self.objective.label, "unit": self.objective.unit,
                "low": float(self.low), "high": float(self.high)}


def feasible_range(
    domain: GeneDomain, objective: Objective, *, rng: np.random.Generator | int | None = 0,
    n_random: int = 512, max_steps: int = 100,
) -> FeasibleRange:
    """Estimate ``[min, max]`` of `objective` over `domain`.

    Starts from the all-smallest / all-largest choice rows at every allowed resolution and
    `n_random` random rows, then improves the best one by greedy single-gene moves until no
    neighbour is better (a local optimum). For additive costs that grow with every choice
    (MACs, LUT latency) the all-smallest row is already the minimum; the descent guards against
    tables where it is not.
    """
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    start = np.concatenate([domain.extreme_rows(), domain.sample(n_random, gen)])
    values = objective.predict_genes(start)
    low_row, low = _descend(domain, objective, start[int(np.argmin(values))], float(values.min()), +1, max_steps)
    high_row, high = _descend(domain, objective, start[int(np.argmax(values))], float(values.max()), -1, max_steps)
    return FeasibleRange(objective, low, high, low_row, high_row)


def _descend(domain: GeneDomain, objective: Objective, row: np.ndarray, value: float, sign: int,
             max_steps: int) -> tuple[np.ndarray, float]:
    """Greedy local search: sign=+1 minimises, sign=-1 maximises."""
    for _ in range(max_steps):
        nbrs = domain.neighbours(row)
        if nbrs.shape[0] == 0:
            break
        vals = objective.predict_genes(nbrs) * sign
        best = int(np.argmin(vals))
        if vals[best] >= value * sign - 1e-12:
            break
        row, value = nbrs[best], float(vals[best] * sign)
    return row, value


def check_budgets(domain: GeneDomain, budgets: Sequence[Budget], *, rng: np.random.Generator | int | None = 0
                  ) -> dict[str, FeasibleRange]:
    """Feasible range of every budget's objective; raise `InfeasibleConstraintError` if one is below it.

    Returns the ranges keyed by objective label (reports show them).
    """
    ranges: dict[str, FeasibleRange] = {}
    for budget in budgets:
        rng_ = feasible_range(domain, budget.objective, rng=rng)
        ranges[budget.objective.label] = rng_
        if budget.limit < rng_.low:
            raise InfeasibleConstraintError(infeasible_message(domain, budget, rng_))
        if budget.limit >= rng_.high:
            log.info("budget %s does not constrain the search: every subnet satisfies it (max %.4g %s)",
                     budget.describe(), rng_.high, budget.objective.unit)
    if len(budgets) > 1:
        _check_jointly(domain, budgets, ranges)
    return ranges


def _check_jointly(domain: GeneDomain, budgets: Sequence[Budget], ranges: dict[str, FeasibleRange]) -> None:
    """Several budgets can each be feasible but not together; try each one's cheapest row."""
    rows = np.stack([r.low_genes for r in ranges.values()])
    ok = np.ones(rows.shape[0], dtype=bool)
    for b in budgets:
        ok &= b.objective.predict_genes(rows) <= b.limit
    if not ok.any():
        detail = "; ".join(f"{b.describe()} (min {_fmt(ranges[b.objective.label].low)})" for b in budgets)
        raise InfeasibleConstraintError(
            f"no subnet of {domain.space.name} found that meets all budgets at once: {detail}. "
            "The cheapest subnet for one budget breaks another; relax one of them."
        )


def infeasible_message(domain: GeneDomain, budget: Budget, rng_: FeasibleRange) -> str:
    obj = budget.objective
    unit = f" {obj.unit}" if obj.unit else ""
    where = f" on {obj.target}" if obj.target else ""
    cheapest = "the fastest subnet takes" if obj.name == "latency" else f"the smallest {obj.name} of any subnet is"
    return (
        f"no subnet of {domain.space.name} at {domain.describe_resolutions()} is under {_fmt(budget.limit)}{unit} "
        f"{obj.name}{where}; {cheapest} {_fmt(rng_.low)}{unit}; feasible budgets are >= {_fmt(rng_.low)}{unit} "
        f"(the largest subnet is {_fmt(rng_.high)}{unit}). Raise the budget or widen the space."
    )


def _fmt(x: float) -> str:
    return f"{x:.4g}" if abs(x) < 1e5 else f"{x:.6g}"
