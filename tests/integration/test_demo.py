"""The demo (quick recipe): progressive-shrinking supernet on digits → accuracy dataset → predictor, cached."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ofa_deploy.demo import QUICK_RECIPE, DemoRecipe, load_demo_supernet, prepare_demo_assets
from ofa_deploy.predictors.accuracy import AccuracyPredictor
from ofa_deploy.predictors.dataset import load_accuracy_dataset

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def quick_cli_run(tmp_path_factory):
    """`ofa-deploy accuracy train-demo --quick` as a real subprocess, into a fresh cache directory."""
    cache = tmp_path_factory.mktemp("demo-cache")
    env = {**os.environ, "OFA_DEPLOY_CACHE": str(cache)}
    proc = subprocess.run([sys.executable, "-m", "ofa_deploy", "accuracy", "train-demo", "--quick", "--format", "json",
                           "--no-progress"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return cache, json.loads(proc.stdout)


def test_quick_demo_trains_a_real_supernet(quick_cli_run):
    cache, result = quick_cli_run
    assert Path(result["weights"]).is_relative_to(cache / "demo")
    sup = result["figures"]["supernet"]
    assert [p["phase"] for p in sup["phases"]] == ["largest", "elastic_kernel", "elastic_depth", "elastic_expand"]
    assert sup["top1_largest"] > 0.3  # 10 classes: chance is 0.1
    ds = result["figures"]["dataset"]
    assert ds["n_items"] == QUICK_RECIPE.n_subnets * len(QUICK_RECIPE.dataset_resolutions)
    assert 0 <= ds["top1_min"] <= ds["top1_median"] <= ds["top1_max"] <= 1 and ds["top1_max"] > ds["top1_min"]
    for stage in ("data", "supernet", "dataset", "predictor", "total"):
        assert result["timings_s"][stage] >= 0
    assert result["reused"] == {"supernet": False, "dataset": False, "predictor": False}


def test_demo_assets_load_and_are_reused(quick_cli_run):
    cache, result = quick_cli_run
    supernet = load_demo_supernet(result["weights"])
    assert supernet.space.n_classes == 10 and supernet.space.resolutions == QUICK_RECIPE.resolutions
    acc = load_accuracy_dataset(result["dataset"])
    assert len(acc) == result["figures"]["dataset"]["n_items"]
    predictor = AccuracyPredictor.load(result["predictor"])
    pred = predictor.predict(acc.configs)
    assert pred.shape == (len(acc),)
    before = cache_files(cache / "demo")
    again = prepare_demo_assets(cache / "demo", quick=True)
    assert again.reused == {"supernet": True, "dataset": True, "predictor": True}
    assert cache_files(cache / "demo") == before  # nothing retrained or rewritten: every file as it was
    assert str(again.weights) == result["weights"] and again.figures["dataset"] == result["figures"]["dataset"]


def cache_files(root: Path) -> dict[str, tuple[int, str]]:
    """Every file under `root`: (modification time in ns, SHA-256 of its bytes)."""
    import hashlib

    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_recipe_hash_keys_the_cache():
    assert DemoRecipe().key() != QUICK_RECIPE.key()
    assert DemoRecipe(threads=2).key() == DemoRecipe().key()  # thread count does not change the recipe
    assert DemoRecipe().key("base_widths") == QUICK_RECIPE.key("base_widths")


def test_progressive_shrinking_is_seeded_and_distillation_runs():
    from ofa_deploy.demo import load_demo_data, train_demo_supernet
    from ofa_deploy.predictors.dataset import state_dict_sha256
    from ofa_deploy.predictors.training import torch_threads

    recipe = DemoRecipe(phase_steps=(2, 1, 1, 1), batch_size=16, distill=True)
    data = load_demo_data(recipe)
    with torch_threads(1):
        a, info = train_demo_supernet(recipe, data)
        b, _ = train_demo_supernet(recipe, data)
    assert state_dict_sha256(a) == state_dict_sha256(b)
    assert [p["steps"] for p in info["phases"]] == [2, 1, 1, 1]
    assert state_dict_sha256(a) != state_dict_sha256(create_fresh(recipe))


def create_fresh(recipe):
    from ofa_deploy.demo import create_demo_supernet

    return create_demo_supernet(recipe)
