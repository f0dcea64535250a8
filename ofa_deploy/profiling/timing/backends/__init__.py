"""Timing backends: ONNX Runtime (default), TVM (Relax) and eager PyTorch behind one small protocol.

`create_backend(profile)` builds the backend a `HardwareProfile` names; `make_backend(name, **options)` does the
same from plain keywords. Heavy runtimes are imported only when their backend is created.
"""
from __future__ import annotations

from typing import Any

from ofa_deploy.errors import unknown_name
from ofa_deploy.profiling.timing.backends.base import Backend, Runner

BACKENDS = ("onnxruntime", "tvm", "torch")
_ALIASES = {"ort": "onnxruntime", "onnx": "onnxruntime", "onnxruntime": "onnxruntime", "tvm": "tvm",
            "torch": "torch", "pytorch": "torch", "eager": "torch"}


def make_backend(name: str, **options: Any) -> Backend:
    """A backend by name ('onnxruntime' | 'tvm' | 'torch') with backend-specific keyword options."""
    key = _ALIASES.get(name.lower())
    if key is None:
        raise unknown_name("backend", name, BACKENDS)
    if key == "onnxruntime":
        from ofa_deploy.profiling.timing.backends.onnxruntime import OrtBackend

        return OrtBackend(**options)
    if key == "tvm":
        from ofa_deploy.profiling.timing.backends.tvm import TvmBackend

        return TvmBackend(**options)
    from ofa_deploy.profiling.timing.backends.torch import TorchBackend

    return TorchBackend(**options)


def _get(profile: Any, *names: str, default: Any = None) -> Any:
    for name in names:
        value = profile.get(name) if isinstance(profile, dict) else getattr(profile, name, None)
        if value is not None:
            return value
    return default


def create_backend(profile: Any) -> Backend:
    """The backend described by a `HardwareProfile` (or a dict with the same fields).

    Fields read: ``backend``, ``execution_provider``, ``intra_op_threads``, ``graph_optimization_level``,
    ``provider_options`` (ORT), ``tvm_target`` (TVM) and ``device_kind`` ("gpu" → CUDA for torch/TVM).
    """
    name = _get(profile, "backend", default="onnxruntime")
    threads = int(_get(profile, "intra_op_threads", "threads", default=1))
    gpu = _get(profile, "device_kind", default="host") == "gpu"
    key = _ALIASES.get(str(name).lower(), str(name))
    if key == "onnxruntime":
        return make_backend(
            key, provider=_get(profile, "execution_provider", "provider", default="cpu"), threads=threads,
            opt_level=_get(profile, "graph_optimization_level", "opt_level", default="all"),
            provider_options=_get(profile, "provider_options"), session_config=_get(profile, "session_config"),
        )
    if key == "tvm":
        return make_backend(key, target=_get(profile, "tvm_target", "target"), device="cuda" if gpu else "cpu",
                            threads=threads)
    if key == "torch":
        return make_backend(key, device="cuda" if gpu else "cpu", threads=threads)
    return make_backend(str(name))


def profile_input_shape(profile: Any, spec_channels: int, size: int) -> tuple[int, int, int, int]:
    """NCHW input shape for a profile's batch size."""
    return (int(_get(profile, "batch_size", default=1)), spec_channels, size, size)


__all__ = ["BACKENDS", "Backend", "Runner", "create_backend", "make_backend", "profile_input_shape"]
