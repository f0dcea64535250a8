#!/usr/bin/env python3
"""How well a latency table predicts whole subnets on this machine, measured with the anchor-paired protocol.

    .venv/bin/python benchmarks/bench_fidelity.py --quick                       # demo space, ~3 minutes
    .venv/bin/python benchmarks/bench_fidelity.py --space ofa_mbv3_w12 -n 50    # the committed host table

Builds the table (or loads `--lut`, or the profile's stored table for the space), measures N random subnets
against the table's anchor model until each converges, and prints side by side: share within ±5% and ±10%
for the calibrated prediction, the raw layer sum, and the raw sum after one global scale; Spearman, Kendall
and bias; and the protocol's own test-retest noise floor (median of the even rounds vs the odd rounds of the
same run). Every figure is a ratio measured in this run; the anchor's absolute time (printed) moves with the
machine. The last line is one JSON object with all figures.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

ROWS = (("calibrated", "metrics"), ("raw_sum", "raw_metrics"), ("raw_global_scale", "scaled_metrics"),
        ("noise_floor", "noise_floor"))
COLUMNS = ("within_5pct", "within_10pct", "spearman", "kendall", "mean_pct_error", "mean_abs_pct_error")


def load_space(name: str):
    if name == "demo":
        from ofa_deploy.demo import DemoRecipe, create_demo_supernet

        return create_demo_supernet(DemoRecipe()).space
    from ofa_deploy.spaces import get_space

    return get_space(name)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--space", default="demo", help="'demo' (the demo's space) or a registry name")
    ap.add_argument("--profile", default="ort-cpu-1t")
    ap.add_argument("--lut", default=None, help="table to check (default: build one, or the stored table)")
    ap.add_argument("--resolutions", default=None, help="comma-separated (default: all of the space's)")
    ap.add_argument("-n", "--subnets", type=int, default=30)
    ap.add_argument("--min-rounds", type=int, default=6, help="paired rounds per subnet at least (noise floor)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rebuild", action="store_true", help="build a fresh table even if one is cached")
    ap.add_argument("--quick", action="store_true", help="demo space, 40 subnets: a few minutes at most")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    from ofa_deploy.profiling.builder import build_lut
    from ofa_deploy.profiling.hardware import HardwareProfile
    from ofa_deploy.profiling.lut import find_table
    from ofa_deploy.profiling.timing.protocol import ProtocolSettings
    from ofa_deploy.profiling.validate import validate_lut
    from ofa_deploy.tables.latency import LatencyTable

    if args.quick:
        args.space, args.subnets = "demo", 40
    profile = HardwareProfile.load(args.profile)
    space = load_space(args.space)
    resolutions = [int(r) for r in args.resolutions.split(",")] if args.resolutions else list(space.resolutions)
    t0 = time.perf_counter()
    build_s = None
    if args.lut:
        table = LatencyTable.load(args.lut)
    elif args.space != "demo" and not args.rebuild:
        table = LatencyTable.load(find_table(profile.name, space.name))
    else:
        out = Path(tempfile.gettempdir()) / "ofa-deploy-fidelity" / profile.name / f"{args.space}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        table = build_lut(space, resolutions, profile, out, progress=False, resume=not args.rebuild).table
        build_s = time.perf_counter() - t0
    protocol = ProtocolSettings.from_profile(profile, min_rounds=args.min_rounds)
    report = validate_lut(space, table, profile, n=args.subnets, seed=args.seed, resolutions=resolutions,
                          protocol=protocol, progress=False)

    print(f"{args.space} on {profile.name} ({report.host['here'].get('cpu_model')}): {args.subnets} random subnets, "
          f"{report.converged} converged to ±{protocol.target:.0%}, measured at the {report.reference}")
    print(f"anchor {report.anchor['config']}: {report.anchor['run_ms']:.4g} ms now, "
          f"{report.anchor['table_ms'] or float('nan'):.4g} ms in the table; anchor swing in this run "
          f"{report.anchor['swing']:.2f}x")
    print(f"{'':18}" + "".join(f"{c:>19}" for c in COLUMNS))
    figures = {}
    for label, attr in ROWS:
        m = getattr(report, attr)
        figures[label] = {c: round(float(m[c]), 4) for c in COLUMNS}
        if "scale" in m:
            figures[label]["scale"] = round(float(m["scale"]), 4)
        print(f"{label:18}" + "".join(f"{m[c]:>19.3f}" for c in COLUMNS))
    summary = {"space": args.space, "profile": profile.name, "cpu": report.host["here"].get("cpu_model"),
               "n": args.subnets, "converged": report.converged, "build_s": build_s,
               "validation_s": round(report.seconds, 1), "anchor_swing": report.anchor["swing"], **figures}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
