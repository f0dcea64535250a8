#!/usr/bin/env python3
"""Adapted latency tables per source -> target pair, next to a full build and to one global scale.

    .venv/bin/python benchmarks/bench_adapt.py --quick            # two pairs, a few minutes
    .venv/bin/python benchmarks/bench_adapt.py                    # every pair that runs on this machine
    .venv/bin/python benchmarks/bench_adapt.py --pairs ort1t-ort-cpu-all --full-build

For each pair `adapt_table` runs for real (the target is this machine through the target profile's backend):
it measures designed and random held-out subnets on the target with the anchor-paired protocol, and the row
shows side by side: the full build's device seconds (the committed ORT 1-thread table's build, from its
measurement store, the yardstick of issue 18; or with --full-build a build of the target timed now), the adaptation's device seconds and measurements, the
rung kept, and on the same held-out subnets the adapted table's share within ±5% / ±10%, Spearman and bias next to
one global scale fitted on the same designed subnets. "now s" is that full build at the target's speed now (times
the anchor's run time on the target now over its time during that build): the machine is shared and drifts, and
another backend runs at another speed. A pair that misses the goal is reported as measured, with what it missed. The anchor's time now and in the source's build say how fast the machine is now (it drifts 1.5x
and is shared). The last line is one JSON object with every figure.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

COMMITTED = REPO / "ofa_deploy" / "hardware_profiles" / "luts" / "ort-cpu-1t" / "ofa_mbv3_w12.json"
NOTE10 = Path(os.environ.get("OFA_DEPLOY_SHARED", REPO.parents[0] / "shared")) / "reference" / "ofa"
FIGURES = ("within_5pct", "within_10pct", "spearman", "bias")


def pairs() -> dict[str, dict]:
    """name -> source, target profile, space (for OFA YAML), device-time budget, why it is a pair."""
    from ofa_deploy.profiling.hardware import HardwareProfile
    from ofa_deploy.profiling.hosts.fingerprint import check_table_host
    from ofa_deploy.tables.latency import LatencyTable

    committed = LatencyTable.load(COMMITTED)
    same_host = check_table_host(committed, HardwareProfile.load("ort-cpu-1t"))
    out = {
        "ort1t-ort-cpu-all": {"source": COMMITTED, "profile": "ort-cpu-all", "max_seconds": 60.0},
        "ort1t-torch-cpu": {"source": COMMITTED, "profile": "torch-cpu", "max_seconds": 120.0},
        "ort1t-ort-int8": {"source": COMMITTED, "profile": "ort-cpu-1t-int8", "max_seconds": 60.0},
        "ort1t-tvm-cpu": {"source": COMMITTED, "profile": "tvm-cpu", "max_seconds": 600.0},
        "note10-ort-cpu-1t": {"source": NOTE10, "profile": "ort-cpu-1t", "supernet": "ofa_mbv3_w12",
                              "max_seconds": 60.0},
    }
    if not same_host.ok:
        out = {"ort1t-cross-host": {"source": COMMITTED, "profile": "ort-cpu-1t", "max_seconds": 60.0,
                                    "why": same_host.describe()}, **out}
    return out


def run_pair(name: str, spec: dict, *, seed: int, full_build: bool, work: Path) -> dict:
    from ofa_deploy.adapt import AdaptationError, adapt_table
    from ofa_deploy.tables.latency import LatencyTable

    row: dict = {"pair": name, "source": str(spec["source"]), "target": spec["profile"],
                 "max_seconds": spec["max_seconds"], **({"why": spec["why"]} if "why" in spec else {})}
    start = time.perf_counter()
    try:
        result = adapt_table(spec["source"], profile=spec["profile"], supernet=spec.get("supernet"),
                             out=work / f"{name}.json", max_seconds=spec["max_seconds"], seed=seed,
                             progress=lambda line: print(f"  [{name}] {line}", file=sys.stderr, flush=True))
        details, validation = result.details or {}, result.validation
        row.update(passed=True, method=result.method, measurements=result.measurements,
                   device_seconds=round(result.device_seconds, 1),
                   anchor_ms_now=result.table.anchor.ms if result.table.anchor else None)
    except AdaptationError as exc:
        details = exc.report or {}
        validation = details.get("validation", {})
        row.update(passed=False, method=details.get("method"), measurements=details.get("measurements"),
                   device_seconds=details.get("device_seconds"), error=str(exc).split(". Nothing was written")[0])
    row["wall_seconds"] = round(time.perf_counter() - start, 1)
    row["host_seconds"] = details.get("host_seconds")
    row["adapted"] = {k: validation.get(k) for k in ("n", *FIGURES, "passed")}
    baseline = details.get("global_scale_baseline") or {}
    row["global_scale"] = {k: baseline.get(k) for k in ("n", *FIGURES, "passed")}
    row["ladder"] = {k: {kk: v.get(kk) for kk in ("mean_abs_log_error", "within_5pct", "kept", "ridge") if kk in v}
                     for k, v in (details.get("ladder") or {}).items()}
    row["design_subnets"] = details.get("design")
    row["adapt_estimate_of_full_build"] = details.get("full_build")
    row["full_build_seconds"] = reference_full_build()
    now = (details.get("full_build") or {}).get("seconds_at_target_speed_now")
    if now is not None and row["full_build_seconds"] and (details.get("full_build") or {}).get("seconds"):
        row["full_build_seconds_now"] = round(row["full_build_seconds"] * now / details["full_build"]["seconds"], 1)
    row["full_build_from"] = "the committed ORT 1-thread table's build (its measurement store)"
    source = spec["source"]
    if Path(source).suffix == ".json":
        anchor = LatencyTable.load(source).anchor
        row["anchor_ms_source_build"] = anchor.ms if anchor else None
    if full_build:
        row.update(full_build_now(spec, work / f"{name}-full.json"))
    if row.get("device_seconds") and row.get("full_build_seconds"):
        row["fraction_of_full_build"] = round(row["device_seconds"] / row["full_build_seconds"], 3)
    if row.get("device_seconds") and row.get("full_build_seconds_now"):
        row["fraction_of_full_build_at_speed_now"] = round(row["device_seconds"] / row["full_build_seconds_now"], 3)
    return row


def reference_full_build() -> float | None:
    """The device seconds of the committed table's full build (the yardstick of issue 18)."""
    from ofa_deploy.adapt.driver import build_span

    span = build_span(COMMITTED)
    return round(span, 1) if span is not None else None


