"""The released-weights registry: its metadata is recomputed here, not trusted (cf. torchvision's
``test_schema_meta_validation``), and the lookup and the specialized-net builder work offline from a cache."""
from __future__ import annotations

import copy
import dataclasses
import pickle
import re
from pathlib import Path

import pytest
import torch

import ofa_deploy as od
from ofa_deploy.compat.net_config import load_net_config
from ofa_deploy.compat.static_layout import network_name
from ofa_deploy.compat.static_weights import to_ofa_state_dict
from ofa_deploy.compat.released import download, supernet_weights
from ofa_deploy.compat.specialized import SPECIALIZED_NETS, fetch_specialized, parse_specialized_name
from ofa_deploy.compat.zoo import get_weights, list_weights
from ofa_deploy.errors import CheckpointError, ConfigError, UnknownNameError
from ofa_deploy.predictors.macs import count_layers, count_module, count_subnet
from ofa_deploy.spaces import get_space
from ofa_deploy.supernets import create_supernet
from tests.export_helpers import assert_input_dependent, randomize_for_parity
from tests.ofa_reference import REFERENCE_SUPERNETS

SUPERNETS = list_weights("supernet")
SPECIALIZED = list_weights("specialized")
#: the specialized nets whose net.config/run.config are in the shared reference data (../shared/reference/ofa)
HELD = ("cpu_lat-17ms_top1-75.7_finetune-25", "flops-595M_top1-80.0_finetune-75",
        "pixel1_lat-58ms_top1-76.9_finetune-75")


@pytest.fixture(scope="module")
def supernets() -> dict:
    """Each supernet built once for the module (the ResNet50 one has 48M parameters)."""
    return {name: create_supernet(name) for name in SUPERNETS}


@pytest.fixture(scope="module")
def specialized_dir(ofa_reference_dir: Path) -> Path:
    return ofa_reference_dir / "specialized"


# ---- supernets: every figure recomputed --------------------------------------------------------------------------
def test_registry_lists_the_four_supernets() -> None:
    assert SUPERNETS == sorted(od.list_supernets()) == sorted(supernet_weights())


@pytest.mark.parametrize("name", SUPERNETS)
def test_supernet_meta_is_recomputed(name: str, supernets: dict) -> None:
    meta = get_weights(name).meta
    net = supernets[name]
    space = net.space
    assert meta.search_space == space.name == name
    assert meta.resolutions == tuple(space.resolutions)
    assert meta.num_params == sum(p.numel() for p in net.parameters())
    largest = space.max_config(meta.max_resolution)
    analytic = count_subnet(space, largest)
    assert meta.macs_max == analytic.macs
    assert meta.network == network_name(space.walk_layers(largest))
    # the MAC counter on the layer walk agrees with forward hooks on the extracted largest subnet
    r = meta.max_resolution
    hooked = count_module(net.extract(largest), (1, 3, r, r))
    assert (hooked.macs, hooked.params) == (analytic.macs, analytic.params)
    assert meta.top1 is None  # OFA publishes no top-1 for a supernet as a whole


@pytest.mark.parametrize("name", SUPERNETS)
def test_supernet_meta_matches_the_reference_package(name: str, ofa_ref) -> None:
    """Independent of our code: the reference supernet's parameters, and its largest subnet's MACs."""
    meta = get_weights(name).meta
    cls, kwargs = REFERENCE_SUPERNETS[name]
    ref = getattr(ofa_ref, cls)(n_classes=1000, dropout_rate=0, **kwargs)
    assert ofa_ref.count_parameters(ref) == meta.num_params
    ref.set_max_net()
    r = meta.max_resolution
    largest = ref.get_active_subnet()
    assert count_module(largest, (1, 3, r, r)).macs == meta.macs_max
    assert float(ofa_ref.count_net_flops(largest, (1, 3, r, r))) == pytest.approx(meta.macs_max, rel=1e-7)  # float32


# ---- specialized nets ---------------------------------------------------------------------------------------------
def test_counted_specialized_nets_are_the_ones_we_hold(specialized_dir: Path) -> None:
    counted = {name for name in SPECIALIZED if get_weights(name).meta.macs is not None}
    assert counted == set(HELD)
    assert all((specialized_dir / f"{name}.net.config").is_file() for name in HELD)
    for name in set(SPECIALIZED) - counted:  # not held here: nothing counted, nothing estimated
        meta = get_weights(name).meta
        assert (meta.network, meta.search_space, meta.resolution, meta.macs, meta.num_params) == (None,) * 5, name


