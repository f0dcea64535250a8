"""How input images are prepared for a model: resolution, resize and crop, interpolation, mean/std (torch-free).

The record timm keeps as a model's ``pretrained_cfg`` (``input_size``, ``interpolation``, ``crop_pct``, ``mean``,
``std``) and optimum as a preprocessor config. Released weights carry one in their metadata
(`compat.released.SupernetMeta.preprocessing`, `compat.specialized.SpecializedMeta.preprocessing`), every export
writes one into ``export_report.json``, and the data loaders (`ofa_deploy.data`) read it instead of constants.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ofa_deploy.errors import ConfigError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INTERPOLATIONS = ("bilinear", "bicubic", "nearest")


@dataclass(frozen=True)
class Preprocessing:
    """One image pipeline: RGB in [0, 1] → resize → center crop → ``(x - mean) / std``, NCHW float32.

    Attributes:
        resolution: side (pixels) of the square model input.
        mean, std: per-channel (R, G, B) normalisation of pixel values scaled to [0, 1].
        crop_ratio: the shorter side is resized to ``resolution / crop_ratio`` (rounded), then the center
            ``resolution`` square is cropped (timm's ``crop_pct``; OFA evaluates with 0.875).
        interpolation: resampling of the resize: ``"bilinear"``, ``"bicubic"`` or ``"nearest"``.
    """

    resolution: int = 224
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    crop_ratio: float = 0.875
    interpolation: str = "bilinear"

    def __post_init__(self) -> None:
        if isinstance(self.resolution, bool) or not isinstance(self.resolution, int) or self.resolution < 1:
            raise ConfigError(f"preprocessing resolution must be a positive integer, got {self.resolution!r}")
        for name in ("mean", "std"):
            values = getattr(self, name)
            if isinstance(values, (str, bytes)) or not hasattr(values, "__len__") or len(values) != 3 \
                    or not all(_finite(v) for v in values):
                raise ConfigError(f"preprocessing {name} must be 3 finite numbers (R, G, B), got {values!r}")
            object.__setattr__(self, name, tuple(float(v) for v in values))
        if any(s <= 0 for s in self.std):
            raise ConfigError(f"preprocessing std must be > 0 per channel, got {self.std}")
        if not _finite(self.crop_ratio) or not 0 < self.crop_ratio <= 1:
            raise ConfigError(f"preprocessing crop_ratio must be in (0, 1], got {self.crop_ratio!r}")
        if self.interpolation not in INTERPOLATIONS:
            raise ConfigError(f"preprocessing interpolation must be one of {', '.join(INTERPOLATIONS)}, "
                              f"got {self.interpolation!r}")

    @property
    def resize_to(self) -> int:
        """The shorter side before the center crop."""
        return max(self.resolution, int(round(self.resolution / self.crop_ratio)))

    def at(self, resolution: int) -> Preprocessing:
        """The same pipeline for another input side (an elastic supernet's subnets pick their resolution)."""
        return dataclasses.replace(self, resolution=int(resolution))

    def to_dict(self) -> dict[str, Any]:
        return {"resolution": self.resolution, "mean": list(self.mean), "std": list(self.std),
                "crop_ratio": self.crop_ratio, "resize_to": self.resize_to, "interpolation": self.interpolation,
                "channel_order": "RGB", "pixel_scale": 1 / 255, "layout": "NCHW"}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Preprocessing:
        """Inverse of `to_dict` (its derived keys are ignored); bad values are a ConfigError naming the field."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"a preprocessing record must be a mapping, got {type(data).__name__}")
        fields = {f.name for f in dataclasses.fields(cls)}
        derived = {"resize_to", "channel_order", "pixel_scale", "layout"}
        unknown = sorted(map(str, set(data) - fields - derived))
        if unknown:
            raise ConfigError(f"preprocessing record: unknown keys {unknown}; expected {sorted(fields)}")
        return cls(**{k: v for k, v in data.items() if k in fields})


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


#: OFA's ImageNet evaluation: resize the shorter side to resolution / 0.875, center crop, bilinear, ImageNet mean/std
OFA_IMAGENET = Preprocessing()
