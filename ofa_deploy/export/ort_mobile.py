"""``.onnx`` → ORT format (``.ort``) with onnxruntime's own converter, validated like every other backend.

Optimization styles (onnxruntime.tools.convert_onnx_models_to_ort):

* ``Fixed`` (default here): optimizations, including the x86 NCHWc layout transform, are baked in for the
  converting host; on this x86 machine it runs as fast as the ``.onnx``. Hardware-specific: use it only on a
  machine like the one that converted it.
* ``Runtime``: only portable optimizations are saved and the rest are re-applied at load time where possible.
  Use it for other targets (Android/iOS, ``target_platform="arm"``); on x86 it measured ~2.8x slower than the
  ``.onnx`` because the layout optimizations are not re-applied to ORT-format models.
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ofa_deploy.errors import ExportError
from ofa_deploy.export.artifacts import ExportReport, check_out_dir, finish, raise_if_failed, staging_dir
from ofa_deploy.export.common import copy_source, load_onnx_checked, reference_for, resolve_input_shape, timed
from ofa_deploy.export.onnx import export_copy_onnx
from ofa_deploy.export.structural import OnConstant, validate_into

log = logging.getLogger(__name__)

STYLES = ("Fixed", "Runtime")
PLATFORMS = ("amd64", "arm")


def convert_to_ort(onnx_path: str | os.PathLike[str], out_path: str | os.PathLike[str], *,
                   optimization_style: str = "Fixed", target_platform: str = "amd64") -> Path:
    """Convert one ONNX file to ``out_path`` (``.ort``); ``required_operators.config`` is written next to it."""
    from onnxruntime.tools.convert_onnx_models_to_ort import OptimizationStyle, convert_onnx_models_to_ort

    if optimization_style not in STYLES:
        raise ExportError(f"unknown ORT optimization style {optimization_style!r}; expected one of {STYLES}")
    if target_platform not in PLATFORMS:
        raise ExportError(f"unknown ORT target platform {target_platform!r}; expected one of {PLATFORMS}")
    src = Path(onnx_path)
    load_onnx_checked(src)
    out_path = Path(out_path)
    with tempfile.TemporaryDirectory(prefix=".ortconv-", dir=out_path.parent) as tmp:
        tmpdir = Path(tmp)
        shutil.copyfile(src, tmpdir / "model.onnx")
        buf = io.StringIO()
        try:
            with contextlib.redirect_stdout(buf):  # the tool prints progress on stdout
                convert_onnx_models_to_ort(
                    tmpdir / "model.onnx", output_dir=tmpdir / "out",
                    optimization_styles=[OptimizationStyle[optimization_style]], target_platform=target_platform,
                )
        except Exception as exc:
            raise ExportError(f"ORT format conversion of {src} failed: {exc}") from exc
        finally:
            for line in buf.getvalue().splitlines():
                log.info("convert_onnx_models_to_ort: %s", line)
        orts = sorted((tmpdir / "out").glob("*.ort"))
        configs = sorted((tmpdir / "out").glob("*.config"))
        if not orts:
            raise ExportError(f"ORT format conversion of {src} produced no .ort file: {buf.getvalue().strip()}")
        os.replace(orts[0], out_path)
        if configs:
            os.replace(configs[0], out_path.parent / "required_operators.config")
    return out_path


def export_ort(
    onnx_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    reference: Any = None,
    input_shape: Sequence[int] | None = None,
    optimization_style: str = "Fixed",
    target_platform: str = "amd64",
    validate: bool = True,
    atol: float = 1e-4,
    rtol: float = 1e-3,
    n_inputs: int = 3,
    seed: int = 0,
    overwrite: bool = False,
    include_onnx: bool = True,
    subnet_info: dict[str, Any] | None = None,
    notes: Sequence[str] = (),
    on_constant_outputs: OnConstant = "randomise_bn",
) -> ExportReport:
    """Convert `onnx_path` to ``model.ort`` in an artifact directory and validate it in ONNX Runtime.

    Args:
        reference: torch module (or runner) to validate against; default: the source ``.onnx`` in ORT.
            If its outputs do not depend on the input (random-init supernet) and it is a torch module, a copy with
            randomised BN statistics is exported to ONNX and .ort the same way and validated instead (see
            `ofa_deploy.export.structural`); otherwise such a validation fails.
        on_constant_outputs: ``"randomise_bn"`` (the structural check above) or ``"fail"``.
        optimization_style: ``"Fixed"`` (host-specific, fast here) or ``"Runtime"`` (portable; for other targets).
        include_onnx: also copy the source ONNX into the directory.

    Raises:
        ExportError: corrupt/non-ONNX input, bad style/platform, non-empty out dir, conversion failure.
        ValidationFailedError: outputs differ; artifacts and report are kept.
    """
    from ofa_deploy.export.runners import ort_runner
    from ofa_deploy.export.validate import make_inputs

    src = Path(onnx_path)
    proto = load_onnx_checked(src)
    shape, dynamic = resolve_input_shape(proto, tuple(input_shape) if input_shape is not None else None)
    out = check_out_dir(out_dir, overwrite=overwrite)
    report = ExportReport(backend="ort", out_dir=str(out), files={"model": "model.ort"}, passed=None,
                          input_shape=shape, opset=_opset(proto), dynamic_batch=dynamic, subnet=subnet_info,
                          notes=list(notes), extra={"optimization_style": optimization_style,
                                                    "target_platform": target_platform, "source_onnx": str(src)})
    if optimization_style == "Fixed":
        report.notes.append("Fixed-style .ort carries host-specific (NCHWc) optimizations: run it on this kind of "
                            "CPU only; use optimization_style='Runtime' for other targets.")
    with staging_dir(out, overwrite=overwrite) as staged:
        path, report.timings["convert"] = timed(lambda: convert_to_ort(
            src, staged / "model.ort", optimization_style=optimization_style, target_platform=target_platform))
        if (staged / "required_operators.config").exists():
            report.files["required_operators"] = "required_operators.config"
        if include_onnx:
            report.files["onnx"] = copy_source(src, staged)
        report.extra["model_bytes"] = path.stat().st_size
        if validate:
            ref, ref_name = reference_for(reference, src)
            inputs = make_inputs(shape, n_inputs=n_inputs, seed=seed, dynamic_batch=dynamic)

            def rebuild(m: Any, where: Path) -> Any:
                copy_onnx = export_copy_onnx(m, where, input_shape=shape, opset=report.opset, dynamic_batch=dynamic)
                return ort_runner(convert_to_ort(copy_onnx, where / "model.ort", optimization_style=optimization_style,
                                                 target_platform=target_platform))

            _, report.timings["validate"] = timed(lambda: validate_into(
                report, ref, ort_runner(path), inputs=inputs, atol=atol, rtol=rtol, backend="onnxruntime(.ort)",
                seed=seed, rebuild=rebuild, on_constant_outputs=on_constant_outputs))
            report.extra["reference"] = ref_name
        finish(report, staged, out)
        raise_if_failed(report, out)
    return report


def _opset(proto: Any) -> int | None:
    for imp in proto.opset_import:
        if imp.domain in ("", "ai.onnx"):
            return int(imp.version)
    return None
