#!/usr/bin/env python3
"""Time the layer models of a profiling plan on a device: onnxruntime + numpy + the standard library only.

Copy a plan directory (`ofa-deploy profile plan ... --out DIR [--ort]`, which holds a copy of this script as
``ondevice_profile.py``) to the phone or board, then run for example:

    python3 DIR/ondevice_profile.py DIR --out results.json --provider XnnpackExecutionProvider --threads 1

Where ofa-deploy is installed, the same script runs as ``python -m ofa_deploy.ondevice DIR ...``.

Two methods (as on the host). ``--method in_context`` (the default when the plan lists covering subnets, i.e.
it was written with ``profile plan --in-context``) runs whole covering subnets with the ORT profiler, charges
every kernel (and the gap before it) to its layer through the ``/layers.<i>/`` node names, keeps per layer the
minimum over the runs of a round, and scales a subnet's layer values to its run time measured without the
profiler. ``--method isolated`` times the per-layer models: per round, every layer (in a seeded random order)
gets `--warmup` untimed runs and `--repeats` timed runs, the round keeps the minimum; an Identity model
measures the fixed per-call overhead each round. Results are written atomically after every item, and a rerun
with the same settings resumes where it stopped.

Anchor-paired timing (the toolchain's protocol, when the plan carries an ``anchor`` model): the device's speed
drifts, so every measurement is tied to a fixed anchor subnet timed alongside it. In context, each subnet's
unprofiled run is bracketed by the anchor (A, subnet, A); isolated, the anchor is re-timed at the start and end
of each round and every `--anchor-every` layers. The table is then built in anchor units with the anchor's
median time on this device, and the results record the device's fingerprint (CPU model and flags, cores, OS,
onnxruntime version, provider, threads).
Bring results.json back and run `ofa-deploy profile import results.json --plan DIR --out LUT`.

``--serve DIR`` is how a device pool drives a board over ssh (`ofa_deploy.scale.runners.ssh`): it reads one JSON
request per line on stdin (``{"model": "models/x.onnx", "shape": [...], "anchor": "models/a.onnx",
"anchor_shape": [...]}``, paths relative to DIR) and answers each with one JSON line: the model timed between
two anchor visits (``item_ms``, ``anchor_ms``, ``ratio``), or ``{"error": ...}``.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import re
import sys
import tempfile
import time

RESULTS_FORMAT = "ofa-deploy-ondevice-results"
OVERHEAD_ID = "__overhead__"
ANCHOR_ID = "__anchor__"


def device_fingerprint(ort, provider: str, threads: int) -> dict:
    """The same fields as the toolchain's host fingerprint (ofa_deploy.profiling.hosts.fingerprint), from the device."""
    model, flags = "", ""
    try:
        with open("/proc/cpuinfo", errors="replace") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("model name", "Hardware", "Processor") and not model:
                    model = value.strip()
                elif key in ("flags", "Features") and not flags:
                    flags = " ".join(sorted(value.split()))
    except OSError:
        pass
    return {"cpu_model": model or platform.processor() or platform.machine(),
            "cpu_flags_sha256": hashlib.sha256(flags.encode()).hexdigest()[:16] if flags else "",
            "cores": os.cpu_count() or 1, "os": platform.system(), "machine": platform.machine(),
            "backend": "onnxruntime", "backend_version": ort.__version__, "provider": provider, "threads": threads}


