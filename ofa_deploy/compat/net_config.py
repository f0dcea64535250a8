"""OFA static-network ``net.config`` / ``run.config`` files, in both directions.

OFA publishes its specialized subnets as a ``net.config`` (JSON describing a static
``MobileNetV3``, ``ProxylessNASNets`` or ``ResNets``), a ``run.config`` (``{"image_size": N}``) and
a checkpoint of the static net. This module turns a net.config into the `LayerSpec` stream and a
`SubnetModel` and writes our subnets back as OFA net.configs (current class names). The static
net's weights are handled by `ofa_deploy.compat.static_weights` (`load_static_weights`,
`to_ofa_state_dict`), its layout by `ofa_deploy.compat.static_layout`.

Legacy names found in the released files are accepted: ``MobileInvertedResidualBlock``,
``mobile_inverted_conv``, ``MBInvertedConvLayer`` and IdentityLayer channel counts given as
one-element lists. Inputs are never mutated.
"""
from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ofa_deploy.compat.static_layout import network_name, ofa_slots
from ofa_deploy.errors import ConfigError
from ofa_deploy.fileio import atomic_write_text, is_regular_file, read_json_file
from ofa_deploy.spaces import LayerSpec, conv_out_size, make_divisible

logger = logging.getLogger(__name__)

NET_NAMES = ("MobileNetV3", "ProxylessNASNets", "ResNets")
DEFAULT_RESOLUTION = 224
_DEFAULT_BN_EPS = {"MobileNetV3": 1e-5, "ProxylessNASNets": 1e-3, "ResNets": 1e-5}
_ALIASES = {"MBInvertedConvLayer": "MBConvLayer", "MobileInvertedResidualBlock": "ResidualBlock"}
_ACTS = {None: "none", "none": "none", "relu": "relu", "relu6": "relu6", "h_swish": "h_swish"}
_TOP_KEYS = {
    "MobileNetV3": ("first_conv", "blocks", "final_expand_layer", "feature_mix_layer", "classifier"),
    "ProxylessNASNets": ("first_conv", "blocks", "feature_mix_layer", "classifier"),
    "ResNets": ("input_stem", "blocks", "classifier"),
}
# OFA defaults of each static layer's constructor (keys absent from a config take these values).
_CONV_DEFAULTS: dict[str, Any] = {
    "kernel_size": 3, "stride": 1, "dilation": 1, "groups": 1, "bias": False, "has_shuffle": False,
    "use_se": False, "use_bn": True, "act_func": "relu", "dropout_rate": 0, "ops_order": "weight_bn_act",
}
_MBCONV_DEFAULTS: dict[str, Any] = {
    "kernel_size": 3, "stride": 1, "expand_ratio": 6, "mid_channels": None, "act_func": "relu6",
    "use_se": False, "groups": None,
}
_BOTTLENECK_DEFAULTS: dict[str, Any] = {
    "kernel_size": 3, "stride": 1, "expand_ratio": 0.25, "mid_channels": None, "act_func": "relu", "groups": 1,
    "downsample_mode": "avgpool_conv",
}
_LINEAR_DEFAULTS: dict[str, Any] = {
    "bias": True, "use_bn": False, "act_func": None, "dropout_rate": 0, "ops_order": "weight_bn_act",
}
_IDENTITY_DEFAULTS: dict[str, Any] = {
    "use_bn": False, "act_func": None, "dropout_rate": 0, "ops_order": "weight_bn_act",
}


@dataclass(frozen=True)
class ParsedNetConfig:
    """A parsed net.config: network class name, layers at one resolution, BN epsilon."""

    name: str
    specs: tuple[LayerSpec, ...]
    bn_eps: float
    resolution: int


# ---------------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------------
def _as_file(source: str | Path, what: str) -> Path:
    """A path; an OFA ``ofa_specialized/<id>/`` directory stands for the ``net.config``/``run.config`` inside."""
    path = Path(source)
    return path / what if os.path.isdir(path) else path


