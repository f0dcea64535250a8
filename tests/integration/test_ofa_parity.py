"""Parity with the reference `ofa` package: same keys, same outputs, same MACs, same BN recalibration.

The reference supernets are built with the OFA model-zoo settings, randomised (weights, BN
statistics, kernel transform matrices), saved with `torch.save`, and loaded into ours with
`load_supernet_weights`. Subnets come from the reference's own `sample_active_subnet()`. Before each
output comparison the reference's BN statistics are calibrated for the active subnet and copied into
ours, so the compared logits are O(1) and depend on the input (checked).
"""
from __future__ import annotations

import random
import re

import pytest
import torch
from torch import nn

from ofa_deploy.compat.checkpoint import load_supernet_weights
from ofa_deploy.errors import CheckpointError
from ofa_deploy.nn.bn import recalibrate_bn
from ofa_deploy.predictors.macs import count_subnet
from ofa_deploy.supernets import Supernet, create_supernet
from tests.export_helpers import assert_close_scaled, assert_input_dependent, calibrate_bn, randomize_for_parity
from tests.ofa_reference import REFERENCE_SUPERNETS

pytestmark = pytest.mark.reference

RES = 128
N_RANDOM = 4
# relative to the scale of the reference logits (assert_close_scaled). float32 rounding differences: MobileNetV3
# up to ~1e-5, ProxylessNAS / ResNet ~1e-6; in float64 ours and ofa agree to ~1e-14.
TOL = 5e-5



def _reference(ofa_ref, name: str) -> nn.Module:
    cls, kwargs = REFERENCE_SUPERNETS[name]
    return randomize_for_parity(getattr(ofa_ref, cls)(dropout_rate=0, **kwargs), input_shape=(2, 3, RES, RES))


@pytest.fixture(scope="module", params=list(REFERENCE_SUPERNETS))
def pair(request, ofa_ref, tmp_path_factory) -> tuple[str, nn.Module, Supernet, str]:
    name = request.param
    ref = _reference(ofa_ref, name)
    path = tmp_path_factory.mktemp("ckpt") / f"{name}.pth"
    torch.save({"state_dict": ref.state_dict()}, path)
    ours = load_supernet_weights(create_supernet(name), str(path)).eval()
    return name, ref, ours, str(path)


def _sample(ref: nn.Module, seed: int) -> dict:
    state = random.getstate()
    random.seed(seed)
    try:
        return ref.sample_active_subnet()
    finally:
        random.setstate(state)


def test_state_dict_keys_and_shapes_equal_ofa(pair) -> None:
    _, ref, ours, _ = pair
    a, b = ours.state_dict(), ref.state_dict()
    assert list(a) == list(b)
    assert all(a[k].shape == b[k].shape for k in a)
    assert all(torch.equal(a[k], b[k]) for k in a)  # loaded exactly
    eps = {m.eps for m in ours.modules() if isinstance(m, nn.BatchNorm2d)}
    assert eps == {m.eps for m in ref.modules() if isinstance(m, nn.BatchNorm2d)}


