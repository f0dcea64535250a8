"""Gather tables: a subnet's layers as fixed slots indexed by its genes, for batched predictors.

Every layer a subnet can have sits in one *slot* (the stem, each block position, the head layers).
The `LayerSpec` in a slot depends on a few genes only: the resolution, and for a MobileNet block its
kernel and expand genes plus its stage's depth gene (which switches the slot off); for a ResNet block
its expand gene, its width gene(s) and its stage's depth gene. `SlotTables`
enumerates, for each slot, the spec of every combination of those genes, using the space's own walk
(`SearchSpace.walk`) so it can never disagree with it. A predictor maps each spec to a number once
(`values(fn)`), and scoring a population is then one numpy gather and add per slot, in walk order.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ofa_deploy.errors import ConfigError
from ofa_deploy.spaces.base import SearchSpace
from ofa_deploy.spaces.family import family_of
from ofa_deploy.spaces.layer_spec import LayerSpec
from ofa_deploy.spaces.mobile import MobileSpace
from ofa_deploy.spaces.resnet import ResNetSpace

ValueFn = Callable[[LayerSpec, int], "float | None"]


@dataclass(frozen=True)
class Slot:
    """One layer position: the gene columns its spec depends on and the spec for each combination.

    `specs` has one axis per entry of `genes` (choice indices); an entry is None when the slot is
    inactive for that combination (a block beyond its stage's depth).
    """

    name: str
    genes: tuple[int, ...]
    specs: np.ndarray

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.specs.shape)


class SlotTables:
    """The slots of a space (see module docstring), in walk order, built by its family's rule
    (`ModelFamily.slots`: `mobile_slots`, `resnet_slots`).

    Gene 0 (the resolution) is always a slot's first gene column.
    """

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        self._sizes = space.gene_sizes()
        self._gene_names = tuple(g.name for g in space.genes())
        rule = family_of(space).slots
        if rule is None:
            raise ConfigError(f"the {space.family!r} family declares no gather-table rule (ModelFamily.slots), so "
                              f"{space.name!r} has no slot tables; use the per-config path (predict) instead")
        self.slots: tuple[Slot, ...] = tuple(rule(space))

    def specs_at(self, resolution: int) -> list[LayerSpec]:
        """Every distinct spec a subnet of the space can have at `resolution`, in slot order."""
        ri = self.space.resolutions.index(self.space.check_resolution(resolution))
        seen: dict[LayerSpec, None] = {}
        for slot in self.slots:
            for spec in slot.specs[ri].ravel() if slot.specs.ndim > 1 else [slot.specs[ri]]:
                if spec is not None:
                    seen.setdefault(spec, None)
        return list(seen)

    def values(self, fn: ValueFn) -> list[np.ndarray]:
        """Per slot, a float64 array of `fn(spec, resolution)`: 0 where inactive, NaN where `fn` gives None."""
        res = self.space.resolutions
        out = []
        for slot in self.slots:
            arr = np.zeros(slot.shape, dtype=np.float64)
            cache: dict[tuple[int, LayerSpec], float] = {}
            for idx in np.ndindex(*slot.shape):
                spec = slot.specs[idx]
                if spec is None:
                    continue
                key = (idx[0], spec)
                if key not in cache:
                    value = fn(spec, res[idx[0]])
                    cache[key] = math.nan if value is None else float(value)
                arr[idx] = cache[key]
            out.append(arr)
        return out

    def _index_plan(self) -> tuple[np.ndarray, np.ndarray]:
        """(strides (n_genes, n_slots), offsets (n_slots,)): row @ strides + offsets indexes `flatten(values)`."""
        if self.__dict__.get("_plan") is None:
            strides = np.zeros((len(self._sizes), len(self.slots)), dtype=np.float64)
            offsets = np.zeros(len(self.slots), dtype=np.int64)
            start = 0
            for j, slot in enumerate(self.slots):
                step = 1
                for gene, size in reversed(list(zip(slot.genes, slot.shape))):  # C order
                    strides[gene, j] += step
                    step *= size
                offsets[j], start = start, start + step
            self._plan = (strides, offsets)
        return self._plan

    def check_genes(self, genes: np.ndarray) -> np.ndarray:
        """`genes` as a validated (N, n_genes) integer array of choice indices."""
        genes = np.atleast_2d(np.asarray(genes))
        sizes = self._sizes
        if genes.ndim != 2 or genes.shape[1] != len(sizes):
            raise ConfigError(f"{self.space.name}: gene arrays must have shape (N, {len(sizes)}), got {genes.shape}")
        if genes.size and (genes.min() < 0 or np.any(genes.max(axis=0) >= sizes)):
            bad = int(np.argmax(np.any((genes < 0) | (genes >= sizes), axis=0)))
            raise ConfigError(f"{self.space.name}: gene column {bad} ({self._gene_names[bad]}) has an index "
                              f"outside 0..{sizes[bad] - 1}")
        if not np.issubdtype(genes.dtype, np.integer):
            raise ConfigError(f"{self.space.name}: gene arrays must hold integer choice indices, got {genes.dtype}")
        return genes

    def flat_indices(self, genes: np.ndarray) -> np.ndarray:
        """(N, n_slots) indices into `flatten(values)`: one matmul for the whole population."""
        genes = self.check_genes(genes)
        strides, offsets = self._index_plan()
        # float64 BLAS matmul: the products are small integers (< 2**53), so the result is exact
        return (genes.astype(np.float64) @ strides).astype(np.int64) + offsets

    @staticmethod
    def flatten(values: list[np.ndarray]) -> np.ndarray:
        """The per-slot value arrays concatenated in slot order (what `flat_indices` indexes)."""
        return np.concatenate([v.ravel() for v in values]) if values else np.zeros(0)

    def predict(self, flat_values: np.ndarray, genes: np.ndarray) -> np.ndarray:
        """Per gene row, the slot values (`flatten(values)`) added in walk order.

        Small populations: one matmul builds all indices. Large ones: per slot, a few column
        multiply-adds and one gather (less work than the matmul once N is in the thousands).
        """
        genes = self.check_genes(genes)
        if genes.shape[0] < 512:
            return self.gather_sum(flat_values, self.flat_indices(genes))
        strides, offsets = self._index_plan()
        columns = np.ascontiguousarray(genes.T, dtype=np.int64)
        total = np.zeros(genes.shape[0], dtype=np.float64)
        for j in range(len(self.slots)):
            terms = np.flatnonzero(strides[:, j])
            idx = columns[terms[0]] * int(strides[terms[0], j]) + int(offsets[j])
            for g in terms[1:]:
                idx += columns[g] * int(strides[g, j])
            total += flat_values[idx]  # left to right, as the walk sum
        return total

    @staticmethod
    def gather_sum(flat_values: np.ndarray, indices: np.ndarray) -> np.ndarray:
        """Per row, the slot values added left to right (walk order): `cumsum` is sequential, so the result is
        bitwise equal to summing the walk."""
        if indices.shape[1] == 0:
            return np.zeros(indices.shape[0], dtype=np.float64)
        return np.cumsum(flat_values[indices], axis=1)[:, -1]


def _slot_name(source: str | None, spec: LayerSpec) -> str:
    return source if source is not None else f"<{spec.role}>"


def mobile_slots(space: MobileSpace) -> tuple[Slot, ...]:
    """MobileNet slots: a block's spec depends on the resolution, its kernel and expand genes and (switching it
    off) its stage's depth gene; the other layers on the resolution only."""
    res_choices = space.resolutions
    n_s, n_b = len(space.stages), space.n_blocks
    ks, es = space.kernel_sizes, space.expand_ratios
    # one walk per (resolution, kernel, expand) with every block at that choice and full depth
    walks: dict[tuple[int, int, int], dict[str, LayerSpec]] = {}
    order: list[str] = []
    for ri, r in enumerate(res_choices):
        for ki, ei in itertools.product(range(len(ks)), range(len(es))):
            cfg = space.config_from_values(
                [r, *(max(s.depth_choices) for s in space.stages), *[ks[ki]] * n_b, *[es[ei]] * n_b]
            )
            placed = space.walk(cfg)
            named = {_slot_name(p.source, p.spec): p.spec for p in placed}
            if not order:
                order = list(named)
            walks[(ri, ki, ei)] = named
    block_pos: dict[str, tuple[int, int, int]] = {
        f"blocks.{b + 1}": (s, pos, b) for s, pos, b in space.active_blocks(space.max_config())
    }
    slots = []
    for name in order:
        if name in block_pos:
            stage, pos, b = block_pos[name]
            depths = space.stages[stage].depth_choices
            specs = np.empty((len(res_choices), len(depths), len(ks), len(es)), dtype=object)
            for (ri, ki, ei), named in walks.items():
                for di, d in enumerate(depths):
                    specs[ri, di, ki, ei] = named[name] if pos < d else None
            genes = (0, 1 + stage, 1 + n_s + b, 1 + n_s + n_b + b)
        else:
            specs = np.empty((len(res_choices),), dtype=object)
            for ri in range(len(res_choices)):
                specs[ri] = walks[(ri, 0, 0)][name]
            genes = (0,)
        slots.append(Slot(name, genes, specs))
    return tuple(slots)


