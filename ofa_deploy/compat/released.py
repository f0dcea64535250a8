"""Released OFA supernet weights: where they live, what they are, and a cached download (no torch needed).

The entries are declared with their model families (``ofa_deploy/families/``, `ModelName.weights`) and read
here through `supernet_weights()`. Each `WeightsSource` carries a `SupernetMeta` (parameters, largest MACs,
resolutions, ...) that ``tests/unit/test_weights_registry.py`` recomputes from the built supernet, as
torchvision's weight enums are checked. ``ofa_deploy.create_supernet(name, weights="released")`` builds a
supernet with them; `ofa_deploy.compat.zoo` looks entries up by name (supernets and the released specialized nets).

Files are cached under ``$OFA_DEPLOY_CACHE`` or ``~/.cache/ofa-deploy`` (``supernets/<file>``).
Downloads are written to a temporary file in the cache directory and moved into place
(``os.replace``), so an interrupted download never leaves a truncated file behind.
"""
from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ofa_deploy.errors import CheckpointError, unknown_name
from ofa_deploy.fileio import file_sha256
from ofa_deploy.preprocessing import OFA_IMAGENET, Preprocessing
from ofa_deploy.spaces.family import FAMILIES

log = logging.getLogger(__name__)

#: where OFA's model zoo keeps the MobileNet supernet checkpoints
OFA_NETS_URL = "https://raw.githubusercontent.com/han-cai/files/master/ofa/ofa_nets/"


#: Licence of mit-han-lab/once-for-all, whose model zoo publishes these files; the weight hosts (han-cai/files,
#: huggingface.co/han-cai/ofa) state no licence of their own.
OFA_LICENSE = "MIT"


@dataclass(frozen=True)
class SupernetMeta:
    """What a released supernet is. Every count is recomputed by a test from the built supernet.

    Attributes:
        search_space: the `ofa_deploy.spaces` name of its design space (also its `create_supernet` name).
        network: OFA's static network class of its subnets (``MobileNetV3``, ``ProxylessNASNets``, ``ResNets``).
        num_params: every parameter of the whole supernet (the largest subnet's plus OFA's kernel-transform
            matrices), as ``sum(p.numel() for p in net.parameters())`` and OFA's ``count_parameters`` give.
        macs_max: multiply-accumulates of the largest subnet at the largest resolution (convolutions and linear
            layers only, like OFA's ``count_net_flops``; batch 1).
        resolutions: the input sizes of the design space, smallest first.
        top1: ImageNet top-1 (%) of the weights, or None: OFA publishes no single figure for a supernet.
        license: licence under which the weights are published (see `OFA_LICENSE`), None if unknown.
        preprocessing: how the weights expect their input (timm's ``pretrained_cfg``): OFA evaluates every
            supernet on ImageNet resized to 1/0.875 of the side, center-cropped, bilinear, ImageNet mean/std; its
            resolution is OFA's default evaluation side (a subnet picks its own: `Preprocessing.at`).
    """

    search_space: str
    network: str
    num_params: int
    macs_max: int
    resolutions: tuple[int, ...]
    top1: float | None = None
    license: str | None = None
    preprocessing: Preprocessing = OFA_IMAGENET

    @property
    def max_resolution(self) -> int:
        return max(self.resolutions)


@dataclass(frozen=True)
class WeightsSource:
    """One released checkpoint: its URL, the cache file name, its sha256 and what it is.

    `sha256` is None when no hash is known: OFA publishes none and the han-cai/files snapshot we read holds no
    weight blobs to hash, so nothing is pinned (pass ``sha256=`` to `fetch_supernet_weights` to check one).
    """

    url: str
    filename: str
    sha256: str | None = None
    meta: SupernetMeta | None = None


def supernet_weights() -> dict[str, WeightsSource]:
    """The released checkpoint of every registered name that has one (`ModelName.weights`), by name."""
    return {entry.name: entry.weights for family in FAMILIES.families() for entry in family.names
            if entry.weights is not None}


