"""Latency tables as data (torch-free, no `profiling`): `tables.latency` (the table, its statistics,
provenance, calibration and OFA-YAML reader) and `tables.anchor` (`AnchorInfo`)."""
