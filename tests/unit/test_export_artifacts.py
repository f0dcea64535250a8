"""Artifact directories: refuse non-empty/invalid outputs, publish atomically, keep on KeepArtifacts."""
from __future__ import annotations

import json

import pytest

from ofa_deploy.errors import ExportError, ValidationFailedError
from ofa_deploy.export.artifacts import ExportReport, KeepArtifacts, check_out_dir, finish, load_report, staging_dir


def test_refuses_non_empty_dir_without_overwrite(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("x")
    with pytest.raises(ExportError, match="not empty.*overwrite"):
        check_out_dir(out, overwrite=False)
    assert check_out_dir(out, overwrite=True) == out


def test_refuses_a_file_as_out_dir(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(ExportError, match="not a directory"):
        check_out_dir(f, overwrite=True)


def test_publish_replaces_and_leaves_no_temp_dirs(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("x")
    with staging_dir(out, overwrite=True) as staged:
        assert staged.parent == tmp_path and staged != out
        (staged / "model.onnx").write_text("new")
        assert (out / "old.txt").exists()  # the old dir is intact until the new one is complete
    assert sorted(p.name for p in out.iterdir()) == ["model.onnx"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_error_inside_removes_staging_and_keeps_nothing(tmp_path):
    out = tmp_path / "new"
    with pytest.raises(RuntimeError):
        with staging_dir(out, overwrite=False) as staged:
            (staged / "half.onnx").write_text("half")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_keep_artifacts_publishes_then_raises(tmp_path):
    out = tmp_path / "out"
    report = ExportReport(backend="onnx", out_dir=str(out), files={"model": "model.onnx"}, passed=False,
                          input_shape=(1, 3, 8, 8), subnet={"space": "x"})
    with pytest.raises(ValidationFailedError) as err:
        with staging_dir(out, overwrite=False) as staged:
            (staged / "model.onnx").write_text("m")
            finish(report, staged, out)
            raise KeepArtifacts(ValidationFailedError("bad", report=report))
    assert err.value.report is report
    data = load_report(out)
    assert data["passed"] is False and data["files"]["subnet"] == "subnet.json"
    assert json.loads((out / "subnet.json").read_text()) == {"space": "x"}
    assert "torch" in data["versions"] and data["schema_version"] == 1


def test_load_report_of_non_artifact_dir(tmp_path):
    with pytest.raises(ExportError, match="not an export artifact"):
        load_report(tmp_path)
