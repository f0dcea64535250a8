"""Encoders: OFA layouts (dimensions and one-hot positions) against the reference package, batched."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from ofa_deploy.errors import ConfigError, UnknownNameError
from ofa_deploy.predictors.encoding import TUTORIAL_RESOLUTIONS, default_encoder, get_encoder, list_encoders
from ofa_deploy.spaces import get_space

RESNET_RES = [128, 144, 160, 176, 192, 224, 240, 256]


@pytest.fixture(scope="module")
def ref_encoders(ofa_ref):
    from ofa.nas.accuracy_predictor import arch_encoder

    return arch_encoder


def load_tutorial_module():
    """ofa/tutorial/accuracy_predictor.py loaded on its own (the package __init__ needs torchvision)."""
    import ofa

    path = Path(ofa.__file__).parent / "tutorial" / "accuracy_predictor.py"
    spec = importlib.util.spec_from_file_location("ofa_tutorial_accuracy_predictor", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("resolutions, n_dim", [([224], 121), (list(range(128, 225, 4)), 145)])
def test_mobilenet_encoder_matches_ofa(ref_encoders, resolutions, n_dim):
    space = get_space("ofa_mbv3_w12", resolutions=resolutions)
    enc, ref = get_encoder("mobilenet", space), ref_encoders.MobileNetArchEncoder(image_size_list=resolutions)
    assert enc.n_dim == ref.n_dim == n_dim
    genes = space.sample_genes(300, 0)
    cfgs = space.from_genes(genes)
    ours = enc.encode_genes(genes)
    theirs = np.stack([ref.arch2feature(c.to_ofa()) for c in cfgs])
    assert ours.dtype == np.float32 and ours.shape == (300, n_dim)
    np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(enc.encode(cfgs), ours)


def test_resnet_encoder_matches_ofa(ref_encoders):
    space = get_space("ofa_resnet50", resolutions=RESNET_RES)
    enc, ref = get_encoder("resnet", space), ref_encoders.ResNetArchEncoder(image_size_list=RESNET_RES)
    assert enc.n_dim == ref.n_dim == 82
    genes = space.sample_genes(300, 1)
    theirs = np.stack([ref.arch2feature(c.to_ofa()) for c in space.from_genes(genes)])
    np.testing.assert_array_equal(enc.encode_genes(genes), theirs)


def test_resnet_encoder_min_and_max_configs(ref_encoders):
    space = get_space("ofa_resnet50", resolutions=RESNET_RES)
    enc, ref = get_encoder("resnet", space), ref_encoders.ResNetArchEncoder(image_size_list=RESNET_RES)
    for cfg in (space.min_config(), space.max_config()):
        np.testing.assert_array_equal(enc.encode([cfg])[0], ref.arch2feature(cfg.to_ofa()))


def test_tutorial_encoder_matches_ofa_tutorial(ofa_ref):
    tutorial = load_tutorial_module()
    space = get_space("ofa_mbv3_w12", resolutions=TUTORIAL_RESOLUTIONS)
    enc = get_encoder("mbv3_tutorial", space)
    assert enc.n_dim == 128
    cfgs = space.sample_batch(200, 2)
    ours = enc.encode(cfgs)
    theirs = np.stack([
        tutorial.AccuracyPredictor.spec2feats(list(c.kernel_sizes), [int(e) for e in c.expand_ratios],
                                              list(c.depths), c.resolution).numpy()
        for c in cfgs
    ])
    np.testing.assert_array_equal(ours, theirs)
    # resolution slot (r - 112) // 16 in the last 8 columns
    slots = np.argmax(ours[:, 120:], axis=1)
    np.testing.assert_array_equal(slots, [(c.resolution - 112) // 16 for c in cfgs])


@pytest.mark.parametrize("name", ["ofa_mbv3_w10", "ofa_proxyless_w13", "ofa_resnet50"])
def test_decode_round_trip_and_skipped_blocks_zero(name):
    space = get_space(name)
    enc = default_encoder(space)
    genes = space.sample_genes(100, 3)
    x = enc.encode_genes(genes)
    decoded = enc.decode(x)
    np.testing.assert_array_equal(enc.encode(decoded), x)
    for cfg, row in zip(decoded, x):
        n_active = len(space.active_blocks(cfg))
        assert row.sum() == (8 + n_active if space.family == "resnet" else 1 + 2 * n_active)
        assert cfg.resolution in space.resolutions


def test_proxyless_dimensions():
    space = get_space("ofa_proxyless_w13", resolutions=[224])
    assert default_encoder(space).n_dim == 1 + 21 * 3 * 2


def test_encoder_resolution_list_may_differ_from_space():
    space = get_space("ofa_mbv3_w10", resolutions=(160, 192, 224))
    enc = get_encoder("mobilenet", space, resolutions=[128, 160, 224, 192])
    x = enc.encode([space.max_config(192), space.max_config(160)])
    assert x[0, 3] == 1 and x[1, 1] == 1 and x[:, :4].sum() == 2


def test_unencodable_resolution_is_a_clear_error():
    space = get_space("ofa_mbv3_w10", resolutions=(160, 224))
    enc = get_encoder("mobilenet", space, resolutions=[224])
    enc.encode([space.max_config(224)])  # fine
    with pytest.raises(ConfigError, match="cannot encode resolution 160.*encodes \\[224\\]"):
        enc.encode([space.max_config(160)])


def test_bad_gene_arrays_and_names():
    space = get_space("ofa_mbv3_w10")
    enc = default_encoder(space)
    with pytest.raises(ConfigError, match="shape"):
        enc.encode_genes(np.zeros((2, 3), dtype=np.int64))
    genes = space.sample_genes(2, 0)
    genes[1, 5] = 99
    with pytest.raises(ConfigError, match="choice index"):
        enc.encode_genes(genes)
    with pytest.raises(UnknownNameError, match="mobilenet"):
        get_encoder("mobilenett", space)
    with pytest.raises(ConfigError):
        get_encoder("resnet", space)
    assert list_encoders() == ["mbv3_tutorial", "mobilenet", "resnet"]


def test_encode_genes_is_batched():
    """One call encodes a large batch exactly as row by row (its speed is benchmarks/bench_encoding.py's)."""
    space = get_space("ofa_mbv3_w12")
    enc = default_encoder(space)
    genes = space.sample_genes(20000, 4)
    x = enc.encode_genes(genes)
    assert x.shape == (20000, 145)
    rows = np.random.default_rng(0).choice(len(genes), 50, replace=False)
    np.testing.assert_array_equal(x[rows], np.concatenate([enc.encode_genes(genes[i:i + 1]) for i in rows]))
    np.testing.assert_array_equal(x[:7], enc.encode_genes(genes[:7]))
    assert torch.from_numpy(x).dtype == torch.float32
