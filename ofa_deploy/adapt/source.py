"""The source of an adaptation: a latency table from another host, backend or device, and its space.

Any table the project reads: its own JSON tables (any host or backend, anchored or in ms) and OFA's YAML tables
(a directory of ``<r>_lookup_table.yaml`` files, or one file), which name no space, so the space is given.
`Source.describe` is what the adapted table's provenance records as ``adapted_from``: the source's fingerprint,
profile, device, backend, and the sha256 of every file read.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ofa_deploy.compat.ofa_lut import load_ofa_lut
from ofa_deploy.errors import ConfigError
from ofa_deploy.fileio import file_sha256
from ofa_deploy.spaces import SearchSpace
from ofa_deploy.tables.latency import LatencyTable


@dataclass(frozen=True)
class Source:
    """A loaded source table, its space, the files it was read from and a label for messages."""

    table: LatencyTable
    space: SearchSpace
    files: tuple[Path, ...]
    label: str

    def describe(self) -> dict[str, Any]:
        from ofa_deploy.profiling.hosts.fingerprint import stored_fingerprint

        prov = self.table.provenance
        return {"path": self.label, "files": {str(p): file_sha256(p) for p in self.files},
                "fingerprint": stored_fingerprint(prov), "profile": prov.profile_name, "device": prov.device,
                "backend": prov.host.get("backend", ""), "backend_version": prov.host.get("backend_version", ""),
                "supernet": prov.supernet,
                "date": prov.date, "unit": self.table.unit, "stat": self.table.stat,
                "anchor": self.table.anchor.to_dict() if self.table.anchor else None}


def resolve_space(supernet: str | SearchSpace | None, named: str) -> SearchSpace:
    """The space given, else the one the table names; a table for another space is an error."""
    from ofa_deploy.spaces import get_space

    if supernet is None:
        if not named:
            raise ConfigError("the source latency table names no supernet (OFA's YAML tables do not); pass "
                              "supernet= (CLI: --supernet), e.g. ofa_mbv3_w12 for OFA's Note10 tables")
        return get_space(named)
    space = get_space(supernet) if isinstance(supernet, str) else supernet
    if not isinstance(space, SearchSpace):
        raise ConfigError(f"supernet must be a space name or a SearchSpace, got {type(supernet).__name__}")
    if named and named != space.name:
        raise ConfigError(f"the source latency table is for supernet {named!r}, not {space.name!r}: adapt a table of "
                          f"{space.name} (or drop --supernet to adapt it for {named})")
    return space


def ofa_files(path: Path) -> tuple[Path, ...]:
    """The YAML files an OFA table path stands for (a directory of ``*_lookup_table.yaml``, or one file)."""
    if path.is_dir():
        return tuple(sorted(p for p in path.iterdir() if p.name.endswith(("_lookup_table.yaml", "_lookup_table.yml"))))
    return (path,)


def load_source(source: str | os.PathLike[str] | LatencyTable, supernet: str | SearchSpace | None) -> Source:
    """Read `source` (a JSON table, an OFA YAML directory or file, or a `LatencyTable`) and resolve its space."""
    if isinstance(source, LatencyTable):
        return Source(source, resolve_space(supernet, source.provenance.supernet), (), "<LatencyTable>")
    path = Path(source)
    if not path.exists():
        raise ConfigError(f"source latency table not found: {path}; pass a table JSON written by ofa-deploy or an "
                          "OFA YAML table directory or file")
    if path.is_dir() or path.suffix in (".yaml", ".yml"):
        if supernet is None:
            raise ConfigError(f"{path} is an OFA YAML table, which names no supernet; pass supernet= (CLI: "
                              "--supernet), e.g. ofa_mbv3_w12 for OFA's Note10 tables")
        space = resolve_space(supernet, "")
        table = load_ofa_lut(path, space)
        return Source(table, space, ofa_files(path), str(path))
    table = LatencyTable.load(path)
    return Source(table, resolve_space(supernet, table.provenance.supernet), (path,), str(path))


__all__ = ["Source", "load_source", "ofa_files", "resolve_space"]
