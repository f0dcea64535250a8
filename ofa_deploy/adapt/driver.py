"""`adapt_table`: a latency table for a new device from a table of another, checked on held-out subnets there.

The steps: read the source table (`adapt.source`); open the target (`adapt.target`); estimate from a few
anchor visits whether the budget can pay for the held-out check at all; measure the anchor, a small designed
set of subnets (`adapt.design`) and random held-out subnets on the target with the anchor-paired protocol; fit
the ladder on the designed ones (`adapt.fit`); build the adapted table and score it on the held-out ones
(`adapt.validation`). While the goal is not met and the device-time budget allows, measure more designed subnets
and refit. A table that meets the goal is written atomically with its provenance (target fingerprint,
``adapted_from``, method, measurements, device seconds, held-out figures); otherwise nothing is written and
`AdaptationError` says what was measured, the figures and the estimated time of a full build, unless
``fallback="build"``, which builds the full table instead.
"""
from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ofa_deploy.adapt.classes import ClassIndex, SubnetLayers
from ofa_deploy.adapt.design import design_subnets, random_subnets
from ofa_deploy.adapt.fit import Adaptation, LadderResult, fit_global_scale, fit_ladder
from ofa_deploy.adapt.source import Source, load_source
from ofa_deploy.adapt.target import Measurement, Target, open_target
from ofa_deploy.adapt.validation import Goal, held_out_figures
from ofa_deploy.errors import AdaptationError, ConfigError
from ofa_deploy.profiling.hosts.fingerprint import adapt_command
from ofa_deploy.spaces import SearchSpace, SubnetConfig
from ofa_deploy.tables.latency import Calibration, LatencyStats, LatencyTable

log = logging.getLogger(__name__)

Progress = Callable[[str], None]
FALLBACKS = ("stop", "build")
#: designed subnets measured first, and added per step while the goal is not met
FIRST_DESIGN = 16
DESIGN_STEP = 8
#: designed subnets at most (each step refits with cross-validation on all of them)
MAX_DESIGN = 64
#: more designed subnets stop when the kept rung's cross-validated error has not dropped by this fraction in
#: the last PLATEAU_STEPS steps (the remaining error is not one that more subnets of this design remove)
PLATEAU_GAIN = 0.05
PLATEAU_STEPS = 2
#: times the held-out subnets may be measured again (more rounds) when the fit is already at the goal's precision
MAX_REMEASURE = 2
#: paired rounds at most per subnet, and untimed / timed runs per visit (the profile's own apply when lower):
#: whole subnets are timed many rounds over, so a visit can be shorter than a layer build's
MAX_ROUNDS = 12
VISIT_WARMUP = 1
VISIT_REPEATS = 4
#: a visit longer than this gets fewer runs (1 warm-up, at least 2 timed)
LONGEST_VISIT_S = 0.06
#: seconds per layer of an in-context ONNX Runtime build on this project's 2-core reference host (README)
SECONDS_PER_LAYER = 2.1


@dataclass(frozen=True)
class AdaptResult:
    """What `adapt_table` did.

    Attributes:
        table: the adapted table (or the fully built one with ``fallback="build"``).
        path: where it was written (None when not written).
        validation: held-out figures: n, within_5pct, within_10pct, spearman, bias (mean signed %), passed.
        measurements: subnet models measured on the target (designed + held-out; the anchor not counted).
        device_seconds: seconds the target spent timing.
        method: the ladder rung kept (``global_scale``, ``scale_offset``, ``class_ridge``) or ``full_build``.
        passed: whether the held-out goal was met (False when the table comes from the fallback build).
        details: how it went: designed and held-out counts, host seconds, the fit and every rung's
            cross-validated score, one global scale's held-out figures, the full-build estimate, the target.
    """

    table: LatencyTable
    path: Path | None
    validation: dict[str, Any]
    measurements: int
    device_seconds: float
    method: str
    passed: bool
    details: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        prov = self.table.provenance
        return {"path": str(self.path) if self.path else None, "method": self.method, "passed": self.passed,
                "validation": self.validation, "measurements": self.measurements,
                "device_seconds": round(self.device_seconds, 2), "entries": len(self.table),
                "profile": prov.profile_name, "supernet": prov.supernet,
                "anchor": self.table.anchor.to_dict() if self.table.anchor else None,
                "adapted_from": prov.adapted_from, "details": self.details or {}}


