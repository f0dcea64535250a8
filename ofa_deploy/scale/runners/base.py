"""The runner protocol of a device pool."""
from __future__ import annotations

import abc
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ofa_deploy.profiling.hosts.devices import DeviceSpec


class DeviceRunner(abc.ABC):
    """Connects to one device and times models there, each bracketed by the anchor (A, item, A)."""

    def __init__(self, device: DeviceSpec, profile: Any, protocol: Any) -> None:
        self.device = device
        self.profile = profile
        self.protocol = protocol

    @abc.abstractmethod
    def connect(self) -> dict[str, Any]:
        """Reach the device and prepare it; returns a description. Raises `DeviceUnavailableError`."""

    @abc.abstractmethod
    def paired_visit(self, model: Path, shape: Sequence[int], anchor: Path, anchor_shape: Sequence[int]
                     ) -> dict[str, float]:
        """``{"item_ms", "anchor_ms", "ratio"}``: the model timed between two anchor visits on the device."""

    def close(self) -> None:
        """Release the connection."""
