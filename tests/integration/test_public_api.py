"""The common path through the curated top level: one `ofa_deploy` import (issue 13 asks for at most 3)."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import torch

import ofa_deploy as od

TINY = {"base_widths": (8, 8, 8, 16, 16, 16, 24, 64, 64), "depths": (1, 2), "kernel_sizes": (3, 5),
        "expand_ratios": (2.0, 3.0), "resolutions": (16,), "n_classes": 10}


#: every name the common path below takes from `ofa_deploy`
COMMON_PATH = ("create_supernet", "export", "load_report", "ExportReport", "HardwareProfile", "build_lut",
               "check_table_host", "LatencyPredictor", "count_subnet", "AccuracyPredictor", "default_encoder",
               "GeneDomain", "latency_objective", "accuracy_objective", "evolution_search", "pareto_search", "Budget",
               "deploy", "DeployRequest")


def in_fresh_python(code: str, *args: str) -> dict:
    """Run `code` in a new interpreter (nothing of ofa_deploy imported yet); it prints one JSON object."""
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


def test_the_common_path_needs_only_the_top_level_import():
    """A fresh interpreter reaches every name of the common path through `import ofa_deploy` alone."""
    code = ("import json, sys\nimport ofa_deploy as od\n"
            "names = sys.argv[1:]\n"
            "print(json.dumps({'unlisted': [n for n in names if n not in od.__all__],\n"
            "                  'modules': {n: getattr(od, n).__module__ for n in names}}))")
    found = in_fresh_python(code, *COMMON_PATH)
    assert found["unlisted"] == []
    assert all(module.startswith("ofa_deploy.") for module in found["modules"].values()), found["modules"]


def test_common_path_supernet_weights_export_profile_predict_search_deploy(tmp_path):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = od.create_supernet("ofa_mbv3_w10", **TINY)
    ckpt = tmp_path / "supernet.pth"
    torch.save(net.state_dict(), ckpt)
    loaded = od.create_supernet("ofa_mbv3_w10", weights=ckpt, **TINY)  # weights: a path (or "released")
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), loaded.state_dict().values()))

    cfg = loaded.space.sample(rng=0)
    report = od.export(loaded.extract(cfg).eval(), tmp_path / "subnet", format="onnx",
                       input_shape=(1, 3, cfg.resolution, cfg.resolution))
    assert isinstance(od.load_report(tmp_path / "subnet"), od.ExportReport) and report.path("model").is_file()

    profile = od.HardwareProfile.load("ort-cpu-1t")
    table = od.build_lut(loaded.space, None, profile, tmp_path / "lut.json", progress=False,
                         calibration_subnets=6).table
    assert od.check_table_host(table, profile).ok
    latency = od.LatencyPredictor(loaded.space, table)
    assert latency.predict([cfg])[0] > 0 and od.count_subnet(loaded.space, cfg).macs > 0

    predictor = od.AccuracyPredictor(od.default_encoder(loaded.space))  # untrained: the path does not care
    domain = od.GeneDomain.for_space(loaded.space)
    lat = od.latency_objective(latency, target=profile.name)
    budget = float(np.median(latency.predict_genes(loaded.space.sample_genes(64, 0))))
    found = od.evolution_search(domain=domain, objective=od.accuracy_objective(predictor),
                                budgets=[od.Budget(lat, budget)], seed=0)
    assert lat.predict_genes(found.best_genes[None])[0] <= budget
    front = od.pareto_search(domain=domain, objectives=[od.accuracy_objective(predictor), lat], seed=0)
    assert len(front) >= 1

    result = od.deploy(od.DeployRequest(out_dir=tmp_path / "run", lut=tmp_path / "lut.json", generations=10,
                                        population=20, pareto_generations=0, n_checks=0, verify_budget=False),
                       supernet=loaded, predictor=predictor)
    assert (result.out_dir / "model" / "model.onnx").is_file() and result.measured["latency_ms"] > 0


def test_export_stays_callable_once_its_package_is_imported(tmp_path):
    """Importing the `ofa_deploy.export` package first binds the package to `od.export`: it must still export."""
    code = ("import json, sys\nimport ofa_deploy as od\n"
            "od.ExportReport  # imports the ofa_deploy.export package before od.export is looked up\n"
            "bound_to_package = od.export is sys.modules['ofa_deploy.export']\n"
            "try:\n    od.export(None, sys.argv[1], format='no-such-format')\n    error = None\n"
            "except Exception as exc:\n    error = [type(exc).__name__, str(exc)]\n"
            "print(json.dumps({'bound_to_package': bound_to_package, 'error': error}))")
    found = in_fresh_python(code, str(tmp_path / "out"))
    assert found["bound_to_package"] is True  # the case this test is about
    # the call reached the export function: its own error for the format, not "module object is not callable"
    assert found["error"][0] == "UnknownNameError" and "no-such-format" in found["error"][1], found
    assert not (tmp_path / "out").exists()
