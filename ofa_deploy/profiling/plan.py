"""Profiling plans: every distinct `LayerSpec` a space can produce at some resolutions, as work items.

The specs come from the same `space.walk_layers` the predictor and the MAC counter use, walked over a set of
configs that covers every layer variant:

- MobileNetV3 / ProxylessNAS: a block's spec depends only on its position and its own kernel and expand
  ratio (depth decides whether it exists), so the max-depth configs with one uniform (kernel, expand) pair
  each cover every block variant: |K| x |E| walks per resolution (MBv3: 9 walks → 96 specs, as in OFA's
  Note10 tables).
- ResNet: a block's spec also depends on its stage's width index and the previous stage's (its input
  channels), and the stem on two width indices and the stem-depth flag. Alternating width tuples (a, b, a, ...)
  put every ordered pair on every adjacent slot pair: 9 tuples x uniform expand ratio x stem flag = 54 walks.

`write_plan` exports one ONNX model per item (the layer alone, fixed batch, BN folded) plus ``plan.json`` for
the standalone on-device script (`ofa_deploy/ondevice.py`, copied into the plan directory as
``ondevice_profile.py``; on a host with ofa-deploy installed: ``python -m ofa_deploy.ondevice``).
"""
from __future__ import annotations

ONDEVICE_SCRIPT_NAME = "ondevice_profile.py"

import hashlib
import itertools
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ofa_deploy.errors import ConfigError, ExportError
from ofa_deploy.fileio import read_json_file
from ofa_deploy.spaces import LayerSpec, SearchSpace, SubnetConfig

log = logging.getLogger(__name__)

PLAN_FORMAT = "ofa-deploy-profile-plan"
PLAN_VERSION = 1


