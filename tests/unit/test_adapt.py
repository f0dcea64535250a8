"""Adapted latency tables on a synthetic target whose distortion of the source table is known.

The target is a real timing backend (`tests.adapt_helpers.SyntheticBackend`) timed by the anchor-paired protocol:
its subnets take the source table's times distorted per layer class (recoverable) or per layer at random (not
recoverable from classes). The first must be adapted and pass its held-out check; the second must be refused
with the figures that say why.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from ofa_deploy.adapt import AdaptationError, Goal, adapt_table
from ofa_deploy.adapt.classes import layer_classes
from ofa_deploy.profiling.hardware import HardwareProfile
from tests.adapt_helpers import SyntheticBackend, class_distortion, random_distortion, synthetic_source

TRUE_FACTORS = {"mbconv:e4": 1.6, "mbconv:k5": 1.4, "op:conv:feature_mix": 0.5, "mid:not16": 1.25}


@pytest.fixture(scope="module")
def demo_space():
    """The quick demo's MobileNetV3 space (16 and 24 px, kernels 3/5, expand 2/3/4)."""
    from ofa_deploy.demo import DEMO_BASE_SUPERNET, QUICK_RECIPE
    from ofa_deploy.spaces import get_space

    return get_space(DEMO_BASE_SUPERNET, **QUICK_RECIPE.space_overrides())


@pytest.fixture(scope="module")
def source(demo_space):
    return synthetic_source(demo_space)


@pytest.fixture(scope="module")
def synthetic_profile():
    return HardwareProfile.from_dict({
        "name": "synthetic-target", "backend": "torch", "warmup": 1, "repeats": 3, "rounds": 1,
        "min_rounds": 3, "max_rounds": 6, "visit_warmup": 1, "visit_repeats": 3, "interval_target": 0.03})


def test_class_distortions_are_recovered_and_pass_the_held_out_check(demo_space, source, synthetic_profile,
                                                                     tmp_path, monkeypatch):
    monkeypatch.setenv("OFA_DEPLOY_CACHE", str(tmp_path / "cache"))
    distortion = class_distortion(TRUE_FACTORS)
    backend = SyntheticBackend(source, distortion, unit_ms=0.2)
    out = tmp_path / "adapted.json"
    result = adapt_table(source, profile=synthetic_profile, supernet=demo_space, out=out, max_seconds=120,
                         backend=backend)
    assert result.passed and result.path == out and out.is_file()
    assert result.method == "class_ridge"  # one scale cannot carry per-class distortions
    v = result.validation
    assert v["passed"] and v["n"] >= 30 and v["within_10pct"] >= 0.95 and v["within_5pct"] >= 0.85
    baseline = result.details["global_scale_baseline"]
    assert baseline["within_5pct"] < v["within_5pct"]  # the richer rung was kept because it helps
    # the adapted entries are the source's times the true factors, up to one common scale
    table = result.table
    logs = [math.log(table[s].median / (source[s].median * distortion(s))) for s in table
            if source[s].median * distortion(s) > 0.3]
    assert np.std(logs) < 0.08, logs
    # provenance: what it was adapted from, how, and the stored held-out check
    prov = json.loads(out.read_text())["provenance"]
    assert prov["adapted_from"]["device"] == "source-device" and prov["adapted_from"]["path"] == "<LatencyTable>"
    assert prov["adaptation"]["method"] == "class_ridge" and prov["adaptation"]["validation"]["passed"] is True
    assert prov["adaptation"]["measurements"] == result.measurements >= 46
    assert prov["profile_name"] == "synthetic-target" and prov["host"]["backend"] == "synthetic"
    assert table.anchor is not None and table.anchor.visits > 0


def test_distortions_unrelated_to_classes_are_refused_with_the_figures(demo_space, source, synthetic_profile,
                                                                       tmp_path, monkeypatch):
    monkeypatch.setenv("OFA_DEPLOY_CACHE", str(tmp_path / "cache"))
    backend = SyntheticBackend(source, random_distortion(0.9, seed=3), unit_ms=0.2)
    out = tmp_path / "adapted.json"
    with pytest.raises(AdaptationError) as info:
        adapt_table(source, profile=synthetic_profile, supernet=demo_space, out=out, max_seconds=5,
                    backend=backend)
    message = str(info.value)
    assert "did not meet the held-out goal" in message and "missed:" in message
    assert "held-out subnets" in message and "one global scale gave" in message
    assert "ofa-deploy profile build --profile synthetic-target" in message and "Nothing was written" in message
    assert not out.exists() and not list(tmp_path.glob("*.json"))


def test_every_layer_belongs_to_its_op_size_and_width_classes(demo_space):
    for spec in demo_space.walk_layers(demo_space.max_config()):
        classes = layer_classes(spec)
        assert f"op:{spec.kind}:{spec.role}" in classes and f"size:{spec.in_size}" in classes
        assert f"width:{spec.out_channels}" in classes
        if spec.kind == "mbconv":
            assert f"mbconv:k{spec.kernel_size}" in classes and ("mid:not16" in classes) == bool(spec.mid_channels % 16)


def test_goal_names_what_it_misses():
    goal = Goal()
    figures = {"n": 30, "within_10pct": 0.9, "within_5pct": 0.9, "spearman": 0.99}
    assert goal.misses(figures) == ["90% within ±10% (need 95%)"]
    assert goal.misses({**figures, "within_10pct": 1.0}) == []


def test_the_foreign_table_warning_names_the_adapt_command(demo_space, source, caplog):
    from dataclasses import replace

    from ofa_deploy.profiling.hosts.fingerprint import host_fingerprint, warn_if_foreign

    here = host_fingerprint()
    foreign = source.copy(provenance=replace(source.provenance, profile_name="ort-cpu-1t", supernet="ofa_mbv3_w12",
                                             host={**here, "cpu_model": here["cpu_model"] + " (another host)"}))
    with caplog.at_level("WARNING"):
        check = warn_if_foreign(foreign, None, source="latency table /data/other/ofa_mbv3_w12.json")
    assert not check.ok
    assert ("ofa-deploy profile adapt --from /data/other/ofa_mbv3_w12.json --profile ort-cpu-1t --supernet "
            "ofa_mbv3_w12") in caplog.text


def test_fallback_build_builds_the_full_table_when_the_goal_is_missed(tiny_space, synthetic_profile, tmp_path,
                                                                      monkeypatch):
    """`fallback="build"`: the refused adaptation is replaced by a full build (with the profile's own backend)."""
    from ofa_deploy.tables.latency import LatencyTable

    monkeypatch.setenv("OFA_DEPLOY_CACHE", str(tmp_path / "cache"))
    source = synthetic_source(tiny_space)
    out = tmp_path / "built.json"
    result = adapt_table(source, profile=synthetic_profile, supernet=tiny_space, out=out, max_seconds=5,
                         fallback="build", backend=SyntheticBackend(source, random_distortion(0.9, seed=5)))
    assert result.method == "full_build" and not result.passed and not result.validation["passed"]
    table = LatencyTable.load(out)
    assert set(table) == set(source) and not table.provenance.is_adapted
    assert result.details["build"]["entries"] == len(source)


def test_importing_the_adaptation_package_does_not_import_torch():
    import subprocess
    import sys
    from pathlib import Path

    code = ("import sys, ofa_deploy as od; od.adapt_table; od.AdaptResult; od.AdaptationError; "
            "import ofa_deploy.adapt.design, ofa_deploy.adapt.fit, ofa_deploy.adapt.target; "
            "print('torch' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[2], timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"
