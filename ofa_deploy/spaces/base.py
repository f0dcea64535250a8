"""`SearchSpace`: the torch-free description of an OFA design space.

A space knows its elastic choices, validates and samples `SubnetConfig`s, converts them to and
from integer gene arrays (for batched search), and walks a subnet's layers (`walk_layers`).
"""
from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ofa_deploy.errors import ConfigError
from ofa_deploy.spaces.config import SubnetConfig, finite_number, short_repr
from ofa_deploy.spaces.layer_spec import LayerSpec

RngLike = "np.random.Generator | int | None"


def as_generator(rng: np.random.Generator | int | None) -> np.random.Generator:
    """A numpy Generator from a seed, an existing Generator, or None (fresh entropy)."""
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


@dataclass(frozen=True)
class PlacedLayer:
    """A `LayerSpec` and the path of the supernet module that computes it (None: no parameters)."""

    source: str | None
    spec: LayerSpec


class LayerChain:
    """Collects a walk: each added layer starts at the previous layer's output size."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.layers: list[PlacedLayer] = []

    def add(self, source: str | None, **fields: Any) -> None:
        spec = LayerSpec(in_size=self.size, **fields)
        self.layers.append(PlacedLayer(source, spec))
        self.size = spec.out_size


@dataclass(frozen=True)
class Gene:
    """One integer-coded decision of a subnet: its name (e.g. ``ks[3]``) and its allowed values."""

    name: str
    choices: tuple[float, ...]


class SearchSpace(abc.ABC):
    """Base class of the OFA design spaces."""

    name: str
    family: str
    resolutions: tuple[int, ...]
    n_classes: int

    _genes: tuple[Gene, ...]

    # ---- subclasses implement ------------------------------------------------------------------
    @abc.abstractmethod
    def _build_genes(self) -> tuple[Gene, ...]:
        """The decisions of a subnet in gene order; gene 0 is always the resolution. Called once, by __init__."""

    @abc.abstractmethod
    def config_from_values(self, values: Sequence[float]) -> SubnetConfig:
        """Build a config from one value per gene (in `genes()` order)."""

    @abc.abstractmethod
    def config_values(self, cfg: SubnetConfig) -> tuple[float, ...]:
        """One value per gene (in `genes()` order) for a valid config."""

    @abc.abstractmethod
    def walk(self, cfg: SubnetConfig, resolution: int | None = None) -> list[PlacedLayer]:
        """Every layer of the subnet in forward order, with its supernet module path."""

    @abc.abstractmethod
    def _check_shape(self, cfg: SubnetConfig) -> None:
        """Raise ConfigError if list lengths do not fit the space."""

    @abc.abstractmethod
    def constructor_args(self) -> dict[str, Any]:
        """JSON-able keyword arguments that rebuild the space's gene layout (`spaces.space_to_dict` stores them)."""

    # ---- shared behaviour ----------------------------------------------------------------------
    def genes(self) -> tuple[Gene, ...]:
        """The decisions of a subnet in gene order (built once; spaces are immutable after __init__)."""
        return self._genes

    def walk_layers(self, cfg: SubnetConfig, resolution: int | None = None) -> list[LayerSpec]:
        """The subnet's layers as `LayerSpec`s at `resolution` (default: the config's own)."""
        return [placed.spec for placed in self.walk(cfg, resolution)]

    def validate(self, cfg: SubnetConfig) -> SubnetConfig:
        """Return `cfg` if it is a subnet of this space, else raise ConfigError naming the bad value."""
        if not isinstance(cfg, SubnetConfig):
            raise ConfigError(f"expected a SubnetConfig, got {type(cfg).__name__}")
        self._check_shape(cfg)
        values = self.config_values(cfg)
        for gene, value in zip(self.genes(), values):
            if value not in gene.choices:
                allowed = ", ".join(_fmt(c) for c in gene.choices)
                raise ConfigError(
                    f"{self.name}: {gene.name} = {_fmt(value)} is outside the space; allowed values: {allowed}"
                )
        return cfg

    def is_valid(self, cfg: SubnetConfig) -> bool:
        try:
            self.validate(cfg)
        except ConfigError:
            return False
        return True

    def gene_sizes(self) -> np.ndarray:
        """Number of choices per gene."""
        return np.array([len(g.choices) for g in self.genes()], dtype=np.int64)

    def to_genes(self, cfgs: Sequence[SubnetConfig]) -> np.ndarray:
        """Configs → int array (N, n_genes) of choice indices."""
        index = [{c: i for i, c in enumerate(g.choices)} for g in self.genes()]
        out = np.empty((len(cfgs), len(index)), dtype=np.int64)
        for row, cfg in enumerate(cfgs):
            self.validate(cfg)
            for col, value in enumerate(self.config_values(cfg)):
                out[row, col] = index[col][value]
        return out

    def check_genes(self, genes: Any, *, integer_dtype: bool = False) -> np.ndarray:
        """`genes` as an int64 array (N, n_genes) of valid choice indices, else ConfigError naming the bad entry.

        Accepts integer arrays (a single row is promoted to (1, n_genes)) and, unless `integer_dtype`, float
        arrays holding whole numbers; negative indices are refused rather than counted from the end.
        """
        try:
            arr = np.asarray(genes)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{self.name}: gene arrays must be rectangular integer arrays ({exc})") from None
        if arr.ndim == 1:
            arr = arr[None, :]
        n_genes = len(self._genes)
        if arr.ndim != 2 or arr.shape[1] != n_genes:
            raise ConfigError(f"{self.name}: gene arrays must have shape (N, {n_genes}), got {arr.shape}; "
                              "build them with space.to_genes(configs) or space.sample_genes(n)")
        if np.issubdtype(arr.dtype, np.floating) and not integer_dtype:
            finite = np.isfinite(arr)
            whole = np.zeros_like(finite)
            whole[finite] = arr[finite] == np.round(arr[finite])
            if not whole.all():
                row, col = map(int, np.argwhere(~whole)[0])
                raise ConfigError(f"{self.name}: gene {col} ({self._genes[col].name}) of row {row} is "
                                  f"{arr[row, col].item()!r}, expected a whole-number choice index")
        elif not np.issubdtype(arr.dtype, np.integer):
            raise ConfigError(f"{self.name}: gene arrays must hold integer choice indices, got dtype {arr.dtype}")
        sizes = self.gene_sizes()
        bad = (arr < 0) | (arr >= sizes)
        if bad.any():
            row, col = map(int, np.argwhere(bad)[0])
            value = arr[row, col]
            raise ConfigError(
                f"{self.name}: gene {col} ({self._genes[col].name}) of row {row} is {value.item()!r}, "
                f"expected a choice index in 0..{int(sizes[col]) - 1}"
            )
        return arr.astype(np.int64)

    def from_genes(self, genes: np.ndarray) -> list[SubnetConfig]:
        """Int array (N, n_genes) of choice indices → configs (invalid arrays: ConfigError, see `check_genes`)."""
        genes = self.check_genes(genes)
        choices = [g.choices for g in self.genes()]
        return [self.config_from_values([choices[j][i] for j, i in enumerate(row.tolist())]) for row in genes]

    def sample_genes(self, n: int, rng: np.random.Generator | int | None = None) -> np.ndarray:
        """`n` uniformly random subnets as gene arrays (each gene independently uniform)."""
        gen = as_generator(rng)
        sizes = self.gene_sizes()
        return (gen.random((n, len(sizes))) * sizes).astype(np.int64)

    def sample(self, rng: np.random.Generator | int | None = None, resolution: int | None = None) -> SubnetConfig:
        """One random subnet; same seed, same subnet."""
        return self.sample_batch(1, rng, resolution)[0]

    def sample_batch(
        self, n: int, rng: np.random.Generator | int | None = None, resolution: int | None = None
    ) -> list[SubnetConfig]:
        cfgs = self.from_genes(self.sample_genes(n, rng))
        return [c.replace(resolution=resolution) if resolution else c for c in cfgs]

    def max_config(self, resolution: int | None = None) -> SubnetConfig:
        values = [max(g.choices) for g in self.genes()]
        values[0] = resolution or max(self.resolutions)
        return self.config_from_values(values)

    def min_config(self, resolution: int | None = None) -> SubnetConfig:
        values = [min(g.choices) for g in self.genes()]
        values[0] = resolution or min(self.resolutions)
        return self.config_from_values(values)

    def check_resolution(self, resolution: int) -> int:
        if resolution not in self.resolutions:
            lo, hi = min(self.resolutions), max(self.resolutions)
            raise ConfigError(
                f"{self.name}: resolution {resolution} is outside the space; allowed: {lo}..{hi} "
                f"({len(self.resolutions)} values: {', '.join(map(str, self.resolutions))})"
            )
        return resolution

    def describe(self) -> dict[str, object]:
        """A JSON-able summary of the space (for `ofa-deploy list supernets`)."""
        sizes = self.gene_sizes()
        return {"name": self.name, "family": self.family, "n_genes": int(len(sizes)),
                "resolutions": [min(self.resolutions), max(self.resolutions), len(self.resolutions)],
                "log10_size": float(np.log10(self.count_subnets()))}

    @abc.abstractmethod
    def count_subnets(self) -> float:
        """Number of distinct architectures (all resolutions)."""


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def check_length(space: str, name: str, values: tuple, expected: int, what: str) -> None:
    if len(values) != expected:
        raise ConfigError(f"{space}: {name} needs {expected} entries (one per {what}), got {len(values)}: "
                          f"{short_repr(list(values))}")


