"""Where built latency tables are stored: `table_path`, `find_table`, `stored_tables` (they follow the hardware
profiles). The table classes live in the torch-free `ofa_deploy.tables.latency`.
"""
from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ofa_deploy.errors import ConfigError

log = logging.getLogger(__name__)


def table_path(profile: str, supernet: str, *, root: str | os.PathLike[str] | None = None) -> Path:
    """Where the table measured with hardware profile `profile` for `supernet` is kept.

    ``<root>/luts/<profile>/<supernet>.json``; `root` defaults to the user's cache (``$OFA_DEPLOY_CACHE`` or
    ``~/.cache/ofa-deploy``), where `profile build` writes: never inside the installed package.
    """
    from ofa_deploy.paths import cache_root

    return Path(root or cache_root()) / "luts" / profile / f"{supernet}.json"


def table_search_path(profile: str, supernet: str) -> list[Path]:
    """Where `find_table` looks, in order: the user's cache, the user's profile dir, the packaged tables.

    In each place, the table ``<supernet>.json`` comes first, then the tables measured on other hosts beside it,
    ``<supernet>@<host>.json`` (`host_table_path`), in name order: `find_table` picks the one measured here.
    """
    from ofa_deploy.paths import cache_root
    from ofa_deploy.profiling.hardware import profile_dirs

    paths: list[Path] = []
    for root in (cache_root(), *profile_dirs()):
        default = table_path(profile, supernet, root=root)
        paths += [default, *sorted(p for p in default.parent.glob(f"{supernet}{HOST_SEPARATOR}*.json")
                                   if not p.name.endswith(".validation.json"))]
    return paths


#: separates a supernet's name from a host tag in a stored table's file name (``ofa_mbv3_w12@amd-epyc-fb86c92f``)
HOST_SEPARATOR = "@"


def host_tag(fingerprint: Mapping[str, Any]) -> str:
    """A short, file-name-safe tag for the machine of a host fingerprint: vendor words and the CPU-flags hash."""
    words = re.findall(r"[a-z0-9]+", str(fingerprint.get("cpu_model", "")).lower())
    vendor = "-".join(w for w in words[:2] if w not in {"r", "tm", "cpu"}) or "host"
    return f"{vendor}-{str(fingerprint.get('cpu_flags_sha256', ''))[:8] or 'noflags'}"


def host_table_path(profile: str, supernet: str, fingerprint: Mapping[str, Any], *,
                    root: str | os.PathLike[str] | None = None) -> Path:
    """Where a table measured on the host of `fingerprint` is kept beside the default one:
    ``<root>/luts/<profile>/<supernet>@<host_tag>.json``."""
    default = table_path(profile, supernet, root=root)
    return default.with_name(f"{supernet}{HOST_SEPARATOR}{host_tag(fingerprint)}.json")


def find_table(profile: str, supernet: str, *, here: Mapping[str, Any] | None = None) -> Path:
    """The stored table for (`profile`, `supernet`) from the first place in `table_search_path` that has a usable
    one (the user's cache, then the user's profile dir, then the packaged tables). Within that place, the table
    measured on this host (its fingerprint matches `here`, default: this machine with the profile's runtime);
    with none measured here, its default table (callers then check its host and warn, refuse or adapt). Adapted
    tables whose held-out check failed are never picked. The log says which table was picked and why."""
    candidates = table_search_path(profile, supernet)
    places: dict[Path, list[Path]] = {}
    refused: list[str] = []
    for path in candidates:
        if path.is_file():
            why = refused_adaptation(path)
            if why:
                refused.append(f"{path}: {why}")
            else:
                places.setdefault(path.parent, []).append(path)
    if places:
        usable = next(iter(places.values()))
        if len(usable) == 1:
            return usable[0]
        here = here if here is not None else _fingerprint_here(profile)
        for path in usable:
            if _measured_here(path, here):
                log.info("latency table for %s on %s: %s (measured on this host)", supernet, profile, path)
                return path
        log.info("latency table for %s on %s: %s (none of the %d tables in %s was measured on this host)",
                 supernet, profile, usable[0], len(usable), usable[0].parent)
        return usable[0]
    if refused:
        raise ConfigError(f"no usable latency table for hardware profile {profile!r} and supernet {supernet!r}: "
                          + "; ".join(refused))
    raise ConfigError(
        f"no latency table for hardware profile {profile!r} and supernet {supernet!r} (looked for "
        f"{', '.join(str(p) for p in candidates)}). Build it with "
        f"`ofa-deploy profile build --profile {profile} --supernet {supernet}`, or pass a table file with --lut"
    )


