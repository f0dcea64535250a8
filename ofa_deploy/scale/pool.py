"""`DevicePool`: a LUT build spread over several real devices of one kind, one Ray actor per device.

Each device actor holds the custom resource ``device:<name>`` (capacity 1), so a device serves one job at a
time, and reaches its device through a runner (`ofa_deploy.scale.runners`). Pool builds time layers isolated
and pair every item with the anchor *on the device that times it* (A, item, A), so each record carries its own
ratio and its device's name. After the pass, `flag_devices` compares each device's anchor median with the
pool's; the records of a flagged device stay in the store but are left out of the table, and the items only a
flagged device measured are measured again on the others. A device that cannot connect is dropped at start
(an error if none can); one that disappears mid-build has its item retried on another device.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ofa_deploy.errors import ConfigError
from ofa_deploy.profiling.hosts.devices import DEFAULT_TOLERANCE, DeviceSpec, DeviceUnavailableError, flag_devices
from ofa_deploy.profiling.methods import task_key
from ofa_deploy.scale.ray_executor import RayClient, dispatch, init_ray, require_ray

log = logging.getLogger(__name__)


@dataclasses.dataclass
class PoolJob:
    """What a device actor needs to time the tasks of a LUT build (a `BuildJobFactory` of the isolated method)."""

    factory: Any

    def model(self, item_id: str) -> tuple[Path, tuple[int, ...]]:
        """The ONNX model and input shape of a task id (exported on first use into the shared model dir)."""
        model, shape = self.factory.method.model(item_id)
        return Path(model), tuple(shape)


def pool_job(factory: Any) -> PoolJob:
    """The pool's job for a build; pools time layers isolated (each item paired with the anchor on its device)."""
    if factory.method.name != "isolated":
        raise ConfigError(f"device pools time layers isolated (each paired with the anchor on its device), got "
                          f"method {factory.method.name!r}; pass --method isolated (or auto)")
    if not isinstance(factory.anchor_path, (str, Path)):
        raise ConfigError("device pools need an ONNX backend profile (onnxruntime); eager torch models cannot be "
                          "sent to devices")
    return PoolJob(factory)


class DeviceActor:
    """The body of one device's Ray actor: a runner connected to the device, timing tasks."""

    def __init__(self, device: DeviceSpec, job: PoolJob) -> None:
        from ofa_deploy.scale.runners import make_runner

        self.device = device
        self.job = job
        self.runner = make_runner(device, job.factory.profile, job.factory.protocol)

    def connect(self) -> dict[str, Any]:
        return self.runner.connect()

    def run(self, task: Any) -> dict[str, Any]:
        model, shape = self.job.model(task.item_id)
        anchor, anchor_shape = self.job.model("__anchor__")
        visit = self.runner.paired_visit(model, shape, anchor, anchor_shape)
        return {"id": task.item_id, "round": task.round, "seq": task.seq, "anchor": task.anchor,
                "ms": visit["item_ms"], **visit, "device": self.device.name, "t": time.time()}

    def close(self) -> None:
        self.runner.close()


def require_resources(ray: Any, resources: Iterable[str]) -> None:
    """Raise `DeviceUnavailableError` naming the device resources no node of the Ray cluster offers."""
    offered = ray.cluster_resources()
    missing = [r for r in resources if offered.get(r, 0) < 1]
    if missing:
        raise DeviceUnavailableError(
            f"no node of the Ray cluster offers {', '.join(missing)}; start the node next to each device with "
            f"`ray start --address <head> --resources '{{\"{missing[0]}\": 1}}'`")


