"""`ofa-deploy predict latency|macs` through CliRunner, and once as a real subprocess."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from ofa_deploy.cli.main import cli
from ofa_deploy.compat.ofa_lut import load_ofa_lut
from ofa_deploy.predictors.macs import count_subnet
from ofa_deploy.spaces import get_space


def _run(*args: str):
    return CliRunner().invoke(cli, ["predict", *args])


def test_latency_from_ofa_tables_json(ofa_reference_dir):
    result = _run("latency", "--supernet", "ofa_mbv3_w12", "--subnet", "max", "-r", "224",
                  "--ofa-lut", str(ofa_reference_dir), "--per-layer", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert round(data["latency_ms"], 1) == 92.4 and data["stat"] == "mean" and data["table"]["device"] == "note10"
    assert sum(row["ms"] for row in data["layers"]) == pytest.approx(data["latency_ms"], rel=1e-12)
    assert data["layers"][0]["ofa_key"] == "Conv-input:224x224x3-output:112x112x24"


def test_latency_from_saved_table_and_ofa_arch_json(ofa_reference_dir, tmp_path):
    space = get_space("ofa_mbv3_w12")
    path = load_ofa_lut(ofa_reference_dir, space).save(tmp_path / "note10.json")
    arch = json.dumps({"ks": [3] * 20, "e": [3] * 20, "d": [2] * 5, "image_size": 160})
    result = _run("latency", "--supernet", "ofa_mbv3_w12", "--subnet", arch, "--lut", str(path))
    assert result.exit_code == 0, result.output
    assert "    9.890  mean   note10" in result.stdout


def test_latency_miss_and_usage_errors(ofa_reference_dir):
    miss = _run("latency", "--supernet", "ofa_mbv3_w12", "--subnet", "min", "-r", "200", "--ofa-lut",
                str(ofa_reference_dir))
    assert miss.exit_code == 1 and "Conv-input:200x200x3" in miss.output and "profile build" in miss.output
    none = _run("latency", "--supernet", "ofa_mbv3_w12", "--subnet", "max")
    assert none.exit_code == 2 and "at least one latency table: --lut FILE, --ofa-lut DIR or --profile" in none.output
    unknown = _run("latency", "--supernet", "ofa_mbv3_w12", "--subnet", "max", "--profile", "ort-cpu-it")
    assert unknown.exit_code == 1 and "Did you mean 'ort-cpu-1t'" in unknown.output
    bad = _run("macs", "--supernet", "ofa_mbv3_w12", "--subnet", "r999-d1")
    assert bad.exit_code == 1 and "error:" in bad.output


def test_macs_per_layer():
    space = get_space("ofa_resnet50")
    cfg = space.sample(4, resolution=192)
    result = _run("macs", "--supernet", "ofa_resnet50", "--subnet", cfg.to_string(), "--per-layer", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["macs"] == count_subnet(space, cfg).macs == sum(row["macs"] for row in data["layers"])
    assert len(data["layers"]) == len(space.walk_layers(cfg))


def test_predict_subprocess(ofa_reference_dir):
    out = subprocess.run(
        [sys.executable, "-m", "ofa_deploy", "predict", "latency", "--supernet", "ofa_mbv3_w12", "--subnet", "min",
         "-r", "224", "--ofa-lut", str(ofa_reference_dir), "--format", "json"],
        capture_output=True, text=True, timeout=120, check=True,
    )
    assert round(json.loads(out.stdout)["latency_ms"], 1) == 17.8


def test_latency_by_profile_name(ofa_reference_dir, tmp_path, monkeypatch):
    from ofa_deploy.profiling.lut import table_path

    monkeypatch.setenv("OFA_DEPLOY_PROFILES", str(tmp_path))
    space = get_space("ofa_mbv3_w12")
    load_ofa_lut(ofa_reference_dir, space).save(table_path("ort-cpu-1t", space.name, root=tmp_path))
    result = _run("latency", "--supernet", "ofa_mbv3_w12", "--subnet", "max", "-r", "160", "--profile", "ort-cpu-1t",
                  "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["latency_ms"] > 40
    missing = _run("latency", "--supernet", "ofa_mbv3_w10", "--subnet", "max", "--profile", "ort-cpu-1t")
    assert missing.exit_code == 1 and "profile build --profile ort-cpu-1t --supernet ofa_mbv3_w10" in missing.output
