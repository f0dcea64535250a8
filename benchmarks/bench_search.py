"""Search speed and quality vs OFA's reference evolution finder, side by side in one run.

Inputs (the OFA tutorial's demo): the Note10 latency tables for OFA-MBv3 w1.2 at resolutions
160..224 step 16, the released tutorial accuracy predictor, a 25 ms budget. The reference side runs
`ofa.tutorial.EvolutionFinder` (the finder that fits the tutorial predictor and its
``{"ks", "e", "d", "r"}`` specs) with `ofa.tutorial.LatencyTable`'s own lookup code and
`ofa.tutorial.AccuracyPredictor`'s own encoding and MLP. Thin adapters only load files: the tables
with ``yaml.safe_load`` (the reference calls ``yaml.load`` without a Loader, which PyYAML >= 6
rejects) and the weights from disk instead of the network.

    .venv/bin/python benchmarks/bench_search.py [--generations 500] [--population 100] [--seeds 3]

Prints both predicted accuracies (the reference's and ours re-scored by the reference predictor and
LUT), the time ratio (goal: ours >= 20x faster) and OFA's published figure (81.71% at 24.73 ms).
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
import types
from pathlib import Path

import numpy as np
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.ofa_reference import SHARED_OFA, import_ofa  # noqa: E402

RESOLUTIONS = (160, 176, 192, 208, 224)


def reference_modules() -> types.SimpleNamespace:
    """`ofa.tutorial` without its ImageNet helper (needs torchvision, not installed)."""
    import_ofa()
    helper = types.ModuleType("ofa.tutorial.imagenet_eval_helper")
    helper.evaluate_ofa_subnet = helper.evaluate_ofa_specialized = None
    sys.modules.setdefault("ofa.tutorial.imagenet_eval_helper", helper)
    import ofa.tutorial.accuracy_predictor as ap
    import ofa.tutorial.evolution_finder as ef
    import ofa.tutorial.latency_table as lt

    return types.SimpleNamespace(ap=ap, ef=ef, lt=lt)


def reference_latency_table(ref: types.SimpleNamespace, ofa_dir: Path):
    """`ofa.tutorial.LatencyTable` over the local Note10 files (its own query / walk code)."""
    table = ref.lt.LatencyTable.__new__(ref.lt.LatencyTable)
    table.latency_tables = {}
    for r in RESOLUTIONS:
        est = ref.lt.LatencyEstimator.__new__(ref.lt.LatencyEstimator)
        with open(ofa_dir / f"note10_{r}_lookup_table.yaml") as fp:
            est.lut = yaml.safe_load(fp)
        table.latency_tables[r] = est
    return table


def reference_predictor(ref: types.SimpleNamespace, ofa_dir: Path):
    """`ofa.tutorial.AccuracyPredictor` on CPU with the released weights loaded from disk."""
    pred = ref.ap.AccuracyPredictor(pretrained=False, device="cpu")
    pred.model.load_state_dict(torch.load(ofa_dir / "acc_predictor_mbv3_tutorial.pth", weights_only=True,
                                          map_location="cpu"))
    pred.model.eval()
    return pred


def run_reference(ref, table, pred, *, budget: float, generations: int, population: int, seed: int) -> dict:
    random.seed(seed)
    np.random.seed(seed)
    finder = ref.ef.EvolutionFinder("note10", budget, table, pred, max_time_budget=generations,
                                    population_size=population)
    t0, c0 = time.perf_counter(), time.process_time()
    _, (acc, spec, eff) = finder.run_evolution_search(verbose=False)
    return {"seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0,
            "accuracy": 100 * float(acc), "latency_ms": float(eff),
            "arch": {"ks": spec["ks"], "e": spec["e"], "d": spec["d"], "r": spec["r"][0]}}


def ours_objectives(ofa_dir: Path):
    from ofa_deploy.compat.ofa_lut import load_ofa_lut
    from ofa_deploy.predictors.accuracy import load_ofa_predictor
    from ofa_deploy.predictors.latency import LatencyPredictor
    from ofa_deploy.search import accuracy_objective, latency_objective

    acc_pred = load_ofa_predictor(ofa_dir / "acc_predictor_mbv3_tutorial.pth", kind="mbv3_tutorial")
    space = acc_pred.space
    table = load_ofa_lut({r: ofa_dir / f"note10_{r}_lookup_table.yaml" for r in RESOLUTIONS}, space, device="note10")
    lat_pred = LatencyPredictor(space, table)
    return space, accuracy_objective(acc_pred), latency_objective(lat_pred, target="note10")


def run_ours(space, acc, lat, *, budget: float, generations: int, population: int, seed: int) -> dict:
    from ofa_deploy.search import Budget, EvolutionSettings, GeneDomain, evolution_search

    domain = GeneDomain.for_space(space, resolutions=RESOLUTIONS)
    t0, c0 = time.perf_counter(), time.process_time()
    res = evolution_search(domain=domain, objective=acc, budgets=[Budget(lat, budget)],
                           settings=EvolutionSettings(population_size=population, generations=generations), seed=seed)
    cfg = res.best_config
    return {"seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0,
            "accuracy": res.score, "latency_ms": res.efficiency[lat.label],
            "arch": {"ks": list(cfg.kernel_sizes), "e": [int(e) for e in cfg.expand_ratios], "d": list(cfg.depths),
                     "r": cfg.resolution}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=25.0)
    ap.add_argument("--generations", type=int, default=500)
    ap.add_argument("--population", type=int, default=100)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    ap.add_argument("--flush-denormal", action="store_true",
                    help="torch.set_flush_denormal(True) for both sides (OFA's released predictor weights hold float32 "
                         "subnormals, which are slow on x86; ofa-deploy's loader zeroes them)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.flush_denormal:
        torch.set_flush_denormal(True)
    ofa_dir = SHARED_OFA
    ref = reference_modules()
    table, pred = reference_latency_table(ref, ofa_dir), reference_predictor(ref, ofa_dir)
    space, acc, lat = ours_objectives(ofa_dir)
    kw = dict(budget=args.budget, generations=args.generations, population=args.population)

    rows = []
    for seed in range(args.seeds):  # interleave the two so machine drift hits both alike
        r = run_reference(ref, table, pred, seed=seed, **kw)
        o = run_ours(space, acc, lat, seed=seed, **kw)
        # re-score our best subnet with the reference's own predictor and LUT walk
        spec = {"wid": None, "ks": o["arch"]["ks"], "e": o["arch"]["e"], "d": o["arch"]["d"], "r": [o["arch"]["r"]]}
        o["reference_accuracy"] = 100 * float(pred.predict_accuracy([spec])[0])
        o["reference_latency_ms"] = float(table.predict_efficiency(spec))
        rows.append({"seed": seed, "reference": r, "ours": o})
        print(f"seed {seed}: reference {r['accuracy']:.2f}% @ {r['latency_ms']:.2f} ms in {r['seconds']:.2f} s | "
              f"ours {o['accuracy']:.2f}% @ {o['latency_ms']:.2f} ms in {o['seconds']:.3f} s "
              f"(reference re-score {o['reference_accuracy']:.2f}% @ {o['reference_latency_ms']:.2f} ms) | "
              f"speed-up {r['seconds'] / o['seconds']:.1f}x wall, {r['cpu_seconds'] / o['cpu_seconds']:.1f}x CPU time",
              flush=True)
    t_ref = float(np.median([x["reference"]["seconds"] for x in rows]))
    t_ours = float(np.median([x["ours"]["seconds"] for x in rows]))
    c_ref = float(np.median([x["reference"]["cpu_seconds"] for x in rows]))
    c_ours = float(np.median([x["ours"]["cpu_seconds"] for x in rows]))
    summary = {
        "flush_denormal": args.flush_denormal, "budget_ms": args.budget, "generations": args.generations,
        "population": args.population,
        "reference_median_s": t_ref, "ours_median_s": t_ours, "speedup": t_ref / t_ours,
        "reference_median_cpu_s": c_ref, "ours_median_cpu_s": c_ours, "speedup_cpu": c_ref / c_ours,
        "reference_best_accuracy": max(x["reference"]["accuracy"] for x in rows),
        "ours_best_accuracy": max(x["ours"]["accuracy"] for x in rows),
        "ofa_published": {"accuracy": 81.71, "latency_ms": 24.73},
        "runs": rows,
    }
    print(f"\nmedian wall time: reference {t_ref:.2f} s, ours {t_ours:.3f} s -> {t_ref / t_ours:.1f}x faster "
          "(goal >= 20x)")
    print(f"median CPU time:  reference {c_ref:.2f} s, ours {c_ours:.3f} s -> {c_ref / c_ours:.1f}x less CPU "
          "(both single-threaded; less sensitive to other load on a shared machine)")
    print(f"best predicted accuracy: reference {summary['reference_best_accuracy']:.2f}%, "
          f"ours {summary['ours_best_accuracy']:.2f}% (OFA tutorial: 81.71% at 24.73 ms)")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
