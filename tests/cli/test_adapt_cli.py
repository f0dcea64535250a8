"""`ofa-deploy profile adapt`: a refusal journey in a subprocess, and bad input through CliRunner (no traceback)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from ofa_deploy.cli.main import cli

REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "ofa_deploy" / "hardware_profiles" / "luts" / "ort-cpu-1t" / "ofa_mbv3_w12.json"


def test_adapt_refuses_a_budget_too_small_in_a_subprocess(tmp_path):
    out = tmp_path / "adapted.json"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OFA_DEPLOY_CACHE": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, "-m", "ofa_deploy", "profile", "adapt", "--from", str(COMMITTED),
                           "--profile", "ort-cpu-all", "--resolutions", "160", "--max-seconds", "0.05",
                           "--out", str(out), "--format", "json"], capture_output=True, text=True, cwd=REPO, env=env,
                          timeout=600)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert lines[0].startswith("adapting ") and "ort-cpu-all" in lines[0]  # progress on stderr
    error = json.loads(lines[-1])["error"]
    assert error["type"] == "AdaptationError" and "too small for the held-out check" in error["message"]
    assert "ofa-deploy profile build --profile ort-cpu-all --supernet ofa_mbv3_w12" in error["message"]
    assert not out.exists() and proc.stdout == ""


def test_adapt_bad_input_is_one_clear_line(tmp_path, ofa_reference_dir):
    runner = CliRunner()
    cases = [
        (["--from", str(tmp_path / "nope.json"), "--profile", "ort-cpu-1t"], "source latency table not found"),
        (["--from", str(ofa_reference_dir), "--profile", "ort-cpu-1t"], "names no supernet"),
        (["--from", str(COMMITTED), "--profile", "ort-cpu-2t"], "unknown hardware profile 'ort-cpu-2t'"),
        (["--from", str(COMMITTED), "--profile", "ort-cpu-1t", "--resolutions", "144"], "no entries for the target"),
        (["--from", str(COMMITTED), "--profile", "ort-cpu-1t", "--supernet", "ofa_resnet50"], "is for supernet"),
    ]
    for args, needle in cases:
        result = runner.invoke(cli, ["profile", "adapt", *args, "--out", str(tmp_path / "a.json")])
        assert result.exit_code == 1, (args, result.output)
        assert needle in result.stderr and "Traceback" not in result.output, (args, result.stderr)
    assert not (tmp_path / "a.json").exists()
    usage = runner.invoke(cli, ["profile", "adapt", "--from", str(COMMITTED), "--profile", "ort-cpu-1t",
                                "--fallback", "retry"])
    assert usage.exit_code == 2 and "'retry' is not one of" in usage.stderr
