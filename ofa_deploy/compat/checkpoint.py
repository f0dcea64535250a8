"""Read OFA checkpoints (the one state-dict reader) and load supernet checkpoints into our supernets.

`read_state_dict` accepts the raw state dict or ``{"state_dict": ...}`` (OFA's file format), from a
path or in memory; every checkpoint in the package goes through it (static subnets:
`ofa_deploy.compat.static_weights`). `normalise_key` undoes what every OFA checkpoint may carry:
a DataParallel ``module.`` prefix and legacy ``.mobile_inverted_conv.`` names (now ``.conv.``).
For supernets, `map_key` then bridges the static/dynamic nesting where a key still does not exist
(``.bn.bn.`` <-> ``.bn.``, ``.conv.conv.weight`` <-> ``.conv.weight``, ``.linear.linear.`` <->
``.linear.``), as OFA's ``OFA*.load_state_dict`` does. Anything left over, missing or of the
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


def read_state_dict(source: str | os.PathLike[str] | Mapping[str, Any], *,
                    released: bool = False) -> dict[str, torch.Tensor]:
    """The tensor dict of a checkpoint path or object (``{"state_dict": ...}`` is unwrapped).

    Files are read with ``torch.load(weights_only=True)``. With `released`, a name of released OFA
    supernet weights (``ofa_mbv3_w12`` or its file name) that is not a file is fetched once and read.
    Raises `CheckpointError` naming the path (or the offending key) and the fix.
    """
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not is_regular_file(path):
            from ofa_deploy.compat.released import released_name, resolve_weights

            name = released_name(str(source))
            if released and name is not None:  # "ofa_mbv3_w12" / "ofa_mbv3_d234_e346_k357_w1.2"
                return read_state_dict(resolve_weights(source))
            raise _not_a_file(path, name, released)
        try:
            with warnings.catch_warnings():  # torch warns about odd pickle protocols before failing on garbage
                warnings.simplefilter("ignore")
                obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad checkpoint
            raise CheckpointError(
                f"cannot read checkpoint {str(path)!r} with torch.load(weights_only=True): {_load_failure(exc)}; "
                "the file is truncated, corrupt or not a weights file: download or save it again") from exc
        where = f"checkpoint {str(path)!r}"
    else:
        obj, where = source, "a checkpoint"
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{where} must be a state dict (name -> tensor) or {{'state_dict': state dict}}, "
                              f"got {type(obj).__name__}")
    for key, value in obj.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            what = (f"its key {key!r} is not a string" if not isinstance(key, str)
                    else f"its entry {key!r} is a {type(value).__name__}, not a tensor")
            raise CheckpointError(f"{where} must be a state dict (name -> tensor) or {{'state_dict': state dict}}, "
                                  f"but {what}; save model.state_dict() (or {{'state_dict': model.state_dict()}})")
    return dict(obj)


def _not_a_file(path: Path, released_as: str | None, released: bool) -> CheckpointError:
    """The error for a checkpoint path that is no regular file; `released_as`: the released supernet it names."""
    if path.is_dir():
        return CheckpointError(f"checkpoint {str(path)!r} is a directory; pass the weights file inside it "
                               "(OFA's specialized nets keep theirs in ofa_specialized/<id>/init)")
    if released:
        return CheckpointError(f"checkpoint file {str(path)!r} does not exist; pass a path to an OFA supernet "
                               "checkpoint, a released name (e.g. 'ofa_mbv3_w12', fetched and cached) or a state "
                               "dict")
    if released_as is not None:
        return CheckpointError(f"{str(path)!r} names the released weights of supernet {released_as}, which load "
                               "into that supernet only (load_supernet_weights); pass this network's own checkpoint")
    return CheckpointError(f"checkpoint file {str(path)!r} does not exist; pass a path to a weights file "
                           "(torch.save of a state dict or {'state_dict': ...}) or a state dict")


def _load_failure(exc: Exception) -> str:
    """The informative line of a torch.load error (not its generic advice to drop weights_only)."""
    text = str(exc)
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1]
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    line = line.split(". ", 1)[0].rstrip(".")  # the first sentence; torch appends generic advice
    if len(line) > 200:
        line = line[:199] + "…"
    return f"{type(exc).__name__}: {line}" if line else type(exc).__name__


def normalise_key(key: str) -> str:
    """A checkpoint key without a DataParallel ``module.`` prefix, legacy ``.mobile_inverted_conv.`` as ``.conv.``."""
    if key.startswith("module."):  # saved from DataParallel
        key = key[len("module."):]
    return key.replace(*_LEGACY)


def map_key(key: str, known: Mapping[str, Any] | set[str]) -> str | None:
    """The supernet key that checkpoint key `key` maps to (`normalise_key`, then nesting bridges), or None."""
    key = normalise_key(key)
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
    state = read_state_dict(source, released=True)
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
