"""The deploy pipeline as named steps, composed into `deploy` (one target, `single.py`) and `deploy_fleet` (one subnet per
device of a fleet).

Steps (one module each, typed inputs and outputs): `tables` (resolve the latency table: load, reuse, build,
adapt; host check), `search` (evolution under the budgets, Pareto front), `exporting` (extract, BN
recalibration, ONNX export and its top-1, conversion to the device's format), `verify` (anchor-paired
measurement, retries under a tightened budget), `reporting` (report.json, summary.md, pareto.png, model/).
Fleets add `fleet_spec` (the fleet file), `subnets` (work shared across devices) and `bundle` (manifest,
summary, plot).
"""
from ofa_deploy.pipeline.bundle import FleetResult
from ofa_deploy.pipeline.single import deploy
from ofa_deploy.pipeline.fleet import deploy_fleet
from ofa_deploy.pipeline.fleet_spec import FleetSpec, load_fleet, parse_fleet
from ofa_deploy.pipeline.request import DeployRequest, DeployResult

__all__ = ["DeployRequest", "DeployResult", "FleetResult", "FleetSpec", "deploy", "deploy_fleet", "load_fleet",
           "parse_fleet"]
