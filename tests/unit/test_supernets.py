"""Supernets: extract == forward for random subnets, supernet untouched, MACs, configs, errors, checkpoints."""
from __future__ import annotations

import hashlib
import json
import time

import numpy as np
import pytest
import torch
from torch import nn

from ofa_deploy.compat.checkpoint import load_supernet_weights
from ofa_deploy.compat.released import cache_dir, download, supernet_weights
from ofa_deploy.errors import CheckpointError, ConfigError, UnknownNameError
from ofa_deploy.nn.bn import recalibrate_bn
from ofa_deploy.nn.layers import SubnetModel
from ofa_deploy.predictors.macs import count_module, count_subnet
from ofa_deploy.spaces import SubnetConfig
from ofa_deploy.supernets import Supernet, create_supernet, list_supernets
from tests.export_helpers import assert_close_scaled, assert_input_dependent, calibrate_bn, randomize_for_parity

RES = 128
N_RANDOM = 20
TOL = 1e-5  # relative to the scale of the supernet's logits (assert_close_scaled)
BN_STATS = ("running_mean", "running_var", "num_batches_tracked")



@pytest.fixture(scope="module", params=["ofa_mbv3_w10", "ofa_mbv3_w12", "ofa_proxyless_w13", "ofa_resnet50"])
def supernet(request: pytest.FixtureRequest) -> Supernet:
    return randomize_for_parity(create_supernet(request.param), input_shape=(2, 3, RES, RES))


def _configs(net: Supernet) -> list[SubnetConfig]:
    space = net.space
    return [space.sample(seed, resolution=RES) for seed in range(N_RANDOM)] + [
        space.min_config(RES), space.max_config(RES)]


def test_extract_matches_supernet_forward(supernet: Supernet) -> None:
    x = torch.randn(2, 3, RES, RES, generator=torch.Generator().manual_seed(1))
    calibration = torch.Generator().manual_seed(2)
    weights = {k: v.clone() for k, v in supernet.state_dict().items() if not k.endswith(BN_STATS)}
    worst, extract_s = 0.0, []
    for cfg in _configs(supernet):
        supernet.set_active(cfg)
        # BN statistics for this subnet (one set cannot suit every subnet): O(1), input-dependent logits
        calibrate_bn(supernet, torch.randn(2, 3, RES, RES, generator=calibration))
        stats = {k: v.clone() for k, v in supernet.state_dict().items() if k.endswith(BN_STATS)}
        with torch.no_grad():
            expected = assert_input_dependent(supernet(x))
        t0 = time.perf_counter()
        sub = supernet.extract(cfg)
        extract_s.append(time.perf_counter() - t0)
        assert isinstance(sub, SubnetModel) and not sub.training
        assert not any(isinstance(m, Supernet) for m in sub.modules())
        with torch.no_grad():
            got = sub(x)
        assert got.shape == (2, supernet.space.n_classes)
        worst = max(worst, assert_close_scaled(got, expected, rel=TOL, msg=cfg.to_string()))
        after = supernet.state_dict()
        for key, value in stats.items():
            assert torch.equal(after[key], value), f"extract changed {key}"
        # analytic MACs (the walk) == hook-counted MACs of the extracted module
        assert count_subnet(supernet.space, cfg).macs == count_module(sub, (1, 3, RES, RES)).macs
        assert count_subnet(supernet.space, cfg).params == sum(
            p.numel() for p in sub.parameters()), "walk params == extracted params"
        assert SubnetConfig.from_dict(sub.meta["config"]) == cfg and sub.meta["space"] == supernet.space.name
        # configs round-trip through dict, JSON and the compact string
        assert SubnetConfig.from_dict(cfg.to_dict()) == cfg
        assert SubnetConfig.from_json(json.dumps(cfg.to_dict())) == cfg == SubnetConfig.from_json(cfg.to_json())
        assert SubnetConfig.from_string(cfg.to_string()) == cfg
    after = supernet.state_dict()  # calibration writes only BN statistics: any other change came from extract
    assert set(after) == set(weights) | set(stats)
    for key, value in weights.items():
        assert torch.equal(after[key], value), f"extract changed {key}"
    print(f"{supernet.space.name}: worst diff / std {worst:.2e}, extract median {np.median(extract_s) * 1e3:.1f} ms")


