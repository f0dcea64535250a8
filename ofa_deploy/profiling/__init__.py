"""Profiling: hardware profiles, latency lookup tables (LUTs) and the per-layer profiler.

Import the submodules directly (`ofa_deploy.profiling.lut`, `ofa_deploy.profiling.hardware`);
this package imports nothing heavy on its own.
"""
