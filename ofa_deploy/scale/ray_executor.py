"""`RayExecutor`: the executor interface on Ray actors (install with ``pip install 'ofa-deploy[ray]'``).

Each worker is an actor that receives the job once through the object store (``ray.put``: supernet weights and
data are stored once, not per item) and builds it where it runs. Items are dispatched one at a time per actor
and results come back as they finish. An actor that dies (``ray.kill``, a lost node, out of memory) has its
item re-queued on the remaining actors (Ray restarts the actor up to `max_restarts` times); an item is given up
only after `max_retries` losses. The driver stays the single writer of the store, so nothing is written twice.
"""
from __future__ import annotations

import logging
import os
import socket
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from ofa_deploy.errors import BackendUnavailableError, ConfigError
from ofa_deploy.executors import Executor, WorkerLostError, build_job, close_job

log = logging.getLogger(__name__)

RAY_EXTRA = "pip install 'ofa-deploy[ray]'"


def require_ray() -> Any:
    """The `ray` module, or a `BackendUnavailableError` naming the extra to install."""
    try:
        import ray
    except ImportError:
        raise BackendUnavailableError(
            f"the Ray executor needs Ray, which is not installed; install the extra with {RAY_EXTRA} "
            "(ray 2.x), or use --executor local|process") from None
    return ray


def source_root() -> str | None:
    """The directory holding this ``ofa_deploy`` when it runs from a source checkout (not site-packages)."""
    root = Path(__file__).resolve().parents[2]
    return None if "site-packages" in root.parts or "dist-packages" in root.parts else str(root)


def worker_runtime_env() -> dict[str, Any]:
    """Ray's runtime_env making workers import the same ``ofa_deploy`` as the driver (source checkouts)."""
    root = source_root()
    if root is None:
        return {}
    paths = [root] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != root]
    return {"env_vars": {"PYTHONPATH": os.pathsep.join(paths)}}


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """Raise a clear error when nothing answers at ``host:port`` (Ray would otherwise retry for minutes)."""
    text = address.split("://", 1)[-1]
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"Ray address {address!r} is not host:port (e.g. 127.0.0.1:6379 from `ray start --head`)")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise BackendUnavailableError(
            f"no Ray cluster answers at {address} ({exc}); start one with `ray start --head` on that machine "
            "and pass the address it prints, or omit --ray-address to run a local Ray cluster") from None


def init_ray(address: str | None = None, *, resources: Mapping[str, float] | None = None,
             num_cpus: int | None = None) -> bool:
    """Connect to Ray unless this process already is: `address`, else ``RAY_ADDRESS`` or a running local
    cluster, else a new local cluster (with `resources`, e.g. device resources). True if it connected now."""
    ray = require_ray()
    if ray.is_initialized():
        return False
    env = worker_runtime_env()
    target = address or os.environ.get("RAY_ADDRESS")
    if target and target not in ("auto", "local") and not target.startswith("ray://"):
        check_reachable(target)
    try:
        if target:
            ray.init(address=target, runtime_env=env or None, log_to_driver=True)
            return True
        try:
            ray.init(address="auto", runtime_env=env or None)
        except ConnectionError:
            ray.init(num_cpus=num_cpus, resources=dict(resources or {}) or None, include_dashboard=False,
                     _node_ip_address="127.0.0.1",  # a local cluster stays on loopback
                     runtime_env=env or None)
    except (ConnectionError, RuntimeError, TimeoutError) as exc:
        raise BackendUnavailableError(f"could not connect to Ray at {target or 'a local cluster'}: {exc}. Check "
                                      "`ray status`, or omit --ray-address to start a local cluster") from exc
    return True


class JobActor:
    """The body of a Ray worker: builds the job once and applies it to items."""

    def __init__(self, job: Any) -> None:
        self.job = build_job(job)

    def run(self, item: Any) -> Any:
        return self.job(item)

    def pid(self) -> int:
        return os.getpid()

    def close(self) -> None:
        close_job(self.job)


def _unwrap(exc: BaseException) -> BaseException:
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, BaseException) else exc