def test_outputs_and_macs_equal_ofa(pair, ofa_ref) -> None:
    name, ref, ours, _ = pair
    x = torch.randn(2, 3, RES, RES, generator=torch.Generator().manual_seed(2))
    archs = [_sample(ref, seed) for seed in range(N_RANDOM)]
    space = ours.space
    worst = 0.0
    before = {k: v.clone() for k, v in ref.state_dict().items()}
    try:
        for i, arch in enumerate(archs + ["min", "max"]):
            if arch in ("min", "max"):
                cfg = space.min_config(RES) if arch == "min" else space.max_config(RES)
                ref.set_active_subnet(**cfg.to_ofa())
            else:
                ref.set_active_subnet(**arch)
                cfg = space.from_ofa(arch, resolution=RES)
            ours.set_active(cfg)
            # statistics for this subnet (one set cannot suit every subnet), identical in both supernets
            calibrate_bn(ref, torch.randn(4, 3, RES, RES, generator=torch.Generator().manual_seed(100 + i)))
            ours.load_state_dict(ref.state_dict())
            with torch.no_grad():
                want = assert_input_dependent(ref(x))
                got = ours(x)
                ref_sub = ref.get_active_subnet().eval()
                got_sub = ours.extract()(x)
                want_sub = ref_sub(x)
            for label, out in (("ours", got), ("ours extracted", got_sub), ("ofa extracted", want_sub)):
                worst = max(worst, assert_close_scaled(out, want, rel=TOL, msg=f"{name} {cfg.to_string()}: {label}"))
            # OFA's hook counter accumulates in float32 (ResNet totals ~1e9 are off by a few ulp): relative 1e-6
            assert count_subnet(space, cfg).macs == pytest.approx(
                ofa_ref.count_net_flops(ref_sub, (1, 3, RES, RES)), rel=1e-6, abs=0)
    finally:  # leave the shared fixtures as they were
        ref.load_state_dict(before)
        ours.load_state_dict(before)
    print(f"{name}: worst |ours - ofa| / std {worst:.2e}")


def test_legacy_mobile_inverted_conv_names_load(pair, tmp_path) -> None:
    name, ref, ours, _ = pair
    if not name.startswith(("ofa_mbv3", "ofa_proxyless")):
        pytest.skip("ResNet checkpoints never had mobile_inverted_conv keys")
    legacy = {re.sub(r"^(blocks\.\d+)\.conv\.", r"\1.mobile_inverted_conv.", k): v for k, v in ref.state_dict().items()}
    assert "blocks.1.mobile_inverted_conv.depth_conv.conv.5to3_matrix" in legacy
    path = tmp_path / "legacy.pth"
    torch.save({"state_dict": legacy}, path)
    fresh = load_supernet_weights(create_supernet(name), path)
    for key, value in ours.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value), key


def test_mismatching_checkpoints_raise_naming_the_key(pair, tmp_path) -> None:
    name, ref, ours, path = pair
    state = dict(ref.state_dict())
    removed = next(k for k in state if k.endswith("bn.bn.running_var") or k.endswith("bn.running_var"))
    del state[removed]
    with pytest.raises(CheckpointError, match=re.escape(removed)):
        load_supernet_weights(ours, state)
    if name == "ofa_mbv3_w10":  # a w1.0 checkpoint does not fit the w1.2 supernet
        other = create_supernet("ofa_mbv3_w12")
        with pytest.raises(CheckpointError, match=r"first_conv\.conv\.weight: checkpoint \(16, 3, 3, 3\) vs model "
                                                  r"\(24, 3, 3, 3\)"):
            load_supernet_weights(other, path)
    # the failed loads left the supernet as it was
    assert all(torch.equal(v, ref.state_dict()[k]) for k, v in ours.state_dict().items())


def test_bn_recalibration_equals_ofa_set_running_statistics(pair) -> None:
    name, ref, ours, _ = pair
    if name != "ofa_mbv3_w10":
        pytest.skip("one family is enough; the hooks are family-independent")
    from ofa.imagenet_classification.elastic_nn.utils import set_running_statistics

    arch = _sample(ref, 42)
    cfg = ours.space.from_ofa(arch, resolution=RES)
    g = torch.Generator().manual_seed(3)
    batches = [(torch.randn(2, 3, RES, RES, generator=g), torch.zeros(2)) for _ in range(3)]
    ref_before = {k: v.clone() for k, v in ref.state_dict().items()}
    ours_before = {k: v.clone() for k, v in ours.state_dict().items()}
    try:
        ref.set_active_subnet(**arch)
        set_running_statistics(ref, batches)
        recalibrate_bn(ours, batches, supernet_config=cfg)
        a, b = ours.state_dict(), ref.state_dict()
        changed = [k for k in a if not torch.equal(a[k], ours_before[k])]
        assert changed
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5, msg=key)
    finally:  # leave the shared fixtures as they were
        ref.load_state_dict(ref_before)
        ours.load_state_dict(ours_before)
