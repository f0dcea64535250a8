"""The accuracy-dataset job: one (architecture, resolution) item → BN-recalibrated top-1, on any executor.

The job carries the supernet and the calibration and holdout images (not the training set); a worker builds
it once (`build`: its own copy of the supernet, on CUDA when the worker has a GPU, `threads` torch threads in a
worker process) and then evaluates items.
The result is the record the driver appends to the dataset file.
"""
from __future__ import annotations

import copy
import dataclasses
import os
import time
from typing import Any

from torch import nn

from ofa_deploy.data import DataSplits


@dataclasses.dataclass
class AccuracyJob:
    """A job factory: `build()` returns the evaluator a worker applies to subnet strings."""

    supernet: nn.Module
    data: DataSplits
    calibration_batch_size: int = 256
    eval_batch_size: int = 512
    threads: int = 1
    device: str = "auto"
    origin_pid: int = dataclasses.field(default_factory=os.getpid)

    @classmethod
    def create(cls, supernet: nn.Module, data: DataSplits, **kwargs: Any) -> AccuracyJob:
        """The job without the training split (workers only need calibration and holdout images)."""
        return cls(supernet, dataclasses.replace(data, train=data.calibration), **kwargs)

    def build(self) -> AccuracyEvaluator:
        import torch

        if os.getpid() != self.origin_pid:  # a worker process: its own torch threads (the driver's are left)
            torch.set_num_threads(self.threads)
        device = self.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        model = copy.deepcopy(self.supernet).to(device)
        return AccuracyEvaluator(model, self.data, self.calibration_batch_size, self.eval_batch_size)


@dataclasses.dataclass
class AccuracyEvaluator:
    """A worker's private supernet copy and data: evaluates one subnet string per call."""

    model: nn.Module
    data: DataSplits
    calibration_batch_size: int
    eval_batch_size: int

    def __call__(self, config: str) -> dict[str, Any]:
        from ofa_deploy.predictors.dataset import evaluate_subnet
        from ofa_deploy.spaces import SubnetConfig

        cfg = SubnetConfig.from_string(config)
        t0 = time.perf_counter()
        top1 = evaluate_subnet(self.model, cfg, self.data, calibration_batch_size=self.calibration_batch_size,
                               eval_batch_size=self.eval_batch_size)
        return {"config": cfg.to_string(), "resolution": cfg.resolution, "top1": top1,
                "n_holdout": len(self.data.holdout), "seconds": round(time.perf_counter() - t0, 4)}


__all__ = ["AccuracyEvaluator", "AccuracyJob"]
