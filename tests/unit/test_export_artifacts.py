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
    loaded = load_report(out)
    assert isinstance(loaded, ExportReport)
    assert loaded.passed is False and loaded.files["subnet"] == "subnet.json"
    assert json.loads((out / "subnet.json").read_text()) == {"space": "x"}
    assert "torch" in loaded.versions and json.loads((out / "export_report.json").read_text())["schema_version"] == 1


def test_load_report_of_non_artifact_dir(tmp_path):
    with pytest.raises(ExportError, match="not an export artifact"):
        load_report(tmp_path)


def _validation(**kw):
    from ofa_deploy.export.validate import make_inputs, validate_runner

    ref = lambda x: x.reshape(x.shape[0], -1)[:, :10] * 3.0  # noqa: E731 - varies with the input
    return validate_runner(ref, lambda x: ref(x) + 1e-6, inputs=make_inputs((1, 12), n_inputs=3), backend="b", **kw)


def test_report_round_trips_through_from_dict_with_typed_validation():
    own, structural = _validation(), _validation(atol=0.0, rtol=0.0)  # a pass and a failure
    report = ExportReport(backend="tvm", out_dir="/x", files={"model": "model.so"}, passed=False, input_shape=(1, 12),
                          target={"kind": "llvm", "num-cores": 2}, dynamic_batch=False, validation=structural,
                          validated_on="randomised-bn copy", model_validation=own, timings={"compile": 1.23456},
                          subnet={"space": "x"}, notes=["n"], extra={"tuned": False})
    back = ExportReport.from_dict(json.loads(json.dumps(report.to_dict())))
    assert back.to_dict() == report.to_dict()
    assert back.validation == structural and back.model_validation == own and back.input_shape == (1, 12)
    assert not back.validation.passed and back.model_validation.passed and back.timings == {"compile": 1.2346}


@pytest.mark.parametrize("mutate, match", [
    (lambda d: d.pop("backend"), "malformed.*backend"),
    (lambda d: d.update(input_shape="abc"), "malformed"),
    (lambda d: d["validation"].pop("outputs"), "malformed"),
    (lambda d: d.update(schema_version=99), "schema_version 99"),
])
def test_malformed_reports_are_export_errors_naming_the_file(tmp_path, mutate, match):
    report = ExportReport(backend="onnx", out_dir=str(tmp_path), files={"model": "model.onnx"}, passed=True,
                          input_shape=(1, 12), validation=_validation())
    data = report.to_dict()
    mutate(data)
    (tmp_path / "export_report.json").write_text(json.dumps(data))
    with pytest.raises(ExportError, match=match) as err:
        load_report(tmp_path)
    assert "export_report.json" in str(err.value)


def test_unknown_file_role_names_the_known_ones():
    from ofa_deploy.errors import UnknownNameError

    report = ExportReport(backend="onnx", out_dir="/x", files={"model": "model.onnx"}, passed=None, input_shape=(1, 2))
    assert str(report.path("model")) == "/x/model.onnx"
    with pytest.raises(UnknownNameError, match="'modle'.*Did you mean 'model'"):
        report.path("modle")
