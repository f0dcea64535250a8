"""Efficiency predictors: LUT latency and analytic MACs, per config and batched over gene arrays.

Both sum a per-layer quantity over the same walk (`SearchSpace.walk_layers`) and share one protocol
(`EfficiencyPredictor`): ``name``, ``unit``, ``predict(cfgs)`` and the fast ``predict_genes(genes)``.
The fast path precomputes one value array per layer slot (`gather.SlotTables`) and scores a whole
population with one numpy gather per slot: no per-candidate Python loop. It adds the slots in walk
order, so it returns bitwise the same numbers as summing the walk.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from ofa_deploy.errors import ConfigError
from ofa_deploy.predictors.gather import SlotTables
from ofa_deploy.predictors.macs import layer_macs, layer_params
from ofa_deploy.profiling.lut import LatencyTable
from ofa_deploy.spaces import LayerSpec, MobileSpace, ResNetSpace, SearchSpace, SubnetConfig

logger = logging.getLogger(__name__)


@runtime_checkable
class EfficiencyPredictor(Protocol):
    """What the search needs from an efficiency predictor."""

    name: str
    unit: str

    def predict(self, cfgs: Sequence[SubnetConfig]) -> np.ndarray: ...

    def predict_genes(self, genes: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class Calibration:
    """Linear correction ``measured ~ scale * lut_sum + offset`` fitted on whole-subnet measurements."""

    scale: float = 1.0
    offset: float = 0.0

    def apply(self, values: np.ndarray) -> np.ndarray:
        if self.scale == 1.0 and self.offset == 0.0:
            return values
        return self.scale * values + self.offset

    def to_dict(self) -> dict[str, float]:
        return {"scale": self.scale, "offset": self.offset}


@dataclass(frozen=True)
class CalibrationFit:
    """A fitted calibration and its errors on the fitting subnets, before and after (ms and %)."""

    calibration: Calibration
    n: int
    mae_before_ms: float
    mae_after_ms: float
    mape_before: float
    mape_after: float

    def to_dict(self) -> dict[str, float]:
        return {**self.calibration.to_dict(), "n": self.n, "mae_before_ms": self.mae_before_ms,
                "mae_after_ms": self.mae_after_ms, "mape_before_pct": self.mape_before,
                "mape_after_pct": self.mape_after}


class _SlotPredictor:
    """Shared machinery: per-slot value arrays and the walk-order sum."""

    name: str
    unit: str

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        self._slots: SlotTables | None = None
        self._values: list[np.ndarray] | None = None
        self._flat: np.ndarray | None = None

    def _slot_tables(self) -> SlotTables:
        if self._slots is None:
            self._slots = SlotTables(self.space)
        return self._slots

    def _layer_value(self, spec: LayerSpec, resolution: int) -> float | None:
        raise NotImplementedError

    def _gather_values(self) -> list[np.ndarray]:
        if self._values is None:
            self._values = self._slot_tables().values(self._layer_value)
        return self._values

    def walk_values(self, cfg: SubnetConfig, resolution: int | None = None) -> list[tuple[LayerSpec, float]]:
        """(layer, value) for every layer of the subnet, in walk order."""
        res = resolution or cfg.resolution
        return [(spec, self._required(spec, res)) for spec in self.space.walk_layers(cfg, res)]

    def _required(self, spec: LayerSpec, resolution: int) -> float:
        value = self._layer_value(spec, resolution)
        if value is None:
            raise ConfigError(f"no value for layer {spec.short()}")
        return value

    def walk_sum(self, cfg: SubnetConfig, resolution: int | None = None) -> float:
        """Sum over the walk, left to right (the definition `predict_genes` reproduces)."""
        total = 0.0
        for _, value in self.walk_values(cfg, resolution):
            total += value
        return total

    def _raw_genes(self, genes: np.ndarray) -> np.ndarray:
        if not isinstance(self.space, (MobileSpace, ResNetSpace)):  # no gather tables: exact per-config path
            return np.array([self.walk_sum(c) for c in self.space.from_genes(genes)], dtype=np.float64)
        slots = self._slot_tables()
        if self._flat is None:
            self._flat = SlotTables.flatten(self._gather_values())
        total = slots.predict(self._flat, genes)
        bad = np.flatnonzero(np.isnan(total))
        if bad.size:
            self._raise_missing(self.space.from_genes(np.atleast_2d(genes)[bad[:1]])[0])
        return total

    def _raise_missing(self, cfg: SubnetConfig) -> None:
        self.walk_sum(cfg)  # raises the miss error naming the first missing layer
        raise ConfigError(f"internal error: NaN prediction for {cfg.to_string()}")  # pragma: no cover


class LatencyPredictor(_SlotPredictor):
    """Latency (ms) of a subnet = sum of the table's statistic over its layers (+ optional calibration).

    Args:
        space: the search space whose walk defines the layers.
        table: per-layer latency table; `table.stat` (median by default) is the statistic summed.
        calibration: optional linear correction fitted on measured whole subnets (`fit_calibration`).
    """

    unit = "ms"

    def __init__(self, space: SearchSpace, table: LatencyTable, *, calibration: Calibration | None = None) -> None:
        super().__init__(space)
        self.table = table
        self.calibration = calibration or Calibration()
        device = table.provenance.profile_name or table.provenance.device or "lut"
        self.name = f"latency[{device}]"

    def _layer_value(self, spec: LayerSpec, resolution: int) -> float | None:
        stats = self.table.lookup(spec, resolution)
        return None if stats is None else stats.value(self.table.stat)

    def _required(self, spec: LayerSpec, resolution: int) -> float:
        return self.table.latency(spec, resolution, supernet=self.space.name)

    def predict(self, cfgs: Sequence[SubnetConfig] | SubnetConfig, resolution: int | None = None) -> np.ndarray:
        """Predicted latency (ms) per config (at `resolution` if given, else each config's own)."""
        cfgs = [cfgs] if isinstance(cfgs, SubnetConfig) else list(cfgs)
        raw = np.array([self.walk_sum(c, resolution) for c in cfgs], dtype=np.float64)
        return self.calibration.apply(raw)

    def predict_genes(self, genes: np.ndarray) -> np.ndarray:
        """Predicted latency (ms) of each gene row (N, n_genes): vectorised gathers, no per-row loop."""
        return self.calibration.apply(self._raw_genes(genes))

    def breakdown(self, cfg: SubnetConfig, resolution: int | None = None) -> list[tuple[LayerSpec, float]]:
        """(layer, ms) in walk order (uncalibrated)."""
        return self.walk_values(cfg, resolution)

    def check_coverage(self, resolutions: Sequence[int] | None = None) -> dict[int, list[LayerSpec]]:
        """Per resolution, the layers of the space the table lacks (empty lists: full coverage)."""
        slots = self._slot_tables()
        out = {}
        for r in resolutions or self.space.resolutions:
            out[r] = self.table.missing(slots.specs_at(r), r)
        return out

    def covered_resolutions(self) -> tuple[int, ...]:
        """Resolutions of the space at which the table covers every layer any subnet can have.

        Use it to restrict a search to what the table can score (OFA's Note10 tables: 160..224 step 16).
        """
        values = self._gather_values()
        res = self.space.resolutions
        return tuple(r for i, r in enumerate(res) if not any(np.isnan(v[i]).any() for v in values))

    def fit_calibration(self, cfgs: Sequence[SubnetConfig], measured_ms: Sequence[float]) -> CalibrationFit:
        """Least-squares ``measured ~ a * lut_sum + b`` on whole subnets; sets and returns the fit."""
        measured = np.asarray(measured_ms, dtype=np.float64)
        if len(cfgs) != len(measured) or len(cfgs) < 2:
            raise ConfigError(f"fit_calibration needs >= 2 configs and one measurement each, "
                              f"got {len(cfgs)} configs and {len(measured)} measurements")
        raw = np.array([self.walk_sum(c) for c in cfgs], dtype=np.float64)
        design = np.stack([raw, np.ones_like(raw)], axis=1)
        (scale, offset), *_ = np.linalg.lstsq(design, measured, rcond=None)
        cal = Calibration(float(scale), float(offset))
        after = cal.apply(raw)
        fit = CalibrationFit(
            calibration=cal, n=len(raw),
            mae_before_ms=float(np.mean(np.abs(raw - measured))), mae_after_ms=float(np.mean(np.abs(after - measured))),
            mape_before=float(np.mean(np.abs(raw - measured) / measured) * 100),
            mape_after=float(np.mean(np.abs(after - measured) / measured) * 100),
        )
        self.calibration = cal
        logger.info("latency calibration: %s", fit.to_dict())
        return fit


class MacsPredictor(_SlotPredictor):
    """Analytic MACs (in millions) of a subnet from the same walk, batched like `LatencyPredictor`."""

    name = "macs"
    unit = "MMACs"

    def _layer_value(self, spec: LayerSpec, resolution: int) -> float:
        return layer_macs(spec) / 1e6

    def predict(self, cfgs: Sequence[SubnetConfig] | SubnetConfig, resolution: int | None = None) -> np.ndarray:
        cfgs = [cfgs] if isinstance(cfgs, SubnetConfig) else list(cfgs)
        return np.array([self.walk_sum(c, resolution) for c in cfgs], dtype=np.float64)

    def predict_genes(self, genes: np.ndarray) -> np.ndarray:
        """MMACs of each gene row (N, n_genes)."""
        return self._raw_genes(genes)

    def breakdown(self, cfg: SubnetConfig, resolution: int | None = None) -> list[tuple[LayerSpec, float]]:
        return self.walk_values(cfg, resolution)


class ParamsPredictor(_SlotPredictor):
    """Parameter count (in millions) of a subnet, batched like the other predictors."""

    name = "params"
    unit = "M"

    def _layer_value(self, spec: LayerSpec, resolution: int) -> float:
        return layer_params(spec) / 1e6

    def predict(self, cfgs: Sequence[SubnetConfig] | SubnetConfig, resolution: int | None = None) -> np.ndarray:
        cfgs = [cfgs] if isinstance(cfgs, SubnetConfig) else list(cfgs)
        return np.array([self.walk_sum(c, resolution) for c in cfgs], dtype=np.float64)

    def predict_genes(self, genes: np.ndarray) -> np.ndarray:
        return self._raw_genes(genes)


__all__ = ["Calibration", "CalibrationFit", "EfficiencyPredictor", "LatencyPredictor", "MacsPredictor",
           "ParamsPredictor"]
