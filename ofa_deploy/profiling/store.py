"""The measurement store of LUT builds: `ofa_deploy.store.JsonlStore` (one store for every resumable job).

Kept as the old import path; the format, options and durability rules are described in `ofa_deploy.store`.
"""
from __future__ import annotations

from ofa_deploy.store import JsonlStore

__all__ = ["JsonlStore"]
