"""Search spaces: config codecs, validation errors, sampling, genes and the layer walk."""
from __future__ import annotations

import json

import numpy as np
import pytest

from ofa_deploy.errors import ConfigError, UnknownNameError
from ofa_deploy.predictors.macs import count_subnet
from ofa_deploy.spaces import SubnetConfig, get_space, list_spaces, make_divisible

SPACES = list_spaces()


@pytest.mark.parametrize("name", SPACES)
def test_config_round_trips_through_dict_json_string_and_genes(name: str) -> None:
    space = get_space(name)
    for cfg in [space.min_config(), space.max_config(), *space.sample_batch(20, rng=7)]:
        assert SubnetConfig.from_dict(cfg.to_dict()) == cfg
        assert SubnetConfig.from_json(json.dumps(cfg.to_dict())) == cfg
        assert SubnetConfig.from_string(cfg.to_string()) == cfg
        assert space.from_genes(space.to_genes([cfg]))[0] == cfg
        assert space.from_ofa(cfg.to_ofa()) == cfg


@pytest.mark.parametrize("name", SPACES)
def test_sampling_is_seeded_and_valid(name: str) -> None:
    space = get_space(name)
    a, b = space.sample_batch(50, rng=3), space.sample_batch(50, rng=3)
    assert a == b
    assert a != space.sample_batch(50, rng=4)
    assert all(space.is_valid(c) for c in a)
    genes = space.sample_genes(1000, np.random.default_rng(0))
    assert genes.min() == 0 and (genes < space.gene_sizes()).all()
    # every choice of every gene shows up in 1000 samples
    assert all(len(np.unique(genes[:, j])) == n for j, n in enumerate(space.gene_sizes()))


def test_from_dict_rejects_unknown_keys_and_does_not_mutate() -> None:
    data = {"resolution": 224, "depths": [4] * 5, "kernel_sizes": [3] * 20, "expand_ratios": [6] * 20, "ks": [3]}
    before = json.dumps(data)
    with pytest.raises(ConfigError, match="unknown subnet config keys.*from_ofa"):
        SubnetConfig.from_dict(data)
    assert json.dumps(data) == before


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kernel_sizes": [9] + [3] * 19}, r"kernel_sizes\[0\] = 9 .*allowed values: 3, 5, 7"),
        ({"expand_ratios": [3] * 19 + [5]}, r"expand_ratios\[19\] = 5 .*allowed values: 3, 4, 6"),
        ({"depths": [4, 4, 1, 4, 4]}, r"depths\[2\] = 1 .*allowed values: 2, 3, 4"),
        ({"depths": [4, 4, 4]}, r"depths needs 5 entries .*got 3"),
        ({"kernel_sizes": [3] * 19}, r"kernel_sizes needs 20 entries"),
        ({"resolution": 230}, r"resolution = 230 .*allowed values: 128, 132"),
    ],
)
def test_invalid_mbv3_configs_name_the_bad_value(change: dict, message: str) -> None:
    space = get_space("ofa_mbv3_w12")
    with pytest.raises(ConfigError, match=message):
        space.validate(space.max_config().replace(**change))


def test_invalid_resnet_config_and_unknown_space() -> None:
    space = get_space("ofa_resnet50")
    with pytest.raises(ConfigError, match=r"width_indices\[3\] = 3 .*allowed values: 0, 1, 2"):
        space.validate(space.max_config().replace(width_indices=[2, 2, 2, 3, 2, 2]))
    with pytest.raises(UnknownNameError, match="Did you mean 'ofa_mbv3_w12'"):
        get_space("ofa_mbv3_w13")


def test_compact_string_errors() -> None:
    with pytest.raises(ConfigError, match="expected parts like"):
        SubnetConfig.from_string("r224-x3")
    with pytest.raises(ConfigError, match="is not a number"):
        SubnetConfig.from_string("r224-d4,a")
    with pytest.raises(ConfigError, match="positive integer"):
        SubnetConfig(resolution=-1, depths=(1,))


