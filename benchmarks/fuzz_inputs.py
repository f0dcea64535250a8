#!/usr/bin/env python3
"""Larger input fuzz run (issue 10): many Hypothesis examples through every target, counted, not asserted.

    python benchmarks/fuzz_inputs.py [--examples-per-target 6000] [--seed 0]

Prints, per target and in total: inputs, accepted, typed errors (OfaDeployError), untyped errors, hangs and
silently accepted invalid inputs, then one example of each distinct bad outcome. Exit code 1 if any input
was untyped, hung or silently accepted. The default suite runs the same targets with a few hundred examples
each (tests/unit/test_fuzz_inputs.py).
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402

from tests.fuzz_inputs import TARGETS, Tally  # noqa: E402


def run(examples: int, rng_seed: int, only: list[str] | None = None) -> Tally:
    tally = Tally()
    for name, (strategy, check) in TARGETS.items():
        if only and name not in only:
            continue
        start = time.perf_counter()
        _fuzz_one(name, strategy, check, tally, examples, rng_seed)
        per = tally.counts.get(name, {})
        print(f"{name:14s} {sum(per.values()):6d} inputs in {time.perf_counter() - start:6.1f}s  "
              f"{dict(sorted(per.items()))}", flush=True)
    return tally


def _fuzz_one(name: str, strategy, check, tally: Tally, examples: int, rng_seed: int) -> None:
    @seed(rng_seed)
    @settings(max_examples=examples, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(strategy())
    def fuzz(drawn: object) -> None:
        tally.add(name, check(drawn), drawn)

    fuzz()


def main() -> int:
    logging.disable(logging.WARNING)  # readers log warnings for tolerated damage (e.g. a torn last line)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples-per-target", type=int, default=6000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="*", help="Targets to run (default: all).")
    args = parser.parse_args()
    start = time.perf_counter()
    tally = run(args.examples_per_target, args.seed, args.only)
    print(f"\ntotal: {tally.total()} inputs in {time.perf_counter() - start:.0f}s; untyped {tally.total('untyped')}, "
          f"hangs {tally.total('hang')}, silently accepted {tally.total('silent')}, typed errors "
          f"{tally.total('typed')}, accepted {tally.total('ok')}")
    for key, example in sorted(tally.examples.items()):
        print(f"  {key}: {example}")
    return 1 if tally.total("untyped") + tally.total("hang") + tally.total("silent") else 0


if __name__ == "__main__":
    sys.exit(main())
