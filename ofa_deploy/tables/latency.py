"""Latency lookup tables (LUTs): per-layer latency statistics keyed by `LayerSpec`, with provenance.

A `LatencyTable` maps each distinct layer of a space (as yielded by `SearchSpace.walk_layers`) to
the `LatencyStats` measured for it on one hardware profile. The latency predictor sums one
statistic (`LatencyTable.stat`, the median by default) over a subnet's layers.

Entries are normally resolution-independent: a layer's latency depends on its own shapes only, and the
profiler times each distinct `LayerSpec` once. A table may also hold *scoped* entries that apply only
when predicting a subnet at one input resolution: OFA's tables were measured per resolution file and time
some identical layers differently in different files, so `compat.ofa_lut.load_ofa_lut` keeps those per resolution to
reproduce OFA's predictions exactly. `lookup(spec, resolution)` prefers the scoped entry.

Tables built with the anchor-paired protocol (`profiling.timing.protocol`) store every entry in *anchor units*
(the layer's time divided by the anchor model's, timed alongside it) plus `AnchorInfo`: the anchor subnet and
its absolute median time during the build. `ms_per_unit` converts: ``ms = units * anchor.ms``. Tables
without an anchor (OFA's, or built before anchors) are in milliseconds (`ms_per_unit` 1) and say so. A table
may also carry a `Calibration` fitted on whole subnets measured during its build, which the latency
predictor applies: ``subnet = scale * sum(layers) + offset + per_layer * n_layers``.

On disk a table is one versioned JSON document (written atomically)::

    {"format": "ofa-deploy-latency-table", "schema_version": 2, "stat": "median", "unit": "anchor",
     "anchor": {"config": "r20-d1,...", "space": "...", "batch_size": 1, "ms": 0.071, ...},
     "calibration": {"scale": .., "offset": .., "per_layer": .., "fit": {...}},
     "provenance": {..., "host": {host fingerprint}},
     "entries": [{"layer": {LayerSpec fields}, "label": "mbconv 24->32 @112 k3 s2 ...",
                  "stats": {"median": .., "mean": .., "std": .., "p90": .., "n": ..}}, ...]}

OFA's YAML tables are read and written by `ofa_deploy.compat.ofa_lut` (`load_ofa_lut`, `save_ofa_lut`). This module
needs neither torch nor `profiling`; `ofa_deploy.profiling.lut` says where built tables are stored.
"""
from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from ofa_deploy.errors import ConfigError, LatencyTableMissError
from ofa_deploy.fileio import atomic_write_text, read_json_file
from ofa_deploy.spaces.layer_spec import LayerSpec
from ofa_deploy.spaces.ofa_keys import ofa_key
from ofa_deploy.tables.anchor import AnchorInfo

logger = logging.getLogger(__name__)

FORMAT_NAME = "ofa-deploy-latency-table"
SCHEMA_VERSION = 2
UNITS = ("ms", "anchor")
STATS = ("median", "mean", "std", "p90", "n")
SELECTABLE_STATS = ("median", "mean", "p90")


