"""Accuracy dataset builder: (subnet × resolution) → top-1 on a holdout, resumable JSON lines.

For each work item (one architecture at one resolution) the builder recalibrates the subnet's BN
statistics on a fixed calibration subset of the training images, as OFA does, then measures top-1
on the holdout split. Work items are independent and idempotent; results are appended to a
JSON-lines file (`ofa_deploy.store.JsonlStore`) whose first line is a provenance header (supernet,
weights sha256, dataset fingerprint, seed, calibration size). Every line is flushed and fsync'd, so an
interrupted build loses at most the item in flight; a resumed build skips stored items and re-evaluates
nothing; an existing file is never overwritten. The
caller's supernet is never modified (the builder recalibrates a private copy).
"""
from __future__ import annotations

import copy
import hashlib
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ofa_deploy.data import DataSplits
from ofa_deploy.errors import ConfigError
from ofa_deploy.nn.bn import recalibrate_bn
from ofa_deploy.executors import Executor, LocalExecutor
from ofa_deploy.predictors.encoding import default_encoder
from ofa_deploy.spaces import SearchSpace, SubnetConfig, space_to_dict
from ofa_deploy.spaces.config import finite_number, short_repr
from ofa_deploy.store import JsonlStore, read_jsonl

log = logging.getLogger(__name__)

KIND = "ofa_deploy.accuracy_dataset"
SCHEMA_VERSION = 1
# header keys a resumed build must share with the file (n_subnets and resolutions may grow: the sample is a prefix)
MATCH_KEYS = ("kind", "supernet", "space", "weights_sha256", "dataset", "seed", "calibration_size")
RESUME_HINT = ("continue it with resume=True (CLI: --resume) and the same supernet, weights, dataset, seed and "
               "calibration size, or write a new file")


@dataclass(frozen=True)
class AccuracyData:
    """A loaded accuracy dataset: configs (with resolution), top-1 fractions, and the header."""

    configs: list[SubnetConfig]
    accuracies: np.ndarray
    header: dict[str, Any]

    def __len__(self) -> int:
        return len(self.configs)


@dataclass(frozen=True)
class BuildSummary:
    path: str
    n_items: int
    n_stored_before: int
    n_evaluated: int
    seconds: float
    top1_min: float
    top1_median: float
    top1_max: float

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def state_dict_sha256(model: nn.Module) -> str:
    """sha256 over a module's state-dict names, dtypes, shapes and bytes (weights provenance)."""
    h = hashlib.sha256()
    for key, value in sorted(model.state_dict().items()):
        t = value.detach().cpu().contiguous()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return h.hexdigest()


def canonical(space: SearchSpace, cfgs: Sequence[SubnetConfig]) -> list[SubnetConfig]:
    """Configs with the choices of skipped blocks reset (same network, same config)."""
    enc = default_encoder(space)
    return enc.decode(enc.encode(cfgs))


def sample_architectures(space: SearchSpace, n: int, *, seed: int) -> list[SubnetConfig]:
    """`n` distinct architectures (at the space's smallest resolution), deterministic in `seed`.

    Sampled one at a time from one stream, so the first `n` of a longer list equal the shorter list.
    """
    rng = np.random.default_rng(seed)
    res = min(space.resolutions)
    seen: set[str] = set()
    out: list[SubnetConfig] = []
    attempts = 0
    while len(out) < n:
        attempts += 1
        if attempts > 50 * n + 1000:
            raise ConfigError(f"{space.name}: could only find {len(out)} distinct architectures of {n} requested")
        cfg = canonical(space, [space.from_genes(space.sample_genes(1, rng))[0].replace(resolution=res)])[0]
        key = cfg.to_string()
        if key not in seen:
            seen.add(key)
            out.append(cfg)
    return out


