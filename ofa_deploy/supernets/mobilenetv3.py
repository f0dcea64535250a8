"""OFA-MobileNetV3 supernet (and the shared MobileNet-style builder used by ProxylessNAS).

Module tree and state_dict keys equal OFA's ``OFAMobileNetV3``: static ``first_conv``,
``blocks.0.conv`` (expand-1 MBConv), ``final_expand_layer``, ``feature_mix_layer`` and
``classifier``; elastic ``blocks.{1..20}.conv`` (`DynamicMBConv`).
"""
from __future__ import annotations

import dataclasses

from torch import nn

from ofa_deploy.nn.dynamic_layers import DynamicMBConv, ResidualBlock
from ofa_deploy.spaces import MobileSpace, PlacedLayer
from ofa_deploy.supernets.base import Supernet


class MobileSupernet(Supernet):
    """Supernet of a `MobileSpace`: MBConv blocks with elastic kernel size, expand ratio and depth."""

    families = ("mbv3", "proxyless")
    space: MobileSpace

    def _make_module(self, placed: PlacedLayer) -> nn.Module:
        spec, source = placed.spec, placed.source
        if not (source or "").startswith("blocks."):
            return self._static(spec)
        inner = dataclasses.replace(spec, residual=False)
        if source == "blocks.0":
            return ResidualBlock(self._static(inner), shortcut=spec.residual)
        conv = DynamicMBConv(inner, kernel_sizes=self.space.kernel_sizes, bn_eps=self.bn_eps,
                             bn_momentum=self.bn_momentum)
        return ResidualBlock(conv, shortcut=spec.residual)


class MobileNetV3Supernet(MobileSupernet):
    """OFA-MobileNetV3 (``ofa_mbv3_w10`` / ``ofa_mbv3_w12``); BN eps 1e-5 as in OFA."""

    families = ("mbv3",)
