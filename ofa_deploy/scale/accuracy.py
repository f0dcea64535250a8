"""The accuracy-dataset job: one (architecture, resolution) item -> BN-recalibrated top-1, on any executor.

The job carries the supernet and the calibration and holdout images (not the training set); a worker builds
it once (`build`: its own copy of the supernet, on CUDA when the worker has a GPU, `threads` torch threads in a
worker process) and then evaluates items.
The result is the record the driver appends to the dataset file.

The classes live in `ofa_deploy.predictors.dataset` (which runs them); this module re-exports them, so
`scale` depends on `predictors` and not the other way round.
"""
from __future__ import annotations

from ofa_deploy.predictors.dataset import AccuracyEvaluator, AccuracyJob

__all__ = ["AccuracyEvaluator", "AccuracyJob"]
