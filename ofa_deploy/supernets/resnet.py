"""OFA-ResNet50 (ResNet-50D) supernet with elastic depth, expand ratio and width.

State_dict keys equal OFA's ``OFAResNets``: ``input_stem.{0,2}`` (`DynamicConvLayer`),
``input_stem.1.conv`` (residual, skippable), ``blocks.{0..17}`` (`DynamicBottleneck`),
``classifier.linear.linear`` (`DynamicLinearLayer`).
"""
from __future__ import annotations

import dataclasses

from torch import nn

from ofa_deploy.nn.dynamic_layers import DynamicBottleneck, DynamicConvLayer, DynamicLinearLayer, ResidualBlock
from ofa_deploy.spaces import PlacedLayer, ResNetSpace
from ofa_deploy.supernets.base import Supernet


class ResNetSupernet(Supernet):
    """Supernet of a `ResNetSpace` (``ofa_resnet50``); BN eps 1e-5 as in OFA."""

    families = ("resnet",)
    space: ResNetSpace

    def _make_module(self, placed: PlacedLayer) -> nn.Module:
        spec = placed.spec
        kw = {"bn_eps": self.bn_eps, "bn_momentum": self.bn_momentum}
        if spec.kind == "bottleneck":
            return DynamicBottleneck(spec, **kw)
        if spec.kind == "linear":
            return DynamicLinearLayer(spec)
        if spec.residual:
            return ResidualBlock(DynamicConvLayer(dataclasses.replace(spec, residual=False), **kw), shortcut=True)
        return DynamicConvLayer(spec, **kw)
