"""Every ONNX file a build times, in one module: whole subnets (in-context tasks, anchors, validation), single
layers (isolated work items), the per-call overhead model, and the on-device plan directory (`write_plan`).

Latency does not depend on weight values, so subnets are exported with a fixed-seed random init (under a forked
RNG: the caller's global torch RNG is untouched). File names are content keys, so every build, validation and
deploy on the machine shares them.
"""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ofa_deploy.errors import ConfigError, ExportError
from ofa_deploy.fileio import atomic_path, atomic_write_text
from ofa_deploy.profiling.plan import ONDEVICE_SCRIPT_NAME, Plan, WorkItem, choose_anchors, covering_set, spec_id
from ofa_deploy.spaces import LayerSpec, SearchSpace, SubnetConfig

log = logging.getLogger(__name__)


def subnet_file(cfg: SubnetConfig, model_dir: Path, batch_size: int = 1) -> Path:
    return model_dir / f"{cfg.to_string().replace(',', '_')}_b{batch_size}.onnx"


def export_subnet(space: SearchSpace, cfg: SubnetConfig, model_dir: Path, *, batch_size: int = 1) -> Path:
    """The whole subnet as ONNX (fixed batch, seeded random init); reused if present."""
    path = subnet_file(cfg, model_dir, batch_size)
    if not path.is_file():
        import torch

        from ofa_deploy.export.onnx import torch_to_onnx
        from ofa_deploy.nn.layers import SubnetModel

        model_dir.mkdir(parents=True, exist_ok=True)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = SubnetModel(space.walk_layers(cfg))
        torch_to_onnx(model, path, dynamic_batch=False, input_shape=(batch_size, 3, cfg.resolution, cfg.resolution))
    return path


def int8_subnet(onnx_path: Path) -> Path:
    """The QDQ int8 version of an exported subnet (`export.quantize.quantize_onnx_int8`, calibrated on one seeded
    random batch: latency does not depend on values); reused if present."""
    path = onnx_path.with_name(onnx_path.stem + "_int8.onnx")
    if not path.is_file():
        import numpy as np
        import onnx

        from ofa_deploy.export.quantize import quantize_onnx_int8

        dims = [d.dim_value for d in onnx.load(str(onnx_path), load_external_data=False).graph.input[0].type
                .tensor_type.shape.dim]
        batch = np.random.default_rng(0).standard_normal(dims).astype(np.float32)
        with atomic_path(path) as tmp:
            quantize_onnx_int8(onnx_path, tmp, [batch])
    return path


def profile_model(space: SearchSpace, cfg: SubnetConfig, profile: Any, model_dir: Path, *,
                  model_format: str = "onnx") -> tuple[Any, tuple[int, ...]]:
    """The whole subnet as the profile's backend runs it, and its input shape: an eager module for
    ``model_format="module"``, else ONNX (QDQ int8 when the profile's precision is int8)."""
    batch = int(getattr(profile, "batch_size", 1) or 1)
    shape = (batch, 3, cfg.resolution, cfg.resolution)
    if model_format == "module":
        import torch

        from ofa_deploy.nn.layers import SubnetModel

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            return SubnetModel(space.walk_layers(cfg)).eval(), shape
    path = export_subnet(space, cfg, model_dir, batch_size=batch)
    if getattr(profile, "precision", "fp32") == "int8":
        path = int8_subnet(path)
    return path, shape


def export_subnets(space: SearchSpace, cfgs: Sequence[SubnetConfig], model_dir: Path, *, batch_size: int = 1
                   ) -> list[Path]:
    """`export_subnet` for each config."""
    return [export_subnet(space, c, model_dir, batch_size=batch_size) for c in cfgs]


def model_cache_dir() -> Path:
    """Where exported layer/subnet models are kept between builds: ``$OFA_DEPLOY_CACHE/profiling/models``
    (default ``~/.cache/ofa-deploy/profiling/models``); file names are content keys, so profiles share them."""
    from ofa_deploy.paths import cache_root

    return cache_root() / "profiling" / "models"


def write_identity_model(path: Path) -> Path:
    """A 1-element Identity ONNX model: its run time is the backend's fixed per-call overhead."""
    if path.is_file():
        return path
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["input"], ["output"])], "overhead",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 1, 1, 1])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1, 1, 1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    with atomic_path(path) as tmp:
        onnx.save(model, str(tmp))
    return path


def export_config(space: SearchSpace, cfg: SubnetConfig, model_dir: Path, batch_size: int = 1) -> Path:
    """The whole subnet as ONNX (`export_subnet`); the in-context tasks' models."""
    return export_subnet(space, cfg, model_dir, batch_size=batch_size)


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
    exported (``anchor`` in plan.json) and the device times every item against it (`profiling.timing.protocol`).
    Returns the plan.json path.
    """
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
    write_identity_model(models / "overhead.onnx")
    subnets = []
    if space is not None and in_context:
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


__all__ = ["convert_to_ort", "export_config", "export_layer", "export_subnet", "export_subnets", "int8_subnet",
           "layer_model", "model_cache_dir", "profile_model", "subnet_file", "write_identity_model", "write_plan"]