def evaluate_subnet(supernet: nn.Module, cfg: SubnetConfig, data: DataSplits, *, calibration_batch_size: int = 256,
                    eval_batch_size: int = 512) -> float:
    """Top-1 (fraction) of subnet `cfg` on the holdout after BN recalibration; `supernet` gets new BN stats."""
    res = cfg.resolution
    recalibrate_bn(supernet, data.calibration.batches(res, calibration_batch_size), supernet_config=cfg)
    correct = 0
    with supernet.active(cfg), torch.no_grad():  # type: ignore[attr-defined]
        was_training = supernet.training
        supernet.eval()
        try:
            device = next((p.device for p in supernet.parameters()), torch.device("cpu"))
            for images, labels in data.holdout.batches(res, eval_batch_size):
                correct += int((supernet(images.to(device)).argmax(dim=1).cpu() == labels).sum())
        finally:
            supernet.train(was_training)
    return correct / len(data.holdout)


# The accuracy-dataset job: one (architecture, resolution) item -> BN-recalibrated top-1, on any executor
# (local, process pool or Ray). The job carries the supernet and the calibration and holdout
# images (not the training set); a worker builds it once and then evaluates items.
@dataclass
class AccuracyJob:
    """A job factory: `build()` returns the evaluator a worker applies to subnet strings."""

    supernet: nn.Module
    data: DataSplits
    calibration_batch_size: int = 256
    eval_batch_size: int = 512
    threads: int = 1
    device: str = "auto"
    origin_pid: int = field(default_factory=os.getpid)

    @classmethod
    def create(cls, supernet: nn.Module, data: DataSplits, **kwargs: Any) -> AccuracyJob:
        """The job without the training split (workers only need calibration and holdout images)."""
        return cls(supernet, replace(data, train=data.calibration), **kwargs)

    def build(self) -> AccuracyEvaluator:
        if os.getpid() != self.origin_pid:  # a worker process: its own torch threads (the driver's are left)
            torch.set_num_threads(self.threads)
        device = self.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        model = copy.deepcopy(self.supernet).to(device)
        return AccuracyEvaluator(model, self.data, self.calibration_batch_size, self.eval_batch_size)


@dataclass
class AccuracyEvaluator:
    """A worker's private supernet copy and data: evaluates one subnet string per call."""

    model: nn.Module
    data: DataSplits
    calibration_batch_size: int
    eval_batch_size: int

    def __call__(self, config: str) -> dict[str, Any]:
        cfg = SubnetConfig.from_string(config)
        t0 = time.perf_counter()
        top1 = evaluate_subnet(self.model, cfg, self.data, calibration_batch_size=self.calibration_batch_size,
                               eval_batch_size=self.eval_batch_size)
        return {"config": cfg.to_string(), "resolution": cfg.resolution, "top1": top1,
                "n_holdout": len(self.data.holdout), "seconds": round(time.perf_counter() - t0, 4)}


def _progress(total: int, initial: int, enabled: bool) -> Any:
    from ofa_deploy.progress import progress_bar

    return progress_bar(total=total, initial=initial, desc="accuracy dataset", unit="subnet", disable=not enabled,
                        leave=False)


