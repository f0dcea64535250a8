"""Run reports of `ofa_deploy.pipeline.deploy`: report.json, summary.md and pareto.png."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ofa_deploy.fileio import atomic_path, atomic_write_text


def write_run_report(out_dir: Path, report: dict[str, Any]) -> dict[str, str]:
    """Write ``report.json``, ``summary.md`` and ``pareto.png`` into `out_dir`; return their paths."""
    out_dir = Path(out_dir)
    files = {"report": str(out_dir / "report.json"), "summary": str(out_dir / "summary.md"),
             "pareto_plot": str(out_dir / "pareto.png")}
    report = {**report, "files": files}
    atomic_write_text(out_dir / "report.json", json.dumps(report, indent=2, default=str))
    atomic_write_text(out_dir / "summary.md", summary_markdown(report))
    plot_pareto(report, out_dir / "pareto.png")
    return files


def _f(x: Any, digits: int = 4) -> str:
    return "n/a" if x is None else f"{x:.{digits}g}" if isinstance(x, float) else str(x)


def summary_markdown(r: dict[str, Any]) -> str:
    """A readable summary of a deploy run."""
    best, budget, pvm = r["best"], r["budget"], r["predicted_vs_measured"]
    p, m = best["predicted"], best["measured"]
    prof = r["profile"]
    verdict = "Verified under budget" if budget.get("verified") else "NOT verified under budget"
    interval = m.get("latency_interval_ms") or [None, None]
    lines = [
        f"# Deployment of {r['supernet']} on {prof['name']}",
        "",
        f"**{verdict}.** {budget.get('message', '')}.",
        "",
        f"Budget: **{_f(budget['latency_ms'])} ms** on the target "
        f"(predicted feasible {_f(budget['feasible_latency_ms'][0])}..{_f(budget['feasible_latency_ms'][1])} ms)"
        + (f", {_f(budget['macs_m'])}M MACs" if budget.get("macs_m") is not None else "") + ". "
        f"Measured latencies are at {budget.get('reference', 'the wall clock of this run')}: the measured ratio to "
        "the anchor model times the anchor's time stored with the latency table, so a momentarily slower or "
        "faster machine does not change the verdict; the wall-clock figure of this run is shown beside it.",
        "",
        "## Chosen subnet",
        "",
        f"`{best['config_string']}`",
        "",
        "| | predicted | measured |",
        "|---|---|---|",
        f"| latency (ms) | {_f(p['latency_ms'])} | {_f(m['latency_ms'])} "
        f"(95% interval {_f(interval[0])}..{_f(interval[1])}; wall clock {_f(m.get('wall_ms'))}) |",
        f"| top-1 (%) | {_f(p['accuracy'])} | {_f(m.get('top1'))} |",
        f"| MACs (M) | {_f(p['macs_m'])} | |",
        "",
        f"Measured on `{prof['name']}` ({prof.get('backend')}, {prof.get('intra_op_threads')} thread(s), batch "
        f"{prof.get('batch_size')}), interleaved rounds; the exported model is in `model/`.",
        "",
        "## Picks measured against the budget",
        "",
        "| try | config | predicted budget ms | predicted ms | measured ms (95% interval) | verdict |",
        "|---|---|---|---|---|---|",
        *[f"| {t['name']} | `{t['config']}` | {_f(t['predicted_budget_ms'])} | {_f(t['predicted_ms'])} | "
          f"{_f(t['measured_ms'])} ({_f(t['measured_interval_ms'][0])}..{_f(t['measured_interval_ms'][1])}) | "
          f"{'verified' if t['verified'] else 'over budget'} |" for t in budget.get("tries", [])],
        "",
        "## Predicted vs measured latency",
        "",
        "| model | config | predicted ms | measured ms | measured / predicted | predicted top-1 | measured top-1 |",
        "|---|---|---|---|---|---|---|",
    ]
    for pt in pvm["points"]:
        lines.append(f"| {pt['name']} | `{pt['config']}` | {_f(pt['predicted_latency_ms'])} | "
                     f"{_f(pt['measured_latency_ms'])} | {_f(pt['ratio'], 3)} | {_f(pt['predicted_accuracy'])} | "
                     f"{_f(pt.get('measured_top1'))} |")
    if pvm.get("n"):
        lines += ["", f"Median measured/predicted ratio {_f(pvm['median_ratio'], 3)}; "
                      f"{pvm['within_10pct']:.0%} within ±10%, {pvm['within_25pct']:.0%} within ±25%"
                      + (f"; Spearman {pvm['spearman']:.2f}" if "spearman" in pvm else "") + "."]
    if r.get("other_devices"):
        lines += ["", "## Other devices (predicted only)", "",
                  "These tables constrained the search; no such device is here, so their figures are predictions.",
                  "", "| device | predicted ms | budget ms | table |", "|---|---|---|---|"]
        lines += [f"| {d['device']} | {_f(d['predicted_ms'])} | {_f(d.get('budget_ms'))} | `{d['table']}` |"
                  for d in r["other_devices"]]
    if r.get("data"):
        dd = r["data"]
        lines += ["", f"BN recalibrated on {dd.get('n_calibration')} images of `{dd.get('root', dd.get('name'))}`; "
                      f"measured top-1 on its {dd.get('n_holdout')}-image holdout."]
    s = r["search"]
    lines += ["", "## Search", "",
              f"Evolution: {s['settings']['generations']} generations × {s['settings']['population_size']} "
              f"(seed {s['seed']}) in {_f(s['timings']['total_s'], 3)} s."]
    if r.get("pareto"):
        lines.append(f"NSGA-II front: {len(r['pareto']['front'])} subnets (see `pareto.png`).")
    lut = r.get("lut") or {}
    lines += [f"Latency table: `{lut.get('path')}` ({lut.get('entries')} layers"
              + (", built for this run" if lut.get("built") else "") + ")."]
    t = r["timings_s"]
    lines += ["", "## Time", "", " · ".join(f"{k[:-2]} {v:.1f} s" for k, v in t.items()), ""]
    return "\n".join(lines)


def plot_front(front: dict[str, Any], path: Path, budgets: dict[str, float] | None = None) -> None:
    """A Pareto front (`ParetoFront.to_dict()`): predicted accuracy against each latency objective, one panel per
    device, with its budget."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    objs = {o["label"]: o for o in front["objectives"]}
    acc = next((o for o in front["objectives"] if o["name"] == "accuracy"), None)
    xs = [o for o in front["objectives"] if o["name"] != "accuracy"] if acc else front["objectives"][1:]
    y = acc or front["objectives"][0]
    fig, axes = plt.subplots(1, len(xs), figsize=(4.2 * len(xs), 3.8), dpi=110, squeeze=False)
    for ax, o in zip(axes[0], xs):
        ax.plot([row[o["label"]] for row in front["front"]], [row[y["label"]] for row in front["front"]], "o", ms=4,
                color="#357")
        limit = (budgets or {}).get(o["label"])
        if limit is not None:
            ax.axvline(limit, color="#c44", ls="--", lw=1, label=f"budget {limit:g} {o['unit']}")
            ax.legend(fontsize=8, loc="lower right")
        ax.set_xlabel(f"{o['label']} ({o['unit']})" if o["unit"] else o["label"])
        ax.set_ylabel(f"predicted {y['label']} ({objs[y['label']]['unit']})")
        ax.grid(alpha=0.3)
    fig.suptitle(f"{front['space']}: Pareto front, {len(front['front'])} subnets", fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp)
    plt.close(fig)


