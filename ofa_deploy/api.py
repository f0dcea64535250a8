"""Builders of the public API that span packages (kept out of the packages themselves, so none imports another
the wrong way)."""
from __future__ import annotations

import os
from typing import Any


def create_supernet(name: str, *, weights: str | os.PathLike[str] | None = None, **space_overrides: Any) -> Any:
    """A supernet of the named space, random or with weights, in eval mode when weights are loaded.

    Args:
        name: registry name (`ofa-deploy list supernets`), e.g. ``"ofa_mbv3_w12"``.
        weights: None (random init), ``"released"`` (OFA's released weights for `name`, downloaded once and
            cached; an offline machine gets an error naming the URL and where to place the file), a released
            weights name (``"ofa_mbv3_d234_e346_k357_w1.2"``) or a checkpoint path.
        space_overrides: build a variant of the space (e.g. ``resolutions=(160, 224)``).
    """
    from ofa_deploy.supernets.registry import create_supernet as random_supernet

    net = random_supernet(name, **space_overrides)
    if weights is None:
        return net
    from ofa_deploy.compat.checkpoint import load_supernet_weights
    from ofa_deploy.compat.weights import resolve_weights

    source = name if str(weights) == "released" else weights
    return load_supernet_weights(net, resolve_weights(source, supernet=name)).eval()


__all__ = ["create_supernet"]
