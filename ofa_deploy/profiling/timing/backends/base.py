"""The backend protocol: prepare a model once, then run it many times for timing.

A `Backend` turns a model (an exported file, or an ``nn.Module`` for eager backends) into a `Runner`
whose `run()` executes one inference on a fixed, preallocated input and returns only when the result
is ready (GPU backends synchronise inside `run`). Runners hold sessions/buffers and are closed with
`close()` (or used as context managers). Backends never mutate the caller's model.
"""
from __future__ import annotations

import abc
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

log = logging.getLogger(__name__)

#: what a backend consumes: an ONNX file, a compiled library, or an in-memory ``nn.Module``.
ModelFormat = Literal["onnx", "module"]


class Runner(abc.ABC):
    """One prepared model with its input bound; `run()` is what the timer calls."""

    #: "thread" when `run()` computes on the calling thread only (1-thread CPU backends), so thread CPU
    #: time is a valid latency clock; "wall" otherwise.
    natural_clock: str = "wall"

    @abc.abstractmethod
    def run(self) -> None:
        """One synchronous inference on the bound input."""

    def output(self) -> Any:
        """The last output as a numpy array (for checks; not used while timing)."""
        raise NotImplementedError

    def close(self) -> None:
        """Release sessions and buffers; idempotent."""

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Backend(abc.ABC):
    """A runtime configuration (backend + device + threads + options) that can prepare models."""

    name: str = "backend"
    model_format: ModelFormat = "onnx"

    @abc.abstractmethod
    def prepare(self, model: Any, input_shape: Sequence[int]) -> Runner:
        """Load/compile `model` (a path for file backends, an ``nn.Module`` for eager ones) for `input_shape`."""

    @abc.abstractmethod
    def describe(self) -> dict[str, Any]:
        """JSON-able description for provenance: backend, device, versions, threads, options."""

    def close(self) -> None:
        """Release backend-wide resources."""

    @staticmethod
    def as_path(model: Any, suffixes: Sequence[str]) -> Path:
        from ofa_deploy.errors import ConfigError

        if not isinstance(model, (str, Path)):
            raise ConfigError(
                f"this backend needs a model file ({', '.join(suffixes)}), got {type(model).__name__}; "
                "export the module first (ofa_deploy.export.torch_to_onnx)"
            )
        path = Path(model)
        if not path.is_file():
            raise ConfigError(f"model file {path} does not exist")
        return path
