"""Layer classes: the groups of layers whose time can move together from one device to another.

A layer belongs to several classes at once: its op and role, its kernel, stride and expand ratio, its stage
width (which in MobileNetV3 also fixes SE and the activation), its spatial size (so per-resolution effects are
seen), and whether its channel count is a multiple of 16 (runtimes switch kernels there). The adaptation model
(`ofa_deploy.adapt.fit`) gives each class a log-space correction, and a layer's factor is the product of its
classes' corrections. `SubnetLayers` holds, for a set of subnets, every layer's source value and classes as
arrays, so a fit evaluates thousands of candidate corrections without walking a subnet again.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ofa_deploy.errors import ConfigError
from ofa_deploy.spaces import LayerSpec, SearchSpace, SubnetConfig


def expand_ratio(spec: LayerSpec) -> int:
    """The block's expand ratio as an integer (1 for a block without its expansion conv)."""
    return max(1, round(spec.mid_channels / spec.in_channels)) if spec.expand and spec.in_channels else 1


def layer_classes(spec: LayerSpec) -> tuple[str, ...]:
    """The classes of one layer, e.g. ``("op:mbconv:block", "mbconv:k5", "mbconv:s2", "mbconv:e4", ...)``."""
    kind = spec.kind
    classes = [f"op:{kind}:{spec.role}", f"width:{spec.out_channels}", f"size:{spec.in_size}"]
    if kind in ("conv", "mbconv", "bottleneck"):
        classes += [f"{kind}:k{spec.kernel_size}", f"{kind}:s{spec.stride}"]
    if kind == "mbconv":
        classes.append(f"mbconv:e{expand_ratio(spec)}")
        if spec.mid_channels % 16:
            classes.append("mid:not16")
    elif kind == "bottleneck" and spec.mid_channels % 16:
        classes.append("mid:not16")
    if spec.in_channels % 16 and spec.in_channels > 3:
        classes.append("in:not16")
    return tuple(classes)


@dataclass(frozen=True)
class ClassIndex:
    """Class name → column, over the layers of a source table."""

    names: tuple[str, ...]

    @classmethod
    def of(cls, specs: Iterable[LayerSpec]) -> ClassIndex:
        return cls(tuple(sorted({c for s in specs for c in layer_classes(s)})))

    def __len__(self) -> int:
        return len(self.names)

    @cached_property
    def position(self) -> dict[str, int]:
        return {n: i for i, n in enumerate(self.names)}

    def row(self, spec: LayerSpec) -> np.ndarray:
        """0/1 membership of `spec` in each class (a class the index does not know is ignored)."""
        out = np.zeros(len(self.names))
        for c in layer_classes(spec):
            if c in self.position:
                out[self.position[c]] = 1.0
        return out


@dataclass(frozen=True)
class SubnetLayers:
    """Every layer of a set of subnets: its subnet, its value in the source table and its classes.

    Attributes:
        configs: the subnets, in order.
        owner: (L,) subnet index of each layer, non-decreasing (each subnet's layers are contiguous).
        values: (L,) the layer's source-table value (source units).
        members: (L, C) class membership (0/1).
    """

    configs: tuple[SubnetConfig, ...]
    owner: np.ndarray
    values: np.ndarray
    members: np.ndarray

    @classmethod
    def of(cls, space: SearchSpace, table: object, cfgs: Sequence[SubnetConfig], index: ClassIndex) -> SubnetLayers:
        """Walk each subnet once; a layer the source table lacks is a ConfigError naming it."""
        owner: list[int] = []
        values: list[float] = []
        rows: list[np.ndarray] = []
        cache: dict[LayerSpec, np.ndarray] = {}
        for i, cfg in enumerate(cfgs):
            for spec in space.walk_layers(cfg):
                stats = table.lookup(spec, cfg.resolution)  # type: ignore[attr-defined]
                if stats is None:
                    raise ConfigError(f"the source latency table has no entry for {spec.short()} (subnet "
                                      f"{cfg.to_string()}); adapt only resolutions the source covers")
                owner.append(i)
                values.append(stats.value(table.stat))  # type: ignore[attr-defined]
                if spec not in cache:
                    cache[spec] = index.row(spec)
                rows.append(cache[spec])
        return cls(tuple(cfgs), np.array(owner, dtype=int), np.array(values, dtype=float),
                   np.array(rows).reshape(len(rows), len(index)))

    def __len__(self) -> int:
        return len(self.configs)

    def subset(self, keep: Sequence[int]) -> SubnetLayers:
        """The layers of subnets `keep` (renumbered in that order)."""
        keep = [int(k) for k in keep]
        rows = np.concatenate([np.flatnonzero(self.owner == k) for k in keep])
        owner = np.repeat(np.arange(len(keep)), [int(np.sum(self.owner == k)) for k in keep])
        return SubnetLayers(tuple(self.configs[i] for i in keep), owner, self.values[rows], self.members[rows])

    def per_subnet(self, per_layer: np.ndarray) -> np.ndarray:
        """Sum a per-layer quantity (L,) or per-layer rows (L, K) over each subnet."""
        if per_layer.ndim == 1:
            return np.bincount(self.owner, weights=per_layer, minlength=len(self.configs))
        return np.add.reduceat(per_layer, self.starts, axis=0)  # no BLAS: threaded BLAS stalls on a loaded host

    @cached_property
    def starts(self) -> np.ndarray:
        """Index of each subnet's first layer."""
        return np.searchsorted(self.owner, np.arange(len(self.configs)))

    @property
    def sums(self) -> np.ndarray:
        """The source table's raw sum per subnet."""
        return self.per_subnet(self.values)

    @property
    def counts(self) -> np.ndarray:
        """Layers per subnet."""
        return np.bincount(self.owner, minlength=len(self.configs)).astype(float)

    def class_shares(self) -> np.ndarray:
        """(N, C): the share of each subnet's source time in each class (what a design should vary)."""
        out = np.zeros((len(self.configs), self.members.shape[1]))
        np.add.at(out, self.owner, self.members * self.values[:, None])
        return out / np.maximum(self.sums, 1e-12)[:, None]


__all__ = ["ClassIndex", "SubnetLayers", "expand_ratio", "layer_classes"]
