"""The adaptation ladder: from one global scale to per-class corrections, each rung kept only when it helps.

A source table gives each layer a value ``v`` (source units). On the target a subnet's time in anchor units is
modelled as

    t(subnet) = sum over its layers of  v * exp(log_scale + sum of the layer's class corrections) + per_layer
                + offset

Rungs, cheapest first:

- ``global_scale``: one factor (what a single anchor measurement gives): the median of measured / source sum.
- ``scale_offset``: one factor plus a per-inference and a per-layer cost (non-negative least squares on
  relative errors): runtimes differ in call overhead, which a factor cannot carry.
- ``class_ridge``: plus a log-space correction per layer class (`classes.layer_classes`), shrunk toward the
  rung below by a ridge penalty whose strength is chosen by cross-validation.

Which rung is kept is decided by k-fold cross-validation on the measured design subnets (each fold predicted by
a fit on the others): a richer rung is kept only when its cross-validated error is clearly lower. The random
held-out subnets that give the table its guarantee (`adapt.validation`) are never used to fit or to choose.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ofa_deploy.adapt.classes import ClassIndex, SubnetLayers
from ofa_deploy.errors import ConfigError

RUNGS = ("global_scale", "scale_offset", "class_ridge")
#: ridge strengths tried for `class_ridge` (penalty on squared log corrections, against squared log errors)
RIDGE_GRID = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
#: a richer rung is kept when its cross-validated mean |log error| is below this fraction of the kept rung's
KEEP_MARGIN = 0.95


@dataclass(frozen=True)
class Adaptation:
    """A fitted rung: how the source values become target anchor units (see the module docstring)."""

    method: str
    log_scale: float
    offset: float = 0.0
    per_layer: float = 0.0
    deltas: tuple[float, ...] = ()
    ridge: float | None = None
    classes: tuple[str, ...] = field(default=(), compare=False)

    @property
    def scale(self) -> float:
        return math.exp(self.log_scale)

    def factors(self, members: np.ndarray) -> np.ndarray:
        """Per-layer factor from class membership rows (L, C)."""
        log = np.full(members.shape[0], self.log_scale)
        if self.deltas:
            log = log + (members * np.asarray(self.deltas)).sum(axis=1)
        return np.exp(log)

    def predict(self, layers: SubnetLayers) -> np.ndarray:
        """Target anchor units of each subnet of `layers`."""
        per_layer = layers.values * self.factors(layers.members) + self.per_layer
        return layers.per_subnet(per_layer) + self.offset

    def to_dict(self, *, top: int = 12) -> dict[str, Any]:
        out: dict[str, Any] = {"method": self.method, "scale": self.scale, "offset": self.offset,
                               "per_layer": self.per_layer}
        if self.deltas:
            ranked = sorted(zip(self.classes, self.deltas), key=lambda cd: -abs(cd[1]))
            out["ridge"] = self.ridge
            out["class_factors"] = {c: round(math.exp(d), 4) for c, d in ranked[:top]}
            out["classes"] = len(self.classes)
        return out


def fit_global_scale(layers: SubnetLayers, measured: np.ndarray) -> Adaptation:
    """One factor: the median of measured / source sum."""
    return Adaptation("global_scale", float(np.log(np.median(measured / layers.sums))))


def fit_scale_offset(layers: SubnetLayers, measured: np.ndarray) -> Adaptation:
    """Factor, per-inference and per-layer costs >= 0, least squares on relative errors."""
    from scipy.optimize import nnls

    design = np.column_stack([layers.sums, np.ones(len(layers)), layers.counts]) / measured[:, None]
    coef, _ = nnls(design, np.ones(len(layers)))
    if coef[0] <= 0:
        return fit_global_scale(layers, measured)
    return Adaptation("scale_offset", float(np.log(coef[0])), offset=float(coef[1]), per_layer=float(coef[2]))


def fit_class_ridge(layers: SubnetLayers, measured: np.ndarray, ridge: float, classes: Sequence[str]) -> Adaptation:
    """Factor, costs and per-class log corrections (ridge-shrunk toward 0), least squares in log space."""
    start = fit_scale_offset(layers, measured)
    n_classes = layers.members.shape[1]
    counts = layers.counts
    log_measured = np.log(measured)
    root = math.sqrt(ridge)

    def unpack(theta: np.ndarray) -> tuple[float, np.ndarray, float, float]:
        return theta[0], theta[1:1 + n_classes], theta[-2], theta[-1]

    def predict(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        log_scale, deltas, offset, per_layer = unpack(theta)
        weighted = layers.values * np.exp(log_scale + (layers.members * deltas).sum(axis=1))
        return layers.per_subnet(weighted) + per_layer * counts + offset, weighted

    def residuals(theta: np.ndarray) -> np.ndarray:
        total, _ = predict(theta)
        return np.concatenate([np.log(np.maximum(total, 1e-12)) - log_measured, root * unpack(theta)[1]])

    def jacobian(theta: np.ndarray) -> np.ndarray:
        total, weighted = predict(theta)
        inv = 1.0 / np.maximum(total, 1e-12)
        top = np.column_stack([layers.per_subnet(weighted), layers.per_subnet(weighted[:, None] * layers.members),
                               np.ones(len(layers)), counts]) * inv[:, None]
        bottom = np.zeros((n_classes, theta.size))
        bottom[:, 1:1 + n_classes] = root * np.eye(n_classes)
        return np.vstack([top, bottom])

    theta0 = np.concatenate([[start.log_scale], np.zeros(n_classes), [start.offset, start.per_layer]])
    nonnegative = np.zeros(theta0.size, dtype=bool)
    nonnegative[-2:] = True
    log_scale, deltas, offset, per_layer = unpack(levenberg_marquardt(residuals, jacobian, theta0, nonnegative))
    return Adaptation("class_ridge", float(log_scale), offset=float(offset), per_layer=float(per_layer),
                      deltas=tuple(float(d) for d in deltas), ridge=ridge, classes=tuple(classes))


def levenberg_marquardt(residuals: Callable[[np.ndarray], np.ndarray], jacobian: Callable[[np.ndarray], np.ndarray],
                        theta: np.ndarray, nonnegative: np.ndarray, *, iterations: int = 100) -> np.ndarray:
    """Minimise ``|residuals(theta)|^2`` by damped Gauss-Newton steps, the `nonnegative` entries projected onto
    ``>= 0``. The normal equations are small (classes + 3), so each step is one dense solve (no SVD: a threaded
    BLAS SVD of this size took 0.1-0.2 s on a loaded 2-core machine against 3 ms single-threaded)."""
    theta = np.where(nonnegative, np.maximum(theta, 0.0), theta)
    r = residuals(theta)
    cost = float(r @ r)
    damping = 1e-3
    for _ in range(iterations):
        jac = jacobian(theta)
        normal = jac.T @ jac
        gradient = jac.T @ r
        improved = False
        while damping < 1e10:
            step = np.linalg.solve(normal + damping * np.diag(np.diag(normal) + 1e-12), -gradient)
            trial = theta + step
            trial = np.where(nonnegative, np.maximum(trial, 0.0), trial)
            r_trial = residuals(trial)
            trial_cost = float(r_trial @ r_trial)
            if trial_cost < cost:
                improved = cost - trial_cost > 1e-8 * max(cost, 1e-30)
                theta, r, cost = trial, r_trial, trial_cost
                damping = max(damping / 3, 1e-9)
                break
            damping *= 4
        if not improved:
            break
    return theta


Fitter = Callable[[SubnetLayers, np.ndarray], Adaptation]


def cross_validate(fitter: Fitter, layers: SubnetLayers, measured: np.ndarray, folds: int, seed: int
                   ) -> dict[str, float]:
    """k-fold: each subnet predicted by a fit on the other folds; mean |log error| (x100 ~ %) and shares."""
    order = np.random.default_rng(seed).permutation(len(layers))
    predicted = np.empty(len(layers))
    for k in range(folds):
        test = order[k::folds]
        train = np.setdiff1d(order, test)
        fit = fitter(layers.subset(train), measured[train])
        predicted[test] = fit.predict(layers.subset(test))
    error = np.abs(np.log(np.maximum(predicted, 1e-12) / measured))
    return {"mean_abs_log_error": float(error.mean()), "within_5pct": float(np.mean(error <= math.log(1.05))),
            "within_10pct": float(np.mean(error <= math.log(1.10)))}


@dataclass(frozen=True)
class LadderResult:
    """The kept rung (fitted on every design subnet) and how each rung scored in cross-validation."""

    adaptation: Adaptation
    scores: dict[str, dict[str, Any]]


def fit_ladder(layers: SubnetLayers, measured: np.ndarray, index: ClassIndex, *, folds: int = 5, seed: int = 0,
               rungs: Sequence[str] = RUNGS) -> LadderResult:
    """Fit the rungs in order and keep the richest that cross-validation says helps (see the module docstring)."""
    unknown = [r for r in rungs if r not in RUNGS]
    if unknown or not rungs:
        raise ConfigError(f"unknown adaptation rung(s) {unknown}; expected a subset of {RUNGS}")
    if len(layers) < 4:
        raise ConfigError(f"adaptation needs at least 4 measured design subnets, got {len(layers)}")
    folds = min(folds, len(layers))
    fitters: dict[str, Fitter] = {"global_scale": fit_global_scale, "scale_offset": fit_scale_offset}
    scores: dict[str, dict[str, Any]] = {}
    kept: str | None = None
    for rung in rungs:
        if rung == "class_ridge":
            best = None
            for ridge in RIDGE_GRID:
                fitter: Fitter = lambda lay, m, r=ridge: fit_class_ridge(lay, m, r, index.names)  # noqa: E731
                score = {**cross_validate(fitter, layers, measured, folds, seed), "ridge": ridge}
                if best is None or score["mean_abs_log_error"] < best[1]["mean_abs_log_error"]:
                    best = (fitter, score)
            assert best is not None
            fitters[rung], scores[rung] = best
        else:
            scores[rung] = cross_validate(fitters[rung], layers, measured, folds, seed)
        better = kept is None or scores[rung]["mean_abs_log_error"] < KEEP_MARGIN * scores[kept]["mean_abs_log_error"]
        scores[rung]["kept"] = False
        if better:
            kept = rung
    assert kept is not None
    scores[kept]["kept"] = True
    return LadderResult(fitters[kept](layers, measured), scores)


__all__ = ["KEEP_MARGIN", "RIDGE_GRID", "RUNGS", "Adaptation", "LadderResult", "cross_validate", "fit_class_ridge",
           "fit_global_scale", "fit_ladder", "fit_scale_offset", "levenberg_marquardt"]
