"""NSGA-II Pareto fronts: non-dominated (checked with the numpy sort), budgets, several devices, seeds."""
from __future__ import annotations

import numpy as np
import pytest

from ofa_deploy.search import Budget, GeneDomain, Objective
from ofa_deploy.search.pareto import ParetoSettings, non_dominated_mask, non_dominated_sort, pareto_search
from ofa_deploy.spaces import get_space
from tests.unit.test_search_evolution import toy_objectives

FAST = ParetoSettings(population_size=40, generations=25)


@pytest.fixture(scope="module")
def space():
    return get_space("ofa_mbv3_w12", resolutions=(160, 176, 192, 208, 224))


def test_numpy_sort_agrees_with_pymoo():
    from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

    costs = np.random.default_rng(0).integers(0, 6, (300, 3)).astype(float)  # many ties
    ranks = non_dominated_sort(costs)
    for r, front in enumerate(NonDominatedSorting().do(costs)):
        assert (ranks[front] == r).all()
    assert non_dominated_mask(np.array([[1.0, 2.0], [2.0, 1.0], [2.0, 2.0], [1.0, 2.0]])).tolist() == \
        [True, True, False, True]


def test_front_is_non_dominated_feasible_and_beats_random(space):
    acc, lat = toy_objectives(space, seed=0)
    _, lat2 = toy_objectives(space, seed=1)
    lat2 = Objective(name="latency", unit="ms", direction="min", fn=lat2.fn, target="toy2")
    dom = GeneDomain.for_space(space)
    limit = 45.0
    front = pareto_search(domain=dom, objectives=[acc, lat, lat2], budgets=[Budget(lat, limit)],
                          settings=FAST, seed=3)
    assert len(front) >= 5
    costs = front.costs()
    assert non_dominated_mask(costs).all()
    assert (front.values["latency@toy"] <= limit).all()
    # every value matches a fresh evaluation of the returned configs
    genes = space.to_genes(front.configs)
    np.testing.assert_allclose(front.values["accuracy"], acc.predict_genes(genes))
    np.testing.assert_allclose(front.values["latency@toy2"], lat2.predict_genes(genes))
    # no random feasible subnet dominates the whole front's best accuracy at its latency
    rnd = dom.sample(1000, np.random.default_rng(9))
    rnd = rnd[lat.predict_genes(rnd) <= limit]
    both = np.concatenate([costs, np.stack([-acc.predict_genes(rnd), lat.predict_genes(rnd),
                                            lat2.predict_genes(rnd)], axis=1)])
    assert non_dominated_mask(both)[: len(front)].mean() > 0.8  # random samples rarely beat the front
    again = pareto_search(domain=dom, objectives=[acc, lat, lat2], budgets=[Budget(lat, limit)],
                          settings=FAST, seed=3)
    assert np.array_equal(again.genes, front.genes)