def build_accuracy_dataset(
    supernet: nn.Module,
    data: DataSplits,
    out: str | os.PathLike[str],
    *,
    n_subnets: int,
    resolutions: Sequence[int] | None = None,
    seed: int = 0,
    resume: bool = False,
    supernet_name: str | None = None,
    weights_sha256: str | None = None,
    calibration_batch_size: int = 256,
    eval_batch_size: int = 512,
    progress: bool = True,
    max_items: int | None = None,
    on_item: Callable[[dict[str, Any]], None] | None = None,
    executor: Executor | None = None,
) -> BuildSummary:
    """Measure `n_subnets` architectures × `resolutions` and append them to the JSON-lines file `out`.

    Args:
        supernet: a trained `Supernet` (copied; the caller's module is not modified).
        data: splits from `ofa_deploy.data` (calibration ⊂ train; holdout for top-1).
        n_subnets: distinct architectures, sampled with `seed`.
        resolutions: default: every resolution of the space.
        resume: continue an existing file (its header must match), skipping stored items.
        max_items: stop after evaluating this many new items (for tests and time-boxed runs).
        on_item: called with each new record after it is stored.
        executor: runs the evaluations (default `LocalExecutor`; a process pool or Ray workers evaluate items in
            parallel, each loading the weights and data once); this process stays the only writer of `out`.
    """
    start = time.perf_counter()
    space: SearchSpace = supernet.space  # type: ignore[attr-defined]
    resolutions = tuple(int(r) for r in (resolutions or space.resolutions))
    for r in resolutions:
        space.check_resolution(r)
    header = {
        "kind": KIND, "schema_version": SCHEMA_VERSION,
        "supernet": supernet_name or space.name, "space": space_to_dict(space),
        "weights_sha256": weights_sha256 or state_dict_sha256(supernet),
        "dataset": {**data.describe(), "holdout_sha256": data.holdout.fingerprint(),
                    "calibration_sha256": data.calibration.fingerprint()},
        "seed": int(seed), "calibration_size": len(data.calibration), "n_subnets": int(n_subnets),
        "resolutions": list(resolutions), "metric": "top1 fraction on the holdout split after BN recalibration",
    }
    store = JsonlStore(out, header, resume=resume, overwrite=False, match=MATCH_KEYS, what="accuracy dataset",
                       hint=RESUME_HINT, check=_record_check(Path(out)))
    done = {rec["config"] for rec in store.records}
    archs = sample_architectures(space, n_subnets, seed=seed)
    items = [a.replace(resolution=r) for r in resolutions for a in archs]
    todo = [c for c in items if c.to_string() not in done]
    n_before = len(items) - len(todo)
    if max_items is not None:
        todo = todo[:max_items]
    job = AccuracyJob.create(supernet, data, calibration_batch_size=calibration_batch_size,
                             eval_batch_size=eval_batch_size)
    with _progress(len(items), n_before, progress) as bar:
        for record in (executor or LocalExecutor()).map(job, [c.to_string() for c in todo]):
            store.append(record)
            if on_item is not None:
                on_item(record)
            bar.update(1)
    wanted = {c.to_string() for c in items}
    accs = np.array([r["top1"] for r in store.records if r["config"] in wanted])
    summary = BuildSummary(
        path=str(out), n_items=len(items), n_stored_before=n_before, n_evaluated=len(todo),
        seconds=time.perf_counter() - start,
        top1_min=float(accs.min()) if accs.size else float("nan"),
        top1_median=float(np.median(accs)) if accs.size else float("nan"),
        top1_max=float(accs.max()) if accs.size else float("nan"),
    )
    log.info("accuracy dataset %s: %d/%d items (%d new) in %.1fs", out, len(accs), len(items), len(todo),
             summary.seconds)
    return summary


def read_records(path: str | os.PathLike[str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(header, records) of an accuracy dataset file; a trailing partial line is ignored."""
    p = Path(path)
    contents = read_jsonl(p, what="accuracy dataset", hint="build one with `ofa-deploy accuracy build-dataset`",
                          check=_record_check(p))
    kind = contents.header.get("kind")
    if kind != KIND:
        raise ConfigError(f"{p} is not an accuracy dataset (first line kind={short_repr(kind)}, expected {KIND!r})")
    return contents.header, contents.records


def _record_check(p: Path) -> Callable[[dict[str, Any], int], dict[str, Any]]:
    return lambda record, n: _check_record(record, p, n)


def _check_record(record: dict[str, Any], p: Path, n: int) -> dict[str, Any]:
    """One dataset line (a JSON object; other lines the store skips): a parseable ``config`` string and
    ``top1`` in [0, 1]."""
    fix = "delete the line (it is re-evaluated on --resume) or rebuild the dataset"
    config, top1 = record.get("config"), record.get("top1")
    if not isinstance(config, str):
        raise ConfigError(f"{p}: line {n} has no 'config' string (got {short_repr(config)}); {fix}")
    try:
        SubnetConfig.from_string(config)
    except ConfigError as exc:
        raise ConfigError(f"{p}: line {n}: {exc}; {fix}") from None
    value = finite_number(top1)
    if value is None or not 0.0 <= value <= 1.0:
        raise ConfigError(f"{p}: line {n} has top1 = {short_repr(top1)}; expected a fraction in [0, 1]; {fix}")
    return record


def load_accuracy_dataset(path: str | os.PathLike[str]) -> AccuracyData:
    """The dataset file as (configs, top-1 fractions, header), ready for `train_predictor`."""
    header, records = read_records(path)
    configs = [SubnetConfig.from_string(r["config"]) for r in records]
    return AccuracyData(configs, np.array([r["top1"] for r in records], dtype=np.float64), header)

