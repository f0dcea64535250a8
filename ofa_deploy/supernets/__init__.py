"""Elastic OFA supernets: ``create_supernet(name)``, ``Supernet.set_active/active/extract``."""
from ofa_deploy.supernets.base import Supernet
from ofa_deploy.supernets.mobilenetv3 import MobileNetV3Supernet, MobileSupernet
from ofa_deploy.supernets.proxyless import ProxylessSupernet
from ofa_deploy.supernets.registry import create_supernet, list_supernets
from ofa_deploy.supernets.resnet import ResNetSupernet

__all__ = [
    "MobileNetV3Supernet", "MobileSupernet", "ProxylessSupernet", "ResNetSupernet", "Supernet",
    "create_supernet", "list_supernets",
]
