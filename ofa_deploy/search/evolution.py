"""Constrained evolutionary search over integer genes (OFA's ``EvolutionFinder``, batched).

Semantics follow OFA's ``ofa.nas.search_algorithm.evolution.EvolutionFinder``:
population 100, 500 generations, the top 25 (``parent_ratio`` 0.25) by the objective are the
parents, 50 children (``mutation_ratio`` 0.5) are mutants of random parents and 50 are uniform
crossovers of two random parents; the next population is parents + children (truncation
selection). Mutation resamples the resolution with probability 0.5, each block's kernel and
expand ratio together and each stage depth with probability 0.1 (`GeneDomain.mutate`).
Children that break a budget are redrawn (rejection sampling), as in OFA.

Differences from OFA (on purpose):
- Whole populations are generated, checked and scored as arrays; rejection sampling redraws only
  the failed rows, for at most ``max_tries`` rounds, then raises `InfeasibleConstraintError`
  instead of looping forever.
- Budgets are checked before the search (`check_budgets`): an infeasible budget is an error that
  states the feasible range. If random sampling cannot fill the first population (a budget
  close to the minimum), it is filled with mutants of the cheapest subnet and of the feasible
  samples found, instead of sampling forever.
- Several budgets at once (e.g. latency on two devices and MACs).
- A numpy ``Generator`` drives everything: same seed, same result, byte for byte.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ofa_deploy.errors import ConfigError, InfeasibleConstraintError
from ofa_deploy.search.constraints import Budget, FeasibleRange, check_budgets
from ofa_deploy.search.domain import GeneDomain
from ofa_deploy.search.objectives import Objective
from ofa_deploy.spaces.config import SubnetConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvolutionSettings:
    """OFA's defaults."""

    population_size: int = 100
    generations: int = 500
    parent_ratio: float = 0.25
    mutation_ratio: float = 0.5
    arch_mutate_prob: float = 0.1
    resolution_mutate_prob: float = 0.5
    max_tries: int = 200

    def __post_init__(self) -> None:
        if self.population_size < 2 or self.generations < 0:
            raise ConfigError(f"population_size must be >= 2 and generations >= 0, got {self}")
        if not (0 < self.parent_ratio <= 1 and 0 <= self.mutation_ratio <= 1):
            raise ConfigError(f"parent_ratio must be in (0, 1] and mutation_ratio in [0, 1], got {self}")

    @property
    def n_parents(self) -> int:
        return max(1, int(round(self.parent_ratio * self.population_size)))

    @property
    def n_mutants(self) -> int:
        return int(round(self.mutation_ratio * self.population_size))


@dataclass
class SearchResult:
    """The best subnet found and how the search went."""

    space: str
    best_genes: np.ndarray
    best_config: SubnetConfig
    score: float                       # the searched objective (e.g. predicted accuracy in %)
    score_name: str
    efficiency: dict[str, float]       # budget objective label -> value of the best subnet
    budgets: list[dict[str, object]]
    feasible: dict[str, dict[str, object]]
    history: list[dict[str, float]]    # per generation: best, parents' mean
    timings: dict[str, float]
    settings: dict[str, object]
    seed: int | None
    n_evaluated: int = 0
    extra: dict[str, object] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {
            "space": self.space,
            "best_config": self.best_config.to_dict(),
            "best_config_string": self.best_config.to_string(),
            "best_genes": [int(g) for g in self.best_genes],
            self.score_name: self.score,
            "efficiency": self.efficiency,
            "budgets": self.budgets,
            "feasible_ranges": self.feasible,
            "history": self.history,
            "timings": self.timings,
            "settings": self.settings,
            "seed": self.seed,
            "n_evaluated": self.n_evaluated,
            **self.extra,
        }


