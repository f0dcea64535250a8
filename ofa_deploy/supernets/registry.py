"""Supernet registry: ``create_supernet("ofa_mbv3_w12")`` builds the supernet its model family declares."""
from __future__ import annotations

from typing import Any

from ofa_deploy.spaces import get_space, list_spaces
from ofa_deploy.spaces.family import family_of
from ofa_deploy.supernets.base import Supernet


def list_supernets() -> list[str]:
    """Registry names accepted by `create_supernet`."""
    return list_spaces()


def create_supernet(name: str, **space_overrides: Any) -> Supernet:
    """A randomly initialised supernet of the named space, built by its family (`ModelFamily.build_supernet`).

    Keyword overrides build a variant of the space (e.g. ``width_mult=0.5, resolutions=(32,)``).
    Unknown names raise `UnknownNameError` with close-match suggestions. Load released weights
    with ``ofa_deploy.create_supernet(name, weights=...)`` or `compat.checkpoint.load_supernet_weights`.
    """
    space = get_space(name, **space_overrides)
    return family_of(space).build_supernet(space)
