"""PyTorch → ONNX with torch's ``torch.export``-based (dynamo) exporter or its classic (TorchScript) one.

Both write a single file, name the dynamic batch axis ``batch`` and fold BatchNorm into the preceding Conv in eval
mode, and both pass the same validation on subnets of the four supernets with ORT latency within a few percent
(``benchmarks/bench_onnx_exporters.py``). Artifact exports (`export_onnx`, ``export(format="onnx")``) use the
dynamo exporter (opset >= 18, needs onnxscript). It is 4-12x slower to export, so `torch_to_onnx` defaults to the
classic one for the profiler's layer and subnet models (hundreds per LUT build), and the structural copy of a
derived export (`export_copy_onnx`) uses whichever exporter made its source.
"""
from __future__ import annotations

import copy
import logging
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ofa_deploy.errors import ExportError, ExportOptionError
from ofa_deploy.export.artifacts import ExportReport, check_out_dir, subnet_info_from_model
from ofa_deploy.export.options import (
    DEFAULT_EXPORTER,
    DEFAULT_OPSET,
    DYNAMO_MIN_OPSET,
    MAX_OPSET,
    MIN_OPSET,
    TORCHSCRIPT_OPSET,
    ExportOptions,
    OnnxOptions,
    check_input_shape,
    check_opset,
    common_options,
)
from ofa_deploy.export.run import Check, export_and_publish, new_report
from ofa_deploy.export.runners import ort_runner
from ofa_deploy.export.validate import make_inputs

log = logging.getLogger(__name__)

__all__ = ["export_copy_onnx", "export_onnx", "run_onnx", "slim_onnx", "torch_to_onnx"]


