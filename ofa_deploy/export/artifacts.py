"""Artifact directories and export reports.

One directory per export. It is assembled in a hidden temp dir next to the target and renamed into place at the
end, so a directory named like the target is always complete: model file(s), ``subnet.json`` (config + source)
and ``export_report.json`` (versions, opset/target, per-output errors, timings, pass/fail).
"""
from __future__ import annotations

import logging
import os
import secrets
import platform
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from ofa_deploy.errors import ExportError, ValidationFailedError, unknown_name
from ofa_deploy.export.validate import ValidationResult
from ofa_deploy.fileio import atomic_write_json, is_regular_file, read_json_file

log = logging.getLogger(__name__)

REPORT_NAME = "export_report.json"
SUBNET_NAME = "subnet.json"
SCHEMA_VERSION = 1


def library_versions() -> dict[str, str | None]:
    """Installed versions of the packages an artifact depends on (None when missing); no heavy imports."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for dist in ("ofa-deploy", "torch", "onnx", "onnxruntime", "onnxslim", "apache-tvm", "apache-tvm-ffi", "numpy"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


@dataclass
class ExportReport:
    """What one export produced and how well it matched the reference."""

    backend: str
    out_dir: str
    files: dict[str, str]
    passed: bool | None
    input_shape: tuple[int, ...]
    opset: int | None = None
    target: dict[str, Any] | None = None
    dynamic_batch: bool = True
    validation: ValidationResult | None = None
    validated_on: str | None = None  # "model", or "randomised-bn copy" when the model's outputs are constant
    model_validation: ValidationResult | None = None  # the model's own (constant-output) result in that case
    timings: dict[str, float] = field(default_factory=dict)
    versions: dict[str, str | None] = field(default_factory=library_versions)
    subnet: dict[str, Any] | None = None
    preprocessing: dict[str, Any] | None = None  # `ofa_deploy.preprocessing.Preprocessing.to_dict()` of the input
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))

    def path(self, role: str = "model") -> Path:
        """Absolute path of one produced file (roles: ``model``, ``onnx``, ``report``, ``subnet``, ...).

        Raises:
            UnknownNameError: this export wrote no file with that role (a `KeyError` too).
        """
        if role not in self.files:
            raise unknown_name("file role", role, self.files)
        return Path(self.out_dir) / self.files[role]

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION, "backend": self.backend, "passed": self.passed,
            "out_dir": self.out_dir, "files": dict(self.files), "input_shape": list(self.input_shape),
            "dynamic_batch": self.dynamic_batch, "opset": self.opset, "target": self.target,
            "validation": self.validation.to_dict() if self.validation else None, "validated_on": self.validated_on,
            "model_validation": self.model_validation.to_dict() if self.model_validation else None,
            "timings_s": {k: round(v, 4) for k, v in self.timings.items()}, "versions": self.versions,
            "subnet": self.subnet, "preprocessing": self.preprocessing, "notes": list(self.notes), "extra": self.extra,
            "created": self.created,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExportReport:
        """Inverse of `to_dict`: ``ExportReport.from_dict(r.to_dict()).to_dict() == r.to_dict()``.

        Raises:
            ExportError: not a report of this schema (missing keys, wrong types, a newer ``schema_version``).
        """
        if not isinstance(data, dict):
            raise ExportError(f"an export report must be a JSON object, got {type(data).__name__}")
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ExportError(f"export report schema_version {version!r} is not supported (this ofa-deploy reads "
                              f"{SCHEMA_VERSION}); re-run the export with this version")
        try:
            validation, model_validation = (ValidationResult.from_dict(data[k]) if data.get(k) else None
                                            for k in ("validation", "model_validation"))
            return cls(
                backend=str(data["backend"]), out_dir=str(data["out_dir"]), files=dict(data["files"]),
                passed=None if data["passed"] is None else bool(data["passed"]),
                input_shape=tuple(int(s) for s in data["input_shape"]),
                opset=None if data.get("opset") is None else int(data["opset"]), target=data.get("target"),
                dynamic_batch=bool(data["dynamic_batch"]), validation=validation,
                validated_on=data.get("validated_on"), model_validation=model_validation,
                timings={str(k): float(v) for k, v in dict(data.get("timings_s") or {}).items()},
                versions=dict(data["versions"]), subnet=data.get("subnet"), preprocessing=data.get("preprocessing"),
                notes=list(data.get("notes") or []),
                extra=dict(data.get("extra") or {}), created=str(data["created"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ExportError(f"malformed export report ({type(exc).__name__}: {exc}); expected the JSON written "
                              "by ofa-deploy export. Re-run the export") from exc


def check_out_dir(out_dir: str | os.PathLike[str], *, overwrite: bool) -> Path:
    """Refuse a non-empty or unwritable output directory unless `overwrite`; return it as an absolute Path."""
    out = Path(out_dir).expanduser().absolute()
    if out.exists() and not out.is_dir():
        raise ExportError(f"output path {out} exists and is not a directory; choose another --out")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ExportError(f"output directory {out} is not empty; pass overwrite=True (--overwrite) to replace it "
                          "or choose an empty/new directory")
    parent = out.parent
    probe = parent
    while not probe.exists():
        probe = probe.parent
    if not os.access(probe, os.W_OK | os.X_OK) or (out.exists() and not os.access(out, os.W_OK | os.X_OK)):
        raise ExportError(f"output directory {out} is not writable (no write permission on {probe}); "
                          "choose a writable --out")
    return out


def _new_staging_dir(out: Path) -> Path:
    """A new staging dir beside `out`, made with mode 0o777 so the process umask applies as to any new dir
    (mkdtemp would make it 0o700, and reading the umask means changing it)."""
    for _ in range(100):
        tmp = out.parent / f".{out.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            tmp.mkdir(mode=0o777)
        except FileExistsError:
            continue
        return tmp
    raise FileExistsError(f"could not create a staging directory beside {out}")


@contextmanager
def staging_dir(out_dir: str | os.PathLike[str], *, overwrite: bool) -> Iterator[Path]:
    """Yield a temp dir next to `out_dir`; on normal exit it replaces `out_dir`, on error it is removed.

    Raise `KeepArtifacts` inside the block to publish the directory and then re-raise the wrapped error
    (used for validation failures, whose artifacts and report must stay on disk).
    """
    out = check_out_dir(out_dir, overwrite=overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(out)
    tmp = _new_staging_dir(out)
    try:
        yield tmp
    except KeepArtifacts as keep:
        publish(tmp, out)
        raise keep.error from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    publish(tmp, out)


LEGACY_STALE_SECONDS = 24 * 3600  # staging dirs without an owner pid (older versions) count as stale after this


def remove_stale_staging(out: Path) -> list[Path]:
    """Delete leftovers of killed exports to `out`: staging dirs whose process is gone, and publish trash.

    Staging dirs are named ``.<out>.tmp-<pid>-<random>``; one whose pid is no longer running on this machine
    was orphaned by a crash (SIGKILL, power loss) and is removed. Dirs of running exports are left alone.
    Returns the removed paths.
    """
    removed = []
    try:
        siblings = list(out.parent.iterdir())
    except OSError:
        return removed
    for path in siblings:
        name = path.name
        if name.startswith(f".{out.name}.old-"):
            stale = True  # publish() moved an old result aside and was killed before deleting it
        elif name.startswith(f".{out.name}.tmp-"):
            stale = _staging_is_stale(path, name[len(f".{out.name}.tmp-"):])
        else:
            continue
        if stale and path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
            log.warning("removed %s, left behind by an interrupted export", path)
            removed.append(path)
    return removed


def _staging_is_stale(path: Path, tail: str) -> bool:
    pid_text, sep, _ = tail.partition("-")
    if sep and pid_text.isdigit():
        return not _pid_alive(int(pid_text))
    try:  # an older, pid-less name: stale once it is old
        return time.time() - path.stat().st_mtime > LEGACY_STALE_SECONDS
    except OSError:
        return False


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # another user's process (or an impossible pid): leave its directory alone
    return True


class KeepArtifacts(Exception):
    """Control flow: publish the staged directory, then raise `error`."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def publish(tmp: Path, out: Path) -> None:
    """Move a complete staged directory into place, replacing an existing `out` (old one removed after)."""
    trash = None
    if out.exists():
        trash = out.with_name(f".{out.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(out, trash)
    os.replace(tmp, out)
    if trash is not None:
        shutil.rmtree(trash, ignore_errors=True)
    log.info("artifacts written to %s", out)


def publish_copy(source: str | os.PathLike[str], out: str | os.PathLike[str]) -> Path:
    """Publish a copy of the artifact directory `source` at `out`: copied into a staging dir beside `out`, then
    moved into place atomically like an export (an existing `out` is replaced). Returns `out`."""
    out = Path(out).absolute()
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(out)
    tmp = _new_staging_dir(out)
    try:
        shutil.copytree(source, tmp, dirs_exist_ok=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    publish(tmp, out)
    return out


def raise_if_failed(report: ExportReport, out: Path) -> None:
    """Inside `staging_dir`: if validation failed, publish the artifacts and raise `ValidationFailedError`."""
    if report.passed is False:
        message = report.validation.message if report.validation else "validation failed"
        raise KeepArtifacts(ValidationFailedError(f"{message}. Artifacts and report kept in {out}", report=report))


def write_json(path: Path, data: Any) -> None:
    """Atomic JSON write (temp file in the same dir, then rename)."""
    atomic_write_json(path, data, default=_json_default)


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if isinstance(obj, (Path,)):
        return str(obj)
    if isinstance(obj, tuple):
        return list(obj)
    try:
        import numpy as np

        if isinstance(obj, np.generic):
            return obj.item()
    except ImportError:  # pragma: no cover
        pass
    return str(obj)


def finish(report: ExportReport, staged: Path, out: Path) -> None:
    """Write ``subnet.json`` (if any) and ``export_report.json`` into the staged dir; report paths point at `out`."""
    report.out_dir = str(out)
    if report.subnet is not None:
        write_json(staged / SUBNET_NAME, report.subnet)
        report.files["subnet"] = SUBNET_NAME
    report.files["report"] = REPORT_NAME
    write_json(staged / REPORT_NAME, report.to_dict())


def load_report(out_dir: str | os.PathLike[str]) -> ExportReport:
    """Read the ``export_report.json`` of an artifact directory.

    Raises:
        ExportError: no report there, or one that is not an export report of this schema.
    """
    path = Path(out_dir) / REPORT_NAME
    if not is_regular_file(path):
        raise ExportError(f"{path} not found; {out_dir} is not an export artifact directory")
    data = read_json_file(path, what="export report")
    if not isinstance(data, dict):
        raise ExportError(f"{path} must hold a JSON object, got {type(data).__name__}; re-run the export")
    try:
        return ExportReport.from_dict(data)
    except ExportError as exc:
        raise ExportError(f"{path}: {exc}") from exc


def subnet_info_from_model(model: Any) -> dict[str, Any] | None:
    """The JSON-able provenance a `SubnetModel` carries in ``.meta`` (None when it has none)."""
    meta = getattr(model, "meta", None)
    return dict(meta) if isinstance(meta, dict) and meta else None