def test_extract_without_cfg_uses_active_and_is_independent(supernet: Supernet) -> None:
    cfg = supernet.space.sample(7, resolution=RES)
    with supernet.active(cfg):
        sub = supernet.extract()
    assert SubnetConfig.from_dict(sub.meta["config"]) == cfg
    first = next(iter(sub.parameters()))
    src = dict(supernet.named_parameters())
    assert all(first.data_ptr() != p.data_ptr() for p in src.values())  # no shared storage


def test_active_context_restores_previous_config() -> None:
    net = create_supernet("ofa_mbv3_w10", resolutions=(32,), width_mult=0.5, n_classes=10)
    a, b = net.space.sample(1), net.space.sample(2)
    net.set_active(a)
    with net.active(b):
        assert net.active_config == b
    assert net.active_config == a
    with pytest.raises(RuntimeError), net.active(b):
        raise RuntimeError("boom")
    assert net.active_config == a
    assert net.sample_active(5) == net.sample_active(5) == net.active_config


def test_bad_configs_are_rejected_with_clear_errors() -> None:
    net = create_supernet("ofa_mbv3_w10", resolutions=(32,), width_mult=0.5, n_classes=10)
    good = net.space.max_config()
    previous = net.active_config
    with pytest.raises(ConfigError, match=r"kernel_sizes\[3\] = 9 is outside the space; allowed values: 3, 5, 7"):
        net.set_active(good.replace(kernel_sizes=(*good.kernel_sizes[:3], 9, *good.kernel_sizes[4:])))
    with pytest.raises(ConfigError, match="depths needs 5 entries"):
        net.set_active(good.replace(depths=(4, 4, 4)))
    with pytest.raises(ConfigError, match="expand_ratios needs 20 entries"):
        net.extract(good.replace(expand_ratios=(6,) * 19))
    with pytest.raises(ConfigError, match="resolution = 224 is outside"):
        net.set_active(good.replace(resolution=224))
    with pytest.raises(ConfigError, match="width_indices is only for the ResNet space"):
        net.set_active(good.replace(width_indices=(0,) * 6))
    assert net.active_config == previous  # a rejected config changes nothing
    res = create_supernet("ofa_resnet50", resolutions=(32,), n_classes=10)
    with pytest.raises(ConfigError, match="width_indices needs 6 entries"):
        res.set_active(res.space.max_config().replace(width_indices=(0, 1)))


def test_unknown_supernet_name_suggests_close_matches() -> None:
    with pytest.raises(UnknownNameError, match="Did you mean 'ofa_mbv3_w12'") as info:
        create_supernet("ofa_mbv3_w1")
    assert "ofa_resnet50" in str(info.value)
    assert list_supernets() == ["ofa_mbv3_w10", "ofa_mbv3_w12", "ofa_proxyless_w13", "ofa_resnet50"]


def test_no_class_level_mutable_state() -> None:
    from ofa_deploy.nn import dynamic_layers, ops

    for mod in (ops, dynamic_layers):
        for obj in vars(mod).values():
            if isinstance(obj, type) and issubclass(obj, nn.Module):
                own = {k: v for k, v in vars(obj).items() if not k.startswith("__")}
                assert not [k for k, v in own.items() if isinstance(v, (bool, int, float, list, dict, set))], obj


# ---- BN recalibration ----------------------------------------------------------------------------
@pytest.fixture()
def small_net() -> Supernet:
    return randomize_for_parity(create_supernet("ofa_mbv3_w10", resolutions=(32,), width_mult=0.5, n_classes=10),
                                seed=3, input_shape=(4, 3, 32, 32))


def _batches(n: int = 3, size: int = 4) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(11)
    return [torch.randn(size, 3, 32, 32, generator=g) * 2 + 0.5 for _ in range(n)]


