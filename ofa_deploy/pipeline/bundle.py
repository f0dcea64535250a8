"""The fleet's bundle: ``manifest.json`` (for machines), ``summary.md`` (one row per device, for people) and
``fleet.png`` (each device's predicted front, budget, pick, and predicted → measured latency)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ofa_deploy.fileio import atomic_path, atomic_write_json, atomic_write_text, file_sha256


@dataclass
class FleetResult:
    """The bundle: its manifest (also ``manifest.json``), the per-device records and the files written."""

    out_dir: Path
    manifest: dict[str, Any]
    files: dict[str, str]

    @property
    def devices(self) -> list[dict[str, Any]]:
        return self.manifest["devices"]

    @property
    def verified(self) -> bool:
        return all(d["verified"] for d in self.devices)

    def not_verified(self) -> list[str]:
        return [d["name"] for d in self.devices if not d["verified"]]


MANIFEST_FORMAT = "ofa-deploy-fleet"
MANIFEST_VERSION = 1


def device_record(device: Any, result: Any, setup: Any, outcome: Any, table: Any, verification: Any,
                  root: Path) -> dict[str, Any]:
    """A finished device's manifest row (paths relative to the bundle `root`)."""
    pick = verification.shipped_pick
    genes = setup.space.to_genes([pick.config])
    published = result.out_dir / ("model" if pick.format == "onnx" else f"model_{pick.format}")
    artifact = published / pick.timed.name
    m = verification.measured[verification.shipped["name"]]
    verified = verification.verified
    limit = verification.limit
    if verified:
        verdict = (f"verified: measured {m.ms:.4g} ms (95% interval up to {m.interval_ms[1]:.4g}) under its "
                   f"{limit:.4g} ms budget")
    else:
        verdict = (f"NOT verified: the closest of {len(verification.tries)} pick(s) measured {m.ms:.4g} ms (95% "
                   f"interval up to {m.interval_ms[1]:.4g}) against its {limit:.4g} ms budget")
    provenance = getattr(table.table, "provenance", None)
    lat_label = setup.lat.label
    front = [[row[lat_label], row["accuracy"]] for row in outcome.front.to_dict()["front"]] \
        if outcome.front is not None else []
    return {
        "name": device.name, "status": "verified" if verified else "not verified", "verified": verified,
        "reason": None, "verdict": verdict, **device.entry(),
        "subnet": pick.config.to_string(), "config": pick.config.to_dict(),
        "macs_m": float(setup.macs.predict_genes(genes)[0]), "params_m": float(setup.params.predict_genes(genes)[0]),
        "predicted": {"top1": result.predicted["accuracy"], "latency_ms": result.predicted["latency_ms"]},
        "measured": {"top1": pick.top1, "latency_ms": m.ms, "interval_ms": list(m.interval_ms), "wall_ms": m.wall_ms,
                     "converged": m.converged, "rounds": m.rounds},
        "artifact": {"path": str(artifact.relative_to(root)), "format": pick.format, "sha256": file_sha256(artifact)},
        "table": {**{k: v for k, v in table.info.items() if k not in ("anchor", "calibration")},
                  "adapted_from": table.info.get("adapted_from"),
                  "provenance": provenance.to_dict() if provenance is not None else None},
        "tries": [{k: t[k] for k in ("name", "config", "predicted_ms", "measured_ms", "measured_interval_ms",
                                     "verified")} for t in verification.tries],
        "front": front, "feasible_latency_ms": list(outcome.feasible),
        "dir": str(result.out_dir.relative_to(root)), "report": str((result.out_dir / "report.json").relative_to(root)),
        "timings_s": {k: round(v, 3) for k, v in result.report["timings_s"].items()},
    }


def write_bundle(out: Path, spec: Any, records: list[dict[str, Any]], *, job_info: dict[str, Any]) -> Any:
    """Write ``manifest.json``, ``summary.md`` and ``fleet.png`` into `out`; returns the `FleetResult`."""
    shared = {k: sum(r.get("shared", {}).get(k, 0) for r in records) for k in ("requests", "exported", "reused")}
    shared["export_seconds"] = round(sum(r.get("shared", {}).get("export_seconds", 0.0) for r in records), 3)
    mean = shared["export_seconds"] / shared["exported"] if shared["exported"] else 0.0
    shared["seconds_saved_estimate"] = round(mean * shared["reused"], 3)
    shared["distinct_subnets"] = len({r["subnet"] for r in records if r.get("subnet")})
    files = {"manifest": str(out / "manifest.json"), "summary": str(out / "summary.md"),
             "plot": str(out / "fleet.png")}
    manifest = {"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, "source": spec.source, **job_info,
                "verified": all(r["verified"] for r in records), "shared": shared, "devices": records,
                "files": {k: Path(v).name for k, v in files.items()}}
    atomic_write_json(out / "manifest.json", manifest)
    atomic_write_text(out / "summary.md", summary_markdown(manifest))
    plot_fleet(manifest, out / "fleet.png")
    return FleetResult(out_dir=out, manifest=manifest, files=files)


def _f(x: Any, digits: int = 4) -> str:
    return "n/a" if x is None else f"{x:.{digits}g}" if isinstance(x, float) else str(x)


