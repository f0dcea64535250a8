"""``export_model(source, out_dir, format=...)``: the one entry point of every export format.

`export_onnx`, `export_ort`, `export_int8` and `export_tvm` are its keyword forms and run the same code.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any

from ofa_deploy.errors import ExportOptionError, unknown_name
from ofa_deploy.export.artifacts import ExportReport
from ofa_deploy.export.onnx import run_onnx
from ofa_deploy.export.options import FORMATS, ExportOptions, FormatOptions, option_names
from ofa_deploy.export.ort_mobile import run_ort
from ofa_deploy.export.quantize import run_int8
from ofa_deploy.export.tvm import run_tvm


def export_model(source: Any, out_dir: str | os.PathLike[str], *, format: str = "onnx",
           options: ExportOptions | None = None, reference: Any = None, **kwargs: Any) -> ExportReport:
    """Export `source` to an artifact directory in `format`, validate it and publish the directory atomically.

    Args:
        source: ``onnx``: the torch module. ``ort``/``int8``/``tvm``: an ``.onnx`` path (``tvm``: or an
            ``onnx.ModelProto``), e.g. the ``model.onnx`` of an onnx export.
        out_dir: the artifact directory (new or empty unless ``overwrite``).
        format: one of `FORMATS`: ``"onnx"``, ``"ort"``, ``"int8"``, ``"tvm"``.
        options: what every format shares (`ExportOptions`: input shape, validation, tolerances, overwrite,
            provenance); default ``ExportOptions()``.
        reference: ``ort``/``int8``/``tvm``: torch module or runner to validate against (default: the source ONNX
            in ONNX Runtime; only a torch module allows the randomised-BN check of a constant-output model).
            ``onnx`` always validates against `source`.
        **kwargs: fields of the format's options (`OnnxOptions`, `OrtOptions`, `Int8Options`, `TvmOptions`), and
            fields of `ExportOptions`, which override those of `options`.

    Returns:
        The `ExportReport`, also written to ``export_report.json`` (read it back with `load_report`).

    Raises:
        UnknownNameError: unknown format or option name.
        ExportOptionError: an invalid option value (e.g. ``atol`` for int8, which is judged by top-1 agreement).
        ExportError: the export itself failed (corrupt input, compile error, non-empty ``out_dir``, ...).
        ValidationFailedError: the artifact does not reproduce its reference; artifacts and report are kept.
    """
    fmt_cls = FORMATS.get(format) if isinstance(format, str) else None
    if fmt_cls is None:
        raise unknown_name("export format", str(format), FORMATS)
    common = set(option_names(ExportOptions))
    specific = set(option_names(fmt_cls))
    for name in kwargs:
        if name not in common | specific:
            raise unknown_name(f"{format} export option", name, common | specific)
    if options is not None and not isinstance(options, ExportOptions):
        raise ExportOptionError(f"options must be an ExportOptions, got {type(options).__name__}")
    opts = dataclasses.replace(options or ExportOptions(), **{k: v for k, v in kwargs.items() if k in common})
    fmt = fmt_cls(**{k: v for k, v in kwargs.items() if k in specific})
    return _run(source, out_dir, opts, fmt, reference)


def _run(source: Any, out_dir: str | os.PathLike[str], options: ExportOptions, fmt: FormatOptions,
         reference: Any) -> ExportReport:
    if fmt.FORMAT == "onnx":
        if reference is not None:
            raise ExportOptionError("an onnx export validates against the torch model it exports; "
                                    "reference= is for ort/int8/tvm")
        return run_onnx(source, out_dir, options, fmt)  # type: ignore[arg-type]
    run = {"ort": run_ort, "int8": run_int8, "tvm": run_tvm}[fmt.FORMAT]
    return run(source, out_dir, options, fmt, reference=reference)  # type: ignore[operator]
