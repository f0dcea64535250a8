"""Analytic MACs and parameter counts from the layer walk.

Counts like OFA's ``count_net_flops``: multiply-accumulates of convolutions and linear layers
only (no BN, activations, pooling, residual adds, SE multiply or biases). OFA calls these
"FLOPs"; we call them MACs, and FLOPs = 2 x MACs where shown.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ofa_deploy.spaces import LayerSpec, SearchSpace, SubnetConfig


def layer_macs(spec: LayerSpec) -> int:
    """MACs of one layer at batch 1."""
    area_in, area_out = spec.in_size**2, spec.out_size**2
    if spec.kind == "conv":
        return spec.in_channels * spec.out_channels * spec.kernel_size**2 * area_out
    if spec.kind == "linear":
        return spec.in_channels * spec.out_channels
    if spec.kind == "mbconv":
        mid = spec.mid_channels
        macs = mid * spec.kernel_size**2 * area_out + mid * spec.out_channels * area_out
        if spec.expand:
            macs += spec.in_channels * mid * area_in
        if spec.se:
            macs += 2 * mid * spec.se_channels
        return macs
    if spec.kind == "bottleneck":
        mid = spec.mid_channels
        macs = spec.in_channels * mid * area_in + mid * mid * spec.kernel_size**2 * area_out
        macs += mid * spec.out_channels * area_out
        if spec.downsample == "avgpool_conv":
            macs += spec.in_channels * spec.out_channels * area_out
        return macs
    return 0  # pooling


def _bn(channels: int) -> int:
    return 2 * channels


def layer_params(spec: LayerSpec) -> int:
    """Learnable parameters of one layer (conv/linear weights and biases, BN affine)."""
    cin, cout, k, mid = spec.in_channels, spec.out_channels, spec.kernel_size, spec.mid_channels
    if spec.kind == "conv":
        return cin * cout * k * k + (_bn(cout) if spec.use_bn else 0) + (cout if spec.bias else 0)
    if spec.kind == "linear":
        return cin * cout + (cout if spec.bias else 0)
    if spec.kind == "mbconv":
        params = mid * k * k + _bn(mid) + mid * cout + _bn(cout)
        if spec.expand:
            params += cin * mid + _bn(mid)
        if spec.se:
            hidden = spec.se_channels
            params += mid * hidden + hidden + hidden * mid + mid
        return params
    if spec.kind == "bottleneck":
        params = cin * mid + _bn(mid) + mid * mid * k * k + _bn(mid) + mid * cout + _bn(cout)
        if spec.downsample == "avgpool_conv":
            params += cin * cout + _bn(cout)
        return params
    return 0


@dataclass(frozen=True)
class NetCost:
    """MACs and parameters of a whole subnet."""

    macs: int
    params: int

    @property
    def flops(self) -> int:
        """FLOPs as 2 x MACs (multiply and add counted separately)."""
        return 2 * self.macs

    def to_dict(self) -> dict[str, float]:
        return {"macs": self.macs, "mmacs": self.macs / 1e6, "params": self.params, "mparams": self.params / 1e6}


def count_layers(specs: Iterable[LayerSpec]) -> NetCost:
    specs = list(specs)
    return NetCost(macs=sum(map(layer_macs, specs)), params=sum(map(layer_params, specs)))


def count_subnet(space: SearchSpace, cfg: SubnetConfig, resolution: int | None = None) -> NetCost:
    """MACs and params of subnet `cfg` from the layer walk."""
    return count_layers(space.walk_layers(cfg, resolution))
