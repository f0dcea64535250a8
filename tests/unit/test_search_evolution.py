"""Constrained evolution: determinism, budgets respected, infeasible budgets, OFA-style operators."""
from __future__ import annotations

import numpy as np
import pytest

from ofa_deploy.errors import InfeasibleConstraintError
from ofa_deploy.predictors.macs import count_subnet
from ofa_deploy.search import (
    Budget,
    EvolutionSettings,
    GeneDomain,
    Objective,
    evolution_search,
    feasible_range,
)
from ofa_deploy.spaces import get_space


def active_mask(space, genes: np.ndarray) -> np.ndarray:
    """(N, n_genes) 1.0 where a gene matters (kernel/expand genes of skipped blocks are 0)."""
    mask = np.ones(genes.shape, dtype=np.float64)
    n_s, n_b = len(space.stages), space.n_blocks
    start = 0
    for s, stage in enumerate(space.stages):
        depth = np.asarray(stage.depth_choices)[genes[:, 1 + s]]
        for pos in range(stage.n_blocks):
            off = (pos >= depth)
            mask[off, 1 + n_s + start + pos] = 0.0
            mask[off, 1 + n_s + n_b + start + pos] = 0.0
        start += stage.n_blocks
    return mask


def toy_objectives(space, seed: int = 0) -> tuple[Objective, Objective]:
    """A fast additive 'latency' (grows with every choice) and a noisy 'accuracy' correlated with it."""
    rng = np.random.default_rng(seed)
    sizes = space.gene_sizes()
    n = sizes.size
    cost_w = rng.uniform(0.2, 1.0, (n, int(sizes.max()))).cumsum(axis=1)
    acc_w = 0.3 * cost_w + rng.normal(0.0, 0.3, cost_w.shape)
    cols = np.arange(n)

    def cost(genes: np.ndarray) -> np.ndarray:
        return (cost_w[cols, genes] * active_mask(space, genes)).sum(axis=1)

    def acc(genes: np.ndarray) -> np.ndarray:
        return 50.0 + (acc_w[cols, genes] * active_mask(space, genes)).sum(axis=1)

    return (Objective(name="accuracy", unit="%", direction="max", fn=acc),
            Objective(name="latency", unit="ms", direction="min", fn=cost, target="toy"))


FAST = EvolutionSettings(population_size=40, generations=30)


@pytest.fixture(scope="module")
def space():
    return get_space("ofa_mbv3_w12", resolutions=(160, 176, 192, 208, 224))


def test_same_seed_same_result_byte_for_byte(space):
    acc, lat = toy_objectives(space)
    dom = GeneDomain.for_space(space)
    budget = Budget(lat, float(np.median(lat.predict_genes(dom.sample(500, np.random.default_rng(1))))))
    runs = [evolution_search(domain=dom, objective=acc, budgets=[budget], settings=FAST, seed=7) for _ in range(2)]
    a, b = (r.to_dict() for r in runs)
    a.pop("timings"), b.pop("timings")
    assert repr(a) == repr(b)
    other = evolution_search(domain=dom, objective=acc, budgets=[budget], settings=FAST, seed=8).to_dict()
    assert other["history"] != a["history"]


def test_evolution_respects_budget_and_improves(space):
    acc, lat = toy_objectives(space)
    dom = GeneDomain.for_space(space)
    sample = dom.sample(2000, np.random.default_rng(2))
    limit = float(np.quantile(lat.predict_genes(sample), 0.3))
    res = evolution_search(domain=dom, objective=acc, budgets=[Budget(lat, limit)], settings=FAST, seed=0)
    assert lat.predict_genes(res.best_genes[None])[0] <= limit
    assert res.efficiency["latency@toy"] <= limit
    assert res.score == pytest.approx(acc.predict_genes(res.best_genes[None])[0])
    feasible = sample[lat.predict_genes(sample) <= limit]
    assert res.score > acc.predict_genes(feasible).max()  # beats 2000 random feasible samples
    best = [h["best"] for h in res.history]
    assert best == sorted(best) and best[-1] > best[0]
    assert space.validate(res.best_config) is res.best_config