def atomic_write(path: str, data: dict) -> None:
    tmp = os.path.join(os.path.dirname(os.path.abspath(path)), "." + os.path.basename(path) + ".tmp")
    with open(tmp, "w") as fh:
        json.dump(data, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def make_session(ort, path: str, provider: str, threads: int, opt_level: str, profile_prefix: str | None = None):
    so = ort.SessionOptions()
    if profile_prefix:
        so.enable_profiling = True
        so.profile_file_prefix = os.path.join(profile_prefix, "ofa_prof")
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


LAYER_SCOPE = re.compile(r"^/layers\.(\d+)/")


def layer_times_from_trace(events, n_layers: int, skip_runs: int):
    """[[ms per layer] per run]: kernel time plus the gap before it, charged to the kernel's layer."""
    runs = sorted((e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"),
                  key=lambda e: e["ts"])[skip_runs:]
    nodes = sorted((e for e in events if e.get("cat") == "Node" and str(e.get("name", "")).endswith("_kernel_time")),
                   key=lambda e: e["ts"])
    out, k = [], 0
    for run in runs:
        start, end = run["ts"], run["ts"] + run["dur"]
        row, current, cursor = [0.0] * n_layers, 0, start
        while k < len(nodes) and nodes[k]["ts"] < start:
            k += 1
        while k < len(nodes) and nodes[k]["ts"] <= end:
            match = LAYER_SCOPE.match(nodes[k]["name"])
            if match:
                current = min(int(match.group(1)), n_layers - 1)
            row[current] += (max(nodes[k]["ts"] - cursor, 0) + nodes[k]["dur"]) / 1000.0
            cursor = nodes[k]["ts"] + nodes[k]["dur"]
            k += 1
        row[current] += max(end - cursor, 0) / 1000.0
        out.append(row)
    return out


def time_subnet_in_context(ort, np, args, path: str, shape, n_layers: int, clock, tmp_dir: str, anchor=None):
    """(per-layer minima ms, unprofiled visit) for one covering subnet; with an anchor runner the unprofiled
    run is bracketed by it (A, subnet, A) and the visit carries the ratio."""
    so_session = make_session(ort, path, args.provider, args.threads, args.opt_level, profile_prefix=tmp_dir)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    name = so_session.get_inputs()[0].name
    for _ in range(args.warmup + args.repeats):
        so_session.run(None, {name: x})
    trace = so_session.end_profiling()
    with open(trace) as fh:
        events = json.load(fh)
    os.remove(trace)
    rows = layer_times_from_trace(events, n_layers, args.warmup)
    layers = [min(r[i] for r in rows) for i in range(n_layers)]
    runner = Runner(ort, np, make_session(ort, path, args.provider, args.threads, args.opt_level), tuple(shape))
    if anchor is None:
        return layers, {"run_ms": time_round(runner, args.warmup, args.repeats, clock)}
    before = time_round(anchor, args.visit_warmup, args.visit_repeats, clock)
    item = time_round(runner, args.visit_warmup, args.visit_repeats, clock)
    after = time_round(anchor, args.visit_warmup, args.visit_repeats, clock)
    bracket = (before + after) / 2
    return layers, {"item_ms": item, "anchor_ms": bracket, "ratio": item / bracket}


def serve(ort, np, args, clock) -> int:
    """Answer paired-visit requests (JSON lines on stdin) until stdin closes; sessions are kept per model."""
    runners: dict = {}

    def runner(path: str, shape) -> Runner:
        key = (path, tuple(shape))
        if key not in runners:
            session = make_session(ort, os.path.join(args.plan_dir, path), args.provider, args.threads,
                                   args.opt_level)
            runners[key] = Runner(ort, np, session, tuple(shape))
        return runners[key]

    print(json.dumps({"ready": True, "onnxruntime": ort.__version__, "node": platform.node(),
                      "fingerprint": device_fingerprint(ort, args.provider, args.threads)}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            req = json.loads(line)
            anchor, item = runner(req["anchor"], req["anchor_shape"]), runner(req["model"], req["shape"])
            before = time_round(anchor, args.visit_warmup, args.visit_repeats, clock)
            item_ms = time_round(item, args.visit_warmup, args.visit_repeats, clock)
            after = time_round(anchor, args.visit_warmup, args.visit_repeats, clock)
            bracket = (before + after) / 2
            out = {"item_ms": item_ms, "anchor_ms": bracket, "ratio": item_ms / bracket}
        except Exception as exc:  # noqa: BLE001 - reported to the driver, which raises it
            out = {"error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(out), flush=True)
    return 0


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
    ap.add_argument("--visit-warmup", type=int, default=3, help="untimed runs before each anchor-paired visit")
    ap.add_argument("--visit-repeats", type=int, default=10, help="timed runs per anchor-paired visit")
    ap.add_argument("--clock", default="auto", choices=["auto", "wall", "thread"],
                    help="auto: thread CPU time for 1-thread CPU runs, else wall clock")
    ap.add_argument("--format", default="auto", choices=["auto", "onnx", "ort"], help="which model files to run")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--method", default="auto", choices=["auto", "in_context", "isolated"],
                    help="auto: in_context when the plan lists covering subnets")
    ap.add_argument("--serve", action="store_true",
                    help="answer paired-visit requests on stdin (JSON lines; models relative to plan_dir)")
    args = ap.parse_args(argv)

    import numpy as np
    import onnxruntime as ort

    if args.provider not in ort.get_available_providers():
        print(f"error: provider {args.provider} not available (have {ort.get_available_providers()})", file=sys.stderr)
        return 1
    if args.serve:
        thread = args.clock == "thread" or (args.clock == "auto" and args.threads == 1
                                            and args.provider == "CPUExecutionProvider")
        return serve(ort, np, args, time.thread_time_ns if thread else time.perf_counter_ns)
    with open(os.path.join(args.plan_dir, "plan.json")) as fh:
        plan = json.load(fh)
    use_ort = args.format == "ort" or (args.format == "auto" and all("ort_file" in i for i in plan["items"]))
    key = "ort_file" if use_ort else "file"
    method = args.method
    if method == "auto":
        method = "in_context" if plan.get("subnets") else "isolated"
    if method == "in_context" and not plan.get("subnets"):
        print("error: the plan lists no covering subnets; write it with `profile plan --in-context`", file=sys.stderr)
        return 1
    items = {i["id"]: i for i in plan["items"]}
    anchor_entry = plan.get("anchor")
    anchors = [ANCHOR_ID] if anchor_entry else [a for a in plan.get("anchors", []) if a in items]
    overhead_file = plan.get("overhead_file", "models/overhead.onnx")
    if use_ort and overhead_file.endswith(".onnx"):
        overhead_file = overhead_file[:-5] + ".ort"
    clock_name = args.clock
    if clock_name == "auto":
        clock_name = "thread" if (args.threads == 1 and args.provider == "CPUExecutionProvider") else "wall"
    clock = time.thread_time_ns if clock_name == "thread" else time.perf_counter_ns
    settings = {"provider": args.provider, "threads": args.threads, "opt_level": args.opt_level,
                "warmup": args.warmup, "repeats": args.repeats, "rounds": args.rounds,
                "anchor_every": args.anchor_every, "clock": clock_name, "seed": args.seed, "model_format": key,
                "method": method, "anchor": anchor_entry["config"] if anchor_entry else None,
                "visit_warmup": args.visit_warmup, "visit_repeats": args.visit_repeats}
    results = {"format": RESULTS_FORMAT, "version": 1, "plan_space": plan["space"],
               "plan_resolutions": plan["resolutions"], "settings": settings,
               "device": {"node": platform.node(), "machine": platform.machine(), "processor": platform.processor(),
                          "system": platform.platform(), "python": platform.python_version(),
                          "onnxruntime": ort.__version__,
                          "fingerprint": device_fingerprint(ort, args.provider, args.threads)},
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
    def anchor_runner():
        path = os.path.join(args.plan_dir, anchor_entry.get(key, anchor_entry["file"]))
        session = make_session(ort, path, args.provider, args.threads, args.opt_level)
        return Runner(ort, np, session, tuple(anchor_entry["input_shape"]))

    if method == "in_context":
        anchor = anchor_runner() if anchor_entry else None
        return run_in_context(ort, np, args, plan, results, done, rng, clock, key, anchor)
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
            last = n == len(order) and bool(anchor_entry)  # the anchor closes every round: a visit on both sides
            if anchors and ((args.anchor_every and n % args.anchor_every == 0 and n < len(order)) or last):
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
            elif item_id == ANCHOR_ID:
                path, shape = anchor_entry.get(key, anchor_entry["file"]), anchor_entry["input_shape"]
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


def run_in_context(ort, np, args, plan, results, done, rng, clock, key, anchor=None) -> int:
    subnets = {s["config"]: s for s in plan["subnets"]}
    tasks = []
    for rnd in range(args.rounds):
        order = sorted(subnets)
        rng.shuffle(order)
        tasks += [(cfg, rnd, seq) for seq, cfg in enumerate(order)]
    todo = [t for t in tasks if t not in done]
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp_dir:
        for k, (cfg, rnd, seq) in enumerate(todo, 1):
            sub = subnets[cfg]
            path = os.path.join(args.plan_dir, sub.get(key, sub["file"]))
            layers, visit = time_subnet_in_context(ort, np, args, path, tuple(sub["input_shape"]),
                                                   len(sub["layers"]), clock, tmp_dir, anchor)
            if "ratio" not in visit:
                visit["scale"] = visit["run_ms"] / sum(layers)
            results["records"].append({"id": cfg, "round": rnd, "seq": seq, "anchor": False, "layers": layers,
                                       **visit, "t": time.time()})
            atomic_write(args.out, results)
            print(f"[{k}/{len(todo)}] {time.time() - started:.0f} s", file=sys.stderr)
    atomic_write(args.out, results)
    print(json.dumps({"out": args.out, "records": len(results["records"]), "measured": len(todo)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