@dataclass(frozen=True)
class LatencyStats:
    """Summary of the timings of one layer, in milliseconds.

    `median` and `p90` are None when the source recorded only mean/std (OFA's YAML tables).
    """

    median: float | None
    mean: float
    std: float
    p90: float | None
    n: int

    def __post_init__(self) -> None:
        for name in ("median", "mean", "std", "p90"):
            value = getattr(self, name)
            if value is None and name in ("median", "p90"):
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ConfigError(f"LatencyStats.{name} must be a finite number >= 0 (ms), got {value!r}")
        if isinstance(self.n, bool) or not isinstance(self.n, (int, np.integer)) or self.n < 0:
            raise ConfigError(f"LatencyStats.n must be an integer >= 0 (number of timing samples), got {self.n!r}")
        for name in ("median", "mean", "std", "p90"):  # plain Python numbers (JSON-able, hash-stable)
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, float(value))
        object.__setattr__(self, "n", int(self.n))

    @classmethod
    def from_samples(cls, samples_ms: Iterable[float] | np.ndarray) -> LatencyStats:
        """Statistics of raw timings (ms); std is the sample std (ddof=1, 0 for one sample)."""
        arr = np.asarray(list(samples_ms) if not isinstance(samples_ms, np.ndarray) else samples_ms, dtype=np.float64)
        arr = arr.ravel()
        if arr.size == 0:
            raise ConfigError("LatencyStats.from_samples needs at least one timing sample, got none")
        if not np.all(np.isfinite(arr)) or np.any(arr < 0):
            raise ConfigError("LatencyStats.from_samples: timings must be finite and >= 0 ms")
        return cls(
            median=float(np.median(arr)),
            mean=float(arr.mean()),
            std=float(arr.std(ddof=1)) if arr.size > 1 else 0.0,
            p90=float(np.percentile(arr, 90)),
            n=int(arr.size),
        )

    def value(self, stat: str) -> float:
        """The statistic `stat` ("median", "mean" or "p90"); ConfigError if this entry lacks it."""
        if stat not in SELECTABLE_STATS:
            raise ConfigError(f"unknown latency statistic {stat!r}; expected one of {SELECTABLE_STATS}")
        value = getattr(self, stat)
        if value is None:
            raise ConfigError(
                f"this latency entry has no {stat!r} (it was imported from a table that records only mean/std); "
                "use stat='mean'"
            )
        return float(value)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LatencyStats:
        unknown = sorted(set(data) - set(STATS))
        missing = sorted({"mean", "std", "n"} - set(data))
        if unknown or missing:
            raise ConfigError(f"latency stats: unknown keys {unknown}, missing keys {missing}; expected {list(STATS)}")
        return cls(median=data.get("median"), mean=data["mean"], std=data["std"], p90=data.get("p90"), n=data["n"])


@dataclass(frozen=True)
class Provenance:
    """Where a table's numbers come from; stored with every table.

    `host` is the machine and runtime the numbers were measured on
    (`profiling.hosts.fingerprint.host_fingerprint`: CPU model, backend and its version, ...): each fact is kept
    there only. Tables imported from elsewhere record what they
    know (OFA's YAML tables: ``{"backend": "ofa-lut"}``).
    """

    device: str = ""
    execution_provider: str = ""
    threads: int | None = None
    precision: str = ""
    batch_size: int = 1
    profile_name: str = ""
    profile_sha256: str = ""
    supernet: str = ""
    date: str = ""
    tool_version: str = ""
    notes: str = ""
    host: dict[str, Any] = field(default_factory=dict)
    #: adapted tables (`ofa_deploy.adapt`): the source table's fingerprint, profile, device and file hashes
    adapted_from: dict[str, Any] = field(default_factory=dict)
    #: adapted tables: the method (ladder rung) kept, measurements, device seconds and the held-out validation
    adaptation: dict[str, Any] = field(default_factory=dict)

    @property
    def is_adapted(self) -> bool:
        """True for a table adapted from another device's table (`ofa_deploy.adapt`)."""
        return bool(self.adapted_from)

    @property
    def adaptation_passed(self) -> bool:
        """False for an adapted table whose stored held-out check did not pass (or is missing); True otherwise."""
        if not self.is_adapted:
            return True
        validation = self.adaptation.get("validation") if isinstance(self.adaptation, Mapping) else None
        return isinstance(validation, Mapping) and validation.get("passed") is True

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for name in ("adapted_from", "adaptation"):  # tables that are not adapted keep their former form
            if not out[name]:
                del out[name]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Provenance:
        if not isinstance(data, Mapping):
            raise ConfigError(f"latency table provenance must be a mapping, got {type(data).__name__}")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names - set(_FLAT_HOST_KEYS))
        if unknown:
            raise ConfigError(f"latency table provenance: unknown keys {unknown}; expected a subset of {sorted(names)}")
        return cls(**_host_facts_in_host(data))

    @staticmethod
    def now() -> str:
        """Current UTC time in ISO 8601 (for `date`)."""
        return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


