"""`DeviceExecutor`: the devices of a fleet deploy on Ray, each job on the node that offers its device.

Every item names its device (``item.name``); its job runs in a Ray actor holding the custom resource
``device:<name>`` (capacity 1, as in `ofa_deploy.scale.pool`), so a device serves one deploy at a time and the
job runs next to it. On a new local cluster every device's resource is offered here. An actor that dies (a
lost node, ``ray.kill``) becomes a result naming the device and the error instead of ending the others.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ofa_deploy.scale.pool import require_resources
from ofa_deploy.scale.ray_executor import JobActor, RayClient, init_ray, require_ray

log = logging.getLogger(__name__)


class DeviceExecutor(RayClient):
    """One Ray actor per device item, placed by the resource ``device:<item.name>``.

    Args:
        address: a Ray cluster whose nodes offer the ``device:<name>`` resources; None: ``RAY_ADDRESS``, a running
            local cluster, or a new local one offering every device's resource.
        on_lost: item, error -> the result to yield when the item's actor died (default: re-raise).
    """

    def __init__(self, *, address: str | None = None,
                 on_lost: Callable[[Any, BaseException], Any] | None = None) -> None:
        require_ray()
        self.address = address
        self.on_lost = on_lost
        self._started = False

    def describe(self) -> dict[str, Any]:
        return {"executor": "ray-devices", "address": self.address}

    def map(self, job: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Any]:
        ray = require_ray()
        items = list(items)
        if not items:
            return
        resources = {f"device:{item.name}": 1 for item in items}
        self._started = init_ray(self.address, resources=resources) or self._started
        require_resources(ray, resources)
        job_ref = ray.put(job)
        actor_cls = ray.remote(JobActor)
        actors = {item.name: actor_cls.options(num_cpus=0, resources={f"device:{item.name}": 1}, max_restarts=0,
                                               max_task_retries=0).remote(job_ref) for item in items}
        pending = {actors[item.name].run.remote(item): item for item in items}
        try:
            while pending:
                (ref,), _ = ray.wait(list(pending), num_returns=1)
                item = pending.pop(ref)
                try:
                    yield ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - an actor lost with its device
                    cause = getattr(exc, "cause", None) or exc
                    if self.on_lost is None:
                        raise cause from None
                    log.warning("device %s: its Ray actor failed: %s", item.name, cause)
                    yield self.on_lost(item, cause)
        finally:
            for actor in actors.values():
                ray.kill(actor)


__all__ = ["DeviceExecutor"]