def refusal_hint(table_path: str | os.PathLike[str], profile: Any, supernet: Any = None) -> str:
    """A sentence for a refusal of a foreign table: the exact command that adapts it to `profile` here."""
    name = getattr(profile, "name", profile)
    space = getattr(supernet, "name", supernet)
    return (f"adapt it to {name} here in about a minute of device time, checked on held-out subnets, with "
            f"`{adapt_command(str(table_path), str(name), space)}`")


def _say(progress: Progress | None, message: str) -> None:
    log.info(message)
    if progress is not None:
        progress(message)


def _resolve_profile(profile: Any) -> Any:
    from ofa_deploy.profiling.hardware import HardwareProfile

    if isinstance(profile, HardwareProfile):
        return profile
    if isinstance(profile, (str, os.PathLike)):
        return HardwareProfile.load(profile)
    raise ConfigError(f"profile must be a hardware profile name, path or HardwareProfile, got {type(profile).__name__}")


def adapted_resolutions(source: Source, requested: Sequence[int] | None) -> list[int]:
    """The resolutions to adapt: those requested (default: the space's) that the source covers completely."""
    from ofa_deploy.predictors.latency import LatencyPredictor

    space = source.space
    wanted = [int(r) for r in (requested or space.resolutions)]
    bad = [r for r in wanted if r not in space.resolutions]
    if bad:
        raise ConfigError(f"resolutions {bad} are not resolutions of {space.name} "
                          f"({min(space.resolutions)}..{max(space.resolutions)})")
    covered = set(LatencyPredictor(space, source.table).covered_resolutions())
    kept = [r for r in wanted if r in covered]
    if not kept:
        raise ConfigError(f"the source table {source.label} has no entries for the target's resolutions "
                          f"{wanted} of {space.name} (it covers {sorted(covered) or 'none'}); adapt resolutions it "
                          "covers (resolutions=/--resolutions) or build a table for these")
    if requested and len(kept) < len(wanted):
        raise ConfigError(f"the source table {source.label} does not cover resolutions "
                          f"{[r for r in wanted if r not in covered]} of {space.name} (it covers {sorted(covered)})")
    return kept


def build_span(table_file: Path) -> float | None:
    """Seconds a build took, from the time stamps of its measurement store next to the table (None: no store)."""
    store = table_file.with_name(table_file.name + ".measurements.jsonl")
    if not store.is_file():
        return None
    stamps = []
    for line in store.read_text().splitlines()[1:]:
        try:
            stamp = json.loads(line).get("t")
        except (json.JSONDecodeError, AttributeError):
            continue
        if isinstance(stamp, (int, float)):
            stamps.append(float(stamp))
    return max(stamps) - min(stamps) if len(stamps) > 1 else None


@dataclass(frozen=True)
class FullBuild:
    """A full build's device seconds as recorded (`seconds`, `how`), and the anchor of that build (config, ms) so
    the figure can be put at the target's speed now (`at_speed`)."""

    seconds: float
    how: str
    anchor_config: str = ""
    anchor_ms: float = 0.0
    seconds_now: float | None = None

    def at_speed(self, anchor_config: str, run_ms: float) -> FullBuild:
        """This estimate scaled by how long one anchor run takes on the target now against during that build
        (same anchor only: the machine is shared and drifts, and another backend runs at another speed)."""
        if anchor_config != self.anchor_config or self.anchor_ms <= 0:
            return self
        return replace(self, seconds_now=self.seconds * run_ms / self.anchor_ms)

    @property
    def best(self) -> float:
        return self.seconds_now if self.seconds_now is not None else self.seconds

    def to_dict(self) -> dict[str, Any]:
        return {"seconds": round(self.seconds, 1), "from": self.how,
                "seconds_at_target_speed_now": None if self.seconds_now is None else round(self.seconds_now, 1)}


