"""MobileNet-style OFA spaces: OFA-MobileNetV3 and OFA-ProxylessNAS.

Both are a stem conv, a fixed first MBConv block (expand 1), elastic stages of MBConv blocks
(kernel size and expand ratio per block, depth per stage) and a head. Channel widths follow
OFA: ``make_divisible(base_width * width_mult, 8)``.
"""
from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ofa_deploy.errors import ConfigError
from ofa_deploy.spaces.base import (Gene, LayerChain, PlacedLayer, SearchSpace, check_length, space_choices,
                                    space_number)
from ofa_deploy.spaces.config import SubnetConfig
from ofa_deploy.spaces.layer_spec import conv_out_size, make_divisible


@dataclass(frozen=True)
class StageSpec:
    """One elastic stage: output width, blocks, first-block stride, activation, SE."""

    width: int
    n_blocks: int
    stride: int
    act: str
    se: bool
    depth_choices: tuple[int, ...]


_MBV3_BASE = (16, 16, 24, 40, 80, 112, 160, 960, 1280)
_MBV3_STRIDES = (2, 2, 2, 1, 2)
_MBV3_ACTS = ("relu", "relu", "h_swish", "h_swish", "h_swish")
_MBV3_SE = (False, True, False, True, True)
_PROXYLESS_BASE = (32, 16, 24, 40, 80, 96, 192, 320, 1280)
_PROXYLESS_STRIDES = (2, 2, 2, 1, 2, 1)