def preprocessing_of(name: str | None) -> Preprocessing:
    """How the released weights of registered name `name` expect their input; OFA's ImageNet evaluation for a name
    without released weights (or None)."""
    source = supernet_weights().get(name) if name is not None else None
    return source.meta.preprocessing if source is not None and source.meta is not None else OFA_IMAGENET


def cache_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """The weights cache: `override`, else ``$OFA_DEPLOY_CACHE``, else ``~/.cache/ofa-deploy``."""
    from ofa_deploy.paths import cache_root

    return Path(override) if override is not None else cache_root()


def download(url: str, dest: str | os.PathLike[str], *, sha256: str | None = None, timeout: float = 60.0,
             cache_root: str | os.PathLike[str] | None = None) -> Path:
    """Fetch `url` to `dest` unless it is already there (and matches `sha256`, if given).

    The body goes to a temporary file next to `dest`, is hash-checked, then atomically renamed.
    Raises `CheckpointError` when offline / the URL fails, or on a hash mismatch; the offline message names
    `dest` relative to `cache_root` (default: `dest`'s parent) as the path to create under ``$OFA_DEPLOY_CACHE``.
    """
    dest = Path(dest)
    relative = dest.relative_to(cache_root) if cache_root is not None else Path(dest.parent.name, dest.name)
    if dest.is_file():
        if sha256 is None or file_sha256(dest) == sha256.lower():
            return dest
        log.warning("cached %s does not match sha256 %s; downloading again", dest, sha256)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=dest.name + ".", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        log.info("downloading %s -> %s", url, dest)
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310
                for chunk in iter(lambda: resp.read(1 << 20), b""):
                    out.write(chunk)
                    digest.update(chunk)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise CheckpointError(
                f"could not download {url}: {exc}. If this machine is offline, download the file elsewhere and "
                f"put it at {dest} (or set OFA_DEPLOY_CACHE to a directory holding {relative.as_posix()})."
            ) from exc
        if sha256 is not None and digest.hexdigest() != sha256.lower():
            raise CheckpointError(f"sha256 of {url} is {digest.hexdigest()}, expected {sha256.lower()}; "
                                  "the file was not kept. Check the URL or the expected hash.")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def fetch_supernet_weights(name: str, *, cache_dir_override: str | os.PathLike[str] | None = None,
                           sha256: str | None = None) -> Path:
    """Local path of the released checkpoint of supernet `name`, downloading it once."""
    released = supernet_weights()
    if name not in released:
        raise unknown_name("supernet", name, released)
    source = released[name]
    root = cache_dir(cache_dir_override)
    return download(source.url, root / "supernets" / source.filename, sha256=sha256 or source.sha256, cache_root=root)


def released_name(text: str) -> str | None:
    """The registry name for `text` if it names a released supernet (``ofa_mbv3_w12``) or its file
    (``ofa_mbv3_d234_e346_k357_w1.2``), else None."""
    released = supernet_weights()
    if text in released:
        return text
    for name, source in released.items():
        if text == source.filename:
            return name
    return None


def resolve_weights(text: str | os.PathLike[str], *, supernet: str | None = None) -> Path:
    """A checkpoint path: `text` itself if it is a file, else the released weights it names, fetched once into
    the cache. A released file that cannot be fetched raises `CheckpointError` naming the URL, the cache path and
    how to place the file by hand."""
    path = Path(text)
    if path.is_file():
        return path
    name = released_name(str(text))
    if name is None:
        known = ", ".join(f"{n} ({s.filename})" for n, s in supernet_weights().items())
        raise CheckpointError(f"weights {str(text)!r}: no such file, and not a released OFA supernet; pass a checkpoint "
                              f"path or one of {known}")
    if supernet is not None and name != supernet:
        raise CheckpointError(f"weights {str(text)!r} are the released weights of {name}, not of supernet {supernet}; "
                              f"pass --supernet {name} or the weights of {supernet}")
    return fetch_supernet_weights(name)

