"""Subnet extraction and MAC counting: ofa-deploy vs the reference OFA package, measured side by side.

For each released space, on the same N random subnets:
  * extraction: ``create_supernet(name).extract(cfg)`` vs OFA ``set_active_subnet(...)`` +
    ``get_active_subnet(preserve_weight=True)`` (interleaved per subnet, median ms per subnet);
  * MAC counting throughput (subnets/s): our analytic ``count_subnet`` vs what OFA users do,
    ``count_net_flops`` (hook counter) on an extracted subnet (extraction + count), vs the hook
    counter alone on pre-extracted subnets, and vs OFA's own analytic ``*FLOPsModel.get_efficiency``.
Every subnet's MACs are compared across the counters; any disagreement is printed.

    .venv/bin/python benchmarks/bench_core.py [--n 20] [--threads 1] [--spaces ofa_mbv3_w10,...]
"""
from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from ofa_deploy.predictors.macs import count_subnet  # noqa: E402
from ofa_deploy.spaces import SubnetConfig, get_space, list_spaces  # noqa: E402
from ofa_deploy.supernets import create_supernet  # noqa: E402
from tests.ofa_reference import import_ofa  # noqa: E402


def reference_supernet(ref: Any, name: str) -> tuple[Any, Any]:
    """The reference supernet of a released space and its analytic FLOPs model."""
    import ofa.nas.efficiency_predictor as eff

    mobile = {"ks_list": [3, 5, 7], "expand_ratio_list": [3, 4, 6], "depth_list": [2, 3, 4], "dropout_rate": 0}
    if name == "ofa_mbv3_w10":
        net = ref.OFAMobileNetV3(width_mult=1.0, **mobile)
        return net, eff.Mbv3FLOPsModel(net)
    if name == "ofa_mbv3_w12":
        net = ref.OFAMobileNetV3(width_mult=1.2, **mobile)
        return net, eff.Mbv3FLOPsModel(net)
    if name == "ofa_proxyless_w13":
        net = ref.OFAProxylessNASNets(width_mult=1.3, **mobile)
        return net, eff.ProxylessNASFLOPsModel(net)
    net = ref.OFAResNets(dropout_rate=0, depth_list=[0, 1, 2], expand_ratio_list=[0.2, 0.25, 0.35],
                         width_mult_list=[0.65, 0.8, 1.0])
    return net, eff.ResNet50FLOPsModel(net)


