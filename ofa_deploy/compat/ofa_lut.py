"""OFA's YAML latency tables <-> `LatencyTable`.

OFA keys a table by TF-slim style strings, one YAML file per input resolution, each entry
``{count, mean, std}`` (``var`` instead of ``std`` in ProxylessNAS's ``mobile_trim.yaml``). Two schemas:

* MobileNetV3 (``family="mbv3"``, the Note10 tables)::

    Conv-input:224x224x3-output:112x112x24                                   stem
    expanded_conv-input:112x112x24-output:56x56x32-expand:144-kernel:7-stride:2-idskip:0-se:0-hs:0
                                                                             block, expand = mid channels
    Conv_1-input:7x7x192-output:7x7x1152                                     final expand 1x1
    AvgPool2D-input:7x7x1152-output:1x1x1152                                 global pool
    Conv_2-input:1x1x1152-output:1x1x1536                                    feature mix 1x1 (no BN)
    Logits-input:1x1x1536-output:1000                                        classifier

* ProxylessNAS (``family="proxyless"``, the Pixel1 table): ``expanded_conv`` has ``expand:<ratio>``
  (1 for the first block) and no ``se``/``hs``; ``Conv_1`` is the feature mix layer; ``Logits`` starts at
  the last feature map (``input:7x7x1280``), i.e. it times global pooling and the classifier together.

Merged roles. Our walk has separate pool and classifier layers where Proxyless has one ``Logits`` row.
On load the whole ``Logits`` statistics go to the *pool* spec (whose input carries the feature-map size)
and the classifier spec (whose output carries the class count) gets a zero entry, so both layers of a
walk are found exactly when OFA's key matches, and the predicted sum equals OFA's. On save the two are
added back into one ``Logits`` row (means add, variances add), so a table measured by ofa-deploy can be
written for OFA's predictor too.

Resolution. OFA times some identical layers separately in different resolution files (e.g. the
``6x6`` blocks at 176 and 192). Entries whose statistics agree across files are stored once;
entries that differ are stored per resolution (`LatencyTable.set(..., resolution=r)`), which reproduces
OFA's per-resolution predictions exactly.

`load_ofa_lut` reads the files, `save_ofa_lut` writes them. OFA tables record mean and std only: imported entries have ``median = p90 = None`` and the table
predicts with ``stat="mean"`` (what OFA sums).
"""
from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from ofa_deploy.errors import ConfigError
from ofa_deploy.fileio import atomic_write_text, is_regular_file, read_yaml_file
from ofa_deploy.spaces import LayerSpec, SearchSpace
from ofa_deploy.spaces.config import finite_number, short_repr
from ofa_deploy.spaces.ofa_keys import ofa_key, ofa_schema, parse_ofa_key, proxyless_logits_key, specs_from_key
from ofa_deploy.spaces.slots import SlotTables
from ofa_deploy.tables.latency import LatencyStats, LatencyTable, Provenance, tool_version

logger = logging.getLogger(__name__)


# ---- reading -----------------------------------------------------------------------------------------
_FILE_RES = re.compile(r"(\d+)_lookup_table\.ya?ml$")


def _stats_from_ofa(entry: Any, key: str, source: str) -> LatencyStats:
    if not isinstance(entry, Mapping) or "mean" not in entry:
        raise ConfigError(f"{source}: entry {key!r} must be a mapping with 'mean' (and count, std|var), "
                          f"got {short_repr(entry)}")

    def number(name: str, *, integer: bool = False) -> float:
        value = finite_number(entry[name])
        if value is None or value < 0 or (integer and not value.is_integer()):
            kind = "an integer" if integer else "a finite number"
            raise ConfigError(f"{source}: entry {key!r} has {name} = {short_repr(entry[name])}; expected {kind} >= 0")
        return value

    std = number("std") if "std" in entry else math.sqrt(number("var")) if "var" in entry else 0.0
    count = int(number("count", integer=True)) if "count" in entry else 0
    return LatencyStats(median=None, mean=number("mean"), std=std, p90=None, n=count)


