"""Where ofa-deploy reads its packaged data and writes its own files.

Packaged, read-only (installed with the wheel, found through `importlib.resources`): the hardware profiles
and their measured tables (``ofa_deploy/hardware_profiles/``) and the on-device script
(``ofa_deploy/ondevice.py``). Written by ofa-deploy: the user's cache, ``$OFA_DEPLOY_CACHE`` or
``~/.cache/ofa-deploy`` (weights, exported models, tables built here under ``luts/``), never the package tree.
"""
from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

CACHE_ENV = "OFA_DEPLOY_CACHE"


def cache_root() -> Path:
    """``$OFA_DEPLOY_CACHE``, else ``~/.cache/ofa-deploy``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "ofa-deploy"


def package_file(*parts: str) -> Path:
    """A file or directory shipped inside the `ofa_deploy` package (a real path: wheels install unzipped)."""
    return Path(str(resources.files("ofa_deploy").joinpath(*parts)))


def packaged_profile_dir() -> Path:
    """The packaged hardware profiles (``<name>.yaml``) and their tables (``luts/<profile>/<space>.json``)."""
    return package_file("hardware_profiles")


def ondevice_script() -> Path:
    """The on-device profiling script (onnxruntime + numpy only); also ``python -m ofa_deploy.ondevice``."""
    return package_file("ondevice.py")


__all__ = ["CACHE_ENV", "cache_root", "ondevice_script", "package_file", "packaged_profile_dir"]
