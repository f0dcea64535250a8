"""The hook counter `count_module`: equal to the analytic walk, to OFA's count_net_flops, side-effect free."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from ofa_deploy.errors import ConfigError
from ofa_deploy.nn.layers import SubnetModel
from ofa_deploy.predictors.macs import count_layers, count_module, count_subnet
from ofa_deploy.spaces import SubnetConfig, get_space, list_spaces



def _resolution(name: str) -> int:
    return 64 if name == "ofa_resnet50" else 128


@pytest.mark.parametrize("name", list_spaces())
def test_hook_counter_equals_analytic_walk(name):
    space = get_space(name)
    res = _resolution(name)
    cfgs = [space.max_config(), space.min_config(), *space.sample_batch(2, rng=11)]
    for cfg in cfgs:
        specs = space.walk_layers(cfg, res)
        hooked = count_module(SubnetModel(specs), (1, 3, res, res))
        analytic = count_layers(specs)
        assert (hooked.macs, hooked.params) == (analytic.macs, analytic.params), cfg.to_string()


def test_hook_counter_equals_reference_on_reference_subnet(ofa_ref):
    """An OFA-extracted static subnet: our hook counter == OFA's count_net_flops == our analytic count."""
    torch.manual_seed(0)
    sup = ofa_ref.OFAMobileNetV3(n_classes=1000, dropout_rate=0, width_mult=1.0, ks_list=[3, 5, 7],
                                 expand_ratio_list=[3, 4, 6], depth_list=[2, 3, 4])
    space = get_space("ofa_mbv3_w10")
    for seed in range(2):
        torch.manual_seed(seed)
        arch = sup.sample_active_subnet()
        sub = sup.get_active_subnet(preserve_weight=True)
        r = 160
        ref_macs = ofa_ref.count_net_flops(sub, (1, 3, r, r))
        ours = count_module(sub, (1, 3, r, r))
        assert ours.macs == pytest.approx(float(ref_macs), rel=1e-7)  # OFA accumulates in float32
        assert ours.params == ofa_ref.count_parameters(sub)
        assert ours.macs == count_subnet(space, SubnetConfig.from_ofa(arch, r)).macs


def test_hook_counter_by_hand():
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=True),   # 3*8*9 * 4*4 = 3456
        nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 8, 5, padding=2, groups=8, bias=False),  # 1*8*25 * 4*4 = 3200
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(8, 10),                                     # 80
    )
    cost = count_module(net, (1, 3, 8, 8))
    assert cost.macs == 3456 + 3200 + 80
    assert cost.params == sum(p.numel() for p in net.parameters())
    assert count_module(net, (4, 3, 8, 8)).macs == cost.macs  # per sample, whatever the batch
    assert cost.flops == 2 * cost.macs


def test_hook_counter_leaves_the_model_alone():
    space = get_space("ofa_mbv3_w10")
    model = SubnetModel(space.walk_layers(space.min_config(), 128)).train()
    ran_on = []
    model.register_forward_hook(lambda module, *_: ran_on.append(module))
    before = copy.deepcopy(model.state_dict())
    hooks_before = {name: dict(m._forward_hooks) for name, m in model.named_modules()}
    count_module(model, (1, 3, 128, 128))
    assert model.training and all(m.training for m in model.modules())
    assert {name: dict(m._forward_hooks) for name, m in model.named_modules()} == hooks_before
    assert len(ran_on) == 1 and ran_on[0] is not model  # the forward ran on a copy (which keeps user hooks)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BN running stats untouched


def test_hook_counter_rejects_bad_shapes():
    with pytest.raises(ConfigError, match="input_shape"):
        count_module(nn.Linear(2, 2), (0, 2))
