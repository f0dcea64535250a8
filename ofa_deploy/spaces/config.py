"""`SubnetConfig`: one subnet of an elastic supernet, as a frozen, hashable value.

The config says *which* subnet; the search space says whether it is valid. Field names are
descriptive; `from_ofa`/`to_ofa` map them to OFA's `ks`/`e`/`d`/`w` arch dicts.

Compact string form (round-trips exactly)::

    r224-d4,3,2,4,4-k3,5,7,...-e3,4,6,...          # MobileNet-style spaces
    r224-d2,1,0,2,1-e0.25,0.35,...-w2,1,0,...      # ResNet space (w = width-multiplier indices)
"""
from __future__ import annotations

import json
import math
import numbers
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ofa_deploy.errors import ConfigError

_FIELDS = ("resolution", "depths", "kernel_sizes", "expand_ratios", "width_indices")
_NUMBER = re.compile(r"[0-9]+(\.[0-9]+)?([eE]\+?[0-9]+)?", re.ASCII)  # what the compact string form allows
_STRING_KEYS = {"r": "resolution", "d": "depths", "k": "kernel_sizes", "e": "expand_ratios", "w": "width_indices"}


def short_repr(value: Any, limit: int = 120) -> str:
    """repr(value) for a message, cut to `limit` characters."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def finite_number(value: Any) -> float | None:
    """`value` as a finite float, or None if it is not a real number (bools, NaN, infinities, huge ints)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    try:
        out = float(value)
    except (OverflowError, ValueError, TypeError):
        return None
    return out if math.isfinite(out) else None


def _as_int(name: str, value: Any, context: Any = None) -> int:
    as_float = finite_number(value)
    if as_float is None or not as_float.is_integer():
        where = f" in {short_repr(list(context))}" if context is not None else ""
        raise ConfigError(f"{name} must contain finite integers, got {short_repr(value)}{where}")
    return int(value) if isinstance(value, numbers.Integral) else int(as_float)


def _int_tuple(name: str, values: Any) -> tuple[int, ...]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise ConfigError(f"{name} must be a list of integers, got {short_repr(values)}")
    return tuple(_as_int(name, v, values) for v in values)


def _float_tuple(name: str, values: Any) -> tuple[float, ...]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise ConfigError(f"{name} must be a list of numbers, got {short_repr(values)}")
    out = []
    for v in values:
        as_float = finite_number(v)
        if as_float is None:
            raise ConfigError(f"{name} must contain finite numbers, got {short_repr(v)} in {short_repr(list(values))}")
        out.append(as_float)
    return tuple(out)


