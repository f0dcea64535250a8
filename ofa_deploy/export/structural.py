"""Validation that is never vacuous: structural validation on a randomised-BN copy when outputs are constant.

A random-init OFA supernet's BN statistics (mean 0, variance 1) do not match its activations, which collapse
through depth: the logits of every input agree to a few float32 ulps, so comparing a backend with PyTorch
compares constants. `validate_into` runs the usual validation; when the reference outputs do not depend on the
input (see `ofa_deploy.export.validate.MIN_INPUT_SENSITIVITY`) and the exporter can rebuild its artifact from a
torch module, it validates the *structure* instead: a deep copy with seeded random BN affine parameters and BN
statistics calibrated on one seeded random batch (outputs then vary by O(1)) is exported the same way into a
temporary directory and compared with itself in PyTorch. The report says which model was validated
(``validated_on``) and keeps the model's own, failed, result. Without a rebuild the export fails with the
message of `validate.constant_outputs_message`.
"""
from __future__ import annotations

import copy
import dataclasses
import logging
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ofa_deploy.errors import ConfigError
from ofa_deploy.export.artifacts import ExportReport
from ofa_deploy.export.options import ON_CONSTANT, OnConstant
from ofa_deploy.export.validate import Runner, ValidationResult, validate_runner

log = logging.getLogger(__name__)

STRUCTURAL = "randomised-bn copy"
__all__ = ["STRUCTURAL", "Rebuild", "randomised_bn_copy", "validate_into", "validate_structure"]
#: Builds the artifact of a (randomised-BN) torch module in a directory and returns its runner.
Rebuild = Callable[[nn.Module, Path], Runner]


@torch.no_grad()
def randomised_bn_copy(model: nn.Module, *, input_shape: Sequence[int], seed: int = 0,
                       calibration_batch: int = 8) -> nn.Module:
    """An eval-mode deep copy whose BN layers have seeded random affine params and calibrated statistics.

    gamma ~ U(0.5, 1.5), beta ~ N(0, 0.1); running mean/variance of every ``BatchNorm2d`` are recalibrated on one
    seeded standard-normal batch of `calibration_batch` inputs of `input_shape` (uncalibrated random statistics
    measured still constant). Weights of every other layer are kept; the caller's model is untouched.
    """
    from ofa_deploy.nn.bn import recalibrate_bn

    gen = torch.Generator().manual_seed(seed)
    clone = copy.deepcopy(model).eval().float()
    bns = [m for m in clone.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for bn in bns:
        if bn.affine:
            bn.weight.uniform_(0.5, 1.5, generator=gen)
            bn.bias.normal_(0.0, 0.1, generator=gen)
    if any(isinstance(m, nn.BatchNorm2d) for m in bns):
        recalibrate_bn(clone, [torch.randn((calibration_batch, *(int(s) for s in input_shape[1:])), generator=gen)])
    return clone


def validate_structure(model: nn.Module, rebuild: Rebuild, *, inputs: Sequence[np.ndarray], backend: str,
                       seed: int | None, **validate_kwargs: Any) -> ValidationResult:
    """Export a randomised-BN copy of `model` with `rebuild` into a temp dir and validate it against the copy."""
    clone = randomised_bn_copy(model, input_shape=inputs[0].shape, seed=seed or 0)
    with tempfile.TemporaryDirectory(prefix="ofa-deploy-structural-") as tmp:
        runner = rebuild(clone, Path(tmp))
        return validate_runner(clone, runner, inputs=inputs, backend=f"{backend} [{STRUCTURAL}]", seed=seed,
                               **validate_kwargs)


def validate_into(report: ExportReport, reference: Any, runner: Runner, *, inputs: Sequence[np.ndarray],
                  backend: str, seed: int | None, rebuild: Rebuild | None = None,
                  on_constant_outputs: OnConstant = "randomise_bn", **validate_kwargs: Any) -> None:
    """Validate `runner` against `reference` and record the outcome in `report` (passed, validation, notes).

    When the reference outputs are constant, `rebuild` is given, `reference` is a torch module and
    `on_constant_outputs` is ``"randomise_bn"``, the structure is validated on a randomised-BN copy instead;
    otherwise the constant-output result (a failure) is recorded.
    """
    if on_constant_outputs not in ON_CONSTANT:
        raise ConfigError(f"on_constant_outputs must be 'randomise_bn' or 'fail', got {on_constant_outputs!r}")
    own = validate_runner(reference, runner, inputs=inputs, backend=backend, seed=seed, **validate_kwargs)
    report.validated_on = "model"
    report.validation, report.passed = own, own.passed
    if not own.constant_outputs:
        return
    why_not = _no_structural_reason(reference, rebuild, on_constant_outputs)
    if why_not or rebuild is None:
        report.validation = dataclasses.replace(own, message=f"{own.message}. No structural check: {why_not}")
        report.notes.append(f"validation compared constants and counts as failed; no structural check: {why_not}")
        return
    structural = validate_structure(reference, rebuild, inputs=inputs, backend=backend, seed=seed,
                                    **validate_kwargs)
    report.validated_on, report.model_validation = STRUCTURAL, own
    report.validation, report.passed = structural, structural.passed
    report.notes.append(structural_note(own, structural))
    log.warning(report.notes[-1])


def _no_structural_reason(reference: Any, rebuild: Rebuild | None, on_constant_outputs: OnConstant) -> str:
    if on_constant_outputs == "fail":
        return "on_constant_outputs='fail'"
    if rebuild is None:
        return ("this backend does not rebuild a randomised-BN copy; check the structure with export_onnx or "
                "export_ort given the torch model, or export a model with trained weights")
    if not isinstance(reference, nn.Module):
        return "the reference is not a torch model (pass reference=<torch model> to check the structure)"
    return ""


def structural_note(own: ValidationResult, structural: ValidationResult) -> str:
    """The report note of a structural validation: the model's own outputs are input-independent."""
    return (f"the model's own outputs do not depend on the input (relative spread {own.input_sensitivity:.2g} < "
            f"{own.min_input_sensitivity:g}; typical of an untrained supernet), so comparing them would compare "
            f"constants. The export was validated structurally instead, on a copy with randomised, calibrated BN "
            f"statistics exported the same way (input sensitivity {structural.input_sensitivity or 0:.2g}): "
            f"{'passed' if structural.passed else 'FAILED'}. The model's own numerics are not validated; load "
            "trained weights or recalibrate BN for that.")
