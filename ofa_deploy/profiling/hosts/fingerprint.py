"""Host fingerprints: which machine and runtime a latency table was measured on, and whether that is here.

A table measured on one CPU predicts nothing certain on another (a table from an Intel Xeon used on an AMD EPYC
put a 11.98 ms prediction at 17.76 ms). Every table stores the fingerprint of its host; `check_host` compares
it with the current one. `predict`/`search` warn on a mismatch, `deploy` refuses unless told otherwise.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from ofa_deploy import hostinfo

log = logging.getLogger(__name__)

#: the fields compared, in the order they are reported
FINGERPRINT_KEYS = ("cpu_model", "cpu_flags_sha256", "cores", "os", "machine", "backend", "backend_version",
                    "provider", "threads", "profile_sha256")


def cpu_model() -> str:
    """This machine's CPU model name (`ofa_deploy.hostinfo.read_host`)."""
    return hostinfo.read_host().cpu_model


def host_fingerprint(*, backend: Mapping[str, Any] | None = None, profile: Any = None) -> dict[str, Any]:
    """This machine's fingerprint for a backend description (`Backend.describe()`) and a hardware profile."""
    host = hostinfo.read_host()
    desc = dict(backend or {})
    return {
        "cpu_model": host.cpu_model,
        "cpu_flags_sha256": host.flags_sha256,
        "cores": host.cores,
        "os": host.os,
        "machine": host.machine,
        "backend": str(desc.get("backend", getattr(profile, "backend", "")) or ""),
        "backend_version": str(desc.get("version", "")),
        "provider": str(desc.get("provider", getattr(profile, "execution_provider", "")) or ""),
        "threads": desc.get("threads", getattr(profile, "intra_op_threads", None)),
        "profile_sha256": str(getattr(profile, "sha256", "") or ""),
    }


def backend_fingerprint(profile: Any) -> dict[str, Any]:
    """The fingerprint here for `profile`, with its backend's versions (backend created and closed)."""
    from ofa_deploy.profiling.timing.backends import create_backend

    backend = create_backend(profile)
    try:
        return host_fingerprint(backend=backend.describe(), profile=profile)
    finally:
        backend.close()


@dataclass(frozen=True)
class HostCheck:
    """The outcome of comparing a table's fingerprint with this host's."""

    table: Mapping[str, Any]
    here: Mapping[str, Any]
    differences: tuple[str, ...]
    known: bool
    #: why the table is refused whatever the host (an adapted table whose held-out check did not pass)
    refusal: str = ""

    @property
    def ok(self) -> bool:
        return self.known and not self.differences and not self.refusal

    def describe(self) -> str:
        if self.refusal:
            return self.refusal
        if not self.known:
            return ("the table records no host fingerprint (built before fingerprints, or imported): it cannot be "
                    f"checked against this host ({_short(self.here)})")
        if not self.differences:
            return f"the table was measured on this host ({_short(self.here)})"
        diffs = "; ".join(f"{k}: table {self.table.get(k)!r}, here {self.here.get(k)!r}" for k in self.differences)
        return f"the table was measured on another host: {diffs}"

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "known": self.known, "differences": list(self.differences),
                "table": dict(self.table), "here": dict(self.here), "message": self.describe(),
                **({"refusal": self.refusal} if self.refusal else {})}


def _short(fp: Mapping[str, Any]) -> str:
    return (f"{fp.get('cpu_model')}, {fp.get('cores')} cores, {fp.get('backend')} {fp.get('backend_version')} "
            f"{fp.get('provider')}, {fp.get('threads')} thread(s)")


def compare(table_fp: Mapping[str, Any] | None, here: Mapping[str, Any]) -> HostCheck:
    """Compare a stored fingerprint with `here` (only keys both record; profile hash only if both have it)."""
    if not table_fp:
        return HostCheck(table={}, here=dict(here), differences=(), known=False)
    diffs = tuple(k for k in FINGERPRINT_KEYS if k in table_fp and k in here and table_fp[k] not in ("", None)
                  and here[k] not in ("", None) and table_fp[k] != here[k])
    return HostCheck(table=dict(table_fp), here=dict(here), differences=diffs, known=True)


