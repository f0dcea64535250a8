"""OFA-ProxylessNAS supernet: same MBConv machinery as MobileNetV3, no SE, relu6, BN eps 1e-3.

State_dict keys equal OFA's ``OFAProxylessNASNets``: ``first_conv``, ``blocks.0.conv``,
``blocks.{1..21}.conv``, ``feature_mix_layer`` (with BN), ``classifier``.
"""
from __future__ import annotations

from ofa_deploy.spaces import SearchSpace
from ofa_deploy.supernets.mobilenetv3 import MobileSupernet


class ProxylessSupernet(MobileSupernet):
    """OFA-ProxylessNAS (``ofa_proxyless_w13``)."""

    families = ("proxyless",)

    def __init__(self, space: SearchSpace, *, bn_eps: float = 1e-3, bn_momentum: float = 0.1) -> None:
        super().__init__(space, bn_eps=bn_eps, bn_momentum=bn_momentum)
