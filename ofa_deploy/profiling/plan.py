"""Profiling plans: every distinct `LayerSpec` a space can produce at some resolutions, as work items.

The specs come from the same `space.walk_layers` the predictor and the MAC counter use, walked over a set of
configs that covers every layer variant: each model family declares that set (`ModelFamily.plan_configs`; for
MobileNetV3 / ProxylessNAS `spaces.mobile.mobile_plan_configs`, for ResNet `spaces.resnet.resnet_plan_configs`).

`ofa_deploy.profiling.models.write_plan` exports one ONNX model per item (the layer alone, fixed batch, BN folded) plus ``plan.json`` for
the standalone on-device script (`ofa_deploy/ondevice.py`, copied into the plan directory as
``ondevice_profile.py``; on a host with ofa-deploy installed: ``python -m ofa_deploy.ondevice``).
"""
from __future__ import annotations

ONDEVICE_SCRIPT_NAME = "ondevice_profile.py"

import hashlib
import json
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from ofa_deploy.errors import ConfigError
from ofa_deploy.fileio import read_json_file
from ofa_deploy.spaces import LayerSpec, SearchSpace, SubnetConfig
from ofa_deploy.spaces.family import family_of

log = logging.getLogger(__name__)

PLAN_FORMAT = "ofa-deploy-profile-plan"
PLAN_VERSION = 1

#: ids of the non-layer work items a build times: the per-call overhead model, the anchor, calibration subnets
OVERHEAD_ID = "__overhead__"
ANCHOR_ID = "__anchor__"
CALIBRATION_PREFIX = "calib:"


def spec_id(spec: LayerSpec) -> str:
    """A stable 16-hex id of a spec: SHA-1 of its canonical JSON (same spec → same id, in any process)."""
    text = json.dumps(spec.to_dict(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def covering_configs(space: SearchSpace, resolution: int) -> Iterator[SubnetConfig]:
    """Configs whose walks together contain every distinct layer spec of `space` at `resolution` (the family's
    layer-plan rule, `ModelFamily.plan_configs`)."""
    space.check_resolution(resolution)
    return iter(family_of(space).plan_configs(space, resolution))


def distinct_specs(space: SearchSpace, resolutions: Iterable[int]) -> list[tuple[LayerSpec, tuple[int, ...]]]:
    """Every distinct spec at `resolutions` (first-seen order) with the resolutions whose subnets use it."""
    seen: dict[LayerSpec, list[int]] = {}
    for res in resolutions:
        for cfg in covering_configs(space, int(res)):
            for spec in space.walk_layers(cfg):
                users = seen.setdefault(spec, [])
                if not users or users[-1] != res:
                    users.append(int(res))
    return [(spec, tuple(users)) for spec, users in seen.items()]


def input_shape(spec: LayerSpec, batch_size: int = 1) -> tuple[int, ...]:
    """The input a layer model takes: NCHW, or (N, C, 1, 1) for the classifier (it flattens first)."""
    return (batch_size, spec.in_channels, spec.in_size, spec.in_size)


@dataclass(frozen=True)
class WorkItem:
    """One layer to measure: its id (stable hash), spec, input shape and the resolutions that need it."""

    id: str
    spec: LayerSpec
    input_shape: tuple[int, ...]
    resolutions: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "spec": self.spec.to_dict(), "input_shape": list(self.input_shape),
                "resolutions": list(self.resolutions)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WorkItem:
        spec = LayerSpec.from_dict(data["spec"])
        if spec_id(spec) != data["id"]:
            raise ConfigError(f"work item {data['id']}: id does not match its spec (expected {spec_id(spec)})")
        return cls(data["id"], spec, tuple(data["input_shape"]), tuple(data.get("resolutions", ())))


@dataclass
class Plan:
    """The work items of one LUT build (one per distinct spec)."""

    space: str
    resolutions: tuple[int, ...]
    batch_size: int
    items: list[WorkItem] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.items)

    @cached_property
    def by_id(self) -> dict[str, WorkItem]:
        """The work items by id (built once: a plan is not changed after `make_plan` / `read_plan`)."""
        return {i.id: i for i in self.items}

    def __iter__(self) -> Iterator[WorkItem]:
        return iter(self.items)

    def to_dict(self) -> dict[str, Any]:
        return {"format": PLAN_FORMAT, "version": PLAN_VERSION, "space": self.space,
                "resolutions": list(self.resolutions), "batch_size": self.batch_size,
                "items": [i.to_dict() for i in self.items]}


def make_plan(space: SearchSpace, resolutions: Sequence[int] | None = None, *, batch_size: int = 1,
              limit: int | None = None) -> Plan:
    """The plan for `space` at `resolutions` (default: all of the space's); `limit` keeps the first items."""
    res = tuple(int(r) for r in (resolutions or space.resolutions))
    for r in res:
        space.check_resolution(r)
    pairs = distinct_specs(space, res)
    if limit is not None:
        pairs = pairs[:limit]
    items = [WorkItem(spec_id(s), s, input_shape(s, batch_size), users) for s, users in pairs]
    log.info("plan for %s at %s: %d distinct layers", space.name, res, len(items))
    return Plan(space.name, res, batch_size, items)


def covering_set(space: SearchSpace, resolutions: Sequence[int], plan_specs: set[Any]) -> list[SubnetConfig]:
    """Covering configs at `resolutions` (deduplicated), checked to contain every spec of the plan."""
    cfgs = list(dict.fromkeys(c for r in resolutions for c in covering_configs(space, int(r))))
    seen = {s for c in cfgs for s in space.walk_layers(c)}
    if not plan_specs <= seen:
        raise ConfigError(f"{len(plan_specs - seen)} planned layers occur in no covering config")
    return cfgs


def read_plan(plan_dir: str | os.PathLike[str]) -> tuple[Plan, dict[str, Any]]:
    """Load plan.json from a plan directory (or the file itself); returns the Plan and the raw JSON."""
    path = Path(plan_dir)
    path = path / "plan.json" if os.path.isdir(path) else path
    data = read_json_file(path, what="profiling plan", hint="write one with `ofa-deploy profile plan`")
    if not isinstance(data, dict) or data.get("format") != PLAN_FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise ConfigError(f"{path} is not a profiling plan (format {found!r}, expected {PLAN_FORMAT!r})")
    items = [WorkItem.from_dict(e) for e in data["items"]]
    return Plan(data["space"], tuple(data["resolutions"]), int(data.get("batch_size", 1)), items), data


def choose_anchors(plan: Plan, n: int = 3) -> list[WorkItem]:
    """`n` anchor items spread over the cost range (by MACs): cheap, middle and expensive layers."""
    if n <= 0 or not plan.items:
        return []
    from ofa_deploy.spaces.costs import layer_macs

    ranked = sorted(plan.items, key=lambda i: (layer_macs(i.spec), i.id))
    if n >= len(ranked):
        return ranked
    picks = [ranked[round(j * (len(ranked) - 1) / (n - 1))] if n > 1 else ranked[len(ranked) // 2] for j in range(n)]
    return list(dict.fromkeys(picks))

