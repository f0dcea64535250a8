"""An append-only JSON-lines store of measurements: what makes long profiling jobs resumable.

Line 1 is a header (job kind, profile hash, timer settings); every further line is one finished work item.
Each line is flushed and fsync'ed as soon as it is written, so an interrupted job loses at most the item in
flight. A trailing partial line (killed mid-write) is cut off on load, so the next record starts on a new line.
"""
from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ofa_deploy.errors import ConfigError
from ofa_deploy.fileio import decode_utf8, parse_json_text, read_bytes_file

log = logging.getLogger(__name__)


class JsonlStore:
    """Records of a resumable job at `path`, guarded by a header that must match on resume."""

    def __init__(self, path: str | os.PathLike[str], header: dict[str, Any], *, resume: bool = True) -> None:
        self.path = Path(path)
        self.header = header
        self.records: list[dict[str, Any]] = []
        if os.path.isdir(self.path):
            raise ConfigError(f"measurement store {self.path} is a directory; pass a file path for the store")
        if os.path.lexists(self.path) and resume:  # special files and symlink loops are refused by _load
            self._load()
        else:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                tmp = self.path.with_name(f".{self.path.name}.tmp")
                tmp.write_text(json.dumps({"header": header}) + "\n")
                os.replace(tmp, self.path)
            except OSError as exc:
                raise ConfigError(f"cannot create measurement store {str(self.path)[:200]!r}: {exc.strerror or exc}; "
                                  "choose another output path") from None

    def _load(self) -> None:
        fix = "delete it, or start over with resume=False (CLI: --no-resume), or write elsewhere (CLI: --out)"
        raw = read_bytes_file(self.path, what="measurement store", hint=fix)
        if raw and not raw.endswith(b"\n"):  # killed mid-write: cut the torn tail so the next append starts a line
            keep = raw.rfind(b"\n") + 1
            log.warning("dropping a partial last line of %s (interrupted write)", self.path)
            with self.path.open("r+b") as fh:
                fh.truncate(keep)
                fh.flush()
                os.fsync(fh.fileno())
            raw = raw[:keep]
        lines = decode_utf8(raw, where=f"measurement store {self.path}", hint=fix).splitlines()
        if not lines:
            raise ConfigError(f"measurement store {self.path} is empty; {fix}")
        first = parse_json_text(lines[0], where=f"measurement store {self.path}: the header line", hint=fix)
        found = first.get("header") if isinstance(first, dict) else None
        if not isinstance(found, dict):
            raise ConfigError(f"measurement store {self.path}: the first line is not a {{\"header\": {{...}}}} object; "
                              f"{fix}")
        if found != self.header:
            diff = sorted(k for k in set(found) | set(self.header) if found.get(k) != self.header.get(k))
            raise ConfigError(
                f"measurement store {self.path} was written by a different job (differs in {diff}); {fix}"
            )
        for n, line in enumerate(lines[1:], 2):
            try:
                record = json.loads(line)
            except (ValueError, RecursionError):
                record = None
            if isinstance(record, dict):
                self.records.append(record)
            else:
                log.warning("ignoring unreadable line %d of %s (not a JSON object)", n, self.path)
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
