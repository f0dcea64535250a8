"""A synthetic adaptation target: a real timing backend whose subnets take a known, distorted time.

`SyntheticBackend` prepares eager subnet modules (`SubnetModel`, which keeps its layer specs) and its runner
spins on the wall clock for ``unit_ms * sum(source value of each layer * distortion(layer))``: the source
table's times distorted per layer by a known rule. The protocol times these runs like any other backend, so the
adaptation sees exactly the distortion it must recover, on any machine, loaded or not.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ofa_deploy.adapt.classes import layer_classes
from ofa_deploy.profiling.timing.backends.base import Backend, Runner
from ofa_deploy.spaces import LayerSpec, SearchSpace
from ofa_deploy.tables.latency import LatencyStats, LatencyTable, Provenance

Distortion = Callable[[LayerSpec], float]


def layer_cost(spec: LayerSpec) -> float:
    """A positive, shape-dependent source value for a layer (roughly its MACs, plus a fixed cost)."""
    width = max(spec.mid_channels, spec.out_channels)
    return 0.02 + 1e-6 * spec.in_size ** 2 * spec.in_channels * width * (1 + spec.kernel_size ** 2 / 9)


def synthetic_source(space: SearchSpace, *, device: str = "source-device") -> LatencyTable:
    """A table in ms for every layer of `space` (all resolutions), as another device's table would be."""
    from ofa_deploy.spaces.slots import SlotTables

    slots = SlotTables(space)
    table = LatencyTable(provenance=Provenance(device=device, host={"backend": "synthetic"}, supernet=space.name,
                                               profile_name="source-profile"))
    for r in space.resolutions:
        for spec in slots.specs_at(r):
            table[spec] = LatencyStats.from_samples([layer_cost(spec)])
    return table


def class_distortion(factors: dict[str, float]) -> Distortion:
    """Each layer's time times the product of the factors of its classes (`adapt.classes.layer_classes`)."""
    return lambda spec: math.prod(factors.get(c, 1.0) for c in layer_classes(spec))


def random_distortion(sigma: float, seed: int = 0) -> Distortion:
    """Each distinct layer's time times its own random log-normal factor, unrelated to its classes."""
    cache: dict[LayerSpec, float] = {}
    rng = np.random.default_rng(seed)

    def factor(spec: LayerSpec) -> float:
        if spec not in cache:
            cache[spec] = float(np.exp(rng.normal(0.0, sigma)))
        return cache[spec]

    return factor


class SpinRunner(Runner):
    natural_clock = "wall"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def run(self) -> None:
        end = time.perf_counter() + self.seconds
        while time.perf_counter() < end:
            pass


class SyntheticBackend(Backend):
    """Times subnet modules as ``unit_ms * sum(source value * distortion)`` of their layers (spinning)."""

    name = "synthetic"
    model_format = "module"

    def __init__(self, source: LatencyTable, distortion: Distortion, *, unit_ms: float = 0.1,
                 per_inference_ms: float = 0.0) -> None:
        self.source = source
        self.distortion = distortion
        self.unit_ms = unit_ms
        self.per_inference_ms = per_inference_ms

    def subnet_ms(self, specs: Sequence[LayerSpec]) -> float:
        return self.per_inference_ms + self.unit_ms * sum(self.source[s].median * self.distortion(s) for s in specs)

    def prepare(self, model: Any, input_shape: Sequence[int]) -> SpinRunner:
        return SpinRunner(self.subnet_ms(model.specs) / 1000)

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "version": "1", "threads": 1}
