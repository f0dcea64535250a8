"""Turn the standalone on-device script's results (benchmarks/ondevice_profile.py) into a LatencyTable."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ofa_deploy.errors import ConfigError
from ofa_deploy.profiling.builder import table_from_records
from ofa_deploy.profiling.plan import read_plan

RESULTS_FORMAT = "ofa-deploy-ondevice-results"


def import_results(results_path: str | os.PathLike[str], plan_dir: str | os.PathLike[str],
                   out_path: str | os.PathLike[str] | None = None, *, profile: Any = None) -> Any:
    """Read `results_path` measured for the plan in `plan_dir`; return (and optionally save) the LatencyTable.

    Per-round minima minus the round's Identity-model overhead, median over rounds (as `build_lut`).
    """
    from ofa_deploy.profiling.lut import Provenance, tool_version

    path = Path(results_path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"results file {path} not found") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"results file {path} is not JSON ({exc})") from None
    if data.get("format") != RESULTS_FORMAT:
        raise ConfigError(f"{path} is not an on-device results file (format {data.get('format')!r}, "
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
        notes=json.dumps({"source": "benchmarks/ondevice_profile.py", "settings": settings,
                          "system": device.get("system", "")}),
    )
    table, _, _ = table_from_records(plan, data.get("records", []), provenance=provenance)
    if out_path is not None:
        table.save(out_path)
    return table