def spec_id(spec: LayerSpec) -> str:
    """A stable 16-hex id of a spec: SHA-1 of its canonical JSON (same spec → same id, in any process)."""
    text = json.dumps(spec.to_dict(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def covering_configs(space: SearchSpace, resolution: int) -> Iterator[SubnetConfig]:
    """Configs whose walks together contain every distinct layer spec of `space` at `resolution`."""
    space.check_resolution(resolution)
    top = space.max_config(resolution)
    if space.family in ("mbv3", "proxyless"):
        n = len(top.kernel_sizes)
        for k, e in itertools.product(space.kernel_sizes, space.expand_ratios):  # type: ignore[attr-defined]
            yield top.replace(kernel_sizes=(k,) * n, expand_ratios=(e,) * n)
    elif space.family == "resnet":
        n_blocks = len(top.expand_ratios)
        n_widths = len(space.width_mults)  # type: ignore[attr-defined]
        stem_choices = space.stem_depth_choices  # type: ignore[attr-defined]
        n_slots = len(top.width_indices)
        # alternating (a, b, a, b, ...) tuples put every ordered pair of width indices on every adjacent slot pair
        pairs = [tuple(a if j % 2 == 0 else b for j in range(n_slots))
                 for a, b in itertools.product(range(n_widths), repeat=2)]
        for stem, e, widths in itertools.product(stem_choices, space.expand_ratios, pairs):  # type: ignore[attr-defined]
            yield top.replace(depths=(stem, *top.depths[1:]), expand_ratios=(e,) * n_blocks, width_indices=widths)
    else:
        raise ConfigError(f"no layer enumeration for space family {space.family!r}; expected mbv3, proxyless or resnet")


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


def layer_model(spec: LayerSpec) -> Any:
    """The module timed for `spec`: the layer alone (random init, eval mode)."""
    from ofa_deploy.nn.layers import build_layer

    return build_layer(spec).eval()


def export_layer(item: WorkItem, path: Path, *, opset: int = 17) -> Path:
    """One ONNX model for a work item (fixed batch; BN folded by the exporter). Skips existing files."""
    if path.is_file():
        return path
    from ofa_deploy.export.onnx import torch_to_onnx

    return torch_to_onnx(layer_model(item.spec), path, input_shape=item.input_shape, opset=opset,
                         dynamic_batch=False, output_name="output")


def convert_to_ort(model_dir: Path, *, optimization_style: str = "Runtime", target_platform: str = "arm") -> None:
    """Convert every .onnx in `model_dir` to .ort with ORT's tool (Runtime style: portable to the device)."""
    cmd = [sys.executable, "-m", "onnxruntime.tools.convert_onnx_models_to_ort", str(model_dir),
           "--optimization_style", optimization_style, "--target_platform", target_platform]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ExportError(f"ORT format conversion failed ({' '.join(cmd)}):\n{proc.stderr[-2000:]}")
    for path in model_dir.glob("*.with_runtime_opt.ort"):  # the tool tags Runtime-style outputs; plan names are <stem>.ort
        os.replace(path, path.with_name(path.name.replace(".with_runtime_opt.ort", ".ort")))


def write_plan(plan: Plan, out_dir: str | os.PathLike[str], *, profile: Any = None, ort_format: bool = False,
               timer: dict[str, Any] | None = None, anchors: int = 3, space: SearchSpace | None = None,
               anchor: SubnetConfig | None = None, in_context: bool | None = None) -> Path:
    """Export every item's layer model into `out_dir`/models and write `out_dir`/plan.json (atomically).

    Existing model files are kept, so an interrupted `write_plan` resumes. With `ort_format`, .ort files
    (Runtime optimisation style, portable) are written next to the .onnx files and listed in the plan.
    With `space`, the covering subnets are exported too (``subnets`` in plan.json, with the layer ids of each
    position) so the on-device script can time layers in context (about 20-30 MB per subnet: 9 per resolution
    for MobileNetV3). With `anchor` (a subnet of `space`, which is then required), the anchor model is
    exported (``anchor`` in plan.json) and the device times every item against it (`profiling.protocol`).
    Returns the plan.json path.
    """
    from ofa_deploy.fileio import atomic_write_text

    in_context = space is not None if in_context is None else in_context
    out = Path(out_dir)
    models = out / "models"
    models.mkdir(parents=True, exist_ok=True)
    entries = []
    for item in plan.items:
        name = f"{item.id}_b{plan.batch_size}"
        export_layer(item, models / f"{name}.onnx")
        entry = item.to_dict()
        entry["file"] = f"models/{name}.onnx"
        if ort_format:
            entry["ort_file"] = f"models/{name}.ort"
        entries.append(entry)
    from ofa_deploy.profiling.builder import write_identity_model

    write_identity_model(models / "overhead.onnx")
    subnets = []
    if space is not None and in_context:
        from ofa_deploy.profiling.incontext import covering_set, export_config

        for cfg in covering_set(space, plan.resolutions, {i.spec for i in plan.items}):
            path = export_config(space, cfg, models, plan.batch_size)
            entry = {"config": cfg.to_string(), "file": f"models/{path.name}",
                     "input_shape": [plan.batch_size, 3, cfg.resolution, cfg.resolution],
                     "layers": [spec_id(s) for s in space.walk_layers(cfg)]}
            if ort_format:
                entry["ort_file"] = f"models/{path.stem}.ort"
            subnets.append(entry)
    anchor_entry = None
    if anchor is not None:
        if space is None:
            raise ConfigError("write_plan: an anchor subnet needs the space it belongs to (space=...)")
        from ofa_deploy.profiling.models import export_subnet

        path = export_subnet(space, anchor, models, batch_size=plan.batch_size)
        anchor_entry = {"config": anchor.to_string(), "file": f"models/{path.name}",
                        "input_shape": [plan.batch_size, 3, anchor.resolution, anchor.resolution]}
        if ort_format:
            anchor_entry["ort_file"] = f"models/{path.stem}.ort"
    if ort_format:
        convert_to_ort(models)
    data = plan.to_dict()
    if anchor_entry is not None:
        data["anchor"] = anchor_entry
    data["overhead_file"] = "models/overhead.ort" if ort_format else "models/overhead.onnx"
    data["items"] = entries
    if subnets:
        data["subnets"] = subnets
    data["anchors"] = [e.id for e in choose_anchors(plan, anchors)]
    if profile is not None:
        data["profile"] = profile.to_dict() if hasattr(profile, "to_dict") else dict(profile)
    if timer is not None:
        data["timer"] = dict(timer)
    path = out / "plan.json"
    atomic_write_text(path, json.dumps(data, indent=1))
    from ofa_deploy.paths import ondevice_script

    atomic_write_text(out / ONDEVICE_SCRIPT_NAME, ondevice_script().read_text())  # ship the script with the plan
    log.info("wrote %s (%d layer models)", path, len(entries))
    return path


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