def stored_fingerprint(provenance: Any) -> dict[str, Any]:
    """A table's host fingerprint (tables built before fingerprints: the part their provenance recorded); empty
    when it records no machine (OFA's tables, on-device results without one)."""
    host = dict(getattr(provenance, "host", None) or {})
    return host if host.get("cpu_model") else {}


def check_table_host(table: Any, profile: Any = None, *, here: Mapping[str, Any] | None = None) -> HostCheck:
    """Whether `table` (a `LatencyTable`) was measured on this host with `profile`'s runtime (default: the
    profile the table names, when it can be loaded here; else the machine alone)."""
    if here is None:
        profile = profile if profile is not None else table_profile(table)
        here = backend_fingerprint(profile) if profile is not None else host_fingerprint()
    check = compare(stored_fingerprint(table.provenance), here)
    refusal = adaptation_refusal(table.provenance)
    return replace(check, refusal=refusal) if refusal else check


def adaptation_refusal(provenance: Any) -> str:
    """Why an adapted table must not be used ('' when it may): its stored held-out check did not pass."""
    if getattr(provenance, "adaptation_passed", True):
        return ""
    validation = (getattr(provenance, "adaptation", None) or {}).get("validation") or {}
    figures = ", ".join(f"{k} {validation[k]}" for k in ("n", "within_5pct", "within_10pct", "spearman")
                        if k in validation) or "no held-out figures stored"
    return (f"the table was adapted from another device's table and its held-out check on the target did not pass "
            f"({figures}); it is never used. Adapt again with more device time (`ofa-deploy profile adapt "
            f"--max-seconds ...`) or build a table (`ofa-deploy profile build`)")


def table_profile(table: Any) -> Any:
    """The hardware profile a table names, if it can be loaded here (else None)."""
    from ofa_deploy.errors import OfaDeployError
    from ofa_deploy.profiling.hardware import HardwareProfile

    name = getattr(table.provenance, "profile_name", "")
    if not name:
        return None
    try:
        return HardwareProfile.load(name)
    except OfaDeployError:
        return None


def warn_if_foreign(table: Any, profile: Any = None, *, source: str = "latency table") -> HostCheck:
    """Log a warning naming both fingerprints when `table` was measured on another host; returns the check.

    Tables without a fingerprint (OFA's, or built before fingerprints) are checked by no one: they describe
    the device they name, and a note says so at info level.
    """
    from ofa_deploy.errors import OfaDeployError

    try:
        check = check_table_host(table, profile if profile is not None else table_profile(table))
    except OfaDeployError as exc:  # the profile's backend is missing here: compare the machine only
        log.info("checking %s against this host's backend failed (%s); comparing the machine only", source, exc)
        check = check_table_host(table, None, here=host_fingerprint())
    if check.refusal:
        log.warning("%s: %s", source, check.refusal)
    elif check.known and check.differences:
        log.warning("%s: %s. Its predictions are for that host; adapt it to this one in about a minute with "
                    "`%s`, or build a table here with `ofa-deploy profile build` (check with `ofa-deploy profile "
                    "check`)", source, check.describe(), _adapt_foreign(table, profile, source))
    elif not check.known:
        log.info("%s: %s", source, check.describe())
    return check


def adapt_command(source: str, profile: str, supernet: str | None = None) -> str:
    """The `ofa-deploy profile adapt` command line for a source table path, a target profile and a space name."""
    return f"ofa-deploy profile adapt --from {source} --profile {profile}" + (f" --supernet {supernet}"
                                                                             if supernet else "")


def _adapt_foreign(table: Any, profile: Any, source: str) -> str:
    """`adapt_command` for a foreign `table` read from `source` (a message naming its .json path)."""
    import re

    match = re.search(r"(\S+\.json)", source)
    name = getattr(profile, "name", None) or getattr(table.provenance, "profile_name", "") or "<profile>"
    return adapt_command(match.group(1) if match else "<table.json>", name,
                         getattr(table.provenance, "supernet", "") or None)


__all__ = ["FINGERPRINT_KEYS", "HostCheck", "adapt_command", "adaptation_refusal", "backend_fingerprint",
           "check_table_host", "compare", "cpu_model", "host_fingerprint", "table_profile", "warn_if_foreign"]
