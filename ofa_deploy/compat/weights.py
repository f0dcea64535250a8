"""Released OFA weights: where they live, what they are, a cached download, `pretrained_supernet(name)`.

The supernet registry and the download live in `ofa_deploy.compat.released` (which `compat.checkpoint`
reads), the specialized nets in `compat.specialized` and the lookup in `compat.zoo`; this module re-exports
them and builds a supernet with its released weights loaded.
"""
from __future__ import annotations

import os

from ofa_deploy.compat.checkpoint import load_supernet_weights
from ofa_deploy.compat.released import (
    SupernetMeta,
    WeightsSource,
    cache_dir,
    download,
    fetch_supernet_weights,
    released_name,
    resolve_weights,
    sha256_of,
    supernet_weights,
)
from ofa_deploy.compat.specialized import (
    SPECIALIZED_NETS,
    SpecializedMeta,
    SpecializedSource,
    fetch_specialized,
    get_specialized,
)
from ofa_deploy.compat.zoo import get_weights, list_weights

__all__ = [
    "SPECIALIZED_NETS", "SpecializedMeta", "SpecializedSource", "SupernetMeta", "WeightsSource", "cache_dir",
    "download", "fetch_specialized", "fetch_supernet_weights", "get_specialized", "get_weights", "list_weights",
    "pretrained_supernet", "released_name", "resolve_weights", "sha256_of", "supernet_weights",
]


def pretrained_supernet(name: str, cache_dir: str | os.PathLike[str] | None = None):  # noqa: ANN201
    """`create_supernet(name)` with the released OFA weights loaded (downloaded once, then cached)."""
    from ofa_deploy.supernets import create_supernet

    path = fetch_supernet_weights(name, cache_dir_override=cache_dir)
    return load_supernet_weights(create_supernet(name), path)
