"""`ofa-deploy profile`: plan → on-device script → import, build + validate, errors (CliRunner + one subprocess)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from ofa_deploy.cli.main import cli
from ofa_deploy.tables.latency import LatencyTable

REPO = Path(__file__).resolve().parents[2]
TIMER = ["--rounds", "1", "--repeats", "2", "--warmup", "1"]


def _json(result):
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_plan_then_import(tmp_path):
    runner = CliRunner()
    plan = _json(runner.invoke(cli, ["profile", "plan", "--supernet", "ofa_mbv3_w10", "--resolutions", "160",
                                     "--limit", "3", "--profile", "ort-cpu-1t", "--out", str(tmp_path / "p"),
                                     "--ort", "--format", "json"]))
    assert plan["layers"] == 3 and Path(plan["plan"]).is_file()
    assert (tmp_path / "p" / "ondevice_profile.py").read_text() == (REPO / "ofa_deploy" / "ondevice.py").read_text()
    proc = subprocess.run([sys.executable, str(tmp_path / "p" / "ondevice_profile.py"), str(tmp_path / "p"),
                           "--out", str(tmp_path / "r.json"), "--rounds", "1", "--repeats", "2", "--warmup", "0"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "r.json").read_text())["settings"]["model_format"] == "ort_file"  # ran the .ort files
    out = _json(runner.invoke(cli, ["profile", "import", str(tmp_path / "r.json"), "--plan", str(tmp_path / "p"),
                                    "--out", str(tmp_path / "dev.json"), "--format", "json"]))
    assert out["entries"] == 3 and len(LatencyTable.load(tmp_path / "dev.json")) == 3


def test_build_and_validate_subprocess(tmp_path):
    lut = tmp_path / "t.json"
    base = [sys.executable, "-m", "ofa_deploy", "profile"]
    build = subprocess.run(base + ["build", "--profile", "ort-cpu-1t", "--supernet", "ofa_mbv3_w10", "--resolutions",
                                   "160", "--limit", "4", "--method", "isolated", "--out", str(lut), "--no-progress",
                                   "--format", "json",
                                   *TIMER], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert build.returncode == 0, build.stderr
    data = json.loads(build.stdout)
    assert data["entries"] == 4 and data["measured"] > 4 and lut.is_file()
    # the 4-layer table cannot predict whole subnets: a named miss, exit 1
    val = subprocess.run(base + ["validate", "--profile", "ort-cpu-1t", "--supernet", "ofa_mbv3_w10", "--lut",
                                 str(lut), "-n", "2", "--no-progress", "--min-rounds", "2", "--max-rounds", "2",
                                 "--visit-repeats", "2", "--visit-warmup", "1"],
                         capture_output=True, text=True, timeout=300, cwd=REPO)
    assert val.returncode == 1 and "profile build" in val.stderr


def test_unavailable_provider_exits_1(tmp_path):
    result = CliRunner().invoke(cli, ["profile", "build", "--profile", "ort-cuda", "--supernet", "ofa_mbv3_w10",
                                      "--out", str(tmp_path / "x.json")])
    assert result.exit_code == 1
    assert "CUDAExecutionProvider is not available" in result.stderr


def test_bad_resolutions_are_a_usage_error(tmp_path):
    result = CliRunner().invoke(cli, ["profile", "build", "--profile", "ort-cpu-1t", "--supernet", "ofa_mbv3_w10",
                                      "--resolutions", "160,abc", "--out", str(tmp_path / "x.json")])
    assert result.exit_code == 2 and "comma-separated" in result.output
