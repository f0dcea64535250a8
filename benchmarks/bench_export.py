"""Export backends side by side on a few subnets: latency ratios, int8 agreement, export/compile times.

For each subnet (random-init weights with randomised BN statistics, so outputs and top-1 mean something):
  * ONNX export time; ORT fp32 (CPU EP, ENABLE_ALL) vs PyTorch eager (``inference_mode``) latency;
  * int8 static QDQ vs ORT fp32 latency and top-1 agreement (quantize time);
  * TVM untuned with target ``llvm`` and with ``llvm -mcpu=<detected>`` vs ORT fp32, and compile+export times;
  * with ``--tune-tasks N``: TVM MetaSchedule-tuned (N heaviest tasks x ``--tune-trials``) vs ORT.
Batch 1, ``--threads`` intra-op threads everywhere; all runners of one subnet are timed in the same process,
interleaved round by round (median of all runs), so drift hits them alike. Ratios > 1 mean slower than ORT fp32.

    .venv/bin/python benchmarks/bench_export.py [--subnets ofa_mbv3_w10:min,ofa_mbv3_w12:3,ofa_resnet50:min]
        [--resolution 160] [--rounds 5] [--runs 10] [--threads 1] [--no-tvm] [--tune-tasks 3 --tune-trials 8]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--subnets", default="ofa_mbv3_w10:min,ofa_mbv3_w12:3,ofa_proxyless_w13:min,ofa_resnet50:min",
                   help="space:which list; which = min | max | an integer sample seed")
    p.add_argument("--resolution", type=int, default=160)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--no-tvm", action="store_true")
    p.add_argument("--tune-tasks", type=int, default=0, help="tune the N heaviest tasks (0: no tuning)")
    p.add_argument("--tune-trials", type=int, default=8)
    p.add_argument("--json", default=None, help="also write all numbers to this JSON file")
    return p.parse_args()


def main() -> None:
    args = _parse()
    os.environ.setdefault("TVM_NUM_THREADS", str(args.threads))  # before tvm is imported
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    from ofa_deploy.export.onnx import torch_to_onnx
    from ofa_deploy.export.quantize import export_int8
    from ofa_deploy.export.runners import interleaved_latency, ort_runner
    from tests.export_helpers import randomize_for_parity
    from ofa_deploy.export.validate import make_inputs, torch_runner, validate_runner
    from ofa_deploy.nn.layers import SubnetModel
    from ofa_deploy.spaces import get_space

    rows = []
    res = args.resolution
    shape = (1, 3, res, res)
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmpd:
        tmp = Path(tmpd)
        for item in args.subnets.split(","):
            name, which = item.split(":")
            space = get_space(name)
            cfg = space.min_config(res) if which == "min" else space.max_config(res) if which == "max" \
                else space.sample(int(which), res)
            eps = 1e-3 if space.family == "proxyless" else 1e-5
            model = randomize_for_parity(SubnetModel(space.walk_layers(cfg), bn_eps=eps), seed=0)
            row: dict = {"subnet": f"{name}:{which}", "config": cfg.to_string(), "times_s": {}}
            d = tmp / f"{name}-{which}"
            d.mkdir()
            t0 = time.perf_counter()
            onnx_path = torch_to_onnx(model, d / "model.onnx", input_shape=shape)
            row["times_s"]["onnx_export"] = time.perf_counter() - t0
            calib = np.random.default_rng(1).standard_normal((8, 3, res, res)).astype(np.float32)
            q = export_int8(onnx_path, d / "int8", calibration=calib, min_top1=0.0, n_inputs=4, validation_batch=8,
                            time_runs=1, time_rounds=1, threads=args.threads)
            row["times_s"]["int8_quantize"] = q.timings["quantize"]
            row["int8_top1_agreement"] = q.validation.top1_agreement
            runners = {"torch": torch_runner(model), "ort_fp32": ort_runner(onnx_path, threads=args.threads),
                       "ort_int8": ort_runner(q.path("model"), threads=args.threads)}
            if not args.no_tvm:
                from ofa_deploy.export.tvm import default_target, export_tvm, tvm_runner

                for label, tgt in (("tvm_llvm", default_target(num_cores=args.threads)),
                                   ("tvm_mcpu", default_target(mcpu=True, num_cores=args.threads))):
                    rep = export_tvm(onnx_path, d / label, target=tgt, n_inputs=1)
                    row["times_s"][f"{label}_compile+export"] = rep.timings["compile"] + rep.timings["export_library"]
                    row[f"{label}_target"] = tgt
                    runners[label] = tvm_runner(rep.path("model"))
                if args.tune_tasks > 0:
                    rep = export_tvm(onnx_path, d / "tvm_tuned", target=default_target(num_cores=args.threads),
                                     input_shape=shape, tune_trials=args.tune_trials, tune_max_tasks=args.tune_tasks,
                                     n_inputs=1)
                    row["times_s"]["tvm_tune"] = rep.timings["tune"]
                    row["times_s"]["tvm_tuned_compile+export"] = rep.timings["compile"] + rep.timings["export_library"]
                    row["tvm_tuning"] = {k: v for k, v in rep.extra["tuning"].items() if k != "tuned_tasks"}
                    runners["tvm_tuned"] = tvm_runner(rep.path("model"))
            x = make_inputs(shape, n_inputs=1, seed=3)[0]
            chk = validate_runner(model, runners["ort_fp32"], inputs=[x], atol=1e-4, rtol=1e-3)
            row["ort_vs_torch_max_abs"] = chk.max_abs
            lat = interleaved_latency(runners, x, rounds=args.rounds, runs_per_round=args.runs)
            row["latency_ms"] = {k: v["median_ms"] for k, v in lat.items()}
            base = row["latency_ms"]["ort_fp32"]
            row["ratio_vs_ort_fp32"] = {k: v / base for k, v in row["latency_ms"].items()}
            rows.append(row)
            _print_row(row)
            del runners
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2, default=str))


def _print_row(row: dict) -> None:
    lat, ratio = row["latency_ms"], row["ratio_vs_ort_fp32"]
    print(f"\n== {row['subnet']}  {row['config']}")
    print(f"   ORT vs torch max abs diff {row['ort_vs_torch_max_abs']:.2e}; "
          f"int8 top-1 agreement with fp32 {row['int8_top1_agreement']:.3f}")
    print(f"   {'runner':<12} {'median ms':>10} {'x ORT fp32':>11}")
    for k in lat:
        print(f"   {k:<12} {lat[k]:10.2f} {ratio[k]:11.2f}")
    print("   times: " + ", ".join(f"{k} {v:.1f}s" for k, v in row["times_s"].items()))
    if "tvm_tuning" in row:
        print(f"   tuning: {row['tvm_tuning']}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
