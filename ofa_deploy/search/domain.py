"""The searchable part of a space as integer genes: allowed choice indices per gene, mutation groups.

A `GeneDomain` may restrict a space (e.g. only resolutions 160..224 step 16 of a 128..224 step 4
space) without building a new space, so predictors built for the full space keep working.
Sampling and resampling are vectorised over populations.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ofa_deploy.errors import ConfigError
from ofa_deploy.spaces.base import SearchSpace
from ofa_deploy.spaces.config import SubnetConfig


@dataclass(frozen=True)
class GeneDomain:
    """Allowed choice indices per gene of `space` and the groups of genes that mutate together.

    Attributes:
        space: the search space.
        allowed: per gene, a sorted int64 array of allowed choice indices.
        groups: tuples of gene indices resampled together by a mutation (gene 0, the resolution, is
            its own group). For MobileNet spaces, a block's kernel and expand genes form one group
            (OFA's ``mutate_arch`` resamples ``ks[i]`` and ``e[i]`` together) and each stage depth is
            its own group; for ResNet every gene is its own group.
    """

    space: SearchSpace
    allowed: tuple[np.ndarray, ...]
    groups: tuple[tuple[int, ...], ...]

    def __post_init__(self) -> None:
        # derived read-only arrays, computed once (sampling and mutation run every generation)
        counts = np.array([a.size for a in self.allowed], dtype=np.int64)
        table = np.zeros((len(self.allowed), int(counts.max())), dtype=np.int64)
        for j, a in enumerate(self.allowed):
            table[j, : a.size] = a
        group_of = np.full(len(self.allowed), -1, dtype=np.int64)
        for k, group in enumerate(self.groups):
            if (group_of[list(group)] >= 0).any():
                raise ConfigError(f"mutation groups overlap: {self.groups}")
            group_of[list(group)] = k
        if (group_of < 0).any():
            raise ConfigError(f"genes {np.flatnonzero(group_of < 0).tolist()} are in no mutation group")
        full = all(np.array_equal(a, np.arange(a.size)) for a in self.allowed)  # no restriction: skip the gather
        object.__setattr__(self, "_full", full)
        has_res = np.array([0 in g for g in self.groups])
        for name, value in (("_table", table), ("_counts", counts), ("_group_of", group_of), ("_has_res", has_res)):
            value.setflags(write=False)
            object.__setattr__(self, name, value)
        object.__setattr__(self, "_block_layout", self._make_block_layout())

    def _make_block_layout(self) -> tuple[np.ndarray, ...] | None:
        """Arrays that tell, per MobileNet block gene, its stage and position (None for other spaces)."""
        space = self.space
        stages = getattr(space, "stages", None)
        if stages is None or not hasattr(space, "n_blocks"):
            return None
        n_s, n_b = len(stages), space.n_blocks
        genes = space.genes()
        width = max(len(genes[1 + s].choices) for s in range(n_s))
        depth_value = np.zeros((1 + n_s, width), dtype=np.int64)
        for s in range(n_s):
            depth_value[1 + s, : len(genes[1 + s].choices)] = [int(c) for c in genes[1 + s].choices]
        block_stage = np.concatenate([np.full(st.n_blocks, s) for s, st in enumerate(stages)])
        block_pos = np.concatenate([np.arange(st.n_blocks) for st in stages])
        cols = np.concatenate([1 + n_s + np.arange(n_b), 1 + n_s + n_b + np.arange(n_b)])
        fill = np.array([self.allowed[c][0] for c in cols], dtype=np.int64)
        return depth_value, np.arange(1, 1 + n_s), block_stage, block_pos, cols, fill

    @classmethod
    def for_space(cls, space: SearchSpace, *, resolutions: Sequence[int] | None = None) -> GeneDomain:
        """The whole space, optionally restricted to some of its resolutions."""
        genes = space.genes()
        allowed = [np.arange(len(g.choices), dtype=np.int64) for g in genes]
        if resolutions is not None:
            for r in resolutions:
                space.check_resolution(int(r))
            wanted = {float(r) for r in resolutions}
            allowed[0] = np.array([i for i, c in enumerate(genes[0].choices) if c in wanted], dtype=np.int64)
            if allowed[0].size == 0:
                raise ConfigError(f"{space.name}: no resolution selected; got {list(resolutions)}")
        return cls(space=space, allowed=tuple(allowed), groups=_mutation_groups(space))

    # ---- shape -----------------------------------------------------------------------------------
    @property
    def n_genes(self) -> int:
        return len(self.allowed)

    @property
    def resolutions(self) -> tuple[int, ...]:
        choices = self.space.genes()[0].choices
        return tuple(int(choices[i]) for i in self.allowed[0])

    def describe_resolutions(self) -> str:
        res = self.resolutions
        if len(res) == 1:
            return f"resolution {res[0]}"
        steps = {b - a for a, b in zip(res, res[1:])}
        step = f" step {steps.pop()}" if len(steps) == 1 else ""
        return f"resolutions {res[0]}..{res[-1]}{step}"

    # ---- sampling --------------------------------------------------------------------------------
    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """`n` random gene rows, each gene uniform over its allowed choices."""
        pick = (rng.random((n, self.n_genes)) * self._counts).astype(np.int64)
        return pick if self._full else self._table[np.arange(self.n_genes)[None, :], pick]

    def contains(self, genes: np.ndarray) -> np.ndarray:
        """Boolean (N,): rows whose every gene is an allowed choice."""
        genes = np.atleast_2d(genes)
        ok = np.ones(genes.shape[0], dtype=bool)
        for j, a in enumerate(self.allowed):
            ok &= np.isin(genes[:, j], a)
        return ok

    def mutate(self, genes: np.ndarray, rng: np.random.Generator, *, arch_prob: float,
               resolution_prob: float) -> np.ndarray:
        """Resample each mutation group with its probability (resolution: `resolution_prob`).

        A resampled gene is drawn uniformly from its allowed choices, so it may keep its value
        (as in OFA). Returns a new array.
        """
        out = np.array(genes, dtype=np.int64, copy=True)
        n = out.shape[0]
        fresh = self.sample(n, rng)
        probs = np.where(self._has_res, resolution_prob, arch_prob)
        hit = rng.random((n, len(self.groups))) < probs
        mask = hit[:, self._group_of]  # every gene of a hit group
        out[mask] = fresh[mask]
        return out

    @staticmethod
    def crossover(a: np.ndarray, b: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Uniform crossover: each gene from either parent with probability 1/2."""
        take_b = rng.random(a.shape) < 0.5
        return np.where(take_b, b, a)

    def neighbours(self, row: np.ndarray) -> np.ndarray:
        """Every row that differs from `row` in exactly one gene (within the allowed choices)."""
        out = []
        for j, a in enumerate(self.allowed):
            others = a[a != row[j]]
            if others.size:
                block = np.repeat(row[None, :], others.size, axis=0)
                block[:, j] = others
                out.append(block)
        return np.concatenate(out) if out else np.empty((0, row.size), dtype=np.int64)

    def extreme_rows(self) -> np.ndarray:
        """Per allowed resolution, the all-smallest and the all-largest choice row."""
        lo = np.array([a[0] for a in self.allowed], dtype=np.int64)
        hi = np.array([a[-1] for a in self.allowed], dtype=np.int64)
        rows = []
        for r in self.allowed[0]:
            for base in (lo, hi):
                row = base.copy()
                row[0] = r
                rows.append(row)
        return np.stack(rows)

    def configs(self, genes: np.ndarray) -> list[SubnetConfig]:
        return self.space.from_genes(genes)

    def canonical(self, genes: np.ndarray) -> np.ndarray:
        """Rows with the genes of inactive blocks set to their first allowed choice.

        Two rows that describe the same subnet map to the same canonical row (MobileNet spaces:
        kernel/expand genes beyond a stage's depth do not matter).
        """
        genes = np.array(np.atleast_2d(genes), dtype=np.int64, copy=True)
        layout = self._block_layout
        if layout is None:
            return genes
        depth_value, depth_col, block_stage, block_pos, cols, fill = layout
        depth = depth_value[depth_col[None, :], genes[:, depth_col]]         # (N, stages) active depths
        inactive = block_pos[None, :] >= depth[:, block_stage]                # (N, blocks)
        inactive = np.concatenate([inactive, inactive], axis=1)               # kernel and expand genes
        sub = genes[:, cols]
        genes[:, cols] = np.where(inactive, fill[None, :], sub)
        return genes


def _mutation_groups(space: SearchSpace) -> tuple[tuple[int, ...], ...]:
    genes = space.genes()
    stages = getattr(space, "stages", None)
    if stages is not None and hasattr(space, "n_blocks"):
        n_s, n_b = len(stages), space.n_blocks
        groups: list[tuple[int, ...]] = [(0,)]
        groups += [(1 + s,) for s in range(n_s)]
        groups += [(1 + n_s + b, 1 + n_s + n_b + b) for b in range(n_b)]
        return tuple(groups)
    return tuple((j,) for j in range(len(genes)))
