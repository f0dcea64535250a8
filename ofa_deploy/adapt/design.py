"""Which subnets to measure on the target: a small informative design, and random held-out subnets.

The design is chosen greedily for D-optimality over candidates: every subnet is described by the share of its
source-table time in each layer class (`classes.SubnetLayers.class_shares`) plus its per-inference and per-layer
terms, and the next pick is the candidate that adds the most information (``x' M^-1 x``, the matrix determinant
lemma) to what is already picked. Candidates are random subnets and *homogeneous* ones, whose genes of one kind
(all kernels, all expand ratios, all depths, all widths) take one value: they put a large share of the time in
one class, so classes that random subnets mix are told apart.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from ofa_deploy.adapt.classes import ClassIndex, SubnetLayers
from ofa_deploy.spaces import SearchSpace, SubnetConfig


def gene_groups(space: SearchSpace) -> dict[str, list[int]]:
    """Gene positions by kind (``kernel_sizes[3]`` → ``kernel_sizes``); the resolution gene is left out."""
    groups: dict[str, list[int]] = {}
    for i, gene in enumerate(space.genes()):
        kind = gene.name.split("[")[0].strip()
        if kind != "resolution":
            groups.setdefault(kind, []).append(i)
    return groups


def homogeneous_subnets(space: SearchSpace, resolutions: Sequence[int], rng: np.random.Generator
                        ) -> list[SubnetConfig]:
    """Per resolution, per gene kind, per value: that kind set to the value everywhere, the rest random."""
    genes = space.genes()
    out = []
    for r in resolutions:
        for positions in gene_groups(space).values():
            for value in sorted({v for p in positions for v in genes[p].choices}):
                values = list(space.config_values(space.sample(rng, resolution=int(r))))
                for p in positions:
                    if value in genes[p].choices:
                        values[p] = value
                cfg = space.config_from_values(values)
                if space.is_valid(cfg):
                    out.append(cfg)
    return out


def random_subnets(space: SearchSpace, resolutions: Sequence[int], n: int, rng: np.random.Generator, *,
                   exclude: Iterable[SubnetConfig] = ()) -> list[SubnetConfig]:
    """`n` distinct random subnets at resolutions drawn from `resolutions`, none of them in `exclude`."""
    seen = set(exclude)
    out: list[SubnetConfig] = []
    for _ in range(50 * n + 100):
        if len(out) == n:
            break
        cfg = space.sample(rng, resolution=int(rng.choice(list(resolutions))))
        if cfg not in seen:
            seen.add(cfg)
            out.append(cfg)
    return out


def design_features(layers: SubnetLayers) -> np.ndarray:
    """(N, C + 2): class shares, and the per-inference and per-layer terms relative to the subnet's time."""
    sums = np.maximum(layers.sums, 1e-12)
    return np.column_stack([layers.class_shares(), 1.0 / sums, layers.counts / sums])


def greedy_d_optimal(features: np.ndarray, n: int, *, chosen: Sequence[int] = (), ridge: float = 1e-3) -> list[int]:
    """`n` more rows of `features` (standardised) that greedily maximise ``det(ridge I + X'X)``, after `chosen`."""
    x = features - features.mean(axis=0)
    scale = x.std(axis=0)
    x = x[:, scale > 1e-12] / scale[scale > 1e-12]
    m_inv = np.eye(x.shape[1]) / ridge
    picked = list(chosen)
    for i in picked:
        v = m_inv @ x[i]
        m_inv -= np.outer(v, v) / (1.0 + x[i] @ v)
    for _ in range(n):
        gain = np.einsum("ij,jk,ik->i", x, m_inv, x)
        gain[picked] = -np.inf
        best = int(np.argmax(gain))
        if not np.isfinite(gain[best]):
            break
        picked.append(best)
        v = m_inv @ x[best]
        m_inv -= np.outer(v, v) / (1.0 + x[best] @ v)
    return picked[len(chosen):]


def design_subnets(space: SearchSpace, table: object, index: ClassIndex, resolutions: Sequence[int], n: int,
                   rng: np.random.Generator, *, measured: Sequence[SubnetConfig] = (),
                   exclude: Iterable[SubnetConfig] = ()) -> list[SubnetConfig]:
    """`n` informative subnets to measure next, given those already `measured` (never any in `exclude`)."""
    skip = set(exclude) | set(measured)
    pool = [c for c in dict.fromkeys(homogeneous_subnets(space, resolutions, rng)) if c not in skip]
    pool += random_subnets(space, resolutions, max(4 * n, 40), rng, exclude=skip | set(pool))
    candidates = list(measured) + pool
    features = design_features(SubnetLayers.of(space, table, candidates, index))
    picks = greedy_d_optimal(features, n, chosen=range(len(measured)))
    return [candidates[i] for i in picks]


__all__ = ["design_features", "design_subnets", "gene_groups", "greedy_d_optimal", "homogeneous_subnets",
           "random_subnets"]
