"""Dynamic (elastic) primitives: one max-size weight, sliced per call.

Elasticity is prefix slicing (`weight[:out, :in]`), as in OFA; the input width is read from the
tensor. The active setting is passed as an argument on every call: these modules hold no
"active" state and there are no class-level flags. Parameter and submodule names follow OFA's
dynamic ops, so OFA supernet checkpoints load by name (``conv.weight`` inside ``conv``,
``bn.running_mean`` inside ``bn``, ``7to5_matrix`` next to ``conv``, ``fc.reduce``/``fc.expand``).
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ofa_deploy.errors import ConfigError
from ofa_deploy.spaces import make_divisible


def centre_crop(weight: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """The centre ``kernel_size`` x ``kernel_size`` window of a (O, I, K, K) filter."""
    full = weight.size(-1)
    start = (full - kernel_size) // 2
    return weight[:, :, start : start + kernel_size, start : start + kernel_size]


def transform_matrix_name(larger: int, smaller: int) -> str:
    """OFA's parameter name for the kernel transform from `larger` to `smaller` (e.g. ``7to5_matrix``)."""
    return f"{larger}to{smaller}_matrix"


class DynamicDepthwiseConv2d(nn.Module):
    """Depthwise conv with elastic width and kernel size (OFA's DynamicSeparableConv2d).

    A smaller kernel is derived from the largest by stepping down through the sorted kernel sizes:
    at each step the centre crop of the current filter is flattened and multiplied by that step's
    ``"<k>to<k'>_matrix"`` (shape k'^2 x k'^2, identity at init). So k3 = M_5to3 . crop3(M_7to5 . crop5(W7)).

    Args:
        max_channels: widest input (= output) width.
        kernel_sizes: the allowed kernel sizes (odd).
        stride: conv stride.
    """

    def __init__(self, max_channels: int, kernel_sizes: Sequence[int], stride: int = 1) -> None:
        super().__init__()
        self.kernel_sizes = tuple(sorted(set(int(k) for k in kernel_sizes)))
        self.max_channels, self.stride = int(max_channels), int(stride)
        for small, large in zip(self.kernel_sizes, self.kernel_sizes[1:]):
            self.register_parameter(transform_matrix_name(large, small), nn.Parameter(torch.eye(small * small)))
        self.conv = nn.Conv2d(max_channels, max_channels, self.kernel_sizes[-1], stride, groups=max_channels,
                              bias=False)

    def active_filter(self, channels: int, kernel_size: int) -> torch.Tensor:
        """The (channels, 1, k, k) depthwise filter of kernel size `kernel_size`."""
        if kernel_size not in self.kernel_sizes:
            raise ConfigError(f"kernel size {kernel_size} is not one of this layer's {list(self.kernel_sizes)}")
        weight = self.conv.weight[:channels]
        for large, small in zip(self.kernel_sizes[::-1], self.kernel_sizes[-2::-1]):
            if large <= kernel_size:
                break
            crop = centre_crop(weight, small).reshape(-1, small * small)
            matrix = getattr(self, transform_matrix_name(large, small))
            weight = F.linear(crop, matrix).reshape(channels, 1, small, small)
        return weight

    def forward(self, x: torch.Tensor, kernel_size: int | None = None) -> torch.Tensor:
        k = kernel_size or self.kernel_sizes[-1]
        channels = x.size(1)
        weight = self.active_filter(channels, k).contiguous()
        return F.conv2d(x, weight, None, self.stride, k // 2, 1, channels)


class DynamicConv2d(nn.Module):
    """Dense conv with elastic input and output width: ``weight[:out, :in]``."""

    def __init__(self, max_in_channels: int, max_out_channels: int, kernel_size: int = 1, stride: int = 1) -> None:
        super().__init__()
        self.kernel_size, self.stride = int(kernel_size), int(stride)
        self.conv = nn.Conv2d(max_in_channels, max_out_channels, kernel_size, stride, bias=False)

    def active_filter(self, out_channels: int, in_channels: int) -> torch.Tensor:
        return self.conv.weight[:out_channels, :in_channels]

    def forward(self, x: torch.Tensor, out_channels: int | None = None) -> torch.Tensor:
        out = out_channels or self.conv.out_channels
        weight = self.active_filter(out, x.size(1)).contiguous()
        return F.conv2d(x, weight, None, self.stride, self.kernel_size // 2)


class DynamicBatchNorm2d(nn.Module):
    """Batch norm over the first C channels of one shared max-size BN (statistics are prefix-sliced).

    In training mode the running statistics of the prefix are updated in place (slices are views),
    exactly like a `nn.BatchNorm2d` of width C would update its own.
    """

    def __init__(self, max_features: int, eps: float = 1e-5, momentum: float = 0.1) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(max_features, eps=eps, momentum=momentum)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bn, c = self.bn, x.size(1)
        if c == bn.num_features:
            return bn(x)
        factor = 0.0
        if bn.training and bn.track_running_stats:
            bn.num_batches_tracked.add_(1)
            factor = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
        return F.batch_norm(
            x, bn.running_mean[:c], bn.running_var[:c], bn.weight[:c], bn.bias[:c],
            bn.training or not bn.track_running_stats, factor, bn.eps,
        )

    @torch.no_grad()
    def active_state(self, channels: int) -> dict[str, torch.Tensor]:
        """State of a static ``BatchNorm2d(channels)``: new tensors holding the first `channels` entries."""
        bn = self.bn
        return {"weight": fresh(bn.weight[:channels]), "bias": fresh(bn.bias[:channels]),
                "running_mean": fresh(bn.running_mean[:channels]), "running_var": fresh(bn.running_var[:channels]),
                "num_batches_tracked": fresh(bn.num_batches_tracked)}

    def copy_to(self, target: nn.BatchNorm2d) -> None:
        """Write the first ``target.num_features`` channels into a static BN."""
        write_state(target, self.active_state(target.num_features))


def fresh(tensor: torch.Tensor) -> torch.Tensor:
    """A contiguous copy that shares no storage with the supernet."""
    return tensor.detach().clone(memory_format=torch.contiguous_format)


def prefixed(prefix: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`state` with every name put under `prefix` (``"bn"`` -> ``"bn.weight"``)."""
    return {f"{prefix}.{k}": v for k, v in state.items()}


@torch.no_grad()
def write_state(target: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Copy `state` (names relative to `target`) into `target`'s existing tensors; every name must exist."""
    for name, value in state.items():
        owner, _, leaf = name.rpartition(".")
        getattr(target.get_submodule(owner) if owner else target, leaf).copy_(value)


def se_hidden(channels: int) -> int:
    """Hidden width of the SE module for `channels` inputs (OFA: make_divisible(channels // 4, 8))."""
    return make_divisible(channels // 4, 8)


class DynamicSE(nn.Module):
    """Squeeze-and-excitation with elastic width; hidden width ``make_divisible(C // 4, 8)``."""

    def __init__(self, max_channels: int) -> None:
        super().__init__()
        hidden = se_hidden(max_channels)
        self.fc = nn.Sequential(OrderedDict(
            reduce=nn.Conv2d(max_channels, hidden, 1, bias=True), relu=nn.ReLU(),
            expand=nn.Conv2d(hidden, max_channels, 1, bias=True), h_sigmoid=nn.Hardsigmoid(),
        ))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.size(1)
        mid = se_hidden(c)
        reduce, expand = self.fc.reduce, self.fc.expand
        y = x.mean((2, 3), keepdim=True)
        y = self.fc.relu(F.conv2d(y, reduce.weight[:mid, :c].contiguous(), reduce.bias[:mid]))
        y = F.conv2d(y, expand.weight[:c, :mid].contiguous(), expand.bias[:c])
        return x * self.fc.h_sigmoid(y)

    @torch.no_grad()
    def active_state(self, channels: int) -> dict[str, torch.Tensor]:
        """State of a static SE module of width `channels` (``fc.reduce.*``, ``fc.expand.*``)."""
        mid, reduce, expand = se_hidden(channels), self.fc.reduce, self.fc.expand
        return {"fc.reduce.weight": fresh(reduce.weight[:mid, :channels]), "fc.reduce.bias": fresh(reduce.bias[:mid]),
                "fc.expand.weight": fresh(expand.weight[:channels, :mid]),
                "fc.expand.bias": fresh(expand.bias[:channels])}

    def copy_to(self, target: nn.Module) -> None:
        """Write the active slices into a static SE module with ``fc.reduce``/``fc.expand`` convs."""
        write_state(target, self.active_state(target.fc.reduce.in_channels))


class DynamicLinear(nn.Module):
    """Linear layer with elastic input and output features: ``weight[:out, :in]``."""

    def __init__(self, max_in_features: int, max_out_features: int, bias: bool = True) -> None:
        super().__init__()
        self.linear = nn.Linear(max_in_features, max_out_features, bias=bias)

    def forward(self, x: torch.Tensor, out_features: int | None = None) -> torch.Tensor:
        out = out_features or self.linear.out_features
        bias = self.linear.bias[:out] if self.linear.bias is not None else None
        return F.linear(x, self.linear.weight[:out, : x.size(1)].contiguous(), bias)

    @torch.no_grad()
    def active_state(self, out_features: int, in_features: int) -> dict[str, torch.Tensor]:
        """State of a static ``nn.Linear(in_features, out_features)``."""
        state = {"weight": fresh(self.linear.weight[:out_features, :in_features])}
        if self.linear.bias is not None:
            state["bias"] = fresh(self.linear.bias[:out_features])
        return state

    def copy_to(self, target: nn.Linear) -> None:
        write_state(target, self.active_state(target.out_features, target.in_features))
