"""Runners: callables numpy array in → list of numpy arrays out, one per backend, for validation and timing."""
from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np

from ofa_deploy.errors import BackendUnavailableError, ConfigError, ExportError
from ofa_deploy.fileio import is_regular_file


def ort_session(model: str | os.PathLike[str] | bytes, *, threads: int = 1, optimization: str = "all") -> object:
    """An ONNX Runtime CPU session (``.onnx`` or ``.ort`` file, or serialized bytes) with fixed thread counts.

    Raises:
        BackendUnavailableError: onnxruntime is not installed.
        ExportError: the file cannot be loaded (missing, corrupt, not ONNX/ORT format).
    """
    try:
        import onnxruntime as ort
    except ImportError as exc:  # pragma: no cover - onnxruntime is a base dependency
        raise BackendUnavailableError(
            "onnxruntime is not installed; install it with `pip install onnxruntime`") from exc
    level = ort.GraphOptimizationLevel
    levels = {"disable": level.ORT_DISABLE_ALL, "basic": level.ORT_ENABLE_BASIC,
              "extended": level.ORT_ENABLE_EXTENDED, "all": level.ORT_ENABLE_ALL}
    if optimization not in levels:
        raise ConfigError(f"unknown ORT optimization level {optimization!r}; expected one of {', '.join(levels)}")
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
        raise ConfigError(f"threads must be an int >= 0 (0: ORT's default), got {threads!r}")
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = levels[optimization]
    so.log_severity_level = 3
    src = model if isinstance(model, bytes) else str(model)
    if not isinstance(model, bytes) and not is_regular_file(src):
        raise ExportError(f"model file {src} does not exist; pass the path of an exported .onnx/.ort file")
    try:
        return ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ExportError(f"ONNX Runtime cannot load {src if isinstance(src, str) else 'model bytes'}: "
                          f"{str(exc).strip().splitlines()[0][:300]}. Is it a valid ONNX/ORT model?") from exc


def ort_runner(model: str | os.PathLike[str] | bytes, *, threads: int = 1, optimization: str = "all"):
    """A runner over one ORT session (single input)."""
    sess = ort_session(model, threads=threads, optimization=optimization)
    name = sess.get_inputs()[0].name  # type: ignore[attr-defined]

    def run(x: np.ndarray) -> list[np.ndarray]:
        return sess.run(None, {name: np.ascontiguousarray(x, dtype=np.float32)})  # type: ignore[attr-defined]

    run.session = sess  # type: ignore[attr-defined]
    return run


def interleaved_latency(
    runners: dict[str, Callable[[np.ndarray], object]], x: np.ndarray, *, rounds: int = 5, runs_per_round: int = 10,
    warmup: int = 3,
) -> dict[str, dict[str, float]]:
    """Time several runners on the same input, interleaved round by round (drift hits all alike).

    Returns per runner ``{"median_ms": median of all runs, "min_round_median_ms": ..., "n": runs}``.
    """
    import time

    for run in runners.values():
        for _ in range(warmup):
            run(x)
    samples: dict[str, list[float]] = {k: [] for k in runners}
    round_medians: dict[str, list[float]] = {k: [] for k in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            ts = []
            for _ in range(runs_per_round):
                t0 = time.perf_counter()
                run(x)
                ts.append((time.perf_counter() - t0) * 1e3)
            samples[name].extend(ts)
            round_medians[name].append(float(np.median(ts)))
    return {k: {"median_ms": float(np.median(samples[k])), "min_round_median_ms": float(min(round_medians[k])),
                "n": len(samples[k])} for k in runners}
