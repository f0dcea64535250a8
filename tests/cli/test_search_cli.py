"""`ofa-deploy search` via CliRunner (once as a real subprocess) on OFA's Note10 tables and tutorial predictor."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from ofa_deploy.cli.main import cli


@pytest.fixture(scope="module")
def base_args(ofa_reference_dir):
    return ["search", "--supernet", "ofa_mbv3_w12", "--ofa-predictor",
            str(ofa_reference_dir / "acc_predictor_mbv3_tutorial.pth"), "--ofa-lut", str(ofa_reference_dir)]


def test_best_under_latency_budget_json(base_args, tmp_path):
    out = tmp_path / "best.json"
    res = CliRunner().invoke(cli, [*base_args, "--latency-budget", "25", "--generations", "20", "--seed", "1",
                                   "--format", "json", "--output", str(out)])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["mode"] == "evolution" and data["efficiency"]["latency@note10"] <= 25.0
    assert data["accuracy"] > 80.0 and data["efficiency"]["macs"] > 0
    assert json.loads(out.read_text())["best_config_string"] == data["best_config_string"]


def test_infeasible_budget_exit_1_with_range(base_args):
    res = CliRunner().invoke(cli, [*base_args, "--latency-budget", "5", "--generations", "5"])
    assert res.exit_code == 1
    assert "feasible budgets are >= 9.89 ms" in res.stderr and "Traceback" not in res.output


def test_pareto_human(base_args):
    res = CliRunner().invoke(cli, [*base_args, "--pareto", "--generations", "10", "--population", "40",
                                   "--macs-budget", "400"])
    assert res.exit_code == 0, res.output
    assert "Pareto front of ofa_mbv3_w12" in res.stdout and "latency@note10" in res.stdout


def test_predictor_space_mismatch_is_a_clear_error(base_args):
    args = list(base_args)
    args[2] = "ofa_mbv3_w10"
    res = CliRunner().invoke(cli, [*args, "--latency-budget", "25"])
    assert res.exit_code == 1 and "width_mult 1.2 vs 1.0" in res.stderr and "Traceback" not in res.output


def test_subprocess_json(base_args):
    proc = subprocess.run([sys.executable, "-m", "ofa_deploy", *base_args, "--macs-budget", "300",
                           "--generations", "10", "--format", "json"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["efficiency"]["macs"] <= 300