#: flat provenance keys of tables written by ofa-deploy 0.1.0, read into `Provenance.host` (same key names)
_FLAT_HOST_KEYS = ("cpu_model", "backend", "backend_version")


def _host_facts_in_host(data: Mapping[str, Any]) -> dict[str, Any]:
    """Provenance fields with the flat CPU model, backend and version of older tables moved into ``host``.

    A table from before host fingerprints (flat fields only) gets the partial fingerprint its fields recorded,
    provider and threads included; where both are stored, ``host`` wins.
    """
    fields_ = {k: v for k, v in data.items() if k not in _FLAT_HOST_KEYS}
    flat = {k: v for k, v in data.items() if k in _FLAT_HOST_KEYS and v not in ("", None)}
    if not flat:
        return fields_
    host = dict(fields_.get("host") or {})
    if not host and flat.get("cpu_model"):
        flat.update(provider=data.get("execution_provider", ""), threads=data.get("threads"))
    fields_["host"] = {**flat, **host}
    return fields_


def tool_version() -> str:
    """The installed ofa-deploy version (or 'unknown')."""
    try:
        from importlib.metadata import version

        return version("ofa-deploy")
    except Exception:  # pragma: no cover - not installed as a distribution
        return "unknown"


@dataclass(frozen=True)
class Calibration:
    """Whole-subnet correction in table units: ``scale * sum(layers) + offset + per_layer * n_layers``.

    A sum of per-layer times misses per-inference costs (the run call, input/output copies, layout changes
    at the graph's edges) that dominate small models; `offset` and `per_layer` carry them.
    `fit` holds how it was fitted and how it scored on held-out subnets (informational).
    """

    scale: float = 1.0
    offset: float = 0.0
    per_layer: float = 0.0
    fit: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        for name in ("scale", "offset", "per_layer"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ConfigError(f"calibration.{name} must be a finite number, got {value!r}")
            object.__setattr__(self, name, float(value))
        if self.scale <= 0:
            raise ConfigError(f"calibration.scale must be > 0, got {self.scale}")

    @property
    def is_identity(self) -> bool:
        return self.scale == 1.0 and self.offset == 0.0 and self.per_layer == 0.0

    def apply(self, sums: np.ndarray, n_layers: np.ndarray | None = None) -> np.ndarray:
        if self.is_identity:
            return sums
        out = self.scale * sums + self.offset
        if self.per_layer:
            if n_layers is None:
                raise ConfigError("this calibration has a per-layer term; pass the layer counts")
            out = out + self.per_layer * n_layers
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"scale": self.scale, "offset": self.offset, "per_layer": self.per_layer,
                **({"fit": self.fit} if self.fit else {})}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Calibration:
        if not isinstance(data, Mapping) or set(data) - {"scale", "offset", "per_layer", "fit"}:
            raise ConfigError(f"latency table calibration: expected keys scale, offset, per_layer, fit; got {data!r}")
        return cls(scale=data.get("scale", 1.0), offset=data.get("offset", 0.0),
                   per_layer=data.get("per_layer", 0.0), fit=dict(data.get("fit") or {}))