class DevicePool(RayClient):
    """Executor over devices: items spread over the pool, one in flight per device.

    Args:
        devices: the profile's ``devices`` (`parse_devices`).
        address: a Ray cluster whose nodes offer the ``device:<name>`` resources; None: ``RAY_ADDRESS``, a
            running local cluster, or a new local one offering every device's resource.
        tolerance: a device whose anchor median is off the pool's by more than this fraction is flagged.
        connect_timeout: seconds to wait for each device to connect.
    """

    pooled = True

    def build_job(self, factory: Any) -> PoolJob:
        """The pool's job for a LUT build (`pool_job`)."""
        return pool_job(factory)

    def run_build(self, job: PoolJob, tasks: Sequence[Any], all_tasks: Sequence[Any], store: Any, *,
                  on_record: Callable[[int], Any] | None = None) -> tuple[list[dict[str, Any]], dict[str, Any], int]:
        """A LUT build's tasks on this pool (`run_pooled`)."""
        return run_pooled(self, job, tasks, all_tasks, store, on_record=on_record)

    def build_provenance(self, provenance: Any, info: dict[str, Any]) -> Any:
        """The built table's provenance with this pool's info (`pool_provenance`)."""
        return pool_provenance(provenance, info)

    def __init__(self, devices: Sequence[DeviceSpec], *, address: str | None = None,
                 tolerance: float = DEFAULT_TOLERANCE, connect_timeout: float = 120.0, max_retries: int = 3) -> None:
        require_ray()
        if not devices:
            raise ConfigError("a device pool needs at least one device; list them under 'devices:' in the profile")
        self.devices = list(devices)
        self.address = address
        self.tolerance = tolerance
        self.connect_timeout = connect_timeout
        self.max_retries = max_retries
        self.actors: dict[str, Any] = {}
        self.lost: dict[str, str] = {}
        self.described: dict[str, Any] = {}
        self._started = False

    def describe(self) -> dict[str, Any]:
        return {"executor": "device-pool", "devices": [d.name for d in self.devices], "address": self.address}

    def _lose(self, name: str, error: BaseException) -> None:
        self.lost[name] = f"{type(error).__name__}: {error}"
        log.warning("device %s left the pool: %s", name, error)

    def _start(self, ray: Any, job: Any, names: Iterable[str]) -> dict[str, Any]:
        wanted = [d for d in self.devices if d.name in set(names)]
        require_resources(ray, [d.resource for d in wanted])
        actor_cls = ray.remote(DeviceActor)
        job_ref = ray.put(job)
        actors = {d.name: actor_cls.options(num_cpus=0, resources={d.resource: 1}, max_restarts=0,
                                            max_task_retries=0, name=None).remote(d, job_ref) for d in wanted}
        pending = {actor.connect.remote(): name for name, actor in actors.items()}
        ready, late = ray.wait(list(pending), num_returns=len(pending), timeout=self.connect_timeout)
        for ref in late:
            self._lose(pending[ref], TimeoutError(f"no answer within {self.connect_timeout:.0f} s"))
            ray.kill(actors.pop(pending[ref]))
        for ref in ready:
            name = pending[ref]
            try:
                self.described[name] = ray.get(ref)
            except Exception as exc:  # noqa: BLE001 - every connection failure drops the device
                cause = getattr(exc, "cause", None) or exc
                self._lose(name, cause)
                ray.kill(actors.pop(name))
        if not actors:
            raise DeviceUnavailableError("no device of the pool could connect: " + "; ".join(
                f"{n}: {why}" for n, why in self.lost.items()))
        return actors

    def map(self, job: Callable[[Any], Any], items: Iterable[Any], *, exclude: Iterable[str] = ()) -> Iterator[Any]:
        ray = require_ray()
        items = list(items)
        if not items:
            return
        self._started = init_ray(self.address, resources={d.resource: 1 for d in self.devices}) or self._started
        skip = set(exclude) | set(self.lost)
        self.actors = self._start(ray, job, [d.name for d in self.devices if d.name not in skip])
        try:
            yield from dispatch(ray, self.actors, items, max_retries=self.max_retries, lost=self._lose,
                                retry_on=(DeviceUnavailableError,))
        finally:
            for actor in self.actors.values():
                try:
                    ray.get(actor.close.remote(), timeout=30)
                except Exception:  # noqa: BLE001 - the actor may be gone already
                    pass
                ray.kill(actor)
            self.actors = {}


def run_pooled(pool: DevicePool, job: PoolJob, tasks: Sequence[Any], all_tasks: Sequence[Any], store: Any, *,
               on_record: Callable[[int], Any] | None = None) -> tuple[list[dict[str, Any]], dict[str, Any], int]:
    """Run `tasks` on the pool (the driver appends every record), flag devices by their anchor, and re-measure
    on the other devices what only flagged devices measured. Returns (the table's records, pool info, measured)."""
    measured = 0

    def run(todo: Sequence[Any], exclude: Iterable[str] = ()) -> None:
        nonlocal measured
        for record in pool.map(job, todo, exclude=exclude):
            store.append(record)
            measured += 1
            if on_record is not None:
                on_record(1)

    run(tasks)
    anchors: dict[str, list[float]] = defaultdict(list)
    for rec in store.records:
        if "device" in rec:
            anchors[rec["device"]].append(float(rec["anchor_ms"]))
    info = flag_devices(anchors, pool.tolerance)
    flagged = set(info["flagged"])
    if flagged:
        log.warning("devices %s are off the pool's anchor by more than %.0f%%; their entries are kept apart",
                    sorted(flagged), 100 * pool.tolerance)
        covered = {task_key(r) for r in store.records if r.get("device") not in flagged}
        redo = [t for t in all_tasks if (t.item_id, t.round, t.seq) not in covered]
        if redo:
            run(redo, exclude=flagged)
    records: dict[tuple[str, int, int], dict[str, Any]] = {}
    for rec in store.records:
        if rec.get("device") not in flagged:
            records.setdefault(task_key(rec), rec)
    info["lost"] = dict(pool.lost)
    info["connected"] = {k: {kk: v[kk] for kk in ("runner", "cpus", "target", "serial") if kk in v}
                         for k, v in pool.described.items()}
    info["kept_apart"] = sum(1 for r in store.records if r.get("device") in flagged)
    return list(records.values()), info, measured


def pool_provenance(provenance: Any, pool: dict[str, Any]) -> Any:
    """The table's provenance with the pool (devices, anchors, flagged ones) in its notes."""
    try:
        notes = json.loads(provenance.notes) if provenance.notes else {}
    except json.JSONDecodeError:
        notes = {"notes": provenance.notes}
    good = [n for n in pool.get("devices", {}) if n not in pool.get("flagged", [])]
    return dataclasses.replace(provenance, device="pool:" + ",".join(good), notes=json.dumps({**notes, "pool": pool}))


__all__ = ["DeviceActor", "DevicePool", "PoolJob", "pool_job", "pool_provenance", "require_resources", "run_pooled"]
