"""Shared steps of the derived exports (.ort, int8, TVM): load/check a source ONNX, pick the validation reference."""
from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ofa_deploy.errors import ExportError
from ofa_deploy.fileio import is_regular_file


def load_onnx_checked(path: str | os.PathLike[str]) -> Any:
    """Load and check an ONNX file; a missing, corrupt or non-ONNX file gives a clear `ExportError`."""
    import onnx

    p = Path(path)
    if not is_regular_file(p):
        raise ExportError(f"ONNX file {p} does not exist or is not a regular file; export one first with `ofa-deploy export onnx`")
    try:
        model = onnx.load(str(p))
        onnx.checker.check_model(model)
    except Exception as exc:  # DecodeError, ValidationError, ...
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise ExportError(f"{p} is not a valid ONNX model ({first}); pass the model.onnx written by "
                          "`ofa-deploy export onnx`") from exc
    if len(model.graph.input) < 1 or len(model.graph.output) < 1:
        raise ExportError(f"{p} has no graph inputs/outputs; expected a single-input classifier graph")
    return model


def onnx_input_shape(model: Any) -> tuple[tuple[int | str, ...], str]:
    """(shape with symbolic dims as strings, name) of the first graph input that is not an initializer."""
    inits = {i.name for i in model.graph.initializer}
    for inp in model.graph.input:
        if inp.name in inits:
            continue
        dims = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
                     for d in inp.type.tensor_type.shape.dim)
        return dims, inp.name
    raise ExportError("the ONNX graph has no non-initializer input")


def resolve_input_shape(model: Any, input_shape: tuple[int, ...] | None) -> tuple[tuple[int, ...], bool]:
    """The concrete input shape (batch 1 for a symbolic batch) and whether the batch axis is dynamic."""
    dims, _ = onnx_input_shape(model)
    dynamic = bool(dims) and not isinstance(dims[0], int) or (bool(dims) and dims[0] == 0)
    if input_shape is not None:
        try:
            shape = tuple(int(s) for s in input_shape)
        except (TypeError, ValueError) as exc:
            raise ExportError(f"input_shape must be a sequence of ints such as (1, 3, 224, 224), got "
                              f"{input_shape!r}") from exc
        if len(shape) != len(dims) or any(s <= 0 for s in shape):
            raise ExportError(f"input_shape {shape} does not fit the ONNX input {dims}: pass {len(dims)} positive dims")
        return shape, dynamic
    if any(not isinstance(d, int) or d <= 0 for d in dims[1:]):
        raise ExportError(f"the ONNX input has symbolic non-batch dims {dims}; pass input_shape explicitly")
    return (1 if dynamic else int(dims[0]), *(int(d) for d in dims[1:])), dynamic


def load_source(onnx_path: str | os.PathLike[str], input_shape: tuple[int, ...] | None
                ) -> tuple[Path, Any, tuple[int, ...], bool]:
    """An exporter's source ONNX: (path, checked model, input shape, whether the batch is dynamic)."""
    src = Path(onnx_path)
    proto = load_onnx_checked(src)
    shape, dynamic = resolve_input_shape(proto, input_shape)
    return src, proto, shape, dynamic


def reference_for(reference: Any, onnx_path: Path) -> tuple[Any, str]:
    """The validation reference: the given torch module/runner, else the source ONNX run in ORT."""
    if reference is not None:
        return reference, "pytorch" if hasattr(reference, "state_dict") else "runner"
    from ofa_deploy.export.runners import ort_runner

    return ort_runner(onnx_path), "onnxruntime(source .onnx)"


def copy_source(onnx_path: Path, staged: Path, name: str = "model.onnx") -> str:
    """Copy the source ONNX into the staged artifact dir (so the dir is self-contained); return its name."""
    shutil.copyfile(onnx_path, staged / name)
    return name


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    import time

    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0
