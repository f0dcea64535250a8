"""`AnchorInfo`: the anchor subnet of a latency table and its absolute time during the build (torch-free).

Building and timing the anchor model is `ofa_deploy.profiling.timing.anchor`, which re-exports this class.
"""
from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

from ofa_deploy.errors import ConfigError
from ofa_deploy.spaces import SubnetConfig


@dataclass(frozen=True)
class AnchorInfo:
    """The anchor of a table: the subnet, its input, and its median absolute time (ms) during the build."""

    config: str
    space: str
    batch_size: int
    ms: float
    visits: int = 0
    swing: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.ms, (int, float)) or isinstance(self.ms, bool) or not math.isfinite(self.ms) \
                or self.ms <= 0:
            raise ConfigError(f"anchor.ms must be a finite number > 0 (ms), got {self.ms!r}")
        SubnetConfig.from_string(self.config)

    @property
    def subnet(self) -> SubnetConfig:
        return SubnetConfig.from_string(self.config)

    def input_shape(self) -> tuple[int, int, int, int]:
        r = self.subnet.resolution
        return (self.batch_size, 3, r, r)

    @classmethod
    def from_visits(cls, config: str, space: str, batch_size: int, visits_ms: Sequence[float]) -> AnchorInfo:
        """The anchor of a build from its absolute visit times: their median, count and slowest/fastest."""
        if not visits_ms:
            raise ConfigError(f"the anchor {config} of {space} has no timed visit; resume the build")
        return cls(config=config, space=space, batch_size=int(batch_size), ms=statistics.median(visits_ms),
                   visits=len(visits_ms), swing=max(visits_ms) / min(visits_ms))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AnchorInfo:
        names = {f.name for f in fields(cls)}
        if not isinstance(data, Mapping) or not {"config", "space", "batch_size", "ms"} <= set(data) \
                or set(data) - names:
            raise ConfigError(f"latency table anchor: expected keys {sorted(names)}, got {data!r}")
        return cls(**dict(data))


__all__ = ["AnchorInfo"]
