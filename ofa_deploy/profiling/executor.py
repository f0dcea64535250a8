"""Executors by name: `create_executor("local" | "process" | "ray", ...)` (the CLI's ``--executor``).

The executor classes live in `ofa_deploy.executors` (re-exported here). Executors above `profiling` are
plugins: named by a ``"module:attribute"`` path (the Ray one, `ofa_deploy.scale.ray_executor.RayExecutor`)
and imported when first asked for, or added with `register_executor`; `profiling` does not import `scale`.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from ofa_deploy.errors import ConfigError
from ofa_deploy.executors import (
    EXECUTORS,
    Executor,
    LocalExecutor,
    ProcessExecutor,
    WorkerLostError,
    build_job,
    close_job,
)


#: executors above `profiling`, by "module:attribute" of a factory taking (workers=, address=, **options)
EXECUTOR_PLUGINS: dict[str, str] = {"ray": "ofa_deploy.scale.ray_executor:RayExecutor"}
_FACTORIES: dict[str, Callable[..., Executor]] = {}


def register_executor(kind: str, factory: Callable[..., Executor]) -> None:
    """Make `create_executor(kind, workers=..., address=..., **options)` call `factory` with those arguments."""
    _FACTORIES[kind] = factory


def _factory(kind: str) -> Callable[..., Executor] | None:
    if kind not in _FACTORIES and kind in EXECUTOR_PLUGINS:
        module, _, attr = EXECUTOR_PLUGINS[kind].partition(":")
        _FACTORIES[kind] = getattr(importlib.import_module(module), attr)
    return _FACTORIES.get(kind)


def create_executor(kind: str = "local", *, workers: int | None = None, address: str | None = None,
                    **options: Any) -> Executor:
    """An executor by name: 'local', 'process' (`workers` processes, default 2) or 'ray' (the ``ray`` extra;
    `address` joins a cluster, None: ``RAY_ADDRESS``, a running local cluster, or a new local one)."""
    if kind == "local":
        return LocalExecutor()
    if kind == "process":
        return ProcessExecutor(workers or 2, **options)
    factory = _factory(kind)
    if factory is not None:
        return factory(workers=workers, address=address, **options)
    raise ConfigError(f"unknown executor {kind!r}; expected one of {', '.join(EXECUTORS)}")


__all__ = ["EXECUTORS", "EXECUTOR_PLUGINS", "Executor", "LocalExecutor", "ProcessExecutor", "WorkerLostError", "build_job",
           "close_job", "create_executor", "register_executor"]
