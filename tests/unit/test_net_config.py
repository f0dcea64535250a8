"""OFA net.config interop: the released specialized nets, the reference package both ways, errors."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch

from ofa_deploy.compat.net_config import (
    load_net_config,
    net_config_to_specs,
    parse_net_config,
    save_net_config,
    subnet_to_net_config,
)
from ofa_deploy.compat.static_weights import load_static_weights, to_ofa_state_dict
from ofa_deploy.errors import ConfigError
from ofa_deploy.nn.layers import SubnetModel
from ofa_deploy.predictors.macs import count_layers, count_module
from ofa_deploy.spaces import get_space
from tests.export_helpers import assert_input_dependent, randomize_for_parity

SPECIALIZED = {
    # file stem: (network class, run.config resolution)
    "flops-595M_top1-80.0_finetune-75": ("MobileNetV3", 236),
    "pixel1_lat-58ms_top1-76.9_finetune-75": ("MobileNetV3", 220),
    "cpu_lat-17ms_top1-75.7_finetune-25": ("ProxylessNASNets", 208),
}



@pytest.fixture(scope="module")
def specialized(ofa_reference_dir: Path) -> dict[str, Path]:
    return {stem: ofa_reference_dir / "specialized" / f"{stem}.net.config" for stem in SPECIALIZED}


@pytest.fixture(scope="module")
def get_net_by_name(ofa_ref):
    from ofa.imagenet_classification.networks import get_net_by_name

    return get_net_by_name


def _ofa_build(get_net_by_name, cfg: dict) -> torch.nn.Module:
    return get_net_by_name(cfg["name"]).build_from_config(copy.deepcopy(cfg)).eval()


# ---- the released specialized nets ------------------------------------------------------------
@pytest.mark.parametrize("stem", sorted(SPECIALIZED))
def test_specialized_net_builds_runs_and_counts(specialized, stem):
    path = specialized[stem]
    network, resolution = SPECIALIZED[stem]
    model = load_net_config(path)  # resolution from the run.config next to it
    assert model.input_resolution == resolution
    assert model.meta["net_config"] == network and model.meta["source"] == str(path)
    explicit = load_net_config(path, run_config=path.with_name(f"{stem}.run.config"))
    assert explicit.specs == model.specs
    assert model.bn_eps == (1e-3 if network == "ProxylessNASNets" else 1e-5)
    with torch.no_grad():
        out = model.eval()(torch.randn(1, 3, resolution, resolution, generator=torch.Generator().manual_seed(0)))
    assert out.shape == (1, 1000) and torch.isfinite(out).all()
    analytic = count_layers(model.specs)
    hooked = count_module(model, (1, 3, resolution, resolution))
    assert (analytic.macs, analytic.params) == (hooked.macs, hooked.params)
    if stem.startswith("flops-595M"):
        assert abs(analytic.macs / 1e6 - 595) <= 0.5
    if stem.startswith("pixel1_lat-58ms"):
        assert abs(analytic.macs / 1e6 - 230) <= 0.5  # OFA paper, Table 1: 76.9% top-1 at 230M MACs, 58 ms


@pytest.mark.parametrize("stem", sorted(SPECIALIZED))
def test_specialized_matches_reference_net(specialized, get_net_by_name, ofa_ref, stem, tmp_path):
    """Legacy-named config and checkpoint → same logits and MACs as the reference static net."""
    raw = json.loads(specialized[stem].read_text())
    snapshot = copy.deepcopy(raw)
    r = 128
    model = load_net_config(raw, resolution=r)
    assert raw == snapshot  # never mutates its input
    ref = randomize_for_parity(_ofa_build(get_net_by_name, raw), input_shape=(4, 3, r, r))  # O(1), input-dependent
    legacy = {k.replace(".conv.", ".mobile_inverted_conv.", 1) if k.startswith("blocks.") else k: v
              for k, v in ref.state_dict().items()}
    assert any(".mobile_inverted_conv." in k for k in legacy)
    ckpt = tmp_path / "init"
    torch.save({"state_dict": legacy}, ckpt)
    load_static_weights(model, ckpt)  # through the one reader, compat.checkpoint.read_state_dict
    x = torch.randn(2, 3, r, r, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x), assert_input_dependent(ref(x)), rtol=1e-4, atol=1e-5)
    ref_macs = ofa_ref.count_net_flops(ref, (1, 3, r, r))
    assert count_layers(model.specs).macs == pytest.approx(float(ref_macs), rel=1e-6)


# ---- writing net.configs the reference package consumes ----------------------------------------
CASES = [("ofa_mbv3_w10", 0, 128), ("ofa_mbv3_w12", 1, 160), ("ofa_proxyless_w13", 2, 128), ("ofa_resnet50", 3, 64),
         ("ofa_resnet50", 5, 64)]


@pytest.mark.parametrize(("name", "seed", "res"), CASES)
def test_subnet_to_net_config_round_trip_with_reference(get_net_by_name, name, seed, res):
    space = get_space(name)
    cfg = space.sample(seed)
    specs = space.walk_layers(cfg, res)
    torch.manual_seed(seed)
    model = randomize_for_parity(SubnetModel(specs, bn_eps=1e-3 if space.family == "proxyless" else 1e-5), seed=seed)
    net_config = json.loads(json.dumps(subnet_to_net_config(model)))  # JSON-able
    assert net_config["name"] == {"mbv3": "MobileNetV3", "proxyless": "ProxylessNASNets", "resnet": "ResNets"}[
        space.family]
    assert tuple(net_config_to_specs(net_config, resolution=res)) == tuple(specs)
    ref = _ofa_build(get_net_by_name, net_config)
    ref.load_state_dict(to_ofa_state_dict(model))
    x = torch.randn(2, 3, res, res, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(ref(x), assert_input_dependent(model(x)), rtol=1e-4, atol=1e-5)
    back = load_static_weights(SubnetModel(specs, bn_eps=model.bn_eps), ref.state_dict()).eval()
    with torch.no_grad():
        torch.testing.assert_close(back(x), model(x), rtol=0, atol=0)


def test_resnet_active_net_config_from_reference_supernet(ofa_ref):
    """OFA's ResNet get_active_net_config() holds an IdentityLayer object for the kept stem conv."""
    space = get_space("ofa_resnet50")
    sup = ofa_ref.OFAResNets(n_classes=1000, dropout_rate=0, depth_list=[0, 1, 2],
                             expand_ratio_list=[0.2, 0.25, 0.35], width_mult_list=[0.65, 0.8, 1.0]).eval()
    cfg = space.sample(7).replace(depths=(2, 0, 1, 2, 0))  # stem conv kept
    arch = cfg.to_ofa()
    arch.pop("image_size")
    sup.set_active_subnet(**arch)
    r = 64
    sub = randomize_for_parity(sup.get_active_subnet(preserve_weight=True), input_shape=(4, 3, r, r))
    net_config = sup.get_active_net_config()
    assert type(net_config["input_stem"][1]["shortcut"]).__name__ == "IdentityLayer"
    model = load_net_config(net_config, resolution=r)
    assert model.specs == tuple(space.walk_layers(cfg, r))
    load_static_weights(model, sub.state_dict())  # input_stem.1.conv.* → residual stem conv
    x = torch.randn(2, 3, r, r, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x), assert_input_dependent(sub(x)), rtol=1e-4, atol=1e-5)
    assert count_module(model, (1, 3, r, r)).macs == int(ofa_ref.count_net_flops(sub, (1, 3, r, r)))