@pytest.mark.parametrize("name", HELD)
def test_specialized_meta_is_recomputed(name: str, specialized_dir: Path) -> None:
    meta = get_weights(name).meta
    model = load_net_config(specialized_dir / f"{name}.net.config")  # resolution from the run.config beside it
    assert meta.resolution == model.input_resolution
    assert meta.network == model.meta["net_config"] == network_name(model.specs)
    cost = count_layers(model.specs)
    assert (meta.macs, meta.num_params) == (cost.macs, cost.params)
    assert meta.num_params == sum(p.numel() for p in model.parameters())
    r = meta.resolution
    assert count_module(model, (1, 3, r, r)).macs == meta.macs
    # it uses the widths of the space it was specialized from (w1.0 and w1.2 differ in every stage)
    space = get_space(meta.search_space)
    space_specs = space.walk_layers(space.max_config())
    assert network_name(space_specs) == meta.network
    assert model.specs[0].out_channels == space_specs[0].out_channels  # stem
    assert model.specs[-1].in_channels == space_specs[-1].in_channels  # classifier input
    assert {s.out_channels for s in model.specs} <= {s.out_channels for s in space_specs}
    if meta.macs_target is not None:  # "flops@595M": the name's figure is the recomputed MACs, rounded
        unit = 10 ** 6
        assert round(meta.macs / unit) * unit == meta.macs_target


@pytest.mark.parametrize("name", SPECIALIZED)
def test_specialized_meta_says_what_the_name_says(name: str) -> None:
    meta = get_weights(name).meta
    assert f"_top1-{meta.top1:.1f}" in name
    assert name.endswith(f"_finetune-{meta.finetune_epochs}") == (meta.finetune_epochs is not None)
    assert "_finetune-" in name or meta.finetune_epochs is None
    if meta.latency_ms is not None:
        assert meta.macs_target is None and meta.hardware is not None
        suffix = "_lat" if meta.batch_size == 1 else f"_gpu{meta.batch_size}"
        assert name.startswith(f"{meta.hardware}{suffix}-{meta.latency_ms:g}ms_")
    else:
        assert meta.hardware is None and meta.batch_size is None
        figure = name.split("_top1-")[0].rsplit("-", 1)[1]  # "595M" / "4.1B"
        assert meta.macs_target == round(float(figure[:-1]) * {"M": 1e6, "B": 1e9}[figure[-1]])
    assert 60 < meta.top1 < 90


@pytest.mark.parametrize(("name", "expected"), [
    ("LG-G8_lat@24ms_top1@76.4_finetune@25", {"hardware": "LG-G8", "latency_ms": 24.0, "batch_size": 1,
                                              "top1": 76.4, "finetune_epochs": 25, "macs_target": None}),
    ("1080ti_gpu64-27ms_top1-76.4_finetune-25", {"hardware": "1080ti", "latency_ms": 27.0, "batch_size": 64}),
    ("tx2_gpu16@96ms_top1@75.8_finetune@25", {"hardware": "tx2", "batch_size": 16}),
    ("resnet50D_MAC@4.1B_top1@79.8", {"macs_target": 4_100_000_000, "finetune_epochs": None, "top1": 79.8,
                                      "hardware": None}),
    ("flops@595M_top1@80.0_finetune@75", {"macs_target": 595_000_000, "top1": 80.0, "finetune_epochs": 75}),
])
def test_parse_specialized_name(name: str, expected: dict) -> None:
    meta = parse_specialized_name(name)
    assert {k: getattr(meta, k) for k in expected} == expected


@pytest.mark.parametrize("bad", ["pixel1_top1@76.9", "pixel1_lat@58ms_top1@76.9_finetune@", "flops@595K_top1@80.0",
                                 "pixel1_fast@58ms_top1@76.9", "pixel1_lat@58M_top1@76.9"])
def test_parse_specialized_name_rejects_other_strings(bad: str) -> None:
    with pytest.raises(ConfigError, match="specialized"):
        parse_specialized_name(bad)


