"""Adapted latency tables: a table for a new device from another device's table, checked on held-out subnets.

`adapt_table` measures the anchor, a few designed subnets and random held-out subnets on the target, fits the
cheapest correction of the source table that cross-validation supports (`fit`), and writes the table only when
the held-out subnets meet the goal (`validation`). Modules: `classes` (layer classes), `design` (which subnets
to measure), `fit` (the ladder), `validation` (the goal), `target` (measuring on this machine or a device),
`source` (reading the source table), `driver` (the steps). Importing this package does not import torch.
"""
from ofa_deploy.adapt.driver import AdaptResult, adapt_table, refusal_hint
from ofa_deploy.adapt.validation import Goal
from ofa_deploy.errors import AdaptationError

__all__ = ["AdaptResult", "AdaptationError", "Goal", "adapt_table", "refusal_hint"]
