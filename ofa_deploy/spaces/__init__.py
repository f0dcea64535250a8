"""Torch-free search spaces: configs, layer specs, the layer walk, sampling and gene arrays."""
from ofa_deploy.spaces.base import Gene, PlacedLayer, SearchSpace, as_generator
from ofa_deploy.spaces.config import SubnetConfig
from ofa_deploy.spaces.layer_spec import LayerSpec, conv_out_size, make_divisible
from ofa_deploy.spaces.mobile import MobileSpace
from ofa_deploy.spaces.registry import get_space, list_spaces, space_description
from ofa_deploy.spaces.resnet import ResNetSpace
from ofa_deploy.spaces.serialization import align_space, describe_values, space_differences, space_from_dict, space_to_dict


def walk_layers(space: SearchSpace, cfg: SubnetConfig, resolution: int | None = None) -> list[LayerSpec]:
    """The layers of subnet `cfg` of `space` at `resolution` (default: the config's)."""
    return space.walk_layers(cfg, resolution)


__all__ = [
    "Gene", "LayerSpec", "MobileSpace", "PlacedLayer", "ResNetSpace", "SearchSpace", "SubnetConfig",
    "align_space", "as_generator", "conv_out_size", "describe_values", "get_space", "list_spaces", "make_divisible",
    "space_description", "space_differences", "space_from_dict", "space_to_dict", "walk_layers",
]
