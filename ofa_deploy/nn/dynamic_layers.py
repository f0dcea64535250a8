"""Dynamic (elastic) layers of the OFA supernets.

Each layer is built at its largest size and runs at the setting described by a `LayerSpec`
(``forward(x, spec)``); ``copy_to(static_layer, spec)`` writes the active weights into the
matching static layer of `ofa_deploy.nn.layers` (``build_layer(spec)``). Submodule names follow
OFA's dynamic layers so supernet ``state_dict`` keys equal OFA's.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from ofa_deploy.nn.layers import build_activation
from ofa_deploy.nn.ops import (
    DynamicBatchNorm2d,
    DynamicConv2d,
    DynamicDepthwiseConv2d,
    DynamicLinear,
    DynamicSE,
)
from ofa_deploy.spaces import LayerSpec


def _conv_bn_act(conv: nn.Module, bn: nn.Module, act: str) -> nn.Sequential:
    parts: OrderedDict[str, nn.Module] = OrderedDict(conv=conv, bn=bn)
    if act != "none":
        parts["act"] = build_activation(act)
    return nn.Sequential(parts)


class DynamicMBConv(nn.Module):
    """Inverted residual with elastic kernel size and expand ratio (OFA's DynamicMBConvLayer).

    Built from the block's largest spec (largest kernel and mid width); the residual add is done by
    the enclosing `ResidualBlock`, as in OFA.
    """

    def __init__(self, max_spec: LayerSpec, *, kernel_sizes: Sequence[int], bn_eps: float = 1e-5,
                 bn_momentum: float = 0.1) -> None:
        super().__init__()
        cin, mid, cout, act = max_spec.in_channels, max_spec.mid_channels, max_spec.out_channels, max_spec.act
        self.inverted_bottleneck = _conv_bn_act(
            DynamicConv2d(cin, mid), DynamicBatchNorm2d(mid, bn_eps, bn_momentum), act
        ) if max_spec.expand else None
        self.depth_conv = _conv_bn_act(
            DynamicDepthwiseConv2d(mid, kernel_sizes, max_spec.stride), DynamicBatchNorm2d(mid, bn_eps, bn_momentum),
            act,
        )
        if max_spec.se:
            self.depth_conv.add_module("se", DynamicSE(mid))
        self.point_linear = _conv_bn_act(
            DynamicConv2d(mid, cout), DynamicBatchNorm2d(cout, bn_eps, bn_momentum), "none"
        )

    def forward(self, x: torch.Tensor, spec: LayerSpec) -> torch.Tensor:
        if self.inverted_bottleneck is not None:
            ib = self.inverted_bottleneck
            x = ib.act(ib.bn(ib.conv(x, spec.mid_channels)))
        dc = self.depth_conv
        x = dc.act(dc.bn(dc.conv(x, spec.kernel_size)))
        if spec.se:
            x = dc.se(x)
        pl = self.point_linear
        return pl.bn(pl.conv(x, spec.out_channels))

    @torch.no_grad()
    def copy_to(self, layer: nn.Module, spec: LayerSpec) -> None:
        """Write the weights of setting `spec` into a static `MBConvLayer` built from `spec`."""
        mid, cin, cout = spec.mid_channels, spec.in_channels, spec.out_channels
        if self.inverted_bottleneck is not None:
            layer.inverted_bottleneck.conv.weight.copy_(self.inverted_bottleneck.conv.active_filter(mid, cin))
            self.inverted_bottleneck.bn.copy_to(layer.inverted_bottleneck.bn)
        layer.depth_conv.conv.weight.copy_(self.depth_conv.conv.active_filter(mid, spec.kernel_size))
        self.depth_conv.bn.copy_to(layer.depth_conv.bn)
        if spec.se:
            self.depth_conv.se.copy_to(layer.depth_conv.se)
        layer.point_linear.conv.weight.copy_(self.point_linear.conv.active_filter(cout, mid))
        self.point_linear.bn.copy_to(layer.point_linear.bn)


class DynamicConvLayer(nn.Module):
    """conv + [bn] + act with elastic output width (OFA's DynamicConvLayer; ResNet stem)."""

    def __init__(self, max_spec: LayerSpec, *, bn_eps: float = 1e-5, bn_momentum: float = 0.1) -> None:
        super().__init__()
        self.conv = DynamicConv2d(max_spec.in_channels, max_spec.out_channels, max_spec.kernel_size, max_spec.stride)
        self.bn = DynamicBatchNorm2d(max_spec.out_channels, bn_eps, bn_momentum) if max_spec.use_bn else None
        self.act = build_activation(max_spec.act)

    def forward(self, x: torch.Tensor, spec: LayerSpec) -> torch.Tensor:
        x = self.conv(x, spec.out_channels)
        if self.bn is not None:
            x = self.bn(x)
        return self.act(x)

    @torch.no_grad()
    def copy_to(self, layer: nn.Module, spec: LayerSpec) -> None:
        """Write the weights of setting `spec` into a static `ConvLayer`."""
        layer.conv.weight.copy_(self.conv.active_filter(spec.out_channels, spec.in_channels))
        if self.bn is not None:
            self.bn.copy_to(layer.bn)


class DynamicLinearLayer(nn.Module):
    """Flatten + linear with elastic input width (OFA's DynamicLinearLayer; ResNet classifier)."""

    def __init__(self, max_spec: LayerSpec) -> None:
        super().__init__()
        self.linear = DynamicLinear(max_spec.in_channels, max_spec.out_channels, bias=max_spec.bias)

    def forward(self, x: torch.Tensor, spec: LayerSpec) -> torch.Tensor:
        return self.linear(torch.flatten(x, 1), spec.out_channels)

    @torch.no_grad()
    def copy_to(self, layer: nn.Module, spec: LayerSpec) -> None:
        """Write the weights of setting `spec` into a static `LinearLayer`."""
        self.linear.copy_to(layer.linear)


class DynamicBottleneck(nn.Module):
    """ResNet-D bottleneck with elastic in/mid/out width (OFA's DynamicResNetBottleneckBlock)."""

    def __init__(self, max_spec: LayerSpec, *, bn_eps: float = 1e-5, bn_momentum: float = 0.1) -> None:
        super().__init__()
        cin, mid, cout, k, s = (max_spec.in_channels, max_spec.mid_channels, max_spec.out_channels,
                                max_spec.kernel_size, max_spec.stride)
        self.conv1 = _conv_bn_act(DynamicConv2d(cin, mid), DynamicBatchNorm2d(mid, bn_eps, bn_momentum), max_spec.act)
        self.conv2 = _conv_bn_act(DynamicConv2d(mid, mid, k, s), DynamicBatchNorm2d(mid, bn_eps, bn_momentum),
                                  max_spec.act)
        self.conv3 = _conv_bn_act(DynamicConv2d(mid, cout), DynamicBatchNorm2d(cout, bn_eps, bn_momentum), "none")
        if max_spec.downsample == "avgpool_conv":
            self.downsample: nn.Module | None = nn.Sequential(OrderedDict(
                avg_pool=nn.AvgPool2d(s, s, 0, ceil_mode=True),
                conv=DynamicConv2d(cin, cout),
                bn=DynamicBatchNorm2d(cout, bn_eps, bn_momentum),
            ))
        else:
            self.downsample = None
        self.final_act = build_activation(max_spec.act)

    def forward(self, x: torch.Tensor, spec: LayerSpec) -> torch.Tensor:
        mid, out = spec.mid_channels, spec.out_channels
        if self.downsample is not None:
            ds = self.downsample
            residual = ds.bn(ds.conv(ds.avg_pool(x), out))
        else:
            residual = x
        y = self.conv1.act(self.conv1.bn(self.conv1.conv(x, mid)))
        y = self.conv2.act(self.conv2.bn(self.conv2.conv(y, mid)))
        y = self.conv3.bn(self.conv3.conv(y, out))
        return self.final_act(y + residual)

    @torch.no_grad()
    def copy_to(self, layer: nn.Module, spec: LayerSpec) -> None:
        """Write the weights of setting `spec` into a static `BottleneckLayer`."""
        cin, mid, cout = spec.in_channels, spec.mid_channels, spec.out_channels
        for name, (o, i) in (("conv1", (mid, cin)), ("conv2", (mid, mid)), ("conv3", (cout, mid))):
            src, dst = getattr(self, name), getattr(layer, name)
            dst.conv.weight.copy_(src.conv.active_filter(o, i))
            src.bn.copy_to(dst.bn)
        if self.downsample is not None:
            layer.downsample.conv.weight.copy_(self.downsample.conv.active_filter(cout, cin))
            self.downsample.bn.copy_to(layer.downsample.bn)


class ResidualBlock(nn.Module):
    """``conv(x) [+ x]``: OFA's ResidualBlock with an identity shortcut (no parameters of its own).

    `conv` is a dynamic layer (called with the spec) or a static one (called without).
    """

    def __init__(self, conv: nn.Module, *, shortcut: bool) -> None:
        super().__init__()
        self.conv = conv
        self.shortcut = shortcut

    def forward(self, x: torch.Tensor, spec: LayerSpec | None = None) -> torch.Tensor:
        y = self.conv(x, spec) if hasattr(self.conv, "copy_to") else self.conv(x)
        return x + y if self.shortcut else y

    @torch.no_grad()
    def copy_to(self, layer: nn.Module, spec: LayerSpec) -> None:
        if hasattr(self.conv, "copy_to"):
            self.conv.copy_to(layer, spec)
        else:
            copy_static(self.conv, layer)


@torch.no_grad()
def copy_static(source: nn.Module, target: nn.Module) -> None:
    """Copy every parameter and buffer of a static module into a same-structured one."""
    src = dict(source.named_parameters())
    src.update(source.named_buffers())
    for name, tensor in [*target.named_parameters(), *target.named_buffers()]:
        tensor.copy_(src[name])