def full_build_estimate(source: Source, profile: Any, resolutions: Sequence[int]) -> FullBuild:
    """A full build's device seconds: the source table's own build (its measurement store), else the build of the
    target profile's stored table, else the project's per-layer figure."""
    from ofa_deploy.profiling.lut import find_table
    from ofa_deploy.profiling.plan import make_plan

    def anchored(span: float, how: str, table: LatencyTable) -> FullBuild:
        anchor = table.anchor
        return FullBuild(span, how, anchor.config if anchor else "", anchor.ms if anchor else 0.0)

    for path in source.files:
        span = build_span(path)
        if span is not None:
            return anchored(span, f"the source table's own build ({path.name}.measurements.jsonl)", source.table)
    try:
        stored = find_table(profile.name, source.space.name)
    except ConfigError:
        stored = None
    span = build_span(stored) if stored is not None else None
    if stored is not None and span is not None:
        return anchored(span, f"the build of the stored {profile.name} table ({stored})", LatencyTable.load(stored))
    layers = len(make_plan(source.space, list(resolutions)))
    return FullBuild(layers * SECONDS_PER_LAYER,
                     f"{layers} layers x {SECONDS_PER_LAYER} s per layer (in-context ORT build)")


def adapted_table(source: Source, fit: Adaptation, index: ClassIndex, resolutions: Sequence[int]) -> LatencyTable:
    """The source's entries at `resolutions` in the target's anchor units (anchor and provenance set later)."""
    from ofa_deploy.spaces.slots import SlotTables

    slots = SlotTables(source.space)
    needed = {s for r in resolutions for s in slots.specs_at(r)}
    offset = fit.offset
    table = LatencyTable(stat="median", calibration=Calibration(offset=offset) if offset else None)
    for resolution, spec, stats in source.table.all_items():
        if spec not in needed or (resolution is not None and resolution not in resolutions):
            continue
        factor = float(fit.factors(index.row(spec)[None, :])[0])
        value = stats.value(source.table.stat) * factor + fit.per_layer
        table.set(spec, LatencyStats(median=value, mean=stats.mean * factor + fit.per_layer, std=stats.std * factor,
                                     p90=None if stats.p90 is None else stats.p90 * factor + fit.per_layer,
                                     n=stats.n), resolution=resolution)
    return table


@dataclass
class Attempt:
    """The state of one adaptation: what was measured on the target and the current fit."""

    design: list[SubnetConfig]
    held_out: list[SubnetConfig]
    measured: dict[SubnetConfig, Measurement]
    ladder: LadderResult | None = None
    table: LatencyTable | None = None
    figures: dict[str, Any] | None = None
    baseline: dict[str, Any] | None = None

    def ratios(self, cfgs: Sequence[SubnetConfig]) -> np.ndarray:
        return np.array([self.measured[c].ratio for c in cfgs])


def _fit_and_check(source: Source, attempt: Attempt, index: ClassIndex, resolutions: Sequence[int], goal: Goal,
                   seed: int) -> None:
    from ofa_deploy.predictors.latency import LatencyPredictor

    layers = SubnetLayers.of(source.space, source.table, attempt.design, index)
    attempt.ladder = fit_ladder(layers, attempt.ratios(attempt.design), index, seed=seed)
    attempt.table = adapted_table(source, attempt.ladder.adaptation, index, resolutions)
    measured = attempt.ratios(attempt.held_out)
    predicted = LatencyPredictor(source.space, attempt.table).predict_units(attempt.held_out)
    attempt.figures = held_out_figures(predicted, measured, goal)
    held = SubnetLayers.of(source.space, source.table, attempt.held_out, index)
    scale_only = fit_global_scale(layers, attempt.ratios(attempt.design)).predict(held)
    attempt.baseline = held_out_figures(scale_only, measured, goal)


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 120 else f"{seconds:.0f} s"


