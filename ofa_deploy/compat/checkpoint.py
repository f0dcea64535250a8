"""Load OFA supernet checkpoints into our supernets.

Accepts the raw state dict or ``{"state_dict": ...}`` (OFA's file format), from a path or in
memory. Key names are mapped like OFA's ``OFA*.load_state_dict``: legacy
``.mobile_inverted_conv.`` becomes ``.conv.``, and where a key still does not exist the
static/dynamic nesting is bridged (``.bn.bn.`` <-> ``.bn.``, ``.conv.conv.weight`` <->
``.conv.weight``, ``.linear.linear.`` <-> ``.linear.``). Anything left over, missing or of the
wrong shape raises `CheckpointError` naming the keys.
"""
from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ofa_deploy.errors import CheckpointError
from ofa_deploy.fileio import is_regular_file

log = logging.getLogger(__name__)

_LEGACY = (".mobile_inverted_conv.", ".conv.")
_BRIDGES = (  # (nested, flat): try stripping a level first, then adding one, as OFA does
    (".bn.bn.", ".bn."),
    (".conv.conv.weight", ".conv.weight"),
    (".linear.linear.", ".linear."),
)
_SHOW = 5


def read_state_dict(source: str | os.PathLike[str] | Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The tensor dict of a checkpoint path or object (``{"state_dict": ...}`` is unwrapped)."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not is_regular_file(path):
            from ofa_deploy.compat.released import released_name, resolve_weights

            if released_name(str(source)) is not None:  # "ofa_mbv3_w12" / "ofa_mbv3_d234_e346_k357_w1.2"
                return read_state_dict(resolve_weights(source))
            raise CheckpointError(f"checkpoint file {str(path)!r} does not exist; pass a path to an OFA supernet "
                                  "checkpoint, a released name (e.g. 'ofa_mbv3_w12', fetched and cached) or a state "
                                  "dict")
        try:
            with warnings.catch_warnings():  # torch warns about odd pickle protocols before failing on garbage
                warnings.simplefilter("ignore")
                obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad checkpoint
            raise CheckpointError(
                f"cannot read checkpoint {str(path)!r} with torch.load(weights_only=True): {_load_failure(exc)}; "
                "the file is truncated, corrupt or not a weights file: download or save it again") from exc
    else:
        obj = source
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError("a checkpoint must be a state dict (name -> tensor) or {'state_dict': state dict}, "
                              f"got {type(obj).__name__}")
    return dict(obj)


def _load_failure(exc: Exception) -> str:
    """The informative line of a torch.load error (not its generic advice to drop weights_only)."""
    text = str(exc)
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1]
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return f"{type(exc).__name__}: {line[:200]}" if line else type(exc).__name__


def map_key(key: str, known: Mapping[str, Any] | set[str]) -> str | None:
    """The model key that checkpoint key `key` maps to, or None."""
    if key.startswith("module."):  # saved from DataParallel
        key = key[len("module."):]
    key = key.replace(*_LEGACY)
    if key in known:
        return key
    for nested, flat in _BRIDGES:
        if nested in key and key.replace(nested, flat) in known:
            return key.replace(nested, flat)
    for nested, flat in _BRIDGES:
        if flat in key and key.replace(flat, nested) in known:
            return key.replace(flat, nested)
    return None


def _shape(t: torch.Tensor) -> str:
    return "(" + ", ".join(map(str, t.shape)) + ")"


def load_supernet_weights(model: nn.Module, source: str | os.PathLike[str] | Mapping[str, Any]) -> nn.Module:
    """Load an OFA checkpoint into `model` (a supernet) in place and return it.

    Raises `CheckpointError` if keys are left unmatched, missing (``num_batches_tracked`` may be
    absent, as in old checkpoints) or of the wrong shape; the model is unchanged then.
    """
    state = read_state_dict(source)
    target = model.state_dict()
    mapped: dict[str, torch.Tensor] = {}
    unexpected: list[str] = []
    for key, tensor in state.items():
        new = map_key(key, target)
        if new is None or new in mapped:
            unexpected.append(key)
        else:
            mapped[new] = tensor
    missing = [k for k in target if k not in mapped and not k.endswith("num_batches_tracked")]
    wrong = [(k, t) for k, t in mapped.items() if t.shape != target[k].shape]
    problems = []
    if wrong:
        shown = "; ".join(f"{k}: checkpoint {_shape(t)} vs model {_shape(target[k])}" for k, t in wrong[:_SHOW])
        problems.append(f"{len(wrong)} shape mismatch(es): {shown}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s): {', '.join(unexpected[:_SHOW])}")
    if missing:
        problems.append(f"{len(missing)} missing key(s): {', '.join(missing[:_SHOW])}")
    if problems:
        space = getattr(getattr(model, "space", None), "name", type(model).__name__)
        raise CheckpointError(
            f"checkpoint does not match supernet {space!r}: " + " | ".join(problems)
            + ". Check that the checkpoint is for this supernet (e.g. ofa_mbv3_w12 vs w10) and its space settings."
        )
    for key in target:
        mapped.setdefault(key, target[key])
    model.load_state_dict(mapped, strict=True)
    log.info("loaded %d tensors into %s", len(state), type(model).__name__)
    return model
