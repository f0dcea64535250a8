"""`ofa-deploy accuracy ...` through CliRunner (and once as a real subprocess)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from ofa_deploy.cli.accuracy import accuracy_group
from ofa_deploy.demo import QUICK_RECIPE, create_demo_supernet, save_demo_supernet
from ofa_deploy.predictors.accuracy import load_ofa_predictor

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A (randomly initialised) demo-space supernet checkpoint with its sidecar JSON."""
    path = tmp_path_factory.mktemp("w") / "supernet.pt"
    save_demo_supernet(create_demo_supernet(QUICK_RECIPE), path, QUICK_RECIPE, {})
    return path


def run(*args: str) -> dict:
    result = CliRunner().invoke(accuracy_group, [*args, "--format", "json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_build_train_predict(tmp_path, weights):
    out = tmp_path / "acc.jsonl"
    common = ["build-dataset", "--weights", str(weights), "--data", "digits", "--n-subnets", "5", "--resolutions",
              "16", "--out", str(out), "--calibration-size", "32", "--no-progress"]
    first = run(*common, "--max-items", "2")
    assert first["n_evaluated"] == 2 and first["n_items"] == 5
    # without --resume an existing file is refused (exit 1, message on stderr)
    refused = CliRunner().invoke(accuracy_group, common)
    assert refused.exit_code == 1 and "--resume" in refused.stderr
    second = run(*common, "--resume")
    assert second["n_stored_before"] == 2 and second["n_evaluated"] == 3
    header = json.loads(out.read_text().splitlines()[0])
    assert header["supernet"] == "demo_mbv3_digits" and len(header["weights_sha256"]) == 64

    trained = run("train-predictor", "--dataset", str(out), "--out", str(tmp_path / "pred"), "--max-epochs", "5")
    for key in ("test_rmse", "test_baseline_rmse", "test_kendall_tau", "n_test"):
        assert key in trained
    pred = run("predict", "--predictor", str(tmp_path / "pred"), "--subnet", "max", "--subnet", "min",
               "--resolution", "16")
    assert len(pred["predictions"]) == 2 and all(0 <= p["top1"] <= 1.5 for p in pred["predictions"])
    # the predictor only encodes resolutions it was trained on: others are a clear error, not a guess
    unseen = CliRunner().invoke(accuracy_group, ["predict", "--predictor", str(tmp_path / "pred"), "--subnet", "max",
                                                 "--resolution", "24"])
    assert unseen.exit_code == 1 and "cannot encode resolution 24" in unseen.stderr


def test_predict_with_released_ofa_predictor(ofa_reference_dir):
    path = ofa_reference_dir / "acc_predictor_resnet50.pth"
    out = run("predict", "--ofa-predictor", str(path), "--subnet", "max", "--subnet", "min", "--resolution", "224")
    ref = load_ofa_predictor(path)
    cfgs = [ref.space.max_config(224), ref.space.min_config(224)]
    np.testing.assert_allclose([p["top1"] for p in out["predictions"]], ref.predict(cfgs))
    assert out["predictions"][0]["top1"] > out["predictions"][1]["top1"]


def test_usage_and_domain_errors(tmp_path, ofa_reference_dir):
    both = CliRunner().invoke(accuracy_group, ["predict", "--subnet", "max"])
    assert both.exit_code == 2
    bad = CliRunner().invoke(accuracy_group, ["predict", "--ofa-predictor", str(ofa_reference_dir /
                             "acc_predictor_resnet50.pth"), "--subnet", "max", "--resolution", "200"])
    assert bad.exit_code == 1 and "resolution 200 is outside the space" in bad.stderr
    missing = CliRunner().invoke(accuracy_group, ["train-predictor", "--dataset", str(tmp_path / "x.jsonl"),
                                                  "--out", str(tmp_path / "p")])
    assert missing.exit_code == 1 and "build-dataset" in missing.stderr


def test_subprocess_predict(ofa_reference_dir):
    proc = subprocess.run([sys.executable, "-m", "ofa_deploy", "accuracy", "predict", "--ofa-predictor",
                           str(ofa_reference_dir / "acc_predictor_mbv3_tutorial.pth"), "--kind", "mbv3_tutorial",
                           "--subnet", "max", "--resolution", "224", "--format", "json"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    top1 = json.loads(proc.stdout)["predictions"][0]["top1"]
    assert 0.7 < top1 < 0.85
