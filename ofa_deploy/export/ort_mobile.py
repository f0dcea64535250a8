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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ofa_deploy.errors import ExportError
from ofa_deploy.export.artifacts import ExportReport, check_out_dir
from ofa_deploy.export.common import copy_source, load_onnx_checked, load_source, reference_for, timed
from ofa_deploy.export.onnx import export_copy_onnx
from ofa_deploy.export.options import ORT_PLATFORMS, ORT_STYLES, ExportOptions, OrtOptions, common_options
from ofa_deploy.export.run import Check, export_and_publish, new_report, source_exporter
from ofa_deploy.export.runners import ort_runner
from ofa_deploy.export.validate import make_inputs

log = logging.getLogger(__name__)

STYLES = ORT_STYLES
PLATFORMS = ORT_PLATFORMS


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
    include_onnx: bool = True,
    **options: Any,
) -> ExportReport:
    """Convert `onnx_path` to ``model.ort`` in an artifact directory and validate it in ONNX Runtime.

    The keyword form of ``export_model(onnx_path, out_dir, format="ort", ...)`` (see
    `ofa_deploy.export.api.export_model`).

    Args:
        reference: torch module (or runner) to validate against; default: the source ``.onnx`` in ORT.
            If its outputs do not depend on the input (random-init supernet) and it is a torch module, a copy with
            randomised BN statistics is exported to ONNX and .ort the same way and validated instead (see
            `ofa_deploy.export.structural`); otherwise such a validation fails.
        on_constant_outputs: ``"randomise_bn"`` (the structural check above) or ``"fail"``.
        optimization_style: ``"Fixed"`` (host-specific, fast here) or ``"Runtime"`` (portable; for other targets).
        include_onnx: also copy the source ONNX into the directory.
        **options: fields of `ExportOptions` (validate, atol, rtol, n_inputs, seed, overwrite, on_constant_outputs,
            subnet_info, notes); left out, the format's defaults.

    Raises:
        ExportError: corrupt/non-ONNX input, bad style/platform, non-empty out dir, conversion failure.
        ValidationFailedError: outputs differ; artifacts and report are kept.
    """
    fmt = OrtOptions(optimization_style=optimization_style, target_platform=target_platform,
                     include_onnx=include_onnx)
    return run_ort(onnx_path, out_dir, common_options(fmt, input_shape=input_shape, **options), fmt,
                   reference=reference)


def run_ort(onnx_path: str | os.PathLike[str], out_dir: str | os.PathLike[str], options: ExportOptions,
            fmt: OrtOptions, *, reference: Any = None) -> ExportReport:
    """`export_ort` with its options as the two option objects (what `export` calls for ``format="ort"``)."""
    options = options.resolve(fmt)
    src, proto, shape, dynamic = load_source(onnx_path, options.input_shape)
    out = check_out_dir(out_dir, overwrite=options.overwrite)
    report = new_report("ort", out, options, files={"model": "model.ort"}, input_shape=shape,
                        subnet=options.subnet_info, source=src, opset=_opset(proto), dynamic_batch=dynamic,
                        extra={"optimization_style": fmt.optimization_style, "target_platform": fmt.target_platform,
                               "source_onnx": str(src)})
    if fmt.optimization_style == "Fixed":
        report.notes.append("Fixed-style .ort carries host-specific (NCHWc) optimizations: run it on this kind of "
                            "CPU only; use optimization_style='Runtime' for other targets.")

    def convert(source: Path, where: Path) -> Path:
        return convert_to_ort(source, where / "model.ort", optimization_style=fmt.optimization_style,
                              target_platform=fmt.target_platform)

    def rebuild(m: Any, where: Path) -> Any:
        return ort_runner(convert(export_copy_onnx(m, where, input_shape=shape, opset=report.opset,
                                                   dynamic_batch=dynamic, exporter=source_exporter(src)), where))

    def build(staged: Path) -> Callable[[], Check]:
        path, report.timings["convert"] = timed(lambda: convert(src, staged))
        if (staged / "required_operators.config").exists():
            report.files["required_operators"] = "required_operators.config"
        if fmt.include_onnx:
            report.files["onnx"] = copy_source(src, staged)
        report.extra["model_bytes"] = path.stat().st_size

        def check() -> Check:
            ref, ref_name = reference_for(reference, src)
            return Check(runner=ort_runner(path), reference=ref, backend="onnxruntime(.ort)", rebuild=rebuild,
                         inputs=make_inputs(shape, n_inputs=options.n_inputs, seed=options.seed,
                                            dynamic_batch=dynamic),
                         criteria={"atol": options.atol, "rtol": options.rtol}, reference_name=ref_name)

        return check

    return export_and_publish(report, options, build)


def _opset(proto: Any) -> int | None:
    for imp in proto.opset_import:
        if imp.domain in ("", "ai.onnx"):
            return int(imp.version)
    return None
