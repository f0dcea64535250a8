"""OFA's latency-table key strings <-> `LayerSpec` (torch-free; the codec `compat.ofa_lut` reads tables with).

OFA keys a layer by a TF-slim style string, e.g.
``expanded_conv-input:112x112x24-output:56x56x32-expand:144-kernel:7-stride:2-idskip:0-se:0-hs:0``.
Two schemas: MobileNetV3 (``"mbv3"``) and ProxylessNAS (``"proxyless"``); see `ofa_deploy.compat.ofa_lut`
for the table format and how a Proxyless ``Logits`` row maps onto a pool and a classifier spec.
"""
from __future__ import annotations

import re
from typing import Any

from ofa_deploy.errors import ConfigError
from ofa_deploy.spaces.base import SearchSpace
from ofa_deploy.spaces.family import family_of
from ofa_deploy.spaces.layer_spec import LayerSpec, conv_out_size

SCHEMAS = ("mbv3", "proxyless")
_KEY_PART = re.compile(r"^(input|output|expand|kernel|stride|idskip|se|hs):(.+)$")


def _shape(size: int, channels: int) -> str:
    return f"{size}x{size}x{channels}"


def ofa_schema(space: SearchSpace) -> str:
    """The OFA key schema of `space` ("mbv3" or "proxyless", `ModelFamily.ofa_lut_schema`); families OFA
    published no tables for have none."""
    schema = family_of(space).ofa_lut_schema
    if schema not in SCHEMAS:
        raise ConfigError(f"OFA latency tables exist for MobileNetV3 and ProxylessNAS spaces only; "
                          f"{space.name!r} is a {space.family!r} space")
    return schema


def ofa_key(spec: LayerSpec, schema: str | None = None) -> str | None:
    """The OFA key string of `spec` (None if OFA's schema has no row for it).

    `schema` is "mbv3" or "proxyless"; None guesses from the activation (ProxylessNAS uses relu6).
    A Proxyless pool spec has no key of its own (its ``Logits`` row needs the classifier): use
    `proxyless_logits_key`.
    """
    if schema is None:
        schema = "proxyless" if spec.act == "relu6" else "mbv3"
    if schema not in SCHEMAS:
        raise ConfigError(f"unknown OFA LUT schema {schema!r}; expected one of {SCHEMAS}")
    io = f"input:{_shape(spec.in_size, spec.in_channels)}-output:{_shape(spec.out_size, spec.out_channels)}"
    if spec.kind == "conv" and spec.role == "stem":
        return f"Conv-{io}"
    if spec.kind == "mbconv":
        head = f"expanded_conv-{io}"
        tail = f"kernel:{spec.kernel_size}-stride:{spec.stride}-idskip:{int(spec.residual)}"
        if schema == "mbv3":
            return f"{head}-expand:{spec.mid_channels}-{tail}-se:{int(spec.se)}-hs:{int(spec.act == 'h_swish')}"
        ratio = _proxyless_ratio(spec)
        return None if ratio is None else f"{head}-expand:{ratio}-{tail}"
    if spec.kind == "conv" and spec.role == "final_expand" and schema == "mbv3":
        return f"Conv_1-{io}"
    if spec.kind == "conv" and spec.role == "feature_mix":
        return f"Conv_2-{io}" if schema == "mbv3" else f"Conv_1-{io}"
    if spec.kind == "avgpool" and schema == "mbv3":
        return f"AvgPool2D-{io}"
    if spec.kind == "linear" and schema == "mbv3":
        return f"Logits-input:{_shape(1, spec.in_channels)}-output:{spec.out_channels}"
    return None


def proxyless_logits_key(pool: LayerSpec, classifier: LayerSpec) -> str:
    """The Proxyless ``Logits`` key of a pool + classifier pair."""
    return f"Logits-input:{_shape(pool.in_size, pool.in_channels)}-output:{classifier.out_channels}"


def _proxyless_ratio(spec: LayerSpec) -> int | None:
    if not spec.expand:
        return 1 if spec.mid_channels == spec.in_channels else None
    ratio = round(spec.mid_channels / spec.in_channels)
    return ratio if ratio * spec.in_channels == spec.mid_channels else None


def _parse_shape(text: str, key: str) -> tuple[int, int]:
    parts = text.split("x")
    values = [int(p) for p in parts] if all(p.isascii() and p.isdigit() for p in parts) else []
    if len(values) == 1:
        return 1, values[0]
    if len(values) != 3 or values[0] != values[1]:
        raise ConfigError(f"OFA LUT key {key!r}: cannot read shape {text!r}; expected HxWxC with H == W, or N")
    return values[0], values[2]


