"""Export static subnets to deployable artifacts (ONNX, ORT format, int8 ONNX, TVM) and validate them.

Every backend is validated by the one validator in `ofa_deploy.export.validate`; every export writes one
artifact directory (model files, ``subnet.json``, ``export_report.json``) atomically. onnxruntime and TVM are
imported inside the functions that use them.
"""
from __future__ import annotations

from ofa_deploy.export.artifacts import ExportReport, load_report
from ofa_deploy.export.onnx import MAX_OPSET, MIN_OPSET, export_onnx, torch_to_onnx
from ofa_deploy.export.ort_mobile import export_ort
from ofa_deploy.export.quantize import export_int8
from ofa_deploy.export.tvm import export_tvm, parse_target
from ofa_deploy.export.validate import ValidationResult, make_inputs, validate_runner

__all__ = [
    "MAX_OPSET", "MIN_OPSET", "ExportReport", "ValidationResult", "export_int8", "export_onnx", "export_ort",
    "export_tvm", "load_report", "make_inputs", "parse_target", "torch_to_onnx", "validate_runner",
]
