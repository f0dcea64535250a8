#!/usr/bin/env python3
"""Time the layer models of a profiling plan on a device: onnxruntime + numpy + the standard library only.

Copy a plan directory (`ofa-deploy profile plan ... --out DIR [--ort]`) and this script to the phone or
board, then run for example:

    python3 ondevice_profile.py DIR --out results.json --provider XnnpackExecutionProvider --threads 1

Timing matches the host profiler: per round, every layer (in a seeded random order) gets `--warmup` untimed
runs and `--repeats` timed runs, the round keeps the minimum; an Identity model measures the fixed per-call
overhead each round; anchor layers are re-timed every `--anchor-every` layers to record drift. Results are
written atomically after every layer, and a rerun with the same settings resumes where it stopped.
Bring results.json back and run `ofa-deploy profile import results.json --plan DIR --out LUT`.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time

RESULTS_FORMAT = "ofa-deploy-ondevice-results"
OVERHEAD_ID = "__overhead__"


def atomic_write(path: str, data: dict) -> None:
    tmp = os.path.join(os.path.dirname(os.path.abspath(path)), "." + os.path.basename(path) + ".tmp")
    with open(tmp, "w") as fh:
        json.dump(data, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def make_session(ort, path: str, provider: str, threads: int, opt_level: str):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL, "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED, "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[opt_level]
    so.log_severity_level = 3
    providers = [provider] if provider == "CPUExecutionProvider" else [provider, "CPUExecutionProvider"]
    return ort.InferenceSession(path, so, providers=providers)


class Runner:
    """A session with input/output bound once to preallocated buffers (IO binding)."""

    def __init__(self, ort, np, session, shape) -> None:
        self.session = session
        inp = session.get_inputs()[0]
        self.x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        self.binding = session.io_binding()
        self.binding.bind_cpu_input(inp.name, self.x)
        names = [o.name for o in session.get_outputs()]
        first = session.run(names, {inp.name: self.x})
        self.outputs = [ort.OrtValue.ortvalue_from_numpy(np.empty_like(a)) for a in first]
        for name, value in zip(names, self.outputs):
            self.binding.bind_ortvalue_output(name, value)

    def run(self) -> None:
        self.session.run_with_iobinding(self.binding)


def time_round(runner: Runner, warmup: int, repeats: int, clock) -> float:
    for _ in range(warmup):
        runner.run()
    best = float("inf")
    for _ in range(repeats):
        t0 = clock()
        runner.run()
        best = min(best, clock() - t0)
    return best / 1e6


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("plan_dir")
    ap.add_argument("--out", default="results.json")
    ap.add_argument("--provider", default="CPUExecutionProvider")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--opt-level", default="all", choices=["disable", "basic", "extended", "all"])
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--anchor-every", type=int, default=25)
    ap.add_argument("--clock", default="auto", choices=["auto", "wall", "thread"],
                    help="auto: thread CPU time for 1-thread CPU runs, else wall clock")
    ap.add_argument("--format", default="auto", choices=["auto", "onnx", "ort"], help="which model files to run")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    import numpy as np
    import onnxruntime as ort

    if args.provider not in ort.get_available_providers():
        print(f"error: provider {args.provider} not available (have {ort.get_available_providers()})", file=sys.stderr)
        return 1
    with open(os.path.join(args.plan_dir, "plan.json")) as fh:
        plan = json.load(fh)
    use_ort = args.format == "ort" or (args.format == "auto" and all("ort_file" in i for i in plan["items"]))
    key = "ort_file" if use_ort else "file"
    items = {i["id"]: i for i in plan["items"]}
    anchors = [a for a in plan.get("anchors", []) if a in items]
    overhead_file = plan.get("overhead_file", "models/overhead.onnx")
    if use_ort and overhead_file.endswith(".onnx"):
        overhead_file = overhead_file[:-5] + ".ort"
    clock_name = args.clock
    if clock_name == "auto":
        clock_name = "thread" if (args.threads == 1 and args.provider == "CPUExecutionProvider") else "wall"
    clock = time.thread_time_ns if clock_name == "thread" else time.perf_counter_ns
    settings = {"provider": args.provider, "threads": args.threads, "opt_level": args.opt_level,
                "warmup": args.warmup, "repeats": args.repeats, "rounds": args.rounds,
                "anchor_every": args.anchor_every, "clock": clock_name, "seed": args.seed, "model_format": key}
    results = {"format": RESULTS_FORMAT, "version": 1, "plan_space": plan["space"],
               "plan_resolutions": plan["resolutions"], "settings": settings,
               "device": {"node": platform.node(), "machine": platform.machine(), "processor": platform.processor(),
                          "system": platform.platform(), "python": platform.python_version(),
                          "onnxruntime": ort.__version__},
               "records": []}
    if os.path.exists(args.out):
        with open(args.out) as fh:
            old = json.load(fh)
        if old.get("settings") != settings or old.get("plan_space") != plan["space"]:
            print(f"error: {args.out} was written with other settings; delete it to start over", file=sys.stderr)
            return 1
        results["records"] = old["records"]
    done = {(r["id"], r["round"], r["seq"]) for r in results["records"]}

    rng = random.Random(args.seed)
    tasks = []
    ids = sorted(items)
    for rnd in range(args.rounds):
        seq = 0
        tasks.append((OVERHEAD_ID, rnd, seq, False))
        seq += 1
        for a in anchors:
            tasks.append((a, rnd, seq, True))
            seq += 1
        order = ids[:]
        rng.shuffle(order)
        for n, item_id in enumerate(order, 1):
            tasks.append((item_id, rnd, seq, False))
            seq += 1
            if anchors and args.anchor_every and n % args.anchor_every == 0 and n < len(order):
                for a in anchors:
                    tasks.append((a, rnd, seq, True))
                    seq += 1
    todo = [t for t in tasks if t[:3] not in done]
    runners: dict = {}
    started = time.time()
    for k, (item_id, rnd, seq, is_anchor) in enumerate(todo, 1):
        if item_id not in runners:
            if item_id == OVERHEAD_ID:
                path, shape = overhead_file, [1, 1, 1, 1]
            else:
                path, shape = items[item_id][key], items[item_id]["input_shape"]
            session = make_session(ort, os.path.join(args.plan_dir, path), args.provider, args.threads, args.opt_level)
            runners[item_id] = Runner(ort, np, session, tuple(shape))
        ms = time_round(runners[item_id], args.warmup, args.repeats, clock)
        results["records"].append({"id": item_id, "round": rnd, "seq": seq, "anchor": is_anchor, "ms": ms,
                                   "t": time.time()})
        atomic_write(args.out, results)
        if k % 25 == 0 or k == len(todo):
            print(f"[{k}/{len(todo)}] {time.time() - started:.0f} s", file=sys.stderr)
    atomic_write(args.out, results)
    print(json.dumps({"out": args.out, "records": len(results["records"]), "measured": len(todo)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
