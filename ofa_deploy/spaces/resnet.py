"""The OFA-ResNet50 (ResNet-50D) space: elastic depth, expand ratio and width multiplier.

Config layout (OFA's ``{"d","e","w"}``):
  * ``depths``: 5 entries. ``depths[0]`` is the stem flag (the residual middle stem conv is kept
    iff it equals the largest depth); ``depths[1:]`` are extra blocks per stage on top of
    ``BASE_DEPTHS``.
  * ``expand_ratios``: one per bottleneck block (18).
  * ``width_indices``: 6 indices into ``width_mults``: stem convs 0+1, stem conv 2, stages 1..4.
"""
from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from typing import Any

from ofa_deploy.errors import ConfigError
from ofa_deploy.spaces.base import (Gene, LayerChain, PlacedLayer, SearchSpace, check_length, space_choices,
                                    space_number)
from ofa_deploy.spaces.config import SubnetConfig
from ofa_deploy.spaces.layer_spec import conv_out_size, make_divisible

BASE_DEPTHS = (2, 2, 4, 2)
STAGE_WIDTHS = (256, 512, 1024, 2048)
STAGE_STRIDES = (1, 2, 2, 2)


class ResNetSpace(SearchSpace):
    """OFA-ResNet50 design space (``family="resnet"``).

    Args:
        name: registry name, e.g. ``"ofa_resnet50"``.
        depths: extra blocks per stage (OFA's depth_list).
        expand_ratios: bottleneck expand ratios.
        width_mults: width multipliers (indexed by ``width_indices``).
        resolutions: allowed input sides.
        n_classes: classifier outputs.
    """

    family = "resnet"

    def __init__(
        self,
        *,
        name: str,
        depths: Sequence[int] = (0, 1, 2),
        expand_ratios: Sequence[float] = (0.2, 0.25, 0.35),
        width_mults: Sequence[float] = (0.65, 0.8, 1.0),
        resolutions: Sequence[int] = tuple(range(128, 257, 4)),
        n_classes: int = 1000,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigError(f"ResNetSpace name must be a non-empty string, got {name!r}")
        self.name = name
        self.n_classes = space_number(name, "n_classes", n_classes, integer=True, minimum=1)
        self.depths = space_choices(name, "depths", depths, integer=True, minimum=0)
        self.expand_ratios = space_choices(name, "expand_ratios", expand_ratios, integer=False, minimum=0,
                                           exclusive=True)
        self.width_mults = space_choices(name, "width_mults", width_mults, integer=False, minimum=0, exclusive=True)
        self.resolutions = space_choices(name, "resolutions", resolutions, integer=True, minimum=1)
        if not self.depths or min(self.depths) < 0:
            raise ConfigError(f"{name}: depths must be >= 0, got {self.depths}")
        if not (self.expand_ratios and self.width_mults and self.resolutions):
            raise ConfigError(f"{name}: expand_ratios, width_mults and resolutions must be non-empty")
        self.stem_widths = tuple(make_divisible(64 * w, 8) for w in self.width_mults)
        self.stem_mid_widths = tuple(make_divisible(c // 2, 8) for c in self.stem_widths)
        self.stage_widths = tuple(tuple(make_divisible(s * w, 8) for w in self.width_mults) for s in STAGE_WIDTHS)
        self.stage_blocks = tuple(b + max(self.depths) for b in BASE_DEPTHS)
        self.n_blocks = sum(self.stage_blocks)
        self.stem_depth_choices = tuple(sorted({min(self.depths), max(self.depths)}))
        self._genes = self._build_genes()

    def __repr__(self) -> str:
        return (f"ResNetSpace(name={self.name!r}, depths={self.depths}, expand_ratios={self.expand_ratios}, "
                f"width_mults={self.width_mults})")

    def constructor_args(self) -> dict[str, Any]:
        return {"name": self.name, "depths": list(self.depths), "expand_ratios": list(self.expand_ratios),
                "width_mults": list(self.width_mults), "resolutions": list(self.resolutions),
                "n_classes": self.n_classes}

    # ---- genes ---------------------------------------------------------------------------------
    def _build_genes(self) -> tuple[Gene, ...]:
        genes = [Gene("resolution", tuple(float(r) for r in self.resolutions)),
                 Gene("depths[0] (stem)", tuple(float(d) for d in self.stem_depth_choices))]
        genes += [Gene(f"depths[{i + 1}]", tuple(float(d) for d in self.depths)) for i in range(4)]
        genes += [Gene(f"expand_ratios[{b}]", self.expand_ratios) for b in range(self.n_blocks)]
        genes += [Gene(f"width_indices[{i}]", tuple(float(i) for i in range(len(self.width_mults)))) for i in range(6)]
        return tuple(genes)

    def config_from_values(self, values: Sequence[float]) -> SubnetConfig:
        n_b = self.n_blocks
        return SubnetConfig(resolution=values[0], depths=values[1:6], expand_ratios=values[6 : 6 + n_b],
                            width_indices=values[6 + n_b : 12 + n_b])

    def config_values(self, cfg: SubnetConfig) -> tuple[float, ...]:
        return (float(cfg.resolution), *map(float, cfg.depths), *cfg.expand_ratios, *map(float, cfg.width_indices))

    def _check_shape(self, cfg: SubnetConfig) -> None:
        check_length(self.name, "depths", cfg.depths, 5, "stem flag and stage")
        check_length(self.name, "expand_ratios", cfg.expand_ratios, self.n_blocks, "bottleneck block")
        check_length(self.name, "width_indices", cfg.width_indices, 6, "width slot")
        if cfg.kernel_sizes:
            raise ConfigError(f"{self.name}: the ResNet space has no elastic kernel sizes, got {list(cfg.kernel_sizes)}")

    def from_ofa(self, arch: dict, resolution: int | None = None) -> SubnetConfig:
        """OFA arch dict → validated config (OFA skips the stem conv for any d[0] below the max)."""
        cfg = SubnetConfig.from_ofa(arch, resolution)
        if cfg.depths and cfg.depths[0] in self.depths:
            stem = max(self.depths) if cfg.depths[0] == max(self.depths) else min(self.depths)
            cfg = cfg.replace(depths=(stem, *cfg.depths[1:]))
        return self.validate(cfg)

    def count_subnets(self) -> float:
        total = float(len(self.stem_depth_choices)) * len(self.width_mults) ** 6 * len(self.resolutions)
        for base in BASE_DEPTHS:
            total *= sum(len(self.expand_ratios) ** (base + d) for d in self.depths)
        return total

    # ---- structure -----------------------------------------------------------------------------
    def active_blocks(self, cfg: SubnetConfig) -> list[tuple[int, int, int]]:
        """(stage, position in stage, block index) of every active bottleneck, in order."""
        out, start = [], 0
        for s, n_blocks in enumerate(self.stage_blocks):
            for pos in range(BASE_DEPTHS[s] + cfg.depths[s + 1]):
                out.append((s, pos, start + pos))
            start += n_blocks
        return out

    def stem_skipped(self, cfg: SubnetConfig) -> bool:
        return cfg.depths[0] != max(self.depths)

    def walk(self, cfg: SubnetConfig, resolution: int | None = None) -> list[PlacedLayer]:
        self.validate(cfg)
        walk = LayerChain(resolution or cfg.resolution)
        add = walk.add

        w = cfg.width_indices
        mid, stem_out = self.stem_mid_widths[w[0]], self.stem_widths[w[1]]
        add("input_stem.0", kind="conv", role="stem", in_channels=3, out_channels=mid,
            out_size=conv_out_size(walk.size, 2), kernel_size=3, stride=2, act="relu")
        if not self.stem_skipped(cfg):
            add("input_stem.1", kind="conv", role="stem", in_channels=mid, out_channels=mid, out_size=walk.size,
                kernel_size=3, act="relu", residual=True)
        add("input_stem.2", kind="conv", role="stem", in_channels=mid, out_channels=stem_out, out_size=walk.size,
            kernel_size=3, act="relu")
        add(None, kind="maxpool", role="stem", in_channels=stem_out, out_channels=stem_out,
            out_size=conv_out_size(walk.size, 2), kernel_size=3, stride=2)
        channels = stem_out
        for stage, pos, block in self.active_blocks(cfg):
            out = self.stage_widths[stage][w[2 + stage]]
            stride = STAGE_STRIDES[stage] if pos == 0 else 1
            add(f"blocks.{block}", kind="bottleneck", role="block", in_channels=channels, out_channels=out,
                out_size=conv_out_size(walk.size, stride), kernel_size=3, stride=stride,
                mid_channels=make_divisible(round(out * cfg.expand_ratios[block]), 8), act="relu", residual=True,
                downsample="avgpool_conv" if pos == 0 else "identity")
            channels = out
        add(None, kind="avgpool", role="pool", in_channels=channels, out_channels=channels, out_size=1)
        add("classifier", kind="linear", role="classifier", in_channels=channels, out_channels=self.n_classes,
            out_size=1, bias=True)
        return walk.layers


def resnet_plan_configs(space: ResNetSpace, resolution: int) -> Iterator[SubnetConfig]:
    """Configs whose walks together contain every distinct layer of a ResNet space at `resolution`.

    A block's layer also depends on its stage's width index and the previous stage's (its input channels), and
    the stem on two width indices and the stem-depth flag. Alternating width tuples (a, b, a, ...) put every
    ordered pair on every adjacent slot pair: 9 tuples x uniform expand ratio x stem flag = 54 walks.
    """
    top = space.max_config(space.check_resolution(resolution))
    n_blocks, n_slots = len(top.expand_ratios), len(top.width_indices)
    pairs = [tuple(a if j % 2 == 0 else b for j in range(n_slots))
             for a, b in itertools.product(range(len(space.width_mults)), repeat=2)]
    for stem, e, widths in itertools.product(space.stem_depth_choices, space.expand_ratios, pairs):
        yield top.replace(depths=(stem, *top.depths[1:]), expand_ratios=(e,) * n_blocks, width_indices=widths)