def _describe(figures: dict[str, Any]) -> str:
    return (f"{figures['within_10pct']:.0%} within ±10%, {figures['within_5pct']:.0%} within ±5%, Spearman "
            f"{figures['spearman']:.3f}, bias {figures['bias']:+.1f}% on {figures['n']} held-out subnets")


def adapt_table(source: str | os.PathLike[str] | LatencyTable, *, profile: Any,
                supernet: str | SearchSpace | None = None, out: str | os.PathLike[str] | None = None,
                max_seconds: float = 60.0, fallback: str = "stop", seed: int = 0,
                resolutions: Sequence[int] | None = None, progress: Progress | None = None,
                goal: Goal | None = None, backend: Any = None) -> AdaptResult:
    """Adapt `source` (a table of another host, backend or device) to `profile`'s target, with a held-out check.

    Args:
        source: an ofa-deploy JSON table, an OFA YAML table (directory or file) or a `LatencyTable`.
        profile: the target's hardware profile (name, path or `HardwareProfile`): this machine through its
            backend, or the first reachable device of its pool.
        supernet: the space (name or `SearchSpace`) when the source names none (OFA YAML), or to check it.
        out: where the adapted table goes (default: the user's cache, where `find_table` looks first).
        max_seconds: device seconds the adaptation may spend timing, held-out check included.
        fallback: "stop" raises `AdaptationError` when the goal is not met; "build" runs the full build instead.
        seed: seed of the designed and held-out subnets and of the timing order.
        resolutions: resolutions to adapt (default: every resolution of the space the source covers).
        progress: called with one line per step.
        goal: the held-out goal (default `Goal()`: 95% within ±10%, 85% within ±5%, Spearman 0.98, 30 subnets).
        backend: a prepared timing backend for a local target (default: the profile's, created and closed here).

    Raises:
        AdaptationError: the goal was not met within `max_seconds` (fallback "stop"), or the budget cannot pay
            for the held-out check; nothing is written.
        ConfigError: a source for another space, or one that covers none of the resolutions.
        DeviceUnavailableError: no device of the profile's pool can be reached.
    """
    from ofa_deploy.profiling.lut import table_path
    from ofa_deploy.profiling.timing.measure import anchor_for
    from ofa_deploy.profiling.models import model_cache_dir
    from ofa_deploy.profiling.timing.protocol import ProtocolSettings

    if fallback not in FALLBACKS:
        raise ConfigError(f"fallback must be one of {FALLBACKS}, got {fallback!r}")
    if isinstance(max_seconds, bool) or not isinstance(max_seconds, (int, float)) or not 0 < max_seconds < math.inf:
        raise ConfigError(f"max_seconds must be a number of device seconds > 0, got {max_seconds!r}")
    goal = goal or Goal()
    target_profile = _resolve_profile(profile)
    src = load_source(source, supernet)
    if not src.table.provenance.adaptation_passed:
        raise ConfigError(f"the source table {src.label} is an adapted table whose held-out check did not pass; "
                          "adapt from the table it was adapted from")
    if fallback == "build" and target_profile.precision == "int8":
        raise ConfigError(f"profile {target_profile.name} is int8, and full builds time fp32 layer models: "
                          "fallback='build' cannot give an int8 table; use fallback='stop'")
    space = src.space
    res = adapted_resolutions(src, resolutions)
    out_path = Path(out) if out is not None else table_path(target_profile.name, space.name)
    _check_out(out_path)
    index = ClassIndex.of(s for _, s, _ in src.table.all_items())
    rng = np.random.default_rng(seed)
    held_out = random_subnets(space, res, goal.min_n, np.random.default_rng([seed, 1]))
    design = design_subnets(space, src.table, index, res, FIRST_DESIGN, rng, exclude=held_out)
    settings = ProtocolSettings.from_profile(target_profile, seed=seed)
    settings = replace(settings, max_rounds=min(settings.max_rounds, MAX_ROUNDS),
                       warmup=min(settings.warmup, VISIT_WARMUP), repeats=min(settings.repeats, VISIT_REPEATS))
    anchor = anchor_for(space, src.table if src.table.anchor and src.table.anchor.space == space.name else None,
                        target_profile)
    full = full_build_estimate(src, target_profile, res)
    _say(progress, f"adapting {src.label} ({len(src.table)} entries) to {target_profile.name} for {space.name} at "
                   f"{res}: {len(design)} designed + {len(held_out)} held-out subnets, budget {max_seconds:g} s")
    start = time.perf_counter()
    with open_target(space, target_profile, anchor, settings, model_cache_dir(), backend=backend) as target:
        _check_budget(target, len(design) + len(held_out), max_seconds, full, build_command(target_profile, space, res))
        attempt = Attempt(design, held_out, target.measure(design + held_out, max_seconds))
        full = full.at_speed(anchor.to_string(), float(np.median(target.anchor_visits_ms)))
        _say(progress, f"measured {target.measured} subnets in {target.device_seconds:.1f} device s")
        _fit_until_met(src, target, attempt, index, res, goal, seed, rng, max_seconds, progress)
        assert attempt.figures is not None and attempt.ladder is not None
        details = {"design": len(attempt.design), "held_out": len(held_out), "resolutions": res,
                   "host_seconds": round(target.host_seconds, 1), "wall_seconds": round(time.perf_counter() - start, 1),
                   "unconverged": sum(not m.converged for m in attempt.measured.values()),
                   "fit": attempt.ladder.adaptation.to_dict(), "ladder": attempt.ladder.scores,
                   "global_scale_baseline": attempt.baseline, "full_build": full.to_dict(),
                   "target": target.describe()}
        figures = attempt.figures
        if not figures["passed"]:
            return _not_met(src, target_profile, space, res, attempt, target, details, out_path, fallback,
                            max_seconds, full.best, progress)
        table = _finish(src, target_profile, target, attempt, details, anchor)
    path = _write(table, out_path)
    _say(progress, f"wrote {path}: {_describe(figures)}; {target.measured} subnets, {target.device_seconds:.1f} "
                   f"device s ({target.device_seconds / max(full.best, 1e-9):.1%} of a full build's "
                   f"{full.best:.0f} s at this speed)")
    return AdaptResult(table, path, _public(figures), target.measured, target.device_seconds,
                       attempt.ladder.adaptation.method, True, details)


