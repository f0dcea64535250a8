"""Atomic writes keep the old file on failure and leave no temp files behind."""
from __future__ import annotations

import json

import pytest

from ofa_deploy.fileio import atomic_path, atomic_write_json, atomic_write_text


def test_atomic_write_replaces_and_cleans_up(tmp_path) -> None:
    target = tmp_path / "sub" / "table.json"
    atomic_write_json(target, {"a": 1})
    atomic_write_json(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 2}
    assert [p.name for p in target.parent.iterdir()] == ["table.json"]


def test_failed_write_keeps_the_old_file(tmp_path) -> None:
    target = tmp_path / "model.onnx"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


def test_temp_name_keeps_the_suffix(tmp_path) -> None:
    with atomic_path(tmp_path / "plot.png") as tmp:
        assert tmp.suffix == ".png" and tmp.parent == tmp_path
        tmp.write_bytes(b"x")
    assert (tmp_path / "plot.png").read_bytes() == b"x"


def test_written_files_get_normal_permissions(tmp_path) -> None:
    target = tmp_path / "lut.json"
    atomic_write_json(target, {})
    assert target.stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_readers_refuse_special_files_without_blocking(tmp_path) -> None:
    """A FIFO, a directory, a symlink loop, a too-long name and non-UTF-8 bytes are ConfigErrors, never a hang."""
    import os

    from ofa_deploy.errors import ConfigError
    from ofa_deploy.fileio import is_regular_file, read_json_file, read_text_file, read_yaml_file

    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "loop").symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(tmp_path / "loop")
    (tmp_path / "bin").write_bytes(b"\x80abc")
    (tmp_path / "bad.yaml").write_text("a: [1, 2\n")
    cases = {"fifo": "FIFO", ".": "a directory", "loop": "loop", "x" * 5000: "too long", "bin": "not UTF-8",
             "missing": "does not exist"}
    for name, needle in cases.items():
        with pytest.raises(ConfigError, match=needle):
            read_text_file(tmp_path / name, what="thing")
        assert is_regular_file(tmp_path / name) == (name == "bin")
    with pytest.raises(ConfigError, match="not valid YAML"):
        read_yaml_file(tmp_path / "bad.yaml")
    (tmp_path / "deep.json").write_text("[" * 100_000)
    with pytest.raises(ConfigError, match="JSON"):
        read_json_file(tmp_path / "deep.json")
