"""Multi-objective search: the Pareto front of accuracy vs latency (one or several devices) and MACs.

Uses pymoo's NSGA-II (non-dominated sorting + crowding distance, constraint-dominance for budgets)
with integer operators written for OFA genes: uniform sampling over the allowed choices,
uniform crossover, OFA's grouped mutation (`GeneDomain.mutate`). Problem evaluation is batched: each
generation's offspring go through every objective as one gene array.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ofa_deploy.errors import ConfigError, InfeasibleConstraintError
from ofa_deploy.search.constraints import Budget, check_budgets
from ofa_deploy.search.domain import GeneDomain
from ofa_deploy.search.objectives import Objective
from ofa_deploy.spaces.config import SubnetConfig

log = logging.getLogger(__name__)


def non_dominated_mask(costs: np.ndarray) -> np.ndarray:
    """Boolean (N,): rows of `costs` (N, M), all minimised, that no other row dominates (pure numpy).

    Row j dominates row i if it is <= in every column and < in at least one. Duplicated rows do not
    dominate each other (both are kept).
    """
    costs = np.asarray(costs, dtype=np.float64)
    if costs.ndim != 2:
        raise ConfigError(f"costs must be (N, M), got shape {costs.shape}")
    le = (costs[:, None, :] >= costs[None, :, :]).all(axis=2)   # [i, j]: j <= i everywhere
    lt = (costs[:, None, :] > costs[None, :, :]).any(axis=2)    # [i, j]: j < i somewhere
    return ~(le & lt).any(axis=1)


def non_dominated_sort(costs: np.ndarray) -> np.ndarray:
    """Front rank per row (0 = non-dominated), by repeatedly peeling non-dominated rows."""
    costs = np.asarray(costs, dtype=np.float64)
    rank = np.full(costs.shape[0], -1, dtype=np.int64)
    left = np.arange(costs.shape[0])
    r = 0
    while left.size:
        nd = non_dominated_mask(costs[left])
        rank[left[nd]] = r
        left = left[~nd]
        r += 1
    return rank


@dataclass(frozen=True)
class ParetoSettings:
    population_size: int = 100
    generations: int = 100
    arch_mutate_prob: float = 0.1
    resolution_mutate_prob: float = 0.5


@dataclass
class ParetoFront:
    """Non-dominated feasible subnets, sorted by the first cost objective."""

    space: str
    genes: np.ndarray
    configs: list[SubnetConfig]
    values: dict[str, np.ndarray]            # objective label -> (K,) values (display units)
    objectives: list[dict[str, str]]         # label, name, unit, direction, target
    budgets: list[dict[str, object]]
    timings: dict[str, float]
    settings: dict[str, object]
    seed: int | None
    history: list[dict[str, float]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.configs)

    def costs(self) -> np.ndarray:
        """(K, M) values turned into costs (maximised objectives negated)."""
        cols = [(-1.0 if o["direction"] == "max" else 1.0) * self.values[o["label"]] for o in self.objectives]
        return np.stack(cols, axis=1)

    def to_dict(self) -> dict[str, object]:
        rows = []
        for i, cfg in enumerate(self.configs):
            row: dict[str, object] = {k: float(v[i]) for k, v in self.values.items()}
            row["config"] = cfg.to_string()
            rows.append(row)
        return {"space": self.space, "objectives": self.objectives, "budgets": self.budgets, "front": rows,
                "timings": self.timings, "settings": self.settings, "seed": self.seed, "history": self.history}


def pareto_search(
    *, domain: GeneDomain, objectives: Sequence[Objective], budgets: Sequence[Budget] = (),
    settings: ParetoSettings | None = None, seed: int = 0,
) -> ParetoFront:
    """NSGA-II over `domain` for `objectives` (≥ 2; e.g. accuracy, latency@dev1, latency@dev2, macs)."""
    from pymoo.algorithms.moo.nsga2 import NSGA2
    from pymoo.optimize import minimize

    if len(objectives) < 2:
        raise ConfigError(f"a Pareto search needs at least 2 objectives, got {[o.label for o in objectives]}")
    labels = [o.label for o in objectives]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"objective labels must be unique (give each device a target), got {labels}")
    s = settings or ParetoSettings()
    t0 = time.perf_counter()
    check_budgets(domain, budgets, rng=np.random.default_rng(0))
    problem = _make_problem(domain, objectives, budgets)
    history: list[dict[str, float]] = []

    def callback(algorithm) -> None:  # noqa: ANN001 - pymoo's type
        opt = algorithm.opt
        history.append({"generation": int(algorithm.n_gen), "front_size": int(len(opt)),
                        "best_" + labels[0]: float(-opt.get("F")[:, 0].min()) if objectives[0].direction == "max"
                        else float(opt.get("F")[:, 0].min())})

    algorithm = NSGA2(
        pop_size=s.population_size,
        sampling=_sampling(domain),
        crossover=_crossover(domain),
        mutation=_mutation(domain, s),
        eliminate_duplicates=True,
    )
    res = minimize(problem, algorithm, ("n_gen", s.generations), seed=seed, verbose=False, callback=callback)
    pop = res.pop
    X = np.asarray(pop.get("X"), dtype=np.int64)
    feasible = np.ones(X.shape[0], dtype=bool)
    for b in budgets:
        feasible &= b.objective.predict_genes(X) <= b.limit
    X = domain.canonical(X[feasible])
    if X.shape[0] == 0:
        raise InfeasibleConstraintError("NSGA-II found no subnet within the budgets; raise them")
    X = np.unique(X, axis=0)
    values = {o.label: o.predict_genes(X) for o in objectives}
    costs = np.stack([(-1.0 if o.direction == "max" else 1.0) * values[o.label] for o in objectives], axis=1)
    keep = non_dominated_mask(costs)
    X, costs = X[keep], costs[keep]
    order = np.lexsort(costs.T[::-1])
    X = X[order]
    values = {k: v[keep][order] for k, v in values.items()}
    return ParetoFront(
        space=domain.space.name, genes=X, configs=domain.configs(X) if len(X) else [], values=values,
        objectives=[{"label": o.label, "name": o.name, "unit": o.unit, "direction": o.direction, "target": o.target}
                    for o in objectives],
        budgets=[{"objective": b.objective.label, "limit": b.limit, "unit": b.objective.unit} for b in budgets],
        timings={"total_s": time.perf_counter() - t0}, settings={**s.__dict__, "resolutions": list(domain.resolutions)},
        seed=seed, history=history,
    )


# ---- pymoo glue (imported lazily: pymoo is only needed for Pareto searches) -----------------------
def _make_problem(domain: GeneDomain, objectives: Sequence[Objective], budgets: Sequence[Budget]):
    from pymoo.core.problem import Problem

    sizes = domain.space.gene_sizes()

    class GeneProblem(Problem):
        def __init__(self) -> None:
            super().__init__(n_var=int(sizes.size), n_obj=len(objectives), n_ieq_constr=len(budgets),
                             xl=np.zeros(sizes.size), xu=(sizes - 1).astype(float), vtype=int)

        def _evaluate(self, x, out, *args, **kwargs):  # noqa: ANN001
            genes = np.asarray(x, dtype=np.int64)
            out["F"] = np.stack([o.cost(genes) for o in objectives], axis=1)
            if budgets:
                out["G"] = np.stack([b.objective.predict_genes(genes) - b.limit for b in budgets], axis=1)

    return GeneProblem()


def _sampling(domain: GeneDomain):
    from pymoo.core.sampling import Sampling

    class GeneSampling(Sampling):
        def _do(self, problem, n_samples, *args, random_state=None, **kwargs):  # noqa: ANN001
            return domain.canonical(domain.sample(n_samples, random_state))

    return GeneSampling()


def _crossover(domain: GeneDomain):
    from pymoo.core.crossover import Crossover

    class UniformGeneCrossover(Crossover):
        def __init__(self) -> None:
            super().__init__(n_parents=2, n_offsprings=2)

        def _do(self, problem, X, *args, random_state=None, **kwargs):  # noqa: ANN001
            a, b = np.asarray(X[0], dtype=np.int64), np.asarray(X[1], dtype=np.int64)
            take_b = random_state.random(a.shape) < 0.5
            return np.stack([np.where(take_b, b, a), np.where(take_b, a, b)])

    return UniformGeneCrossover()


def _mutation(domain: GeneDomain, s: ParetoSettings):
    from pymoo.core.mutation import Mutation

    class GroupedGeneMutation(Mutation):
        def _do(self, problem, X, *args, random_state=None, **kwargs):  # noqa: ANN001
            out = domain.mutate(np.asarray(X, dtype=np.int64), random_state, arch_prob=s.arch_mutate_prob,
                                resolution_prob=s.resolution_mutate_prob)
            return domain.canonical(out)

    return GroupedGeneMutation()
