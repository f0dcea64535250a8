"""PyTorch → ONNX with the classic (TorchScript) exporter.

The classic exporter (``dynamo=False``) is about 15x faster than the dynamo one here, writes a single file and
names the dynamic batch axis ``batch``. It folds BatchNorm into the preceding Conv in eval mode.
"""
from __future__ import annotations

import copy
import logging
import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from ofa_deploy.errors import ExportError

log = logging.getLogger(__name__)

#: opsets the classic exporter emits and ONNX Runtime runs for these models (11 is the oldest tested here;
#: 20 is ``torch.onnx._constants.ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET``).
MIN_OPSET = 11
MAX_OPSET = 20


def check_opset(opset: int) -> int:
    """Return `opset` if the classic exporter supports it, else raise `ExportError` naming the range."""
    if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= MAX_OPSET:
        raise ExportError(
            f"unsupported ONNX opset {opset!r}: the classic torch.onnx exporter supports opsets "
            f"{MIN_OPSET}..{MAX_OPSET}. Pass --opset/opset= within that range (default 17)."
        )
    return opset


def check_input_shape(input_shape: Sequence[int]) -> tuple[int, ...]:
    """Validate an NCHW-like input shape and return it as a tuple of positive ints."""
    try:
        shape = tuple(int(s) for s in input_shape)
    except (TypeError, ValueError) as exc:
        raise ExportError(f"input_shape must be a sequence of ints such as (1, 3, 224, 224), got {input_shape!r}") from exc
    if len(shape) < 2 or any(s <= 0 for s in shape):
        raise ExportError(f"input_shape must have >= 2 positive dims such as (1, 3, 224, 224), got {input_shape!r}")
    return shape


def torch_to_onnx(
    model: nn.Module,
    path: str | os.PathLike[str],
    *,
    input_shape: Sequence[int],
    opset: int = 17,
    dynamic_batch: bool = True,
    input_name: str = "input",
    output_name: str = "logits",
) -> Path:
    """Export `model` (an eval-mode deep copy; the caller's module is untouched) to one ONNX file.

    Args:
        model: any single-input, single-output module.
        path: the ``.onnx`` file to write (atomically: temp file in the same dir, then rename).
        input_shape: example input shape, batch first.
        opset: ONNX opset, ``MIN_OPSET..MAX_OPSET``.
        dynamic_batch: mark axis 0 of the input and output as the symbolic dim ``batch``.
        input_name, output_name: graph input/output names.

    Returns:
        The written path. The file passes ``onnx.checker.check_model(full_check=True)``.
    """
    import onnx

    check_opset(opset)
    shape = check_input_shape(input_shape)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clone = copy.deepcopy(model).eval().float()
    example = torch.zeros(shape, dtype=torch.float32)
    dynamic_axes = {input_name: {0: "batch"}, output_name: {0: "batch"}} if dynamic_batch else None
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".onnx.tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(
                clone, (example,), str(tmp), dynamo=False, opset_version=opset, do_constant_folding=True,
                input_names=[input_name], output_names=[output_name], dynamic_axes=dynamic_axes,
            )
        try:
            onnx.checker.check_model(str(tmp), full_check=True)
        except Exception as exc:  # onnx raises ValidationError / InferenceError
            raise ExportError(f"exported ONNX graph failed onnx.checker: {exc}") from exc
        os.replace(tmp, path)
    except ExportError:
        raise
    except Exception as exc:
        raise ExportError(f"torch.onnx.export failed for input_shape={shape}, opset={opset}: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    log.info("exported ONNX opset %d to %s (%.1f KB)", opset, path, path.stat().st_size / 1024)
    return path
