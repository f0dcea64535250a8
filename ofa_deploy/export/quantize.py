"""int8 static quantization with ONNX Runtime (QDQ, per-channel weights, ``quant_pre_process`` first).

Quantized models are judged by top-1 agreement with the fp32 model on the validation inputs, not by a tight atol,
and both are timed (median of interleaved runs) so the report says whether int8 pays off on this CPU (on this
x86 host it measured no speed-up for depthwise-heavy nets; it mainly shrinks the file ~4x).
"""
from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ofa_deploy.errors import ExportError
from ofa_deploy.export.artifacts import ExportReport, check_out_dir
from ofa_deploy.export.common import (
    copy_source,
    load_onnx_checked,
    load_source,
    onnx_input_shape,
    reference_for,
    timed,
)
from ofa_deploy.export.onnx import export_copy_onnx
from ofa_deploy.export.options import ExportOptions, Int8Options, common_options
from ofa_deploy.export.run import Check, export_and_publish, new_report, source_exporter
from ofa_deploy.export.runners import interleaved_latency, ort_runner
from ofa_deploy.export.validate import make_inputs

log = logging.getLogger(__name__)


def calibration_batches(calibration: Any, *, max_batches: int | None = None) -> list[np.ndarray]:
    """Normalise calibration data to a list of float32 NCHW arrays.

    Accepts one array (N, C, H, W) (split into batches of 1), or an iterable of arrays/tensors, or of
    ``(input, label)`` tuples as a DataLoader yields.
    """
    if isinstance(calibration, np.ndarray):
        if calibration.ndim < 2:
            raise ExportError(f"calibration array must be (N, C, H, W), got shape {calibration.shape}")
        batches = [calibration[i:i + 1] for i in range(calibration.shape[0])]
    else:
        try:
            items = iter(calibration)
        except TypeError as exc:
            raise ExportError("calibration must be a numpy array or an iterable of arrays/tensors") from exc
        batches = []
        for item in items:
            if isinstance(item, (tuple, list)):
                item = item[0]
            arr = item.detach().cpu().numpy() if hasattr(item, "detach") else np.asarray(item)
            batches.append(arr)
            if max_batches is not None and len(batches) >= max_batches:
                break
    try:
        batches = [np.ascontiguousarray(b, dtype=np.float32) for b in batches[:max_batches]]
    except (TypeError, ValueError) as exc:
        raise ExportError(f"calibration data must be numeric arrays/tensors of shape (N, C, H, W): {exc}") from exc
    if not batches:
        raise ExportError("calibration data is empty; pass a few batches of representative inputs")
    if len({b.shape[1:] for b in batches}) > 1 or batches[0].ndim < 2:
        raise ExportError(f"calibration batches must share one (N, C, H, W) sample shape, got "
                          f"{sorted({b.shape for b in batches})[:3]}")
    return batches


def _data_reader(input_name: str, batches: list[np.ndarray]) -> Any:
    from onnxruntime.quantization import CalibrationDataReader

    class _Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter([{input_name: b} for b in batches])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._it, None)

    return _Reader()


