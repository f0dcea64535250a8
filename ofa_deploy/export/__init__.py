"""Export static subnets to deployable artifacts (ONNX, ORT format, int8 ONNX, TVM) and validate them.

Heavy back-ends (onnxruntime, TVM) are imported inside the functions that use them.
"""
from __future__ import annotations

from ofa_deploy.export.onnx import MAX_OPSET, MIN_OPSET, torch_to_onnx

__all__ = ["MAX_OPSET", "MIN_OPSET", "torch_to_onnx"]