class _Memo:
    """Values of one objective per distinct subnet, for one search run (vectorised).

    Rows are keyed by their canonical form (genes of skipped blocks do not matter), so a child
    equal to a subnet seen before is not scored again; only new rows go to the predictor, in one
    batch. Late in a search most children repeat a parent: about 1 in 5 children needs scoring.
    Keys are a 64-bit hash of the canonical row, kept sorted; a hit is confirmed by comparing the
    stored row, so a hash collision can only cost a recomputation, never a wrong value.
    """

    def __init__(self, fn: Callable[[np.ndarray], np.ndarray], domain: GeneDomain) -> None:
        self.fn, self.domain = fn, domain
        self._w = np.random.default_rng(0x5EED).integers(1, 2**63, domain.n_genes, dtype=np.uint64) | np.uint64(1)
        self.keys = np.empty(0, dtype=np.uint64)      # sorted hashes
        self.slot = np.empty(0, dtype=np.int64)       # hash i -> row / value slot in the append-only store
        self.rows = np.empty((1024, domain.n_genes), dtype=np.int64)
        self.vals = np.empty(1024, dtype=np.float64)
        self.size = 0
        self.calls = 0

    def _append(self, rows: np.ndarray, values: np.ndarray) -> np.ndarray:
        n = rows.shape[0]
        while self.size + n > self.vals.size:  # grow by doubling
            self.rows = np.concatenate([self.rows, np.empty_like(self.rows)])
            self.vals = np.concatenate([self.vals, np.empty_like(self.vals)])
        self.rows[self.size: self.size + n] = rows
        self.vals[self.size: self.size + n] = values
        self.size += n
        return np.arange(self.size - n, self.size)

    def __call__(self, genes: np.ndarray) -> np.ndarray:
        canon = self.domain.canonical(genes)
        h = (canon.astype(np.uint64) * self._w).sum(axis=1, dtype=np.uint64)
        pos = np.searchsorted(self.keys, h)
        hit = pos < self.keys.size
        hit[hit] &= self.keys[pos[hit]] == h[hit]
        hit[hit] &= (self.rows[self.slot[pos[hit]]] == canon[hit]).all(axis=1)
        out = np.empty(canon.shape[0], dtype=np.float64)
        out[hit] = self.vals[self.slot[pos[hit]]]
        miss = np.flatnonzero(~hit)
        if miss.size:
            _, first, inverse = np.unique(h[miss], return_index=True, return_inverse=True)
            rows = miss[first]                     # one row per distinct new hash, in hash order
            values = np.asarray(self.fn(genes[rows]), dtype=np.float64).reshape(-1)
            self.calls += rows.size
            same = (canon[miss] == canon[rows][inverse]).all(axis=1)
            out[miss[same]] = values[inverse][same]
            if not same.all():                     # a hash collision inside this batch: score those directly
                odd = miss[~same]
                out[odd] = np.asarray(self.fn(genes[odd]), dtype=np.float64).reshape(-1)
            at = np.searchsorted(self.keys, h[rows])
            clash = np.zeros(rows.size, dtype=bool)  # hash already stored for another row: keep the stored one
            inside = at < self.keys.size
            clash[inside] = self.keys[at[inside]] == h[rows][inside]
            new_key = ~clash
            slots = self._append(canon[rows][new_key], values[new_key])
            self.keys = np.insert(self.keys, at[new_key], h[rows][new_key])
            self.slot = np.insert(self.slot, at[new_key], slots)
        return out