def _number_str(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


@dataclass(frozen=True)
class SubnetConfig:
    """One subnet: input resolution and per-stage / per-block elastic choices.

    Attributes:
        resolution: input image side in pixels.
        depths: active blocks per stage (MobileNet spaces) or extra blocks per stage with the
            stem flag first (ResNet space, OFA's `d`).
        kernel_sizes: depthwise kernel per dynamic block (empty for ResNet).
        expand_ratios: expand ratio per dynamic block (entries of skipped blocks are kept, unused).
        width_indices: ResNet width-multiplier index per width slot (empty for MobileNet spaces).
    """

    resolution: int
    depths: tuple[int, ...]
    kernel_sizes: tuple[int, ...] = ()
    expand_ratios: tuple[float, ...] = ()
    width_indices: tuple[int, ...] = field(default=())

    def __post_init__(self) -> None:
        res = finite_number(self.resolution)
        if res is None or not res.is_integer() or res <= 0:
            raise ConfigError(f"resolution must be a positive integer, got {short_repr(self.resolution)}")
        object.__setattr__(self, "resolution", _as_int("resolution", self.resolution))
        object.__setattr__(self, "depths", _int_tuple("depths", self.depths))
        object.__setattr__(self, "kernel_sizes", _int_tuple("kernel_sizes", self.kernel_sizes))
        object.__setattr__(self, "expand_ratios", _float_tuple("expand_ratios", self.expand_ratios))
        object.__setattr__(self, "width_indices", _int_tuple("width_indices", self.width_indices))

    # ---- dict / JSON -------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict with descriptive keys; expand ratios that are whole numbers become ints."""
        return {
            "resolution": self.resolution,
            "depths": list(self.depths),
            "kernel_sizes": list(self.kernel_sizes),
            "expand_ratios": [int(e) if e.is_integer() else e for e in self.expand_ratios],
            "width_indices": list(self.width_indices),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SubnetConfig:
        """Inverse of `to_dict`. Rejects unknown keys; never mutates `data`."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"a subnet config must be a mapping, got {type(data).__name__}")
        unknown = sorted(map(repr, set(data) - set(_FIELDS)))
        if unknown:
            hint = " (this looks like an OFA arch dict: use SubnetConfig.from_ofa)" if {"ks", "e", "d"} & set(data) else ""
            raise ConfigError(f"unknown subnet config keys {', '.join(unknown)}; expected a subset of {list(_FIELDS)}{hint}")
        missing = [k for k in ("resolution", "depths") if k not in data]
        if missing:
            raise ConfigError(f"subnet config is missing {missing}; expected keys {list(_FIELDS)}")
        return cls(**{k: data[k] for k in _FIELDS if k in data})

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> SubnetConfig:
        from ofa_deploy.fileio import parse_json_text

        return cls.from_dict(parse_json_text(text, where="subnet config"))

    # ---- compact string ----------------------------------------------------------------------------
    def to_string(self) -> str:
        parts = [f"r{self.resolution}", "d" + ",".join(map(str, self.depths))]
        if self.kernel_sizes:
            parts.append("k" + ",".join(map(str, self.kernel_sizes)))
        if self.expand_ratios:
            parts.append("e" + ",".join(_number_str(e) for e in self.expand_ratios))
        if self.width_indices:
            parts.append("w" + ",".join(map(str, self.width_indices)))
        return "-".join(parts)

    @classmethod
    def from_string(cls, text: str) -> SubnetConfig:
        """Parse the compact form, e.g. ``r224-d4,4,4,4,4-k7,...-e6,...``."""
        if not isinstance(text, str):
            raise ConfigError(f"a subnet string must be a str like 'r224-d4,3,2,...', got {type(text).__name__}")
        fields: dict[str, Any] = {}
        for part in text.strip().split("-"):
            key, body = part[:1], part[1:]
            if key not in _STRING_KEYS or not body or _STRING_KEYS[key] in fields:
                raise ConfigError(
                    f"cannot parse subnet string {short_repr(text)} at {short_repr(part)}: expected parts like "
                    "'r224', 'd4,3,2', "
                    "'k3,5,7', 'e3,4,6', 'w0,1,2', each once, joined by '-'"
                )
            tokens = body.split(",")
            bad = next((t for t in tokens if not _NUMBER.fullmatch(t)), None)
            if bad is not None:
                raise ConfigError(f"cannot parse subnet string {short_repr(text)}: {short_repr(bad)} in "
                                  f"{short_repr(part)} "
                                  "is not a number; expected plain decimal numbers like 224, 3 or 0.35")
            values = [float(t) for t in tokens]
            fields[_STRING_KEYS[key]] = values[0] if key == "r" else values
        if "resolution" not in fields or "depths" not in fields:
            raise ConfigError(f"subnet string {short_repr(text)} needs at least 'r<resolution>' and 'd<depths>'")
        return cls(**fields)

    def __str__(self) -> str:
        return self.to_string()

    # ---- OFA arch dicts ----------------------------------------------------------------------------
    @classmethod
    def from_ofa(cls, arch: Mapping[str, Any], resolution: int | None = None) -> SubnetConfig:
        """Build from an OFA arch dict: ``{"ks","e","d"}`` or ResNet ``{"d","e","w"}``.

        The resolution comes from ``image_size`` or ``r`` (a scalar or one-element list) or the
        `resolution` argument. Extra keys (as OFA tolerates) are ignored. `arch` is not mutated.
        """
        if not isinstance(arch, Mapping):
            raise ConfigError(f"an OFA arch dict must be a mapping, got {type(arch).__name__}")
        if "d" not in arch or "e" not in arch:
            keys = ", ".join(sorted(map(repr, arch)))
            raise ConfigError(f"OFA arch dict needs 'd' and 'e' (and 'ks' or 'w'), got keys {keys}")
        res: Any = resolution
        for key in ("image_size", "r"):
            if res is None and arch.get(key) is not None:
                res = arch[key]
        if isinstance(res, Sequence) and not isinstance(res, str):
            if len(res) != 1:
                raise ConfigError(f"OFA arch dict resolution must be one value, got {short_repr(res)}")
            res = res[0]
        if res is None:
            raise ConfigError("OFA arch dict has no 'image_size' or 'r': pass resolution=... explicitly")
        return cls(
            resolution=res,
            depths=arch["d"],
            kernel_sizes=arch.get("ks") or (),
            expand_ratios=arch["e"],
            width_indices=arch.get("w") or (),
        )

    def to_ofa(self) -> dict[str, Any]:
        """OFA arch dict with ``image_size`` (ResNet dicts carry ``w`` instead of ``ks``)."""
        arch: dict[str, Any] = {}
        if self.kernel_sizes:
            arch["ks"] = list(self.kernel_sizes)
        arch["e"] = [int(e) if e.is_integer() else e for e in self.expand_ratios]
        arch["d"] = list(self.depths)
        if self.width_indices:
            arch["w"] = list(self.width_indices)
        arch["image_size"] = self.resolution
        return arch

    def replace(self, **changes: Any) -> SubnetConfig:
        data = {k: getattr(self, k) for k in _FIELDS}
        data.update(changes)
        return SubnetConfig(**data)