def plot_pareto(r: dict[str, Any], path: Path) -> None:
    """Predicted accuracy vs latency: the front, the budget, the chosen subnet, and measured latencies."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    front = r.get("pareto")
    if front and front.get("front"):
        lat_key = next(o["label"] for o in front["objectives"] if o["name"] == "latency")
        pts = sorted((row[lat_key], row["accuracy"]) for row in front["front"])
        ax.plot([x for x, _ in pts], [y for _, y in pts], ".", color="#abb", label="NSGA-II front (acc, latency, MACs)")
        best_so_far, frontier = float("-inf"), []
        for x, y in pts:  # the accuracy-latency frontier among them
            if y > best_so_far:
                frontier.append((x, y))
                best_so_far = y
        ax.step([x for x, _ in frontier], [y for _, y in frontier], where="post", color="#577", lw=1.2,
                label="accuracy-latency frontier")
    budget = r["budget"]
    ax.axvline(budget["latency_ms"], color="#c44", ls="--", lw=1, label="latency budget")
    if not budget.get("verified", True):
        ax.text(0.02, 0.96, "NOT verified under budget", transform=ax.transAxes, color="#c00", fontsize=11,
                fontweight="bold", va="top")
    for pt in r["predicted_vs_measured"]["points"]:
        best = pt["name"] == "best"
        ax.plot(pt["predicted_latency_ms"], pt["predicted_accuracy"], "*" if best else "o", ms=12 if best else 6,
                color="#d80" if best else "#357", label="chosen (predicted)" if best else None)
        ax.annotate("", xy=(pt["measured_latency_ms"], pt["predicted_accuracy"]),
                    xytext=(pt["predicted_latency_ms"], pt["predicted_accuracy"]),
                    arrowprops={"arrowstyle": "->", "color": "#d80" if best else "#357", "lw": 1})
        over = pt["measured_interval_ms"][1] > budget["latency_ms"] if pt.get("measured_interval_ms") else False
        ax.plot(pt["measured_latency_ms"], pt["predicted_accuracy"], "x", color="#c00" if over else
                "#d80" if best else "#357", ms=9 if over else 6,
                label="measured latency" if best else "measured over budget" if over else None)
    ax.set_xlabel(f"latency (ms) on {r['profile']['name']}")
    ax.set_ylabel("predicted top-1 (%)")
    ax.set_title(f"{r['supernet']}: accuracy vs latency")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp)
    plt.close(fig)
