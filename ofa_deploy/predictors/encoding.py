"""OFA-compatible architecture encoders: gene arrays → one-hot feature matrices, batched.

Three layouts, each bit-identical to the reference implementation's:

* `MobileNetArchEncoder` (OFA ``nas`` layout): resolution one-hot | kernel one-hot, one slot group
  per dynamic block | expand one-hot per block. Skipped blocks are all-zero (that encodes depth).
  121 features for ``[224]``, 145 for ``range(128, 225, 4)`` on the MBv3 space.
* `ResNetArchEncoder`: resolution one-hot | input-stem 2-slot | width one-hot (6 slots) |
  expand one-hot per block, the first ``base + d[i]`` blocks of each stage active. 82 features with
  the 8 resolutions 128..256 of OFA's released ResNet50 predictor.
* `TutorialMBv3Encoder` (the OFA tutorial predictor): 60 kernel | 60 expand | 8 resolution
  slots, the resolution slot being ``(r - 112) // 16``.

Every encoder reads the gene arrays of `SearchSpace.to_genes` and works on a whole population at
once (no per-candidate Python loop). Its resolution list may differ from the space's: resolutions
are matched by value, and a space resolution the encoder cannot encode raises `ConfigError`
(only when a row actually uses it).
"""
from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any

import numpy as np

from ofa_deploy.errors import ConfigError, unknown_name
from ofa_deploy.spaces import MobileSpace, ResNetSpace, SearchSpace, SubnetConfig
from ofa_deploy.spaces.config import finite_number
from ofa_deploy.spaces.family import FAMILIES, family_of
from ofa_deploy.spaces.resnet import BASE_DEPTHS

TUTORIAL_RESOLUTIONS = tuple(range(112, 225, 16))


