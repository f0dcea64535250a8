"""The deploy pipeline as named steps, composed into `deploy`.

Steps (one module each, typed inputs and outputs): `tables` (resolve the latency table: load, reuse, build,
adapt; host check), `search` (evolution under the budgets, Pareto front), `exporting` (extract, BN
recalibration, ONNX export and its top-1, conversion to the device's format), `verify` (anchor-paired
measurement, retries under a tightened budget), `reporting` (report.json, summary.md, pareto.png, model/).
"""
from ofa_deploy.pipeline.deploy import deploy
from ofa_deploy.pipeline.request import DeployRequest, DeployResult

__all__ = ["DeployRequest", "DeployResult", "deploy"]
