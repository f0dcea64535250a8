"""One append-only JSON-lines store: what makes long jobs (LUT builds, accuracy datasets) resumable.

File format (new files)::

    {"kind":"...","seed":3,...}          <- line 1: the header, a plain JSON object (the job's settings)
    {"config":"...","top1":0.5}          <- every further line: one finished work item, a JSON object
    ...

The header is the plain object, not wrapped in ``{"header": ...}``: the accuracy dataset, the store's one
user-facing product (read by `load_accuracy_dataset`, by other tools and by people with ``head -1``), already
has this format with its own ``kind`` and ``schema_version``, so choosing it leaves every dataset file and its
readers unchanged; only the LUT build's internal ``<out>.measurements.jsonl`` gets a new first line for new
files. Lines are compact and ASCII (non-ASCII is escaped), so a cut can never split a character.

Reading accepts both formats ever written: the plain header, and the first line ``{"header": {...}}`` of LUT
measurement stores written before the two stores became one (an object whose only key is ``header`` holding an
object). A resumed old file keeps its old first line.

Durability: every append is flushed and fsync'ed, so an interrupted job loses at most the item in flight. A last
line without its newline (killed mid-write) is dropped on reading; a store opened for resuming also cuts it off
the file (fsync'ed, logged), so the next record starts on its own line. Unreadable complete lines (not JSON, not
an object, not UTF-8) are skipped with a warning; only the header line must be readable. Starting over writes
the header atomically (temp file + ``os.replace``), so a crash never leaves a store without its header.
"""
from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ofa_deploy.errors import ConfigError
from ofa_deploy.fileio import atomic_write_text, decode_utf8, parse_json_text, read_bytes_file

log = logging.getLogger(__name__)

LEGACY_HEADER_KEY = "header"  # first line {"header": {...}}: LUT measurement stores of earlier versions

RecordCheck = Callable[[dict[str, Any], int], dict[str, Any]]
"""Validates one record (given its 1-based line number); returns it or raises `ConfigError`."""


@dataclass(frozen=True)
class JsonlContents:
    """A parsed store file: the header, the readable records, and where a torn last line starts."""

    header: dict[str, Any]
    records: list[dict[str, Any]]
    complete: int  # bytes of complete lines; a torn last line (no newline) occupies raw[complete:]
    size: int

    @property
    def torn(self) -> bool:
        return self.complete < self.size


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


def parse_jsonl(raw: bytes, *, where: str, hint: str = "", check: RecordCheck | None = None) -> JsonlContents:
    """Header and records of a store's bytes (the one place that knows the format); see the module docstring.

    `where` names the file in messages, `hint` (how to fix it) is appended to them. `check` validates each
    readable record; its `ConfigError` is raised as is. A torn last line is left out (`JsonlContents.torn`).
    """
    tail = f"; {hint}" if hint else ""
    if not raw:
        raise ConfigError(f"{where} is empty (no header line){tail}")
    first_end = raw.find(b"\n")
    head = raw if first_end < 0 else raw[:first_end]
    text = decode_utf8(head, where=f"{where}: the header line", hint=hint)
    found = parse_json_text(text, where=f"{where}: the header line", hint=hint)
    if not isinstance(found, dict):
        raise ConfigError(f"{where}: the header line is not a JSON object (got {type(found).__name__}){tail}")
    if list(found) == [LEGACY_HEADER_KEY] and isinstance(found[LEGACY_HEADER_KEY], dict):
        found = found[LEGACY_HEADER_KEY]
    if first_end < 0:  # only a header, without its newline: nothing torn to drop, no records
        return JsonlContents(found, [], len(raw), len(raw))
    complete = raw.rfind(b"\n") + 1
    records: list[dict[str, Any]] = []
    for n, line in enumerate(raw[first_end + 1:complete].split(b"\n")[:-1], 2):
        if not line.strip():
            continue
        try:
            record = json.loads(line.decode("utf-8"))
        except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            record = None
        if not isinstance(record, dict):
            log.warning("%s: skipping unreadable line %d (not a JSON object)", where, n)
            continue
        records.append(check(record, n) if check is not None else record)
    return JsonlContents(found, records, complete, len(raw))


