"""The executor interface the long jobs run through: local (sequential, default), a process pool, or Ray.

A job is a picklable callable applied to independent, idempotent work items; the executor yields results as
they finish (in any order) so the caller, the single writer, can append each one to a resumable store at once.
A job may also be a *job factory* (an object with ``build()`` returning the callable): workers then build the
job once where they run (open sessions, load weights) instead of receiving live sessions.

- `LocalExecutor`: in this process, one item after the other (what timing on the local machine needs).
- `ProcessExecutor`: `workers` spawned processes on this machine; a worker that dies has its item retried on
  a fresh worker.
- `ofa_deploy.scale.ray_executor.RayExecutor`: Ray actors anywhere in a cluster (the ``ray`` extra).
- `ofa_deploy.scale.pool.DevicePool`: one Ray actor per real device (custom resource ``device:<name>``).

`create_executor("local" | "process" | "ray", ...)` picks one by name (the CLI's ``--executor``). This module is
below `profiling`, `predictors` and `scale`: it imports none of them; executors above it are named by a
``"module:attribute"`` path in `EXECUTOR_PLUGINS` and imported when asked for.
"""
from __future__ import annotations

import abc
import importlib
import logging
import multiprocessing as mp
import pickle
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from multiprocessing.connection import Connection, wait
from typing import Any, TypeVar

from ofa_deploy.errors import ConfigError, OfaDeployError

T = TypeVar("T")
R = TypeVar("R")
log = logging.getLogger(__name__)

EXECUTORS = ("local", "process", "ray")
#: executors above this module, by the "module:attribute" of a factory taking (workers=, address=, **options)
EXECUTOR_PLUGINS: dict[str, str] = {"ray": "ofa_deploy.scale.ray_executor:RayExecutor"}


def build_job(job: Any) -> Callable[[Any], Any]:
    """The callable of `job`: ``job.build()`` for a job factory, else `job` itself."""
    build = getattr(job, "build", None)
    return build() if callable(build) else job


def close_job(job: Any) -> None:
    close = getattr(job, "close", None)
    if callable(close):
        close()


class Executor(abc.ABC):
    """Runs `job(item)` for every item and yields the results as they complete."""

    #: True for executors whose workers are real devices (`ofa_deploy.scale.pool.DevicePool`). A pooled executor
    #: also provides ``build_job(factory)``, ``run_build(job, tasks, all_tasks, store, on_record=...)`` and
    #: ``build_provenance(provenance, info)``, which a LUT build calls instead of importing `scale`.
    pooled: bool = False

    @abc.abstractmethod
    def map(self, job: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        """Apply `job` to `items`; results may come back in any order (each carries its own item id)."""

    def close(self) -> None:
        """Release workers."""

    def describe(self) -> dict[str, Any]:
        return {"executor": type(self).__name__}

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LocalExecutor(Executor):
    """In this process, one item after the other (what timing on the local machine needs)."""

    def map(self, job: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        fn = build_job(job)
        try:
            for item in items:
                yield fn(item)
        finally:
            if fn is not job:
                close_job(fn)


class WorkerLostError(OfaDeployError):
    """A worker died more often than the executor retries an item."""


def _process_worker(conn: Connection) -> None:
    """Worker loop: receive the pickled job once, then (index, item) pairs until None."""
    job = build_job(pickle.loads(conn.recv_bytes()))
    try:
        while True:
            msg = conn.recv()
            if msg is None:
                return
            index, item = msg
            try:
                conn.send((index, True, job(item)))
            except Exception as exc:  # noqa: BLE001 - sent back to the driver, raised there
                conn.send((index, False, exc))
    finally:
        close_job(job)


class ProcessExecutor(Executor):
    """`workers` spawned processes on this machine, each building the job once; one item in flight per worker.

    A worker that dies (killed, out of memory) is replaced and its item retried, up to `max_retries` times per
    item; exceptions raised by the job itself are re-raised in the driver.
    """

    def __init__(self, workers: int = 2, *, max_retries: int = 2) -> None:
        if workers < 1:
            raise ConfigError(f"the process executor needs workers >= 1, got {workers}")
        self.workers = workers
        self.max_retries = max_retries
        self._ctx = mp.get_context("spawn")
        self.pids: list[int] = []

    def describe(self) -> dict[str, Any]:
        return {"executor": "process", "workers": self.workers}

    def _start(self, payload: bytes) -> tuple[Any, Connection]:
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(target=_process_worker, args=(child,), daemon=True)
        proc.start()
        child.close()
        parent.send_bytes(payload)
        self.pids.append(proc.pid)
        return proc, parent

    def map(self, job: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        queue: deque[tuple[int, Any]] = deque(enumerate(items))
        if not queue:
            return
        payload = pickle.dumps(job)
        workers = [self._start(payload) for _ in range(min(self.workers, len(queue)))]
        busy: dict[int, tuple[int, Any]] = {}  # worker slot -> (index, item)
        retries: dict[int, int] = {}
        try:
            while queue or busy:
                for slot, (_, conn) in enumerate(workers):
                    if slot not in busy and queue:
                        busy[slot] = queue.popleft()
                        conn.send(busy[slot])
                ready = wait([c for _, c in workers] + [p.sentinel for p, _ in workers])
                for slot, (proc, conn) in enumerate(list(workers)):
                    if conn in ready and conn.poll():
                        try:
                            index, ok, value = conn.recv()
                        except (EOFError, OSError):  # the worker died mid-answer
                            ok, value = None, None
                        if ok is not None:
                            busy.pop(slot, None)
                            if not ok:
                                raise value
                            yield value
                            continue
                    if proc.sentinel in ready and not proc.is_alive():
                        lost = busy.pop(slot, None)
                        conn.close()
                        if lost is not None:
                            retries[lost[0]] = retries.get(lost[0], 0) + 1
                            if retries[lost[0]] > self.max_retries:
                                raise WorkerLostError(
                                    f"work item {lost[1]!r} was lost with its worker {retries[lost[0]]} times "
                                    f"(exit code {proc.exitcode}); check memory and the job's logs")
                            log.warning("worker %d died (exit %s); retrying item %r", proc.pid, proc.exitcode,
                                        lost[1])
                            queue.appendleft(lost)
                        workers[slot] = self._start(payload)
        finally:
            for proc, conn in workers:
                try:
                    conn.send(None)
                except OSError:
                    pass
            for proc, conn in workers:
                proc.join(timeout=10)
                if proc.is_alive():
                    proc.kill()
                conn.close()


def create_executor(kind: str = "local", *, workers: int | None = None, address: str | None = None,
                    **options: Any) -> Executor:
    """An executor by name: 'local', 'process' (`workers` processes, default 2) or 'ray' (the ``ray`` extra;
    `address` joins a cluster, None: ``RAY_ADDRESS``, a running local cluster, or a new local one)."""
    if kind == "local":
        return LocalExecutor()
    if kind == "process":
        return ProcessExecutor(workers or 2, **options)
    if kind in EXECUTOR_PLUGINS:
        module, _, attr = EXECUTOR_PLUGINS[kind].partition(":")
        factory: Callable[..., Executor] = getattr(importlib.import_module(module), attr)
        return factory(workers=workers, address=address, **options)
    raise ConfigError(f"unknown executor {kind!r}; expected one of {', '.join(EXECUTORS)}")


__all__ = ["EXECUTORS", "EXECUTOR_PLUGINS", "Executor", "LocalExecutor", "ProcessExecutor", "WorkerLostError",
           "build_job", "close_job", "create_executor"]
