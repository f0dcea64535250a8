"""deploy() end to end on a tiny supernet: search → extract → export → measure → report, all artifacts."""
from __future__ import annotations

import json
import re

import pytest

TINY = {"base_widths": (8, 8, 8, 16, 16, 16, 24, 64, 64), "depths": (1, 2), "kernel_sizes": (3, 5),
        "expand_ratios": (2.0, 3.0), "resolutions": (16,), "n_classes": 10}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    import torch

    from ofa_deploy.errors import BudgetNotVerifiedError
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
    try:
        result = deploy(req, supernet=supernet, predictor=predictor, data=data, progress=messages.append)
    except BudgetNotVerifiedError as exc:  # a timing outcome, not a failure of the pipeline: still fully reported
        result = exc.report
    return result, messages, req


def test_run_dir_has_every_artifact(run):
    result, messages, req = run
    out = result.out_dir
    for name in ("report.json", "summary.md", "pareto.png", "model/model.onnx", "model/export_report.json"):
        assert (out / name).is_file(), name
    assert (out / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (req.lut_cache).is_file()
    verdict = "NOT verified under budget" if not result.budget["verified"] else ", verified under budget"
    assert any("budget" in m for m in messages) and verdict in [m for m in messages if m.startswith("done in")][-1]
    assert (out / "tries" / "try1" / "model.onnx").is_file()


def test_report_predicted_vs_measured(run):
    result, _, _ = run
    report = json.loads((result.out_dir / "report.json").read_text())
    best = report["best"]
    budget = report["budget"]
    assert best["predicted"]["latency_ms"] <= budget["latency_ms"]
    lo, hi = budget["feasible_latency_ms"]
    assert lo <= budget["latency_ms"] <= hi
    # the verdict is the measured interval against the budget, for every pick
    assert budget["tries"] and all(t["verified"] == (t["measured_interval_ms"][1] <= budget["latency_ms"])
                                   for t in budget["tries"])
    assert budget["verified"] == any(t["verified"] for t in budget["tries"])
    assert budget["interval"][0] <= budget["measured_ms"] <= budget["interval"][1] and budget["wall_ms"] > 0
    assert report["lut"]["unit"] == "anchor" and report["lut"]["host"]["ok"] is True
    points = report["predicted_vs_measured"]["points"]
    assert points[0]["name"] == "best" and len(points) == 1 + len(budget["tries"])
    for p in points:
        assert p["measured_latency_ms"] > 0 and p["predicted_latency_ms"] > 0
        assert 0.0 <= p["measured_top1"] <= 100.0
    assert result.measured["latency_ms"] == points[0]["measured_latency_ms"]
    assert report["export"][best["try"]]["passed"] is True
    summary = (result.out_dir / "summary.md").read_text()
    assert best["config_string"] in summary and "Predicted vs measured" in summary
    assert ("**Verified under budget.**" if budget["verified"] else "**NOT verified under budget.**") in summary


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
                                    "n_checks": 0, "verify_budget": False}),
                   supernet=supernet, predictor=predictor, data=load_digits(image_size=16, seed=0, calibration_size=64))
    assert again.report["budget"]["tries"][0]["config"] == result.report["budget"]["tries"][0]["config"]
    assert again.report["lut"].get("reused") is True


def test_wrong_table_forces_a_retry_that_ends_verified(run, tmp_path):
    """A table that predicts half the true latency: the first pick measures over the budget, the retry under a
    budget tightened by the measured/predicted ratio is verified on the target."""
    import dataclasses

    import torch

    from ofa_deploy.data import load_digits
    from ofa_deploy.pipeline import deploy
    from ofa_deploy.predictors.accuracy import AccuracyPredictor
    from ofa_deploy.predictors.encoding import default_encoder
    from ofa_deploy.tables.latency import LatencyTable
    from ofa_deploy.supernets import create_supernet

    result, _, req = run
    table = LatencyTable.load(req.lut_cache)
    cal = table.calibration
    table.calibration = dataclasses.replace(cal, scale=cal.scale / 2, offset=cal.offset / 2,
                                            per_layer=cal.per_layer / 2)
    wrong = table.save(tmp_path / "half.json")
    torch.manual_seed(0)
    supernet = create_supernet("ofa_mbv3_w10", **TINY).eval()
    predictor = AccuracyPredictor(default_encoder(supernet.space))
    true_range = result.report["budget"]["feasible_latency_ms"]
    budget = true_range[0] + 0.6 * (true_range[1] - true_range[0])  # half-scale table: picks near 2x this
    messages: list[str] = []
    done = deploy(req.__class__(**{**req.__dict__, "out_dir": tmp_path / "run3", "lut": wrong, "lut_cache": None,
                                   "latency_budget_ms": budget, "pareto_generations": 0, "n_checks": 0,
                                   "max_tries": 4}),
                  supernet=supernet, predictor=predictor, data=load_digits(image_size=16, seed=0, calibration_size=64),
                  progress=messages.append)
    tries = done.budget["tries"]
    assert len(tries) >= 2 and tries[0]["verified"] is False, tries
    assert tries[1]["predicted_budget_ms"] < budget
    assert done.budget["verified"] is True and done.report["best"]["try"] != "try1"
    assert any("NOT verified under budget" in m for m in messages)


