"""TVM (Relax) backend: compile each ONNX model with ``tvm.compile`` and run it in the Relax VM.

Untuned TVM code is slow on CPU (see research/backends.md §3): fine for correctness and relative ordering,
not for reporting "TVM speed". Threads come from ``TVM_NUM_THREADS``, which must be set before TVM starts
its thread pool: the backend sets it when TVM has not been imported yet and warns otherwise.
"""
from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from ofa_deploy.errors import BackendUnavailableError, ConfigError
from ofa_deploy.profiling.timing.backends.base import Backend, Runner

log = logging.getLogger(__name__)


def default_target(threads: int, mcpu: str | None = None) -> dict[str, Any]:
    """An llvm target dict; ``mcpu="native"`` is replaced by the detected CPU name (TVM 0.27 rejects it)."""
    target: dict[str, Any] = {"kind": "llvm", "num-cores": threads}
    if mcpu:
        if mcpu == "native":
            import tvm

            mcpu = tvm.target.codegen.llvm_get_system_cpu()
        target["mcpu"] = mcpu
    return target


def parse_target(text: str, threads: int) -> dict[str, Any]:
    """'llvm -mcpu=skylake -num-cores=2' → {'kind': 'llvm', 'mcpu': 'skylake', 'num-cores': 2} (TVM 0.27 wants dicts)."""
    parts = text.split()
    if not parts:
        raise ConfigError("empty TVM target; expected e.g. 'llvm' or 'llvm -mcpu=native'")
    target: dict[str, Any] = {"kind": parts[0]}
    for part in parts[1:]:
        if not part.startswith("-") or "=" not in part:
            raise ConfigError(f"cannot parse TVM target flag {part!r} in {text!r}; expected -key=value")
        key, value = part.lstrip("-").split("=", 1)
        target[key] = int(value) if value.isdigit() else value
    if target["kind"] == "llvm":
        target.setdefault("num-cores", threads)
    return target


class TvmRunner(Runner):
    def __init__(self, vm: Any, device: Any, input_shape: Sequence[int], seed: int = 0) -> None:
        import tvm

        self._vm = vm
        self._device = device
        x = np.random.default_rng(seed).standard_normal(tuple(input_shape)).astype(np.float32)
        self._x = tvm.runtime.tensor(x, device)
        self._fn = vm["main"]
        self._y: Any = None

    def run(self) -> None:
        self._y = self._fn(self._x)
        self._device.sync()

    def output(self) -> np.ndarray:
        y = self._y
        if not hasattr(y, "numpy"):
            y = y[0]
        return y.numpy()

    def close(self) -> None:
        self._vm = self._fn = self._y = self._x = None


class TvmBackend(Backend):
    """ONNX → Relax → ``tvm.compile`` for `target` (dict or 'llvm'), run on `device` ('cpu' | 'cuda')."""

    name = "tvm"
    model_format = "onnx"

    def __init__(self, *, target: dict[str, Any] | str | None = None, device: str = "cpu", threads: int = 1) -> None:
        if "tvm" not in sys.modules:
            os.environ["TVM_NUM_THREADS"] = str(threads)
        elif os.environ.get("TVM_NUM_THREADS") != str(threads):
            log.warning("TVM already imported with TVM_NUM_THREADS=%s; cannot switch to %d threads in-process",
                        os.environ.get("TVM_NUM_THREADS"), threads)
        try:
            import tvm
            import tvm.relax  # noqa: F401  (the frontend/VM this backend needs)
        except Exception as exc:
            raise BackendUnavailableError(f"TVM is not importable here ({exc}); pip install 'apache-tvm==0.27.*'") from exc

        self.threads = threads
        self.device_name = device
        self._device = tvm.cpu(0) if device == "cpu" else tvm.device(device, 0)
        if not self._device.exist:
            raise BackendUnavailableError(f"TVM device {device!r} is not present on this machine")
        self.target_spec = target if target is not None else default_target(threads)
        if isinstance(self.target_spec, str):
            self.target_spec = parse_target(self.target_spec, threads)
        if isinstance(self.target_spec, dict) and self.target_spec.get("mcpu") == "native":
            self.target_spec = default_target(threads, "native")
        self.target = tvm.target.Target(self.target_spec)
        self._version = tvm.__version__

    def compile(self, model: Any, input_shape: Sequence[int]) -> Any:
        """ONNX file → Relax executable for a static input shape."""
        import onnx
        import tvm
        from tvm.relax.frontend.onnx import from_onnx

        path = self.as_path(model, (".onnx",))
        graph = onnx.load(str(path))
        name = graph.graph.input[0].name
        mod = from_onnx(graph, shape_dict={name: list(input_shape)})
        return tvm.compile(mod, target=self.target)

    def prepare(self, model: Any, input_shape: Sequence[int]) -> TvmRunner:
        from tvm import relax

        if isinstance(model, (str, os.PathLike)):
            vm = relax.VirtualMachine(self.compile(model, input_shape), self._device)
        else:
            vm = relax.VirtualMachine(model, self._device)  # an already compiled executable
        return TvmRunner(vm, self._device, input_shape)

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "version": self._version, "device": self.device_name,
                "threads": self.threads, "target": str(self.target_spec)}