def test_recalibrate_static_model_matches_manual_statistics(small_net: Supernet) -> None:
    sub = small_net.extract(small_net.space.sample(4))
    sub.train()
    batches = _batches()
    first_bn = sub.layers[0].bn
    stem = sub.layers[0].conv
    with torch.no_grad():
        feats = [stem(b) for b in batches]
    want_mean = torch.stack([f.mean((0, 2, 3)) for f in feats]).mean(0)
    want_var = torch.stack([f.var((0, 2, 3), unbiased=False) for f in feats]).mean(0)
    tracked = first_bn.num_batches_tracked.clone()
    assert recalibrate_bn(sub, [(b, torch.zeros(4)) for b in batches]) == 12
    torch.testing.assert_close(first_bn.running_mean, want_mean, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(first_bn.running_var, want_var, rtol=1e-5, atol=1e-6)
    assert torch.equal(first_bn.num_batches_tracked, tracked)
    assert sub.training and all(m.training for m in sub.modules())  # mode restored


def test_recalibrate_supernet_prefix_equals_recalibrated_extract(small_net: Supernet) -> None:
    cfg = small_net.space.sample(9)
    other = small_net.space.sample(10)
    small_net.set_active(other)
    batches = _batches()
    sub = small_net.extract(cfg)
    recalibrate_bn(sub, batches)
    before = {k: v.clone() for k, v in small_net.state_dict().items()}
    recalibrate_bn(small_net, batches, supernet_config=cfg)
    assert small_net.active_config == other and not small_net.training
    fresh = small_net.extract(cfg)
    x = _batches(1)[0]
    with torch.no_grad():
        assert_close_scaled(fresh(x), assert_input_dependent(sub(x)), rel=1e-5)
    for key, new in fresh.state_dict().items():
        torch.testing.assert_close(new, sub.state_dict()[key], rtol=1e-5, atol=1e-6)
    after = small_net.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.endswith(("running_mean", "running_var")) for k in changed)
    # only the prefix the subnet uses changed
    width = {spec_key: None for spec_key in changed}
    for key in changed:
        diff = (before[key] != after[key]).nonzero().flatten()
        width[key] = int(diff.max()) + 1
        assert width[key] <= before[key].numel()
    sliced = [k for k in changed if width[k] < before[k].numel()]
    assert sliced, "some BN of a non-max subnet uses a strict prefix"
    with pytest.raises(ConfigError, match="only for supernets"):
        recalibrate_bn(sub, batches, supernet_config=cfg)


# ---- checkpoints ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ckpt_pair() -> tuple[Supernet, Supernet]:
    """A small ResNet variant (every test loads a whole state dict into `dst`, so sharing it is safe)."""
    small = {"resolutions": (32,), "n_classes": 10, "width_mults": (0.25, 0.35), "expand_ratios": (0.2, 0.25)}
    src = randomize_for_parity(create_supernet("ofa_resnet50", **small), seed=5, input_shape=(2, 3, 32, 32))
    dst = create_supernet("ofa_resnet50", **small)
    return src, dst


def test_checkpoint_roundtrip_file_and_wrapped(ckpt_pair, tmp_path) -> None:
    src, dst = ckpt_pair
    path = tmp_path / "net.pth"
    torch.save({"state_dict": src.state_dict(), "epoch": 3}, path)
    load_supernet_weights(dst, path)
    for key, value in src.state_dict().items():
        assert torch.equal(dst.state_dict()[key], value), key


def test_checkpoint_bridges_static_dynamic_nesting(ckpt_pair) -> None:
    src, dst = ckpt_pair
    flat = {k.replace(".bn.bn.", ".bn.").replace(".linear.linear.", ".linear."): v for k, v in src.state_dict().items()}
    assert "classifier.linear.weight" in flat
    load_supernet_weights(dst, flat)
    assert torch.equal(dst.classifier.linear.linear.weight, src.classifier.linear.linear.weight)


