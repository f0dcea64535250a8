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

OFA tables record mean and std only: imported entries have ``median = p90 = None`` and the table
predicts with ``stat="mean"`` (what OFA sums).
"""
from __future__ import annotations

import logging
import math
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from ofa_deploy.errors import ConfigError
from ofa_deploy.fileio import atomic_write_text
from ofa_deploy.spaces import SearchSpace
from ofa_deploy.spaces.ofa_keys import ofa_key, proxyless_logits_key
from ofa_deploy.spaces.ofa_keys import ofa_schema as _schema_of
from ofa_deploy.spaces.slots import SlotTables
from ofa_deploy.tables.latency import PROXYLESS_FILE_HINTS, LatencyStats, LatencyTable, load_ofa_lut

logger = logging.getLogger(__name__)


# ---- entries -------------------------------------------------------------------------------------
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
    schema = _schema_of(space)
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