def _read_json(source: str | Path | Mapping[str, Any], what: str) -> tuple[Mapping[str, Any], str]:
    """(mapping, description of the source) from a path or a mapping (not copied, never mutated)."""
    if isinstance(source, Mapping):
        return source, f"<{what} dict>"
    path = _as_file(source, what)
    data = read_json_file(path, what=what)
    if not isinstance(data, Mapping):
        raise ConfigError(f"{what} {str(path)!r} must hold a JSON object, got {type(data).__name__}")
    return data, str(path)


def _sibling_run_config(path: Path) -> Path | None:
    """``X.net.config`` → ``X.run.config``; ``net.config`` → ``run.config`` in the same directory."""
    name = path.name
    if name.endswith("net.config"):
        candidate = path.with_name(name[: -len("net.config")] + "run.config")
        if is_regular_file(candidate):
            return candidate
    return None


def _run_config_resolution(run_config: str | Path | Mapping[str, Any]) -> int:
    data, where = _read_json(run_config, "run.config")
    if "image_size" not in data:
        raise ConfigError(f"run.config {where} has no 'image_size'; expected e.g. {{\"image_size\": 224}}")
    size = data["image_size"]
    if isinstance(size, Sequence) and not isinstance(size, str):
        if len(size) != 1:
            raise ConfigError(f"run.config {where}: image_size {list(size)!r} lists several resolutions; "
                              "pass resolution=... to pick one")
        size = size[0]
    return _positive_int(size, f"run.config {where}: image_size")


def _flag(value: Any, where: str) -> bool:
    """A true/false field of a net.config (OFA writes JSON booleans; 0/1 are accepted too)."""
    if isinstance(value, bool) or (isinstance(value, int) and value in (0, 1)):
        return bool(value)
    raise ConfigError(f"{where} = {value!r} is invalid; expected true or false")


def _positive_int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or float(value) != int(value) or value < 1:
        raise ConfigError(f"{where} must be a positive integer, got {value!r}")
    return int(value)


def resolve_resolution(
    source: str | Path | Mapping[str, Any],
    run_config: str | Path | Mapping[str, Any] | None = None,
    resolution: int | None = None,
) -> int:
    """Input side for a net.config: `resolution`, else `run_config`, else a sibling run.config, else 224."""
    if resolution is not None:
        return _positive_int(resolution, "resolution")
    if run_config is not None:
        return _run_config_resolution(run_config)
    if not isinstance(source, Mapping):
        sibling = _sibling_run_config(_as_file(source, "net.config"))
        if sibling is not None:
            logger.info("using resolution from %s", sibling)
            return _run_config_resolution(sibling)
    return DEFAULT_RESOLUTION


