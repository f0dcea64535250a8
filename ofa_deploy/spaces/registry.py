"""Named search spaces of the released OFA supernets, and a builder for variants."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ofa_deploy.errors import unknown_name
from ofa_deploy.spaces.base import SearchSpace
from ofa_deploy.spaces.mobile import MobileSpace
from ofa_deploy.spaces.resnet import ResNetSpace


def _mbv3(width_mult: float, name: str) -> Callable[..., SearchSpace]:
    return lambda **kw: MobileSpace(name=kw.pop("name", name), family="mbv3", width_mult=kw.pop("width_mult", width_mult), **kw)


_SPACES: dict[str, tuple[Callable[..., SearchSpace], str]] = {
    "ofa_mbv3_w10": (_mbv3(1.0, "ofa_mbv3_w10"), "OFA MobileNetV3, width 1.0 (ofa_mbv3_d234_e346_k357_w1.0)"),
    "ofa_mbv3_w12": (_mbv3(1.2, "ofa_mbv3_w12"), "OFA MobileNetV3, width 1.2 (ofa_mbv3_d234_e346_k357_w1.2)"),
    "ofa_proxyless_w13": (
        lambda **kw: MobileSpace(name=kw.pop("name", "ofa_proxyless_w13"), family="proxyless",
                                 width_mult=kw.pop("width_mult", 1.3), **kw),
        "OFA ProxylessNAS, width 1.3 (ofa_proxyless_d234_e346_k357_w1.3)",
    ),
    "ofa_resnet50": (
        lambda **kw: ResNetSpace(name=kw.pop("name", "ofa_resnet50"), **kw),
        "OFA ResNet50-D (ofa_resnet50: d 0/1/2, e 0.2/0.25/0.35, w 0.65/0.8/1.0)",
    ),
}


def list_spaces() -> list[str]:
    return sorted(_SPACES)


def space_description(name: str) -> str:
    return _lookup(name)[1]


def get_space(name: str, /, **overrides: Any) -> SearchSpace:
    """The search space `name`; keyword overrides build a variant (e.g. ``depths=(2, 4)``, ``name="mine"``)."""
    return _lookup(name)[0](**overrides)


def _lookup(name: str) -> tuple[Callable[..., SearchSpace], str]:
    if name not in _SPACES:
        raise unknown_name("supernet", name, _SPACES)
    return _SPACES[name]
