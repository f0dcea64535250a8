"""What a deploy is asked for (`DeployRequest`) and what it gives back (`DeployResult`), and how steps report
progress."""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ofa_deploy.spaces.config import SubnetConfig

log = logging.getLogger("ofa_deploy.pipeline")

Progress = Callable[[str], None]


def say(progress: Progress | None, msg: str) -> None:
    """Log `msg` and pass it to the optional progress callback (the CLI prints it on stderr)."""
    log.info(msg)
    if progress is not None:
        progress(msg)


@dataclass(frozen=True)
class DeployRequest:
    """What to deploy, where, and under which budget.

    Attributes:
        out_dir: the run directory (created; an existing one is reused, files are replaced).
        profile: hardware profile name or YAML path (e.g. ``"ort-cpu-1t"``).
        lut: latency table file for the profile; None: build one for the space on the profile now
            (cached at `lut_cache` when given; meant for small spaces such as the demo's).
        latency_budget_ms: upper bound on predicted latency; None: `budget_fraction` of the way from
            the fastest to the slowest subnet (always feasible).
        macs_budget: optional upper bound on MACs (millions).
        resolutions: search only these resolutions (default: all of the predictor's space).
        generations, population, seed: evolution settings (OFA's defaults: 500, 100).
        pareto_generations: NSGA-II generations for the front in the plot and report (0: skip).
        n_checks: how many other front subnets to export and time next to the chosen one.
        timing_rounds, timing_repeats: override the profile's timer (LUT build and measurement).
        search_threads: torch threads while searching (None: leave as is).
        validate_export: compare exported outputs to PyTorch.
        max_tries: picks exported and measured at most while verifying the budget.
        allow_foreign_lut: use a table measured on another host (its verdicts are then about that host's speed).
        adapt: when the table was measured on another host, adapt it to this one (`ofa_deploy.adapt`) instead of
            refusing it; the adapted table is written into the run dir and used only if its held-out check passes.
        verify_budget: measure the pick against the budget and retry; False: measure and report only.
        extra_luts, ofa_luts: latency tables of other devices (ofa-deploy JSON, OFA YAML directories): extra
            objectives the search respects (with a budget in `device_budgets`) and the report predicts; the model
            is measured on the profile's target only, so their figures stay predictions.
        device_budgets: (device, ms) budgets on those tables, by their device/profile name (e.g. ``note10``).
    """

    out_dir: Path
    profile: str = "ort-cpu-1t"
    lut: Path | None = None
    lut_cache: Path | None = None
    latency_budget_ms: float | None = None
    budget_fraction: float = 0.35
    macs_budget: float | None = None
    resolutions: tuple[int, ...] | None = None
    generations: int = 500
    population: int = 100
    seed: int = 0
    pareto_generations: int = 60
    n_checks: int = 3
    timing_rounds: int | None = None
    timing_repeats: int | None = None
    validate_export: bool = True
    search_threads: int | None = 1
    max_tries: int = 4
    allow_foreign_lut: bool = False
    adapt: bool = False
    verify_budget: bool = True
    extra_luts: tuple[Path, ...] = ()
    ofa_luts: tuple[Path, ...] = ()
    device_budgets: tuple[tuple[str, float], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else list(v) if isinstance(v, tuple) else v)
                for k, v in asdict(self).items()}


@dataclass
class DeployResult:
    """What `deploy` produced (also written to ``report.json``)."""

    out_dir: Path
    config: SubnetConfig
    predicted: dict[str, float]           # accuracy (%), latency (ms), macs (M)
    measured: dict[str, float]            # latency_ms (+ top1 (%) when data was given)
    budget: dict[str, Any]
    report: dict[str, Any] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)


__all__ = ["DeployRequest", "DeployResult", "Progress", "say"]