def test_foreign_table_is_refused_unless_allowed(run, tmp_path):
    import dataclasses

    import torch

    from ofa_deploy.errors import ForeignTableError
    from ofa_deploy.pipeline import deploy
    from ofa_deploy.predictors.accuracy import AccuracyPredictor
    from ofa_deploy.predictors.encoding import default_encoder
    from ofa_deploy.tables.latency import LatencyTable
    from ofa_deploy.supernets import create_supernet

    from tests.hosts import foreign_fingerprint

    _, _, req = run
    table = LatencyTable.load(req.lut_cache)
    elsewhere = foreign_fingerprint(table.provenance.host)
    table.provenance = dataclasses.replace(table.provenance, host=elsewhere)
    foreign = table.save(tmp_path / "foreign.json")
    torch.manual_seed(0)
    supernet = create_supernet("ofa_mbv3_w10", **TINY).eval()
    predictor = AccuracyPredictor(default_encoder(supernet.space))
    base = {**req.__dict__, "lut": foreign, "lut_cache": None, "pareto_generations": 0, "n_checks": 0,
            "generations": 5, "verify_budget": False}
    with pytest.raises(ForeignTableError, match=re.escape(elsewhere["cpu_model"]) + ".*--allow-foreign-lut"):
        deploy(req.__class__(**{**base, "out_dir": tmp_path / "refused"}), supernet=supernet, predictor=predictor)
    done = deploy(req.__class__(**{**base, "out_dir": tmp_path / "allowed", "allow_foreign_lut": True}),
                  supernet=supernet, predictor=predictor)
    assert done.report["lut"]["host"]["differences"] == ["cpu_model"]


def test_rerun_into_the_same_directory_reuses_measurements(run, tmp_path):
    """An interrupted deploy loses nothing measured: a rerun into the same run dir times nothing again."""
    import shutil

    import torch

    from ofa_deploy.data import load_digits
    from ofa_deploy.errors import BudgetNotVerifiedError
    from ofa_deploy.pipeline import deploy
    from ofa_deploy.predictors.accuracy import AccuracyPredictor
    from ofa_deploy.predictors.encoding import default_encoder
    from ofa_deploy.supernets import create_supernet

    result, _, req = run
    again_dir = tmp_path / "again"
    shutil.copytree(result.out_dir, again_dir)
    torch.manual_seed(0)
    supernet = create_supernet("ofa_mbv3_w10", **TINY).eval()
    predictor = AccuracyPredictor(default_encoder(supernet.space))
    try:
        again = deploy(req.__class__(**{**req.__dict__, "out_dir": again_dir}), supernet=supernet,
                       predictor=predictor, data=load_digits(image_size=16, seed=0, calibration_size=64))
    except BudgetNotVerifiedError as exc:
        again = exc.report
    assert again.report["timing"]["runs"] == []  # nothing was timed again
    assert set(again.report["timing"]["reused"]) == {p["try"] for p in result.report["predicted_vs_measured"]["points"]}
    assert again.budget["measured_ms"] == result.budget["measured_ms"]


def test_foreign_table_is_adapted_with_adapt(run, tmp_path):
    """adapt=True (deploy --adapt): a table whose fingerprint is another host's is adapted here (ofa_deploy.adapt,
    held-out check) instead of refused; the report says what it was adapted from. A failed held-out check is an
    AdaptationError, never a silent use of the table."""
    import dataclasses

    import torch

    from ofa_deploy.errors import AdaptationError
    from ofa_deploy.pipeline import deploy
    from ofa_deploy.predictors.accuracy import AccuracyPredictor
    from ofa_deploy.predictors.encoding import default_encoder
    from ofa_deploy.supernets import create_supernet
    from ofa_deploy.tables.latency import LatencyTable

    _, _, req = run
    table = LatencyTable.load(req.lut_cache)
    table.provenance = dataclasses.replace(table.provenance, host={**table.provenance.host,
                                                                  "cpu_model": "Foreign CPU (test fixture)"})
    foreign = table.save(tmp_path / "foreign.json")
    torch.manual_seed(0)
    supernet = create_supernet("ofa_mbv3_w10", **TINY).eval()
    predictor = AccuracyPredictor(default_encoder(supernet.space))
    messages: list[str] = []
    request = req.__class__(**{**req.__dict__, "lut": foreign, "lut_cache": None, "pareto_generations": 0,
                               "n_checks": 0, "generations": 5, "verify_budget": False, "adapt": True,
                               "out_dir": tmp_path / "adapted"})
    try:
        done = deploy(request, supernet=supernet, predictor=predictor, progress=messages.append)
    except AdaptationError as exc:
        assert "held-out" in str(exc) and not (tmp_path / "adapted" / "lut-adapted.json").exists()
        return
    lut = done.report["lut"]
    assert lut["adapted_from"]["path"] == str(foreign) and lut["adaptation"]["passed"] is True
    assert lut["path"] == str(tmp_path / "adapted" / "lut-adapted.json") and lut["host"]["ok"] is True
    assert any("adapting it here" in m for m in messages)
