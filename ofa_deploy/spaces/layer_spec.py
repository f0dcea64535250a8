"""`LayerSpec`: a frozen, hashable description of one layer instance of a subnet.

One walk over a subnet (`SearchSpace.walk_layers`) yields these; the same stream feeds the
static-model builder, the analytic MAC counter, the latency table keys and the profiler.
Spatial sizes are square (H == W) as in every OFA space.
"""
from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from ofa_deploy.errors import ConfigError

LAYER_KINDS = ("conv", "mbconv", "bottleneck", "maxpool", "avgpool", "linear")
ACTIVATIONS = ("none", "relu", "relu6", "h_swish")
ROLES = ("stem", "block", "final_expand", "feature_mix", "pool", "classifier")


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round `value` to the nearest multiple of `divisor`, never dropping more than 10% (TF/OFA rule)."""
    min_value = divisor if min_value is None else min_value
    new_value = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new_value < 0.9 * value:
        new_value += divisor
    return int(new_value)


def conv_out_size(size: int, stride: int) -> int:
    """Output side of a 'same'-padded conv or pool: ceil(size / stride)."""
    return (size - 1) // stride + 1


@dataclass(frozen=True)
class LayerSpec:
    """One layer of a subnet, complete enough to build, count and time it in isolation.

    Attributes:
        kind: "conv" (conv [+bn] [+act]), "mbconv" (MobileNet inverted residual block),
            "bottleneck" (ResNet bottleneck), "maxpool" (3x3/2), "avgpool" (global), "linear".
        role: where the layer sits: "stem", "block", "final_expand", "feature_mix", "pool", "classifier".
        in_channels, out_channels: channel counts (features for "linear").
        in_size, out_size: input and output spatial side (1 for "linear").
        kernel_size, stride: of the conv (the depthwise conv for "mbconv", the 3x3 for "bottleneck").
        mid_channels: "mbconv" depthwise width; "bottleneck" middle width; 0 otherwise.
        expand: "mbconv" has a 1x1 expansion conv (False when the expand ratio is 1).
        se: "mbconv" has squeeze-and-excitation after the depthwise conv.
        act: activation after the conv(s).
        use_bn: "conv" has batch norm.
        bias: "conv"/"linear" has a bias.
        residual: identity shortcut ("mbconv", residual "conv"); "bottleneck" always adds a shortcut.
        downsample: "bottleneck" shortcut: "identity" or "avgpool_conv".
    """

    kind: str
    role: str
    in_channels: int
    out_channels: int
    in_size: int
    out_size: int
    kernel_size: int = 1
    stride: int = 1
    mid_channels: int = 0
    expand: bool = False
    se: bool = False
    act: str = "none"
    use_bn: bool = True
    bias: bool = False
    residual: bool = False
    downsample: str = "identity"

    def __post_init__(self) -> None:
        for name in ("kind", "role", "act", "downsample"):
            if not isinstance(getattr(self, name), str):
                raise ConfigError(f"LayerSpec.{name} must be a string, got {getattr(self, name)!r}")
        if self.kind not in LAYER_KINDS:
            raise ConfigError(f"unknown layer kind {self.kind!r}; expected one of {LAYER_KINDS}")
        if self.role not in ROLES:
            raise ConfigError(f"unknown layer role {self.role!r}; expected one of {ROLES}")
        if self.act not in ACTIVATIONS:
            raise ConfigError(f"unknown activation {self.act!r}; expected one of {ACTIVATIONS}")
        if self.downsample not in ("identity", "avgpool_conv"):
            raise ConfigError(f"unknown downsample {self.downsample!r}; expected 'identity' or 'avgpool_conv'")
        for name in ("in_channels", "out_channels", "in_size", "out_size", "kernel_size", "stride", "mid_channels"):
            value = getattr(self, name)
            low = 0 if name == "mid_channels" else 1
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
                raise ConfigError(f"LayerSpec.{name} must be an integer >= {low}, got {value!r}")
            object.__setattr__(self, name, int(value))
        for name in ("expand", "se", "use_bn", "bias", "residual"):
            value = getattr(self, name)
            if not isinstance(value, (bool, np.bool_)):
                raise ConfigError(f"LayerSpec.{name} must be true or false, got {value!r}")
            object.__setattr__(self, name, bool(value))

    @property
    def se_channels(self) -> int:
        """Hidden width of the SE module (OFA: make_divisible(mid // 4, 8)); 0 without SE."""
        return make_divisible(self.mid_channels // 4, 8) if self.se else 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LayerSpec:
        if not isinstance(data, Mapping):
            raise ConfigError(f"a LayerSpec must be a mapping of fields, got {type(data).__name__}")
        names = {f.name for f in fields(cls)}
        unknown = sorted(map(str, set(data) - names))
        if unknown:
            raise ConfigError(f"unknown LayerSpec keys {unknown}; expected a subset of {sorted(names)}")
        return cls(**data)

    def short(self) -> str:
        """A readable one-liner, e.g. ``mbconv 24->32 @56 k5 s2 mid144 se hs``."""
        text = f"{self.kind} {self.in_channels}->{self.out_channels} @{self.in_size}"
        if self.kind in ("conv", "mbconv", "bottleneck"):
            text += f" k{self.kernel_size} s{self.stride}"
        if self.mid_channels:
            text += f" mid{self.mid_channels}"
        if self.se:
            text += " se"
        if self.act != "none":
            text += f" {self.act}"
        if self.residual:
            text += " res"
        return text