def space_choices(space: str, name: str, values: Any, *, integer: bool, minimum: float,
                  exclusive: bool = False) -> tuple[Any, ...]:
    """Sorted, validated constructor choices of a space (finite numbers >= / > `minimum`, ints if `integer`)."""
    if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray)):
        raise ConfigError(f"{space}: {name} must be a list of numbers, got {short_repr(values)}")
    out = []
    for v in values:
        as_float = finite_number(v)
        low = as_float is not None and (as_float <= minimum if exclusive else as_float < minimum)
        if as_float is None or low or (integer and not as_float.is_integer()):
            kind = "integers" if integer else "finite numbers"
            bound = f"> {minimum:g}" if exclusive else f">= {minimum:g}"
            raise ConfigError(f"{space}: {name} must hold {kind} {bound}, got {short_repr(v)} "
                              f"in {short_repr(list(values))}")
        out.append(int(as_float) if integer else as_float)
    return tuple(sorted(out))


def space_number(space: str, name: str, value: Any, *, integer: bool, minimum: float) -> Any:
    """One validated numeric constructor argument of a space (e.g. ``n_classes``, ``width_mult``)."""
    as_float = finite_number(value)
    if as_float is None or (integer and not as_float.is_integer()) or (as_float < minimum if integer
                                                                        else as_float <= minimum):
        expected = f"an integer >= {minimum:g}" if integer else f"a finite number > {minimum:g}"
        raise ConfigError(f"{space}: {name} must be {expected}, got {short_repr(value)}")
    return int(as_float) if integer else as_float