def dispatch(ray: Any, actors: dict[str, Any], items: Iterable[Any], *, max_retries: int = 3,
             submit: Callable[[Any, Any], Any] | None = None,
             lost: Callable[[str, BaseException], None] | None = None,
             retry_on: tuple[type[BaseException], ...] = ()) -> Iterator[Any]:
    """Run items on `actors` (name → handle; one item in flight per actor) and yield results as they finish.

    An item whose actor dies, or whose job raises one of `retry_on`, goes back to the queue; an actor that
    fails twice in a row (or raises `retry_on`) leaves `actors` and `lost(name, error)` is called. Other job
    errors are raised as they were raised in the worker.
    """
    from ray.exceptions import RayActorError, RayTaskError

    submit = submit or (lambda actor, item: actor.run.remote(item))
    queue: deque[tuple[int, Any]] = deque(enumerate(items))
    inflight: dict[Any, tuple[str, int, Any]] = {}
    failures: dict[str, int] = defaultdict(int)
    retries: dict[int, int] = defaultdict(int)
    while queue or inflight:
        busy = {name for name, _, _ in inflight.values()}
        for name, actor in list(actors.items()):
            if name not in busy and queue:
                index, item = queue.popleft()
                inflight[submit(actor, item)] = (name, index, item)
        if not inflight:
            raise WorkerLostError(f"every worker of the pool is gone with {len(queue)} items left; the results "
                                  "so far are stored: fix the workers (see the warnings above) and resume")
        (ref,), _ = ray.wait(list(inflight), num_returns=1)
        name, index, item = inflight.pop(ref)
        try:
            value = ray.get(ref)
        except (RayActorError, RayTaskError) as exc:
            error = _unwrap(exc)
            actor_lost = isinstance(exc, RayActorError) or isinstance(error, retry_on)
            if not actor_lost:
                raise error from None
            failures[name] += 1
            retries[index] += 1
            if retries[index] > max_retries:
                raise WorkerLostError(f"work item {item!r} failed {retries[index]} times with its worker "
                                      f"({error}); the results so far are stored") from None
            queue.appendleft((index, item))
            if name in actors and (failures[name] >= 2 or isinstance(error, retry_on)):
                actors.pop(name)
                if lost is not None:
                    lost(name, error)
            log.warning("worker %s lost item %r (%s); retrying it on the pool", name, item,
                        type(error).__name__)
            continue
        failures[name] = 0
        yield value


class RayClient(Executor):
    """An executor on Ray: `close` shuts down the local Ray instance its `map` started (``_started``)."""

    _started: bool = False

    def close(self) -> None:
        if self._started:
            require_ray().shutdown()
            self._started = False


class RayExecutor(RayClient):
    """`workers` Ray actors (default: one per free CPU of the cluster, at most one per item).

    Args:
        workers: number of actors.
        address: a Ray cluster to join (``host:port``); None: ``RAY_ADDRESS``, a running local cluster, or a new
            local one (a plain ``ray.init()``).
        num_cpus: CPUs each actor holds.
        num_gpus: GPUs each actor holds; None: 1 (or a share) when the cluster has GPUs, else 0.
        max_restarts: Ray restarts of a dead actor.
        max_retries: losses of one item before the executor gives up.
    """

    def __init__(self, workers: int | None = None, address: str | None = None, *, num_cpus: float = 1.0,
                 num_gpus: float | None = None, max_restarts: int = 2, max_retries: int = 3) -> None:
        require_ray()
        if workers is not None and workers < 1:
            raise ConfigError(f"the Ray executor needs workers >= 1, got {workers}")
        self.workers = workers
        self.address = address
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus
        self.max_restarts = max_restarts
        self.max_retries = max_retries
        self.actors: dict[str, Any] = {}
        self._started = False

    def describe(self) -> dict[str, Any]:
        return {"executor": "ray", "workers": self.workers, "address": self.address, "num_gpus": self.num_gpus}

    def _gpus(self, ray: Any, n: int) -> float:
        if self.num_gpus is not None:
            return self.num_gpus
        total = float(ray.cluster_resources().get("GPU", 0))
        return min(1.0, total / n) if total > 0 else 0.0

    def map(self, job: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Any]:
        ray = require_ray()
        items = list(items)
        if not items:
            return
        self._started = init_ray(self.address) or self._started
        cpus = float(ray.cluster_resources().get("CPU", 1))
        n = min(len(items), self.workers or max(1, int(cpus // max(self.num_cpus, 1e-9))))
        actor_cls = ray.remote(JobActor).options(num_cpus=self.num_cpus, num_gpus=self._gpus(ray, n),
                                                 max_restarts=self.max_restarts, max_task_retries=0)
        job_ref = ray.put(job)  # once into the object store; every actor (and restart) reads it from there
        self.actors = {f"worker-{i}": actor_cls.remote(job_ref) for i in range(n)}
        try:
            yield from dispatch(ray, self.actors, items, max_retries=self.max_retries)
        finally:
            for actor in self.actors.values():
                ray.kill(actor)
            self.actors = {}


__all__ = ["JobActor", "RayClient", "RayExecutor", "check_reachable", "dispatch", "init_ray", "require_ray",
           "worker_runtime_env"]
