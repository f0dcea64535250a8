"""torch's two ONNX exporters side by side on a subnet of each supernet: validation, export time, ORT latency.

For each supernet a seeded random subnet (random weights with randomised BN statistics, so outputs depend on the
input) is exported with the classic TorchScript exporter (``dynamo=False``) and the ``torch.export``-based one
(``dynamo=True``) through ``ofa_deploy.export.export(format="onnx")``, i.e. the same validation in ONNX Runtime
(batch 1 and 3, ``atol + rtol * |ref|``). The exports alternate (torchscript, dynamo, torchscript, dynamo, ...)
so that CPU drift hits both alike; the export-time ratio is the median over repetitions. ORT latency of the two
files is timed interleaved round by round in one process (`interleaved_latency`, batch 1, one thread) and
reported as the ratio dynamo / torchscript. Wall-clock milliseconds are printed for reference only.

    .venv/bin/python benchmarks/bench_onnx_exporters.py [--resolution 160] [--repeats 2] [--rounds 7] [--runs 20]

The last line is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SUPERNETS = ("ofa_mbv3_w10", "ofa_mbv3_w12", "ofa_proxyless_w13", "ofa_resnet50")
EXPORTERS = (("torchscript", 17), ("dynamo", 18))


def _parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--supernets", default=",".join(SUPERNETS))
    p.add_argument("--resolution", type=int, default=160)
    p.add_argument("--seed", type=int, default=0, help="subnet sample seed")
    p.add_argument("--repeats", type=int, default=2, help="exports per exporter (alternating)")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--runs", type=int, default=20)
    return p.parse_args()


def main() -> None:
    args = _parse()
    import platform

    import torch

    torch.set_num_threads(1)
    from ofa_deploy.errors import OfaDeployError
    from ofa_deploy.export import export
    from ofa_deploy.export.runners import interleaved_latency, ort_runner
    from ofa_deploy.export.validate import make_inputs
    from ofa_deploy.supernets import create_supernet
    from tests.export_helpers import assert_input_dependent, randomize_for_parity

    res = args.resolution
    shape = (1, 3, res, res)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-exporters-") as tmpd:
        tmp = Path(tmpd)
        for name in args.supernets.split(","):
            supernet = create_supernet(name)
            cfg = supernet.space.sample(args.seed, resolution=res)
            supernet.set_active(cfg)
            randomize_for_parity(supernet, seed=1, input_shape=(4, 3, res, res))
            model = supernet.extract(cfg).eval()
            with torch.no_grad():
                assert_input_dependent(model(torch.randn(4, 3, res, res, generator=torch.Generator().manual_seed(2))))
            row: dict = {"supernet": name, "config": cfg.to_string(), "export_s": {}, "validation": {}, "nodes": {}}
            files = {}
            for rep in range(args.repeats):
                for exporter, opset in EXPORTERS:
                    out = tmp / f"{name}-{exporter}-{rep}"
                    try:
                        report = export(model, out, format="onnx", input_shape=shape, exporter=exporter, opset=opset,
                                        on_constant_outputs="fail")
                    except OfaDeployError as exc:
                        row["validation"][exporter] = {"passed": False, "error": str(exc)[:300]}
                        continue
                    row["export_s"].setdefault(exporter, []).append(report.timings["export"])
                    row["validation"][exporter] = {"passed": bool(report.passed),
                                                   "max_abs": report.validation.max_abs,
                                                   "validated_on": report.validated_on}
                    row["nodes"][exporter] = report.extra["onnx_nodes"]
                    files[exporter] = report.path("model")
            if len(files) == 2:
                ts, dyn = row["export_s"]["torchscript"], row["export_s"]["dynamo"]
                row["export_time_ratio_dynamo_over_torchscript"] = statistics.median(d / t for d, t in zip(dyn, ts))
                x = make_inputs(shape, n_inputs=1, seed=3)[0]
                lat = interleaved_latency({k: ort_runner(p, threads=1) for k, p in files.items()}, x,
                                          rounds=args.rounds, runs_per_round=args.runs)
                row["ort_ms"] = {k: v["median_ms"] for k, v in lat.items()}
                row["ort_latency_ratio_dynamo_over_torchscript"] = lat["dynamo"]["median_ms"] / \
                    lat["torchscript"]["median_ms"]
            rows.append(row)
            _print_row(row)
    summary = {
        "cpu": _cpu_model() or platform.processor(), "torch": torch.__version__, "resolution": res,
        "all_passed": all(r["validation"].get(e, {}).get("passed") for r in rows for e, _ in EXPORTERS),
        "rows": rows,
    }
    print(json.dumps(summary, default=str))


def _print_row(row: dict) -> None:
    print(f"\n== {row['supernet']}  {row['config']}")
    for exporter, check in row["validation"].items():
        times = ", ".join(f"{t:.1f}s" for t in row["export_s"].get(exporter, []))
        print(f"   {exporter:<12} passed={check.get('passed')} max_abs={check.get('max_abs')} "
              f"nodes={row['nodes'].get(exporter)} export {times} {check.get('error', '')}")
    if "ort_ms" in row:
        print(f"   export time dynamo/torchscript {row['export_time_ratio_dynamo_over_torchscript']:.2f}x; ORT latency "
              f"dynamo/torchscript {row['ort_latency_ratio_dynamo_over_torchscript']:.3f} "
              f"({row['ort_ms']['dynamo']:.2f} vs {row['ort_ms']['torchscript']:.2f} ms)")
    sys.stdout.flush()


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


if __name__ == "__main__":
    main()
