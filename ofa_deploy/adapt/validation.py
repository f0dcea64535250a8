"""The held-out guarantee of an adapted table: figures on random subnets measured on the target, and the goal.

The held-out subnets are drawn at random (seeded) and measured on the target with the anchor-paired protocol;
they are never fitted on nor used to choose a rung. An adapted table is usable only when its figures meet the
goal, and the figures are stored with it (`Provenance.adaptation["validation"]`).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ofa_deploy.errors import ConfigError


@dataclass(frozen=True)
class Goal:
    """What held-out subnets must show: shares within ±10% and ±5%, Spearman, and how many subnets at least."""

    within_10pct: float = 0.95
    within_5pct: float = 0.85
    spearman: float = 0.98
    min_n: int = 30

    def __post_init__(self) -> None:
        for name in ("within_10pct", "within_5pct", "spearman"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"adaptation goal {name} must be within [0, 1], got {getattr(self, name)!r}")
        if self.min_n < 3:
            raise ConfigError(f"adaptation goal min_n must be >= 3 held-out subnets, got {self.min_n}")

    def misses(self, figures: dict[str, Any]) -> list[str]:
        """What the figures miss, in words (empty: the goal is met)."""
        out = []
        if figures["n"] < self.min_n:
            out.append(f"only {figures['n']} held-out subnets (need {self.min_n})")
        for name, label in (("within_10pct", "within ±10%"), ("within_5pct", "within ±5%")):
            if figures[name] < getattr(self, name):
                out.append(f"{figures[name]:.0%} {label} (need {getattr(self, name):.0%})")
        if not figures["spearman"] >= self.spearman:
            out.append(f"Spearman {figures['spearman']:.3f} (need {self.spearman:.2f})")
        return out

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def held_out_figures(predicted: Sequence[float], measured: Sequence[float], goal: Goal) -> dict[str, Any]:
    """n, within ±5% / ±10%, Spearman, bias (mean signed % error), and whether the goal is met."""
    from ofa_deploy.profiling.validate import agreement

    figures = agreement(predicted, measured)
    out: dict[str, Any] = {"n": figures["n"], "within_5pct": figures["within_5pct"],
                           "within_10pct": figures["within_10pct"],
                           "spearman": figures["spearman"] if np.isfinite(figures["spearman"]) else 0.0,
                           "bias": figures["mean_pct_error"], "mean_abs_pct_error": figures["mean_abs_pct_error"],
                           "max_abs_pct_error": figures["max_abs_pct_error"]}
    missed = goal.misses(out)
    out["passed"] = not missed
    if missed:
        out["missed"] = missed
    out["goal"] = goal.to_dict()
    return out


__all__ = ["Goal", "held_out_figures"]
