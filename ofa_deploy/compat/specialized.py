"""OFA's released specialized subnets: their names, where their files live, what they are (no torch needed).

OFA publishes each specialized subnet as a directory ``han-cai/files: ofa/ofa_specialized/<name>/`` holding
``net.config`` (the static network), ``run.config`` (``{"image_size": N}``) and ``init`` (its checkpoint).
The names are those of the once-for-all README's table; OFA writes them with ``@``
(``flops@595M_top1@80.0_finetune@75``) and stores them with ``-``; both spellings are accepted.

What a name says (target, top-1, fine-tuning epochs) is parsed from it. What has to be counted (network class,
resolution, MACs, parameters) is filled in only for the nets whose net.config we hold, and a test recomputes it
from that net.config; for the others these fields are None (not counted here, never estimated).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

from ofa_deploy.compat.released import OFA_LICENSE, cache_dir, download
from ofa_deploy.errors import ConfigError, unknown_name
from ofa_deploy.preprocessing import OFA_IMAGENET, Preprocessing

_OFA_SPECIALIZED = "https://raw.githubusercontent.com/han-cai/files/master/ofa/ofa_specialized/"
_FILES = ("net.config", "run.config", "init")
# <target>-<value><unit>_top1-<top1>[_finetune-<epochs>], the target being "flops", "resnet50D_MAC",
# "<device>_lat" or "<device>_gpu<batch>".
_ID = re.compile(r"^(?P<target>.+?)-(?P<value>\d+(?:\.\d+)?)(?P<unit>ms|M|B)_top1-(?P<top1>\d+\.\d)"
                 r"(?:_finetune-(?P<finetune>\d+))?$")
_UNITS = {"M": 10**6, "B": 10**9}
_MACS_TARGETS = ("flops", "resnet50D_MAC")


@dataclass(frozen=True)
class SpecializedMeta:
    """What a released specialized subnet is.

    From its name: `top1`, `finetune_epochs`, and its target: a MACs budget (`macs_target`, e.g. 595M for
    ``flops@595M``; OFA's "flops" are MACs) or a latency (`latency_ms` on `hardware` at `batch_size`).
    Counted from its net.config and run.config (None where we do not hold them): `network` (OFA's static network
    class), `search_space` (the `ofa_deploy.spaces` space whose widths it uses), `resolution`, `macs` (at
    `resolution`, batch 1, convolutions and linear layers) and `num_params`; with the resolution, `preprocessing`
    (OFA's ImageNet evaluation at that side, as its run.config and OFA's eval script use).
    """

    top1: float
    finetune_epochs: int | None
    macs_target: int | None
    hardware: str | None
    latency_ms: float | None
    batch_size: int | None
    network: str | None = None
    search_space: str | None = None
    resolution: int | None = None
    macs: int | None = None
    num_params: int | None = None
    license: str | None = OFA_LICENSE
    preprocessing: Preprocessing | None = None


@dataclass(frozen=True)
class SpecializedSource:
    """One released specialized subnet: its name, where its three files live, its init's sha256 and its meta.

    `sha256` (of ``init``) is None: OFA publishes none and the han-cai/files snapshot we read holds no ``init``.
    """

    name: str
    meta: SpecializedMeta
    sha256: str | None = None

    @property
    def base_url(self) -> str:
        return f"{_OFA_SPECIALIZED}{self.name}/"

    @property
    def url(self) -> str:
        """URL of the checkpoint (``init``)."""
        return self.base_url + "init"

    @property
    def net_config_url(self) -> str:
        return self.base_url + "net.config"

    @property
    def run_config_url(self) -> str:
        return self.base_url + "run.config"

    @property
    def filename(self) -> str:
        """The checkpoint's path under the cache's ``specialized/`` directory."""
        return f"{self.name}/init"


def parse_specialized_name(name: str) -> SpecializedMeta:
    """The figures an OFA specialized-net name states (either spelling); counted fields stay None."""
    match = _ID.match(name.replace("@", "-"))
    if match is None:
        raise ConfigError(f"{name!r} is not an OFA specialized-net name; expected e.g. "
                          "'pixel1_lat@58ms_top1@76.9_finetune@75' or 'flops-595M_top1-80.0_finetune-75'")
    target, value, unit = match["target"], float(match["value"]), match["unit"]
    finetune = int(match["finetune"]) if match["finetune"] else None
    if unit != "ms":
        if target not in _MACS_TARGETS:
            raise ConfigError(f"{name!r} is not an OFA specialized-net name: a MACs figure ({match['value']}{unit}) "
                              f"follows {' or '.join(_MACS_TARGETS)}, not {target!r}")
        return SpecializedMeta(top1=float(match["top1"]), finetune_epochs=finetune,
                               macs_target=round(value * _UNITS[unit]), hardware=None, latency_ms=None, batch_size=None)
    device, _, kind = target.rpartition("_")
    batch = 1 if kind == "lat" else int(kind[len("gpu"):]) if re.fullmatch(r"gpu\d+", kind) else None
    if not device or batch is None:
        raise ConfigError(f"{name!r} is not an OFA specialized-net name: its latency target {target!r} is neither "
                          "'<device>_lat' nor '<device>_gpu<batch>'")
    return SpecializedMeta(top1=float(match["top1"]), finetune_epochs=finetune, macs_target=None,
                           hardware=device, latency_ms=value, batch_size=batch)


def _entry(name: str, **counted: object) -> tuple[str, SpecializedSource]:
    resolution = counted.get("resolution")
    if isinstance(resolution, int):
        counted["preprocessing"] = OFA_IMAGENET.at(resolution)
    return name, SpecializedSource(name, replace(parse_specialized_name(name), **counted))


# The 58 names of the once-for-all README's table (mit-han-lab/once-for-all f03b267). The counted fields of the
# three whose net.config/run.config we hold are recomputed by tests/unit/test_weights_registry.py.
SPECIALIZED_NETS: dict[str, SpecializedSource] = dict([
    # ResNet50 design space
    _entry("resnet50D_MAC-4.1B_top1-79.8"),
    _entry("resnet50D_MAC-3.7B_top1-79.7"),
    _entry("resnet50D_MAC-3.0B_top1-79.3"),
    _entry("resnet50D_MAC-2.4B_top1-79.0"),
    _entry("resnet50D_MAC-1.8B_top1-78.3"),
    _entry("resnet50D_MAC-1.2B_top1-77.1_finetune-25"),
    _entry("resnet50D_MAC-0.9B_top1-76.3_finetune-25"),
    _entry("resnet50D_MAC-0.6B_top1-75.0_finetune-25"),
    # MACs ("FLOPs")
    _entry("flops-595M_top1-80.0_finetune-75", network="MobileNetV3", search_space="ofa_mbv3_w12",
           resolution=236, macs=595_189_032, num_params=9_135_928),
    _entry("flops-482M_top1-79.6_finetune-75"),
    _entry("flops-389M_top1-79.1_finetune-75"),
    # LG G8
    _entry("LG-G8_lat-24ms_top1-76.4_finetune-25"),
    _entry("LG-G8_lat-16ms_top1-74.7_finetune-25"),
    _entry("LG-G8_lat-11ms_top1-73.0_finetune-25"),
    _entry("LG-G8_lat-8ms_top1-71.1_finetune-25"),
    # Samsung S7 Edge
    _entry("s7edge_lat-88ms_top1-76.3_finetune-25"),
    _entry("s7edge_lat-58ms_top1-74.7_finetune-25"),
    _entry("s7edge_lat-41ms_top1-73.1_finetune-25"),
    _entry("s7edge_lat-29ms_top1-70.5_finetune-25"),
    # Samsung Note8
    _entry("note8_lat-65ms_top1-76.1_finetune-25"),
    _entry("note8_lat-49ms_top1-74.9_finetune-25"),
    _entry("note8_lat-31ms_top1-72.8_finetune-25"),
    _entry("note8_lat-22ms_top1-70.4_finetune-25"),
    # Samsung Note10
    _entry("note10_lat-64ms_top1-80.2_finetune-75"),
    _entry("note10_lat-50ms_top1-79.7_finetune-75"),
    _entry("note10_lat-41ms_top1-79.3_finetune-75"),
    _entry("note10_lat-30ms_top1-78.4_finetune-75"),
    _entry("note10_lat-22ms_top1-76.6_finetune-25"),
    _entry("note10_lat-16ms_top1-75.5_finetune-25"),
    _entry("note10_lat-11ms_top1-73.6_finetune-25"),
    _entry("note10_lat-8ms_top1-71.4_finetune-25"),
    # Google Pixel1
    _entry("pixel1_lat-143ms_top1-80.1_finetune-75"),
    _entry("pixel1_lat-132ms_top1-79.8_finetune-75"),
    _entry("pixel1_lat-79ms_top1-78.7_finetune-75"),
    _entry("pixel1_lat-58ms_top1-76.9_finetune-75", network="MobileNetV3", search_space="ofa_mbv3_w10",
           resolution=220, macs=229_846_296, num_params=5_809_576),
    _entry("pixel1_lat-40ms_top1-74.9_finetune-25"),
    _entry("pixel1_lat-28ms_top1-73.3_finetune-25"),
    _entry("pixel1_lat-20ms_top1-71.4_finetune-25"),
    # Google Pixel2
    _entry("pixel2_lat-62ms_top1-75.8_finetune-25"),
    _entry("pixel2_lat-50ms_top1-74.7_finetune-25"),
    _entry("pixel2_lat-35ms_top1-73.4_finetune-25"),
    _entry("pixel2_lat-25ms_top1-71.5_finetune-25"),
    # 1080Ti GPU, batch 64
    _entry("1080ti_gpu64-27ms_top1-76.4_finetune-25"),
    _entry("1080ti_gpu64-22ms_top1-75.3_finetune-25"),
    _entry("1080ti_gpu64-15ms_top1-73.8_finetune-25"),
    _entry("1080ti_gpu64-12ms_top1-72.6_finetune-25"),
    # V100 GPU, batch 64
    _entry("v100_gpu64-11ms_top1-76.1_finetune-25"),
    _entry("v100_gpu64-9ms_top1-75.3_finetune-25"),
    _entry("v100_gpu64-6ms_top1-73.0_finetune-25"),
    _entry("v100_gpu64-5ms_top1-71.6_finetune-25"),
    # Jetson TX2 GPU, batch 16
    _entry("tx2_gpu16-96ms_top1-75.8_finetune-25"),
    _entry("tx2_gpu16-80ms_top1-75.4_finetune-25"),
    _entry("tx2_gpu16-47ms_top1-72.9_finetune-25"),
    _entry("tx2_gpu16-35ms_top1-70.3_finetune-25"),
    # Intel Xeon CPU with MKL-DNN, batch 1
    _entry("cpu_lat-17ms_top1-75.7_finetune-25", network="ProxylessNASNets", search_space="ofa_proxyless_w13",
           resolution=208, macs=364_488_032, num_params=4_933_568),
    _entry("cpu_lat-15ms_top1-74.6_finetune-25"),
    _entry("cpu_lat-11ms_top1-72.0_finetune-25"),
    _entry("cpu_lat-10ms_top1-71.1_finetune-25"),
])


def get_specialized(name: str) -> SpecializedSource:
    """The entry of specialized net `name` (``@`` or ``-`` spelling); a typo gets close-match suggestions."""
    key = name.replace("@", "-")
    if key not in SPECIALIZED_NETS:
        raise unknown_name("specialized net", key, SPECIALIZED_NETS)
    return SPECIALIZED_NETS[key]


def fetch_specialized(name: str, *, weights: bool = True,
                      cache_dir_override: str | os.PathLike[str] | None = None) -> Path:
    """The cache directory of specialized net `name` holding its net.config and run.config (and, with `weights`,
    its ``init``), downloading what is missing once. Offline, raises `CheckpointError` naming the URL and the
    path to put the file at."""
    source = get_specialized(name)
    root = cache_dir(cache_dir_override)
    folder = root / "specialized" / source.name
    for file in _FILES if weights else _FILES[:2]:
        download(source.base_url + file, folder / file, sha256=source.sha256 if file == "init" else None,
                 cache_root=root)
    return folder


__all__ = ["SPECIALIZED_NETS", "SpecializedMeta", "SpecializedSource", "fetch_specialized", "get_specialized",
           "parse_specialized_name"]
