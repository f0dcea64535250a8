"""Executors by name: `create_executor("local" | "process" | "ray", ...)` (the CLI's ``--executor``).

The executor classes live in `ofa_deploy.executors` (re-exported here); the Ray one in
`ofa_deploy.scale.ray_executor`, which imports `ofa_deploy.executors`, not this module.
"""
from __future__ import annotations

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


def create_executor(kind: str = "local", *, workers: int | None = None, address: str | None = None,
                    **options: Any) -> Executor:
    """An executor by name: 'local', 'process' (`workers` processes, default 2) or 'ray' (the ``ray`` extra;
    `address` joins a cluster, None: ``RAY_ADDRESS``, a running local cluster, or a new local one)."""
    if kind == "local":
        return LocalExecutor()
    if kind == "process":
        return ProcessExecutor(workers or 2, **options)
    if kind == "ray":
        from ofa_deploy.scale.ray_executor import RayExecutor

        return RayExecutor(workers=workers, address=address, **options)
    raise ConfigError(f"unknown executor {kind!r}; expected one of {', '.join(EXECUTORS)}")


__all__ = ["EXECUTORS", "Executor", "LocalExecutor", "ProcessExecutor", "WorkerLostError", "build_job",
           "close_job", "create_executor"]
