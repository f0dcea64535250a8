"""What a model file is, before it is timed (`measure.time_model`): the file itself or the one inside an export
directory (``.onnx``, ``.ort``, TVM ``.so``), whether the profile's backend can run it, its input shape and the
space it was exported from.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ofa_deploy.errors import ConfigError

MODEL_SUFFIXES = (".onnx", ".ort", ".so")


def find_model_file(path: str | Path, backend: str) -> Path:
    """`path` itself, or the model file inside an export artifact directory (``model.so`` for a TVM profile)."""
    p = Path(path)
    if p.is_dir():
        order = ("model.so", "model.onnx", "model.ort") if backend == "tvm" else ("model.onnx", "model.ort", "model.so")
        for name in order:
            if (p / name).is_file():
                return p / name
        raise ConfigError(f"{p} holds no model file ({', '.join(order)}); pass the model file itself")
    if not p.is_file():
        raise ConfigError(f"model {p} does not exist; pass an .onnx, .ort or TVM .so file, or an export directory")
    if p.suffix not in MODEL_SUFFIXES:
        raise ConfigError(f"model {p}: unknown format {p.suffix!r}; expected one of {', '.join(MODEL_SUFFIXES)}")
    return p


def check_backend(model: Path, profile: Any) -> None:
    """A TVM library runs on a tvm profile; .ort files on an onnxruntime one."""
    if model.suffix == ".so" and profile.backend != "tvm":
        raise ConfigError(f"{model.name} is a TVM library; time it on a tvm profile (e.g. --profile tvm-cpu), "
                          f"not {profile.name} ({profile.backend})")
    if model.suffix == ".ort" and profile.backend != "onnxruntime":
        raise ConfigError(f"{model.name} is an ONNX Runtime .ort file; time it on an onnxruntime profile "
                          f"(e.g. --profile ort-cpu-1t), not {profile.name} ({profile.backend})")
    if model.suffix == ".onnx" and profile.backend not in ("onnxruntime", "tvm"):
        raise ConfigError(f"{model.name}: profile {profile.name} ({profile.backend}) cannot run ONNX files; use an "
                          "onnxruntime or tvm profile")


def input_shape_of(model: Path, batch_size: int) -> tuple[int, ...]:
    """The input shape: from the artifact's export_report.json, else from the ONNX graph (dynamic dims = batch)."""
    report = model.parent / "export_report.json"
    if report.is_file():
        shape = json.loads(report.read_text()).get("input_shape")
        if shape:
            return (batch_size, *[int(d) for d in shape[1:]])
    if model.suffix == ".onnx":
        import onnx

        dims = onnx.load(str(model), load_external_data=False).graph.input[0].type.tensor_type.shape.dim
        shape = [d.dim_value if d.dim_value > 0 else batch_size for d in dims]
        return (batch_size, *shape[1:])
    raise ConfigError(f"cannot tell the input shape of {model.name} (no export_report.json next to it); pass "
                      "--input-shape, e.g. 1,3,224,224")


def space_of(model: Path) -> str | None:
    """The supernet/space name recorded in the artifact's subnet.json, if any."""
    info = model.parent / "subnet.json"
    if not info.is_file():
        return None
    data = json.loads(info.read_text())
    return data.get("supernet") or data.get("space")


__all__ = ["MODEL_SUFFIXES", "check_backend", "find_model_file", "input_shape_of", "space_of"]