def _zero_like(stats: LatencyStats) -> LatencyStats:
    return LatencyStats(median=None if stats.median is None else 0.0, mean=0.0, std=0.0,
                        p90=None if stats.p90 is None else 0.0, n=stats.n)


# files: one per resolution, or OFA's single Proxyless table
PROXYLESS_FILE_HINTS = ("proxyless", "mobile_trim")


def _resolve_files(source: str | os.PathLike[str] | Mapping[int, str | os.PathLike[str]],
                   schema: str = "mbv3") -> dict[Path, int | None]:
    if isinstance(source, Mapping):
        out: dict[Path, int | None] = {}
        for res, path in source.items():
            value = finite_number(res)
            if value is None or not value.is_integer() or value < 1:
                raise ConfigError(f"OFA latency tables by resolution: key {short_repr(res)} is not a positive integer")
            path = Path(path)
            if os.path.isdir(path):  # OFA's Mbv3LatencyModel passes {r: dir} and reads dir/<r>_lookup_table.yaml
                path = path / f"{int(value)}_lookup_table.yaml"
            out[path] = int(value)
        return out
    path = Path(source)
    if is_regular_file(path) or (os.path.lexists(path) and not os.path.isdir(path)):  # special files: refused on read
        match = _FILE_RES.search(path.name)
        return {path: int(match.group(1)) if match else None}
    if os.path.isdir(path) and schema == "proxyless":  # OFA's Proxyless (Pixel1) table: one file, 224 px only
        found = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml")
                       and any(h in p.name for h in PROXYLESS_FILE_HINTS))
        if not found:
            raise ConfigError(f"{path}: no ProxylessNAS latency table (a .yaml whose name contains "
                              f"{' or '.join(PROXYLESS_FILE_HINTS)}, e.g. OFA's proxyless_pixel1_mobile_trim.yaml); "
                              "the <r>_lookup_table.yaml files there are MobileNetV3 tables. Pass the file itself")
        return {p: None for p in found}
    if os.path.isdir(path):
        files = sorted(p for p in path.iterdir() if _FILE_RES.search(p.name))
        if not files:
            raise ConfigError(f"{path}: no OFA latency tables found; expected files named <r>_lookup_table.yaml "
                              "(OFA) or <device>_<r>_lookup_table.yaml")
        return {p: int(_FILE_RES.search(p.name).group(1)) for p in files}  # type: ignore[union-attr]
    raise ConfigError(f"OFA latency table path not found: {path}")


def _check_family(data: Mapping[str, Any], schema: str, space: SearchSpace, path: Path) -> None:
    """A MobileNetV3 table loaded for a Proxyless space (or the reverse), or one of another width, is named as such."""
    keys = [str(k) for k in data]
    mbv3_rows = any(k.startswith(("AvgPool2D-", "Conv_2-")) for k in keys)
    if schema == "proxyless" and mbv3_rows:
        raise ConfigError(f"{path} is a MobileNetV3 table (it has AvgPool2D/Conv_2 rows); {space.name} is a "
                          "ProxylessNAS space: pass a Proxyless table such as OFA's proxyless_pixel1_mobile_trim.yaml")
    if schema == "mbv3" and not mbv3_rows and any(k.startswith("Conv_1-") for k in keys):
        raise ConfigError(f"{path} is a ProxylessNAS table (no AvgPool2D/Conv_2 rows); {space.name} is a MobileNetV3 "
                          "space: pass it with a Proxyless supernet (ofa_proxyless_w13 or a width variant)")
    stem = next((k for k in keys if k.startswith("Conv-")), None)
    if stem is None:
        return
    _, fields_ = parse_ofa_key(stem)
    table_c = fields_["output"][1]
    space_c = space.walk_layers(space.max_config())[0].out_channels
    if table_c != space_c:
        hint = (" OFA's Pixel1 table is for ProxylessNAS mobile at width 1.0 with expand ratios 3 and 6: in Python, "
                "load_ofa_lut(path, get_space('ofa_proxyless_w13', width_mult=1.0, expand_ratios=(3, 6)))"
                if schema == "proxyless" else "")
        raise ConfigError(f"{path}: its first conv has {table_c} output channels, the stem of {space.name} has "
                          f"{space_c}: the table is for another width of this family.{hint}")