def test_infeasible_budget_states_range_instead_of_hanging(space):
    acc, lat = toy_objectives(space)
    dom = GeneDomain.for_space(space, resolutions=(160, 176, 192, 208, 224))
    low = lat.predict_genes(dom.extreme_rows()).min()
    with pytest.raises(InfeasibleConstraintError) as err:
        evolution_search(domain=dom, objective=acc, budgets=[Budget(lat, low * 0.5)], settings=FAST, seed=0)
    msg = str(err.value)
    assert "ofa_mbv3_w12" in msg and "160..224" in msg and "fastest subnet takes" in msg
    assert f"{low:.4g}" in msg and "feasible budgets are >=" in msg


def test_budget_just_above_minimum_still_fills_population(space):
    acc, lat = toy_objectives(space)
    dom = GeneDomain.for_space(space)
    low = feasible_range(dom, lat).low
    res = evolution_search(domain=dom, objective=acc, budgets=[Budget(lat, low * 1.05)],
                           settings=EvolutionSettings(population_size=20, generations=5), seed=0)
    assert res.efficiency["latency@toy"] <= low * 1.05


def test_feasible_range_matches_min_and_max_macs():
    space = get_space("ofa_mbv3_w10", resolutions=(160, 224))
    dom = GeneDomain.for_space(space)

    def macs(genes: np.ndarray) -> np.ndarray:
        return np.array([count_subnet(space, c, c.resolution).macs / 1e6 for c in space.from_genes(genes)])

    rng_ = feasible_range(dom, Objective(name="macs", unit="M", direction="min", fn=macs), n_random=16)
    assert rng_.low == pytest.approx(count_subnet(space, space.min_config(160), 160).macs / 1e6)
    assert rng_.high == pytest.approx(count_subnet(space, space.max_config(224), 224).macs / 1e6)


def test_mutation_groups_follow_ofa(space):
    dom = GeneDomain.for_space(space)
    n_s, n_b = len(space.stages), space.n_blocks
    assert (1 + n_s, 1 + n_s + n_b) in dom.groups  # ks[0] and e[0] mutate together
    rng = np.random.default_rng(0)
    base = dom.sample(4000, rng)
    mut = dom.mutate(base, rng, arch_prob=0.1, resolution_prob=0.5)
    changed_res = (mut[:, 0] != base[:, 0]).mean()
    assert 0.5 * 4 / 5 - 0.05 < changed_res < 0.5 * 4 / 5 + 0.05  # resampled w.p. 0.5, new value w.p. 4/5
    assert dom.contains(mut).all()
    restricted = GeneDomain.for_space(space, resolutions=(176, 208))
    assert set(np.unique(restricted.sample(500, rng)[:, 0])) == {1, 3}


def test_memo_matches_direct_scoring_and_dedups(space):
    from ofa_deploy.search.evolution import _Memo

    acc, _ = toy_objectives(space)
    dom = GeneDomain.for_space(space)
    rng = np.random.default_rng(0)
    memo = _Memo(acc.predict_genes, dom)
    seen = dom.sample(50, rng)
    for _ in range(5):
        batch = np.concatenate([dom.sample(30, rng), seen[rng.integers(0, 50, 40)]])
        np.testing.assert_array_equal(memo(batch), acc.predict_genes(batch))
    assert memo.calls < 5 * 70
    memo._w[:] = 1  # force hash collisions: values must stay exact
    batch = dom.sample(200, rng)
    np.testing.assert_array_equal(memo(batch), acc.predict_genes(batch))


def test_canonical_keeps_the_subnet(space):
    dom = GeneDomain.for_space(space)
    genes = dom.sample(200, np.random.default_rng(3))
    canon = dom.canonical(genes)
    for a, b in zip(space.from_genes(genes), space.from_genes(canon)):
        assert space.walk_layers(a) == space.walk_layers(b)
    assert np.array_equal(dom.canonical(canon), canon)