class ArchEncoder(abc.ABC):
    """Base class: one-hot features of subnets of one `SearchSpace`."""

    name: str
    space: SearchSpace
    resolutions: tuple[int, ...]
    n_dim: int

    def __init__(self, space: SearchSpace, *, resolutions: Sequence[int] | None = None) -> None:
        self.space = space
        self.resolutions = _resolution_list(type(self).__name__, resolutions if resolutions is not None
                                            else space.resolutions)
        if not self.resolutions or len(set(self.resolutions)) != len(self.resolutions):
            raise ConfigError(f"{type(self).__name__}: resolutions must be non-empty and distinct, got {self.resolutions}")
        self._n_genes = len(space.genes())
        # space resolution choice index → encoder resolution slot (−1: not encodable)
        self._res_slot = np.array([self._resolution_slot(int(r)) for r in space.resolutions], dtype=np.int64)

    # ---- subclass hooks ---------------------------------------------------------------------------
    def _resolution_slot(self, resolution: int) -> int:
        return self.resolutions.index(resolution) if resolution in self.resolutions else -1

    @abc.abstractmethod
    def _hot_columns(self, genes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(column index matrix (N, K), active mask (N, K)) of the one-hot entries set to 1."""

    @abc.abstractmethod
    def decode(self, features: np.ndarray) -> list[SubnetConfig]:
        """Feature rows → configs (choices of skipped blocks are filled with the smallest value)."""

    # ---- public API --------------------------------------------------------------------------------
    def params(self) -> dict[str, Any]:
        """JSON-able constructor parameters (stored in predictor headers)."""
        return {"resolutions": list(self.resolutions)}

    def resolution_columns(self) -> slice:
        """The feature columns of the resolution one-hot."""
        return slice(0, len(self.resolutions))

    def encode_genes(self, genes: np.ndarray) -> np.ndarray:
        """Gene array (N, n_genes) of choice indices → float32 features (N, n_dim)."""
        genes = self._check_genes(genes)
        cols, active = self._hot_columns(genes)
        out = np.zeros((genes.shape[0], self.n_dim), dtype=np.float32)
        rows = np.broadcast_to(np.arange(genes.shape[0])[:, None], cols.shape)
        out[rows[active], cols[active]] = 1.0
        return out

    def encode(self, cfgs: Sequence[SubnetConfig]) -> np.ndarray:
        """Configs → float32 features (N, n_dim)."""
        return self.encode_genes(self.space.to_genes(list(cfgs)))

    def _check_genes(self, genes: np.ndarray) -> np.ndarray:
        genes = self.space.check_genes(genes, integer_dtype=True)
        slots = self._res_slot[genes[:, 0]]
        if (slots < 0).any():
            row = int(np.argmin(slots))
            res = self.space.resolutions[int(genes[row, 0])]
            raise ConfigError(
                f"{self.name} encoder cannot encode resolution {res} (row {row}); it encodes "
                f"{list(self.resolutions)}. Restrict the space to those resolutions "
                f"(e.g. get_space(..., resolutions={list(self.resolutions)})) or train a predictor for {res}."
            )
        return genes.astype(np.int64, copy=False)

    def _decode_resolution(self, features: np.ndarray, offset: int) -> np.ndarray:
        slots = np.argmax(features[:, offset : offset + len(self.resolutions)], axis=1)
        return np.asarray(self.resolutions)[slots]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(space={self.space.name!r}, resolutions={list(self.resolutions)}, n_dim={self.n_dim})"


def _onehot_decode(block: np.ndarray, choices: Sequence[float], fill: float) -> tuple[np.ndarray, np.ndarray]:
    """(values, active) from a (N, n_blocks, n_choices) one-hot block; inactive entries get `fill`."""
    active = block.sum(axis=2) > 0
    values = np.asarray(choices, dtype=np.float64)[np.argmax(block, axis=2)]
    return np.where(active, values, fill), active


class MobileNetArchEncoder(ArchEncoder):
    """OFA's ``MobileNetArchEncoder`` layout for MobileNetV3 / ProxylessNAS spaces."""

    name = "mobilenet"

    def __init__(self, space: SearchSpace, *, resolutions: Sequence[int] | None = None) -> None:
        if not isinstance(space, MobileSpace):
            raise ConfigError(f"the mobilenet encoder needs a MobileNet-style space, got {space.name} ({space.family})")
        super().__init__(space, resolutions=resolutions)
        n_s, n_b = len(space.stages), space.n_blocks
        self._stage_of = np.concatenate([np.full(s.n_blocks, i) for i, s in enumerate(space.stages)])
        self._pos = np.concatenate([np.arange(s.n_blocks) for s in space.stages])
        self._depth_values = [np.asarray(s.depth_choices, dtype=np.int64) for s in space.stages]
        self._nk, self._ne = len(space.kernel_sizes), len(space.expand_ratios)
        self._k_off = len(self.resolutions)
        self._e_off = self._k_off + n_b * self._nk
        self.n_dim = self._e_off + n_b * self._ne
        self._g_depth, self._g_k, self._g_e = 1, 1 + n_s, 1 + n_s + n_b

    def _active(self, genes: np.ndarray) -> np.ndarray:
        depth = np.stack([self._depth_values[s][genes[:, 1 + s]] for s in range(len(self._depth_values))], axis=1)
        return self._pos[None, :] < depth[:, self._stage_of]

    def _hot_columns(self, genes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n_b = self.space.n_blocks
        blocks = np.arange(n_b)
        k_cols = self._k_off + blocks * self._nk + genes[:, self._g_k : self._g_k + n_b]
        e_cols = self._e_off + blocks * self._ne + genes[:, self._g_e : self._g_e + n_b]
        active = self._active(genes)
        r_cols = self._res_slot[genes[:, :1]]
        cols = np.concatenate([r_cols, k_cols, e_cols], axis=1)
        mask = np.concatenate([np.ones_like(r_cols, dtype=bool), active, active], axis=1)
        return cols, mask

    def decode(self, features: np.ndarray) -> list[SubnetConfig]:
        features = np.atleast_2d(np.asarray(features))
        space, n_b = self.space, self.space.n_blocks
        res = self._decode_resolution(features, 0)
        ks, active = _onehot_decode(features[:, self._k_off : self._k_off + n_b * self._nk].reshape(-1, n_b, self._nk),
                                    space.kernel_sizes, min(space.kernel_sizes))
        es, _ = _onehot_decode(features[:, self._e_off : self._e_off + n_b * self._ne].reshape(-1, n_b, self._ne),
                               space.expand_ratios, min(space.expand_ratios))
        out = []
        for i in range(features.shape[0]):
            depths = [int(active[i, self._stage_of == s].sum()) for s in range(len(space.stages))]
            out.append(SubnetConfig(resolution=int(res[i]), depths=depths, kernel_sizes=ks[i].astype(int).tolist(),
                                    expand_ratios=es[i].tolist()))
        return out


class ResNetArchEncoder(ArchEncoder):
    """OFA's ``ResNetArchEncoder`` layout for the ResNet50 space."""

    name = "resnet"

    def __init__(self, space: SearchSpace, *, resolutions: Sequence[int] | None = None) -> None:
        if not isinstance(space, ResNetSpace):
            raise ConfigError(f"the resnet encoder needs the ResNet space, got {space.name} ({space.family})")
        super().__init__(space, resolutions=resolutions)
        self._stage_of = np.concatenate([np.full(n, i) for i, n in enumerate(space.stage_blocks)])
        self._pos = np.concatenate([np.arange(n) for n in space.stage_blocks])
        self._base = np.asarray(BASE_DEPTHS, dtype=np.int64)
        self._depth_values = np.asarray(space.depths, dtype=np.int64)
        self._stem_values = np.asarray(space.stem_depth_choices, dtype=np.int64)
        self._nw, self._ne = len(space.width_mults), len(space.expand_ratios)
        self._stem_off = len(self.resolutions)
        self._w_off = self._stem_off + 2
        self._e_off = self._w_off + 6 * self._nw
        self.n_dim = self._e_off + space.n_blocks * self._ne
        self._g_e, self._g_w = 6, 6 + space.n_blocks

    def _hot_columns(self, genes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n_b = self.space.n_blocks
        r_cols = self._res_slot[genes[:, :1]]
        stem_cols = self._stem_off + (self._stem_values[genes[:, 1:2]] > 0).astype(np.int64)
        w_cols = self._w_off + np.arange(6) * self._nw + genes[:, self._g_w : self._g_w + 6]
        e_cols = self._e_off + np.arange(n_b) * self._ne + genes[:, self._g_e : self._g_e + n_b]
        extra = self._depth_values[genes[:, 2:6]]  # (N, 4)
        active = self._pos[None, :] < (self._base[None, :] + extra)[:, self._stage_of]
        cols = np.concatenate([r_cols, stem_cols, w_cols, e_cols], axis=1)
        mask = np.concatenate([np.ones((len(genes), 8), dtype=bool), active], axis=1)
        return cols, mask

    def decode(self, features: np.ndarray) -> list[SubnetConfig]:
        features = np.atleast_2d(np.asarray(features))
        space, n_b = self.space, self.space.n_blocks
        res = self._decode_resolution(features, 0)
        stem = np.argmax(features[:, self._stem_off : self._stem_off + 2], axis=1)
        widths = np.argmax(features[:, self._w_off : self._e_off].reshape(-1, 6, self._nw), axis=2)
        es, active = _onehot_decode(features[:, self._e_off :].reshape(-1, n_b, self._ne),
                                    space.expand_ratios, min(space.expand_ratios))
        out = []
        for i in range(features.shape[0]):
            extra = [int(active[i, self._stage_of == s].sum()) - BASE_DEPTHS[s] for s in range(4)]
            stem_d = max(space.stem_depth_choices) if stem[i] else min(space.stem_depth_choices)
            out.append(SubnetConfig(resolution=int(res[i]), depths=[stem_d, *extra], expand_ratios=es[i].tolist(),
                                    width_indices=widths[i].tolist()))
        return out


class TutorialMBv3Encoder(MobileNetArchEncoder):
    """The OFA tutorial predictor's 128-wide layout: 60 kernel | 60 expand | 8 resolution slots.

    Resolution slot ``(r - 112) // 16``, so the encodable resolutions are 112, 128, ..., 224.
    Needs a space with 20 dynamic blocks and 3 kernel / 3 expand choices (OFA-MBv3).
    """

    name = "mbv3_tutorial"

    def __init__(self, space: SearchSpace, *, resolutions: Sequence[int] | None = None) -> None:
        if resolutions is not None and _resolution_list("mbv3_tutorial", resolutions) != TUTORIAL_RESOLUTIONS:
            raise ConfigError(f"the tutorial encoder has fixed resolution slots {list(TUTORIAL_RESOLUTIONS)}, "
                              f"got {list(resolutions)}")
        super().__init__(space, resolutions=TUTORIAL_RESOLUTIONS)
        space = self.space
        assert isinstance(space, MobileSpace)
        if space.n_blocks != 20 or self._nk != 3 or self._ne != 3:
            raise ConfigError(
                f"the tutorial encoder needs an MBv3 space with 20 blocks and 3 kernel/expand choices, got "
                f"{space.name} with {space.n_blocks} blocks, kernels {space.kernel_sizes}, expands {space.expand_ratios}"
            )
        n_b = space.n_blocks
        self._k_off, self._e_off, self._r_off = 0, n_b * self._nk, 2 * n_b * self._nk
        self.n_dim = self._r_off + len(self.resolutions)

    def _resolution_slot(self, resolution: int) -> int:
        return (resolution - 112) // 16 if resolution in TUTORIAL_RESOLUTIONS else -1

    def params(self) -> dict[str, Any]:
        return {}

    def resolution_columns(self) -> slice:
        return slice(self._r_off, self._r_off + len(self.resolutions))

    def _hot_columns(self, genes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cols, mask = super()._hot_columns(genes)
        cols = cols.copy()
        cols[:, 0] += self._r_off
        return cols, mask

    def _decode_resolution(self, features: np.ndarray, offset: int) -> np.ndarray:
        return super()._decode_resolution(features, self._r_off)


def list_encoders(space: SearchSpace | None = None) -> list[str]:
    """Names of the accuracy encoders the registered families declare (those of `space`'s family, if given)."""
    families = [family_of(space)] if space is not None else FAMILIES.families()
    return sorted({name for family in families for name in family.encoders})


def get_encoder(name: str, space: SearchSpace, **params: Any) -> ArchEncoder:
    """Encoder `name` of `space`'s family (``"mobilenet"``, ``"resnet"``, ``"mbv3_tutorial"``, or one a registered
    family declares); params e.g. ``resolutions=[...]``."""
    encoders = family_of(space).encoders
    if not isinstance(name, str) or name not in encoders:
        if isinstance(name, str) and name in list_encoders():
            raise ConfigError(f"encoder {name!r} does not fit {space.name} (a {space.family!r} space); the "
                              f"{space.family} family's encoders: {', '.join(encoders) or 'none'}")
        raise unknown_name("encoder", str(name), list_encoders())
    unknown = sorted(map(str, set(params) - {"resolutions"}))
    if unknown:
        raise ConfigError(f"encoder {name!r}: unknown parameters {unknown}; the only parameter is 'resolutions'")
    return encoders[name](space, **params)


def _resolution_list(owner: str, values: Any) -> tuple[int, ...]:
    """Encoder resolutions as a tuple of positive ints, in the given order (ConfigError otherwise)."""
    if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray)):
        raise ConfigError(f"{owner}: resolutions must be a list of integers, got {values!r}")
    out = []
    for r in values:
        as_float = finite_number(r)
        if as_float is None or not as_float.is_integer() or as_float < 1:
            raise ConfigError(f"{owner}: resolutions must hold positive integers, got {r!r}")
        out.append(int(as_float))
    return tuple(out)


def default_encoder(space: SearchSpace, **params: Any) -> ArchEncoder:
    """The default encoder of the space's family (its first declared one: OFA's ``nas`` encoder for the OFA
    families)."""
    encoders = family_of(space).encoders
    if not encoders:
        raise ConfigError(f"the {space.family!r} family declares no accuracy encoder (ModelFamily.encoders), so "
                          f"{space.name} has no accuracy predictor input")
    return get_encoder(next(iter(encoders)), space, **params)