def load_ofa_lut(
    source: str | os.PathLike[str] | Mapping[int, str | os.PathLike[str]],
    space: SearchSpace,
    *,
    device: str | None = None,
) -> LatencyTable:
    """Read OFA YAML latency tables into a `LatencyTable` for `space` (which gives the key schema).

    `source` is a directory (``<r>_lookup_table.yaml`` or ``<device>_<r>_lookup_table.yaml`` files), a
    single YAML file (its resolution read from the name or from the ``Conv`` row), or ``{r: path or dir}``.
    """
    schema = ofa_schema(space)
    files = _resolve_files(source, schema)
    per_file: list[tuple[int, dict[LayerSpec, LatencyStats]]] = []
    for path, res in files.items():
        data = read_yaml_file(path, what="OFA latency table")
        if not isinstance(data, Mapping) or not data:
            raise ConfigError(f"{path}: expected a YAML mapping of OFA layer keys to {{count, mean, std}}")
        _check_family(data, schema, space, path)
        entries: dict[LayerSpec, LatencyStats] = {}
        for key, entry in data.items():
            stats = _stats_from_ofa(entry, str(key), str(path))
            specs = specs_from_key(str(key), space)
            entries[specs[0]] = stats
            if len(specs) == 2:  # Proxyless Logits = pool + classifier: the pool carries the time
                entries[specs[1]] = _zero_like(stats)
        if res is None:
            stems = [s.in_size for s in entries if s.role == "stem"]
            if len(set(stems)) != 1:
                raise ConfigError(f"{path}: cannot tell the resolution of this table (stem rows: {sorted(set(stems))}); "
                                  "pass {resolution: path}")
            res = stems[0]
        per_file.append((res, entries))

    resolutions = sorted({r for r, _ in per_file})
    device = device or _guess_device(files)
    table = LatencyTable(stat="mean", provenance=Provenance(
        device=device, host={"backend": "ofa-lut"}, supernet=space.name,
        date=Provenance.now(), tool_version=tool_version(),
        notes=(f"imported from OFA YAML ({schema} schema, resolutions {resolutions}): "
               + ", ".join(str(p) for p in files) + "; OFA records count/mean/std only"
               + ("; Logits (pool + classifier) timed as one row, attached to the pool" if schema == "proxyless" else "")),
    ))
    seen: dict[LayerSpec, list[tuple[int, LatencyStats]]] = {}
    for res, entries in per_file:
        for spec, stats in entries.items():
            seen.setdefault(spec, []).append((res, stats))
    n_scoped = 0
    for spec, found in seen.items():
        if all(stats == found[0][1] for _, stats in found):
            table.set(spec, found[0][1])
        else:
            n_scoped += len(found)
            for res, stats in found:
                table.set(spec, stats, resolution=res)
    logger.info("loaded OFA LUT %s: %d layers (%d kept per resolution)", device, len(seen), n_scoped)
    return table


def _guess_device(files: Mapping[Path, int | None]) -> str:
    names = {re.sub(r"_?\d*_?lookup_table$", "", p.stem) or p.parent.name for p in files}
    return names.pop() if len(names) == 1 else "ofa"


# ---- writing -------------------------------------------------------------------------------------
def _ofa_entry(stats: LatencyStats, schema: str) -> dict[str, Any]:
    out: dict[str, Any] = {"count": int(stats.n), "mean": float(stats.mean)}
    if schema == "mbv3":
        out["std"] = float(stats.std)
    else:
        out["var"] = float(stats.std) ** 2
    return out


