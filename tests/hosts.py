"""Values a test treats as "another host", derived from this one and checked to differ from it, and the CPUs a
test may pin to (asked of the machine, skipping with the reason when it has too few)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from ofa_deploy.hostinfo import read_host


def another_cpu_model(here: str | None = None) -> str:
    """A CPU model name that is not `here` (default: this machine's): `here` with a suffix."""
    here = read_host().cpu_model if here is None else here
    other = f"{here} (another host)"
    assert other != here
    return other


def another_core_count(here: int | None = None) -> int:
    """A core count this machine (or `here`) does not have."""
    here = read_host().cores if here is None else here
    other = here + 1
    assert other != here
    return other


def foreign_fingerprint(here: Mapping[str, Any]) -> dict[str, Any]:
    """`here` (a host fingerprint) with another CPU model: the fingerprint of a table measured elsewhere."""
    other = {**here, "cpu_model": another_cpu_model(here["cpu_model"])}
    assert other["cpu_model"] != here["cpu_model"] and other["cpu_model"] != read_host().cpu_model
    return other


def usable_cpus(n: int) -> list[int]:
    """`n` CPU ids this process may run on, or a skip naming how many it has."""
    cpus = list(read_host().usable_cpus)
    if len(cpus) < n:
        pytest.skip(f"needs {n} CPUs this process may use; it has {len(cpus)} ({cpus})")
    return cpus[:n]
