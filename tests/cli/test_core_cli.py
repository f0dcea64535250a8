"""`ofa-deploy list | sample | macs | env` through CliRunner, and `macs` once as a real subprocess."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from ofa_deploy.cli.main import cli
from ofa_deploy.hostinfo import read_host
from ofa_deploy.predictors.macs import count_subnet
from ofa_deploy.spaces import SubnetConfig, get_space, list_spaces

REPO = Path(__file__).resolve().parents[2]
FLOPS_NET = "flops-595M_top1-80.0_finetune-75"



def _run(*args: str):
    return CliRunner().invoke(cli, list(args))


def _json(result) -> object:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# ---- list ----------------------------------------------------------------------------------------
def test_list_supernets():
    rows = _json(_run("list", "supernets", "--format", "json"))
    assert [r["name"] for r in rows] == list_spaces()
    by_name = {r["name"]: r for r in rows}
    assert by_name["ofa_resnet50"]["family"] == "resnet"
    assert (by_name["ofa_mbv3_w10"]["resolution_min"], by_name["ofa_mbv3_w10"]["resolution_max"]) == (128, 224)
    assert by_name["ofa_mbv3_w10"]["log10_size"] > 19  # OFA: "more than 10^19 subnets"
    human = _run("list", "supernets")
    assert human.exit_code == 0 and all(name in human.stdout for name in list_spaces())


# ---- sample --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list_spaces())
def test_sample_json_is_seeded_and_counted(name):
    args = ("sample", "--supernet", name, "-n", "3", "--seed", "5", "--format", "json")
    data = _json(_run(*args))
    assert data == _json(_run(*args))  # same seed, same output
    space = get_space(name)
    assert data["seed"] == 5 and len(data["subnets"]) == 3
    for row in data["subnets"]:
        cfg = SubnetConfig.from_string(row["config"])
        assert SubnetConfig.from_dict(row["subnet"]) == cfg
        cost = count_subnet(space, cfg)
        assert (row["macs"], row["params"]) == (cost.macs, cost.params)


def test_sample_human_and_resolution():
    result = _run("sample", "--supernet", "ofa_proxyless_w13", "-n", "2", "--seed", "1", "--resolution", "160")
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "# ofa_proxyless_w13, seed 1" and len(lines) == 3
    assert all("M MACs" in line and "-r160-" not in line and " r160-d" in line for line in lines[1:])


def test_sample_bad_input():
    bad_res = _run("sample", "--supernet", "ofa_mbv3_w10", "--resolution", "300")
    assert bad_res.exit_code == 1 and "resolution 300" in bad_res.stderr and "128..224" in bad_res.stderr
    unknown = _run("sample", "--supernet", "ofa_mbv3_w11")
    assert unknown.exit_code == 1
    assert "unknown supernet 'ofa_mbv3_w11'" in unknown.stderr and "Did you mean 'ofa_mbv3_w12'" in unknown.stderr
    assert _run("sample", "--supernet", "ofa_mbv3_w10", "-n", "0").exit_code == 2  # usage


# ---- macs ----------------------------------------------------------------------------------------
def test_macs_subnet_forms_agree(tmp_path):
    space = get_space("ofa_mbv3_w12")
    cfg = space.sample(3)
    expected = count_subnet(space, cfg)
    (tmp_path / "cfg.json").write_text(cfg.to_json())
    forms = [cfg.to_string(), cfg.to_json(), json.dumps(cfg.to_ofa()), str(tmp_path / "cfg.json")]
    for form in forms:
        data = _json(_run("macs", "--supernet", "ofa_mbv3_w12", "--subnet", form, "--format", "json"))
        assert (data["macs"], data["params"], data["subnet"]) == (expected.macs, expected.params, cfg.to_string())
        assert data["flops"] == 2 * data["macs"]


def test_macs_max_min_per_layer_and_check():
    space = get_space("ofa_mbv3_w10")
    data = _json(_run("macs", "--supernet", "ofa_mbv3_w10", "--subnet", "min", "--resolution", "160",
                      "--per-layer", "--check", "--format", "json"))
    assert data["resolution"] == 160 and data["macs"] == count_subnet(space, space.min_config(160)).macs
    assert sum(row["macs"] for row in data["layers"]) == data["macs"]
    assert sum(row["params"] for row in data["layers"]) == data["params"]
    assert data["check"] == {"model": "extracted from the supernet", "hook_macs": data["macs"],
                             "hook_params": data["params"], "match": True}
    human = _run("macs", "--supernet", "ofa_resnet50", "--subnet", "max", "--resolution", "224")
    assert human.exit_code == 0, human.output
    assert "MACs:   7491.6" in human.stdout  # OFA-ResNet50 max subnet: 7491.6M MACs (OFA's count)


def test_macs_net_config(ofa_reference_dir):
    net = ofa_reference_dir / "specialized" / f"{FLOPS_NET}.net.config"
    run = ofa_reference_dir / "specialized" / f"{FLOPS_NET}.run.config"
    data = _json(_run("macs", "--net-config", str(net), "--run-config", str(run), "--check", "--format", "json"))
    assert data["network"] == "MobileNetV3" and data["resolution"] == 236
    assert abs(data["mmacs"] - 595) <= 0.5 and data["check"]["match"]
    small = _json(_run("macs", "--net-config", str(net), "--resolution", "224", "--per-layer", "--format", "json"))
    assert small["resolution"] == 224 and small["macs"] < data["macs"]
    assert small["layers"][0]["spec"]["in_size"] == 224
    human = _run("macs", "--net-config", str(net))  # run.config found next to the file
    assert human.exit_code == 0 and "@ 236px" in human.stdout and "595.19M" in human.stdout


@pytest.mark.parametrize(("args", "needles"), [
    (("--supernet", "ofa_mbv3", "--subnet", "max"), ["unknown supernet 'ofa_mbv3'", "Did you mean"]),
    (("--supernet", "ofa_mbv3_w10", "--subnet", "r224-d4,4,4,4,4-x7"), ["'x7'"]),
    (("--supernet", "ofa_mbv3_w10", "--subnet", "r224-d4,4,4,4,4-k" + ",".join(["9"] * 20) + "-e" +
      ",".join(["6"] * 20)), ["kernel_sizes[0] = 9", "allowed values: 3, 5, 7"]),
    (("--supernet", "ofa_mbv3_w10", "--subnet", "nope.json"), ["'nope.json' does not exist"]),
    (("--supernet", "ofa_mbv3_w10", "--subnet", "{\"ks\": [3], \"e\": [3], \"d\": [2]}"), ["image_size"]),
    (("--supernet", "ofa_mbv3_w10", "--subnet", "{broken"), ["not valid JSON"]),
    (("--net-config", "missing.net.config"), ["cannot read net.config 'missing.net.config'"]),
])
def test_macs_bad_input_exits_1_naming_the_value(args, needles):
    result = _run("macs", *args)
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("error: ")
    for needle in needles:
        assert needle in result.stderr


@pytest.mark.parametrize("args", [
    (),
    ("--supernet", "ofa_mbv3_w10"),
    ("--net-config", "x.net.config", "--supernet", "ofa_mbv3_w10"),
    ("--supernet", "ofa_mbv3_w10", "--subnet", "max", "--run-config", "r.json"),
    ("--supernet", "ofa_mbv3_w10", "--subnet", "max", "--resolution", "abc"),
])
def test_macs_usage_errors_exit_2(args):
    assert _run("macs", *args).exit_code == 2


def test_macs_real_subprocess():
    proc = subprocess.run(
        [sys.executable, "-m", "ofa_deploy", "macs", "--supernet", "ofa_mbv3_w10", "--subnet", "max",
         "--format", "json"], capture_output=True, text=True, cwd=REPO, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert round(data["mmacs"], 1) == 566.2 and round(data["mparams"], 2) == 7.66  # OFA-MBv3 w1.0 max @224


# ---- env -----------------------------------------------------------------------------------------
def test_env_json_and_missing_packages(monkeypatch):
    import torch

    data = _json(_run("env", "--format", "json"))
    assert data["torch"]["version"] == torch.__version__
    assert data["python"] == ".".join(map(str, sys.version_info[:3]))
    assert "CPUExecutionProvider" in data["onnxruntime"]["providers"]
    host = read_host()
    assert data["cpu"] == {"model": host.cpu_model, "cores": host.physical_cores, "threads": host.cores,
                           "available_threads": len(host.usable_cpus)}
    assert data["cpu"]["threads"] >= data["cpu"]["cores"] >= 1 and data["cpu"]["model"]
    monkeypatch.setitem(sys.modules, "tvm", None)  # `import tvm` now raises ImportError
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    human = _run("env")
    assert human.exit_code == 0, human.output
    lines = dict(line.split(None, 1) for line in human.stdout.strip().splitlines())
    assert lines["tvm"] == "not installed" and lines["onnxruntime"] == "not installed"
