"""What this machine is: CPU model and flags, its CPUs, the CPUs this process may run on, OS and machine.

The one place the package reads the host (``/proc/cpuinfo``, `os.cpu_count`, `os.sched_getaffinity`,
`platform`). Host fingerprints of latency tables, ``intra_op_threads: all``, TVM's default ``num-cores``,
``ofa-deploy env`` and the CPUs a local pool device pins to all ask `read_host()`, so every host-dependent path
can be run as another machine by substituting that one function (the tests do, for several CPUs and core counts).
"""
from __future__ import annotations

import hashlib
import os
import platform
from dataclasses import dataclass
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")


@dataclass(frozen=True)
class HostInfo:
    """One machine as the toolchain sees it."""

    cpu_model: str
    cpu_flags: tuple[str, ...]  # sorted; empty where the OS does not list them
    cores: int  # logical CPUs of the machine (`os.cpu_count`)
    usable_cpus: tuple[int, ...]  # the CPU ids this process may run on (its affinity), sorted
    physical_cores: int  # distinct (socket, core) pairs; `cores` where /proc/cpuinfo does not say
    os: str
    machine: str
    node: str

    @property
    def flags_sha256(self) -> str:
        """A short hash of the CPU flags ("" when none are known): tables compare it, not the long list."""
        return hashlib.sha256(" ".join(self.cpu_flags).encode()).hexdigest()[:16] if self.cpu_flags else ""


def parse_cpuinfo(text: str) -> tuple[str, tuple[str, ...], int]:
    """(first model name, sorted flags of the first CPU, number of distinct physical cores) of /proc/cpuinfo text."""
    model, flags = "", ()
    cores: set[tuple[str | None, str]] = set()
    phys = core = None
    for line in [*text.splitlines(), ""]:
        key, _, value = (part.strip() for part in line.partition(":"))
        if key == "model name" and not model:
            model = value
        elif key in ("flags", "Features") and not flags:
            flags = tuple(sorted(value.split()))
        elif key == "physical id":
            phys = value
        elif key == "core id":
            core = value
        elif not key:  # a blank line ends one CPU's block
            if core is not None:
                cores.add((phys, core))
            phys = core = None
    return model, flags, len(cores)


def read_host(cpuinfo: Path = CPUINFO) -> HostInfo:
    """This machine, read now (nothing is cached: a test may substitute this function)."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        text = ""
    model, flags, physical = parse_cpuinfo(text)
    cores = os.cpu_count() or 1
    usable = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(cores))
    return HostInfo(cpu_model=model or platform.processor() or platform.machine(), cpu_flags=flags, cores=cores,
                    usable_cpus=tuple(usable), physical_cores=physical or cores, os=platform.system(),
                    machine=platform.machine(), node=platform.node())


__all__ = ["HostInfo", "parse_cpuinfo", "read_host"]
