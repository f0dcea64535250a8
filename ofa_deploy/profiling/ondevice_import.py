"""Turn the standalone on-device script's results (ofa_deploy/ondevice.py) into a LatencyTable."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ofa_deploy.errors import ConfigError
from ofa_deploy.fileio import read_json_file
from ofa_deploy.profiling.builder import table_from_records
from ofa_deploy.profiling.plan import ANCHOR_ID, read_plan

RESULTS_FORMAT = "ofa-deploy-ondevice-results"


def _in_context_table(plan: Any, raw_plan: dict[str, Any], records: list[dict[str, Any]], provenance: Any) -> Any:
    """Per spec: median over its occurrences in each round (layer values scaled to the unprofiled run time),
    then LatencyStats over rounds — the same estimate as the host's in-context build."""
    from collections import defaultdict

    import numpy as np

    from ofa_deploy.tables.latency import LatencyStats, LatencyTable

    specs = {i.id: i.spec for i in plan.items}
    layers = {s["config"]: s["layers"] for s in raw_plan.get("subnets", [])}
    per_round: dict[tuple[str, int], list[float]] = defaultdict(list)
    for rec in records:
        if rec["id"] not in layers:
            raise ConfigError(f"results name subnet {rec['id']!r}, which the plan does not list")
        for sid, value in zip(layers[rec["id"]], rec["layers"]):
            scale = float(rec["ratio"]) / float(sum(rec["layers"])) if "ratio" in rec else float(rec.get("scale", 1.0))
            per_round[(sid, rec["round"])].append(value * scale)
    values: dict[str, list[float]] = defaultdict(list)
    for (sid, _), vals in per_round.items():
        values[sid].append(float(np.median(vals)))
    missing = [sid for sid in specs if sid not in values]
    if missing:
        raise ConfigError(f"{len(missing)} planned layers have no in-context measurement; rerun the script to resume")
    table = LatencyTable(provenance=provenance, stat="median")
    for sid, spec in specs.items():
        table[spec] = LatencyStats.from_samples(values[sid])
    return table


def import_results(results_path: str | os.PathLike[str], plan_dir: str | os.PathLike[str],
                   out_path: str | os.PathLike[str] | None = None, *, profile: Any = None) -> Any:
    """Read `results_path` measured for the plan in `plan_dir`; return (and optionally save) the LatencyTable.

    Per-round minima minus the round's Identity-model overhead, median over rounds (as `build_lut`).
    """
    from ofa_deploy.tables.latency import Provenance, tool_version

    path = Path(results_path)
    data = read_json_file(path, what="results file")
    if not isinstance(data, dict) or data.get("format") != RESULTS_FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise ConfigError(f"{path} is not an on-device results file (format {found!r}, "
                          f"expected {RESULTS_FORMAT!r})")
    plan, raw_plan = read_plan(plan_dir)
    if data.get("plan_space") != plan.space:
        raise ConfigError(f"{path} was measured for space {data.get('plan_space')!r}, the plan is for {plan.space!r}")
    settings, device = data.get("settings", {}), data.get("device", {})
    prof = profile or raw_plan.get("profile") or {}
    get = (lambda k, d=None: prof.get(k, d)) if isinstance(prof, dict) else (lambda k, d=None: getattr(prof, k, d))
    provenance = Provenance(
        device=str(device.get("node", "")), cpu_model=str(device.get("processor") or device.get("machine", "")),
        backend="onnxruntime", backend_version=str(device.get("onnxruntime", "")),
        execution_provider=str(settings.get("provider", "")), threads=settings.get("threads"),
        precision=str(get("precision", "fp32")), batch_size=int(plan.batch_size),
        profile_name=str(get("name", "")), profile_sha256=str(getattr(prof, "sha256", "")), supernet=plan.space,
        date=Provenance.now(), tool_version=tool_version(),
        notes=json.dumps({"source": "ofa_deploy/ondevice.py", "settings": settings,
                          "system": device.get("system", "")}),
        host={**device.get("fingerprint", {}), "profile_sha256": str(getattr(prof, "sha256", ""))}
        if device.get("fingerprint") else {},
    )
    records = data.get("records", [])
    if settings.get("method") == "in_context":
        table = _in_context_table(plan, raw_plan, records, provenance)
        anchor_visits = [r["anchor_ms"] for r in records if "anchor_ms" in r]
    else:
        table, _, _ = table_from_records(plan, records, provenance=provenance)
        anchor_visits = [r["ms"] for r in records if r["id"] == ANCHOR_ID]
    anchor = raw_plan.get("anchor")
    if anchor and settings.get("anchor") == anchor["config"] and anchor_visits:
        from ofa_deploy.tables.anchor import AnchorInfo

        table.anchor = AnchorInfo.from_visits(anchor["config"], plan.space, plan.batch_size, anchor_visits)

    if out_path is not None:
        table.save(out_path)
    return table
