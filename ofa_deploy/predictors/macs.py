"""Analytic MACs and parameter counts from the layer walk.

Counts like OFA's ``count_net_flops``: multiply-accumulates of convolutions and linear layers
only (no BN, activations, pooling, residual adds, SE multiply or biases). OFA calls these
"FLOPs"; we call them MACs, and FLOPs = 2 x MACs where shown.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ofa_deploy.errors import ConfigError
from ofa_deploy.spaces import LayerSpec, SearchSpace, SubnetConfig
from ofa_deploy.spaces.costs import layer_macs, layer_params


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


def count_module(model: Any, input_shape: Sequence[int] = (1, 3, 224, 224)) -> NetCost:
    """MACs (per sample) and parameters of any ``nn.Module``, counted with forward hooks like OFA.

    Convolutions count ``in_channels * output elements * kh * kw / groups`` and linear layers
    ``in_features * out_features`` per output row; nothing else counts (as OFA's ``count_net_flops``).
    Modules that call ``F.conv2d`` on sliced weights (live supernets) are not seen, as in OFA: count
    an extracted subnet. Runs one forward of zeros on a deep copy in eval mode, so the caller's
    model, its mode and its hooks are untouched. Params are the numel of every parameter.
    """
    import copy

    import torch
    from torch import nn

    shape = tuple(int(d) for d in input_shape)
    if not shape or any(d < 1 for d in shape):
        raise ConfigError(f"input_shape must be positive dimensions with the batch first, got {tuple(input_shape)}")
    params = sum(p.numel() for p in model.parameters())
    probe = copy.deepcopy(model).eval()
    total = [0]

    def conv_hook(module: nn.Module, _inputs: Any, output: torch.Tensor) -> None:
        kernel = 1
        for k in module.weight.shape[2:]:
            kernel *= int(k)
        total[0] += module.in_channels // module.groups * output.numel() * kernel

    def linear_hook(module: nn.Module, _inputs: Any, output: torch.Tensor) -> None:
        total[0] += module.in_features * output.numel()  # = in * out per row

    handles = []
    for module in probe.modules():
        if isinstance(module, nn.modules.conv._ConvNd):
            handles.append(module.register_forward_hook(conv_hook))
        elif isinstance(module, nn.Linear):
            handles.append(module.register_forward_hook(linear_hook))
    first = next(probe.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
    dtype = first.dtype if first is not None and first.is_floating_point() else torch.float32
    try:
        with torch.no_grad():
            probe(torch.zeros(shape, device=device, dtype=dtype))
    finally:
        for handle in handles:
            handle.remove()
    return NetCost(macs=total[0] // shape[0], params=params)
