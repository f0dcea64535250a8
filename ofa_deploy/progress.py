"""Progress bars on stderr that show only where someone watches: on a terminal, unless switched off.

Off when stderr is not a terminal (logs and CI get no ``\\r`` frames), when ``OFA_DEPLOY_DISABLE_PROGRESS_BARS``
is set to a non-empty value other than ``0`` (the CLI's ``-q`` sets it), or when the caller passes
``disable=True``.
"""
from __future__ import annotations

import os
import sys
from typing import Any

DISABLE_ENV = "OFA_DEPLOY_DISABLE_PROGRESS_BARS"


def bars_disabled() -> bool:
    """True when ``$OFA_DEPLOY_DISABLE_PROGRESS_BARS`` switches bars off."""
    return os.environ.get(DISABLE_ENV, "") not in ("", "0")


def progress_bar(*, disable: bool = False, **kwargs: Any) -> Any:
    """A `tqdm` bar on stderr; shown only on a terminal (tqdm's ``disable=None``) and when not disabled."""
    from tqdm import tqdm

    off = disable or bars_disabled() or not _is_tty(sys.stderr)
    return tqdm(file=sys.stderr, disable=True if off else None, **kwargs)


def _is_tty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


__all__ = ["DISABLE_ENV", "bars_disabled", "progress_bar"]
