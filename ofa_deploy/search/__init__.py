"""Search over integer genes: constrained evolution (OFA's finder, batched) and NSGA-II Pareto fronts."""
from ofa_deploy.search.constraints import Budget, FeasibleRange, check_budgets, feasible_range
from ofa_deploy.search.domain import GeneDomain
from ofa_deploy.search.evolution import EvolutionSearch, EvolutionSettings, SearchResult, evolution_search
from ofa_deploy.search.pareto import ParetoFront, ParetoSettings, pareto_search
from ofa_deploy.search.objectives import (
    Objective,
    accuracy_objective,
    as_objective,
    latency_objective,
    macs_objective,
)

__all__ = [
    "Budget", "EvolutionSearch", "EvolutionSettings", "FeasibleRange", "GeneDomain", "Objective", "SearchResult",
    "accuracy_objective", "as_objective", "check_budgets", "evolution_search", "feasible_range",
    "latency_objective", "macs_objective", "ParetoFront", "ParetoSettings", "pareto_search",
]
