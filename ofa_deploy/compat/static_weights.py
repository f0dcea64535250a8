"""Weights of static subnets in OFA's key layout, both directions.

`load_static_weights` loads an OFA specialized net's checkpoint (``ofa_specialized/<id>/init``), a
state dict of a reference static net or one of our own ``layers.<i>.*`` state dicts into a
`SubnetModel`; `to_ofa_state_dict` names a `SubnetModel`'s weights as OFA's static net built from
its net.config (`compat.net_config.subnet_to_net_config`) expects them. Checkpoints are read and
their keys normalised by `compat.checkpoint` (`read_state_dict`, `normalise_key`), the one reader
the supernet loader uses too.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from ofa_deploy.compat.checkpoint import normalise_key, read_state_dict
from ofa_deploy.compat.static_layout import ofa_prefixes
from ofa_deploy.errors import CheckpointError

logger = logging.getLogger(__name__)


def _key_map(model: Any) -> dict[str, str]:
    """Our state-dict key → OFA static key."""
    prefixes = ofa_prefixes(model.specs)
    mapping = {}
    for key in model.state_dict():
        head, index, rest = key.split(".", 2)
        prefix = prefixes[int(index)] if head == "layers" else None
        if prefix is None:
            raise CheckpointError(f"state-dict key {key!r} has no OFA equivalent (expected layers.<i>.*)")
        mapping[key] = f"{prefix}.{rest}"
    return mapping


def to_ofa_state_dict(model: Any) -> dict[str, Any]:
    """The model's state dict under OFA static-net key names (for the net.config of `subnet_to_net_config`)."""
    state = model.state_dict()
    return {ofa: state[ours] for ours, ofa in _key_map(model).items()}


def load_static_weights(model: Any, source: Any, *, strict: bool = True) -> Any:
    """Load an OFA static-net checkpoint (path, raw state dict or ``{"state_dict": ...}``) into `model`.

    The checkpoint is read by `read_state_dict` and its keys normalised by `normalise_key` (the
    supernet loader's reader and codec). OFA keys (``first_conv.*``, ``blocks.N.conv.*`` / legacy
    ``blocks.N.mobile_inverted_conv.*``, ``final_expand_layer.*``, ``feature_mix_layer.*``,
    ``classifier.linear.*``, ResNets ``input_stem.N.*`` and ``blocks.N.conv1/2/3/downsample.*``) are
    mapped onto ``layers.<i>.*``; a state dict already in our ``layers.<i>.*`` naming loads as is.
    An OFA ``ofa_specialized/<id>/`` directory stands for the ``init`` checkpoint inside it (as it stands for its
    ``net.config`` in `load_net_config`). Every key must match in name and shape (``num_batches_tracked`` may be
    absent); otherwise
    CheckpointError names the first mismatches. With ``strict=False`` missing and unexpected keys
    are only logged. Returns `model`.
    """
    if isinstance(source, (str, os.PathLike)) and os.path.isdir(source) and os.path.isfile(Path(source) / "init"):
        source = Path(source) / "init"
    state = read_state_dict(source)
    ours = model.state_dict()
    ofa_names = _key_map(model)  # ours -> OFA
    normalised = {key: normalise_key(key) for key in state}
    if state and all(k.startswith("layers.") for k in normalised.values()):
        lookup = {k: k for k in ours}  # already our own naming
    else:
        lookup = {ofa: our for our, ofa in ofa_names.items()}
    remapped: dict[str, Any] = {}
    origin: dict[str, str] = {}
    unexpected: list[str] = []
    for key, tensor in state.items():
        target = lookup.get(normalised[key])
        if target is None or target in remapped:  # unknown, or a second name for the same tensor
            unexpected.append(key)
        else:
            remapped[target], origin[target] = tensor, key
    if unexpected:
        _fail_or_log(strict, f"{len(unexpected)} checkpoint keys have no place in the model", unexpected)
    missing = [f"{k} (OFA name {ofa_names[k]})" for k in ours
               if k not in remapped and not k.endswith("num_batches_tracked")]
    if missing:
        _fail_or_log(strict, f"{len(missing)} model keys are missing from the checkpoint", missing)
    bad_shapes = [f"{origin[k]} (model key {k}): checkpoint {tuple(v.shape)} vs model {tuple(ours[k].shape)}"
                  for k, v in remapped.items() if v.shape != ours[k].shape]
    if bad_shapes:
        raise CheckpointError(
            f"{len(bad_shapes)} tensors have the wrong shape, first: {'; '.join(bad_shapes[:5])}. The checkpoint "
            "belongs to a different architecture: check the net.config and resolution it came with"
        )
    model.load_state_dict(remapped, strict=False)
    logger.info("loaded %d tensors into %s", len(remapped), type(model).__name__)
    return model


def _fail_or_log(strict: bool, what: str, keys: list[str]) -> None:
    hint = ""
    if any(".conv.conv." in k or "_matrix" in k or ".bn.bn." in k for k in keys):
        hint = " These look like supernet (dynamic) keys: load a supernet checkpoint with load_supernet_weights."
    message = f"{what}, first: {', '.join(keys[:5])}.{hint}"
    if strict:
        raise CheckpointError(message + " Pass strict=False to load the matching tensors only.")
    logger.warning(message)
