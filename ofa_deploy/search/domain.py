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

    def _padded(self) -> tuple[np.ndarray, np.ndarray]:
        counts = np.array([a.size for a in self.allowed], dtype=np.int64)
        table = np.zeros((self.n_genes, int(counts.max())), dtype=np.int64)
        for j, a in enumerate(self.allowed):
            table[j, : a.size] = a
        return table, counts

    # ---- sampling --------------------------------------------------------------------------------
    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """`n` random gene rows, each gene uniform over its allowed choices."""
        table, counts = self._padded()
        pick = (rng.random((n, self.n_genes)) * counts).astype(np.int64)
        return table[np.arange(self.n_genes)[None, :], pick]

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
        probs = np.array([resolution_prob if 0 in g else arch_prob for g in self.groups])
        hit = rng.random((n, len(self.groups))) < probs
        mask = np.zeros_like(out, dtype=bool)
        for k, group in enumerate(self.groups):
            mask[:, list(group)] |= hit[:, [k]]
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
        space = self.space
        stages = getattr(space, "stages", None)
        if stages is None or not hasattr(space, "n_blocks"):
            return genes
        n_s, n_b = len(stages), space.n_blocks
        depth_choices = [np.array(s.depth_choices) for s in stages]
        start = 0
        for s, stage in enumerate(stages):
            depth = depth_choices[s][genes[:, 1 + s]]
            for pos in range(stage.n_blocks):
                inactive = pos >= depth
                for offset in (1 + n_s, 1 + n_s + n_b):
                    col = offset + start + pos
                    genes[inactive, col] = self.allowed[col][0]
            start += stage.n_blocks
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
