"""Latency tables as data (torch-free, no `profiling`): `tables.latency` (the table, its statistics,
provenance and calibration) and `tables.anchor` (`AnchorInfo`); OFA's YAML tables: `compat.ofa_lut`."""
