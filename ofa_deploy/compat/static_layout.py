"""Where each layer of a static subnet sits in OFA's static networks (torch-free).

`network_name` picks the OFA class (``MobileNetV3``, ``ProxylessNASNets``, ``ResNets``) for a
`LayerSpec` stream, `ofa_slots` places every layer in that class's net.config slots
(``first_conv``, ``blocks[i]``, ...) and `ofa_prefixes` gives each layer's module path in the
static net's state dict. `compat.net_config` writes net.configs with them and
`compat.static_weights` names static-net weights with them.
"""
from __future__ import annotations

from collections.abc import Sequence

from ofa_deploy.errors import ConfigError
from ofa_deploy.spaces import LayerSpec


def network_name(specs: Sequence[LayerSpec]) -> str:
    """OFA static network class matching a layer stream: ResNets, MobileNetV3 or ProxylessNASNets."""
    if any(s.kind == "bottleneck" for s in specs):
        return "ResNets"
    if any(s.role == "final_expand" for s in specs):
        return "MobileNetV3"
    return "ProxylessNASNets"


def ofa_slots(specs: Sequence[LayerSpec]) -> list[tuple[str, int | None]]:
    """Per layer: (net.config slot, index within the slot) — e.g. ("blocks", 3), ("classifier", None).

    Raises ConfigError when the stream does not have the shape of an OFA static network.
    """
    name = network_name(specs)
    slots: list[tuple[str, int | None]] = []
    n_blocks = n_stem = 0
    for i, s in enumerate(specs):
        if s.kind in ("maxpool", "avgpool"):
            slots.append(("pool", None))
        elif s.kind == "linear":
            slots.append(("classifier", None))
        elif s.role == "stem" and name == "ResNets":
            slots.append(("input_stem", n_stem))
            n_stem += 1
        elif s.role == "stem":
            slots.append(("first_conv", None))
        elif s.kind in ("mbconv", "bottleneck"):
            slots.append(("blocks", n_blocks))
            n_blocks += 1
        elif s.role in ("final_expand", "feature_mix"):
            slots.append((f"{s.role}_layer", None))
        else:
            raise ConfigError(f"layer {i} ({s.short()}, role {s.role}) has no place in an OFA {name}")
    expected = {
        "MobileNetV3": ["first_conv", "blocks", "final_expand_layer", "pool", "feature_mix_layer", "classifier"],
        "ProxylessNASNets": ["first_conv", "blocks", "feature_mix_layer", "pool", "classifier"],
        "ResNets": ["input_stem", "pool", "blocks", "pool", "classifier"],
    }[name]
    order = [slot for j, (slot, _) in enumerate(slots) if j == 0 or slots[j - 1][0] != slot]
    optional = ["feature_mix_layer"] if name == "ProxylessNASNets" else []
    if order != expected and order != [x for x in expected if x not in optional]:
        raise ConfigError(f"the layers do not form an OFA {name}: got the sequence {order}, expected {expected}")
    if name == "ResNets" and not (2 <= n_stem <= 3 and [s.kind for s in specs].index("maxpool") == n_stem):
        raise ConfigError(f"an OFA ResNets input_stem has 2 or 3 convs followed by a max pool, got {n_stem} convs")
    if name != "ResNets" and sum(slot == "first_conv" for slot, _ in slots) != 1:
        raise ConfigError(f"an OFA {name} has exactly one first_conv")
    return slots


def ofa_prefixes(specs: Sequence[LayerSpec]) -> list[str | None]:
    """OFA static-net module path of each layer (None for parameter-free pools)."""
    out: list[str | None] = []
    for (slot, index), s in zip(ofa_slots(specs), specs):
        if slot == "pool":
            out.append(None)
        elif slot in ("input_stem", "blocks"):
            prefix = f"{slot}.{index}"
            if slot == "blocks" and s.kind == "mbconv":
                prefix += ".conv"
            elif slot == "input_stem" and s.residual:
                prefix += ".conv"
            out.append(prefix)
        else:
            out.append(slot)
    return out