def parse_ofa_key(key: str) -> tuple[str, dict[str, Any]]:
    """Split a key into its layer type and fields (sizes as (side, channels) tuples, others as ints)."""
    parts = key.split("-")  # layer types (Conv, Conv_1, Conv_2, AvgPool2D, Logits, expanded_conv) have no '-'
    ltype, fields_ = parts[0], {}
    for part in parts[1:]:
        match = _KEY_PART.match(part)
        if not match:
            raise ConfigError(f"OFA LUT key {key!r}: unexpected part {part!r}")
        name, value = match.groups()
        if name in ("input", "output"):
            fields_[name] = _parse_shape(value, key)
        elif value.isascii() and value.isdigit():
            fields_[name] = int(value)
        else:
            raise ConfigError(f"OFA LUT key {key!r}: {name}:{value!r} is not a non-negative integer")
    if "input" not in fields_ or "output" not in fields_:
        raise ConfigError(f"OFA LUT key {key!r}: missing input: or output: shape")
    return ltype, fields_


def specs_from_key(key: str, space: SearchSpace) -> list[LayerSpec]:
    """The `LayerSpec`s an OFA key stands for in `space` (two for a Proxyless ``Logits``: pool, classifier)."""
    schema = ofa_schema(space)
    ltype, f = parse_ofa_key(key)
    (in_size, cin), (out_size, cout) = f["input"], f["output"]
    stem_act = getattr(space, "stem_act", "h_swish" if schema == "mbv3" else "relu6")
    if ltype == "Conv":
        stride = next((s for s in (1, 2) if conv_out_size(in_size, s) == out_size), None)
        if stride is None:
            raise ConfigError(f"OFA LUT key {key!r}: output side {out_size} is not input side {in_size} / 1 or 2")
        return [LayerSpec(kind="conv", role="stem", in_channels=cin, out_channels=cout, in_size=in_size,
                          out_size=out_size, kernel_size=3, stride=stride, act=stem_act)]
    if ltype == "expanded_conv":
        needed = ("expand", "kernel", "stride", "idskip") + (("se", "hs") if schema == "mbv3" else ())
        missing = [n for n in needed if n not in f]
        if missing:
            raise ConfigError(f"OFA LUT key {key!r}: missing {missing} for the {schema} schema")
        if schema == "mbv3":
            mid, se = f["expand"], bool(f["se"])
            act = "h_swish" if f["hs"] else "relu"
        else:
            ratio = f["expand"]
            mid = cin if ratio == 1 else space.mid_channels(cin, ratio)  # type: ignore[attr-defined]
            se, act = False, "relu6"
        return [LayerSpec(kind="mbconv", role="block", in_channels=cin, out_channels=cout, in_size=in_size,
                          out_size=out_size, kernel_size=f["kernel"], stride=f["stride"], mid_channels=mid,
                          expand=mid != cin, se=se, act=act, residual=bool(f["idskip"]))]
    if schema == "mbv3":
        if ltype == "Conv_1":
            return [LayerSpec(kind="conv", role="final_expand", in_channels=cin, out_channels=cout, in_size=in_size,
                              out_size=out_size, act="h_swish")]
        if ltype == "AvgPool2D":
            return [LayerSpec(kind="avgpool", role="pool", in_channels=cin, out_channels=cout, in_size=in_size,
                              out_size=out_size)]
        if ltype == "Conv_2":
            return [LayerSpec(kind="conv", role="feature_mix", in_channels=cin, out_channels=cout, in_size=in_size,
                              out_size=out_size, act="h_swish", use_bn=False)]
        if ltype == "Logits":
            return [LayerSpec(kind="linear", role="classifier", in_channels=cin, out_channels=cout, in_size=1,
                              out_size=1, bias=True)]
    else:
        if ltype == "Conv_1":
            return [LayerSpec(kind="conv", role="feature_mix", in_channels=cin, out_channels=cout, in_size=in_size,
                              out_size=out_size, act="relu6")]
        if ltype == "Logits":
            return [LayerSpec(kind="avgpool", role="pool", in_channels=cin, out_channels=cin, in_size=in_size,
                              out_size=1),
                    LayerSpec(kind="linear", role="classifier", in_channels=cin, out_channels=cout, in_size=1,
                              out_size=1, bias=True)]
    known = "Conv, expanded_conv, Conv_1, AvgPool2D, Conv_2, Logits" if schema == "mbv3" else \
        "Conv, expanded_conv, Conv_1, Logits"
    raise ConfigError(f"OFA LUT key {key!r}: unknown layer type {ltype!r} for the {schema} schema; expected {known}")


__all__ = ["SCHEMAS", "ofa_key", "ofa_schema", "parse_ofa_key", "proxyless_logits_key", "specs_from_key"]
