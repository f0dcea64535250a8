"""LUT latency prediction throughput: our batched gene path vs OFA's MBv3LatencyTable, in one run.

Same subnets (random OFA-MBv3 w1.2 configs at the Note10 resolutions 160..224 step 16), same Note10
tables. The reference side is `ofa.nas.efficiency_predictor.latency_lookup_table.MBv3LatencyTable`
fed with ``yaml.safe_load`` (its own loader calls ``yaml.load`` without a Loader, which PyYAML >= 6
rejects). Timed for the reference:

* ``ref_lut``: ``predict_network_latency_given_config`` on net configs prepared beforehand (LUT walk only);
* ``ref_search_path``: what OFA's ``Mbv3LatencyModel.get_efficiency`` does per candidate during search:
  ``set_active_subnet`` + ``get_active_net_config`` + the LUT walk.

Ours: ``LatencyPredictor.predict_genes`` on the whole (N, n_genes) array (gather tables built once,
their build time reported separately) and the per-config ``predict`` walk. Also checks that both
sides give the same numbers.

    .venv/bin/python benchmarks/bench_latency_predictor.py [--n 2000] [--repeats 5]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.ofa_reference import SHARED_OFA, import_ofa  # noqa: E402

RESOLUTIONS = (160, 176, 192, 208, 224)


def best_of(fn, repeats: int) -> float:
    """Best wall time (s) of `repeats` calls (a shared machine: the minimum is the least disturbed)."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="subnets")
    parser.add_argument("--repeats", type=int, default=5, help="timing repeats (best kept)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    ref = import_ofa()
    from ofa.nas.efficiency_predictor.latency_lookup_table import MBv3LatencyTable

    from ofa_deploy.compat.ofa_lut import load_ofa_lut
    from ofa_deploy.predictors.latency import LatencyPredictor
    from ofa_deploy.spaces import get_space

    class RefTable(MBv3LatencyTable):
        def __init__(self, path: Path) -> None:  # local file, safe loader
            self.lut = yaml.safe_load(path.read_text())

    ref_tables = {r: RefTable(SHARED_OFA / f"note10_{r}_lookup_table.yaml") for r in RESOLUTIONS}
    net = ref.OFAMobileNetV3(width_mult=1.2, ks_list=[3, 5, 7], expand_ratio_list=[3, 4, 6], depth_list=[2, 3, 4])

    space = get_space("ofa_mbv3_w12", resolutions=RESOLUTIONS)
    t0 = time.perf_counter()
    table = load_ofa_lut(SHARED_OFA, space)
    t_load = time.perf_counter() - t0
    genes = space.sample_genes(args.n, args.seed)
    cfgs = space.from_genes(genes)

    predictor = LatencyPredictor(space, table)
    t0 = time.perf_counter()
    predictor.predict_genes(genes[:1])  # builds the gather tables
    t_build = time.perf_counter() - t0

    arches = [c.to_ofa() for c in cfgs]
    net_configs = []
    for arch in arches:
        net.set_active_subnet(ks=arch["ks"], e=arch["e"], d=arch["d"])
        net_configs.append(net.get_active_net_config())

    def ref_lut() -> list[float]:
        return [ref_tables[a["image_size"]].predict_network_latency_given_config(c, a["image_size"])
                for a, c in zip(arches, net_configs)]

    def ref_search_path() -> list[float]:
        out = []
        for a in arches:
            net.set_active_subnet(ks=a["ks"], e=a["e"], d=a["d"])
            out.append(ref_tables[a["image_size"]].predict_network_latency_given_config(
                net.get_active_net_config(), a["image_size"]))
        return out

    theirs = np.array(ref_lut())
    ours = predictor.predict_genes(genes)
    walk = predictor.predict(cfgs)
    max_diff = float(np.max(np.abs(ours - theirs)))
    exact = int(np.sum(ours == theirs))

    reps_slow = max(1, min(args.repeats, 2))
    t_ref_lut = best_of(ref_lut, reps_slow)
    t_ref_search = best_of(ref_search_path, reps_slow)
    t_ours = best_of(lambda: predictor.predict_genes(genes), args.repeats)
    t_walk = best_of(lambda: predictor.predict(cfgs), reps_slow)

    pop = genes[:100]
    t_pop = best_of(lambda: predictor.predict_genes(pop), args.repeats * 4)
    t_pop_ref = best_of(lambda: [ref_tables[a["image_size"]].predict_network_latency_given_config(c, a["image_size"])
                                 for a, c in zip(arches[:100], net_configs[:100])], reps_slow)

    n = args.n
    print(f"subnets: {n} (OFA-MBv3 w1.2, resolutions {RESOLUTIONS}), Note10 tables")
    print(f"agreement: max |ours - ref| = {max_diff:.3g} ms; bitwise equal on {exact}/{n}; "
          f"gene path == walk: {bool(np.array_equal(ours, walk))}")
    print(f"one-time: load OFA YAML {t_load * 1e3:.1f} ms, build gather tables {t_build * 1e3:.1f} ms")
    rows = [
        ("ref MBv3LatencyTable.predict_network_latency_given_config", t_ref_lut),
        ("ref search path (set_active_subnet + get_active_net_config + LUT)", t_ref_search),
        ("ours LatencyPredictor.predict (per-config walk)", t_walk),
        ("ours LatencyPredictor.predict_genes (batched)", t_ours),
    ]
    for name, t in rows:
        print(f"  {name:68s} {n / t:12,.0f} subnets/s  ({t * 1e3:9.2f} ms)")
    print(f"one search generation (population 100): ours {t_pop * 1e6:.0f} us per call, "
          f"ref LUT walk {t_pop_ref * 1e3:.1f} ms ({t_pop_ref / t_pop:,.0f}x)")
    print(f"speed-up of predict_genes: {t_ref_lut / t_ours:,.0f}x vs ref LUT walk, "
          f"{t_ref_search / t_ours:,.0f}x vs ref search path; "
          f"including the one-time gather build: {t_ref_lut / (t_ours + t_build):,.1f}x vs ref LUT walk")


if __name__ == "__main__":
    main()
