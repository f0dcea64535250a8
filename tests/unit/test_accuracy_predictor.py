"""Accuracy predictor: OFA's released weights give the reference package's predictions; save/load; training."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ofa_deploy.errors import CheckpointError, ConfigError
from ofa_deploy.predictors.accuracy import AccuracyMLP, AccuracyPredictor, load_ofa_predictor
from ofa_deploy.predictors.encoding import default_encoder
from ofa_deploy.predictors.training import architecture_ids, split_by_architecture, train_predictor
from ofa_deploy.spaces import get_space
from tests.unit.test_encoding import RESNET_RES, load_tutorial_module


@pytest.fixture(scope="module")
def resnet_predictor(ofa_reference_dir):
    return load_ofa_predictor(ofa_reference_dir / "acc_predictor_resnet50.pth", kind="resnet50")


def test_released_resnet50_predictor_matches_reference(resnet_predictor, ofa_reference_dir, ofa_ref):
    from ofa.nas.accuracy_predictor import AccuracyPredictor as RefPredictor
    from ofa.nas.accuracy_predictor import ResNetArchEncoder

    ref = RefPredictor(ResNetArchEncoder(image_size_list=RESNET_RES),
                       checkpoint_path=str(ofa_reference_dir / "acc_predictor_resnet50.pth"), device="cpu")
    assert resnet_predictor.encoder.n_dim == 82
    assert resnet_predictor.base_acc == pytest.approx(0.8056, abs=1e-4)
    cfgs = resnet_predictor.space.sample_batch(100, 0)
    ours = resnet_predictor.predict(cfgs)
    with torch.no_grad():
        theirs = ref.predict_acc([c.to_ofa() for c in cfgs]).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-6)
    assert ours.std() > 0.005  # the predictions do depend on the architecture
    genes = resnet_predictor.space.to_genes(cfgs)
    np.testing.assert_array_equal(resnet_predictor.predict_genes(genes), ours)


def test_released_tutorial_predictor_matches_reference(ofa_reference_dir, ofa_ref):
    path = ofa_reference_dir / "acc_predictor_mbv3_tutorial.pth"
    tutorial = load_tutorial_module()
    ref = tutorial.AccuracyPredictor(pretrained=False, device="cpu")  # no download; load the local file
    ref.model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    ours = load_ofa_predictor(path, kind="mbv3_tutorial")
    cfgs = ours.space.sample_batch(100, 1)
    population = [{"ks": list(c.kernel_sizes), "e": [int(e) for e in c.expand_ratios], "d": list(c.depths),
                   "r": [c.resolution]} for c in cfgs]
    theirs = ref.predict_accuracy(population).numpy().reshape(-1)
    np.testing.assert_allclose(ours.predict(cfgs), theirs, rtol=0, atol=1e-6)
    assert 0.5 < ours.predict(cfgs).mean() < 0.9


def test_load_ofa_predictor_errors(tmp_path, ofa_reference_dir):
    with pytest.raises(CheckpointError, match="not found"):
        load_ofa_predictor(tmp_path / "missing.pth")
    with pytest.raises(ConfigError, match="kind"):
        load_ofa_predictor(ofa_reference_dir / "acc_predictor_resnet50.pth", kind="mbv2")
    with pytest.raises(CheckpointError, match="is OFA.s resnet50 accuracy predictor, not mbv3_tutorial"):
        load_ofa_predictor(ofa_reference_dir / "acc_predictor_resnet50.pth", kind="mbv3_tutorial")


def test_save_load_round_trip(tmp_path, resnet_predictor):
    resnet_predictor.meta["note"] = "round trip"
    out = resnet_predictor.save(tmp_path / "pred")
    header = json.loads((out / "predictor.json").read_text())
    assert header["encoder"] == {"name": "resnet", "params": {"resolutions": RESNET_RES}}
    assert header["base_acc"] == pytest.approx(0.8056, abs=1e-4) and header["n_dim"] == 82
    loaded = AccuracyPredictor.load(out)
    genes = resnet_predictor.space.sample_genes(50, 5)
    np.testing.assert_array_equal(loaded.predict_genes(genes), resnet_predictor.predict_genes(genes))
    assert loaded.meta["note"] == "round trip"
    # weights are a plain state dict readable with weights_only=True
    state = torch.load(out / "weights.pt", weights_only=True)
    assert set(state) == set(AccuracyMLP(82).state_dict())
    with pytest.raises(CheckpointError, match="predictor.json"):
        AccuracyPredictor.load(tmp_path)


def test_split_keeps_resolutions_of_an_architecture_together():
    space = get_space("ofa_mbv3_w10", resolutions=(160, 192, 224))
    enc = default_encoder(space)
    archs = space.sample_batch(40, 0)
    cfgs = [a.replace(resolution=r) for a in archs for r in (160, 192, 224)]
    ids = architecture_ids(enc, enc.encode(cfgs))
    assert len(np.unique(ids)) == 40
    tr, va, te = split_by_architecture(ids, val_fraction=0.15, test_fraction=0.2, seed=0)
    assert len(tr) + len(va) + len(te) == 120
    assert not (set(ids[tr]) & set(ids[te])) and not (set(ids[tr]) & set(ids[va])) and not (set(ids[va]) & set(ids[te]))


def test_training_beats_mean_baseline_on_held_out_archs(resnet_predictor):
    """A student fitted to the released predictor's outputs ranks unseen architectures well."""
    space = resnet_predictor.space
    genes = space.sample_genes(400, 7)
    y = resnet_predictor.predict_genes(genes)
    student, report = train_predictor(resnet_predictor.encoder, genes=genes, accuracies=y, seed=0, max_epochs=60,
                                      patience=20)
    assert report.n_test > 50
    assert report.test_rmse < 0.6 * report.test_baseline_rmse
    assert report.test_kendall_tau > 0.6
    assert student.meta["training"]["test_rmse"] == report.test_rmse
    again, report2 = train_predictor(resnet_predictor.encoder, genes=genes, accuracies=y, seed=0, max_epochs=60,
                                     patience=20)
    assert report2.test_rmse == report.test_rmse  # seeded
    with pytest.raises(ConfigError, match="fractions"):
        train_predictor(resnet_predictor.encoder, genes=genes, accuracies=y * 100)
