"""TVM target parsing (no TVM build): dict form, CLI strings, num-cores, -mcpu=native rejected."""
from __future__ import annotations

import pytest

from ofa_deploy.errors import ExportError
from ofa_deploy.export.options import DYNAMO_MIN_OPSET, MAX_OPSET, MIN_OPSET, check_opset
from ofa_deploy.export.tvm import parse_target
from ofa_deploy.hostinfo import read_host


def test_default_target_is_plain_llvm_with_cores():
    assert parse_target(None) == {"kind": "llvm", "num-cores": read_host().cores}


@pytest.mark.parametrize("text, expected", [
    ("llvm", {"kind": "llvm", "num-cores": 2}),
    ("llvm -mcpu=skylake-avx512 -num-cores=4", {"kind": "llvm", "mcpu": "skylake-avx512", "num-cores": 4}),
    ("llvm -mtriple=aarch64-linux-gnu -mattr=+neon,+v8.2a",
     {"kind": "llvm", "mtriple": "aarch64-linux-gnu", "mattr": ["+neon", "+v8.2a"], "num-cores": 2}),
    ('{"kind": "llvm", "mcpu": "znver3"}', {"kind": "llvm", "mcpu": "znver3", "num-cores": 2}),
])
def test_target_strings_parse_to_dicts(text, expected):
    assert parse_target(text, num_cores=2) == expected


def test_dict_target_is_not_mutated():
    given = {"kind": "llvm", "mcpu": "x"}
    out = parse_target(given, num_cores=3)
    assert given == {"kind": "llvm", "mcpu": "x"} and out["num-cores"] == 3


@pytest.mark.parametrize("bad", ["llvm -mcpu=native", {"kind": "llvm", "mcpu": "native"}])
def test_mcpu_native_is_rejected_with_the_detected_name(bad):
    with pytest.raises(ExportError, match="native.*detected CPU name"):
        parse_target(bad)


@pytest.mark.parametrize("bad", ["-mcpu=x", "llvm mcpu", "{not json", 5, "llvm -num-cores=two", "llvm -mcpu='x"])
def test_malformed_targets(bad):
    with pytest.raises(ExportError):
        parse_target(bad)


@pytest.mark.parametrize("opset", [MIN_OPSET - 1, MAX_OPSET + 1, 99, "17", True])
def test_unknown_opset_names_the_range(opset):
    with pytest.raises(ExportError, match=f"classic .*{MIN_OPSET}..{MAX_OPSET}"):
        check_opset(opset, exporter="torchscript")
    with pytest.raises(ExportError, match=f"dynamo .*{DYNAMO_MIN_OPSET}..{MAX_OPSET}"):
        check_opset(opset if opset != MIN_OPSET - 1 else DYNAMO_MIN_OPSET - 1, exporter="dynamo")


def test_missing_tvm_is_backend_unavailable_with_install_hint(monkeypatch, tmp_path):
    import sys

    from ofa_deploy.errors import BackendUnavailableError
    from ofa_deploy.export.tvm import export_tvm

    monkeypatch.setitem(sys.modules, "tvm", None)  # what `import tvm` sees when it is not installed
    with pytest.raises(BackendUnavailableError, match="pip install 'apache-tvm"):
        export_tvm(tmp_path / "m.onnx", tmp_path / "out")
    assert not (tmp_path / "out").exists()
