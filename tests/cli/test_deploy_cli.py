"""`ofa-deploy demo` and `ofa-deploy deploy` end to end (a tiny demo recipe keeps it to about a minute)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from ofa_deploy.cli.main import cli


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    from ofa_deploy import demo

    import dataclasses

    small = {"base_widths": (8, 8, 8, 16, 16, 16, 24, 64, 64), "kernel_sizes": (3, 5), "expand_ratios": (2.0, 3.0),
             "resolutions": (16,), "dataset_resolutions": (16,), "phase_steps": (12, 4, 4, 4), "n_subnets": 12,
             "predictor_epochs": 30, "calibration_size": 64}
    fields = {f.name for f in dataclasses.fields(demo.DemoRecipe)}
    tiny = dataclasses.replace(demo.QUICK_RECIPE, **{k: v for k, v in small.items() if k in fields})
    mp = pytest.MonkeyPatch()
    mp.setattr(demo, "QUICK_RECIPE", tiny)  # `demo --quick` trains this instead of the real quick recipe
    root = tmp_path_factory.mktemp("demo")
    try:
        res = CliRunner().invoke(cli, ["demo", "--quick", "--cache-dir", str(root / "cache"), "--out",
                                       str(root / "run"), "--format", "json"])
    finally:
        mp.undo()
    return res, root


def test_demo_quick_end_to_end(demo_run):
    res, root = demo_run
    data = json.loads(res.stdout)
    # exit 0 when the budget was verified on this machine, 4 when not (a timing outcome): both are reported
    verified = data["budget"]["verified"]
    assert res.exit_code == (0 if verified else 4), res.output
    done = [line for line in res.stderr.splitlines() if "done in" in line]  # the run's last progress line
    assert done and (", NOT verified under budget" in done[-1]) == (not verified), done
    run = Path(data["out_dir"])
    for name in ("report.json", "summary.md", "pareto.png", "model/model.onnx"):
        assert (run / name).is_file(), name
    assert data["measured"]["latency_ms"] > 0 and 0 <= data["measured"]["top1"] <= 100
    assert data["predicted"]["latency_ms"] <= data["budget"]["latency_ms"]
    assert "preparing the demo" in res.stderr and "done in" in res.stderr  # progress on stderr only
    assert data["demo"]["supernet"] == "ofa_mbv3_w10"


def test_deploy_cmd_with_demo_assets_and_lut(demo_run, tmp_path):
    res, root = demo_run
    demo = json.loads(res.stdout)["demo"]
    lut = next(Path(demo["weights"]).parent.glob("lut-*.json"))
    out = CliRunner().invoke(cli, ["deploy", "--supernet", "ofa_mbv3_w10", "--weights", demo["weights"],
                                   "--predictor", demo["predictor"], "--lut", str(lut), "--data", "digits",
                                   "--generations", "10", "--population", "20", "--latency-budget", "1000",
                                   "--out", str(tmp_path / "run")])
    assert out.exit_code == 0, out.output
    assert "deployed r16-" in out.stdout and "measured" in out.stdout
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["lut"]["built"] is False and report["budget"]["latency_ms"] == 1000
    assert report["budget"]["verified"] is True and "budget   verified under budget" in out.stdout
    assert report["lut"]["host"]["ok"] is True


def test_deploy_cmd_infeasible_budget(demo_run, tmp_path):
    res, root = demo_run
    demo = json.loads(res.stdout)["demo"]
    lut = next(Path(demo["weights"]).parent.glob("lut-*.json"))
    out = CliRunner().invoke(cli, ["deploy", "--supernet", "ofa_mbv3_w10", "--weights", demo["weights"],
                                   "--predictor", demo["predictor"], "--lut", str(lut), "--latency-budget", "1e-6",
                                   "--out", str(tmp_path / "run")])
    assert out.exit_code == 1 and "feasible budgets are >=" in out.stderr


def test_deploy_cmd_refuses_a_foreign_table_without_traceback(demo_run, tmp_path):
    """Subprocess: a table from another CPU is refused (exit 1, both fingerprints named) unless allowed."""
    import subprocess
    import sys

    from ofa_deploy.tables.latency import LatencyTable

    res, root = demo_run
    demo = json.loads(res.stdout)["demo"]
    table = LatencyTable.load(next(Path(demo["weights"]).parent.glob("lut-*.json")))
    import dataclasses

    from tests.hosts import foreign_fingerprint

    elsewhere = foreign_fingerprint(table.provenance.host)
    table.provenance = dataclasses.replace(table.provenance, host=elsewhere)
    foreign = table.save(tmp_path / "foreign.json")
    cmd = [sys.executable, "-m", "ofa_deploy", "deploy", "--supernet", "ofa_mbv3_w10", "--weights", demo["weights"],
           "--predictor", demo["predictor"], "--lut", str(foreign), "--generations", "5", "--population", "10",
           "--latency-budget", "1000", "--out", str(tmp_path / "run")]
    refused = subprocess.run(cmd, capture_output=True, text=True)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert elsewhere["cpu_model"] in refused.stderr and "--allow-foreign-lut" in refused.stderr
    allowed = subprocess.run([*cmd, "--allow-foreign-lut"], capture_output=True, text=True)
    assert allowed.returncode == 0, allowed.stderr
    assert "foreign latency table" in allowed.stderr
