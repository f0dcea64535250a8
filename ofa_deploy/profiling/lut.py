"""Where built latency tables are stored: `table_path`, `find_table`, `stored_tables` (they follow the hardware
profiles). The table classes live in the torch-free `ofa_deploy.tables.latency`.
"""
from __future__ import annotations

import os
from pathlib import Path

from ofa_deploy.errors import ConfigError


def table_path(profile: str, supernet: str, *, root: str | os.PathLike[str] | None = None) -> Path:
    """Where the table measured with hardware profile `profile` for `supernet` is kept.

    ``<root>/luts/<profile>/<supernet>.json``; `root` defaults to the user's cache (``$OFA_DEPLOY_CACHE`` or
    ``~/.cache/ofa-deploy``), where `profile build` writes: never inside the installed package.
    """
    from ofa_deploy.paths import cache_root

    return Path(root or cache_root()) / "luts" / profile / f"{supernet}.json"


def table_search_path(profile: str, supernet: str) -> list[Path]:
    """Where `find_table` looks, in order: the user's cache, the user's profile dir, the packaged tables."""
    from ofa_deploy.paths import cache_root
    from ofa_deploy.profiling.hardware import profile_dirs

    return [table_path(profile, supernet, root=d) for d in (cache_root(), *profile_dirs())]


def find_table(profile: str, supernet: str) -> Path:
    """The stored table for (`profile`, `supernet`): built here (user cache) first, then the packaged one."""
    candidates = table_search_path(profile, supernet)
    refused: list[str] = []
    for path in candidates:
        if path.is_file():
            why = refused_adaptation(path)
            if not why:
                return path
            refused.append(f"{path}: {why}")
    if refused:
        raise ConfigError(f"no usable latency table for hardware profile {profile!r} and supernet {supernet!r}: "
                          + "; ".join(refused))
    raise ConfigError(
        f"no latency table for hardware profile {profile!r} and supernet {supernet!r} (looked for "
        f"{', '.join(str(p) for p in candidates)}). Build it with "
        f"`ofa-deploy profile build --profile {profile} --supernet {supernet}`, or pass a table file with --lut"
    )


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
    """Every stored table found by `find_table`'s search path: profile, supernet, path, where (first wins)."""
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
            key = (path.parent.name, path.stem)
            seen.setdefault(key, {"profile": key[0], "supernet": key[1], "path": str(path), "where": where})
    return sorted(seen.values(), key=lambda d: (d["profile"], d["supernet"]))


__all__ = ["find_table", "refused_adaptation", "stored_tables", "table_path", "table_search_path"]
