"""Analytic MACs and parameter counts of one `LayerSpec` (torch-free).

Counts like OFA's ``count_net_flops``: multiply-accumulates of convolutions and linear layers
only (no BN, activations, pooling, residual adds, SE multiply or biases). Whole-network counts:
`ofa_deploy.predictors.macs`.
"""
from __future__ import annotations

from ofa_deploy.spaces.layer_spec import LayerSpec


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


__all__ = ["layer_macs", "layer_params"]
