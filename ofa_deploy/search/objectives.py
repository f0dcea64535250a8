"""Batched objectives over integer gene arrays.

An objective maps an int64 array of choice indices ``(N, n_genes)`` (see `SearchSpace.to_genes`)
to one float per row. Predictors from `ofa_deploy.predictors` already expose ``predict_genes``;
`Objective` wraps any such callable with a name, a unit, a direction and a target (the hardware it
speaks about), which the search and the reports need.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from ofa_deploy.errors import ConfigError

Direction = Literal["min", "max"]


@runtime_checkable
class GenePredictor(Protocol):
    """Anything with a batched ``predict_genes(genes) -> (N,)`` method."""

    def predict_genes(self, genes: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class Objective:
    """A named batched objective: ``predict_genes(genes (N, n_genes)) -> float64 (N,)``.

    Args:
        name: short name used as a key in results (``"accuracy"``, ``"latency"``, ``"macs"``).
        unit: unit of the values (``"%"``, ``"ms"``, ``"M"``).
        direction: ``"max"`` for accuracy, ``"min"`` for costs.
        fn: the batched function.
        target: what the values are about, e.g. ``"note10"`` or ``"ort-cpu-1t"`` (for messages).
        scale: multiply the raw values by this (e.g. 100 to show an accuracy in [0, 1] as %).
    """

    name: str
    unit: str
    direction: Direction
    fn: Callable[[np.ndarray], Any]
    target: str = ""
    scale: float = 1.0

    def __post_init__(self) -> None:
        if self.direction not in ("min", "max"):
            raise ConfigError(f"objective {self.name!r}: direction must be 'min' or 'max', got {self.direction!r}")

    @property
    def label(self) -> str:
        """``"latency@note10"``-style key (the name alone when there is no target)."""
        return f"{self.name}@{self.target}" if self.target else self.name

    def predict_genes(self, genes: np.ndarray) -> np.ndarray:
        genes = np.ascontiguousarray(np.atleast_2d(genes), dtype=np.int64)
        values = self.fn(genes)
        if hasattr(values, "detach"):  # a torch tensor from a predictor
            values = values.detach().cpu().numpy()
        out = np.asarray(values, dtype=np.float64).reshape(-1) * self.scale
        if out.shape[0] != genes.shape[0]:
            raise ConfigError(
                f"objective {self.label!r} returned {out.shape[0]} values for {genes.shape[0]} gene rows; "
                "predict_genes must return one value per row"
            )
        return out

    def cost(self, genes: np.ndarray) -> np.ndarray:
        """Values turned into something to minimise (negated for ``direction="max"``)."""
        values = self.predict_genes(genes)
        return -values if self.direction == "max" else values


def as_objective(
    predictor: GenePredictor | Callable[[np.ndarray], Any] | Objective,
    *,
    name: str,
    unit: str,
    direction: Direction,
    target: str = "",
    scale: float = 1.0,
) -> Objective:
    """Wrap a predictor (with ``predict_genes``) or a plain batched function as an `Objective`."""
    if isinstance(predictor, Objective):
        return predictor
    fn = predictor.predict_genes if hasattr(predictor, "predict_genes") else predictor
    if not callable(fn):
        raise ConfigError(f"objective {name!r}: expected an object with predict_genes(genes) or a callable")
    return Objective(name=name, unit=unit, direction=direction, fn=fn, target=target, scale=scale)


def latency_objective(predictor: GenePredictor, *, target: str) -> Objective:
    """A latency predictor (ms, lower is better) for hardware `target`."""
    return as_objective(predictor, name="latency", unit="ms", direction="min", target=target)


def macs_objective(predictor: GenePredictor) -> Objective:
    """A MACs predictor (values in M, lower is better)."""
    return as_objective(predictor, name="macs", unit="M", direction="min")


def accuracy_objective(predictor: GenePredictor, *, percent: bool = True, target: str = "") -> Objective:
    """An accuracy predictor (higher is better); values in [0, 1] are shown as % when `percent`."""
    return as_objective(predictor, name="accuracy", unit="%" if percent else "", direction="max",
                        target=target, scale=100.0 if percent else 1.0)