class EvolutionSearch:
    """Maximise (or minimise) `objective` subject to `budgets` over `domain`.

    Args:
        domain: the genes to search (`GeneDomain.for_space(space, resolutions=...)`).
        objective: what to optimise (usually predicted accuracy, direction ``"max"``).
        budgets: upper bounds on cost objectives.
        settings: hyper-parameters (OFA's defaults).
    """

    def __init__(self, *, domain: GeneDomain, objective: Objective, budgets: Sequence[Budget] = (),
                 settings: EvolutionSettings | None = None) -> None:
        self.domain, self.objective, self.budgets = domain, objective, list(budgets)
        self.settings = settings or EvolutionSettings()

    # ---- constraint-aware generation -------------------------------------------------------------
    def _feasible(self, genes: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        ok = np.ones(genes.shape[0], dtype=bool)
        values: dict[str, np.ndarray] = {}
        for b in self.budgets:  # cost predictors are gathers: cheaper to recompute than to memoise
            v = b.objective.predict_genes(genes)
            values[b.objective.label] = v
            ok &= v <= b.limit
        return ok, values

    def _fill(self, n: int, propose: Callable[[int], np.ndarray], what: str) -> np.ndarray:
        """`n` feasible rows from `propose(k)` (see `_fill_many`)."""
        return self._fill_many([(n, propose)], what)[0]

    def _fill_many(self, parts: Sequence[tuple[int, Callable[[int], np.ndarray]]], what: str) -> list[np.ndarray]:
        """For each ``(n, propose)``, `n` feasible rows by rejection sampling.

        Each round proposes, for every part, more rows than are missing (scaled by the acceptance
        rate seen so far), checks all parts' candidates in one batched call, and keeps the first
        feasible ones in order. This is OFA's per-child ``while True`` loop done for the whole
        population at once; a child is still the first feasible draw of its proposal. After
        ``max_tries`` rounds it raises `InfeasibleConstraintError` instead of looping forever.
        """
        outs = [np.empty((n, self.domain.n_genes), dtype=np.int64) for n, _ in parts]
        filled = [0] * len(parts)
        proposed = accepted = 0
        for _ in range(self.settings.max_tries):
            rate = max(accepted / proposed, 0.02) if proposed else 0.5
            asks = [min(int(np.ceil((n - f) / rate * 1.2)) + 2, 50 * n + 2) if f < n else 0
                    for (n, _), f in zip(parts, filled)]
            cands = [propose(k) if k else np.empty((0, self.domain.n_genes), dtype=np.int64)
                     for (_, propose), k in zip(parts, asks)]
            ok, _ = self._feasible(np.concatenate(cands))
            proposed += ok.size
            accepted += int(ok.sum())
            start = 0
            for i, cand in enumerate(cands):
                good = cand[ok[start: start + cand.shape[0]]]
                start += cand.shape[0]
                take = good[: parts[i][0] - filled[i]]
                outs[i][filled[i]: filled[i] + take.shape[0]] = take
                filled[i] += take.shape[0]
            if all(f == n for (n, _), f in zip(parts, filled)):
                return outs
        missing = sum(n - f for (n, _), f in zip(parts, filled))
        total = sum(n for n, _ in parts)
        raise InfeasibleConstraintError(
            f"could not generate {missing} of {total} {what} within the budgets "
            f"({', '.join(b.describe() for b in self.budgets)}) in {self.settings.max_tries} rounds; "
            "the feasible region is too small for random mutation: raise the budget"
        )

    def _initial(self, rng: np.random.Generator, ranges: dict[str, FeasibleRange]) -> np.ndarray:
        n = self.settings.population_size
        found: list[np.ndarray] = []
        count = 0
        for _ in range(self.settings.max_tries):
            cand = self.domain.sample(n, rng)
            ok, _ = self._feasible(cand)
            found.append(cand[ok])
            count += int(ok.sum())
            if count >= n:
                return np.concatenate(found)[:n]
        # Tight budget: seed with the cheapest rows and grow by mutation (still all feasible).
        seeds = [r.low_genes[None, :] for r in ranges.values()]
        pool = np.concatenate(found + seeds)
        ok, _ = self._feasible(pool)
        pool = pool[ok]
        if pool.shape[0] == 0:
            raise InfeasibleConstraintError(
                f"no subnet found within {', '.join(b.describe() for b in self.budgets)}; raise the budget")
        log.info("random sampling found %d of %d feasible subnets; filling by mutation", count, n)
        s = self.settings
        rest = self._fill(n - pool.shape[0] if pool.shape[0] < n else 0,
                          lambda k: self.domain.mutate(pool[rng.integers(0, pool.shape[0], k)], rng,
                                                       arch_prob=s.arch_mutate_prob,
                                                       resolution_prob=s.resolution_mutate_prob),
                          "initial subnets")
        return np.concatenate([pool, rest])[:n]

    # ---- search ---------------------------------------------------------------------------------
    def run(self, *, seed: int | np.random.Generator | None = 0,
            progress: Callable[[int, float], None] | None = None) -> SearchResult:
        """Run the search; same seed, same result."""
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        t0 = time.perf_counter()
        ranges = check_budgets(self.domain, self.budgets, rng=np.random.default_rng(0))
        t_check = time.perf_counter() - t0
        cost = _Memo(self.objective.cost, self.domain)
        return self._run(rng, ranges, cost, seed, progress, t0, t_check)

    def _run(self, rng: np.random.Generator, ranges: dict[str, FeasibleRange], cost: _Memo,
             seed: int | np.random.Generator | None, progress: Callable[[int, float], None] | None,
             t0: float, t_check: float) -> SearchResult:
        s = self.settings
        pop = self._initial(rng, ranges)
        score = cost(pop)  # minimised
        n_eval = pop.shape[0]
        history: list[dict[str, float]] = []
        sign = -1.0 if self.objective.direction == "max" else 1.0
        n_par, n_mut = s.n_parents, s.n_mutants
        n_cross = s.population_size - n_mut
        best_genes, best_cost = pop[0], np.inf
        for gen in range(s.generations):
            order = np.argsort(score, kind="stable")[:n_par]
            parents, parent_score = pop[order], score[order]
            if parent_score[0] < best_cost:
                best_cost, best_genes = float(parent_score[0]), parents[0].copy()
            history.append({"generation": gen, "best": sign * best_cost,
                            "parents_mean": sign * float(parent_score.mean())})
            if progress is not None:
                progress(gen, sign * best_cost)

            def mutants(k: int) -> np.ndarray:
                return self.domain.mutate(parents[rng.integers(0, n_par, k)], rng, arch_prob=s.arch_mutate_prob,
                                          resolution_prob=s.resolution_mutate_prob)

            def crossovers(k: int) -> np.ndarray:
                a = parents[rng.integers(0, n_par, k)]
                b = parents[rng.integers(0, n_par, k)]
                return self.domain.crossover(a, b, rng)

            children = np.concatenate(self._fill_many([(n_mut, mutants), (n_cross, crossovers)], "children"))
            child_score = cost(children)
            n_eval += children.shape[0]
            pop = np.concatenate([parents, children])
            score = np.concatenate([parent_score, child_score])
        # OFA records the best of the parents at the start of each generation; also consider the last children
        i = int(np.argmin(score)) if score.size else 0
        if score.size and score[i] < best_cost:
            best_cost, best_genes = float(score[i]), pop[i].copy()
        elapsed = time.perf_counter() - t0

        _, eff = self._feasible(best_genes[None, :])
        return SearchResult(
            space=self.domain.space.name,
            best_genes=best_genes,
            best_config=self.domain.configs(best_genes[None, :])[0],
            score=sign * best_cost,
            score_name=self.objective.name,
            efficiency={k: float(v[0]) for k, v in eff.items()},
            budgets=[{"objective": b.objective.label, "limit": b.limit, "unit": b.objective.unit}
                     for b in self.budgets],
            feasible={k: r.to_dict() for k, r in ranges.items()},
            history=history,
            timings={"total_s": elapsed, "feasibility_s": t_check},
            settings={**s.__dict__, "resolutions": list(self.domain.resolutions)},
            seed=seed if isinstance(seed, int) else None,
            n_evaluated=n_eval,
            extra={"n_scored": cost.calls},
        )


def evolution_search(
    *, domain: GeneDomain, objective: Objective, budgets: Sequence[Budget] = (),
    settings: EvolutionSettings | None = None, seed: int | np.random.Generator | None = 0,
) -> SearchResult:
    """One-call form of `EvolutionSearch(...).run(seed=...)`."""
    return EvolutionSearch(domain=domain, objective=objective, budgets=budgets, settings=settings).run(seed=seed)