def test_ofa_specialized_directory_layout(specialized, tmp_path):
    """OFA's release layout: ofa_specialized/<id>/net.config + run.config."""
    stem = "cpu_lat-17ms_top1-75.7_finetune-25"
    folder = tmp_path / stem
    folder.mkdir()
    (folder / "net.config").write_text(specialized[stem].read_text())
    (folder / "run.config").write_text(specialized[stem].with_name(f"{stem}.run.config").read_text())
    by_dir, by_file = load_net_config(folder), load_net_config(folder / "net.config")
    assert by_dir.input_resolution == by_file.input_resolution == 208
    assert by_dir.specs == by_file.specs == load_net_config(specialized[stem]).specs


def test_save_net_config_writes_loadable_pair(specialized, tmp_path):
    model = load_net_config(specialized["pixel1_lat-58ms_top1-76.9_finetune-75"])
    out = save_net_config(model, tmp_path / "mine.net.config", resolution=model.input_resolution)
    assert json.loads((tmp_path / "mine.run.config").read_text()) == {"image_size": 220}
    again = load_net_config(out)
    assert again.specs == model.specs and again.bn_eps == model.bn_eps
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.net.config", "mine.run.config"]  # no temp files


# ---- malformed configs ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def flops_cfg(specialized) -> dict:
    return json.loads(specialized["flops-595M_top1-80.0_finetune-75"].read_text())


def _edited(cfg: dict, edit) -> dict:
    cfg = copy.deepcopy(cfg)
    edit(cfg)
    return cfg


@pytest.mark.parametrize(("edit", "needles"), [
    (lambda c: c.pop("classifier"), ["missing", "classifier"]),
    (lambda c: c.update(name="EfficientNet"), ["EfficientNet", "MobileNetV3"]),
    (lambda c: c["blocks"][3]["mobile_inverted_conv"].update(name="FooLayer"),
     ["blocks[3]", "FooLayer", "MBConvLayer"]),
    (lambda c: c["blocks"][5]["mobile_inverted_conv"].update(in_channels=40),
     ["blocks[5].mobile_inverted_conv.in_channels = 40", "blocks[4]", "expected 48"]),
    (lambda c: c["blocks"][2]["mobile_inverted_conv"].pop("out_channels"), ["blocks[2]", "out_channels"]),
    (lambda c: c["blocks"][2]["mobile_inverted_conv"].update(stride=2), ["blocks[2]", "identity shortcut"]),
    (lambda c: c["blocks"][2].update(mobile_inverted_conv=None), ["blocks[2]", "mobile_inverted_conv"]),
    (lambda c: c["blocks"][1]["mobile_inverted_conv"].update(kernal_size=3), ["kernal_size"]),
    (lambda c: c["first_conv"].update(act_func="gelu"), ["first_conv.act_func", "gelu"]),
    (lambda c: c["classifier"].update(in_features=1280), ["classifier.in_features = 1280", "expected 1536"]),
    (lambda c: c["bn"].update(ws_eps=1e-5), ["ws_eps"]),
    (lambda c: c.update(blocks=[]), ["blocks"]),
])
def test_malformed_config_names_the_bad_entry(flops_cfg, edit, needles):
    with pytest.raises(ConfigError) as info:
        parse_net_config(_edited(flops_cfg, edit), 224)
    for needle in needles:
        assert needle in str(info.value)


def test_bad_files_and_run_configs(tmp_path):
    with pytest.raises(ConfigError, match="cannot read net.config"):
        load_net_config(tmp_path / "missing.net.config")
    (tmp_path / "bad.net.config").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_net_config(tmp_path / "bad.net.config")
    with pytest.raises(ConfigError, match="image_size"):
        net_config_to_specs({"name": "ResNets"}, run_config={"resolution": 224})
    with pytest.raises(ConfigError, match="several resolutions"):
        net_config_to_specs({"name": "ResNets"}, run_config={"image_size": [128, 160]})