class _Parser:
    """Walks one net.config, checking every entry and tracking channels and spatial size."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.channels = 3
        self.prev = "the input image"
        self.specs: list[LayerSpec] = []

    # -- helpers ------------------------------------------------------------------------------
    @staticmethod
    def fields(cfg: Any, where: str, expected: str, defaults: dict[str, Any], required: Sequence[str],
               extra: Sequence[str] = ()) -> dict[str, Any]:
        if not isinstance(cfg, Mapping):
            raise ConfigError(f"{where}: expected a {expected} config (a JSON object), got {cfg!r}")
        raw_name = cfg.get("name")
        name = _ALIASES.get(raw_name, raw_name) if isinstance(raw_name, str) else raw_name
        if name != expected:
            raise ConfigError(f"{where}: unknown or misplaced layer name {cfg.get('name')!r}; expected {expected!r}")
        allowed = set(defaults) | set(required) | set(extra) | {"name"}
        unknown = sorted(set(cfg) - allowed)
        if unknown:
            raise ConfigError(f"{where} ({expected}): unknown keys {unknown}; expected a subset of {sorted(allowed)}")
        missing = [k for k in required if k not in cfg]
        if missing:
            raise ConfigError(f"{where} ({expected}): missing required keys {missing}")
        out = dict(defaults)
        out.update({k: v for k, v in cfg.items() if k != "name"})
        return out

    def check_in(self, value: Any, where: str) -> int:
        channels = _positive_int(value, where)
        if channels != self.channels:
            raise ConfigError(f"{where} = {channels}, but {self.prev} outputs {self.channels} channels; "
                              f"expected {self.channels}")
        return channels

    @staticmethod
    def act(value: Any, where: str) -> str:
        if not (value is None or isinstance(value, str)) or value not in _ACTS:
            raise ConfigError(f"{where} = {value!r} is not supported; expected one of {sorted(map(str, _ACTS))}")
        return _ACTS[value]

    @staticmethod
    def unsupported(where: str, key: str, value: Any, expected: Any) -> None:
        raise ConfigError(f"{where}: {key} = {value!r} is not supported by ofa-deploy; expected {expected!r}")

    def add(self, spec: LayerSpec, where: str) -> None:
        self.specs.append(spec)
        self.size, self.channels, self.prev = spec.out_size, spec.out_channels, where

    # -- layers -------------------------------------------------------------------------------
    def conv(self, cfg: Any, where: str, *, role: str, residual: bool = False) -> None:
        f = self.fields(cfg, where, "ConvLayer", _CONV_DEFAULTS, ("in_channels", "out_channels"))
        cin = self.check_in(f["in_channels"], f"{where}.in_channels")
        cout = _positive_int(f["out_channels"], f"{where}.out_channels")
        k = _positive_int(f["kernel_size"], f"{where}.kernel_size")
        stride = _positive_int(f["stride"], f"{where}.stride")
        for key, ok in (("dilation", 1), ("groups", 1), ("has_shuffle", False), ("use_se", False),
                        ("ops_order", "weight_bn_act")):
            if f[key] != ok:
                self.unsupported(where, key, f[key], ok)
        if k % 2 == 0:
            raise ConfigError(f"{where}.kernel_size = {k}; expected an odd kernel size")
        if residual and (cin != cout or stride != 1):
            raise ConfigError(f"{where}: an identity shortcut needs stride 1 and in_channels == out_channels, "
                              f"got stride {stride}, {cin} -> {cout}")
        self.add(LayerSpec(kind="conv", role=role, in_channels=cin, out_channels=cout, in_size=self.size,
                           out_size=conv_out_size(self.size, stride), kernel_size=k, stride=stride,
                           act=self.act(f["act_func"], f"{where}.act_func"),
                           use_bn=_flag(f["use_bn"], f"{where}.use_bn"),
                           bias=_flag(f["bias"], f"{where}.bias"), residual=residual), where)

    def mbconv(self, cfg: Any, where: str, *, residual: bool) -> None:
        f = self.fields(cfg, where, "MBConvLayer", _MBCONV_DEFAULTS, ("in_channels", "out_channels"))
        cin = self.check_in(f["in_channels"], f"{where}.in_channels")
        cout = _positive_int(f["out_channels"], f"{where}.out_channels")
        k = _positive_int(f["kernel_size"], f"{where}.kernel_size")
        stride = _positive_int(f["stride"], f"{where}.stride")
        if f["groups"] is not None:
            self.unsupported(where, "groups", f["groups"], None)
        ratio = f["expand_ratio"]
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or ratio <= 0:
            raise ConfigError(f"{where}.expand_ratio must be a positive number, got {ratio!r}")
        mid = (_positive_int(f["mid_channels"], f"{where}.mid_channels") if f["mid_channels"] is not None
               else round(cin * ratio))
        expand = ratio != 1
        if not expand and mid != cin:
            raise ConfigError(f"{where}: expand_ratio 1 (no expansion conv) needs mid_channels == in_channels "
                              f"({cin}), got {mid}")
        if residual and (cin != cout or stride != 1):
            raise ConfigError(f"{where}: an identity shortcut needs stride 1 and in_channels == out_channels, "
                              f"got stride {stride}, {cin} -> {cout}")
        self.add(LayerSpec(kind="mbconv", role="block", in_channels=cin, out_channels=cout, in_size=self.size,
                           out_size=conv_out_size(self.size, stride), kernel_size=k, stride=stride, mid_channels=mid,
                           expand=expand, se=_flag(f["use_se"], f"{where}.use_se"),
                           act=self.act(f["act_func"], f"{where}.act_func"),
                           residual=residual), where)

    def bottleneck(self, cfg: Any, where: str) -> None:
        f = self.fields(cfg, where, "ResNetBottleneckBlock", _BOTTLENECK_DEFAULTS, ("in_channels", "out_channels"))
        cin = self.check_in(f["in_channels"], f"{where}.in_channels")
        cout = _positive_int(f["out_channels"], f"{where}.out_channels")
        k = _positive_int(f["kernel_size"], f"{where}.kernel_size")
        stride = _positive_int(f["stride"], f"{where}.stride")
        if f["groups"] != 1:
            self.unsupported(where, "groups", f["groups"], 1)
        identity = stride == 1 and cin == cout
        if not identity and f["downsample_mode"] != "avgpool_conv":
            self.unsupported(where, "downsample_mode", f["downsample_mode"], "avgpool_conv")
        if f["mid_channels"] is not None:
            mid = _positive_int(f["mid_channels"], f"{where}.mid_channels")
        else:
            ratio = f["expand_ratio"]
            if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or ratio <= 0:
                raise ConfigError(f"{where}.expand_ratio must be a positive number, got {ratio!r}")
            mid = round(cout * ratio)
        self.add(LayerSpec(kind="bottleneck", role="block", in_channels=cin, out_channels=cout, in_size=self.size,
                           out_size=conv_out_size(self.size, stride), kernel_size=k, stride=stride,
                           mid_channels=make_divisible(mid, 8), act=self.act(f["act_func"], f"{where}.act_func"),
                           residual=True, downsample="identity" if identity else "avgpool_conv"), where)

    def shortcut(self, cfg: Any, where: str, channels: int) -> bool:
        """True for an identity shortcut, False for none; anything else is an error."""
        if cfg is None:
            return False
        if type(cfg).__name__ == "IdentityLayer" and not isinstance(cfg, Mapping):
            return True  # OFA's ResNet get_active_net_config() puts the layer object itself here
        f = self.fields(cfg, where, "IdentityLayer", _IDENTITY_DEFAULTS, ("in_channels", "out_channels"))
        for key in ("in_channels", "out_channels"):
            value = f[key]
            if isinstance(value, Sequence) and not isinstance(value, str):  # legacy: [C]
                if len(value) != 1:
                    raise ConfigError(f"{where}.{key} = {list(value)!r}; expected one channel count")
                value = value[0]
            if _positive_int(value, f"{where}.{key}") != channels:
                raise ConfigError(
                    f"{where}.{key} = {value}, but the block has {channels} channels; expected {channels}")
        return True

    def residual_block(self, cfg: Any, where: str, *, inner: str) -> None:
        f = self.fields(cfg, where, "ResidualBlock", {}, ("shortcut",), extra=("conv", "mobile_inverted_conv"))
        key = "conv" if "conv" in f else "mobile_inverted_conv" if "mobile_inverted_conv" in f else None
        if key is None or f[key] is None:
            raise ConfigError(f"{where} (ResidualBlock): missing 'conv' (or legacy 'mobile_inverted_conv'); "
                              f"expected a {inner} config")
        residual = self.shortcut(f["shortcut"], f"{where}.shortcut", self.channels)
        if inner == "MBConvLayer":
            self.mbconv(f[key], f"{where}.{key}", residual=residual)
        else:
            if not residual:
                raise ConfigError(f"{where}: a ResidualBlock in input_stem needs an IdentityLayer shortcut")
            self.conv(f[key], f"{where}.{key}", role="stem", residual=True)

    def pool(self, kind: str, role: str) -> None:
        out = 1 if kind == "avgpool" else conv_out_size(self.size, 2)
        self.specs.append(LayerSpec(kind=kind, role=role, in_channels=self.channels, out_channels=self.channels,
                                    in_size=self.size, out_size=out, kernel_size=3 if kind == "maxpool" else 1,
                                    stride=2 if kind == "maxpool" else 1))
        self.size = out

    def linear(self, cfg: Any, where: str) -> None:
        f = self.fields(cfg, where, "LinearLayer", _LINEAR_DEFAULTS, ("in_features", "out_features"))
        cin = self.check_in(f["in_features"], f"{where}.in_features")
        cout = _positive_int(f["out_features"], f"{where}.out_features")
        if f["use_bn"]:
            self.unsupported(where, "use_bn", f["use_bn"], False)
        if f["act_func"] not in (None, "none"):
            self.unsupported(where, "act_func", f["act_func"], None)
        if f["ops_order"] != "weight_bn_act":
            self.unsupported(where, "ops_order", f["ops_order"], "weight_bn_act")
        self.add(LayerSpec(kind="linear", role="classifier", in_channels=cin, out_channels=cout, in_size=1,
                           out_size=1, bias=_flag(f["bias"], f"{where}.bias")), where)

    def blocks(self, cfg: Mapping[str, Any], inner: str) -> None:
        blocks = cfg["blocks"]
        if not isinstance(blocks, Sequence) or isinstance(blocks, str) or not blocks:
            raise ConfigError(f"net.config 'blocks' must be a non-empty list of block configs, got {blocks!r}")
        for i, block in enumerate(blocks):
            if inner == "MBConvLayer":
                self.residual_block(block, f"blocks[{i}]", inner=inner)
            else:
                self.bottleneck(block, f"blocks[{i}]")


def _bn_eps(cfg: Mapping[str, Any], name: str) -> float:
    bn = cfg.get("bn")
    if bn is None:
        return _DEFAULT_BN_EPS[name]
    if not isinstance(bn, Mapping):
        raise ConfigError(f"net.config 'bn' must be an object like {{\"momentum\": 0.1, \"eps\": 1e-05}}, got {bn!r}")
    if bn.get("ws_eps") is not None:
        raise ConfigError(f"net.config bn.ws_eps = {bn['ws_eps']!r}: weight standardization is not supported; "
                          "expected null")
    if bn.get("gn_channel_per_group") is not None:
        raise ConfigError("net.config bn.gn_channel_per_group is set: GroupNorm is not supported; expected BatchNorm")
    eps = bn.get("eps", _DEFAULT_BN_EPS[name])
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 < eps < 1:
        raise ConfigError(f"net.config bn.eps = {eps!r}; expected a small positive number such as 1e-05")
    return float(eps)


def parse_net_config(cfg: Mapping[str, Any], resolution: int = DEFAULT_RESOLUTION) -> ParsedNetConfig:
    """Check an OFA net.config dict and turn it into layers at `resolution` (the dict is not modified)."""
    if not isinstance(cfg, Mapping):
        raise ConfigError(f"a net.config must be a JSON object, got {type(cfg).__name__}")
    name = cfg.get("name")
    if name not in NET_NAMES:
        raise ConfigError(f"net.config name {name!r} is not supported; expected one of {list(NET_NAMES)}")
    missing = [k for k in _TOP_KEYS[name] if k not in cfg]
    if missing:
        raise ConfigError(f"{name} net.config is missing {missing}; expected keys {['name', 'bn', *_TOP_KEYS[name]]}")
    extra = sorted(set(cfg) - {"name", "bn", *_TOP_KEYS[name]})
    if extra:
        logger.warning("%s net.config: ignoring unknown top-level keys %s", name, extra)
    size = _positive_int(resolution, "resolution")
    bn_eps = _bn_eps(cfg, name)
    p = _Parser(size)
    if name == "ResNets":
        stem = cfg["input_stem"]
        if not isinstance(stem, Sequence) or isinstance(stem, str) or not stem:
            raise ConfigError(f"ResNets input_stem must be a non-empty list of layer configs, got {stem!r}")
        for i, layer in enumerate(stem):
            if isinstance(layer, Mapping) and _ALIASES.get(layer.get("name"), layer.get("name")) == "ResidualBlock":
                p.residual_block(layer, f"input_stem[{i}]", inner="ConvLayer")
            else:
                p.conv(layer, f"input_stem[{i}]", role="stem")
        p.pool("maxpool", "stem")
        p.blocks(cfg, "ResNetBottleneckBlock")
        p.pool("avgpool", "pool")
    else:
        p.conv(cfg["first_conv"], "first_conv", role="stem")
        p.blocks(cfg, "MBConvLayer")
        if name == "MobileNetV3":
            p.conv(cfg["final_expand_layer"], "final_expand_layer", role="final_expand")
            p.pool("avgpool", "pool")
            p.conv(cfg["feature_mix_layer"], "feature_mix_layer", role="feature_mix")
        else:
            if cfg["feature_mix_layer"] is not None:
                p.conv(cfg["feature_mix_layer"], "feature_mix_layer", role="feature_mix")
            p.pool("avgpool", "pool")
    p.linear(cfg["classifier"], "classifier")
    return ParsedNetConfig(name=name, specs=tuple(p.specs), bn_eps=bn_eps, resolution=size)


def net_config_to_specs(
    net_config: str | Path | Mapping[str, Any],
    run_config: str | Path | Mapping[str, Any] | None = None,
    resolution: int | None = None,
) -> list[LayerSpec]:
    """The `LayerSpec`s of an OFA net.config (path or dict) at the resolution chosen like `load_net_config`."""
    cfg, _ = _read_json(net_config, "net.config")
    return list(parse_net_config(cfg, resolve_resolution(net_config, run_config, resolution)).specs)


def load_net_config(
    net_config: str | Path | Mapping[str, Any],
    run_config: str | Path | Mapping[str, Any] | None = None,
    resolution: int | None = None,
) -> Any:
    """Build a random-init `SubnetModel` from an OFA net.config (path or dict).

    `net_config` may also be an OFA ``ofa_specialized/<id>/`` directory holding ``net.config``.
    The resolution is `resolution` if given, else ``run_config["image_size"]``, else the
    ``run.config`` next to the file (``X.net.config`` → ``X.run.config``), else 224. BN epsilon
    comes from the config's ``bn`` entry. Load weights with `load_static_weights`.
    """
    from ofa_deploy.nn.layers import SubnetModel

    cfg, where = _read_json(net_config, "net.config")
    res = resolve_resolution(net_config, run_config, resolution)
    parsed = parse_net_config(cfg, res)
    logger.info("built %s from %s at %d px (%d layers)", parsed.name, where, res, len(parsed.specs))
    return SubnetModel(parsed.specs, bn_eps=parsed.bn_eps,
                       meta={"source": where, "net_config": parsed.name, "resolution": res})


# ---------------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------------
def _act_name(act: str) -> str | None:
    return None if act == "none" else act


def _conv_config(s: LayerSpec) -> dict[str, Any]:
    return {"name": "ConvLayer", "kernel_size": s.kernel_size, "stride": s.stride, "dilation": 1, "groups": 1,
            "bias": s.bias, "has_shuffle": False, "use_se": False, "in_channels": s.in_channels,
            "out_channels": s.out_channels, "use_bn": s.use_bn, "act_func": _act_name(s.act), "dropout_rate": 0,
            "ops_order": "weight_bn_act"}


def _identity_config(channels: int) -> dict[str, Any]:
    return {"name": "IdentityLayer", "in_channels": channels, "out_channels": channels, "use_bn": False,
            "act_func": None, "dropout_rate": 0, "ops_order": "weight_bn_act"}


def _mbconv_block(s: LayerSpec, where: str) -> dict[str, Any]:
    if s.expand:
        ratio = round(s.mid_channels / s.in_channels, 4)
        if ratio == 1:
            raise ConfigError(f"{where}: an expanding MBConv with mid_channels == in_channels ({s.in_channels}) "
                              "cannot be written as an OFA MBConvLayer (expand_ratio 1 means no expansion conv)")
        ratio_out: float | int = int(ratio) if float(ratio).is_integer() else ratio
        mid: int | None = s.mid_channels
    else:
        ratio_out, mid = 1, None
    conv = {"name": "MBConvLayer", "in_channels": s.in_channels, "out_channels": s.out_channels,
            "kernel_size": s.kernel_size, "stride": s.stride, "expand_ratio": ratio_out, "mid_channels": mid,
            "act_func": _act_name(s.act), "use_se": s.se, "groups": None}
    return {"name": "ResidualBlock", "conv": conv,
            "shortcut": _identity_config(s.in_channels) if s.residual else None}


def _bottleneck_block(s: LayerSpec, where: str) -> dict[str, Any]:
    identity = s.stride == 1 and s.in_channels == s.out_channels
    if identity != (s.downsample == "identity") or make_divisible(s.mid_channels, 8) != s.mid_channels:
        raise ConfigError(f"{where}: {s.short()} (downsample {s.downsample}) has no OFA ResNetBottleneckBlock "
                          "equivalent; OFA uses an identity shortcut iff stride 1 and in == out, and mid channels "
                          "divisible by 8")
    ratio = round(s.mid_channels / s.out_channels, 4)
    return {"name": "ResNetBottleneckBlock", "in_channels": s.in_channels, "out_channels": s.out_channels,
            "kernel_size": s.kernel_size, "stride": s.stride, "expand_ratio": ratio, "mid_channels": s.mid_channels,
            "act_func": _act_name(s.act), "groups": 1, "downsample_mode": "avgpool_conv"}


def _linear_config(s: LayerSpec) -> dict[str, Any]:
    return {"name": "LinearLayer", "in_features": s.in_channels, "out_features": s.out_channels, "bias": s.bias,
            "use_bn": False, "act_func": None, "dropout_rate": 0, "ops_order": "weight_bn_act"}


def subnet_to_net_config(model: Any, *, bn_eps: float | None = None, bn_momentum: float = 0.1) -> dict[str, Any]:
    """An OFA-style static net.config (current class names) for a `SubnetModel` (or a list of LayerSpecs).

    The result is JSON-able and builds the same network with the reference package's
    ``get_net_by_name(cfg["name"]).build_from_config(cfg)``; map weights with `to_ofa_state_dict`.
    BN epsilon: `bn_eps`, else the model's, else OFA's default for the network class.
    """
    specs: Sequence[LayerSpec] = model if isinstance(model, Sequence) else model.specs
    if bn_eps is None:
        bn_eps = float(getattr(model, "bn_eps", _DEFAULT_BN_EPS[network_name(specs)]))
    slots = ofa_slots(specs)
    name = network_name(specs)
    cfg: dict[str, Any] = {"name": name, "bn": {"momentum": bn_momentum, "eps": bn_eps, "ws_eps": None}}
    if name == "ResNets":
        cfg["input_stem"] = []
    else:
        cfg["first_conv"] = None
    cfg["blocks"] = []
    if name == "MobileNetV3":
        cfg["final_expand_layer"] = None
    if name != "ResNets":
        cfg["feature_mix_layer"] = None
    for (slot, index), s in zip(slots, specs):
        where = f"{slot}[{index}]"
        if slot == "input_stem":
            conv = _conv_config(s)
            cfg["input_stem"].append(
                {"name": "ResidualBlock", "conv": conv, "shortcut": _identity_config(s.in_channels)} if s.residual
                else conv)
        elif slot == "blocks":
            cfg["blocks"].append(_mbconv_block(s, where) if s.kind == "mbconv" else _bottleneck_block(s, where))
        elif slot == "classifier":
            cfg["classifier"] = _linear_config(s)
        elif slot != "pool":
            if s.residual:
                raise ConfigError(f"{slot}: a residual conv ({s.short()}) cannot be written as an OFA ConvLayer")
            cfg[slot] = _conv_config(s)
    return cfg


def save_net_config(model: Any, path: str | Path, *, resolution: int | None = None) -> Path:
    """Write ``subnet_to_net_config(model)`` to `path` atomically; with `resolution` also the run.config.

    A path ending in ``net.config`` gets its run.config next to it (``X.net.config`` → ``X.run.config``).
    """
    path = Path(path)
    atomic_write_text(path, json.dumps(subnet_to_net_config(model), indent=4) + "\n")
    if resolution is not None:
        if not path.name.endswith("net.config"):
            raise ConfigError(f"cannot place a run.config next to {str(path)!r}: name it '<id>.net.config'")
        run = path.with_name(path.name[: -len("net.config")] + "run.config")
        atomic_write_text(run, json.dumps({"image_size": _positive_int(resolution, "resolution")}, indent=4) + "\n")
    return path



__all__ = [
    "DEFAULT_RESOLUTION", "NET_NAMES", "ParsedNetConfig", "load_net_config", "net_config_to_specs",
    "parse_net_config", "resolve_resolution", "save_net_config", "subnet_to_net_config",
]
