"""An append-only JSON-lines store of measurements: what makes long profiling jobs resumable.

Line 1 is a header (job kind, profile hash, timer settings); every further line is one finished work item.
Each line is flushed and fsync'ed as soon as it is written, so an interrupted job loses at most the item in
flight. A trailing partial line (killed mid-write) is ignored on load.
"""
from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ofa_deploy.errors import ConfigError

log = logging.getLogger(__name__)


class JsonlStore:
    """Records of a resumable job at `path`, guarded by a header that must match on resume."""

    def __init__(self, path: str | os.PathLike[str], header: dict[str, Any], *, resume: bool = True) -> None:
        self.path = Path(path)
        self.header = header
        self.records: list[dict[str, Any]] = []
        if self.path.exists() and resume:
            self._load()
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.tmp")
            tmp.write_text(json.dumps({"header": header}) + "\n")
            os.replace(tmp, self.path)

    def _load(self) -> None:
        lines = self.path.read_text().splitlines()
        if not lines:
            raise ConfigError(f"measurement store {self.path} is empty; delete it or build without --resume")
        found = json.loads(lines[0]).get("header")
        if found != self.header:
            diff = sorted(k for k in set(found or {}) | set(self.header) if (found or {}).get(k) != self.header.get(k))
            raise ConfigError(
                f"measurement store {self.path} was written by a different job (differs in {diff}); "
                "delete it, or start over with resume=False (CLI: --no-resume), or write elsewhere (CLI: --out)"
            )
        for n, line in enumerate(lines[1:], 2):
            try:
                self.records.append(json.loads(line))
            except json.JSONDecodeError:
                log.warning("ignoring unreadable line %d of %s (interrupted write)", n, self.path)
        log.info("resuming from %s: %d records", self.path, len(self.records))

    def append(self, record: dict[str, Any]) -> None:
        with self.path.open("a") as fh:
            fh.write(json.dumps(record, separators=(",", ":")) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        self.records.append(record)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)
