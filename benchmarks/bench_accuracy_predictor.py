"""Accuracy predictor throughput: ofa-deploy (batched on gene arrays) vs the reference OFA predictor.

On the same N random architectures of each released predictor's space, measured side by side in one run
(rounds interleaved, median of rounds):
  * ResNet50 (OFA's released ``layers.*``/``base_acc`` weights): ours ``predict_genes(genes)`` and
    ``predict(configs)`` vs OFA ``nas.accuracy_predictor.AccuracyPredictor.predict_acc(arch_dicts)``;
  * MBv3 tutorial predictor (128-wide): ours vs OFA ``tutorial.AccuracyPredictor.predict_accuracy``;
  * the reference again with the CPU flushing subnormals (``torch.set_flush_denormal``): OFA's released
    ResNet50 weights hold ~330K float32 subnormals that slow CPU matmuls ~40x; we zero them on load.
Predictions are compared (max abs difference printed). Throughput in architectures per second.

    .venv/bin/python benchmarks/bench_accuracy_predictor.py [--n 1000,10000] [--rounds 5] [--threads 1]
"""
from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from ofa_deploy.predictors.accuracy import RESNET50_RESOLUTIONS, load_ofa_predictor  # noqa: E402
from tests.ofa_reference import import_ofa  # noqa: E402

SHARED = REPO.parent / "shared" / "reference" / "ofa"


def _tutorial_module():
    import ofa

    path = Path(ofa.__file__).parent / "tutorial" / "accuracy_predictor.py"
    spec = importlib.util.spec_from_file_location("ofa_tutorial_accuracy_predictor", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _median_rate(fns: dict[str, Callable[[], np.ndarray]], n: int, rounds: int) -> dict[str, float]:
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for name, fn in fns.items():  # interleaved: drift hits every contender alike
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {k: n / statistics.median(v) for k, v in times.items()}


def bench(kind: str, n: int, rounds: int) -> None:
    import_ofa()
    if kind == "resnet50":
        from ofa.nas.accuracy_predictor import AccuracyPredictor, ResNetArchEncoder

        path = SHARED / "acc_predictor_resnet50.pth"
        ours = load_ofa_predictor(path, kind="resnet50")
        ref = AccuracyPredictor(ResNetArchEncoder(image_size_list=list(RESNET50_RESOLUTIONS)),
                                checkpoint_path=str(path), device="cpu")
        cfgs = ours.space.sample_batch(n, 0)
        dicts = [c.to_ofa() for c in cfgs]

        def reference() -> np.ndarray:
            with torch.no_grad():
                return ref.predict_acc(dicts).numpy()
    else:
        path = SHARED / "acc_predictor_mbv3_tutorial.pth"
        ours = load_ofa_predictor(path, kind="mbv3_tutorial")
        ref = _tutorial_module().AccuracyPredictor(pretrained=False, device="cpu")
        ref.model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        cfgs = ours.space.sample_batch(n, 0)
        dicts = [{"ks": list(c.kernel_sizes), "e": [int(e) for e in c.expand_ratios], "d": list(c.depths),
                  "r": [c.resolution]} for c in cfgs]

        def reference() -> np.ndarray:
            return ref.predict_accuracy(dicts).numpy().reshape(-1)

    genes = ours.space.to_genes(cfgs)
    diff = float(np.abs(ours.predict_genes(genes) - reference()).max())
    def reference_ftz() -> np.ndarray:
        # OFA's released ResNet50 weights hold float32 subnormals (we zero them on load); flushing them in
        # the CPU instead separates that effect from batching and encoding.
        torch.set_flush_denormal(True)
        try:
            return reference()
        finally:
            torch.set_flush_denormal(False)

    rates = _median_rate({"ours predict_genes": lambda: ours.predict_genes(genes),
                          "ours predict(configs)": lambda: ours.predict(cfgs),
                          "OFA reference": reference,
                          "OFA ref, denormals flushed": reference_ftz}, n, rounds)
    ref_rate = rates["OFA reference"]
    print(f"\n{kind}: N={n} architectures, {rounds} interleaved rounds, max |ours - OFA| = {diff:.2e}")
    for name, rate in rates.items():
        print(f"  {name:28s} {rate:12,.0f} arch/s   {rate / ref_rate:6.1f}x OFA")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", default="1000,10000", help="comma-separated population sizes")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s)")
    for kind in ("resnet50", "mbv3_tutorial"):
        for n in (int(v) for v in args.n.split(",")):
            bench(kind, n, args.rounds)


if __name__ == "__main__":
    main()