class LatencyTable:
    """A mapping `LayerSpec -> LatencyStats` plus provenance and the statistic predictions use.

    Args:
        entries: initial entries.
        provenance: where the numbers come from.
        stat: which statistic predictions use ("median", "mean" or "p90").
        anchor: the anchor the entries are relative to (entries in anchor units); None: entries in ms.
        calibration: whole-subnet correction fitted during the build (applied by the latency predictor).
    """

    def __init__(
        self,
        entries: Mapping[LayerSpec, LatencyStats] | None = None,
        *,
        provenance: Provenance | None = None,
        stat: str = "median",
        anchor: AnchorInfo | None = None,
        calibration: Calibration | None = None,
    ) -> None:
        if stat not in SELECTABLE_STATS:
            raise ConfigError(f"LatencyTable stat must be one of {SELECTABLE_STATS}, got {stat!r}")
        self.provenance = provenance or Provenance()
        self.stat = stat
        self.anchor = anchor
        self.calibration = calibration or Calibration()
        self._entries: dict[LayerSpec, LatencyStats] = {}
        self._scoped: dict[int, dict[LayerSpec, LatencyStats]] = {}
        for spec, stats in (entries or {}).items():
            self[spec] = stats

    @property
    def unit(self) -> str:
        """"anchor" (entries relative to `anchor`) or "ms"."""
        return "anchor" if self.anchor is not None else "ms"

    @property
    def ms_per_unit(self) -> float:
        """Milliseconds per table unit: the anchor's build-time median, or 1 for tables in ms."""
        return self.anchor.ms if self.anchor is not None else 1.0

    # ---- mapping -------------------------------------------------------------------------------
    def __setitem__(self, spec: LayerSpec, stats: LatencyStats) -> None:
        self.set(spec, stats)

    def set(self, spec: LayerSpec, stats: LatencyStats, *, resolution: int | None = None) -> None:
        """Add or replace an entry; with `resolution`, one that applies only to subnets at that resolution."""
        if not isinstance(spec, LayerSpec):
            raise ConfigError(f"latency table keys must be LayerSpec, got {type(spec).__name__}")
        if not isinstance(stats, LatencyStats):
            raise ConfigError(f"latency table values must be LatencyStats, got {type(stats).__name__}")
        if resolution is None:
            self._entries[spec] = stats
        elif isinstance(resolution, bool) or not isinstance(resolution, (int, np.integer)) or resolution < 1:
            raise ConfigError(f"latency table entry resolution must be a positive integer or None, got {resolution!r}")
        else:
            self._scoped.setdefault(int(resolution), {})[spec] = stats

    def __getitem__(self, spec: LayerSpec) -> LatencyStats:
        try:
            return self._entries[spec]
        except KeyError:
            raise self.miss_error(spec) from None

    def __contains__(self, spec: object) -> bool:
        return spec in self._entries

    def __len__(self) -> int:
        return len(self._entries) + sum(len(d) for d in self._scoped.values())

    def __iter__(self) -> Iterator[LayerSpec]:
        return iter(self._entries)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LatencyTable):
            return NotImplemented
        return (self._entries == other._entries and self._scoped == other._scoped
                and self.provenance == other.provenance and self.stat == other.stat and self.anchor == other.anchor
                and self.calibration == other.calibration)

    def __repr__(self) -> str:
        name = self.provenance.profile_name or self.provenance.device or "unnamed"
        return f"LatencyTable({name!r}, {len(self)} entries, stat={self.stat!r})"

    def items(self) -> Iterator[tuple[LayerSpec, LatencyStats]]:
        """The resolution-independent entries."""
        return iter(self._entries.items())

    def scoped_items(self) -> Iterator[tuple[int, LayerSpec, LatencyStats]]:
        """The resolution-scoped entries as (resolution, spec, stats)."""
        for resolution in sorted(self._scoped):
            for spec, stats in self._scoped[resolution].items():
                yield resolution, spec, stats

    def all_items(self) -> Iterator[tuple[int | None, LayerSpec, LatencyStats]]:
        """Every entry as (resolution or None, spec, stats)."""
        for spec, stats in self._entries.items():
            yield None, spec, stats
        yield from self.scoped_items()

    @property
    def scoped_resolutions(self) -> tuple[int, ...]:
        return tuple(sorted(self._scoped))

    def lookup(self, spec: LayerSpec, resolution: int | None = None) -> LatencyStats | None:
        """The entry for `spec` in a subnet at `resolution` (a scoped entry first), or None."""
        if resolution is not None:
            scoped = self._scoped.get(int(resolution))
            if scoped is not None and spec in scoped:
                return scoped[spec]
        return self._entries.get(spec)

    def get(self, spec: LayerSpec, default: LatencyStats | None = None) -> LatencyStats | None:
        return self._entries.get(spec, default)

    def latency(self, spec: LayerSpec, resolution: int | None = None, *, supernet: str | None = None) -> float:
        """The selected statistic (`self.stat`) of `spec` in ms; LatencyTableMissError if absent."""
        return self.units(spec, resolution, supernet=supernet) * self.ms_per_unit

    def units(self, spec: LayerSpec, resolution: int | None = None, *, supernet: str | None = None) -> float:
        """The selected statistic of `spec` in table units (`unit`); LatencyTableMissError if absent."""
        stats = self.lookup(spec, resolution)
        if stats is None:
            raise self.miss_error(spec, resolution=resolution, supernet=supernet)
        return stats.value(self.stat)

    def missing(self, specs: Iterable[LayerSpec], resolution: int | None = None) -> list[LayerSpec]:
        """The distinct specs of `specs` with no entry (at `resolution`), in first-seen order."""
        seen: dict[LayerSpec, None] = {}
        for spec in specs:
            if self.lookup(spec, resolution) is None:
                seen.setdefault(spec, None)
        return list(seen)

    def copy(self, *, stat: str | None = None, provenance: Provenance | None = None) -> LatencyTable:
        """A shallow copy, optionally predicting with another `stat` (every entry must have it)."""
        table = LatencyTable(provenance=provenance or self.provenance, stat=stat or self.stat, anchor=self.anchor,
                             calibration=self.calibration)
        for resolution, spec, stats in self.all_items():
            if stat is not None:
                stats.value(stat)
            table.set(spec, stats, resolution=resolution)
        return table

    def merge(self, other: LatencyTable, *, on_conflict: str = "other") -> LatencyTable:
        """A new table with the entries of both; `on_conflict` is "other", "self" or "error"."""
        if on_conflict not in ("other", "self", "error"):
            raise ConfigError(f"merge on_conflict must be 'other', 'self' or 'error', got {on_conflict!r}")
        if self.unit != other.unit or (self.anchor and other.anchor and self.anchor.config != other.anchor.config):
            raise ConfigError(f"cannot merge a table in {self.unit!r} units with one in {other.unit!r} units (or with "
                              "another anchor); rebuild them with the same profile")
        notes = "; ".join(n for n in (self.provenance.notes, other.provenance.notes) if n)
        merged = self.copy(provenance=replace(self.provenance, notes=notes))
        for resolution, spec, stats in other.all_items():
            current = merged._scoped.get(resolution, {}) if resolution is not None else merged._entries
            if spec in current and current[spec] != stats:
                if on_conflict == "error":
                    where = f" at resolution {resolution}" if resolution is not None else ""
                    raise ConfigError(f"merge conflict: both tables time {spec.short()}{where} differently; "
                                      "pass on_conflict='self' or 'other' to choose")
                if on_conflict == "self":
                    continue
            merged.set(spec, stats, resolution=resolution)
        return merged

    # ---- errors --------------------------------------------------------------------------------
    def measure_command(self, supernet: str | None = None) -> str:
        profile = self.provenance.profile_name or "<profile>"
        space = supernet or self.provenance.supernet or "<supernet>"
        return f"ofa-deploy profile build --profile {profile} --supernet {space}"

    def miss_error(
        self, spec: LayerSpec, *, resolution: int | None = None, supernet: str | None = None
    ) -> LatencyTableMissError:
        """The error for a missing layer: names it (short form and OFA key) and the measuring command."""
        key = ofa_key(spec)
        key_text = f" (OFA key {key!r})" if key else ""
        source = self.provenance.profile_name or self.provenance.device or "this table"
        where = f" (in a subnet at resolution {resolution})" if resolution is not None else ""
        scoped = [r for r, entries in sorted(self._scoped.items()) if spec in entries]
        if scoped:
            where += f"; it has entries for subnets at resolutions {scoped} only (use lookup(spec, resolution))"
        return LatencyTableMissError(
            f"latency table {source!r} ({len(self)} entries) has no entry for layer {spec.short()}{key_text}"
            f"{where}. "
            f"Measure it with `{self.measure_command(supernet)}`, or predict only subnets and resolutions the "
            "table covers."
        )

    # ---- files ---------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT_NAME,
            "schema_version": SCHEMA_VERSION,
            "stat": self.stat,
            "unit": self.unit,
            **({"anchor": self.anchor.to_dict()} if self.anchor is not None else {}),
            **({"calibration": self.calibration.to_dict()} if not self.calibration.is_identity else {}),
            "provenance": self.provenance.to_dict(),
            "entries": [
                {"layer": spec.to_dict(), "label": spec.short(), "stats": stats.to_dict(),
                 **({"resolution": resolution} if resolution is not None else {})}
                for resolution, spec, stats in self.all_items()
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "<dict>") -> LatencyTable:
        if not isinstance(data, Mapping) or data.get("format") != FORMAT_NAME:
            raise ConfigError(f"{source}: not an ofa-deploy latency table (expected \"format\": \"{FORMAT_NAME}\"); "
                              "for OFA YAML tables use `ofa_deploy.compat.ofa_lut.load_ofa_lut`")
        version = data.get("schema_version")
        if not isinstance(version, int) or version < 1:
            raise ConfigError(f"{source}: invalid schema_version {version!r}; expected an integer >= 1")
        if version > SCHEMA_VERSION:
            raise ConfigError(
                f"{source}: latency table schema_version {version} is newer than this ofa-deploy understands "
                f"({SCHEMA_VERSION}); upgrade ofa-deploy to read it"
            )
        anchor = AnchorInfo.from_dict(data["anchor"]) if data.get("anchor") is not None else None
        unit = data.get("unit", "ms")
        if unit not in UNITS or (unit == "anchor") != (anchor is not None):
            raise ConfigError(f"{source}: unit {unit!r} with anchor {data.get('anchor')!r}; expected unit 'anchor' "
                              "with an anchor, or 'ms' without one")
        calibration = Calibration.from_dict(data["calibration"]) if data.get("calibration") else None
        table = cls(provenance=Provenance.from_dict(data.get("provenance", {})), stat=data.get("stat", "median"),
                    anchor=anchor, calibration=calibration)
        for i, entry in enumerate(data.get("entries", [])):
            try:
                spec = LayerSpec.from_dict(entry["layer"])
                stats = LatencyStats.from_dict(entry["stats"])
                resolution = entry.get("resolution")
            except (KeyError, TypeError, AttributeError) as exc:
                raise ConfigError(f"{source}: entry {i} is malformed ({exc}); expected {{'layer': .., 'stats': ..}}") from None
            table.set(spec, stats, resolution=resolution)
        return table

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the table as JSON, atomically (temp file in the same directory, then rename)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(self.to_dict(), indent=1) + "\n")
        logger.info("saved latency table (%d entries) to %s", len(self), path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> LatencyTable:
        """Read a table written by `save` (OFA's YAML tables: `ofa_deploy.compat.ofa_lut.load_ofa_lut`)."""
        path = Path(path)
        if path.suffix in (".yaml", ".yml"):
            raise ConfigError(f"{path} looks like an OFA YAML table; read it with ofa_deploy.compat.ofa_lut.load_ofa_lut(path, space) "
                              "(CLI: --ofa-lut)")
        data = read_json_file(path, what="latency table", hint="expected a latency table written by ofa-deploy")
        return cls.from_dict(data, source=str(path))


__all__ = ["FORMAT_NAME", "SCHEMA_VERSION", "SELECTABLE_STATS", "STATS", "UNITS", "AnchorInfo", "Calibration",
           "LatencyStats", "LatencyTable", "Provenance", "tool_version"]