def test_specialized_urls_follow_ofas_layout() -> None:
    entry = get_weights("cpu_lat@17ms_top1@75.7_finetune@25")
    base = ("https://raw.githubusercontent.com/han-cai/files/master/ofa/ofa_specialized/"
            "cpu_lat-17ms_top1-75.7_finetune-25/")
    assert (entry.net_config_url, entry.run_config_url, entry.url) == (base + "net.config", base + "run.config",
                                                                        base + "init")
    assert len(SPECIALIZED_NETS) == 58  # the once-for-all README's table: 8 ResNet50D + 50 MobileNetV3/Proxyless


# ---- the lookup ---------------------------------------------------------------------------------------------------
def test_lookup_names_kinds_and_spellings() -> None:
    assert list_weights() == SUPERNETS + SPECIALIZED and len(SPECIALIZED) == 58
    assert list_weights("specialized", "note10*") == sorted(n for n in SPECIALIZED if n.startswith("note10"))
    assert len(list_weights(pattern="note10*")) == 8
    assert get_weights("ofa_mbv3_d234_e346_k357_w1.2") is get_weights("ofa_mbv3_w12")  # by its file name too
    assert get_weights("flops@595M_top1@80.0_finetune@75") is get_weights("flops-595M_top1-80.0_finetune-75")
    assert od.get_weights is get_weights and od.list_weights is list_weights
    with pytest.raises(UnknownNameError, match="Did you mean 'ofa_mbv3_w12'"):
        get_weights("ofa_mbv3_w2")
    with pytest.raises(UnknownNameError, match="Did you mean 'pixel1_lat-58ms_top1-76.9_finetune-75'"):
        get_weights("pixel1_lat@58ms_top1@76.9")
    with pytest.raises(ConfigError, match="weights kind 'supernets'"):
        list_weights("supernets")  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["ofa_resnet50", "pixel1_lat-58ms_top1-76.9_finetune-75"])
def test_entries_are_frozen_data(name: str) -> None:
    entry = get_weights(name)
    assert pickle.loads(pickle.dumps(entry)) == entry == copy.deepcopy(entry)
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.meta.top1 = 99.0  # type: ignore[misc]
    for each in (*supernet_weights().values(), *SPECIALIZED_NETS.values()):
        assert each.sha256 is None or re.fullmatch("[0-9a-f]{64}", each.sha256)
        assert each.url.startswith("https://") and each.url.endswith(each.filename)


# ---- fetch and build a specialized net from the cache -------------------------------------------------------------
def _cached(specialized_dir: Path, root: Path, name: str) -> Path:
    folder = root / "specialized" / name
    folder.mkdir(parents=True)
    for kind in ("net", "run"):
        (folder / f"{kind}.config").write_text((specialized_dir / f"{name}.{kind}.config").read_text())
    return folder


def test_create_specialized_from_the_cache(specialized_dir: Path, tmp_path: Path) -> None:
    name = "cpu_lat-17ms_top1-75.7_finetune-25"
    folder = _cached(specialized_dir, tmp_path, name)
    random = od.create_specialized("cpu_lat@17ms_top1@75.7_finetune@25", cache_dir=tmp_path)
    assert random.input_resolution == 208 and random.training
    released = randomize_for_parity(load_net_config(folder), seed=3, input_shape=(2, 3, 208, 208))
    torch.save({"state_dict": to_ofa_state_dict(released)}, folder / "init")
    assert fetch_specialized(name, cache_dir_override=tmp_path) == folder  # all three files cached: no download
    net = od.create_specialized(name, weights="released", cache_dir=tmp_path)
    assert not net.training
    assert all(torch.equal(v, released.state_dict()[k]) for k, v in net.state_dict().items())
    by_path = od.create_specialized(name, weights=folder / "init", cache_dir=tmp_path)
    x = torch.randn(2, 3, 208, 208, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(by_path(x), assert_input_dependent(net(x)))


def test_offline_download_names_url_and_cache_path(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    missing = (tmp_path / "gone" / "init").as_uri()
    dest = root / "specialized" / "some_net" / "init"
    with pytest.raises(CheckpointError, match=re.escape(missing)) as err:
        download(missing, dest, cache_root=root)
    assert str(dest) in str(err.value) and "holding specialized/some_net/init" in str(err.value)
    assert not dest.parent.exists() or not any(dest.parent.iterdir())
