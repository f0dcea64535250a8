"""Turn the standalone on-device script's results (ofa_deploy/ondevice.py) into a LatencyTable."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ofa_deploy.errors import ConfigError
from ofa_deploy.fileio import read_json_file
from ofa_deploy.profiling.incontext import InContextMethod
from ofa_deploy.profiling.isolated import IsolatedMethod
from ofa_deploy.profiling.methods import BuildMethod
from ofa_deploy.profiling.plan import Plan, read_plan

RESULTS_FORMAT = "ofa-deploy-ondevice-results"


def results_method(plan: Plan, raw_plan: dict[str, Any], settings: dict[str, Any]) -> BuildMethod:
    """The build method that reduces the script's records: the one it ran (``settings["method"]``), over the plan
    (in-context subnets name their layers by the plan's spec ids)."""
    if settings.get("method") == "in_context":
        layer_ids = {s["config"]: list(s["layers"]) for s in raw_plan.get("subnets", [])}
        return InContextMethod(None, plan, list(layer_ids), layer_ids=layer_ids)
    return IsolatedMethod(None, plan)


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
    described = {"cpu_model": str(device.get("processor") or device.get("machine", "")), "backend": "onnxruntime",
                 "backend_version": str(device.get("onnxruntime", "")), "provider": str(settings.get("provider", "")),
                 "threads": settings.get("threads")}  # what a device without a fingerprint says about itself
    provenance = Provenance(
        device=str(device.get("node", "")),
        execution_provider=str(settings.get("provider", "")), threads=settings.get("threads"),
        precision=str(get("precision", "fp32")), batch_size=int(plan.batch_size),
        profile_name=str(get("name", "")), profile_sha256=str(getattr(prof, "sha256", "")), supernet=plan.space,
        date=Provenance.now(), tool_version=tool_version(),
        notes=json.dumps({"source": "ofa_deploy/ondevice.py", "settings": settings,
                          "system": device.get("system", "")}),
        host={**device.get("fingerprint", {}), "profile_sha256": str(getattr(prof, "sha256", ""))}
        if device.get("fingerprint") else described,
    )
    result = results_method(plan, raw_plan, settings).reduce(data.get("records", []), provenance)
    table = result.table
    anchor = raw_plan.get("anchor")
    if anchor and settings.get("anchor") == anchor["config"] and result.anchor_visits_ms:
        from ofa_deploy.tables.anchor import AnchorInfo

        table.anchor = AnchorInfo.from_visits(anchor["config"], plan.space, plan.batch_size, result.anchor_visits_ms)

    if out_path is not None:
        table.save(out_path)
    return table