def quantize_onnx_int8(src: Path, dst: Path, batches: list[np.ndarray], *, per_channel: bool = True,
                       preprocess: bool = True) -> Path:
    """quant_pre_process (optional) then quantize_static to QDQ with uint8 activations and int8 weights."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    proto = load_onnx_checked(src)
    _, input_name = onnx_input_shape(proto)
    work = src
    pre = dst.with_name(f".{dst.stem}.pre.onnx")
    try:
        if preprocess:
            quant_pre_process(str(src), str(pre), skip_symbolic_shape=False)
            work = pre
        quantize_static(str(work), str(dst), _data_reader(input_name, batches), quant_format=QuantFormat.QDQ,
                        per_channel=per_channel, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    except ExportError:
        raise
    except Exception as exc:
        raise ExportError(f"int8 static quantization of {src} failed: {exc}") from exc
    finally:
        pre.unlink(missing_ok=True)
    return dst


def export_int8(
    onnx_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    calibration: Any,
    reference: Any = None,
    input_shape: Sequence[int] | None = None,
    per_channel: bool = True,
    min_top1: float = 0.8,
    validation_batch: int = 8,
    time_runs: int = 10,
    time_rounds: int = 5,
    threads: int = 1,
    include_onnx: bool = True,
    **options: Any,
) -> ExportReport:
    """Quantize `onnx_path` to ``model_int8.onnx`` (static QDQ) and report agreement and latency vs fp32.

    The keyword form of ``export_model(onnx_path, out_dir, format="int8", ...)`` (see
    `ofa_deploy.export.api.export_model`). int8 is judged by top-1 agreement, not by a tolerance: there is no
    ``atol``/``rtol`` (`export_model` refuses them).

    Args:
        calibration: a few representative batches (see `calibration_batches`).
        reference: fp32 reference for top-1 agreement (torch module or runner); default: the source ONNX in ORT.
            If its outputs do not depend on the input (random-init supernet; top-1 agreement would be trivially 1)
            and it is a torch module, a copy with randomised BN statistics is exported, quantized with the same
            calibration data and validated instead (see `ofa_deploy.export.structural`); otherwise validation fails.
        on_constant_outputs: ``"randomise_bn"`` (the structural check above) or ``"fail"``.
        min_top1: required top-1 agreement with the reference on the validation inputs.
        n_inputs, validation_batch: validation inputs (seeded) and their batch size (when the batch is dynamic).
        time_runs, time_rounds: latency measurement (batch 1, ``threads`` intra-op threads, interleaved rounds).
        **options: fields of `ExportOptions` (validate, n_inputs, seed, overwrite, on_constant_outputs,
            subnet_info, notes); left out, the format's defaults.

    Raises:
        ExportError: corrupt input, empty calibration, quantization failure, non-empty out dir.
        ValidationFailedError: agreement below `min_top1`; artifacts and report are kept.
    """
    fmt = Int8Options(calibration=calibration, per_channel=per_channel, min_top1=min_top1,
                      validation_batch=validation_batch, time_runs=time_runs, time_rounds=time_rounds,
                      threads=threads, include_onnx=include_onnx)
    return run_int8(onnx_path, out_dir, common_options(fmt, input_shape=input_shape, **options), fmt,
                    reference=reference)


def run_int8(onnx_path: str | os.PathLike[str], out_dir: str | os.PathLike[str], options: ExportOptions,
             fmt: Int8Options, *, reference: Any = None) -> ExportReport:
    """`export_int8` with its options as the two option objects (what `export` calls for ``format="int8"``)."""
    options = options.resolve(fmt)
    src, proto, shape, dynamic = load_source(onnx_path, options.input_shape)
    batches = calibration_batches(fmt.calibration)
    out = check_out_dir(out_dir, overwrite=options.overwrite)
    report = new_report("int8", out, options, files={"model": "model_int8.onnx"}, input_shape=shape,
                        subnet=options.subnet_info, source=src, dynamic_batch=dynamic,
                        extra={"quant_format": "QDQ", "activation_type": "uint8", "weight_type": "int8",
                               "per_channel": fmt.per_channel, "calibration_batches": len(batches),
                               "source_onnx": str(src)})
    report.opset = next((int(i.version) for i in proto.opset_import if i.domain in ("", "ai.onnx")), None)

    def rebuild(m: Any, where: Path) -> Any:
        copy_onnx = export_copy_onnx(m, where, input_shape=shape, opset=report.opset, dynamic_batch=dynamic,
                                     exporter=source_exporter(src))
        return ort_runner(quantize_onnx_int8(copy_onnx, where / "model_int8.onnx", batches,
                                             per_channel=fmt.per_channel), threads=fmt.threads)

    def build(staged: Path) -> Callable[[], Check]:
        q, report.timings["quantize"] = timed(lambda: quantize_onnx_int8(
            src, staged / "model_int8.onnx", batches, per_channel=fmt.per_channel))
        if fmt.include_onnx:
            report.files["onnx"] = copy_source(src, staged)
        report.extra["model_bytes"] = q.stat().st_size
        report.extra["fp32_bytes"] = src.stat().st_size

        def check() -> Check:
            ref, ref_name = reference_for(reference, src)
            vshape = (fmt.validation_batch, *shape[1:]) if dynamic else shape
            inputs = make_inputs(vshape, n_inputs=options.n_inputs, seed=options.seed, dynamic_batch=False)
            int8_run = ort_runner(q, threads=fmt.threads)

            def time_against_fp32() -> None:
                x1 = inputs[0][:1] if dynamic else inputs[0]
                lat, report.timings["latency"] = timed(lambda: interleaved_latency(
                    {"fp32": ort_runner(src, threads=fmt.threads), "int8": int8_run}, x1, rounds=fmt.time_rounds,
                    runs_per_round=fmt.time_runs))
                report.extra["latency_ms"] = {k: v["median_ms"] for k, v in lat.items()}
                report.extra["latency_ratio_int8_over_fp32"] = lat["int8"]["median_ms"] / lat["fp32"]["median_ms"]
                report.extra["latency_threads"] = fmt.threads

            return Check(runner=int8_run, reference=ref, inputs=inputs, backend="onnxruntime(int8)",
                         rebuild=rebuild, criteria={"mode": "top1", "min_top1": fmt.min_top1},
                         reference_name=ref_name, after=time_against_fp32)

        return check

    return export_and_publish(report, options, build)
