"""Look up OFA's released weights by name: the four supernets and the released specialized subnets (no torch).

In the spirit of torchvision's ``list_models``/``get_weight``::

    from ofa_deploy.compat.zoo import get_weights, list_weights

    list_weights("supernet")                                  # ['ofa_mbv3_w10', 'ofa_mbv3_w12', ...]
    get_weights("ofa_mbv3_w12").meta.macs_max                 # 843101040
    get_weights("flops@595M_top1@80.0_finetune@75").meta.resolution   # 236

Supernet entries are `WeightsSource` (meta: `SupernetMeta`), specialized ones `SpecializedSource` (meta:
`SpecializedMeta`); both have ``url``, ``filename``, ``sha256`` (None: unknown) and ``meta``. Build them with
``create_supernet(name, weights="released")`` and ``create_specialized(name, weights="released")``.
"""
from __future__ import annotations

import fnmatch
from typing import Literal

from ofa_deploy.compat.released import WeightsSource, released_name, supernet_weights
from ofa_deploy.compat.specialized import SPECIALIZED_NETS, SpecializedSource
from ofa_deploy.errors import ConfigError, unknown_name

WeightsKind = Literal["supernet", "specialized"]
_KINDS = ("supernet", "specialized")


def _group(kind: str) -> dict[str, WeightsSource] | dict[str, SpecializedSource]:
    return supernet_weights() if kind == "supernet" else SPECIALIZED_NETS


def list_weights(kind: WeightsKind | None = None, pattern: str = "*") -> list[str]:
    """Names of the released weights, supernets first, each group sorted; `kind` keeps one group and
    `pattern` (fnmatch, e.g. ``"note10*"``) filters the names."""
    if kind is not None and kind not in _KINDS:
        raise ConfigError(f"weights kind {kind!r} is unknown; expected one of {', '.join(_KINDS)} or None (both)")
    groups = [_group(kind)] if kind is not None else [_group(k) for k in _KINDS]
    return [name for group in groups for name in sorted(group) if fnmatch.fnmatchcase(name, pattern)]


def get_weights(name: str) -> WeightsSource | SpecializedSource:
    """The registry entry called `name`: a supernet (``ofa_mbv3_w12``, or its file name
    ``ofa_mbv3_d234_e346_k357_w1.2``) or a specialized net (OFA's ``@`` spelling or the ``-`` one).
    An unknown name raises `UnknownNameError` with the close matches."""
    supernet = released_name(name)
    if supernet is not None:
        return supernet_weights()[supernet]
    specialized = SPECIALIZED_NETS.get(name.replace("@", "-"))
    if specialized is not None:
        return specialized
    raise unknown_name("weights name", name.replace("@", "-"), list_weights())


__all__ = ["WeightsKind", "get_weights", "list_weights"]
