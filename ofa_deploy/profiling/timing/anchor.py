"""The anchor model of a space, and what a latency table records about it.

The anchor is a fixed subnet of the space (by default the middle choice of every gene at the middle
resolution) that every timed item is paired with (`profiling.timing.protocol`). A table built with it stores its
entries in anchor units and `AnchorInfo`: which subnet the anchor is and its absolute median time during the
build, so ``ms = units * AnchorInfo.ms`` and a later measurement can be compared at the same reference speed.
"""
from __future__ import annotations

from pathlib import Path

from ofa_deploy.errors import ConfigError
from ofa_deploy.spaces import SearchSpace, SubnetConfig


def default_anchor_config(space: SearchSpace) -> SubnetConfig:
    """The middle choice of every gene (resolution included): a mid-sized subnet, fixed for the space."""
    values = []
    for gene in space.genes():
        choices = sorted(gene.choices)
        values.append(choices[(len(choices) - 1) // 2] if gene.name != "resolution" else choices[len(choices) // 2])
    return space.config_from_values(values)


def resolve_anchor_config(space: SearchSpace, anchor: str | None, *, source: str = "") -> SubnetConfig:
    """The profile's `anchor` (a subnet string of the space, or None/"auto" for the default) as a config."""
    if anchor in (None, "", "auto"):
        return default_anchor_config(space)
    try:
        return space.validate(SubnetConfig.from_string(str(anchor)))
    except ConfigError as exc:
        where = f" of {source}" if source else ""
        raise ConfigError(f"the anchor {anchor!r}{where} is not a subnet of {space.name}: {exc}. Set the profile's "
                          "'anchor' to a subnet string of this space, or to 'auto'") from None


def anchor_model(space: SearchSpace, cfg: SubnetConfig, model_dir: Path, *, batch_size: int = 1,
                 profile: str = "") -> Path:
    """The anchor exported to ONNX (deterministic; reused if present); ConfigError naming the profile on failure."""
    from ofa_deploy.profiling.models import export_subnet

    try:
        return export_subnet(space, cfg, model_dir, batch_size=batch_size)
    except Exception as exc:  # noqa: BLE001 - any exporter failure becomes one clear error
        raise ConfigError(f"the anchor model {cfg.to_string()} of profile {profile or '?'} could not be exported to "
                          f"{model_dir}: {exc}") from exc


__all__ = ["anchor_model", "default_anchor_config", "resolve_anchor_config"]
