"""ONNX Runtime backend: one reused session per model, IO binding with preallocated buffers.

Timing notes:
- Inputs and outputs are bound once (``io_binding``) to preallocated CPU buffers, so `run()` measures the
  graph execution plus a small constant binding overhead, never numpy allocation or copies.
- With ``intra_op_num_threads == 1`` ORT executes every kernel on the calling thread, so thread CPU time is
  a valid latency clock that is immune to other processes preempting the thread (``natural_clock = "thread"``).
- CUDA EP: ``run_with_iobinding`` returns after the outputs bound to CPU memory are copied back, which
  synchronises the stream; timing is therefore correct without an explicit synchronise. Outputs bound to
  device memory would need ``binding.synchronize_outputs()`` (done in `run`).
"""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ofa_deploy.errors import BackendUnavailableError, ConfigError
from ofa_deploy.profiling.timing.backends.base import Backend, Runner

log = logging.getLogger(__name__)

#: short provider names accepted in profiles → ORT provider names
PROVIDERS: dict[str, str] = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "nnapi": "NnapiExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "xnnpack": "XnnpackExecutionProvider",
    "qnn": "QNNExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "dnnl": "DnnlExecutionProvider",
}
OPT_LEVELS = ("disable", "basic", "extended", "layout", "all")


def provider_name(provider: str) -> str:
    """'cpu' / 'CPUExecutionProvider' / 'CPU' → 'CPUExecutionProvider' (ConfigError when unknown)."""
    if provider in PROVIDERS.values():
        return provider
    key = provider.lower().removesuffix("executionprovider")
    if key not in PROVIDERS:
        from ofa_deploy.errors import unknown_name

        raise unknown_name("ONNX Runtime provider", provider, PROVIDERS)
    return PROVIDERS[key]


def _opt_level(ort: Any, level: str) -> Any:
    table = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "layout": getattr(ort.GraphOptimizationLevel, "ORT_ENABLE_LAYOUT", ort.GraphOptimizationLevel.ORT_ENABLE_ALL),
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }
    if level not in table:
        raise ConfigError(f"unknown ORT optimisation level {level!r}; expected one of {OPT_LEVELS}")
    return table[level]


class OrtRunner(Runner):
    """A session with its input and output bound to preallocated buffers."""

    def __init__(self, session: Any, input_shape: Sequence[int], *, threads: int, on_cpu: bool, seed: int = 0) -> None:
        import onnxruntime as ort

        self.session = session
        inp = session.get_inputs()[0]
        rng = np.random.default_rng(seed)
        self._x = rng.standard_normal(tuple(input_shape)).astype(np.float32)
        self._binding = session.io_binding()
        self._binding.bind_cpu_input(inp.name, self._x)
        names = [o.name for o in session.get_outputs()]
        first = session.run(names, {inp.name: self._x})  # also gives the concrete output shapes
        self._outputs = [ort.OrtValue.ortvalue_from_numpy(np.empty_like(a)) for a in first]
        for name, value in zip(names, self._outputs):
            self._binding.bind_ortvalue_output(name, value)
        self._on_cpu = on_cpu
        self.natural_clock = "thread" if (on_cpu and threads == 1) else "wall"

    def run(self) -> None:
        self.session.run_with_iobinding(self._binding)
        if not self._on_cpu:
            self._binding.synchronize_outputs()

    def output(self) -> np.ndarray:
        return self._outputs[0].numpy()

    def close(self) -> None:
        self._binding = None
        self.session = None
        self._outputs = []


class OrtBackend(Backend):
    """ONNX Runtime with one execution provider, thread count and optimisation level.

    Args:
        provider: 'cpu', 'cuda', 'nnapi', 'coreml', 'xnnpack', ... or a full ORT provider name.
        threads: intra-op threads (inter-op is 1, sequential execution).
        opt_level: 'disable' | 'basic' | 'extended' | 'layout' | 'all'.
        provider_options: passed to the provider.
        session_config: extra ``SessionOptions.add_session_config_entry`` pairs.
    """

    name = "onnxruntime"
    model_format = "onnx"

    def __init__(self, *, provider: str = "cpu", threads: int = 1, opt_level: str = "all",
                 provider_options: Mapping[str, Any] | None = None,
                 session_config: Mapping[str, str] | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:  # pragma: no cover - ORT is a core dependency
            raise BackendUnavailableError("onnxruntime is not installed; pip install onnxruntime") from exc
        self._ort = ort
        self.provider = provider_name(provider)
        available = ort.get_available_providers()
        if self.provider not in available:
            raise BackendUnavailableError(
                f"ONNX Runtime provider {self.provider} is not available on this machine "
                f"(available: {', '.join(available)}); install the matching onnxruntime build "
                f"(e.g. onnxruntime-gpu for CUDA) and run on hardware that has it, or pick a CPU profile"
            )
        if threads < 1:
            raise ConfigError(f"threads must be >= 1, got {threads}")
        self.threads = threads
        self.opt_level = opt_level
        _opt_level(ort, opt_level)
        self.provider_options = dict(provider_options or {})
        self.session_config = dict(session_config or {})

    def session_options(self) -> Any:
        ort = self._ort
        so = ort.SessionOptions()
        so.intra_op_num_threads = self.threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = _opt_level(ort, self.opt_level)
        so.log_severity_level = 3
        for key, value in self.session_config.items():
            so.add_session_config_entry(key, str(value))
        return so

    def prepare(self, model: Any, input_shape: Sequence[int]) -> OrtRunner:
        path = self.as_path(model, (".onnx", ".ort"))
        providers: list[Any] = [(self.provider, self.provider_options)] if self.provider_options else [self.provider]
        if self.provider != "CPUExecutionProvider":
            providers.append("CPUExecutionProvider")
        session = self._ort.InferenceSession(str(path), self.session_options(), providers=providers)
        return OrtRunner(session, input_shape, threads=self.threads,
                         on_cpu=self.provider == "CPUExecutionProvider")

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "version": self._ort.__version__, "provider": self.provider,
                "threads": self.threads, "opt_level": self.opt_level,
                "provider_options": self.provider_options, "session_config": self.session_config}
