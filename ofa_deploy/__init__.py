"""ofa-deploy: take Once-for-All elastic supernets to real hardware.

The common path is importable from the top level (loaded on first use, so ``import ofa_deploy`` stays light)::

    import ofa_deploy as od

    net = od.create_supernet("ofa_mbv3_w12", weights="released")        # or a checkpoint path, or None
    od.get_weights("ofa_mbv3_w12").meta.macs_max                        # what od.list_weights() names are
    small = od.create_specialized("pixel1_lat@58ms_top1@76.9_finetune@75", weights="released")
    cfg = net.space.sample(rng=0)
    report = od.export_model(net.extract(cfg), "out/subnet", format="onnx")
    table = od.LatencyTable.load(od.find_table("ort-cpu-1t", "ofa_mbv3_w12"))
    adapted = od.adapt_table("other_host/ofa_mbv3_w12.json", profile="ort-cpu-all")   # checked on held-out subnets
    result = od.deploy(od.DeployRequest(out_dir="run"), supernet=net, predictor=od.load_ofa_predictor("p.pth"))
    fleet = od.deploy_fleet(od.load_fleet("fleet.yaml"), out_dir="bundle", supernet=net, predictor=predictor)
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: public name -> module that defines it
_EXPORTS: dict[str, str] = {
    # supernets and spaces
    "create_supernet": "ofa_deploy.api",
    "create_specialized": "ofa_deploy.api",
    "list_weights": "ofa_deploy.compat.zoo",
    "get_weights": "ofa_deploy.compat.zoo",
    "list_supernets": "ofa_deploy.supernets",
    "get_space": "ofa_deploy.spaces",
    "SubnetConfig": "ofa_deploy.spaces",
    "load_supernet_weights": "ofa_deploy.compat.checkpoint",
    "recalibrate_bn": "ofa_deploy.nn.bn",
    # export
    "export_model": "ofa_deploy.export.api",
    "ExportOptions": "ofa_deploy.export.options",
    "ExportReport": "ofa_deploy.export.artifacts",
    "load_report": "ofa_deploy.export.artifacts",
    # profiling and latency
    "HardwareProfile": "ofa_deploy.profiling.hardware",
    "build_lut": "ofa_deploy.profiling.builder",
    "validate_lut": "ofa_deploy.profiling.validate",
    "measure_models": "ofa_deploy.profiling.timing.measure",
    "LatencyTable": "ofa_deploy.tables.latency",
    "find_table": "ofa_deploy.profiling.lut",
    "check_table_host": "ofa_deploy.profiling.hosts.fingerprint",
    "adapt_table": "ofa_deploy.adapt",
    "AdaptResult": "ofa_deploy.adapt",
    "AdaptationError": "ofa_deploy.errors",
    # predictors
    "LatencyPredictor": "ofa_deploy.predictors.latency",
    "MacsPredictor": "ofa_deploy.predictors.latency",
    "count_subnet": "ofa_deploy.predictors.macs",
    "AccuracyPredictor": "ofa_deploy.predictors.accuracy",
    "default_encoder": "ofa_deploy.predictors.encoding",
    "train_predictor": "ofa_deploy.predictors.training",
    "load_ofa_predictor": "ofa_deploy.predictors.accuracy",
    # search and deploy
    "GeneDomain": "ofa_deploy.search",
    "Budget": "ofa_deploy.search",
    "accuracy_objective": "ofa_deploy.search",
    "latency_objective": "ofa_deploy.search",
    "macs_objective": "ofa_deploy.search",
    "evolution_search": "ofa_deploy.search",
    "pareto_search": "ofa_deploy.search",
    "DeployRequest": "ofa_deploy.pipeline",
    "deploy": "ofa_deploy.pipeline",
    "deploy_fleet": "ofa_deploy.pipeline",
    "load_fleet": "ofa_deploy.pipeline",
}

__all__ = sorted(["__version__", *_EXPORTS])


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ofa_deploy' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    """The public API only (not this module's own imports), sorted."""
    return list(__all__)


# the built-in model families register themselves on import (torch-free), so their names are known everywhere
import ofa_deploy.families  # noqa: E402,F401
