"""Torch building blocks: static layers built from `LayerSpec`s, dynamic (elastic) ops, BN recalibration."""
from ofa_deploy.nn.layers import SubnetModel, build_activation, build_layer

__all__ = ["SubnetModel", "build_activation", "build_layer"]
