"""Export static subnets to deployable artifacts (ONNX, ORT format, int8 ONNX, TVM) and validate them.

One entry point, ``export_model(source, out_dir, format="onnx"|"ort"|"int8"|"tvm", options=ExportOptions(...),
...)``; `export_onnx`, `export_ort`, `export_int8` and `export_tvm` are its keyword forms. Every format shares one
options type (`ExportOptions`, plus a small per-format type), one validator (`ofa_deploy.export.validate`) and one
validate-and-publish tail (`ofa_deploy.export.run`); every export writes one artifact directory (model files,
``subnet.json``, ``export_report.json``) atomically. onnxruntime and TVM are imported inside the functions that
use them.
"""
from __future__ import annotations

from ofa_deploy.export.api import export_model
from ofa_deploy.export.artifacts import ExportReport, load_report
from ofa_deploy.export.onnx import export_onnx, torch_to_onnx
from ofa_deploy.export.options import (
    FORMATS,
    MAX_OPSET,
    MIN_OPSET,
    ExportOptions,
    Int8Options,
    OnnxOptions,
    OrtOptions,
    TvmOptions,
)
from ofa_deploy.export.ort_mobile import export_ort
from ofa_deploy.export.quantize import export_int8
from ofa_deploy.export.tvm import export_tvm, parse_target
from ofa_deploy.export.validate import ValidationResult, make_inputs, validate_runner

__all__ = [
    "FORMATS", "MAX_OPSET", "MIN_OPSET", "ExportOptions", "ExportReport", "Int8Options", "OnnxOptions", "OrtOptions",
    "TvmOptions", "ValidationResult", "export_int8", "export_model", "export_onnx", "export_ort", "export_tvm",
    "load_report", "make_inputs", "parse_target", "torch_to_onnx", "validate_runner",
]

