"""The CLI's scale-out options (``--executor``, ``--ray-address``, ``--workers``) and the executor they select."""
from __future__ import annotations

from typing import Any

import click


def executor_options(func: Any) -> Any:
    """Adds ``--executor local|process|ray``, ``--workers`` and ``--ray-address`` to a click command."""
    func = click.option("--ray-address", default=None,
                        help="Ray cluster to join (host:port from `ray start --head`); default: RAY_ADDRESS, a "
                             "running local cluster, or a new local one.")(func)
    func = click.option("--workers", type=int, default=None,
                        help="Parallel workers (process: default 2; ray: default one per cluster CPU).")(func)
    func = click.option("--executor", "executor_kind", type=click.Choice(["local", "process", "ray"]),
                        default="local", show_default=True,
                        help="Where work items run: this process, a process pool, or Ray (ofa-deploy[ray]).")(func)
    return func


def make_executor(kind: str, workers: int | None, address: str | None, profile: Any = None) -> Any:
    """The executor the options name; a profile with ``devices:`` under ``--executor ray`` gives its pool."""
    from ofa_deploy.executors import create_executor

    if kind == "ray" and profile is not None and getattr(profile, "devices", ()):
        from ofa_deploy.scale.pool import DevicePool

        return DevicePool(profile.devices, address=address)
    if address and kind != "ray":
        raise click.UsageError("--ray-address needs --executor ray")
    return create_executor(kind, workers=workers, address=address)
