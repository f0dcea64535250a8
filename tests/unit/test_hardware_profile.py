"""Hardware profiles: the shipped YAMLs load, hash stably, and bad fields fail with named errors."""
from __future__ import annotations

import pytest
import yaml

from ofa_deploy.errors import ConfigError, UnknownNameError
from ofa_deploy.hostinfo import read_host
from ofa_deploy.profiling.hardware import PACKAGED_PROFILE_DIR, HardwareProfile, list_profiles

SHIPPED = ("ort-cpu-1t", "ort-cpu-1t-int8", "ort-cpu-all", "tvm-cpu", "ort-cuda", "ort-mobile-xnnpack", "torch-cpu")


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_profiles_load(name):
    profile = HardwareProfile.load(name)
    assert profile.name == name and profile.path == PACKAGED_PROFILE_DIR / f"{name}.yaml"
    assert profile.intra_op_threads >= 1 and profile.rounds >= 1 and len(profile.sha256) == 64
    assert HardwareProfile.load(profile.path) == profile  # by path too
    assert name in list_profiles()


def test_resolved_fields():
    assert HardwareProfile.load("ort-cpu-all").intra_op_threads == read_host().cores
    assert HardwareProfile.load("tvm-cpu").tvm_target == "llvm"
    assert HardwareProfile.load("ort-cuda").device_kind == "gpu"
    assert HardwareProfile.load("ort-mobile-xnnpack").execution_provider == "XNNPACKExecutionProvider"


def test_sha256_ignores_formatting_and_key_order(tmp_path):
    src = yaml.safe_load((PACKAGED_PROFILE_DIR / "ort-cpu-1t.yaml").read_text())
    path = tmp_path / "x.yaml"
    path.write_text(yaml.safe_dump(dict(reversed(list(src.items()))), default_flow_style=True))
    assert HardwareProfile.load(path).sha256 == HardwareProfile.load("ort-cpu-1t").sha256
    src["repeats"] += 1
    assert HardwareProfile.from_dict(src).sha256 != HardwareProfile.load("ort-cpu-1t").sha256


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"backend": "tensorflow"}, r"'backend' = 'tensorflow' is invalid; expected one of onnxruntime, tvm, torch"),
        ({"execution_provider": "CUDAProvider"}, r"did you mean 'CUDAExecutionProvider'"),
        ({"precision": "fp16"}, r"'precision'.*fp32, int8"),
        ({"intra_op_threads": 0}, r"'intra_op_threads' = 0 is invalid; expected an integer >= 1"),
        ({"intra_op_threads": "many"}, r"intra_op_threads"),
        ({"repeats": -3}, r"'repeats'"),
        ({"device_kind": "phone"}, r"host, mobile, gpu"),
        ({"graph_optimization_level": "max"}, r"disable, basic, extended, all"),
        ({"tvm_target": "llvm"}, r"'tvm_target'.*TVM setting"),
        ({"threads": 2}, r"unknown field 'threads'"),
        ({"name": "a b"}, r"'name'"),
    ],
)
def test_validation_errors_name_field_and_allowed_values(change, message):
    data = {"name": "p", "backend": "onnxruntime", **change}
    with pytest.raises(ConfigError, match=message):
        HardwareProfile.from_dict(data)


def test_tvm_profile_rejects_provider_and_bad_target():
    with pytest.raises(ConfigError, match="execution_provider"):
        HardwareProfile.from_dict({"name": "t", "backend": "tvm", "execution_provider": "CPUExecutionProvider"})
    with pytest.raises(ConfigError, match="tvm_target"):
        HardwareProfile.from_dict({"name": "t", "backend": "tvm", "tvm_target": {"mcpu": "x"}})
    assert HardwareProfile.from_dict({"name": "t", "backend": "tvm", "tvm_target": {"kind": "llvm"}}).tvm_target == {
        "kind": "llvm"}


def test_unknown_profile_name_suggests(tmp_path, monkeypatch):
    with pytest.raises(UnknownNameError, match="Did you mean 'ort-cpu-1t'"):
        HardwareProfile.load("ort-cpu-it")
    with pytest.raises(ConfigError, match="not found"):
        HardwareProfile.load(tmp_path / "none.yaml")
    (tmp_path / "mine.yaml").write_text("name: mine\nbackend: torch\n")
    monkeypatch.setenv("OFA_DEPLOY_PROFILES", str(tmp_path))
    assert HardwareProfile.load("mine").backend == "torch" and "mine" in list_profiles()


def test_optional_timer_and_session_fields():
    p = HardwareProfile.from_dict({"name": "p", "statistic": "p10", "anchor_every": 5, "session_config": {"a": 1}})
    assert (p.statistic, p.anchor_every, p.session_config) == ("p10", 5, {"a": "1"})
    assert HardwareProfile.load("ort-cpu-1t").statistic is None  # profiler default
    with pytest.raises(ConfigError, match="'session_config'"):
        HardwareProfile.from_dict({"name": "p", "backend": "torch", "session_config": {"a": "1"}})
    with pytest.raises(ConfigError, match="'anchor_every'"):
        HardwareProfile.from_dict({"name": "p", "anchor_every": -1})
