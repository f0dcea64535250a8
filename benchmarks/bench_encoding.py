"""Architecture encoding throughput: one batched `encode_genes` call vs encoding the same rows one by one.

On N random OFA-MBv3 w1.2 gene rows, measured side by side in one run (rounds interleaved, so drift hits both
alike; median of rounds). The ratio per-row / batched is what matters: it says how much the vectorised path
saves, whatever the machine's speed. Checks that both give the same array.

    .venv/bin/python benchmarks/bench_encoding.py [--n 20000] [--per-row 2000] [--rounds 5]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from ofa_deploy.hostinfo import read_host  # noqa: E402
from ofa_deploy.predictors.encoding import default_encoder  # noqa: E402
from ofa_deploy.spaces import get_space  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000, help="rows encoded by the batched call")
    parser.add_argument("--per-row", type=int, default=2000, help="rows encoded one by one (per-row cost scales)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=4)
    args = parser.parse_args()

    enc = default_encoder(get_space("ofa_mbv3_w12"))
    genes = enc.space.sample_genes(args.n, args.seed)
    batched_s, per_row_s = [], []
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        x = enc.encode_genes(genes)
        batched_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        rows = [enc.encode_genes(genes[i:i + 1]) for i in range(args.per_row)]
        per_row_s.append(time.perf_counter() - t0)
    np.testing.assert_array_equal(np.concatenate(rows), x[:args.per_row])
    batched_us = statistics.median(batched_s) / args.n * 1e6
    per_row_us = statistics.median(per_row_s) / args.per_row * 1e6
    print(f"batched  {batched_us:8.3f} us/row ({args.n} rows per call)")
    print(f"per row  {per_row_us:8.3f} us/row ({args.per_row} calls)")
    print(f"ratio per-row / batched: {per_row_us / batched_us:.1f}x")
    host = read_host()
    print(json.dumps({"bench": "encoding", "cpu": host.cpu_model, "cores": host.cores, "n": args.n,
                      "rounds": args.rounds, "batched_us_per_row": batched_us, "per_row_us_per_row": per_row_us,
                      "ratio": per_row_us / batched_us}))


if __name__ == "__main__":
    main()