def build_command(profile: Any, space: SearchSpace, resolutions: Sequence[int]) -> str:
    """The `ofa-deploy profile build` command line of the full table."""
    return (f"ofa-deploy profile build --profile {profile.name} --supernet {space.name} --resolutions "
            f"{','.join(map(str, resolutions))}")


def _check_budget(target: Target, n_subnets: int, max_seconds: float, full: FullBuild, command: str) -> None:
    """Refuse before measuring when `max_seconds` cannot pay for `n_subnets` at the protocol's minimum rounds,
    judged from anchor visits timed now (visits of slow models are shortened first)."""
    rounds = target.protocol.min_rounds
    before = target.visit_seconds()
    runs = target.protocol.warmup + target.protocol.repeats
    visit = target.shorten_visits(before, LONGEST_VISIT_S)
    full_seconds = full.at_speed(target.anchor.to_string(), 1000 * before / runs).best  # rough: a visit's mean run
    needed = 2 * rounds * visit * n_subnets
    if needed > max_seconds:
        raise AdaptationError(
            f"a budget of {max_seconds:g} device seconds is too small for the held-out check on "
            f"{target.profile.name}: measuring {n_subnets} subnets (designed and held-out) takes about {needed:.0f} s "
            f"there (an anchor visit takes {visit * 1000:.0f} ms, {rounds} rounds at least); pass max_seconds >= "
            f"{math.ceil(needed * 1.5)} (--max-seconds), or build the full table (about {_duration(full_seconds)}: "
            f"`{command}`)")


