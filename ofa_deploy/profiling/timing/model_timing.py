"""Time one model file (``.onnx``, ``.ort``, TVM ``.so``) on a hardware profile with the anchor-paired protocol.

What `onnxruntime_perf_test` does for ORT alone, on every backend of the toolchain and with the project's
protocol: the model is timed in rounds bracketed by an anchor model, so the result is a ratio to the anchor with a
95% interval, plus this run's wall-clock percentiles of the raw runs and, given a latency table, milliseconds at
the table's reference anchor time (comparable with the table's predictions).
"""
from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ofa_deploy.errors import ConfigError
from ofa_deploy.profiling.timing.backends.base import Runner

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


class _RecordingRunner(Runner):
    """Delegates to a runner and records the wall time of every timed run (warm-up runs skipped)."""

    def __init__(self, inner: Runner, warmup: int, repeats: int) -> None:
        self.inner, self.warmup, self.period = inner, warmup, warmup + repeats
        self.natural_clock = inner.natural_clock
        self.calls = 0
        self.runs_ms: list[float] = []

    def run(self) -> None:
        t0 = time.perf_counter_ns()
        self.inner.run()
        if self.calls % self.period >= self.warmup:
            self.runs_ms.append((time.perf_counter_ns() - t0) / 1e6)
        self.calls += 1

    def output(self) -> Any:
        return self.inner.output()

    def close(self) -> None:
        self.inner.close()


class _RecordingBackend:
    """Wraps a backend so the runner of `key_model` records its raw runs."""

    def __init__(self, inner: Any, model: Path, warmup: int, repeats: int) -> None:
        self.inner, self.model, self.warmup, self.repeats = inner, model, warmup, repeats
        self.recorder: _RecordingRunner | None = None

    def prepare(self, model: Any, input_shape: Sequence[int]) -> Runner:
        if isinstance(model, (str, Path)) and Path(model).suffix == ".so":
            runner = _load_tvm_library(self.inner, Path(model), input_shape)
        else:
            runner = self.inner.prepare(model, input_shape)
        if Path(str(model)) == self.model and self.recorder is None:
            self.recorder = _RecordingRunner(runner, self.warmup, self.repeats)
            return self.recorder
        return runner

    def close(self) -> None:
        self.inner.close()


def _load_tvm_library(backend: Any, path: Path, input_shape: Sequence[int]) -> Runner:
    """An exported TVM ``.so`` in a fresh Relax VM on the backend's device."""
    import tvm

    return backend.prepare(tvm.runtime.load_module(str(path)), input_shape)


@dataclass
class ModelTiming:
    """The outcome of `time_model`; `to_dict()` is the CLI's JSON."""

    model: str
    input_shape: tuple[int, ...]
    profile: str
    anchor: dict[str, Any]
    ratio: float
    ratio_interval: tuple[float, float]
    converged: bool
    rounds: int
    seconds: float
    anchor_ms_now: float
    anchor_swing: float
    runs_ms: list[float] = field(default_factory=list)
    table: dict[str, Any] | None = None

    @property
    def ms_now(self) -> float:
        return self.ratio * self.anchor_ms_now

    def percentiles(self) -> dict[str, float]:
        arr = np.asarray(self.runs_ms, dtype=float)
        return {f"p{q}": float(np.percentile(arr, q)) for q in (50, 90, 99)} if arr.size else {}

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "model": self.model, "input_shape": list(self.input_shape), "profile": self.profile, "anchor": self.anchor,
            "ratio": self.ratio, "ratio_interval": list(self.ratio_interval), "converged": self.converged,
            "rounds": self.rounds, "seconds": round(self.seconds, 2),
            "now": {"ms": self.ms_now, "interval_ms": [r * self.anchor_ms_now for r in self.ratio_interval],
                    "anchor_ms": self.anchor_ms_now, "anchor_swing": self.anchor_swing},
            "wall_ms": {**self.percentiles(), "n_runs": len(self.runs_ms)},
        }
        if self.table is not None:
            out["at_table_reference"] = self.table
        return out


def time_model(model: Path, profile: Any, anchor: tuple[Any, Sequence[int]], *, input_shape: Sequence[int],
               protocol: Any, table: Any = None, table_path: str | None = None,
               anchor_info: dict[str, Any] | None = None) -> ModelTiming:
    """Time `model` against `anchor` on `profile` with `protocol` (`measure_models`), recording the raw runs."""
    from ofa_deploy.profiling.timing.backends import create_backend
    from ofa_deploy.profiling.timing.measure import measure_models, reference_ms

    backend = _RecordingBackend(create_backend(profile), model, protocol.warmup, protocol.repeats)
    try:
        run = measure_models({"model": (model, tuple(input_shape))}, anchor, profile, protocol=protocol,
                             backend=backend, progress=True)
    finally:
        backend.close()
    result = run.results["model"]
    timing = ModelTiming(model=str(model), input_shape=tuple(input_shape), profile=profile.name,
                         anchor=anchor_info or {"model": str(anchor[0])}, ratio=result.ratio,
                         ratio_interval=tuple(result.interval), converged=result.converged, rounds=result.rounds,
                         seconds=run.seconds, anchor_ms_now=run.anchor_ms, anchor_swing=run.anchor_swing,
                         runs_ms=list(backend.recorder.runs_ms) if backend.recorder else [])
    ref = reference_ms(table)
    if ref is not None:
        timing.table = {"path": table_path, "anchor_ms": ref, "ms": result.ratio * ref,
                        "interval_ms": [r * ref for r in result.interval]}
    return timing


__all__ = ["MODEL_SUFFIXES", "ModelTiming", "check_backend", "find_model_file", "input_shape_of", "space_of",
           "time_model"]
