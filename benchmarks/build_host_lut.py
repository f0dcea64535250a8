#!/usr/bin/env python3
"""Build and validate the committed latency table of this machine: OFA-MBv3 w1.2 under ORT CPU, 1 thread.

    .venv/bin/python benchmarks/build_host_lut.py            # full run: 5 resolutions, 50 validation subnets
    .venv/bin/python benchmarks/build_host_lut.py --quick    # end-to-end smoke run: 1 resolution, few rounds

Why ofa_mbv3_w12: it is the space of OFA's released Note10 tables and of the released MBv3 accuracy predictor
(OFA tutorial), so searches can pair this table with those artifacts and compare with the Note10 numbers.

The full run writes the packaged table ``ofa_deploy/hardware_profiles/luts/<profile>/<space>.json`` (+ ``.validation.json``) and
prints the build time and the validation figures, all with the anchor-paired protocol: share of random subnets
within ±5% / ±10% (calibrated, raw, and after one global scale), Spearman, Kendall, bias, and the protocol's
test-retest noise floor (even vs odd rounds). The build is resumable: rerun the same command after an
interruption. Quick runs write under the system temp directory unless --out is given.

Layers are timed in context (ORT profiler inside whole subnets, see ofa_deploy/profiling/incontext.py): the 9
covering subnets per resolution plus, by default, 9 seeded random subnets per resolution, so each layer is seen
in mixed contexts too (quick runs here: mean error -7% without them, -3% with them).
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--space", default="ofa_mbv3_w12")
    ap.add_argument("--profile", default="ort-cpu-1t")
    ap.add_argument("--resolutions", default="160,176,192,208,224")
    ap.add_argument("-n", "--subnets", type=int, default=50, help="random subnets for validation")
    ap.add_argument("--calibration-subnets", type=int, default=30,
                    help="random whole subnets timed during the build for the table's calibration")
    ap.add_argument("--method", default="auto", choices=["auto", "in_context", "isolated"])
    ap.add_argument("--context-subnets", type=int, default=9,
                    help="in_context: extra random subnets per resolution profiled besides the covering ones")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--warmup", type=int, default=None)
    ap.add_argument("--out", default=None, help="LUT path (default: the repository's table for profile + space)")
    ap.add_argument("--no-resume", action="store_true", help="discard earlier measurements of this build")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: resolution 160 only, 2 rounds x 8 repeats, 8 subnets, output in the temp dir")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")

    from ofa_deploy.profiling.builder import build_lut
    from ofa_deploy.profiling.models import model_cache_dir
    from ofa_deploy.profiling.hardware import HardwareProfile
    from ofa_deploy.profiling.hardware import PACKAGED_PROFILE_DIR
    from ofa_deploy.profiling.lut import table_path
    from ofa_deploy.profiling.timing.timer import TimerSettings
    from ofa_deploy.profiling.validate import validate_lut
    from ofa_deploy.spaces import get_space

    profile = HardwareProfile.load(args.profile)
    space = get_space(args.space)
    resolutions = [int(r) for r in args.resolutions.split(",")]
    overrides = {"rounds": args.rounds, "repeats": args.repeats, "warmup": args.warmup}
    if args.quick:
        resolutions = resolutions[:1]
        args.subnets = min(args.subnets, 8)
        overrides = {"rounds": args.rounds or 2, "repeats": args.repeats or 8, "warmup": args.warmup or 2}
    timer = TimerSettings.from_profile(profile, **overrides)
    if args.out:
        out = Path(args.out)
    elif args.quick:
        out = Path(tempfile.gettempdir()) / "ofa-deploy-quick" / profile.name / f"{space.name}.json"
    else:
        out = table_path(profile.name, space.name, root=PACKAGED_PROFILE_DIR)
    out.parent.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    build = build_lut(space, resolutions, profile, out, timer=timer, resume=not args.no_resume, method=args.method,
                      context_subnets=args.context_subnets, calibration_subnets=args.calibration_subnets)
    build_s = time.perf_counter() - t0
    val_path = out.with_name(out.stem + ".validation.json")
    report = validate_lut(space, build.table, profile, n=args.subnets, seed=args.seed, resolutions=resolutions,
                          work_dir=model_cache_dir(), out_path=val_path)
    summary = {
        "space": space.name, "profile": profile.name, "resolutions": resolutions, "timer": timer.to_dict(),
        "lut": str(out), "validation": str(val_path), "layers": len(build.table),
        "method": json.loads(build.table.provenance.notes).get("method"), "context_subnets": args.context_subnets,
        "build_seconds_total": round(build_s, 1), "build_seconds_this_run": round(build.seconds, 1),
        "measured_items": build.measured, "reused_items": build.reused,
        "build_ms_per_layer": round(1000 * build_s / max(len(build.table), 1), 1),
        "build_drift": build.drift, "anchor": build.table.anchor.to_dict(),
        "calibration_fit": {k: v for k, v in build.table.calibration.fit.items()
                            if k in ("n", "raw_sum", "global_scale", "held_out_2fold")},
        "validation_seconds": round(report.seconds, 1), "validation_converged": report.converged,
        "host": report.host.get("message"),
        "predicted_vs_measured": report.metrics, "raw_sum_vs_measured": report.raw_metrics,
        "raw_after_global_scale": report.scaled_metrics, "noise_floor_even_vs_odd_rounds": report.noise_floor,
        "goal": {"within_10pct_after_global_scale": ">= 0.95", "spearman": ">= 0.97"},
    }
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
