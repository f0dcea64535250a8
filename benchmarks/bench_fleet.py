"""Fleet deploy vs three single deploys, in one run: the demo fleet (`ofa-deploy demo --fleet`) against the same
three devices deployed one after another, each on its own.

    .venv/bin/python benchmarks/bench_fleet.py               # 2 rounds, the demo's full recipe (cached)
    .venv/bin/python benchmarks/bench_fleet.py --quick --rounds 1

Each round runs the fleet (one `deploy_fleet` over three devices: supernet and predictor loaded once, each
distinct subnet extracted, BN-recalibrated, exported and evaluated once) and the three singles (for each device
alone: supernet and predictor loaded, a one-device fleet in its own directory, nothing shared), alternating
which goes first. The devices' tables are built (or reused from the demo cache) before timing. Wall-clock
seconds drift with this VM's speed, so the figure to read is the ratio fleet / singles within a round. The
last line is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from ofa_deploy.demo import DEMO_NAME, QUICK_RECIPE, DemoRecipe, demo_fleet_file, load_demo_data, prepare_demo_assets
from ofa_deploy.errors import BudgetNotVerifiedError
from ofa_deploy.pipeline.fleet import deploy_fleet
from ofa_deploy.pipeline.fleet_spec import load_fleet


def _fleet(spec, out, assets, data):
    t0 = time.perf_counter()
    net, predictor = assets.load_supernet(), assets.load_predictor()
    load_s = time.perf_counter() - t0
    try:
        result = deploy_fleet(spec, out_dir=out, supernet=net, predictor=predictor, data=data, supernet_name=DEMO_NAME)
    except BudgetNotVerifiedError as exc:
        result = exc.report
    return result, time.perf_counter() - t0, load_s


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="the quick demo recipe and search")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    root = Path(args.out or tempfile.mkdtemp(prefix="ofa-deploy-fleet-bench-"))
    assets = prepare_demo_assets(quick=args.quick)
    recipe = QUICK_RECIPE if args.quick else DemoRecipe()
    data = load_demo_data(recipe)
    spec = load_fleet(demo_fleet_file(assets, root, quick=args.quick))
    singles_specs = [spec.__class__(devices=(d,), settings=spec.settings, source=f"{spec.source}#{d.name}")
                     for d in spec.devices]
    rows = []
    for r in range(args.rounds):
        order = ["fleet", "singles"] if r % 2 == 0 else ["singles", "fleet"]
        row: dict = {"round": r, "order": order}
        for what in order:
            if what == "fleet":
                result, seconds, load_s = _fleet(spec, root / f"r{r}-fleet", assets, data)
                row.update(fleet_s=seconds, fleet_load_s=load_s, fleet_shared=result.manifest["shared"],
                           fleet=result.manifest["devices"])
            else:
                total, loads, picks = 0.0, 0.0, []
                for single in singles_specs:
                    result, seconds, load_s = _fleet(single, root / f"r{r}-single-{single.devices[0].name}", assets,
                                                     data)
                    total += seconds
                    loads += load_s
                    picks.append(result.manifest["devices"][0])
                row.update(singles_s=total, singles_load_s=loads, singles=picks)
        row["ratio"] = row["fleet_s"] / row["singles_s"]
        row["exports"] = {"fleet": row["fleet_shared"]["exported"],
                          "singles": sum(d.get("shared", {}).get("exported", 0) for d in row["singles"])}
        rows.append(row)
        print(f"round {r} ({' then '.join(order)}): fleet {row['fleet_s']:.1f} s, three singles "
              f"{row['singles_s']:.1f} s, fleet/singles {row['ratio']:.3f}; fleet exported "
              f"{row['fleet_shared']['exported']} of {row['fleet_shared']['requests']} subnet requests "
              f"({row['fleet_shared']['reused']} reused, about {row['fleet_shared']['seconds_saved_estimate']:.1f} s); "
              f"subnet exports: fleet {row['exports']['fleet']}, singles {row['exports']['singles']} (retries differ "
              "with the measurements)", flush=True)
    last = rows[-1]["fleet"]
    print("\ndemo fleet (last round):")
    for d in last:
        m, p = d.get("measured", {}), d.get("predicted", {})
        print(f"  {d['name']:<12} budget {d['budget']['latency_ms']:.4g} ms  pick {d.get('subnet')}  predicted "
              f"{p.get('latency_ms', float('nan')):.4g} ms -> measured {m.get('latency_ms', float('nan')):.4g} ms "
              f"(95% {m.get('interval_ms', [0, 0])[0]:.4g}..{m.get('interval_ms', [0, 0])[1]:.4g})  {d['verdict']}")
    same = all(a.get("subnet") == b.get("subnet") for row in rows for a, b in zip(row["fleet"], row["singles"]))
    summary = {
        "bench": "fleet", "rounds": args.rounds, "quick": args.quick,
        "fleet_over_singles_median": statistics.median(r["ratio"] for r in rows),
        "ratios": [round(r["ratio"], 4) for r in rows],
        "fleet_s": [round(r["fleet_s"], 2) for r in rows], "singles_s": [round(r["singles_s"], 2) for r in rows],
        "load_s": {"fleet": [round(r["fleet_load_s"], 3) for r in rows],
                   "singles": [round(r["singles_load_s"], 3) for r in rows]},
        "exports": [r["exports"] for r in rows],
        "seconds_per_export": {"fleet": [round(r["fleet_s"] / max(r["exports"]["fleet"], 1), 2) for r in rows],
                               "singles": [round(r["singles_s"] / max(r["exports"]["singles"], 1), 2) for r in rows]},
        "shared": rows[-1]["fleet_shared"], "same_picks_fleet_and_singles": same,
        "devices": [{"name": d["name"], "budget_ms": d["budget"]["latency_ms"], "pick": d.get("subnet"),
                     "predicted_ms": d.get("predicted", {}).get("latency_ms"),
                     "measured_ms": d.get("measured", {}).get("latency_ms"),
                     "interval_ms": d.get("measured", {}).get("interval_ms"), "verified": d["verified"]}
                    for d in last],
        "out": str(root),
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
