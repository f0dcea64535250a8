"""Step 4, measure and verify: time exported picks on the target with the anchor-paired protocol against the
table's anchor, and retry under a tightened budget until a pick is verified under the budget.

A pick's latency at the table's reference speed is its measured ratio to the anchor times the anchor time
stored with the table, so a machine that is momentarily slower or faster does not flip the verdict (the raw
wall-clock figure is reported beside it). If the upper end of its 95% interval exceeds the budget, the next
subnet is searched under a predicted budget tightened by the worst measured/predicted ratio seen so far,
exported and measured, up to `max_tries` picks.

`Meter` times on this machine through the profile's backend, or on a device through a device-pool runner
(`ofa_deploy.scale.runners`: ssh, adb) with the same protocol.
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ofa_deploy.fileio import atomic_write_json
from ofa_deploy.pipeline.exporting import ExportedPick, timed_file
from ofa_deploy.pipeline.request import Progress, say
from ofa_deploy.pipeline.search import SearchOutcome, SearchSetup
from ofa_deploy.spaces.config import SubnetConfig

log = logging.getLogger(__name__)

ExportPick = Callable[[str, SubnetConfig], ExportedPick]


@dataclass(frozen=True)
class VerifySettings:
    """How picks are measured and how often the budget is retried."""

    max_tries: int = 4
    verify_budget: bool = True
    timing_rounds: int | None = None
    timing_repeats: int | None = None


@dataclass(frozen=True)
class Verification:
    """Every pick exported and measured, the tries against the budget, and the one shipped."""

    limit: float
    picks: dict[str, ExportedPick]
    measured: dict[str, Any]
    tries: tuple[dict[str, Any], ...]
    shipped: dict[str, Any]
    timing: dict[str, Any]
    reference_label: str
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def verified(self) -> bool:
        return bool(self.shipped["verified"])

    @property
    def shipped_pick(self) -> ExportedPick:
        return self.picks[self.shipped["name"]]


class Meter:
    """Measures exported models against the table's anchor; remembers the anchor model and the run info.

    Every measurement is also written (atomically) to ``<out>/measurements.json`` under a key of the subnet,
    the profile, the anchor, the reference time and the protocol, so a deploy that is interrupted and run again
    into the same directory reuses what was measured instead of timing it again.

    Args:
        runner: a connected device-pool runner (`ofa_deploy.scale.runners`) to time on; None: this machine,
            through the profile's backend.
    """

    def __init__(self, space: Any, table: Any, profile: Any, settings: VerifySettings, progress: Progress | None,
                 out: Path | None = None, runner: Any = None) -> None:
        from ofa_deploy.profiling.timing.measure import reference_ms, space_anchor
        from ofa_deploy.profiling.timing.protocol import ProtocolSettings

        self.profile = profile
        self.progress = progress
        self.runner = runner
        self.anchor = space_anchor(space, table, profile)
        self.reference = reference_ms(table)
        self.reference_label = ("the table's anchor time (reference speed)" if self.reference is not None
                                else "wall clock of this run (the table has no anchor)")
        self.settings = ProtocolSettings.from_profile(profile, repeats=settings.timing_repeats,
                                                      min_rounds=settings.timing_rounds)
        self.info: dict[str, Any] = {"anchor": str(self.anchor[0]), "reference_ms": self.reference,
                                     "protocol": self.settings.to_dict(), "runs": [], "reused": []}
        if runner is not None:
            self.info["device"] = runner.device.name
        self.cache_path = out / "measurements.json" if out is not None else None
        self.cache: dict[str, Any] = {}
        if self.cache_path is not None and self.cache_path.is_file():
            try:
                self.cache = json.loads(self.cache_path.read_text(encoding="utf-8"))
            except (ValueError, OSError):
                log.warning("ignoring unreadable measurement cache %s", self.cache_path)

    def _key(self, pick: ExportedPick) -> str:
        parts = {"subnet": pick.config.to_string(), "profile": self.profile.sha256, "shape": list(pick.shape),
                 "anchor": Path(self.anchor[0]).name, "reference": self.reference, "protocol": self.settings.to_dict(),
                 "format": Path(timed_file(pick)).suffix}
        if self.runner is not None:
            parts["device"] = self.runner.device.to_dict()
        return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:20]

    def measure(self, picks: Mapping[str, ExportedPick]) -> dict[str, Any]:
        """Key -> `Measured` of every pick (reused from the cache when measured before)."""
        from ofa_deploy.profiling.timing.measure import Measured

        keys = {k: self._key(v) for k, v in picks.items()}
        found = {k: Measured(**{**self.cache[c], "interval_ms": tuple(self.cache[c]["interval_ms"])})
                 for k, c in keys.items() if c in self.cache}
        if found:
            say(self.progress, f"reusing earlier measurements of {', '.join(found)} from {self.cache_path}")
            self.info["reused"] += list(found)
        todo = {k: v for k, v in picks.items() if k not in found}
        if not todo:
            return found
        where = f"device {self.runner.device.name}" if self.runner is not None else self.profile.name
        say(self.progress, f"timing {len(todo)} exported model(s) on {where} against the anchor (paired rounds)")
        run = self._time({k: (timed_file(v), v.shape) for k, v in todo.items()})
        ref = self.reference if self.reference is not None else run.anchor_ms
        self.info["runs"].append({"items": list(todo), **run.summary(),
                                  "per_model": {k: r.to_dict() for k, r in run.results.items()}})
        measured = {k: Measured.of(r, ref) for k, r in run.results.items()}
        if self.cache_path is not None:
            self.cache.update({keys[k]: m.to_dict() for k, m in measured.items()})
            atomic_write_json(self.cache_path, self.cache)
        return {**found, **measured}

    def _time(self, models: dict[str, tuple[Path, tuple[int, ...]]]) -> Any:
        if self.runner is None:
            from ofa_deploy.profiling.timing.measure import measure_models

            return measure_models(models, self.anchor, self.profile, protocol=self.settings)
        from ofa_deploy.profiling.timing.protocol import measure_paired_visits

        anchor, anchor_shape = self.anchor
        staging = self.cache_path.parent / "timed" if self.cache_path is not None else None
        files = {k: _content_named(Path(path), staging) for k, (path, _) in models.items()}
        return measure_paired_visits(
            list(models), lambda k: self.runner.paired_visit(files[k], models[k][1], Path(anchor), anchor_shape),
            self.settings)


def _content_named(path: Path, directory: Path | None) -> Path:
    """A hard link (or copy) of `path` named by its content, in `directory` (default: beside it): device runners
    copy models by file name, and every export is called ``model.onnx``."""
    import shutil

    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    directory = directory or path.parent
    directory.mkdir(parents=True, exist_ok=True)
    named = directory / f"{digest}{path.suffix}"
    if not named.exists():
        try:
            named.hardlink_to(path)
        except OSError:
            shutil.copyfile(path, named)
    return named


def measure_and_verify(outcome: SearchOutcome, setup: SearchSetup, picks: dict[str, ExportedPick],
                       export_pick: ExportPick, meter: Meter, settings: VerifySettings,
                       progress: Progress | None = None) -> Verification:
    """Measure `picks` (``try1`` and the front checks) and, while the shipped pick is over the budget, search,
    export (`export_pick(key, config)`) and measure a faster one under a tightened predicted budget."""
    limit, low = outcome.limit, outcome.feasible[0]
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    picks = dict(picks)
    measured = meter.measure(picks)
    tries = [try_record("try1", setup, picks["try1"].config, measured["try1"], limit, limit)]
    say(progress, try_line(tries[-1], limit))
    while settings.verify_budget and not tries[-1]["verified"] and len(tries) < settings.max_tries:
        worst = max(t["measured_hi_ms"] / t["predicted_ms"] for t in tries)
        predicted_budget = limit / worst
        if predicted_budget < low:
            say(progress, f"no retry: the tightened predicted budget {predicted_budget:.4g} ms is below the fastest "
                          f"predicted subnet ({low:.4g} ms)")
            break
        t1 = time.perf_counter()
        nxt = outcome.searcher.best(predicted_budget, exclude=[t["config"] for t in tries]).best_config
        key = f"try{len(tries) + 1}"
        say(progress, f"{key}: predicted budget tightened to {predicted_budget:.4g} ms (worst measured/predicted "
                      f"{worst:.3f}); extract + export {nxt.to_string()}")
        picks[key] = export_pick(key, nxt)
        measured.update(meter.measure({key: picks[key]}))
        tries.append(try_record(key, setup, nxt, measured[key], limit, predicted_budget))
        say(progress, try_line(tries[-1], limit))
        timings["retry_s"] = timings.get("retry_s", 0.0) + time.perf_counter() - t1
    timings["measure_s"] = time.perf_counter() - t0 - timings.get("retry_s", 0.0)
    return Verification(limit=limit, picks=picks, measured=measured, tries=tuple(tries), shipped=pick_shipped(tries),
                        timing=meter.info, reference_label=meter.reference_label, timings=timings)


def try_record(key: str, setup: SearchSetup, cfg: SubnetConfig, m: Any, limit: float,
               predicted_budget: float) -> dict[str, Any]:
    """One pick measured against the budget (the report's ``budget.tries`` rows)."""
    genes = setup.space.to_genes([cfg])
    predicted = float(setup.lat.predict_genes(genes)[0])
    return {"name": key, "config": cfg.to_string(), "predicted_budget_ms": predicted_budget,
            "predicted_ms": predicted, "predicted_accuracy": float(setup.acc.predict_genes(genes)[0]),
            "measured_ms": m.ms, "measured_interval_ms": list(m.interval_ms), "measured_hi_ms": m.interval_ms[1],
            "wall_ms": m.wall_ms, "converged": m.converged, "rounds": m.rounds,
            "verified": bool(m.interval_ms[1] <= limit)}


def try_line(t: dict[str, Any], limit: float) -> str:
    verdict = "verified under budget" if t["verified"] else "NOT verified under budget"
    return (f"{t['name']}: measured {t['measured_ms']:.4g} ms (95% interval {t['measured_interval_ms'][0]:.4g}.."
            f"{t['measured_interval_ms'][1]:.4g}; wall clock now {t['wall_ms']:.4g}) vs budget {limit:.4g} ms, "
            f"predicted {t['predicted_ms']:.4g}: {verdict}")


def pick_shipped(tries: list[dict[str, Any]]) -> dict[str, Any]:
    """The most accurate verified pick; with none verified, the one with the lowest measured upper bound."""
    verified = [t for t in tries if t["verified"]]
    if verified:
        return max(verified, key=lambda t: t["predicted_accuracy"])
    return min(tries, key=lambda t: t["measured_hi_ms"])


def budget_message(verification: Verification) -> str:
    """One sentence on the verdict: the shipped pick against the budget, or why none was verified."""
    tries, shipped, limit = verification.tries, verification.shipped, verification.limit
    if verification.verified:
        return (f"{shipped['name']} measured {shipped['measured_ms']:.4g} ms (95% interval up to "
                f"{shipped['measured_hi_ms']:.4g}) against {limit:.4g} ms after {len(tries)} pick(s)")
    lo = min(t["measured_ms"] for t in tries)
    return (f"none of {len(tries)} pick(s) measured under {limit:.4g} ms (fastest "
            f"measured {lo:.4g} ms, upper bound {shipped['measured_hi_ms']:.4g}); model/ holds the closest pick, "
            f"{shipped['name']}. Raise the budget, or rebuild the latency table here")


__all__ = ["Meter", "Verification", "VerifySettings", "budget_message", "measure_and_verify", "pick_shipped",
           "try_line", "try_record"]
