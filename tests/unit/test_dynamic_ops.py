"""Dynamic primitives: kernel transforms, prefix slicing of conv / BN / SE / linear, layer copy_to."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ofa_deploy.errors import ConfigError
from ofa_deploy.nn.dynamic_layers import DynamicBottleneck, DynamicMBConv
from ofa_deploy.nn.layers import SqueezeExcite, build_layer
from ofa_deploy.nn.ops import (
    DynamicBatchNorm2d,
    DynamicConv2d,
    DynamicDepthwiseConv2d,
    DynamicLinear,
    DynamicSE,
    centre_crop,
    se_hidden,
)
from ofa_deploy.spaces import LayerSpec

G = torch.Generator().manual_seed(0)



def _randn(*shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=G)


def test_transform_matrices_are_named_like_ofa_and_start_as_identity() -> None:
    conv = DynamicDepthwiseConv2d(8, [7, 3, 5])
    names = [n for n, _ in conv.named_parameters()]
    assert names == ["5to3_matrix", "7to5_matrix", "conv.weight"]
    assert torch.equal(conv.get_parameter("7to5_matrix"), torch.eye(25))
    assert [n for n, _ in DynamicDepthwiseConv2d(8, [3, 7]).named_parameters()] == ["7to3_matrix", "conv.weight"]
    # identity matrices: smaller kernels are plain centre crops
    assert torch.equal(conv.active_filter(8, 5), centre_crop(conv.conv.weight, 5))
    assert torch.equal(conv.active_filter(8, 3), centre_crop(conv.conv.weight, 3))
    with pytest.raises(ConfigError, match="kernel size 4"):
        conv.active_filter(8, 4)


def test_kernel_transform_is_chained_through_adjacent_sizes() -> None:
    conv = DynamicDepthwiseConv2d(12, [3, 5, 7], stride=2)
    with torch.no_grad():
        conv.get_parameter("7to5_matrix").copy_(_randn(25, 25))
        conv.get_parameter("5to3_matrix").copy_(_randn(9, 9))
    w7 = conv.conv.weight[:6]
    m75, m53 = conv.get_parameter("7to5_matrix"), conv.get_parameter("5to3_matrix")
    w5 = (centre_crop(w7, 5).reshape(6, 25) @ m75.T).reshape(6, 1, 5, 5)
    w3 = (centre_crop(w5, 3).reshape(6, 9) @ m53.T).reshape(6, 1, 3, 3)
    torch.testing.assert_close(conv.active_filter(6, 5), w5)
    torch.testing.assert_close(conv.active_filter(6, 3), w3)
    assert torch.equal(conv.active_filter(6, 7), w7)
    x = _randn(2, 6, 9, 9)
    torch.testing.assert_close(conv(x, 3), F.conv2d(x, w3, None, 2, 1, 1, 6))
    assert conv(x, 5).shape == (2, 6, 5, 5)
    # gradients reach the matrices (they are trainable parameters)
    conv(x, 3).sum().backward()
    assert conv.get_parameter("7to5_matrix").grad is not None and conv.get_parameter("5to3_matrix").grad.abs().sum() > 0


def test_dynamic_conv_and_linear_slice_prefixes() -> None:
    conv = DynamicConv2d(16, 32, kernel_size=3, stride=2)
    x = _randn(1, 10, 8, 8)
    torch.testing.assert_close(conv(x, 20), F.conv2d(x, conv.conv.weight[:20, :10], None, 2, 1))
    assert conv(_randn(1, 16, 8, 8)).shape == (1, 32, 4, 4)
    lin = DynamicLinear(16, 8)
    z = _randn(3, 12)
    torch.testing.assert_close(lin(z, 5), z @ lin.linear.weight[:5, :12].T + lin.linear.bias[:5])
    static = nn.Linear(12, 5)
    lin.copy_to(static)
    torch.testing.assert_close(static(z), lin(z, 5))


def test_dynamic_bn_uses_and_updates_only_the_prefix() -> None:
    dbn = DynamicBatchNorm2d(16, eps=1e-3)
    with torch.no_grad():
        dbn.bn.running_mean.copy_(_randn(16))
        dbn.bn.running_var.copy_(torch.rand(16, generator=G) + 0.5)
        dbn.bn.weight.copy_(_randn(16))
    ref = nn.BatchNorm2d(6, eps=1e-3)
    ref.load_state_dict({k: (v[:6] if v.dim() else v) for k, v in dbn.bn.state_dict().items()})
    x = _randn(4, 6, 5, 5)
    dbn.eval(), ref.eval()
    torch.testing.assert_close(dbn(x), ref(x))
    tail_mean = dbn.bn.running_mean[6:].clone()
    dbn.train(), ref.train()
    torch.testing.assert_close(dbn(x), ref(x))
    torch.testing.assert_close(dbn.bn.running_mean[:6], ref.running_mean)
    torch.testing.assert_close(dbn.bn.running_var[:6], ref.running_var)
    assert torch.equal(dbn.bn.running_mean[6:], tail_mean)
    assert int(dbn.bn.num_batches_tracked) == int(ref.num_batches_tracked) == 1
    target = nn.BatchNorm2d(6, eps=1e-3)
    dbn.copy_to(target)
    assert torch.equal(target.running_var, dbn.bn.running_var[:6])


def test_dynamic_se_hidden_width_and_copy() -> None:
    se = DynamicSE(144)
    assert se.fc.reduce.out_channels == se_hidden(144) == 40
    assert se_hidden(72) == 24 and se_hidden(96) == 24 and se_hidden(120) == 32
    x = _randn(2, 72, 4, 4)
    static = SqueezeExcite(72, se_hidden(72))
    se.copy_to(static)
    torch.testing.assert_close(se(x), static(x))


@pytest.mark.parametrize("kernel,expand_in,se", [(3, 24, True), (5, 16, False), (7, 24, False)])
def test_dynamic_mbconv_copy_to_static_layer(kernel: int, expand_in: int, se: bool) -> None:
    big = LayerSpec(kind="mbconv", role="block", in_channels=24, out_channels=32, in_size=8, out_size=4,
                    kernel_size=7, stride=2, mid_channels=144, expand=True, se=se, act="h_swish")
    block = DynamicMBConv(big, kernel_sizes=(3, 5, 7))
    with torch.no_grad():
        for name, p in block.named_parameters():
            if name.endswith("_matrix"):
                p.add_(0.1 * _randn(*p.shape))
    block.eval()
    spec = LayerSpec(kind="mbconv", role="block", in_channels=24, out_channels=32, in_size=8, out_size=4,
                     kernel_size=kernel, stride=2, mid_channels=96, expand=True, se=se, act="h_swish")
    static = build_layer(spec).eval()
    block.copy_to(static, spec)
    x = _randn(1, 24, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(static(x), block(x, spec), rtol=0, atol=1e-6)


def test_dynamic_bottleneck_copy_to_static_layer() -> None:
    big = LayerSpec(kind="bottleneck", role="block", in_channels=64, out_channels=256, in_size=8, out_size=4,
                    kernel_size=3, stride=2, mid_channels=88, act="relu", residual=True, downsample="avgpool_conv")
    block = DynamicBottleneck(big).eval()
    spec = LayerSpec(kind="bottleneck", role="block", in_channels=48, out_channels=208, in_size=8, out_size=4,
                     kernel_size=3, stride=2, mid_channels=48, act="relu", residual=True, downsample="avgpool_conv")
    static = build_layer(spec).eval()
    block.copy_to(static, spec)
    x = _randn(1, 48, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(static(x), block(x, spec), rtol=0, atol=1e-6)