def full_build_now(spec: dict, out: Path) -> dict:
    """Build the target's full table now (the source's space and resolutions) and time it."""
    from ofa_deploy.adapt.source import load_source
    from ofa_deploy.profiling.builder import build_lut
    from ofa_deploy.profiling.hardware import HardwareProfile
    from ofa_deploy.profiling.validate import table_resolutions

    src = load_source(spec["source"], spec.get("supernet"))
    start = time.perf_counter()
    built = build_lut(src.space, table_resolutions(src.table), HardwareProfile.load(spec["profile"]), out,
                      progress=False, resume=False)
    return {"full_build_seconds": round(time.perf_counter() - start, 1), "full_build_from": "built now",
            "full_build_entries": len(built.table)}


def fmt(value, pct: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:.0%}" if pct else f"{value:.3f}" if isinstance(value, float) else str(value)


def signed(value) -> str:
    return "-" if value is None else f"{value:+.1f}"


def print_table(rows: list[dict]) -> None:
    head = (f"{'pair':22} {'full s':>7} {'now s':>7} {'adapt s':>7} {'n meas':>6} {'rung':>12} | {'±5%':>5} {'±10%':>5} "
            f"{'rho':>6} {'bias%':>6} | scale: {'±5%':>5} {'±10%':>5} {'rho':>6} {'bias%':>6} | goal")
    print(head)
    for r in rows:
        a, g = r["adapted"], r["global_scale"]
        print(f"{r['pair']:22} {fmt(r.get('full_build_seconds')):>7} {fmt(r.get('full_build_seconds_now')):>7} "
              f"{fmt(r.get('device_seconds')):>7} "
              f"{fmt(r.get('measurements')):>6} {fmt(r.get('method')):>12} | {fmt(a['within_5pct'], True):>5} "
              f"{fmt(a['within_10pct'], True):>5} {fmt(a['spearman']):>6} "
              f"{signed(a['bias']):>6} | "
              f"       {fmt(g['within_5pct'], True):>5} {fmt(g['within_10pct'], True):>5} {fmt(g['spearman']):>6} "
              f"{signed(g['bias']):>6} | "
              f"{'met' if r['passed'] else 'MISSED'}")
        if not r["passed"] and r.get("error"):
            print(f"    {r['error'][:400]}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="two pairs (cross-host or 2 threads, and Note10 -> ORT)")
    ap.add_argument("--pairs", default=None, help="comma-separated pair names (default: every pair)")
    ap.add_argument("--full-build", action="store_true", help="also build each target's full table now and time it")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", default=None, help="directory to keep the adapted tables in (default: a temp dir)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    from ofa_deploy.profiling.hosts.fingerprint import cpu_model

    available = pairs()
    if args.pairs:
        names = [n.strip() for n in args.pairs.split(",") if n.strip()]
        unknown = [n for n in names if n not in available]
        if unknown:
            ap.error(f"unknown pair(s) {unknown}; pairs here: {', '.join(available)}")
    elif args.quick:
        names = [next(iter(available)), "note10-ort-cpu-1t"]
    else:
        names = list(available)
    if "note10-ort-cpu-1t" in names and not NOTE10.is_dir():
        names.remove("note10-ort-cpu-1t")
        print(f"skipping note10-ort-cpu-1t: no OFA reference tables at {NOTE10} (set OFA_DEPLOY_SHARED)",
              file=sys.stderr)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.keep) if args.keep else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        for name in names:
            print(f"pair {name}: {available[name]['source']} -> {available[name]['profile']}", file=sys.stderr)
            rows.append(run_pair(name, available[name], seed=args.seed, full_build=args.full_build, work=work))
    print(f"CPU: {cpu_model()}, {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f} at the end")
    print_table(rows)
    print(json.dumps({"cpu": cpu_model(), "cores": os.cpu_count(), "load_average": os.getloadavg(),
                      "seed": args.seed, "pairs": rows}, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