def _add(a: LatencyStats, b: LatencyStats) -> LatencyStats:
    def opt(x: float | None, y: float | None) -> float | None:
        return None if x is None or y is None else x + y

    return LatencyStats(median=opt(a.median, b.median), mean=a.mean + b.mean,
                        std=math.sqrt(a.std**2 + b.std**2) if b.std else a.std, p90=opt(a.p90, b.p90),
                        n=min(a.n, b.n) if b.n else a.n)


def save_ofa_lut(
    table: LatencyTable,
    out_dir: str | os.PathLike[str],
    space: SearchSpace,
    *,
    resolutions: tuple[int, ...] | list[int] | None = None,
    prefix: str = "",
) -> dict[int, Path]:
    """Write `table` as OFA YAML, one ``<prefix><r>_lookup_table.yaml`` per resolution; returns {r: path}.

    Each file holds every layer a subnet of `space` can have at that resolution that the table covers
    (the layers are enumerated with the space's walk), plus the table's entries the space cannot produce
    whose input size occurs at that resolution (so OFA rows outside the space survive a round trip). `resolutions` defaults to those of the space at
    which the table covers the stem.
    """
    schema = ofa_schema(space)
    slots = SlotTables(space)
    if resolutions is None:
        resolutions = [r for r in space.resolutions
                       if any(s.role == "stem" and table.lookup(s, r) is not None for s in slots.specs_at(r))]
    if not resolutions:
        raise ConfigError(f"the table covers no resolution of {space.name!r}; nothing to write")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[int, Path] = {}
    reachable = {r: slots.specs_at(r) for r in space.resolutions}
    known = {s for specs in reachable.values() for s in specs}
    # entries the space cannot produce (e.g. OFA rows for choices the space lacks) are kept: written to
    # every file whose feature-map sizes they fit
    extra = [(res, spec) for res, spec, _ in table.all_items() if spec not in known]
    for r in resolutions:
        specs = reachable[r] if r in reachable else slots.specs_at(r)
        sizes = {s.in_size for s in specs}
        specs = specs + [spec for res, spec in extra if (res is None or res == r) and spec.in_size in sizes]
        rows: dict[str, dict[str, Any]] = {}
        pools = [s for s in specs if s.kind == "avgpool"]
        classifiers = [s for s in specs if s.kind == "linear"]
        for spec in specs:
            stats = table.lookup(spec, r)
            if stats is None:
                continue
            if schema == "proxyless" and spec.kind in ("avgpool", "linear"):
                continue
            key = ofa_key(spec, schema)
            if key is None:
                raise ConfigError(f"layer {spec.short()} has no OFA {schema} key; cannot write it as OFA YAML")
            rows[key] = _ofa_entry(stats, schema)
        if schema == "proxyless":
            for pool in pools:
                for cls in classifiers:
                    p_stats, c_stats = table.lookup(pool, r), table.lookup(cls, r)
                    if p_stats is not None and c_stats is not None and cls.in_channels == pool.out_channels:
                        rows[proxyless_logits_key(pool, cls)] = _ofa_entry(_add(p_stats, c_stats), schema)
        if not rows:
            continue
        path = out_dir / f"{prefix}{r}_lookup_table.yaml"
        atomic_write_text(path, yaml.safe_dump(dict(sorted(rows.items())), default_flow_style=False))
        written[r] = path
    logger.info("wrote OFA LUT files for resolutions %s to %s", sorted(written), out_dir)
    return written


def with_provenance(table: LatencyTable, **changes: Any) -> LatencyTable:
    """A copy of `table` with provenance fields replaced (e.g. device=...)."""
    return table.copy(provenance=replace(table.provenance, **changes))


__all__ = ["PROXYLESS_FILE_HINTS", "load_ofa_lut", "save_ofa_lut", "with_provenance"]
