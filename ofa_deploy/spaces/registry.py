"""Named search spaces: every name a registered model family declares (`spaces.family`), and variants of them."""
from __future__ import annotations

from typing import Any

from ofa_deploy.spaces.base import SearchSpace
from ofa_deploy.spaces.family import FAMILIES


def list_spaces() -> list[str]:
    """Every registered name (``ofa_mbv3_w10``, ``ofa_mbv3_w12``, ``ofa_proxyless_w13``, ``ofa_resnet50``, ...)."""
    return FAMILIES.names()


def space_description(name: str) -> str:
    return FAMILIES.lookup(name)[1].description


def get_space(name: str, /, **overrides: Any) -> SearchSpace:
    """The search space `name`; keyword overrides build a variant (e.g. ``depths=(2, 4)``, ``name="mine"``)."""
    family, _ = FAMILIES.lookup(name)
    return family.space(name, **overrides)
