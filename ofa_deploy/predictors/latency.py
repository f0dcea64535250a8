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
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ofa_deploy.errors import ConfigError
from ofa_deploy.spaces.slots import SlotTables
from ofa_deploy.spaces.costs import layer_macs, layer_params
from ofa_deploy.tables.latency import Calibration, LatencyTable
from ofa_deploy.spaces import LayerSpec, SearchSpace, SubnetConfig
from ofa_deploy.spaces.family import family_of

logger = logging.getLogger(__name__)


@runtime_checkable
class EfficiencyPredictor(Protocol):
    """What the search needs from an efficiency predictor."""

    name: str
    unit: str

    def predict(self, cfgs: Sequence[SubnetConfig]) -> np.ndarray: ...

    def predict_genes(self, genes: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class CalibrationFit:
    """A fitted calibration and its errors on the fitting subnets, before and after (ms and %)."""

    calibration: Calibration
    n: int
    mae_before_ms: float
    mae_after_ms: float
    mape_before: float
    mape_after: float

    def to_dict(self) -> dict[str, Any]:
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
        if family_of(self.space).slots is None:  # the family has no gather tables: exact per-config path
            return np.array([self.walk_sum(c) for c in self.space.from_genes(genes)], dtype=np.float64)
        slots = self._slot_tables()
        if self._flat is None:
            self._flat = SlotTables.flatten(self._gather_values())
        total = slots.predict(self._flat, genes)
        bad = np.flatnonzero(np.isnan(total))
        if bad.size:
            self._raise_missing(self.space.from_genes(np.atleast_2d(genes)[bad[:1]])[0])
        return total

    def predict(self, cfgs: Sequence[SubnetConfig] | SubnetConfig, resolution: int | None = None) -> np.ndarray:
        """Each subnet's walk sum (at `resolution`, else the subnet's own)."""
        cfgs = [cfgs] if isinstance(cfgs, SubnetConfig) else list(cfgs)
        return np.array([self.walk_sum(c, resolution) for c in cfgs], dtype=np.float64)

    def predict_genes(self, genes: np.ndarray) -> np.ndarray:
        """Each gene row's walk sum (rows of shape (N, n_genes))."""
        return self._raw_genes(genes)

    def _raise_missing(self, cfg: SubnetConfig) -> None:
        self.walk_sum(cfg)  # raises the miss error naming the first missing layer
        raise ConfigError(f"internal error: NaN prediction for {cfg.to_string()}")  # pragma: no cover


class LayerCounter(_SlotPredictor):
    """Number of layers in a subnet's walk (the per-layer term of a calibration), batched like the others."""

    name = "layers"
    unit = "layers"

    def _layer_value(self, spec: LayerSpec, resolution: int) -> float:
        return 1.0

    def predict(self, cfgs: Sequence[SubnetConfig]) -> np.ndarray:
        return np.array([len(self.space.walk_layers(c)) for c in cfgs], dtype=np.float64)


class LatencyPredictor(_SlotPredictor):
    """Latency (ms) of a subnet from a per-layer table: the calibrated sum of its layers' entries.

    ``ms = (scale * sum(layer units) + offset + per_layer * n_layers) * table.ms_per_unit``: entries are in the
    table's units (anchor units for tables built with the anchor-paired protocol, else ms).

    Args:
        space: the search space whose walk defines the layers.
        table: per-layer latency table; `table.stat` (median by default) is the statistic summed.
        calibration: whole-subnet correction; None: the table's own (fitted during its build, identity if none).
        calibrated: False ignores every calibration (the raw layer sum).
    """

    unit = "ms"

    def __init__(self, space: SearchSpace, table: LatencyTable, *, calibration: Calibration | None = None,
                 calibrated: bool = True) -> None:
        super().__init__(space)
        self.table = table
        self.calibration = (calibration or table.calibration) if calibrated else Calibration()
        self._counter: LayerCounter | None = None
        device = table.provenance.profile_name or table.provenance.device or "lut"
        self.name = f"latency[{device}]"

    def _layer_value(self, spec: LayerSpec, resolution: int) -> float | None:
        stats = self.table.lookup(spec, resolution)
        return None if stats is None else stats.value(self.table.stat)

    def _required(self, spec: LayerSpec, resolution: int) -> float:
        return self.table.units(spec, resolution, supernet=self.space.name)

    def _layer_counts(self, genes: np.ndarray | None = None, cfgs: Sequence[SubnetConfig] | None = None
                      ) -> np.ndarray | None:
        if not self.calibration.per_layer:
            return None
        if self._counter is None:
            self._counter = LayerCounter(self.space)
        return self._counter.predict_genes(genes) if genes is not None else self._counter.predict(cfgs or [])

    def predict_units(self, cfgs: Sequence[SubnetConfig] | SubnetConfig, resolution: int | None = None) -> np.ndarray:
        """Calibrated prediction in table units (anchor units for anchored tables)."""
        cfgs = [cfgs] if isinstance(cfgs, SubnetConfig) else list(cfgs)
        if resolution is not None:
            cfgs = [c.replace(resolution=resolution) for c in cfgs]
        raw = np.array([self.walk_sum(c) for c in cfgs], dtype=np.float64)
        return self.calibration.apply(raw, self._layer_counts(cfgs=cfgs))

    def predict(self, cfgs: Sequence[SubnetConfig] | SubnetConfig, resolution: int | None = None) -> np.ndarray:
        """Predicted latency (ms) per config (at `resolution` if given, else each config's own)."""
        return self.predict_units(cfgs, resolution) * self.table.ms_per_unit

    def predict_genes(self, genes: np.ndarray) -> np.ndarray:
        """Predicted latency (ms) of each gene row (N, n_genes): vectorised gathers, no per-row loop."""
        units = self.calibration.apply(self._raw_genes(genes), self._layer_counts(genes=genes))
        return units * self.table.ms_per_unit

    def breakdown(self, cfg: SubnetConfig, resolution: int | None = None) -> list[tuple[LayerSpec, float]]:
        """(layer, ms) in walk order (uncalibrated)."""
        return [(spec, units * self.table.ms_per_unit) for spec, units in self.walk_values(cfg, resolution)]

    def predict_specs(self, specs: Sequence[LayerSpec], resolution: int) -> float:
        """Predicted latency (ms) of a network given as its layers (e.g. an OFA net.config), calibrated."""
        raw = np.array([sum(self.table.units(s, resolution, supernet=self.space.name) for s in specs)])
        counts = np.array([len(specs)], dtype=np.float64) if self.calibration.per_layer else None
        return float(self.calibration.apply(raw, counts)[0] * self.table.ms_per_unit)

    def specs_breakdown(self, specs: Sequence[LayerSpec], resolution: int) -> list[tuple[LayerSpec, float]]:
        """(layer, ms) of a network given as its layers (uncalibrated)."""
        return [(s, self.table.units(s, resolution, supernet=self.space.name) * self.table.ms_per_unit)
                for s in specs]

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

    def fit_calibration(self, cfgs: Sequence[SubnetConfig], measured_ms: Sequence[float], *,
                        per_layer: bool = False) -> CalibrationFit:
        """Least-squares ``measured ~ scale * layer_sum + offset (+ per_layer * n_layers)`` on whole subnets
        (in table units); sets and returns the fit."""
        measured = np.asarray(measured_ms, dtype=np.float64)
        n_params = 3 if per_layer else 2
        if len(cfgs) != len(measured) or len(cfgs) < n_params:
            raise ConfigError(f"fit_calibration needs >= {n_params} configs and one measurement each, "
                              f"got {len(cfgs)} configs and {len(measured)} measurements")
        sums = np.array([self.walk_sum(c) for c in cfgs], dtype=np.float64)
        counts = np.array([len(self.space.walk_layers(c)) for c in cfgs], dtype=np.float64)
        cal = fit_linear_calibration(sums, counts, measured / self.table.ms_per_unit, per_layer=per_layer)
        raw = sums * self.table.ms_per_unit
        after = cal.apply(sums, counts) * self.table.ms_per_unit
        self.calibration = cal
        fit = CalibrationFit(
            calibration=cal, n=len(raw),
            mae_before_ms=float(np.mean(np.abs(raw - measured))), mae_after_ms=float(np.mean(np.abs(after - measured))),
            mape_before=float(np.mean(np.abs(raw - measured) / measured) * 100),
            mape_after=float(np.mean(np.abs(after - measured) / measured) * 100),
        )
        logger.info("latency calibration: %s", fit.to_dict())
        return fit


def fit_linear_calibration(sums: np.ndarray, n_layers: np.ndarray, measured: np.ndarray, *,
                           per_layer: bool = True) -> Calibration:
    """Least squares ``measured ~ scale * sums + offset (+ per_layer * n_layers)``, all in one unit.

    Falls back to the two-term model when the per-layer term is not identifiable (layer counts all equal) or
    when the fit is degenerate (scale <= 0).
    """
    columns = [sums, np.ones_like(sums)]
    if per_layer and np.ptp(n_layers) > 0:
        columns.append(n_layers)
    coef, *_ = np.linalg.lstsq(np.stack(columns, axis=1), measured, rcond=None)
    if coef[0] <= 0 and len(columns) == 3:
        return fit_linear_calibration(sums, n_layers, measured, per_layer=False)
    if coef[0] <= 0:
        return Calibration(scale=float(np.median(measured / sums)))
    return Calibration(scale=float(coef[0]), offset=float(coef[1]),
                       per_layer=float(coef[2]) if len(coef) == 3 else 0.0)


class MacsPredictor(_SlotPredictor):
    """Analytic MACs (in millions) of a subnet from the same walk, batched like `LatencyPredictor`."""

    name = "macs"
    unit = "MMACs"

    def _layer_value(self, spec: LayerSpec, resolution: int) -> float:
        return layer_macs(spec) / 1e6

    def breakdown(self, cfg: SubnetConfig, resolution: int | None = None) -> list[tuple[LayerSpec, float]]:
        return self.walk_values(cfg, resolution)


class ParamsPredictor(_SlotPredictor):
    """Parameter count (in millions) of a subnet, batched like the other predictors."""

    name = "params"
    unit = "M"

    def _layer_value(self, spec: LayerSpec, resolution: int) -> float:
        return layer_params(spec) / 1e6


__all__ = ["CalibrationFit", "EfficiencyPredictor", "LatencyPredictor", "LayerCounter", "MacsPredictor",
           "ParamsPredictor", "fit_linear_calibration"]