def torch_to_onnx(
    model: nn.Module,
    path: str | os.PathLike[str],
    *,
    input_shape: Sequence[int],
    opset: int = TORCHSCRIPT_OPSET,
    dynamic_batch: bool = True,
    input_name: str = "input",
    output_name: str = "logits",
    exporter: str = "torchscript",
) -> Path:
    """Export `model` (an eval-mode deep copy; the caller's module is untouched) to one ONNX file.

    Args:
        model: any single-input, single-output module.
        path: the ``.onnx`` file to write (atomically: temp file in the same dir, then rename).
        input_shape: example input shape, batch first.
        opset: ONNX opset, ``MIN_OPSET..MAX_OPSET`` (dynamo: from ``DYNAMO_MIN_OPSET``).
        dynamic_batch: mark axis 0 of the input and output as the symbolic dim ``batch``.
        input_name, output_name: graph input/output names.
        exporter: ``"torchscript"`` (``torch.onnx.export(dynamo=False)``) or ``"dynamo"`` (``torch.export``).

    Returns:
        The written path. The file passes ``onnx.checker.check_model(full_check=True)``.
    """
    import onnx

    check_opset(opset, exporter=exporter)
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
            if exporter == "dynamo":
                _dynamo_export(clone, example, tmp, opset=opset, dynamic_batch=dynamic_batch,
                               names=(input_name, output_name))
            else:
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
        raise ExportError(f"torch.onnx.export ({exporter}) failed for input_shape={shape}, opset={opset}: "
                          f"{exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    log.info("exported ONNX opset %d to %s (%.1f KB)", opset, path, path.stat().st_size / 1024)
    return path


def _dynamo_export(model: nn.Module, example: torch.Tensor, path: Path, *, opset: int, dynamic_batch: bool,
                   names: tuple[str, str]) -> None:
    """``torch.onnx.export(dynamo=True)``: the graph from ``torch.export``, optimised by onnxscript, one file."""
    try:
        import onnxscript  # noqa: F401  (the dynamo exporter's dependency; name it when missing)
    except ImportError as exc:
        raise ExportOptionError("the dynamo ONNX exporter needs onnxscript (pip install onnxscript); or pass "
                                "exporter='torchscript'") from exc
    dynamic_shapes = ({0: torch.export.Dim("batch", min=1, max=4096)},) if dynamic_batch else None
    torch.onnx.export(model, (example,), str(path), dynamo=True, opset_version=opset, input_names=[names[0]],
                      output_names=[names[1]], dynamic_shapes=dynamic_shapes, external_data=False, optimize=True,
                      verbose=False)


def export_copy_onnx(model: nn.Module, where: Path, *, input_shape: Sequence[int], opset: int | None,
                     dynamic_batch: bool, exporter: str = "torchscript") -> Path:
    """Export `model` (the randomised-BN copy) to ``where/model.onnx`` as the source ONNX was exported.

    The derived exports (.ort, int8, TVM) start from an ONNX file: their copy is re-exported from the torch
    reference with the source's exporter (`source_exporter`), opset and batch mode. That is the source's graph with
    other constants when the source was exported from this model by `export_onnx` (unslimmed); a hand-made source
    is not re-checked.
    """
    low = DYNAMO_MIN_OPSET if exporter == "dynamo" else MIN_OPSET
    opset = min(max(opset or TORCHSCRIPT_OPSET, low), MAX_OPSET)
    return torch_to_onnx(model, where / "model.onnx", input_shape=input_shape, opset=opset,
                         dynamic_batch=dynamic_batch, exporter=exporter)


def slim_onnx(path: Path) -> bool:
    """Simplify the graph in place with onnxslim; False (and a log line) when onnxslim is not installed."""
    try:
        import onnxslim
    except ImportError:
        log.warning("onnxslim is not installed; skipping graph slimming (pip install onnxslim)")
        return False
    import onnx

    slimmed = onnxslim.slim(str(path))
    tmp = path.with_name(f".{path.name}.slim.tmp")
    onnx.save(slimmed, str(tmp))
    os.replace(tmp, path)
    return True


def export_onnx(
    model: nn.Module,
    out_dir: str | os.PathLike[str],
    *,
    input_shape: Sequence[int],
    opset: int = DEFAULT_OPSET,
    dynamic_batch: bool = True,
    slim: bool = False,
    model_name: str = "model.onnx",
    exporter: str = DEFAULT_EXPORTER,
    **options: Any,
) -> ExportReport:
    """Export `model` to an artifact directory with ``model.onnx`` and validate it in ONNX Runtime.

    The keyword form of ``export_model(model, out_dir, format="onnx", ...)`` (see
    `ofa_deploy.export.api.export_model`; the keywords are the fields of `ExportOptions` and `OnnxOptions`).

    Validation runs `n_inputs` seeded inputs (batch 1 and batch 3 alternating when `dynamic_batch`) through the
    PyTorch model and ORT and compares every output with ``|diff| <= atol + rtol * |ref|``. If the model's outputs
    do not depend on its input (random-init supernet), the comparison would be vacuous: with
    ``on_constant_outputs="randomise_bn"`` a copy with randomised BN statistics is exported the same way into a temp
    dir and validated instead (``report.validated_on == "randomised-bn copy"``, the model's own result in
    ``report.model_validation``); with ``"fail"`` the export fails validation.

    Returns:
        The `ExportReport` (also written to ``export_report.json``).

    Raises:
        ExportError: bad opset/shape, non-empty output dir without `overwrite`, export failure.
        ValidationFailedError: ORT disagrees with PyTorch; the artifacts and the report are kept on disk and the
            report is attached as ``err.report``.
    """
    fmt = OnnxOptions(opset=opset, dynamic_batch=dynamic_batch, slim=slim, model_name=model_name,
                      exporter=exporter)
    return run_onnx(model, out_dir, common_options(fmt, input_shape=input_shape, **options), fmt)


def run_onnx(model: nn.Module, out_dir: str | os.PathLike[str], options: ExportOptions,
             fmt: OnnxOptions) -> ExportReport:
    """`export_onnx` with its options as the two option objects (what `export` calls for ``format="onnx"``)."""
    options = options.resolve(fmt)
    if options.input_shape is None:
        raise ExportOptionError("an onnx export needs input_shape, e.g. (1, 3, 224, 224)")
    shape = options.input_shape
    out = check_out_dir(out_dir, overwrite=options.overwrite)
    subnet = options.subnet_info if options.subnet_info is not None else subnet_info_from_model(model)
    report = new_report("onnx", out, options, files={"model": fmt.model_name}, input_shape=shape, subnet=subnet,
                        opset=fmt.opset, dynamic_batch=fmt.dynamic_batch, extra={"exporter": fmt.exporter})

    def convert(m: nn.Module, where: Path, timings: dict[str, float] | None = None) -> Path:
        t0 = time.perf_counter()
        path = torch_to_onnx(m, where / fmt.model_name, input_shape=shape, opset=fmt.opset,
                             dynamic_batch=fmt.dynamic_batch, exporter=fmt.exporter)
        t1 = time.perf_counter()
        slimmed = fmt.slim and slim_onnx(path)
        if timings is not None:
            timings["export"] = t1 - t0
            if slimmed:
                timings["slim"] = time.perf_counter() - t1
            elif fmt.slim:
                report.notes.append("slim requested but onnxslim is not installed; graph left as exported")
        return path

    def build(staged: Path) -> Callable[[], Check]:
        onnx_path = convert(model, staged, report.timings)
        report.extra["onnx_nodes"] = _count_nodes(onnx_path)
        report.extra["model_bytes"] = onnx_path.stat().st_size
        return lambda: Check(
            runner=ort_runner(onnx_path), reference=model, backend="onnxruntime",
            inputs=make_inputs(shape, n_inputs=options.n_inputs, seed=options.seed, dynamic_batch=fmt.dynamic_batch),
            rebuild=lambda m, where: ort_runner(convert(m, where)),
            criteria={"atol": options.atol, "rtol": options.rtol})

    return export_and_publish(report, options, build)


def _count_nodes(path: Path) -> int:
    import onnx

    return len(onnx.load(str(path), load_external_data=False).graph.node)