def summary_rows(manifest: dict[str, Any]) -> list[str]:
    """The per-device table (markdown), one row per device."""
    rows = ["| device | profile | runner | format | budget ms | pick | MACs (M) | predicted ms | measured ms (95% "
            "interval) | top-1 predicted / measured (%) | verdict |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in manifest["devices"]:
        budget = r["budget"]
        caps = "".join(f", {k[:-2]} ≤ {v:g}M" for k, v in budget.items() if k != "latency_ms" and v is not None)
        runner = r["runner"].get("runner", "local")
        if r["status"] == "failed":
            rows.append(f"| {r['name']} | {r['profile']} | {runner} | {r['format']} | {budget['latency_ms']:g}{caps} "
                        f"| | | | | | **{r['verdict']}** |")
            continue
        m, p = r["measured"], r["predicted"]
        rows.append(f"| {r['name']} | {r['profile']} | {runner} | {r['format']} | {budget['latency_ms']:g}{caps} | "
                    f"`{r['subnet']}` | {_f(r['macs_m'])} | {_f(p['latency_ms'])} | {_f(m['latency_ms'])} "
                    f"({_f(m['interval_ms'][0])}..{_f(m['interval_ms'][1])}) | {_f(p['top1'], 3)} / "
                    f"{_f(m['top1'], 3)} | **{r['verdict']}** |")
    return rows


def summary_markdown(manifest: dict[str, Any]) -> str:
    devices = manifest["devices"]
    ok = [d["name"] for d in devices if d["verified"]]
    bad = [d["name"] for d in devices if not d["verified"]]
    head = (f"**All {len(devices)} devices verified under their budgets.**" if not bad else
            f"**{len(ok)} of {len(devices)} devices verified; not verified: {', '.join(bad)}.**")
    s = manifest["shared"]
    lines = [f"# Fleet deployment of {manifest['supernet']}", "", head, "", *summary_rows(manifest), "",
             "Latencies are measured on each device through its runner with the anchor-paired protocol, at its "
             "table's reference speed (the ratio to the anchor times the anchor time stored with the table); a "
             "device is verified when the upper end of the 95% interval is within its budget. Each device's "
             "directory holds its model, export report and full deploy report.", "",
             f"Shared work: {s['distinct_subnets']} distinct shipped subnet(s); {s['requests']} subnet export(s) "
             f"asked for, {s['exported']} done (extract, BN recalibration, ONNX, top-1), {s['reused']} reused "
             f"(about {s['seconds_saved_estimate']:.1f} s saved); the supernet and the predictor were loaded once.",
             ""]
    if manifest.get("resumed"):
        lines += [f"Reused from an earlier run: {', '.join(manifest['resumed'])}.", ""]
    lines += [f"Wall time: {manifest['seconds']:.1f} s (executor: {manifest['executor']}).", ""]
    return "\n".join(lines)


def plot_fleet(manifest: dict[str, Any], path: Path) -> None:
    """One panel per device: its predicted front, its budget, its pick, and the pick's predicted → measured
    latency (with the 95% interval)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    devices = manifest["devices"]
    fig, axes = plt.subplots(1, len(devices), figsize=(4.4 * len(devices), 4.0), dpi=110, squeeze=False)
    for ax, r in zip(axes[0], devices):
        ax.set_title(f"{r['name']} ({r['profile']}, {r['format']})", fontsize=9)
        ax.grid(alpha=0.3)
        ax.set_xlabel("latency (ms)")
        ax.set_ylabel("predicted top-1 (%)")
        budget = r["budget"]["latency_ms"]
        ax.axvline(budget, color="#c44", ls="--", lw=1, label=f"budget {budget:g} ms")
        if r["status"] == "failed":
            ax.text(0.5, 0.5, "FAILED\n" + _wrap(r["reason"], 40), transform=ax.transAxes, ha="center", va="center",
                    color="#c00", fontsize=8)
            ax.legend(fontsize=7, loc="lower right")
            continue
        front = sorted(r.get("front") or [])
        if front:
            ax.plot([x for x, _ in front], [y for _, y in front], ".", color="#abb", ms=4, label="predicted front")
        p, m = r["predicted"], r["measured"]
        color = "#2a7" if r["verified"] else "#c00"
        ax.plot(p["latency_ms"], p["top1"], "*", ms=13, color="#d80", label="pick (predicted)")
        ax.annotate("", xy=(m["latency_ms"], p["top1"]), xytext=(p["latency_ms"], p["top1"]),
                    arrowprops={"arrowstyle": "->", "color": color, "lw": 1.2})
        lo, hi = m["interval_ms"]
        ax.errorbar([m["latency_ms"]], [p["top1"]], xerr=[[m["latency_ms"] - lo], [hi - m["latency_ms"]]], fmt="x",
                    color=color, ms=8, capsize=3, label="measured (95% interval)")
        ax.text(0.02, 0.97, "verified" if r["verified"] else "NOT verified", transform=ax.transAxes, va="top",
                color=color, fontsize=9, fontweight="bold")
        ax.legend(fontsize=7, loc="lower right")
    fig.suptitle(f"{manifest['supernet']}: one subnet per device", fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def _wrap(text: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width)[:6])


__all__ = ["FleetResult", "device_record", "plot_fleet", "summary_markdown", "write_bundle"]
