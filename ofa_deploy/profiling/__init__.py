"""Profiling: latency lookup tables (LUTs) built per hardware profile, with the per-layer plan and build methods.

Its subpackages hold what a build stands on: `profiling.hosts` (host fingerprints, device pools) and
`profiling.timing` (backends, timer, the anchor-paired protocol, timing model files). Import the submodules
directly (`ofa_deploy.profiling.builder`, `ofa_deploy.profiling.hardware`); this package imports nothing heavy
on its own.
"""