def _fit_until_met(src: Source, target: Target, attempt: Attempt, index: ClassIndex, res: Sequence[int], goal: Goal,
                   seed: int, rng: np.random.Generator, max_seconds: float, progress: Progress | None) -> None:
    """Fit and check; while the goal is missed and the budget allows, measure more and refit.

    What is measured next: when the kept rung already predicts the designed subnets to the goal's precision in
    cross-validation, the miss is the held-out measurements' own noise, so the held-out subnets get more rounds
    (their ratios merged); otherwise more designed subnets, until cross-validation stops improving."""
    cv_errors: list[float] = []
    remeasured = 0
    while True:
        _fit_and_check(src, attempt, index, res, goal, seed)
        assert attempt.figures is not None and attempt.ladder is not None
        _say(progress, f"{attempt.ladder.adaptation.method} on {len(attempt.design)} designed subnets: "
                       f"{_describe(attempt.figures)}")
        if attempt.figures["passed"]:
            return
        kept = attempt.ladder.scores[attempt.ladder.adaptation.method]
        cv_errors.append(kept["mean_abs_log_error"])
        per_subnet = target.device_seconds / max(target.measured, 1)
        fits_design = kept["within_5pct"] >= goal.within_5pct and kept["within_10pct"] >= goal.within_10pct
        if fits_design and remeasured < MAX_REMEASURE and \
                target.device_seconds + per_subnet * len(attempt.held_out) <= max_seconds:
            remeasured += 1
            _say(progress, "the fit predicts the designed subnets to the goal's precision; measuring the held-out "
                           "subnets more rounds")
            again = target.measure(attempt.held_out, max_seconds - target.device_seconds)
            for cfg, m in again.items():
                attempt.measured[cfg] = attempt.measured[cfg].merged(m)
            continue
        plateau = len(cv_errors) > PLATEAU_STEPS and \
            min(cv_errors[-PLATEAU_STEPS:]) > (1 - PLATEAU_GAIN) * min(cv_errors[:-PLATEAU_STEPS])
        if target.device_seconds + per_subnet * DESIGN_STEP > max_seconds or len(attempt.design) >= MAX_DESIGN \
                or plateau:
            if plateau:
                _say(progress, f"stopped adding designed subnets: the last {PLATEAU_STEPS} steps lowered the "
                               f"cross-validated error by less than {PLATEAU_GAIN:.0%}")
            return
        more = design_subnets(src.space, src.table, index, res, DESIGN_STEP, rng, measured=attempt.design,
                              exclude=attempt.held_out)
        if not more:
            return
        attempt.measured.update(target.measure(more, max_seconds - target.device_seconds))
        attempt.design += more


def _public(figures: dict[str, Any]) -> dict[str, Any]:
    return {k: figures[k] for k in ("n", "within_5pct", "within_10pct", "spearman", "bias", "passed")}


