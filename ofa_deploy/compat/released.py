"""Released OFA supernet weights: where they live and a cached download (no torch needed).

`ofa_deploy.compat.weights` re-exports these and adds `pretrained_supernet(name)`.

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

log = logging.getLogger(__name__)

_OFA_NETS = "https://raw.githubusercontent.com/han-cai/files/master/ofa/ofa_nets/"


@dataclass(frozen=True)
class WeightsSource:
    """One released checkpoint: its URL, the cache file name, and an optional sha256."""

    url: str
    filename: str
    sha256: str | None = None


# The han-cai/files snapshot holds no weight blobs, so no hashes are pinned; pass sha256= to check one.
SUPERNET_WEIGHTS: dict[str, WeightsSource] = {
    "ofa_mbv3_w10": WeightsSource(_OFA_NETS + "ofa_mbv3_d234_e346_k357_w1.0", "ofa_mbv3_d234_e346_k357_w1.0"),
    "ofa_mbv3_w12": WeightsSource(_OFA_NETS + "ofa_mbv3_d234_e346_k357_w1.2", "ofa_mbv3_d234_e346_k357_w1.2"),
    "ofa_proxyless_w13": WeightsSource(_OFA_NETS + "ofa_proxyless_d234_e346_k357_w1.3",
                                       "ofa_proxyless_d234_e346_k357_w1.3"),
    "ofa_resnet50": WeightsSource("https://huggingface.co/han-cai/ofa/resolve/main/ofa_supernet_resnet50",
                                  "ofa_supernet_resnet50"),
}


def cache_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """The weights cache: `override`, else ``$OFA_DEPLOY_CACHE``, else ``~/.cache/ofa-deploy``."""
    from ofa_deploy.paths import cache_root

    return Path(override) if override is not None else cache_root()


def sha256_of(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download(url: str, dest: str | os.PathLike[str], *, sha256: str | None = None, timeout: float = 60.0) -> Path:
    """Fetch `url` to `dest` unless it is already there (and matches `sha256`, if given).

    The body goes to a temporary file next to `dest`, is hash-checked, then atomically renamed.
    Raises `CheckpointError` when offline / the URL fails, or on a hash mismatch.
    """
    dest = Path(dest)
    if dest.is_file():
        if sha256 is None or sha256_of(dest) == sha256.lower():
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
                f"put it at {dest} (or set OFA_DEPLOY_CACHE to a directory holding {dest.parent.name}/{dest.name})."
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
    if name not in SUPERNET_WEIGHTS:
        raise unknown_name("supernet", name, SUPERNET_WEIGHTS)
    source = SUPERNET_WEIGHTS[name]
    dest = cache_dir(cache_dir_override) / "supernets" / source.filename
    return download(source.url, dest, sha256=sha256 or source.sha256)


def released_name(text: str) -> str | None:
    """The registry name for `text` if it names a released supernet (``ofa_mbv3_w12``) or its file
    (``ofa_mbv3_d234_e346_k357_w1.2``), else None."""
    if text in SUPERNET_WEIGHTS:
        return text
    for name, source in SUPERNET_WEIGHTS.items():
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
        known = ", ".join(f"{n} ({s.filename})" for n, s in SUPERNET_WEIGHTS.items())
        raise CheckpointError(f"weights {str(text)!r}: no such file, and not a released OFA supernet; pass a checkpoint "
                              f"path or one of {known}")
    if supernet is not None and name != supernet:
        raise CheckpointError(f"weights {str(text)!r} are the released weights of {name}, not of supernet {supernet}; "
                              f"pass --supernet {name} or the weights of {supernet}")
    return fetch_supernet_weights(name)