def test_checkpoint_errors_name_the_keys(ckpt_pair) -> None:
    src, dst = ckpt_pair
    state = dict(src.state_dict())
    state["blocks.3.conv2.conv.conv.weight"] = torch.zeros(8, 8, 3, 3)
    with pytest.raises(CheckpointError, match=r"blocks\.3\.conv2\.conv\.conv\.weight: checkpoint \(8, 8, 3, 3\)"):
        load_supernet_weights(dst, state)
    state = dict(src.state_dict())
    del state["input_stem.2.bn.bn.running_var"]
    with pytest.raises(CheckpointError, match=r"missing key\(s\): input_stem\.2\.bn\.bn\.running_var"):
        load_supernet_weights(dst, state)
    state = dict(src.state_dict())
    state["blocks.99.conv1.conv.conv.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match=r"unexpected key\(s\): blocks\.99\.conv1"):
        load_supernet_weights(dst, state)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_supernet_weights(dst, "/nonexistent/ckpt.pth")
    with pytest.raises(CheckpointError, match="must be a state dict"):
        load_supernet_weights(dst, {"state_dict": {"a": 1}})


def test_download_cache_and_sha256(tmp_path) -> None:
    src = tmp_path / "remote.bin"
    payload = b"ofa-weights" * 1000
    src.write_bytes(payload)
    url = src.as_uri()
    digest = hashlib.sha256(payload).hexdigest()
    dest = tmp_path / "cache" / "supernets" / "w.bin"
    assert download(url, dest, sha256=digest) == dest and dest.read_bytes() == payload
    src.unlink()  # cached: no fetch needed any more
    assert download(url, dest, sha256=digest) == dest
    assert download(url, dest) == dest
    with pytest.raises(CheckpointError, match="could not download"):  # stale cache + source gone
        download(url, dest, sha256="0" * 64)
    src.write_bytes(payload)
    with pytest.raises(CheckpointError, match="sha256 of"):
        download(url, tmp_path / "cache" / "other.bin", sha256="0" * 64)
    leftovers = [p.name for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert leftovers == ["w.bin"], leftovers  # no partial or mismatching files left behind
    with pytest.raises(CheckpointError, match="offline"):
        download((tmp_path / "missing.bin").as_uri(), tmp_path / "cache" / "m.bin")


def test_released_weights_use_the_cache_without_network(tmp_path, monkeypatch) -> None:
    from ofa_deploy.api import create_supernet as supernet_with_weights

    monkeypatch.setenv("OFA_DEPLOY_CACHE", str(tmp_path / "env-cache"))
    assert cache_dir() == tmp_path / "env-cache" and cache_dir(tmp_path) == tmp_path
    name = "ofa_proxyless_w13"
    released = randomize_for_parity(create_supernet(name), seed=8, input_shape=(2, 3, 64, 64))
    cached = tmp_path / "env-cache" / "supernets" / supernet_weights()[name].filename
    cached.parent.mkdir(parents=True)
    torch.save({"state_dict": released.state_dict()}, cached)
    net = supernet_with_weights(name, weights="released")
    assert all(torch.equal(v, released.state_dict()[k]) for k, v in net.state_dict().items()) and not net.training
    with pytest.raises(UnknownNameError, match="Did you mean 'ofa_resnet50'"):
        supernet_with_weights("ofa_resnet5", weights="released")


def test_one_helper_builds_a_supernet_with_any_kind_of_weights(tmp_path) -> None:
    """`ofa_deploy.create_supernet` (which the CLI calls): a checkpoint path, or an ofa-deploy checkpoint with its
    sidecar (which names the supernet and its space)."""
    from ofa_deploy.api import create_supernet as with_weights
    from ofa_deploy.demo import QUICK_RECIPE, create_demo_supernet, save_demo_supernet

    demo = create_demo_supernet(QUICK_RECIPE)
    save_demo_supernet(demo, tmp_path / "demo.pt", QUICK_RECIPE, {})
    for name in (None, "ofa_mbv3_w10", "demo_mbv3_digits"):
        loaded = with_weights(name, weights=tmp_path / "demo.pt")
        assert loaded.space.resolutions == demo.space.resolutions and not loaded.training
        assert all(torch.equal(v, demo.state_dict()[k]) for k, v in loaded.state_dict().items())
    with pytest.raises(ConfigError, match="not of supernet ofa_resnet50"):
        with_weights("ofa_resnet50", weights=tmp_path / "demo.pt")
    with pytest.raises(ConfigError, match="the sidecar fixes the space"):
        with_weights(None, weights=tmp_path / "demo.pt", resolutions=(32,))

    net = randomize_for_parity(create_supernet("ofa_mbv3_w10", resolutions=(32,)), seed=3, input_shape=(2, 3, 32, 32))
    torch.save({"state_dict": net.state_dict()}, tmp_path / "plain.pth")
    loaded = with_weights("ofa_mbv3_w10", weights=tmp_path / "plain.pth", resolutions=(32,))
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in loaded.state_dict().items()) and not loaded.training
    with pytest.raises(ConfigError, match="a supernet name is needed"):
        with_weights(None, weights=tmp_path / "plain.pth")
