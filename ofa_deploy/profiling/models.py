"""The ONNX files that profiling times: whole subnets (in-context tasks, anchors, validation), seeded and cached.

Latency does not depend on weight values, so subnets are exported with a fixed-seed random init (under a forked
RNG: the caller's global torch RNG is untouched). File names are content keys, so every build, validation and
deploy on the machine shares them.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ofa_deploy.spaces import SearchSpace, SubnetConfig


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


def export_subnets(space: SearchSpace, cfgs: Sequence[SubnetConfig], model_dir: Path, *, batch_size: int = 1
                   ) -> list[Path]:
    """`export_subnet` for each config."""
    return [export_subnet(space, c, model_dir, batch_size=batch_size) for c in cfgs]


__all__ = ["export_subnet", "export_subnets", "subnet_file"]