def test_ofa_arch_dict_resolution_forms() -> None:
    space = get_space("ofa_mbv3_w10")
    arch = {"ks": [3] * 20, "e": [3] * 20, "d": [2] * 5}
    assert space.from_ofa({**arch, "image_size": 160}).resolution == 160
    assert space.from_ofa({**arch, "r": [176]}).resolution == 176
    with pytest.raises(ConfigError, match="no 'image_size' or 'r'"):
        space.from_ofa(arch)


def test_proxyless_last_stage_depth_is_clamped_like_ofa() -> None:
    space = get_space("ofa_proxyless_w13")
    arch = {"ks": [3] * 21, "e": [3] * 21, "d": [2, 2, 2, 2, 2, 4], "image_size": 224}
    assert space.from_ofa(arch).depths[-1] == 1


@pytest.mark.parametrize(
    ("name", "max_mmacs", "min_mmacs", "max_mparams"),
    [  # figures published by / measured with the reference implementation at 224
        ("ofa_mbv3_w10", 566.2, 121.3, 7.66),
        ("ofa_mbv3_w12", 843.1, 193.1, 10.70),
        ("ofa_proxyless_w13", 1004.9, 265.5, 7.94),
        ("ofa_resnet50", 7491.6, 962.2, 48.11),
    ],
)
def test_walk_macs_match_reference_figures(name: str, max_mmacs: float, min_mmacs: float, max_mparams: float) -> None:
    space = get_space(name)
    big, small = count_subnet(space, space.max_config(224)), count_subnet(space, space.min_config(224))
    assert big.macs / 1e6 == pytest.approx(max_mmacs, abs=0.05)
    assert small.macs / 1e6 == pytest.approx(min_mmacs, abs=0.05)
    assert big.params / 1e6 == pytest.approx(max_mparams, abs=0.005)


def test_walk_shapes_chain_and_resolution_override() -> None:
    space = get_space("ofa_mbv3_w12")
    cfg = space.sample(0)
    specs = space.walk_layers(cfg, resolution=160)
    assert specs[0].in_size == 160 and specs[0].out_size == 80
    for prev, nxt in zip(specs, specs[1:]):
        assert prev.out_channels == nxt.in_channels and prev.out_size == nxt.in_size
    n_blocks = sum(1 for s in specs if s.kind == "mbconv")
    assert n_blocks == 1 + sum(cfg.depths)


def test_make_divisible_matches_tf_rule() -> None:
    assert make_divisible(16 * 1.2) == 24 and make_divisible(112 * 1.2) == 136 and make_divisible(10) == 16
    assert make_divisible(960 * 1.2) == 1152


def test_space_variant_overrides() -> None:
    space = get_space("ofa_mbv3_w10", width_mult=0.5, depths=(1, 2), kernel_sizes=(3, 5), resolutions=(32,),
                      n_classes=10)
    cfg = space.max_config()
    assert cfg.depths == (2,) * 5 and set(cfg.kernel_sizes) == {5}
    assert space.walk_layers(cfg)[-1].out_channels == 10


def test_spaces_import_without_torch():
    """`spaces/` (space serialisation and alignment, the family registry) and the built-in family declarations
    load without torch."""
    import subprocess
    import sys

    code = ("import sys, ofa_deploy.spaces, ofa_deploy.spaces.slots, ofa_deploy.spaces.serialization, "
            "ofa_deploy.families; assert ofa_deploy.spaces.list_spaces(); "
            "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if m.startswith('torch'))")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("name", list_spaces())
def test_space_dict_round_trip_and_alignment(name):
    from ofa_deploy.spaces import align_space, space_differences, space_from_dict, space_to_dict

    space = get_space(name)
    again = space_from_dict(space_to_dict(space))
    assert type(again) is type(space) and space_to_dict(again) == space_to_dict(space)
    fewer = get_space(name, resolutions=space.resolutions[::2])
    diffs = space_differences(fewer, space)
    assert diffs and all(d.startswith("resolutions ") for d in diffs)
    assert align_space(fewer, space).resolutions == fewer.resolutions
    with pytest.raises(ConfigError, match="differs in"):
        align_space(get_space(name, n_classes=10), space)
