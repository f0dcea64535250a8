"""Build search objectives from files: accuracy predictors, latency tables (ours or OFA's), MACs.

Kept apart from the algorithms so that `ofa_deploy.search` stays importable without torch; the
loaders import the predictor modules when called.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from ofa_deploy.errors import ConfigError
from ofa_deploy.search.objectives import Objective, accuracy_objective, latency_objective, macs_objective
from ofa_deploy.spaces.base import SearchSpace


def load_accuracy(*, predictor_dir: str | os.PathLike[str] | None = None,
                  ofa_predictor: str | os.PathLike[str] | None = None, ofa_kind: str = "auto",
                  space: SearchSpace | None = None) -> tuple[SearchSpace, Objective]:
    """An accuracy objective (values in %) and the space its genes refer to.

    Exactly one of `predictor_dir` (saved by ``ofa-deploy accuracy train-predictor``) and `ofa_predictor`
    (OFA's released weights, `ofa_kind` ``"auto"``, ``"mbv3_tutorial"`` or ``"resnet50"``) must be given.
    """
    from ofa_deploy.predictors.accuracy import AccuracyPredictor, load_ofa_predictor

    if (predictor_dir is None) == (ofa_predictor is None):
        raise ConfigError("give exactly one accuracy predictor: a predictor directory or OFA's released weights")
    if predictor_dir is not None:
        pred = AccuracyPredictor.load(predictor_dir, space=space)
    else:
        pred = load_ofa_predictor(Path(ofa_predictor), kind=ofa_kind, space=space)  # type: ignore[arg-type]
    return pred.space, accuracy_objective(pred)


def load_latency(space: SearchSpace, *, luts: Sequence[str | os.PathLike[str]] = (),
                 ofa_luts: Sequence[str | os.PathLike[str]] = (), ofa_device: str | None = None) -> list[Objective]:
    """One latency objective (ms) per table: our LUT files and/or OFA YAML table directories."""
    from ofa_deploy.compat.ofa_lut import load_ofa_lut
    from ofa_deploy.predictors.latency import LatencyPredictor
    from ofa_deploy.tables.latency import LatencyTable

    from ofa_deploy.profiling.hosts.fingerprint import warn_if_foreign

    tables = [LatencyTable.load(p) for p in luts]
    for path, table in zip(luts, tables):
        warn_if_foreign(table, source=f"latency table {path}")
    tables += [load_ofa_lut(p, space, device=ofa_device) for p in ofa_luts]
    objectives, seen = [], set()
    for table in tables:
        prov = table.provenance
        target = prov.profile_name or prov.device or "lut"
        while target in seen:  # two tables for the same device: keep labels unique
            target += "'"
        seen.add(target)
        objectives.append(latency_objective(LatencyPredictor(space, table), target=target))
    return objectives


def load_macs(space: SearchSpace) -> Objective:
    """MACs (in millions) counted analytically from the layer walk."""
    from ofa_deploy.predictors.latency import MacsPredictor

    return macs_objective(MacsPredictor(space))


@contextlib.contextmanager
def predictor_threads(n: int | None = 1) -> Iterator[None]:
    """Run torch predictors with `n` intra-op threads inside the block, then restore the previous count.

    A search scores batches of ~20-100 subnets: too small for threads to help, and on a busy machine
    idle-spinning OpenMP workers make it several times slower. None leaves torch's setting alone.
    """
    if n is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)
