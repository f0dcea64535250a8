"""deploy() end to end on a tiny supernet: search → extract → export → measure → report, all artifacts."""
from __future__ import annotations

import json

import pytest

TINY = {"base_widths": (8, 8, 8, 16, 16, 16, 24, 64, 64), "depths": (1, 2), "kernel_sizes": (3, 5),
        "expand_ratios": (2.0, 3.0), "resolutions": (16,), "n_classes": 10}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    import torch

    from ofa_deploy.data import load_digits
    from ofa_deploy.pipeline import DeployRequest, deploy
    from ofa_deploy.predictors.accuracy import AccuracyPredictor
    from ofa_deploy.predictors.encoding import default_encoder
    from ofa_deploy.supernets import create_supernet

    torch.manual_seed(0)
    supernet = create_supernet("ofa_mbv3_w10", **TINY).eval()  # random init: accuracy near chance
    predictor = AccuracyPredictor(default_encoder(supernet.space))  # random MLP: the pipeline does not care
    data = load_digits(image_size=16, seed=0, calibration_size=64)
    out = tmp_path_factory.mktemp("deploy")
    messages: list[str] = []
    req = DeployRequest(out_dir=out / "run", profile="ort-cpu-1t", generations=15, population=24,
                        pareto_generations=8, n_checks=1, timing_rounds=2, timing_repeats=5,
                        lut_cache=out / "lut.json")
    result = deploy(req, supernet=supernet, predictor=predictor, data=data, progress=messages.append)
    return result, messages, req


def test_run_dir_has_every_artifact(run):
    result, messages, req = run
    out = result.out_dir
    for name in ("report.json", "summary.md", "pareto.png", "model/model.onnx", "model/export_report.json"):
        assert (out / name).is_file(), name
    assert (out / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (req.lut_cache).is_file()
    assert any("budget" in m for m in messages) and any("done" in m for m in messages)


def test_report_predicted_vs_measured(run):
    result, _, _ = run
    report = json.loads((result.out_dir / "report.json").read_text())
    best = report["best"]
    assert best["predicted"]["latency_ms"] <= report["budget"]["latency_ms"]
    lo, hi = report["budget"]["feasible_latency_ms"]
    assert lo <= report["budget"]["latency_ms"] <= hi
    points = report["predicted_vs_measured"]["points"]
    assert points[0]["name"] == "best" and len(points) == 2
    for p in points:
        assert p["measured_latency_ms"] > 0 and p["predicted_latency_ms"] > 0
        assert 0.0 <= p["measured_top1"] <= 100.0
    assert result.measured["latency_ms"] == points[0]["measured_latency_ms"]
    assert report["export"]["best"]["passed"] is True
    summary = (result.out_dir / "summary.md").read_text()
    assert best["config_string"] in summary and "Predicted vs measured" in summary


def test_same_seed_same_choice(run, tmp_path):
    """A second run reuses the cached LUT and picks the same subnet."""
    import torch

    from ofa_deploy.data import load_digits
    from ofa_deploy.pipeline import deploy
    from ofa_deploy.predictors.accuracy import AccuracyPredictor
    from ofa_deploy.predictors.encoding import default_encoder
    from ofa_deploy.supernets import create_supernet

    result, _, req = run
    torch.manual_seed(0)
    supernet = create_supernet("ofa_mbv3_w10", **TINY).eval()
    predictor = AccuracyPredictor(default_encoder(supernet.space))
    again = deploy(req.__class__(**{**req.__dict__, "out_dir": tmp_path / "run2", "pareto_generations": 0,
                                    "n_checks": 0}),
                   supernet=supernet, predictor=predictor, data=load_digits(image_size=16, seed=0, calibration_size=64))
    assert again.config == result.config
    assert again.report["lut"].get("reused") is True
