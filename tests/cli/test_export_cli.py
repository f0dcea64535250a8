"""`ofa-deploy export onnx|ort|int8|tvm` through CliRunner (exit codes 0/1/2/3, artifacts), once as a subprocess."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from ofa_deploy.cli.main import cli

REPO = Path(__file__).resolve().parents[2]
SMALL = ("--supernet", "ofa_mbv3_w10", "--subnet", "min", "--resolution", "128")



def _run(*args: str):
    return CliRunner().invoke(cli, ["export", *args])


@pytest.fixture(scope="module")
def onnx_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "onnx"
    result = _run("onnx", *SMALL, "--out", str(out), "--format", "json")
    assert result.exit_code == 0, result.output
    return out, json.loads(result.stdout)


def test_export_onnx_from_supernet(onnx_dir):
    out, data = onnx_dir
    assert data["passed"] and data["backend"] == "onnx" and data["opset"] == 18
    assert data["extra"]["exporter"] == "dynamo" and data["preprocessing"]["resolution"] == data["input_shape"][-1]
    assert sorted(p.name for p in out.iterdir()) == ["export_report.json", "model.onnx", "subnet.json"]
    subnet = json.loads((out / "subnet.json").read_text())
    assert subnet["source"] == "supernet" and subnet["supernet"] == "ofa_mbv3_w10" and subnet["weights"] is None
    assert subnet["resolution"] == 128 and subnet["compact"]
    assert any("random-init" in n for n in data["notes"])


def test_non_empty_out_needs_overwrite(onnx_dir):
    out, _ = onnx_dir
    result = _run("onnx", *SMALL, "--out", str(out))
    assert result.exit_code == 1 and "not empty" in result.stderr and "--overwrite" in result.stderr


@pytest.mark.parametrize("opset", ["5", "21"])
def test_bad_opset_exit_1(opset, tmp_path):
    result = _run("onnx", *SMALL, "--out", str(tmp_path / "o"), "--opset", opset)
    assert result.exit_code == 1 and "18..20" in result.stderr
    assert not (tmp_path / "o").exists()


def test_validation_failure_exit_3_keeps_artifacts(tmp_path):
    out = tmp_path / "o"
    result = _run("onnx", *SMALL, "--out", str(out), "--atol", "0", "--rtol", "0", "--format", "json")
    assert result.exit_code == 3, result.output
    assert "validation FAILED" in result.stderr
    assert json.loads(result.stdout)["passed"] is False  # the kept report is printed too
    assert (out / "model.onnx").is_file() and json.loads((out / "export_report.json").read_text())["passed"] is False


def test_usage_errors_exit_2(tmp_path):
    both = _run("onnx", "--net-config", "x.net.config", *SMALL, "--out", str(tmp_path / "o"))
    assert both.exit_code == 2 and "either --net-config or --supernet" in both.output
    neither = _run("onnx", "--out", str(tmp_path / "o"))
    assert neither.exit_code == 2


@pytest.fixture(scope="module")
def varying_onnx(tmp_path_factory):
    """model.onnx of a subnet with calibrated random BN: its outputs depend on the input (unlike random init)."""
    from ofa_deploy.export.onnx import export_onnx
    from tests.export_helpers import randomize_for_parity
    from ofa_deploy.nn.layers import SubnetModel
    from ofa_deploy.spaces import get_space

    space = get_space("ofa_mbv3_w10")
    model = randomize_for_parity(SubnetModel(space.walk_layers(space.min_config(128))), seed=2)
    report = export_onnx(model, tmp_path_factory.mktemp("cli") / "varying", input_shape=(1, 3, 128, 128))
    assert report.validated_on == "model" and report.validation.input_sensitivity > 0.1
    return report.path("model")


def test_export_ort_and_int8_from_onnx(varying_onnx, tmp_path):
    ort = _run("ort", "--onnx", str(varying_onnx), "--out", str(tmp_path / "ort"), "--format", "json")
    assert ort.exit_code == 0, ort.output
    assert json.loads(ort.stdout)["files"]["model"] == "model.ort"
    int8 = _run("int8", "--onnx", str(varying_onnx), "--out", str(tmp_path / "int8"), "--min-top1", "0",
                "--calib-batches", "2")
    assert int8.exit_code == 0, int8.output
    assert "latency fp32" in int8.stdout and "top-1 agreement" in int8.stdout


def test_int8_is_judged_by_min_top1_and_offers_no_tolerance(varying_onnx, tmp_path):
    """int8 used to accept --atol/--rtol and ignore them; they are gone (usage error), the fp32 commands keep them."""
    for flag in ("--atol", "--rtol"):
        result = _run("int8", "--onnx", str(varying_onnx), "--out", str(tmp_path / "int8"), flag, "1e-3")
        assert result.exit_code == 2 and f"{flag} does not apply to int8" in result.output
        assert "set --min-top1 instead" in result.output
    assert not (tmp_path / "int8").exists()
    int8_help = _run("int8", "--help").output
    assert "--min-top1" in int8_help and "--atol" not in int8_help and "--atol FLOAT" in _run("ort", "--help").output
    ort = _run("ort", "--onnx", str(varying_onnx), "--out", str(tmp_path / "ort"), "--atol", "1e-3", "--rtol", "0.5",
               "--format", "json")  # the fp32 commands pass them on (exit 3 at zero tolerance: test above)
    assert ort.exit_code == 0 and json.loads(ort.stdout)["validation"]["atol"] == 1e-3
    assert json.loads(ort.stdout)["validation"]["rtol"] == 0.5


def test_random_init_onnx_cannot_be_validated_without_its_torch_model(onnx_dir, tmp_path):
    """A random-init .onnx alone gives constant outputs and no torch model to randomise: exit 3, said plainly."""
    result = _run("ort", "--onnx", str(onnx_dir[0] / "model.onnx"), "--out", str(tmp_path / "o"))
    assert result.exit_code == 3, result.output
    assert "do not depend on the input" in result.stderr and "pass reference=<torch model>" in result.stderr


def test_random_init_supernet_ort_and_int8_are_checked_on_a_randomised_bn_copy(tmp_path):
    for cmd, extra in (("ort", ()), ("int8", ("--calib-batches", "2", "--min-top1", "0.25"))):
        result = _run(cmd, *SMALL, *extra, "--out", str(tmp_path / cmd), "--format", "json")
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)
        assert data["validated_on"] == "randomised-bn copy" and data["model_validation"]["constant_outputs"]
        assert data["validation"]["input_sensitivity"] > 0.1 and data["validation"]["passed"]


@pytest.mark.parametrize("cmd", ["ort", "int8", "tvm"])
def test_corrupt_onnx_exit_1(cmd, tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx file")
    result = _run(cmd, "--onnx", str(bad), "--out", str(tmp_path / "o"))
    assert result.exit_code == 1 and "not a valid ONNX model" in result.stderr
    assert not (tmp_path / "o").exists()


def test_tvm_native_target_exit_1(tmp_path):
    result = _run("tvm", *SMALL, "--out", str(tmp_path / "o"), "--target", "llvm -mcpu=native")
    assert result.exit_code == 1 and "detected CPU name" in result.stderr


def test_weights_are_recorded_and_random_init_note_dropped(tmp_path):
    import torch

    from ofa_deploy.supernets import create_supernet

    ckpt = tmp_path / "sup.pth"
    torch.save(create_supernet("ofa_mbv3_w10").state_dict(), ckpt)
    out = tmp_path / "o"
    result = _run("onnx", *SMALL, "--weights", str(ckpt), "--out", str(out), "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["subnet"]["weights"] == str(ckpt) and not any("random-init" in n for n in data["notes"])


def test_net_config_export(ofa_reference_dir, tmp_path):
    net = ofa_reference_dir / "specialized" / "cpu_lat-17ms_top1-75.7_finetune-25.net.config"
    result = _run("onnx", "--net-config", str(net), "--resolution", "128", "--out", str(tmp_path / "o"),
                  "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["subnet"]["source"] == "net_config" and data["input_shape"] == [1, 3, 128, 128]


def test_real_subprocess(varying_onnx, tmp_path):
    src = varying_onnx
    proc = subprocess.run([sys.executable, "-m", "ofa_deploy", "export", "ort", "--onnx", str(src), "--out",
                           str(tmp_path / "o"), "--style", "Runtime", "--format", "json"],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["passed"] and data["extra"]["optimization_style"] == "Runtime"
