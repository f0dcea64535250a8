"""The common path through the curated top level: one `ofa_deploy` import (issue 13 asks for at most 3)."""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

import ofa_deploy as od

TINY = {"base_widths": (8, 8, 8, 16, 16, 16, 24, 64, 64), "depths": (1, 2), "kernel_sizes": (3, 5),
        "expand_ratios": (2.0, 3.0), "resolutions": (16,), "n_classes": 10}


#: every name the common path below takes from `ofa_deploy`
COMMON_PATH = ("create_supernet", "export_model", "load_report", "ExportReport", "HardwareProfile", "build_lut",
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
    report = od.export_model(loaded.extract(cfg).eval(), tmp_path / "subnet", format="onnx",
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


def test_dir_is_the_public_api_sorted():
    names = dir(od)
    assert names == sorted(names) == sorted(od.__all__)
    assert not {"Any", "annotations", "importlib"} & set(names)
    assert all(hasattr(od, name) for name in names)
    assert od.ExportReport.__module__ == "ofa_deploy.export.artifacts"  # imports the ofa_deploy.export package
    assert callable(od.export_model) and "export_model" in names and "export" not in names


def test_no_function_shares_its_name_with_a_package_module():
    """`ofa_deploy.export` is the package and only the package: the entry point is `export_model`."""
    package_dir = Path(od.__file__).parent
    for init in package_dir.rglob("__init__.py"):
        package = ".".join(init.parent.relative_to(package_dir.parent).parts)
        children = {p.stem for p in init.parent.glob("*.py")} | {p.name for p in init.parent.iterdir()
                                                                  if (p / "__init__.py").is_file()}
        tree = ast.parse(init.read_text())
        defined = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        imported = {a.asname or a.name for n in tree.body if isinstance(n, ast.ImportFrom)
                    and n.module != package for a in n.names}  # importing its own submodules is no clash
        exported = set(getattr(od, "_EXPORTS", {})) if init.parent == package_dir else set()
        clash = (defined | imported | exported) & (children - {"__init__"})
        assert not clash, f"{package}: {sorted(clash)} name both a function and a module of the package"