def _finish(src: Source, profile: Any, target: Target, attempt: Attempt, details: dict[str, Any],
            anchor: SubnetConfig) -> LatencyTable:
    """The adapted table with its anchor (the target's visits) and provenance."""
    from ofa_deploy.profiling.builder import make_provenance
    from ofa_deploy.profiling.timing.timer import TimerSettings
    from ofa_deploy.tables.anchor import AnchorInfo

    assert attempt.table is not None and attempt.ladder is not None and attempt.figures is not None
    table = attempt.table
    table.anchor = AnchorInfo.from_visits(anchor.to_string(), src.space.name, int(getattr(profile, "batch_size", 1)),
                                          target.anchor_visits_ms)
    fit = attempt.ladder.adaptation
    notes = json.dumps({"method": f"adapted ({fit.method})", "source": src.label,
                        "protocol": target.protocol.to_dict()})
    provenance = make_provenance(profile, target.backend(), src.space.name, TimerSettings.from_profile(profile),
                                 notes=notes)
    adaptation = {"method": fit.method, "measurements": target.measured,
                  "device_seconds": round(target.device_seconds, 2), "validation": attempt.figures, **details}
    table.provenance = replace(provenance, adapted_from=src.describe(), adaptation=adaptation)
    if table.calibration.offset:
        table.calibration = Calibration(offset=table.calibration.offset,
                                        fit={"model": "per-inference cost of the adaptation (anchor units)"})
    return table


def _check_out(path: Path) -> None:
    """An adaptation never replaces a table that was built (measured layer by layer), only an earlier adaptation."""
    if not path.exists():
        return
    if path.is_dir():
        raise ConfigError(f"out={path} is a directory; pass the adapted table's file path")
    from ofa_deploy.errors import OfaDeployError

    try:
        existing = LatencyTable.load(path)
    except OfaDeployError:
        raise ConfigError(f"out={path} exists and is not a latency table; pass another out= (--out)") from None
    if not existing.provenance.is_adapted:
        raise ConfigError(f"{path} holds a latency table that was built, not adapted; an adaptation does not replace "
                          "it. Use that table, or pass another out= (--out)")


def _write(table: LatencyTable, path: Path) -> Path:
    """Save atomically; an unwritable place is a ConfigError naming it."""
    try:
        return table.save(path)
    except OSError as exc:
        raise ConfigError(f"cannot write the adapted table to {path}: {exc}; pass another out= (--out)") from exc


def _not_met(src: Source, profile: Any, space: SearchSpace, res: Sequence[int], attempt: Attempt, target: Target,
             details: dict[str, Any], out_path: Path, fallback: str, max_seconds: float, full_seconds: float,
             progress: Progress | None) -> AdaptResult:
    assert attempt.figures is not None and attempt.ladder is not None
    figures = attempt.figures
    command = build_command(profile, space, res)
    said = (f"the table adapted from {src.label} to {profile.name} did not meet the held-out goal within "
            f"{max_seconds:g} device seconds: measured the anchor and {target.measured} subnets "
            f"({len(attempt.design)} designed, {len(attempt.held_out)} held-out) in {target.device_seconds:.1f} s; "
            f"best rung {attempt.ladder.adaptation.method}: {_describe(figures)} "
            f"(missed: {'; '.join(figures.get('missed', []))}); one global scale gave "
            f"{_describe(attempt.baseline or figures)}")
    if fallback == "stop":
        raise AdaptationError(f"{said}. Nothing was written. A full build takes about {_duration(full_seconds)} "
                              f"here: `{command}` (or pass fallback='build' / --fallback build), or allow more "
                              "device time (max_seconds / --max-seconds)",
                              report={**details, "validation": figures, "measurements": target.measured,
                                      "device_seconds": round(target.device_seconds, 2),
                                      "method": attempt.ladder.adaptation.method})
    from ofa_deploy.profiling.builder import build_lut

    _say(progress, f"{said}; building the full table instead (about {_duration(full_seconds)})")
    built = build_lut(space, list(res), profile, out_path, progress=progress is not None)
    return AdaptResult(built.table, built.path, _public(figures), target.measured, target.device_seconds,
                       "full_build", False, {**details, "build": built.summary()})


__all__ = ["FALLBACKS", "AdaptResult", "Attempt", "adapt_table", "adapted_resolutions",
           "adapted_table", "FullBuild", "full_build_estimate", "refusal_hint"]