def read_jsonl(path: str | os.PathLike[str], *, what: str = "store", hint: str = "",
               check: RecordCheck | None = None) -> JsonlContents:
    """`parse_jsonl` of the regular file `path` (read only: a torn last line is ignored, not cut)."""
    raw = read_bytes_file(path, what=what, hint=hint)
    contents = parse_jsonl(raw, where=f"{what} {path}", hint=hint, check=check)
    if contents.torn:
        log.warning("%s %s: ignoring a partial last line (%d bytes, an interrupted write)", what, path,
                    contents.size - contents.complete)
    return contents


class JsonlStore:
    """The records of a resumable job at `path`, guarded by a header that must match on resume.

    Args:
        header: the job's settings; written as line 1 of a new file, compared with the file's on resume.
        resume: continue an existing file (if there is none, one is started).
        overwrite: what an existing file means when `resume` is False: True starts over (the LUT build's
            ``--no-resume``), False refuses with `ConfigError` so nothing is lost (the accuracy dataset).
            An empty file holds nothing and is always started over when not resuming.
        match: the header keys that must be equal on resume (None: all keys of both headers).
        what: names the file in messages ("measurement store", "accuracy dataset").
        hint: how to fix a refused file; appended to every error about an existing file.
        check: validates each stored record on resume (see `RecordCheck`).
    """

    def __init__(self, path: str | os.PathLike[str], header: dict[str, Any], *, resume: bool = True,
                 overwrite: bool = True, match: Collection[str] | None = None, what: str = "measurement store",
                 hint: str = "delete it, or start over with resume=False (CLI: --no-resume), or write elsewhere "
                             "(CLI: --out)",
                 check: RecordCheck | None = None) -> None:
        if list(header) == [LEGACY_HEADER_KEY]:
            raise ValueError(f"a store header cannot be only a {LEGACY_HEADER_KEY!r} key (the legacy wrapper)")
        self.path = Path(path)
        self.header = header
        self.records: list[dict[str, Any]] = []
        self._what, self._hint = what, hint
        if os.path.isdir(self.path):
            raise ConfigError(f"{what} {self.path} is a directory; pass a file path for it")
        exists = os.path.lexists(self.path)  # special files and symlink loops are refused by read_bytes_file
        if exists and resume:
            self._load(match, check)
            return
        if exists and not overwrite and not _is_empty_file(self.path):
            raise ConfigError(f"{what} {self.path} already exists and resuming is off; {hint}")
        self._start()

    def _start(self) -> None:
        try:
            atomic_write_text(self.path, _dumps(self.header) + "\n")
        except OSError as exc:
            raise ConfigError(f"cannot create {self._what} {str(self.path)[:200]!r}: {exc.strerror or exc}; "
                              "choose another output path") from None

    def _load(self, match: Collection[str] | None, check: RecordCheck | None) -> None:
        where, hint = f"{self._what} {self.path}", self._hint
        raw = read_bytes_file(self.path, what=self._what, hint=hint)
        contents = parse_jsonl(raw, where=where, hint=hint, check=check)
        if b"\n" not in raw:
            raise ConfigError(f"{where} ends inside its header line (no newline; not written by this tool); {hint}")
        found = contents.header
        keys = sorted(set(found) | set(self.header)) if match is None else list(match)
        diff = [k for k in keys if found.get(k) != self.header.get(k)]
        if diff:
            raise ConfigError(f"{where} was written by a different job ({', '.join(diff)} differ); {hint}")
        if contents.torn:  # cut only once the file is known to be this job's store
            with self.path.open("r+b") as fh:
                fh.truncate(contents.complete)
                fh.flush()
                os.fsync(fh.fileno())
            log.warning("%s: cut the partial last line (%d bytes) so the next record starts on its own line",
                        where, contents.size - contents.complete)
        self.records = contents.records
        log.info("resuming from %s: %d records", self.path, len(self.records))

    def append(self, record: dict[str, Any]) -> None:
        """Store one finished item: one line, flushed and fsync'ed before returning."""
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(_dumps(record) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        self.records.append(record)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)


def _is_empty_file(path: Path) -> bool:
    try:
        return path.is_file() and path.stat().st_size == 0
    except OSError:
        return False
