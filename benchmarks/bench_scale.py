#!/usr/bin/env python3
"""Scale-out ratios from one run: the demo accuracy dataset on 1 vs 2 workers (process pool and Ray), and a
demo-space LUT over a 2-device local pool (each device pinned to its own core) vs 1 device.

    .venv/bin/python benchmarks/bench_scale.py --quick     # about 3 minutes on 2 cores

Wall times include starting the workers (spawned processes, Ray actors). The last line is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # a single-host Ray cluster on loopback only


def accuracy_runs(n_subnets: int, tmp: Path) -> dict[str, float]:
    import ray

    from ofa_deploy.demo import DemoRecipe, create_demo_supernet, load_demo_data
    from ofa_deploy.predictors.dataset import build_accuracy_dataset
    from ofa_deploy.executors import ProcessExecutor
    from ofa_deploy.scale.ray_executor import RayExecutor, worker_runtime_env

    recipe = DemoRecipe()
    net, data = create_demo_supernet(recipe).eval(), load_demo_data(recipe)
    times: dict[str, float] = {}
    results = {}
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", runtime_env=worker_runtime_env(),
             log_to_driver=False)
    try:
        for name, make in (("process_1", lambda: ProcessExecutor(1)),
                           ("process_2", lambda: ProcessExecutor(2)), ("ray_1", lambda: RayExecutor(workers=1)),
                           ("ray_2", lambda: RayExecutor(workers=2))):
            out = tmp / f"acc-{name}.jsonl"
            t0 = time.perf_counter()
            build_accuracy_dataset(net, data, out, n_subnets=n_subnets, resolutions=recipe.dataset_resolutions,
                                   seed=0, progress=False, executor=make())
            times[name] = time.perf_counter() - t0
            results[name] = {json.loads(l)["config"]: json.loads(l)["top1"] for l in out.read_text().splitlines()[1:]}
            print(f"accuracy dataset, {name}: {times[name]:.1f} s ({len(results[name])} items)", file=sys.stderr)
    finally:
        ray.shutdown()
    same = all(r == results["process_1"] for r in results.values())  # same items and top-1 on every executor
    return {"items": len(results["process_1"]), "same_values": same, **{f"{k}_s": round(v, 2) for k, v in times.items()},
            "process_speedup": round(times["process_1"] / times["process_2"], 2),
            "ray_speedup": round(times["ray_1"] / times["ray_2"], 2)}


def pool_runs(rounds: int, tmp: Path) -> dict[str, float]:
    import ray

    from ofa_deploy.demo import DemoRecipe, create_demo_supernet
    from ofa_deploy.profiling.builder import build_lut
    from ofa_deploy.profiling.hardware import HardwareProfile
    from ofa_deploy.profiling.timing.protocol import ProtocolSettings
    from ofa_deploy.profiling.timing.timer import TimerSettings
    from ofa_deploy.profiling.hosts.devices import DeviceSpec
    from ofa_deploy.scale.pool import DevicePool
    from ofa_deploy.scale.ray_executor import worker_runtime_env

    space = create_demo_supernet(DemoRecipe()).space
    profile = HardwareProfile.load("ort-cpu-1t")
    timer = TimerSettings(warmup=2, repeats=10, rounds=rounds, seed=0)
    protocol = ProtocolSettings.from_profile(profile, warmup=2, repeats=10)
    devices = [DeviceSpec("core0", "local", {"cpus": [0]}), DeviceSpec("core1", "local", {"cpus": [1]})]
    from ofa_deploy.profiling.timing.anchor import anchor_model, resolve_anchor_config
    from ofa_deploy.profiling.models import export_layer
    from ofa_deploy.profiling.plan import make_plan

    for item in make_plan(space).items:  # export once up front, so neither run pays for the exports
        export_layer(item, tmp / "models" / f"{item.id}_b{item.input_shape[0]}.onnx")
    anchor_model(space, resolve_anchor_config(space, profile.anchor), tmp / "models")
    ray.init(num_cpus=2, resources={d.resource: 1 for d in devices}, include_dashboard=False,
             _node_ip_address="127.0.0.1",
             runtime_env=worker_runtime_env(), log_to_driver=False)
    times, keys, info = {}, {}, {}
    try:
        for name, pool in (("pool_1", devices[:1]), ("pool_2", devices)):
            t0 = time.perf_counter()
            result = build_lut(space, None, profile, tmp / f"{name}.json", executor=DevicePool(pool, tolerance=0.25),
                               timer=timer, protocol=protocol, progress=False, model_dir=tmp / "models",
                               calibration_subnets=0)
            times[name] = time.perf_counter() - t0
            keys[name] = {(r["id"], r["round"], r["seq"]) for r in map(json.loads,
                          result.store_path.read_text().splitlines()[1:])}
            info[name] = {d: round(v["anchor_ms"], 4) for d, v in result.pool["devices"].items()}
            print(f"LUT over {name}: {times[name]:.1f} s, {len(result.table)} layers, anchors {info[name]}, "
                  f"flagged {result.pool['flagged']}", file=sys.stderr)
    finally:
        ray.shutdown()
    return {"layers_tasks": len(keys["pool_1"]), "same_keys": keys["pool_1"] == keys["pool_2"],
            **{f"{k}_s": round(v, 2) for k, v in times.items()}, "anchor_ms": info["pool_2"],
            "pool_speedup": round(times["pool_1"] / times["pool_2"], 2)}


def _burn(n: int) -> None:
    total = 0
    for i in range(n):
        total += i * i


def machine_parallelism(n: int = 15_000_000) -> float:
    """Two pure-Python processes vs the same work in sequence: what this (shared) machine gives right now."""
    import multiprocessing as mp

    t0 = time.perf_counter()
    _burn(n)
    _burn(n)
    one = time.perf_counter() - t0
    t0 = time.perf_counter()
    with mp.get_context("spawn").Pool(2) as pool:
        pool.map(_burn, [n, n])
    return round(one / (time.perf_counter() - t0), 2)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="about 3 minutes")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("OFA_DEPLOY_CACHE", str(Path(tmp) / "cache"))
        before = machine_parallelism()
        acc = accuracy_runs(200 if args.quick else 500, Path(tmp))
        lut = pool_runs(3 if args.quick else 5, Path(tmp))
        after = machine_parallelism()
    print(f"accuracy dataset: 2 vs 1 workers: process {acc['process_speedup']}x, Ray {acc['ray_speedup']}x; "
          f"LUT: 2-device pool vs 1 device {lut['pool_speedup']}x; the machine gave {before}x / {after}x to two "
          "pure-Python processes before / after")
    print(json.dumps({"cpu": _cpu(), "machine_parallelism": [before, after], "accuracy": acc, "lut_pool": lut}))
    return 0


def _cpu() -> str:
    from ofa_deploy.hostinfo import read_host

    host = read_host()
    return f"{host.cpu_model} x{host.cores}"


if __name__ == "__main__":
    sys.exit(main())