def ofa_arch(cfg: SubnetConfig) -> dict[str, Any]:
    arch = cfg.to_ofa()
    arch.pop("image_size")
    return arch


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def bench_space(ref: Any, name: str, n: int, seed: int) -> dict[str, Any]:
    space = get_space(name)
    cfgs = space.sample_batch(n, seed)
    t_ours_build, ours = timed(lambda: create_supernet(name).eval())
    t_ref_build, (theirs, flops_model) = timed(lambda: reference_supernet(ref, name))
    theirs.eval()

    def ref_extract(cfg: SubnetConfig) -> Any:
        theirs.set_active_subnet(**ofa_arch(cfg))
        return theirs.get_active_subnet(preserve_weight=True)

    # extraction, interleaved (alternating which side goes first) so machine drift hits both
    t_ours, t_ref, ref_subnets = [], [], []
    for i, cfg in enumerate(cfgs):
        if i % 2:
            t_ours.append(timed(lambda: ours.extract(cfg))[0])
            dt, sub = timed(lambda: ref_extract(cfg))
        else:
            dt, sub = timed(lambda: ref_extract(cfg))
            t_ours.append(timed(lambda: ours.extract(cfg))[0])
        t_ref.append(dt)
        ref_subnets.append(sub)

    # MAC counting
    ours_macs = [count_subnet(space, cfg).macs for cfg in cfgs]
    reps, t_analytic = 0, 0.0
    while t_analytic < 0.5:  # repeat the (fast) analytic pass for a stable rate
        t_analytic += timed(lambda: [count_subnet(space, cfg).macs for cfg in cfgs])[0]
        reps += 1
    hook_macs, t_hook_only, t_hook_users = [], 0.0, 0.0
    for cfg, sub in zip(cfgs, ref_subnets):
        shape = (1, 3, cfg.resolution, cfg.resolution)
        dt, macs = timed(lambda: ref.count_net_flops(sub, shape))
        t_hook_only += dt
        t_hook_users += dt
        hook_macs.append(int(round(macs)))
    t_hook_users += sum(t_ref)  # users extract first, then count
    ofa_analytic, t_ofa_analytic = [], 0.0
    for cfg in cfgs:
        arch = {**ofa_arch(cfg), "image_size": cfg.resolution}
        try:
            dt, mmacs = timed(lambda: flops_model.get_efficiency(copy.deepcopy(arch)))
        except Exception as exc:  # e.g. OFA's ResNet config holds an IdentityLayer object
            ofa_analytic = [f"fails: {type(exc).__name__}: {exc}"]
            break
        t_ofa_analytic += dt
        ofa_analytic.append(mmacs)

    mismatches = [(c.to_string(), a, h) for c, a, h in zip(cfgs, ours_macs, hook_macs)
                  if abs(a - h) > max(2, 1e-6 * a)]  # OFA sums in float32
    analytic_mismatch = None
    if ofa_analytic and not isinstance(ofa_analytic[0], str):
        worst = max(abs(a / 1e6 - m) / (a / 1e6) for a, m in zip(ours_macs, ofa_analytic))
        analytic_mismatch = worst
    return {
        "name": name, "n": n,
        "build_s": (t_ours_build, t_ref_build),
        "extract_ms": (1e3 * statistics.median(t_ours), 1e3 * statistics.median(t_ref)),
        "count_per_s": {
            "ours_analytic": reps * n / t_analytic,
            "ofa_extract_and_hook": n / t_hook_users,
            "ofa_hook_only": n / t_hook_only,
            "ofa_analytic": (n / t_ofa_analytic) if t_ofa_analytic else ofa_analytic[0],
        },
        "hook_mismatches": mismatches,
        "ofa_analytic_max_rel_diff": analytic_mismatch,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20, help="subnets per space")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads for both sides")
    parser.add_argument("--spaces", default=",".join(list_spaces()))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    ref = import_ofa()
    print(f"# bench_core: n={args.n} subnets per space, seed {args.seed}, torch {torch.__version__}, "
          f"{args.threads} thread(s)")
    print(f"{'space':<18} {'extract ms ours':>15} {'ofa':>8} {'ofa/ours':>9} | {'MAC count subnets/s ours':>24} "
          f"{'ofa ext+hook':>12} {'ratio':>7} {'ofa hook':>9} {'ratio':>7} {'ofa analytic':>12} {'ratio':>7}")
    failures = 0
    for name in args.spaces.split(","):
        r = bench_space(ref, name, args.n, args.seed)
        e_ours, e_ref = r["extract_ms"]
        c = r["count_per_s"]
        ofa_an = c["ofa_analytic"]
        an_cols = (f"{ofa_an:>12.1f} {c['ours_analytic'] / ofa_an:>6.0f}x" if isinstance(ofa_an, float)
                   else f"{'fails':>12} {'-':>7}")
        print(f"{name:<18} {e_ours:>15.1f} {e_ref:>8.1f} {e_ref / e_ours:>8.2f}x | {c['ours_analytic']:>24.0f} "
              f"{c['ofa_extract_and_hook']:>12.2f} {c['ours_analytic'] / c['ofa_extract_and_hook']:>6.0f}x "
              f"{c['ofa_hook_only']:>9.2f} {c['ours_analytic'] / c['ofa_hook_only']:>6.0f}x {an_cols}")
        b_ours, b_ref = r["build_s"]
        notes = [f"supernet build {b_ours:.2f}s ours / {b_ref:.2f}s ofa"]
        if r["hook_mismatches"]:
            failures += 1
            notes.append(f"MAC MISMATCH vs OFA hook on {len(r['hook_mismatches'])} subnets: {r['hook_mismatches'][:2]}")
        else:
            notes.append("MACs == OFA count_net_flops on all subnets")
        if isinstance(ofa_an, str):
            notes.append(f"OFA analytic model {ofa_an}")
        elif r["ofa_analytic_max_rel_diff"] is not None:
            notes.append(f"OFA analytic model max rel diff {r['ofa_analytic_max_rel_diff']:.2e}")
        print(f"{'':<18} ({'; '.join(notes)})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
