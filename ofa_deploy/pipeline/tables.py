"""Step 1, resolve the table: the latency table a deploy predicts with, and whether it may be trusted here.

A table is loaded from a file, reused from a build cache that covers the searched resolutions, or built on the
profile now; a table measured on another host is refused, used anyway when allowed, or adapted to this host
(`ofa_deploy.adapt`, kept only when its held-out check passes).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ofa_deploy.errors import ForeignTableError
from ofa_deploy.pipeline.request import Progress, say


@dataclass(frozen=True)
class TableSource:
    """Where a device's latency table comes from.

    Attributes:
        path: a table file to load.
        build_at: no `path`: reuse the table here when it covers the searched resolutions, else build one here.
        adapt_from: a table measured elsewhere (file) to adapt to this host before use (written to `build_at`,
            default ``<out_dir>/lut-adapted.json``).
        adapt_if_foreign: a loaded table from another host is adapted instead of refused.
        allow_foreign: a table from another host is used as it is (a warning says so).
        timing_rounds, timing_repeats: override the profile's timer for a build.
        adapt_seconds: time budget of an adaptation's measurements on the target.
    """

    path: Path | None = None
    build_at: Path | None = None
    adapt_from: Path | None = None
    adapt_if_foreign: bool = False
    allow_foreign: bool = False
    timing_rounds: int | None = None
    timing_repeats: int | None = None
    adapt_seconds: float = 60.0


@dataclass(frozen=True)
class ResolvedTable:
    """The table to predict with and where it came from (``info`` is the report's ``lut`` section)."""

    table: Any
    info: dict[str, Any]


def resolve_table(source: TableSource, space: Any, profile: Any, *, out_dir: Path,
                  progress: Progress | None = None) -> ResolvedTable:
    """Load, reuse, build or adapt the table for `space` on `profile`, then check that it belongs to this host.

    Raises:
        ForeignTableError: the table was measured on another host and neither `allow_foreign` nor
            `adapt_if_foreign` is set (the message names both flags).
        AdaptationError: an adapted table failed its held-out check on this host.
    """
    if source.adapt_from is not None:
        table, info = _adapt(Path(source.adapt_from), space, profile, source, out_dir, progress)
    else:
        table, info = _load_or_build(source, space, profile, out_dir, progress)
        host, adapted = _check_host(table, profile, source, progress)
        if adapted:
            table, info = _adapt(Path(info["path"]), space, profile, source, out_dir, progress)
        else:
            info["host"] = host
    info.update(unit=table.unit, anchor=table.anchor.to_dict() if table.anchor else None,
                calibration=table.calibration.to_dict() if not table.calibration.is_identity else None)
    return ResolvedTable(table=table, info=info)


def _load_or_build(source: TableSource, space: Any, profile: Any, out_dir: Path,
                   progress: Progress | None) -> tuple[Any, dict[str, Any]]:
    from ofa_deploy.predictors.latency import LatencyPredictor
    from ofa_deploy.tables.latency import LatencyTable

    if source.path is not None:
        table = LatencyTable.load(source.path)
        return table, {"path": str(source.path), "built": False, "entries": len(table), **_adapted_info(table)}
    path = Path(source.build_at) if source.build_at else out_dir / "lut.json"
    resolutions = list(space.resolutions)
    if path.is_file():
        table = LatencyTable.load(path)
        if not any(LatencyPredictor(space, table).check_coverage(resolutions).values()):
            say(progress, f"reusing latency table {path} ({len(table)} layers)")
            return table, {"path": str(path), "built": False, "entries": len(table), "reused": True,
                           **_adapted_info(table)}
    from ofa_deploy.profiling.builder import build_lut
    from ofa_deploy.profiling.timing.timer import TimerSettings

    say(progress, f"building a latency table for {space.name} at {resolutions} on {profile.name} -> {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    timer = TimerSettings.from_profile(profile, rounds=source.timing_rounds, repeats=source.timing_repeats)
    built = build_lut(space, resolutions, profile, path, progress=progress is not None, timer=timer)
    return built.table, {"path": str(path), "built": True, **built.summary()}


def _adapted_info(table: Any) -> dict[str, Any]:
    """``adapted_from`` and ``adaptation`` of a table adapted from another device's (empty for a built one)."""
    prov = table.provenance
    if not prov.is_adapted:
        return {}
    return {"adapted_from": dict(prov.adapted_from), "adaptation": dict(prov.adaptation)}


def _check_host(table: Any, profile: Any, source: TableSource, progress: Progress | None
                ) -> tuple[dict[str, Any], bool]:
    """(the host check, whether to adapt): refuse a table measured on another host (or with no fingerprint)
    unless it is to be adapted or `allow_foreign`."""
    from ofa_deploy.profiling.hosts.fingerprint import check_table_host

    check = check_table_host(table, profile)
    if check.ok:
        return check.to_dict(), False
    if source.adapt_if_foreign:
        say(progress, f"the latency table was measured on another host ({check.describe()}): adapting it here")
        return check.to_dict(), True
    if not source.allow_foreign:
        raise ForeignTableError(
            f"the latency table cannot be trusted on this host: {check.describe()}. Build one here with "
            f"`ofa-deploy profile build --profile {profile.name} --supernet <space>` (or omit --lut so deploy "
            "builds it), pass --adapt to adapt it to this host with a few whole-subnet measurements (kept only "
            "when its held-out check passes), or pass --allow-foreign-lut to deploy with it anyway (its verdicts "
            "are then about the other host's speed)")
    say(progress, f"warning: using a foreign latency table (--allow-foreign-lut): {check.describe()}")
    return check.to_dict(), False


def _adapt(path: Path, space: Any, profile: Any, source: TableSource, out_dir: Path,
           progress: Progress | None) -> tuple[Any, dict[str, Any]]:
    """The table at `path` adapted to `profile` on this host (`ofa_deploy.adapt.adapt_table`), written into
    `out_dir`; an adaptation whose held-out check fails raises `AdaptationError`."""
    from ofa_deploy.adapt import adapt_table
    from ofa_deploy.profiling.hosts.fingerprint import check_table_host

    target = Path(source.build_at) if source.build_at is not None and source.adapt_from is not None \
        else out_dir / "lut-adapted.json"
    table = _earlier_adaptation(target, path)
    if table is not None:
        say(progress, f"reusing the table adapted from {path} earlier: {target}")
        adaptation = dict(table.provenance.adaptation or {})
    else:
        say(progress, f"adapting latency table {path} to {profile.name} on this host (up to "
                      f"{source.adapt_seconds:.0f} s of measurements)")
        result = adapt_table(path, profile=profile, supernet=space, out=target, max_seconds=source.adapt_seconds,
                             resolutions=list(space.resolutions), progress=progress)
        table = result.table
        adaptation = {"method": result.method, "passed": result.passed, "device_seconds": result.device_seconds,
                      "measurements": result.measurements, "validation": result.validation}
        say(progress, f"adapted ({result.method}, {result.device_seconds:.1f} s on the target): held-out check "
                      f"{'passed' if result.passed else 'failed'}")
    info = {"path": str(target), "built": False, "entries": len(table),
            "adapted_from": dict(table.provenance.adapted_from or {"path": str(path)}), "adaptation": adaptation,
            "host": check_table_host(table, profile).to_dict()}
    return table, info


def _earlier_adaptation(target: Path, source: Path) -> Any:
    """The table adapted from `source` into `target` by an earlier (interrupted) run, if its check passed."""
    from ofa_deploy.errors import OfaDeployError
    from ofa_deploy.tables.latency import LatencyTable

    if not target.is_file():
        return None
    try:
        table = LatencyTable.load(target)
    except OfaDeployError:
        return None
    prov = table.provenance
    return table if prov.is_adapted and prov.adaptation_passed and prov.adapted_from.get("path") == str(source) \
        else None


__all__ = ["ResolvedTable", "TableSource", "resolve_table"]
