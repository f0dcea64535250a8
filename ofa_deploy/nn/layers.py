"""Static layers, one class per `LayerSpec.kind`, holding only standard torch modules.

Submodule names mirror OFA's static layers (``inverted_bottleneck``/``depth_conv``/``point_linear``,
``conv1..3``/``downsample``, ``conv``/``bn``) so OFA static checkpoints map onto them by prefix.
`SubnetModel` chains the layers of one walk; it is what `extract` and net.config loading return.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ofa_deploy.spaces import LayerSpec


def build_activation(name: str) -> nn.Module:
    """``relu`` | ``relu6`` | ``h_swish`` | ``h_sigmoid`` | ``none`` → module (OFA's Hswish == nn.Hardswish)."""
    table = {"relu": nn.ReLU, "relu6": nn.ReLU6, "h_swish": nn.Hardswish, "h_sigmoid": nn.Hardsigmoid,
             "none": nn.Identity}
    return table[name]()


def _conv_bn_act(cin: int, cout: int, k: int, stride: int, *, groups: int = 1, bn: bool = True, act: str = "none",
                 bias: bool = False, eps: float = 1e-5) -> nn.Sequential:
    parts: OrderedDict[str, nn.Module] = OrderedDict()
    parts["conv"] = nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=bias)
    if bn:
        parts["bn"] = nn.BatchNorm2d(cout, eps=eps)
    if act != "none":
        parts["act"] = build_activation(act)
    return nn.Sequential(parts)


class SqueezeExcite(nn.Module):
    """SE as in OFA: global mean → 1x1 reduce (bias) → ReLU → 1x1 expand (bias) → h_sigmoid → scale."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.fc = nn.Sequential(OrderedDict(
            reduce=nn.Conv2d(channels, hidden, 1, bias=True), relu=nn.ReLU(),
            expand=nn.Conv2d(hidden, channels, 1, bias=True), h_sigmoid=nn.Hardsigmoid(),
        ))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.fc(x.mean((2, 3), keepdim=True))


class ConvLayer(nn.Module):
    """conv [+bn] [+act], with an optional identity shortcut (ResNet's middle stem conv)."""

    def __init__(self, spec: LayerSpec, bn_eps: float = 1e-5) -> None:
        super().__init__()
        self.residual = spec.residual
        self.conv = nn.Conv2d(spec.in_channels, spec.out_channels, spec.kernel_size, spec.stride,
                              spec.kernel_size // 2, bias=spec.bias)
        self.bn = nn.BatchNorm2d(spec.out_channels, eps=bn_eps) if spec.use_bn else None
        self.act = build_activation(spec.act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        if self.bn is not None:
            y = self.bn(y)
        y = self.act(y)
        return x + y if self.residual else y


class MBConvLayer(nn.Module):
    """MobileNet inverted residual: [1x1 expand] → kxk depthwise [+SE] → 1x1 project [+ identity]."""

    def __init__(self, spec: LayerSpec, bn_eps: float = 1e-5) -> None:
        super().__init__()
        mid = spec.mid_channels
        self.residual = spec.residual
        self.inverted_bottleneck = (
            _conv_bn_act(spec.in_channels, mid, 1, 1, act=spec.act, eps=bn_eps) if spec.expand else None
        )
        self.depth_conv = _conv_bn_act(mid, mid, spec.kernel_size, spec.stride, groups=mid, act=spec.act, eps=bn_eps)
        if spec.se:
            self.depth_conv.add_module("se", SqueezeExcite(mid, spec.se_channels))
        self.point_linear = _conv_bn_act(mid, spec.out_channels, 1, 1, eps=bn_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.inverted_bottleneck(x) if self.inverted_bottleneck is not None else x
        y = self.point_linear(self.depth_conv(y))
        return x + y if self.residual else y


class BottleneckLayer(nn.Module):
    """ResNet-D bottleneck: 1x1 → 3x3 (stride) → 1x1, shortcut identity or avgpool+1x1 conv, then ReLU."""

    def __init__(self, spec: LayerSpec, bn_eps: float = 1e-5) -> None:
        super().__init__()
        mid, s = spec.mid_channels, spec.stride
        self.conv1 = _conv_bn_act(spec.in_channels, mid, 1, 1, act=spec.act, eps=bn_eps)
        self.conv2 = _conv_bn_act(mid, mid, spec.kernel_size, s, act=spec.act, eps=bn_eps)
        self.conv3 = _conv_bn_act(mid, spec.out_channels, 1, 1, eps=bn_eps)
        if spec.downsample == "avgpool_conv":
            self.downsample: nn.Module = nn.Sequential(OrderedDict(
                avg_pool=nn.AvgPool2d(s, s, 0, ceil_mode=True),
                conv=nn.Conv2d(spec.in_channels, spec.out_channels, 1, bias=False),
                bn=nn.BatchNorm2d(spec.out_channels, eps=bn_eps),
            ))
        else:
            self.downsample = nn.Identity()
        self.final_act = build_activation(spec.act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.final_act(self.conv3(self.conv2(self.conv1(x))) + self.downsample(x))


class GlobalAvgPool(nn.Module):
    """Global average pool keeping (N, C, 1, 1)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean((2, 3), keepdim=True)


class LinearLayer(nn.Module):
    """Flatten then linear (the classifier)."""

    def __init__(self, spec: LayerSpec) -> None:
        super().__init__()
        self.linear = nn.Linear(spec.in_channels, spec.out_channels, bias=spec.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(torch.flatten(x, 1))


def build_layer(spec: LayerSpec, bn_eps: float = 1e-5) -> nn.Module:
    """The static module computing `spec` (random init; BN in its default state)."""
    if spec.kind == "conv":
        return ConvLayer(spec, bn_eps)
    if spec.kind == "mbconv":
        return MBConvLayer(spec, bn_eps)
    if spec.kind == "bottleneck":
        return BottleneckLayer(spec, bn_eps)
    if spec.kind == "maxpool":
        return nn.MaxPool2d(spec.kernel_size, spec.stride, spec.kernel_size // 2)
    if spec.kind == "avgpool":
        return GlobalAvgPool()
    return LinearLayer(spec)


class SubnetModel(nn.Module):
    """A plain static network: the layers of one walk, applied in order.

    Args:
        specs: the layers (from `SearchSpace.walk_layers` or a parsed OFA net.config).
        bn_eps: batch-norm epsilon (OFA: 1e-5 for MobileNetV3/ResNet, 1e-3 for ProxylessNAS).
        meta: JSON-able provenance (space name, config, source) kept on the module as `.meta`.
    """

    def __init__(self, specs: Sequence[LayerSpec], bn_eps: float = 1e-5, meta: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.specs: tuple[LayerSpec, ...] = tuple(specs)
        self.bn_eps = bn_eps
        self.meta: dict[str, Any] = dict(meta or {})
        self.layers = nn.ModuleList(build_layer(s, bn_eps) for s in self.specs)

    @property
    def input_resolution(self) -> int:
        return self.specs[0].in_size

    @property
    def num_classes(self) -> int:
        return self.specs[-1].out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x