class MobileSpace(SearchSpace):
    """OFA-MobileNetV3 (``family="mbv3"``) or OFA-ProxylessNAS (``family="proxyless"``) design space.

    Args:
        name: registry name, e.g. ``"ofa_mbv3_w12"``.
        family: ``"mbv3"`` or ``"proxyless"``.
        width_mult: channel multiplier (1.0, 1.2, 1.3 in the released supernets).
        kernel_sizes, expand_ratios, depths: the elastic choices.
        resolutions: allowed input sides.
        n_classes: classifier outputs.
        base_widths: override the 9 base widths (stem, first block, 5 or 6 stages, head(s)).
    """

    def __init__(
        self,
        *,
        name: str,
        family: str,
        width_mult: float = 1.0,
        kernel_sizes: Sequence[int] = (3, 5, 7),
        expand_ratios: Sequence[float] = (3, 4, 6),
        depths: Sequence[int] = (2, 3, 4),
        resolutions: Sequence[int] = tuple(range(128, 225, 4)),
        n_classes: int = 1000,
        base_widths: Sequence[int] | None = None,
    ) -> None:
        if family not in ("mbv3", "proxyless"):
            raise ConfigError(f"MobileSpace family must be 'mbv3' or 'proxyless', got {family!r}")
        if not isinstance(name, str) or not name:
            raise ConfigError(f"MobileSpace name must be a non-empty string, got {name!r}")
        self.name, self.family = name, family
        self.width_mult = space_number(name, "width_mult", width_mult, integer=False, minimum=0)
        self.n_classes = space_number(name, "n_classes", n_classes, integer=True, minimum=1)
        self.kernel_sizes = space_choices(name, "kernel_sizes", kernel_sizes, integer=True, minimum=1)
        self.expand_ratios = space_choices(name, "expand_ratios", expand_ratios, integer=False, minimum=0,
                                           exclusive=True)
        self.depths = space_choices(name, "depths", depths, integer=True, minimum=1)
        self.resolutions = space_choices(name, "resolutions", resolutions, integer=True, minimum=1)
        if any(k % 2 == 0 or k < 1 for k in self.kernel_sizes):
            raise ConfigError(f"{name}: kernel sizes must be odd and positive, got {self.kernel_sizes}")
        if not self.depths or min(self.depths) < 1:
            raise ConfigError(f"{name}: depths must be >= 1, got {self.depths}")
        if not self.resolutions or not self.expand_ratios or not self.kernel_sizes:
            raise ConfigError(f"{name}: kernel_sizes, expand_ratios and resolutions must be non-empty")
        base = tuple(base_widths) if base_widths else (_MBV3_BASE if family == "mbv3" else _PROXYLESS_BASE)
        if len(base) != 9:
            raise ConfigError(f"{name}: base_widths needs 9 entries, got {len(base)}")
        widths = [make_divisible(b * self.width_mult, 8) for b in base]
        max_depth = max(self.depths)
        if family == "mbv3":
            self.stem_width, self.first_block_width = widths[0], widths[1]
            self.final_expand_width, self.last_width = widths[7], widths[8]
            self.stem_act, self.first_block_act, self.first_block_residual = "h_swish", "relu", widths[0] == widths[1]
            self.stages = tuple(
                StageSpec(widths[2 + i], max_depth, _MBV3_STRIDES[i], _MBV3_ACTS[i], _MBV3_SE[i], self.depths)
                for i in range(5)
            )
        else:
            self.stem_width, self.first_block_width = widths[0], widths[1]
            self.final_expand_width = 0
            self.last_width = widths[8] if self.width_mult > 1.0 else base[8]
            self.stem_act, self.first_block_act, self.first_block_residual = "relu6", "relu6", False
            self.stages = tuple(
                StageSpec(widths[2 + i], max_depth if i < 5 else 1, _PROXYLESS_STRIDES[i], "relu6", False,
                          self.depths if i < 5 else (1,))
                for i in range(6)
            )
        self.n_blocks = sum(s.n_blocks for s in self.stages)
        self._genes = self._build_genes()

    def __repr__(self) -> str:
        return (f"MobileSpace(name={self.name!r}, family={self.family!r}, width_mult={self.width_mult}, "
                f"kernel_sizes={self.kernel_sizes}, expand_ratios={self.expand_ratios}, depths={self.depths})")

    def constructor_args(self) -> dict[str, Any]:
        return {"name": self.name, "family": self.family, "width_mult": self.width_mult,
                "kernel_sizes": list(self.kernel_sizes), "expand_ratios": list(self.expand_ratios),
                "depths": list(self.depths), "resolutions": list(self.resolutions), "n_classes": self.n_classes}

    # ---- genes ---------------------------------------------------------------------------------
    def _build_genes(self) -> tuple[Gene, ...]:
        genes = [Gene("resolution", tuple(float(r) for r in self.resolutions))]
        genes += [Gene(f"depths[{i}]", tuple(float(d) for d in s.depth_choices)) for i, s in enumerate(self.stages)]
        genes += [Gene(f"kernel_sizes[{b}]", tuple(float(k) for k in self.kernel_sizes)) for b in range(self.n_blocks)]
        genes += [Gene(f"expand_ratios[{b}]", self.expand_ratios) for b in range(self.n_blocks)]
        return tuple(genes)

    def config_from_values(self, values: Sequence[float]) -> SubnetConfig:
        n_s, n_b = len(self.stages), self.n_blocks
        return SubnetConfig(
            resolution=values[0],
            depths=values[1 : 1 + n_s],
            kernel_sizes=values[1 + n_s : 1 + n_s + n_b],
            expand_ratios=values[1 + n_s + n_b : 1 + n_s + 2 * n_b],
        )

    def config_values(self, cfg: SubnetConfig) -> tuple[float, ...]:
        return (float(cfg.resolution), *map(float, cfg.depths), *map(float, cfg.kernel_sizes), *cfg.expand_ratios)

    def _check_shape(self, cfg: SubnetConfig) -> None:
        check_length(self.name, "depths", cfg.depths, len(self.stages), "stage")
        check_length(self.name, "kernel_sizes", cfg.kernel_sizes, self.n_blocks, "dynamic block")
        check_length(self.name, "expand_ratios", cfg.expand_ratios, self.n_blocks, "dynamic block")
        if cfg.width_indices:
            raise ConfigError(f"{self.name}: width_indices is only for the ResNet space, got {list(cfg.width_indices)}")

    def from_ofa(self, arch: dict, resolution: int | None = None) -> SubnetConfig:
        """OFA arch dict → validated config; OFA's depth of the 1-block last Proxyless stage is clamped to 1.

        Only depths OFA could have written (one of the space's depth choices) are clamped; others are refused.
        """
        cfg = SubnetConfig.from_ofa(arch, resolution)
        if len(cfg.depths) == len(self.stages):
            cfg = cfg.replace(depths=[min(d, s.n_blocks) if d in self.depths else d
                                      for d, s in zip(cfg.depths, self.stages)])
        return self.validate(cfg)

    def count_subnets(self) -> float:
        total = 1.0
        per_block = len(self.kernel_sizes) * len(self.expand_ratios)
        for stage in self.stages:
            total *= sum(per_block**d for d in stage.depth_choices)
        return total * len(self.resolutions)

    # ---- structure -----------------------------------------------------------------------------
    def active_blocks(self, cfg: SubnetConfig) -> list[tuple[int, int, int]]:
        """(stage, position in stage, dynamic block index) of every active block, in order."""
        out, start = [], 0
        for s, stage in enumerate(self.stages):
            for pos in range(min(cfg.depths[s], stage.n_blocks)):
                out.append((s, pos, start + pos))
            start += stage.n_blocks
        return out

    def mid_channels(self, in_channels: int, expand_ratio: float) -> int:
        """Depthwise width of a dynamic MBConv block (OFA: make_divisible(round(in * e), 8))."""
        return make_divisible(round(in_channels * expand_ratio), 8)

    def walk(self, cfg: SubnetConfig, resolution: int | None = None) -> list[PlacedLayer]:
        self.validate(cfg)
        walk = LayerChain(resolution or cfg.resolution)
        add = walk.add

        add("first_conv", kind="conv", role="stem", in_channels=3, out_channels=self.stem_width,
            out_size=conv_out_size(walk.size, 2), kernel_size=3, stride=2, act=self.stem_act)
        add("blocks.0", kind="mbconv", role="block", in_channels=self.stem_width, out_channels=self.first_block_width,
            out_size=walk.size, kernel_size=3, stride=1, mid_channels=self.stem_width, expand=False,
            act=self.first_block_act, residual=self.first_block_residual)
        channels = self.first_block_width
        for stage_idx, pos, block in self.active_blocks(cfg):
            stage = self.stages[stage_idx]
            stride = stage.stride if pos == 0 else 1
            add(f"blocks.{block + 1}", kind="mbconv", role="block", in_channels=channels, out_channels=stage.width,
                out_size=conv_out_size(walk.size, stride), kernel_size=cfg.kernel_sizes[block], stride=stride,
                mid_channels=self.mid_channels(channels, cfg.expand_ratios[block]), expand=True, se=stage.se,
                act=stage.act, residual=stride == 1 and channels == stage.width)
            channels = stage.width
        if self.family == "mbv3":
            add("final_expand_layer", kind="conv", role="final_expand", in_channels=channels,
                out_channels=self.final_expand_width, out_size=walk.size, act="h_swish")
            add(None, kind="avgpool", role="pool", in_channels=self.final_expand_width,
                out_channels=self.final_expand_width, out_size=1)
            add("feature_mix_layer", kind="conv", role="feature_mix", in_channels=self.final_expand_width,
                out_channels=self.last_width, out_size=1, act="h_swish", use_bn=False)
        else:
            add("feature_mix_layer", kind="conv", role="feature_mix", in_channels=channels,
                out_channels=self.last_width, out_size=walk.size, act="relu6")
            add(None, kind="avgpool", role="pool", in_channels=self.last_width, out_channels=self.last_width,
                out_size=1)
        add("classifier", kind="linear", role="classifier", in_channels=self.last_width, out_channels=self.n_classes,
            out_size=1, bias=True)
        return walk.layers


def mobile_plan_configs(space: MobileSpace, resolution: int) -> Iterator[SubnetConfig]:
    """Configs whose walks together contain every distinct layer of a MobileNet space at `resolution`.

    A block's layer depends only on its position and its own kernel and expand ratio (depth decides whether it
    exists), so the max-depth configs with one uniform (kernel, expand) pair each cover every block variant:
    |K| x |E| walks (MBv3: 9 walks, 96 layers per resolution, as in OFA's Note10 tables).
    """
    top = space.max_config(space.check_resolution(resolution))
    n = len(top.kernel_sizes)
    for k, e in itertools.product(space.kernel_sizes, space.expand_ratios):
        yield top.replace(kernel_sizes=(k,) * n, expand_ratios=(e,) * n)
