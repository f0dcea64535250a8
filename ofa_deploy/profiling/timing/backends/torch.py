"""PyTorch eager backend (a reference point; reported latencies should come from ORT or TVM).

The caller's module is deep-copied and put in eval mode on the target device; timing runs under
``torch.inference_mode``. On CUDA every `run()` ends with ``torch.cuda.synchronize()`` so the timer sees
finished work. ``torch.set_num_threads`` is process-wide: the runner sets it before each run and restores the
previous value on `close()`.
"""
from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from ofa_deploy.errors import BackendUnavailableError, ConfigError
from ofa_deploy.profiling.timing.backends.base import Backend, Runner


class TorchRunner(Runner):
    def __init__(self, module: Any, input_shape: Sequence[int], *, device: str, threads: int, seed: int = 0) -> None:
        import torch

        self._torch = torch
        self._previous_threads = torch.get_num_threads()
        self.threads = threads
        gen = torch.Generator().manual_seed(seed)
        self._x = torch.randn(tuple(input_shape), generator=gen).to(device)
        self._module = module
        self._cuda = device.startswith("cuda")
        self._y: Any = None
        self.natural_clock = "thread" if (threads == 1 and not self._cuda) else "wall"

    def run(self) -> None:
        torch = self._torch
        if torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)
        with torch.inference_mode():
            self._y = self._module(self._x)
        if self._cuda:
            torch.cuda.synchronize()

    def output(self) -> Any:
        return self._y.detach().cpu().numpy()

    def close(self) -> None:
        if self._module is not None:
            self._torch.set_num_threads(self._previous_threads)
        self._module = None
        self._y = None


class TorchBackend(Backend):
    """Eager PyTorch on 'cpu' or 'cuda[:i]' with `threads` intra-op threads."""

    name = "torch"
    model_format = "module"

    def __init__(self, *, device: str = "cpu", threads: int = 1, channels_last: bool = False) -> None:
        import torch

        if device.startswith("cuda") and not torch.cuda.is_available():
            raise BackendUnavailableError(
                f"torch device {device!r} requested but CUDA is not available on this machine "
                "(torch.cuda.is_available() is False); use a CPU profile or run on a GPU host"
            )
        if not (device == "cpu" or device.startswith("cuda")):
            raise ConfigError(f"torch backend device must be 'cpu' or 'cuda[:i]', got {device!r}")
        self.device = device
        self.threads = threads
        self.channels_last = channels_last

    def prepare(self, model: Any, input_shape: Sequence[int]) -> TorchRunner:
        import torch

        if not isinstance(model, torch.nn.Module):
            raise ConfigError(f"the torch backend times nn.Module objects, got {type(model).__name__}")
        clone = copy.deepcopy(model).eval().to(self.device)
        if self.channels_last:
            clone = clone.to(memory_format=torch.channels_last)
        return TorchRunner(clone, input_shape, device=self.device, threads=self.threads)

    def describe(self) -> dict[str, Any]:
        import torch

        return {"backend": self.name, "version": torch.__version__, "device": self.device,
                "threads": self.threads, "channels_last": self.channels_last}
