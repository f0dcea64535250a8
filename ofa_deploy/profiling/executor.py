"""Old import path of the executors: they live in `ofa_deploy.executors` (below `profiling`), re-exported here."""
from __future__ import annotations

from ofa_deploy.executors import (
    EXECUTOR_PLUGINS,
    EXECUTORS,
    Executor,
    LocalExecutor,
    ProcessExecutor,
    WorkerLostError,
    build_job,
    close_job,
    create_executor,
)

__all__ = ["EXECUTORS", "EXECUTOR_PLUGINS", "Executor", "LocalExecutor", "ProcessExecutor", "WorkerLostError",
           "build_job", "close_job", "create_executor"]
