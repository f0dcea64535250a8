"""Step 5, report: publish the shipped pick as ``model/`` and write ``report.json``, ``summary.md`` and
``pareto.png`` (`ofa_deploy.report`) from the outputs of the earlier steps."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ofa_deploy.pipeline.exporting import ExportedPick
from ofa_deploy.pipeline.request import DeployRequest, DeployResult
from ofa_deploy.pipeline.search import SearchOutcome, SearchSetup
from ofa_deploy.pipeline.tables import ResolvedTable
from ofa_deploy.pipeline.verify import Verification, budget_message


def publish_model(pick: ExportedPick, target: Path) -> dict[str, str]:
    """Publish the pick's artifact directories at `target` (ONNX) and ``<target>_<format>`` (converted), each
    atomically (`ofa_deploy.export.artifacts.publish_copy`); returns suffix -> published path."""
    from ofa_deploy.export.artifacts import publish_copy

    return {suffix or "onnx": str(publish_copy(source, target.parent / (target.name + suffix)))
            for source, suffix in pick.artifact_dirs}


def pick_points(setup: SearchSetup, verification: Verification) -> list[dict[str, Any]]:
    """Predicted vs measured latency (and top-1) of every exported pick, the shipped one first, named ``best``."""
    picks, measured = verification.picks, verification.measured
    genes = setup.space.to_genes([p.config for p in picks.values()])
    pred_ms = dict(zip(picks, setup.lat.predict_genes(genes)))
    pred_acc = dict(zip(picks, setup.acc.predict_genes(genes)))
    points = []
    for key, pick in picks.items():
        m = measured[key]
        row = {"name": "best" if key == verification.shipped["name"] else key, "try": key,
               "config": pick.config.to_string(), "predicted_latency_ms": float(pred_ms[key]),
               "measured_latency_ms": m.ms, "measured_interval_ms": list(m.interval_ms), "measured_wall_ms": m.wall_ms,
               "predicted_accuracy": float(pred_acc[key]),
               "ratio": float(m.ms / pred_ms[key]) if pred_ms[key] else None}
        if pick.top1 is not None:
            row["measured_top1"] = pick.top1
        points.append(row)
    points.sort(key=lambda p: p["name"] != "best")
    return points


def shipped_figures(setup: SearchSetup, verification: Verification) -> tuple[dict[str, float], dict[str, Any]]:
    """(predicted, measured) figures of the shipped pick."""
    pick = verification.shipped_pick
    genes = setup.space.to_genes([pick.config])
    predicted = {"accuracy": float(setup.acc.predict_genes(genes)[0]),
                 "latency_ms": float(setup.lat.predict_genes(genes)[0]),
                 "macs_m": float(setup.macs.predict_genes(genes)[0])}
    m = verification.measured[verification.shipped["name"]]
    measured: dict[str, Any] = {"latency_ms": m.ms, "latency_interval_ms": list(m.interval_ms), "wall_ms": m.wall_ms}
    if pick.top1 is not None:
        measured["top1"] = pick.top1
    return predicted, measured


def budget_section(outcome: SearchOutcome, verification: Verification, macs_budget: float | None
                   ) -> dict[str, Any]:
    """The report's ``budget``: the limit (``latency_ms``), the verdict, the shipped measurement and every try."""
    m = verification.measured[verification.shipped["name"]]
    return {"latency_ms": verification.limit, "verified": verification.verified, "measured_ms": m.ms,
            "interval": list(m.interval_ms), "wall_ms": m.wall_ms, "reference": verification.reference_label,
            "macs_m": macs_budget, "feasible_latency_ms": list(outcome.feasible), "tries": list(verification.tries),
            "message": budget_message(verification)}


def write_deploy_report(out: Path, *, name: str, profile: Any, request: DeployRequest, data: Any,
                        setup: SearchSetup, outcome: SearchOutcome, table: ResolvedTable,
                        verification: Verification, timings: dict[str, float]) -> DeployResult:
    """Publish ``model/`` and write the run report; returns the `DeployResult`."""
    from ofa_deploy.report import write_run_report

    publish_model(verification.shipped_pick, out / "model")
    predicted, measured = shipped_figures(setup, verification)
    ship_genes = setup.space.to_genes([verification.shipped_pick.config])
    devices = [{"device": o.target, "predicted_ms": float(o.predict_genes(ship_genes)[0]),
                "budget_ms": setup.device_budgets.get(o.target), "table": other.source,
                "verdict": "predicted only: this device is not here to measure on"}
               for o, other in zip(setup.extras, setup.others)]
    points = pick_points(setup, verification)
    budget = budget_section(outcome, verification, request.macs_budget)
    cfg = verification.shipped_pick.config
    report = {
        "supernet": name, "space": setup.space.name, "profile": profile.to_dict(), "request": request.to_dict(),
        "budget": budget,
        "other_devices": devices,
        "searched_resolutions": list(setup.space.resolutions),
        "data": data.describe() if data is not None else None,
        "best": {"config": cfg.to_dict(), "config_string": cfg.to_string(), "try": verification.shipped["name"],
                 "predicted": predicted, "measured": measured},
        "predicted_vs_measured": {"points": points, **agreement(points)},
        "search": {k: v for k, v in outcome.result.to_dict().items() if k not in ("best_config",)},
        "pareto": outcome.front.to_dict() if outcome.front is not None else None,
        "lut": table.info,
        "export": {k: v.report for k, v in verification.picks.items()},
        "timing": verification.timing,
        "timings_s": timings,
    }
    files = write_run_report(out, report)
    files["model"] = str(out / "model")
    return DeployResult(out_dir=out, config=cfg, predicted=predicted, measured=measured, budget=budget,
                        report=report, files=files)


def agreement(points: list[dict[str, Any]]) -> dict[str, Any]:
    """How well the table predicted the measured picks: median ratio, share within ±10% / ±25%, Spearman."""
    ratios = np.array([p["ratio"] for p in points if p["ratio"]], dtype=float)
    if ratios.size == 0:
        return {}
    out: dict[str, Any] = {"n": int(ratios.size), "median_ratio": float(np.median(ratios)),
                           "within_10pct": float(np.mean(np.abs(ratios - 1) <= 0.10)),
                           "within_25pct": float(np.mean(np.abs(ratios - 1) <= 0.25))}
    if ratios.size >= 3:
        from scipy.stats import spearmanr

        pred = [p["predicted_latency_ms"] for p in points]
        meas = [p["measured_latency_ms"] for p in points]
        out["spearman"] = float(spearmanr(pred, meas).statistic)
    return out


__all__ = ["agreement", "budget_section", "pick_points", "publish_model", "shipped_figures", "write_deploy_report"]