def _fingerprint_here(profile: str) -> dict[str, Any]:
    """This host's fingerprint with `profile`'s runtime (the machine alone when the profile or backend is not
    available here)."""
    from ofa_deploy.errors import OfaDeployError
    from ofa_deploy.profiling.hardware import HardwareProfile
    from ofa_deploy.profiling.hosts.fingerprint import backend_fingerprint, host_fingerprint

    try:
        return backend_fingerprint(HardwareProfile.load(profile))
    except OfaDeployError:
        return host_fingerprint()


def _measured_here(path: Path, here: Mapping[str, Any]) -> bool:
    """Whether the table at `path` records a fingerprint that matches `here` (unreadable: no)."""
    from ofa_deploy.errors import OfaDeployError
    from ofa_deploy.fileio import read_json_file
    from ofa_deploy.profiling.hosts.fingerprint import compare, stored_fingerprint
    from ofa_deploy.tables.latency import Provenance

    try:
        data = read_json_file(path, what="latency table")
        provenance = Provenance.from_dict(data.get("provenance", {})) if isinstance(data, dict) else None
    except OfaDeployError:
        return False
    return provenance is not None and compare(stored_fingerprint(provenance), here).ok


def refused_adaptation(path: Path) -> str:
    """Why the table at `path` must not be used ('' when it may): an adapted table whose held-out check failed.

    Only the provenance is looked at; a file that cannot be read is left to the caller's own load (which says
    what is wrong with it)."""
    from ofa_deploy.errors import OfaDeployError
    from ofa_deploy.fileio import read_json_file
    from ofa_deploy.profiling.hosts.fingerprint import adaptation_refusal
    from ofa_deploy.tables.latency import Provenance

    try:
        data = read_json_file(path, what="latency table")
        provenance = Provenance.from_dict(data.get("provenance", {})) if isinstance(data, dict) else None
    except OfaDeployError:
        return ""
    return adaptation_refusal(provenance) if provenance is not None else ""


def stored_tables() -> list[dict[str, str]]:
    """Every stored table found by `find_table`'s search path: profile, supernet, host (the tag of a table kept for
    one host, "" for the default one), path, where (first wins)."""
    from ofa_deploy.paths import cache_root
    from ofa_deploy.profiling.hardware import profile_dirs

    seen: dict[tuple[str, str], dict[str, str]] = {}
    for where, root in (("cache", cache_root()), *(("user" if i == 0 else "packaged", d)
                                                    for i, d in enumerate(profile_dirs()))):
        luts = Path(root) / "luts"
        if not luts.is_dir():
            continue
        for path in sorted(luts.glob("*/*.json")):
            if path.name.endswith(".validation.json"):
                continue
            supernet, _, host = path.stem.partition(HOST_SEPARATOR)
            key = (path.parent.name, path.stem)
            seen.setdefault(key, {"profile": key[0], "supernet": supernet, "host": host, "path": str(path),
                                  "where": where})
    return sorted(seen.values(), key=lambda d: (d["profile"], d["supernet"], d["host"]))


__all__ = ["HOST_SEPARATOR", "find_table", "host_table_path", "host_tag", "refused_adaptation", "stored_tables",
           "table_path", "table_search_path"]
