"""End to end on the demo space: adapt an ONNX Runtime table of the demo space to eager PyTorch, measured for real.

The source is a real (quick) ORT build of the demo space; the target is the torch backend of this machine. The
test checks what the adapted table carries (target fingerprint, where it came from, the rung, the measurements,
the stored held-out check) and that consumers refuse an adapted table whose stored check did not pass. The
goal here is lenient (12 held-out subnets, 75% within ±10%, Spearman 0.7) so that the plumbing is tested on a
loaded 2-core machine in seconds; the default goal is tested on the synthetic target (tests/unit/test_adapt.py)
and measured on real pairs by benchmarks/bench_adapt.py.
"""
from __future__ import annotations

import json
from dataclasses import replace

import pytest

from ofa_deploy.adapt import Goal, adapt_table
from ofa_deploy.profiling.hardware import HardwareProfile


@pytest.fixture(scope="module")
def demo_space():
    from ofa_deploy.demo import DEMO_BASE_SUPERNET, QUICK_RECIPE
    from ofa_deploy.spaces import get_space

    return get_space(DEMO_BASE_SUPERNET, **QUICK_RECIPE.space_overrides())


@pytest.fixture(scope="module")
def demo_ort_table(demo_space, profile, tmp_path_factory):
    """A real in-context ONNX Runtime build of the demo space (short timing plan)."""
    from ofa_deploy.profiling.builder import build_lut
    from ofa_deploy.profiling.timing.timer import TimerSettings

    tmp = tmp_path_factory.mktemp("demo-ort")
    timer = TimerSettings.from_profile(profile, rounds=2, repeats=5, warmup=2)
    return build_lut(demo_space, None, profile, tmp / "demo-ort.json", progress=False, timer=timer,
                     calibration_subnets=0, model_dir=tmp / "models").path


def quick(name: str) -> HardwareProfile:
    """The packaged profile `name` with a short paired-timing plan (min 3 rounds, 3 runs per visit)."""
    base = HardwareProfile.load(name)
    return HardwareProfile.from_dict({**base.to_dict(), "min_rounds": 3, "max_rounds": 6, "visit_warmup": 1,
                                      "visit_repeats": 3})


def test_demo_ort_table_adapted_to_eager_torch(demo_space, demo_ort_table, tmp_path, monkeypatch):
    from ofa_deploy.profiling.hosts.fingerprint import check_table_host
    from ofa_deploy.tables.latency import LatencyTable

    monkeypatch.setenv("OFA_DEPLOY_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "torch.json"
    target = quick("torch-cpu")
    goal = Goal(min_n=12, within_10pct=0.75, within_5pct=0.4, spearman=0.7)
    result = adapt_table(demo_ort_table, profile=target, supernet=demo_space, out=out, max_seconds=90, goal=goal)
    assert result.passed and result.path == out and result.method in ("global_scale", "scale_offset", "class_ridge")
    assert result.measurements >= 12 + 16 and result.device_seconds > 0
    stored = json.loads(out.read_text())
    prov = stored["provenance"]
    source_sha = prov["adapted_from"]["files"][str(demo_ort_table)]
    assert len(source_sha) == 64 and prov["adapted_from"]["backend"] == "onnxruntime"
    assert prov["adapted_from"]["fingerprint"]["backend"] == "onnxruntime"
    assert prov["host"]["backend"] == "torch" and prov["profile_name"] == "torch-cpu"
    assert prov["adaptation"]["validation"] == {**prov["adaptation"]["validation"], **result.validation}
    assert prov["adaptation"]["validation"]["passed"] is True
    assert stored["anchor"]["space"] == demo_space.name and stored["unit"] == "anchor"
    table = LatencyTable.load(out)
    assert table.provenance.is_adapted and table.provenance.adaptation_passed
    assert check_table_host(table, target).ok  # adapted on this host, for this runtime
    # a stored check that did not pass makes the table unusable for every consumer
    failed = replace(table.provenance, adaptation={**table.provenance.adaptation,
                                                  "validation": {**result.validation, "passed": False}})
    table.provenance = failed
    check = check_table_host(table, target)
    assert not check.ok and "held-out check on the target did not pass" in check.describe()


def test_find_table_skips_an_adapted_table_whose_check_failed(demo_space, tmp_path, monkeypatch):
    from ofa_deploy.errors import ConfigError
    from ofa_deploy.profiling.lut import find_table, table_path
    from ofa_deploy.tables.latency import LatencyStats, LatencyTable, Provenance

    monkeypatch.setenv("OFA_DEPLOY_CACHE", str(tmp_path / "cache"))
    spec = demo_space.walk_layers(demo_space.max_config())[0]
    table = LatencyTable({spec: LatencyStats.from_samples([1.0])}, provenance=Provenance(
        supernet="demo-adapted", adapted_from={"path": "x.json"},
        adaptation={"validation": {"n": 30, "within_10pct": 0.5, "passed": False}}))
    path = table.save(table_path("torch-cpu", "demo-adapted"))
    with pytest.raises(ConfigError, match="held-out check on the target did not pass"):
        find_table("torch-cpu", "demo-adapted")
    table.provenance = replace(table.provenance, adaptation={"validation": {"n": 30, "passed": True}})
    table.save(path)
    assert find_table("torch-cpu", "demo-adapted") == path