def resnet_slots(space: ResNetSpace) -> tuple[Slot, ...]:
    """ResNet slots. A block's spec depends on the resolution, its expand gene, its stage's width gene
    and (first block of a stage) the previous width gene; its stage's depth gene switches it on.

    Width genes are covered by walks with ``w_i = (a + i * b) mod W`` for all a, b: every pair of
    consecutive width genes takes all W^2 values, so W^2 walks per (resolution, expand) suffice.
    """
    res_choices, exps, n_w = space.resolutions, space.expand_ratios, len(space.width_mults)
    n_b = space.n_blocks
    flag_gene, depth_gene = 1, (lambda s: 2 + s)
    e_gene, w_gene = (lambda b: 6 + b), (lambda i: 6 + n_b + i)
    top_depths = [max(space.depths)] * 4
    top_flag = max(space.stem_depth_choices)

    def config(r: int, e: float, widths: list[int], depths: list[int], flag: int):
        return space.config_from_values([r, flag, *depths, *[e] * n_b, *widths])

    def named(cfg) -> dict[str, LayerSpec]:
        return {_slot_name(p.source, p.spec): p.spec for p in space.walk(cfg)}

    r0, e0 = res_choices[0], exps[0]
    active_depth = [set(named(config(r0, e0, [0] * 6, [d] * 4, top_flag))) for d in space.depths]
    active_flag = [set(named(config(r0, e0, [0] * 6, top_depths, f))) for f in space.stem_depth_choices]
    walks = {}
    for ri, r in enumerate(res_choices):
        for ei, e in enumerate(exps):
            for a, b in itertools.product(range(n_w), repeat=2):
                widths = [(a + i * b) % n_w for i in range(6)]
                walks[(ri, ei, a, b)] = named(config(r, e, widths, top_depths, top_flag))
    order = list(walks[(0, 0, 0, 0)])

    def pair(i: int, x: int, y: int) -> tuple[int, int]:
        """(a, b) with w_i = x and w_{i+1} = y."""
        b = (y - x) % n_w
        return (x - i * b) % n_w, b

    block_pos = {f"blocks.{blk}": (s, pos, blk) for s, pos, blk in space.active_blocks(space.max_config())}
    slots = []
    for name in order:
        if name in block_pos:
            stage, pos, blk = block_pos[name]
            first = pos == 0
            in_w = 1 + stage  # width slot of the block's input when it is a stage's first block
            shape = (len(res_choices), len(space.depths), len(exps), *((n_w, n_w) if first else (n_w,)))
            specs = np.empty(shape, dtype=object)
            for idx in np.ndindex(*shape):
                ri, di, ei, *ws = idx
                if name not in active_depth[di]:
                    continue
                a, b = pair(in_w, ws[0], ws[1]) if first else (ws[0], 0)
                specs[idx] = walks[(ri, ei, a, b)][name]
            genes = (0, depth_gene(stage), e_gene(blk), *((w_gene(in_w), w_gene(2 + stage)) if first
                                                           else (w_gene(2 + stage),)))
        else:
            if name == "input_stem.0":
                parents, lookup = (w_gene(0),), (lambda ws: (ws[0], 0))
            elif name == "input_stem.1":
                parents, lookup = (flag_gene, w_gene(0)), (lambda ws: (ws[1], 0))
            elif name == "input_stem.2":
                parents, lookup = (w_gene(0), w_gene(1)), (lambda ws: pair(0, ws[0], ws[1]))
            elif name == "<stem>":  # max pool after the stem
                parents, lookup = (w_gene(1),), (lambda ws: (ws[0], 0))
            elif name in ("<pool>", "classifier"):
                parents, lookup = (w_gene(5),), (lambda ws: (ws[0], 0))
            else:  # pragma: no cover - a new layer in the ResNet walk
                raise ConfigError(f"ResNet gather tables do not know the layer slot {name!r}")
            sizes = [len(space.stem_depth_choices) if g == flag_gene else n_w for g in parents]
            specs = np.empty((len(res_choices), *sizes), dtype=object)
            for idx in np.ndindex(*specs.shape):
                ri, *ws = idx
                if name == "input_stem.1" and name not in active_flag[ws[0]]:
                    continue
                a, b = lookup(ws)
                specs[idx] = walks[(ri, 0, a, b)][name]
            genes = (0, *parents)
        slots.append(Slot(name, genes, specs))
    return tuple(slots)
