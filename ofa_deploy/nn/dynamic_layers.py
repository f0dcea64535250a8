"""Dynamic (elastic) layers of the OFA supernets.

Each layer is built at its largest size and runs at the setting described by a `LayerSpec`
(``forward(x, spec)``). ``active_state(spec)`` returns the state dict (new tensors) of the matching
static layer of `ofa_deploy.nn.layers` (``build_layer(spec)``); ``copy_to(static_layer, spec)``
writes it into an existing one. Submodule names follow
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
    fresh,
    prefixed,
    write_state,
)
from ofa_deploy.spaces import LayerSpec


def _conv_bn_act(conv: nn.Module, bn: nn.Module, act: str) -> nn.Sequential:
    parts: OrderedDict[str, nn.Module] = OrderedDict(conv=conv, bn=bn)
    if act != "none":
        parts["act"] = build_activation(act)
    return nn.Sequential(parts)


class _ElasticLayer(nn.Module):
    """An elastic layer: `active_state(spec)` gives the weights of setting `spec`, `copy_to` writes them."""

    def active_state(self, spec: LayerSpec) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def copy_to(self, layer: nn.Module, spec: LayerSpec) -> None:
        """Write the weights of setting `spec` into the static layer (`MBConvLayer`, `ConvLayer`...) built from
        `spec`."""
        write_state(layer, self.active_state(spec))


class DynamicMBConv(_ElasticLayer):
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
    def active_state(self, spec: LayerSpec) -> dict[str, torch.Tensor]:
        """State dict of the static `MBConvLayer` built from `spec`."""
        mid, cin, cout = spec.mid_channels, spec.in_channels, spec.out_channels
        state: dict[str, torch.Tensor] = {}
        if self.inverted_bottleneck is not None:
            ib = self.inverted_bottleneck
            state["inverted_bottleneck.conv.weight"] = fresh(ib.conv.active_filter(mid, cin))
            state.update(prefixed("inverted_bottleneck.bn", ib.bn.active_state(mid)))
        state["depth_conv.conv.weight"] = fresh(self.depth_conv.conv.active_filter(mid, spec.kernel_size))
        state.update(prefixed("depth_conv.bn", self.depth_conv.bn.active_state(mid)))
        if spec.se:
            state.update(prefixed("depth_conv.se", self.depth_conv.se.active_state(mid)))
        state["point_linear.conv.weight"] = fresh(self.point_linear.conv.active_filter(cout, mid))
        state.update(prefixed("point_linear.bn", self.point_linear.bn.active_state(cout)))
        return state


class DynamicConvLayer(_ElasticLayer):
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
    def active_state(self, spec: LayerSpec) -> dict[str, torch.Tensor]:
        """State dict of the static `ConvLayer` built from `spec`."""
        state = {"conv.weight": fresh(self.conv.active_filter(spec.out_channels, spec.in_channels))}
        if self.bn is not None:
            state.update(prefixed("bn", self.bn.active_state(spec.out_channels)))
        return state


class DynamicLinearLayer(_ElasticLayer):
    """Flatten + linear with elastic input width (OFA's DynamicLinearLayer; ResNet classifier)."""

    def __init__(self, max_spec: LayerSpec) -> None:
        super().__init__()
        self.linear = DynamicLinear(max_spec.in_channels, max_spec.out_channels, bias=max_spec.bias)

    def forward(self, x: torch.Tensor, spec: LayerSpec) -> torch.Tensor:
        return self.linear(torch.flatten(x, 1), spec.out_channels)

    @torch.no_grad()
    def active_state(self, spec: LayerSpec) -> dict[str, torch.Tensor]:
        """State dict of the static `LinearLayer` built from `spec`."""
        return prefixed("linear", self.linear.active_state(spec.out_channels, spec.in_channels))


class DynamicBottleneck(_ElasticLayer):
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
    def active_state(self, spec: LayerSpec) -> dict[str, torch.Tensor]:
        """State dict of the static `BottleneckLayer` built from `spec`."""
        cin, mid, cout = spec.in_channels, spec.mid_channels, spec.out_channels
        state: dict[str, torch.Tensor] = {}
        for name, (o, i) in (("conv1", (mid, cin)), ("conv2", (mid, mid)), ("conv3", (cout, mid))):
            src = getattr(self, name)
            state[f"{name}.conv.weight"] = fresh(src.conv.active_filter(o, i))
            state.update(prefixed(f"{name}.bn", src.bn.active_state(o)))
        if self.downsample is not None:
            state["downsample.conv.weight"] = fresh(self.downsample.conv.active_filter(cout, cin))
            state.update(prefixed("downsample.bn", self.downsample.bn.active_state(cout)))
        return state


class ResidualBlock(_ElasticLayer):
    """``conv(x) [+ x]``: OFA's ResidualBlock with an identity shortcut (no parameters of its own).

    `conv` is a dynamic layer (called with the spec) or a static one (called without).
    """

    def __init__(self, conv: nn.Module, *, shortcut: bool) -> None:
        super().__init__()
        self.conv = conv
        self.shortcut = shortcut

    def forward(self, x: torch.Tensor, spec: LayerSpec | None = None) -> torch.Tensor:
        y = self.conv(x, spec) if hasattr(self.conv, "active_state") else self.conv(x)
        return x + y if self.shortcut else y

    @torch.no_grad()
    def active_state(self, spec: LayerSpec) -> dict[str, torch.Tensor]:
        """State dict of the static layer computing `spec` (the residual add has no parameters)."""
        if hasattr(self.conv, "active_state"):
            return self.conv.active_state(spec)
        return static_state(self.conv)


@torch.no_grad()
def static_state(module: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of a static module's state dict (new tensors)."""
    return {k: fresh(v) for k, v in module.state_dict().items()}
