"""Torch-free search spaces: configs, layer specs, the layer walk, sampling and gene arrays."""
from ofa_deploy.spaces.base import Gene, PlacedLayer, SearchSpace, as_generator
from ofa_deploy.spaces.config import SubnetConfig
from ofa_deploy.spaces.layer_spec import LayerSpec, conv_out_size, make_divisible
from ofa_deploy.spaces.mobile import MobileSpace
from ofa_deploy.spaces.registry import get_space, list_spaces, space_description
from ofa_deploy.spaces.resnet import ResNetSpace


def walk_layers(space: SearchSpace, cfg: SubnetConfig, resolution: int | None = None) -> list[LayerSpec]:
    """The layers of subnet `cfg` of `space` at `resolution` (default: the config's)."""
    return space.walk_layers(cfg, resolution)


__all__ = [
    "Gene", "LayerSpec", "MobileSpace", "PlacedLayer", "ResNetSpace", "SearchSpace", "SubnetConfig",
    "as_generator", "conv_out_size", "get_space", "list_spaces", "make_divisible", "space_description", "walk_layers",
]
