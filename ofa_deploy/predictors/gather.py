"""Gather tables for batched predictors: `Slot` and `SlotTables` (re-exported).

They depend on the space only, so they live in the torch-free `ofa_deploy.spaces.slots`, where
`compat.ofa_lut` can read them without importing `predictors`.
"""
from __future__ import annotations

from ofa_deploy.spaces.slots import Slot, SlotTables

__all__ = ["Slot", "SlotTables"]
