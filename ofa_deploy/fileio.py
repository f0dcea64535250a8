"""File I/O at the boundary.

Atomic writes: a reader sees the old file or the complete new one, never half of it. Reads: one helper
(`read_text_file`, `read_json_file`, `read_yaml_file`) for every text file the toolchain reads, so a missing
file, a directory, a FIFO, undecodable bytes or a parse error is always a `ConfigError` naming the file.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import secrets
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ofa_deploy.errors import ConfigError


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to `path`; when the block succeeds it replaces `path`, else it is removed.

    For writers that want a file name (``torch.save``, ``onnx.save``, ``fig.savefig``). The temp name keeps
    the suffix so tools that infer the format from it still work.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_temp_file(target)
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _new_temp_file(target: Path) -> Path:
    """A new empty file beside `target`, created with mode 0o666 so the process umask applies as it does to any
    new file (mkstemp would make it 0o600, and reading the umask means changing it)."""
    for _ in range(100):
        tmp = target.parent / f".{target.stem}.{secrets.token_hex(4)}.tmp{target.suffix}"
        try:
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
        except FileExistsError:
            continue
        return tmp
    raise FileExistsError(f"could not create a temporary file beside {target}")


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write `text` to `path` atomically (temp file in the same directory, fsync, rename)."""
    with atomic_path(path) as tmp, open(tmp, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


def atomic_write_json(path: str | os.PathLike[str], data: Any, *, indent: int | None = 2,
                      default: Callable[[Any], Any] | None = str) -> None:
    """Write `data` as JSON (with a trailing newline) to `path` atomically."""
    atomic_write_text(path, json.dumps(data, indent=indent, default=default) + "\n")


# ---- reading ---------------------------------------------------------------------------------------
def file_sha256(path: str | os.PathLike[str]) -> str:
    """The sha256 hex digest of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_regular_file(path: str | os.PathLike[str]) -> bool:
    """True if `path` names a regular file (after symlinks); never raises, never opens the file.

    Unlike `Path.is_file`, a name that is too long, contains a NUL byte or loops through symlinks is
    simply not a file.
    """
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def read_bytes_file(path: str | os.PathLike[str], *, what: str = "file", hint: str = "") -> bytes:
    """The bytes of the regular file `path`, or `ConfigError` saying why it cannot be read.

    Directories, FIFOs, sockets and devices are refused from `os.stat` before anything is opened (a FIFO
    would block), and the file is opened non-blocking and checked again, so a swap in between cannot block
    either. `what` names the file in messages (e.g. ``"hardware profile"``); `hint` is appended to them.
    """
    where = f"{what} {_show(path)}"
    tail = f"; {hint}" if hint else ""
    try:
        mode = os.stat(path).st_mode
        if not stat.S_ISREG(mode):
            raise ConfigError(f"cannot read {where}: it is {_file_kind(mode)}, not a regular file"
                              f"{tail or '; pass the path of a file'}")
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise ConfigError(f"{where} changed into a special file while being opened; pass a regular file{tail}")
            with os.fdopen(fd, "rb", closefd=False) as fh:
                return fh.read()
        finally:
            os.close(fd)
    except ConfigError:
        raise
    except FileNotFoundError:
        raise ConfigError(f"cannot read {where}: not found ({_show(path)} does not exist)"
                          f"{tail or '; check the path'}") from None
    except ValueError as exc:  # e.g. an embedded NUL byte
        raise ConfigError(f"cannot read {where}: not a usable path ({exc}){tail}") from None
    except OSError as exc:
        reason = {errno.ELOOP: "its symlinks form a loop", errno.ENAMETOOLONG: "the name is too long",
                  errno.ENOTDIR: "a part of the path is not a directory", errno.EACCES: "permission denied",
                  errno.EISDIR: "it is a directory"}.get(exc.errno or 0, exc.strerror or str(exc))
        raise ConfigError(f"cannot read {where}: {reason}{tail}") from None


def _show(path: str | os.PathLike[str], limit: int = 200) -> str:
    """`path` quoted for a message, shortened in the middle when very long."""
    text = os.fsdecode(path)
    if len(text) > limit:
        text = f"{text[:limit // 2]}...({len(text)} characters)...{text[-limit // 4:]}"
    return repr(text)


def _file_kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "a special file"


def read_text_file(path: str | os.PathLike[str], *, what: str = "file", hint: str = "") -> str:
    """The text of the regular file `path`, decoded as UTF-8 (a BOM is dropped); `ConfigError` otherwise."""
    return decode_utf8(read_bytes_file(path, what=what, hint=hint), where=f"{what} {_show(path)}", hint=hint)


def decode_utf8(raw: bytes, *, where: str, hint: str = "") -> str:
    """`raw` decoded as UTF-8 (a BOM is dropped), or `ConfigError` naming `where` and the first bad byte."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        tail = f"; {hint}" if hint else ""
        raise ConfigError(f"{where} is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
                          f"expected a UTF-8 text file{tail}") from None


def parse_json_text(text: str, *, where: str, hint: str = "") -> Any:
    """`json.loads(text)` with every parse failure (syntax, nesting too deep, huge integers) as `ConfigError`."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        problem = f"not valid JSON ({exc})"
    except (ValueError, RecursionError) as exc:
        problem = f"not usable JSON ({type(exc).__name__}: {str(exc)[:200]})"
    tail = f"; {hint}" if hint else ""
    raise ConfigError(f"{where} is {problem}{tail}")


def read_json_file(path: str | os.PathLike[str], *, what: str = "JSON file", hint: str = "") -> Any:
    """The parsed JSON content of the regular UTF-8 file `path`; `ConfigError` for anything unreadable."""
    return parse_json_text(read_text_file(path, what=what, hint=hint), where=f"{what} {_show(path)}", hint=hint)


def read_yaml_file(path: str | os.PathLike[str], *, what: str = "YAML file", hint: str = "") -> Any:
    """`yaml.safe_load` of the regular UTF-8 file `path` (C loader when available); `ConfigError` otherwise."""
    import yaml

    text = read_text_file(path, what=what, hint=hint)
    try:
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # = yaml.safe_load
    except (yaml.YAMLError, ValueError, TypeError, RecursionError) as exc:
        tail = f"; {hint}" if hint else ""
        raise ConfigError(f"{what} {_show(path)} is not valid YAML ({str(exc)[:300]}){tail}") from None
