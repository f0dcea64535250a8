"""Builders of the public API that span packages (kept out of the packages themselves, so none imports another
the wrong way)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ofa_deploy.errors import ConfigError
from ofa_deploy.fileio import is_regular_file, read_json_file


def create_supernet(name: str | None, *, weights: str | os.PathLike[str] | None = None,
                    **space_overrides: Any) -> Any:
    """A supernet of the named space, random or with weights, in eval mode when weights are loaded.

    The one way a supernet gets its weights: the CLI (``--supernet``/``--weights``) calls this too.

    Args:
        name: registry name (`ofa-deploy list supernets`), e.g. ``"ofa_mbv3_w12"``; None only for an ofa-deploy
            checkpoint with its sidecar, which names the supernet.
        weights: None (random init), ``"released"`` (OFA's released weights for `name`, downloaded once and
            cached; an offline machine gets an error naming the URL and where to place the file), a released
            weights name (``"ofa_mbv3_d234_e346_k357_w1.2"``), a checkpoint path, or an ofa-deploy checkpoint
            with its ``.json`` sidecar beside it (`ofa-deploy accuracy train-demo`; the sidecar gives the supernet
            and its space).
        space_overrides: build a variant of the space (e.g. ``resolutions=(160, 224)``).
    """
    if weights is not None and _has_sidecar(weights):
        return _sidecar_supernet(name, Path(weights), space_overrides)
    if name is None:
        raise ConfigError("a supernet name is needed unless the weights are an ofa-deploy checkpoint with its .json "
                          "sidecar")
    from ofa_deploy.supernets.registry import create_supernet as random_supernet

    net = random_supernet(name, **space_overrides)
    if weights is None:
        return net
    from ofa_deploy.compat.checkpoint import load_supernet_weights
    from ofa_deploy.compat.released import resolve_weights

    source = name if str(weights) == "released" else weights
    return load_supernet_weights(net, resolve_weights(source, supernet=name)).eval()


def _has_sidecar(weights: str | os.PathLike[str]) -> bool:
    path = Path(weights)
    return is_regular_file(path) and is_regular_file(path.with_suffix(".json"))


def _sidecar_supernet(name: str | None, path: Path, space_overrides: dict[str, Any]) -> Any:
    """The supernet an ofa-deploy checkpoint's sidecar describes (the demo's), checked against `name`."""
    from ofa_deploy.demo import load_demo_supernet

    meta = read_json_file(path.with_suffix(".json"), what="supernet checkpoint sidecar")
    known = {str(meta.get("supernet")), str(meta.get("name"))} if isinstance(meta, dict) else set()
    if name is not None and name not in known:
        raise ConfigError(f"weights {path} are a {' / '.join(sorted(known))} checkpoint (see its sidecar "
                          f"{path.with_suffix('.json').name}), not of supernet {name}")
    if space_overrides:
        raise ConfigError(f"weights {path}: the sidecar fixes the space; drop the overrides "
                          f"{sorted(space_overrides)}")
    return load_demo_supernet(path)


def create_specialized(name: str, *, weights: str | os.PathLike[str] | None = None,
                       cache_dir: str | os.PathLike[str] | None = None) -> Any:
    """One of OFA's released specialized subnets (`list_weights("specialized")`) as a static `SubnetModel`.

    Its net.config and run.config are fetched once into the cache (``specialized/<name>/``); the model is built
    at the run.config resolution, random or with weights, in eval mode when weights are loaded.

    Args:
        name: e.g. ``"flops@595M_top1@80.0_finetune@75"`` (OFA's spelling) or ``"flops-595M_top1-80.0_finetune-75"``.
        weights: None (random init), ``"released"`` (OFA's ``init`` for `name`, fetched once and cached) or a
            checkpoint path. An offline machine gets an error naming the URL and where to place the file.
        cache_dir: the cache root instead of ``$OFA_DEPLOY_CACHE`` / ``~/.cache/ofa-deploy``.
    """
    from ofa_deploy.compat.net_config import load_net_config
    from ofa_deploy.compat.static_weights import load_static_weights
    from ofa_deploy.compat.specialized import fetch_specialized

    released = weights is not None and str(weights) == "released"
    folder = fetch_specialized(name, weights=released, cache_dir_override=cache_dir)
    model = load_net_config(folder)  # the run.config next to the net.config gives the resolution
    if weights is None:
        return model
    return load_static_weights(model, folder / "init" if released else os.fspath(weights)).eval()


__all__ = ["create_specialized", "create_supernet"]
