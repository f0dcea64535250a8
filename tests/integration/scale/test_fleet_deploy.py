"""Fleet deploy: a verified subnet per device, one bundle; an unreachable device; a kill and --resume; bad fleet
files refused before any work. A tiny trained demo supernet (outputs vary with the input), one latency table
built here, real ONNX Runtime sessions, a real sshd on 127.0.0.1 for the ssh device."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from ofa_deploy.cli.main import cli

REPO = Path(__file__).resolve().parents[3]
TINY = {"base_widths": (8, 8, 8, 16, 16, 16, 24, 64, 64), "kernel_sizes": (3, 5), "expand_ratios": (2.0, 3.0),
        "resolutions": (16,), "dataset_resolutions": (16,), "phase_steps": (40, 8, 8, 8), "calibration_size": 64}
SEARCH = {"generations": 8, "population": 16, "pareto_generations": 4, "n_checks": 0, "max_tries": 2}
TIMING = {"rounds": 2, "repeats": 5}


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    """Weights (.pt + sidecar), a predictor dir and a latency table of this host for a tiny trained supernet,
    and the table's feasible latency range."""
    import dataclasses

    import torch

    from ofa_deploy.demo import QUICK_RECIPE, load_demo_data, save_demo_supernet, train_demo_supernet
    from ofa_deploy.pipeline.search import prepare_search, searched_space
    from ofa_deploy.pipeline.tables import TableSource, resolve_table
    from ofa_deploy.predictors.accuracy import AccuracyPredictor
    from ofa_deploy.predictors.encoding import default_encoder
    from ofa_deploy.profiling.hardware import HardwareProfile
    from ofa_deploy.search import feasible_range

    root = tmp_path_factory.mktemp("fleet-assets")
    recipe = dataclasses.replace(QUICK_RECIPE, **TINY)
    data = load_demo_data(recipe)
    net, info = train_demo_supernet(recipe, data)
    model = net.extract(net.space.max_config()).eval()
    with torch.no_grad():
        a, b = model(data.holdout.at(16)[:2]).numpy()
    assert abs(a - b).max() > 1e-3, "the test supernet's outputs must depend on its input"
    weights = root / "supernet.pt"
    save_demo_supernet(net, weights, recipe, info)
    torch.manual_seed(0)
    predictor = AccuracyPredictor(default_encoder(net.space))
    predictor.save(root / "predictor")
    profile = HardwareProfile.load("ort-cpu-1t")
    space = searched_space(predictor, net.space, None)
    table = resolve_table(TableSource(build_at=root / "lut.json", timing_rounds=2, timing_repeats=5), space,
                          profile, out_dir=root).table
    setup = prepare_search(predictor, space, table, profile.name)
    lat = feasible_range(setup.domain, setup.lat)
    return {"root": root, "weights": weights, "predictor": root / "predictor", "lut": root / "lut.json",
            "low": lat.low, "high": lat.high}


def fleet_file(path: Path, assets: dict, devices: list[dict], **top) -> Path:
    body = {"supernet": "ofa_mbv3_w10", "weights": str(assets["weights"]), "predictor": str(assets["predictor"]),
            "data": "digits", "search": SEARCH, "timing": TIMING, "devices": devices, **top}
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


def local(name: str, budget: float, **extra) -> dict:
    return {"name": name, "profile": "ort-cpu-1t", "runner": "local", "budget": {"latency_ms": budget},
            "format": "onnx", "table": "LUT", **extra}


def with_table(devices: list[dict], assets: dict) -> list[dict]:
    return [{**d, "table": str(assets["lut"]) if d.get("table") == "LUT" else d["table"]} for d in devices]


def run_cli(args: list[str]):
    return CliRunner().invoke(cli, args)


def test_fleet_two_local_devices_and_one_over_ssh(assets, sshd, tmp_path):
    """Three verified picks (two local, one timed on the device over a real sshd), one bundle; the devices got
    the same subnet, so it was extracted, recalibrated, exported and evaluated once."""
    generous = round(3 * assets["high"], 5)  # every subnet fits: the same (most accurate) pick for all three
    ssh = {"type": "ssh", **{k: v for k, v in sshd["settings"].items() if k != "workdir"},
           "workdir": str(tmp_path / "device")}
    devices = with_table([local("host-a", generous), local("host-b", generous, format="ort"),
                          {**local("board", generous), "runner": ssh}], assets)
    out = tmp_path / "bundle"
    res = run_cli(["deploy", "--fleet", str(fleet_file(tmp_path / "fleet.yaml", assets, devices)), "--out", str(out),
                   "--format", "json"])
    assert res.exit_code == 0, res.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert json.loads(res.stdout)["devices"] == manifest["devices"]
    rows = {d["name"]: d for d in manifest["devices"]}
    assert list(rows) == ["host-a", "host-b", "board"] and manifest["verified"] is True
    for name, row in rows.items():
        assert row["status"] == "verified" and row["verified"] is True and row["reason"] is None
        m, p = row["measured"], row["predicted"]
        assert m["interval_ms"][0] <= m["latency_ms"] <= m["interval_ms"][1] <= row["budget"]["latency_ms"]
        assert p["latency_ms"] <= row["budget"]["latency_ms"] and 0 <= m["top1"] <= 100 and 0 <= p["top1"] <= 100
        assert row["macs_m"] > 0 and row["params_m"] > 0 and row["subnet"].startswith("r16-")
        artifact = out / row["artifact"]["path"]
        import hashlib

        assert artifact.is_file() and hashlib.sha256(artifact.read_bytes()).hexdigest() == row["artifact"]["sha256"]
        assert (out / row["dir"] / "model" / "export_report.json").is_file()
        assert row["table"]["path"] == str(assets["lut"]) and row["table"]["adapted_from"] is None
        assert row["table"]["provenance"]["host"]["cpu_model"]
    assert rows["host-b"]["artifact"]["path"] == "host-b/model_ort/model.ort"
    assert (out / "host-b" / "model_ort" / "export_report.json").is_file()
    assert rows["board"]["runner"]["runner"] == "ssh"
    timing = json.loads((out / "board" / "report.json").read_text())["timing"]
    assert timing["device"] == "board" and timing["runs"]  # measured through the ssh runner
    assert len({r["subnet"] for r in rows.values()}) == 1
    assert manifest["shared"]["exported"] == 1 and manifest["shared"]["reused"] == 2
    summary = (out / "summary.md").read_text()
    assert "All 3 devices verified" in summary
    assert sum(1 for line in summary.splitlines() if line.startswith("| host-") or line.startswith("| board")) == 3
    assert (out / "fleet.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_unreachable_device_is_reported_and_the_others_ship(assets, tmp_path):
    import socket

    with socket.socket() as s:  # a loopback port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    generous = round(3 * assets["high"], 5)
    devices = with_table([local("host-a", generous),
                          {**local("gone", generous), "runner": {"type": "ssh", "host": "127.0.0.1", "port": port,
                                                                  "connect_timeout": 3,
                                                                  "ssh_options": ["-o", "StrictHostKeyChecking=no"]}},
                          local("host-b", generous)], assets)
    out = tmp_path / "bundle"
    res = run_cli(["deploy", "--fleet", str(fleet_file(tmp_path / "fleet.yaml", assets, devices)), "--out", str(out)])
    assert res.exit_code == 4, res.output
    assert "gone" in res.stderr and "not verified" in res.stderr and "Traceback" not in res.output
    rows = {d["name"]: d for d in json.loads((out / "manifest.json").read_text())["devices"]}
    assert rows["gone"]["status"] == "failed" and rows["gone"]["verified"] is False
    assert "connect" in rows["gone"]["reason"]
    assert rows["host-a"]["verified"] and rows["host-b"]["verified"]
    assert (out / "host-a" / "model" / "model.onnx").is_file() and (out / "host-b" / "model" / "model.onnx").is_file()
    summary = (out / "summary.md").read_text()
    assert "not verified: gone" in summary and "FAILED" in next(line for line in summary.splitlines()
                                                               if line.startswith("| gone"))


def test_kill_during_the_fleet_then_resume(assets, tmp_path):
    """SIGKILL after the first device finished; --resume reuses it (not measured again) and finishes the rest."""
    high = assets["high"]
    devices = with_table([local("first", round(3 * high, 5)), local("second", round(2.5 * high, 5)),
                          local("third", round(2 * high, 5))], assets)
    path = fleet_file(tmp_path / "fleet.yaml", assets, devices)
    out = tmp_path / "bundle"
    cmd = [sys.executable, "-m", "ofa_deploy", "deploy", "--fleet", str(path), "--out", str(out)]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = out / "first" / "result.json"
    deadline = time.time() + 600
    while not first.is_file() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert first.is_file(), proc.communicate()[1][-2000:]
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "manifest.json").exists() and not (out / "third" / "result.json").exists()
    before = first.read_bytes()
    measured_before = (out / "first" / "measurements.json").read_bytes()
    again = subprocess.run([*cmd, "--resume"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "[first] finished in an earlier run" in again.stderr
    assert "[first] timing" not in again.stderr and "[first] searching" not in again.stderr
    assert first.read_bytes() == before and (out / "first" / "measurements.json").read_bytes() == measured_before
    manifest = json.loads((out / "manifest.json").read_text())
    assert [d["name"] for d in manifest["devices"]] == ["first", "second", "third"]
    assert manifest["resumed"] == ["first"] or "first" in manifest["resumed"]
    assert all(d["verified"] for d in manifest["devices"])
    assert manifest["devices"][0] == json.loads(before)


@pytest.mark.parametrize("case", ["unknown_profile", "budget_below_range", "duplicate_names", "format_backend",
                                  "unknown_key"])
def test_bad_fleet_files_fail_before_any_work(assets, tmp_path, case):
    generous = round(3 * assets["high"], 5)
    devices = with_table([local("host-a", generous), local("host-b", generous)], assets)
    expect: tuple[str, ...]
    if case == "unknown_profile":
        devices[1]["profile"] = "ort-cpu-1tt"
        expect = ("host-b", "ort-cpu-1tt", "Did you mean", "ort-cpu-1t")
    elif case == "budget_below_range":
        devices[1]["budget"] = {"latency_ms": round(assets["low"] / 10, 6)}
        expect = ("host-b", "below the feasible range", "raise latency_ms to at least")
    elif case == "duplicate_names":
        devices[1]["name"] = "host-a"
        expect = ("'host-a'", "unique", "Rename")
    elif case == "format_backend":
        devices[1]["format"] = "tvm"
        expect = ("host-b", "'tvm' cannot run on profile ort-cpu-1t", "onnx, ort, int8")
    else:
        devices[1]["budjet"] = devices[1].pop("budget")
        expect = ("host-b", "budjet", "Did you mean 'budget'")
    out = tmp_path / "bundle"
    path = fleet_file(tmp_path / "fleet.yaml", assets, devices)
    res = run_cli(["deploy", "--fleet", str(path), "--out", str(out)])
    assert res.exit_code == 1, res.output
    assert "Traceback" not in res.output and res.exception is None or isinstance(res.exception, SystemExit)
    for text in expect:
        assert text in res.stderr, (text, res.stderr)
    assert not out.exists()  # nothing was started


def test_bad_fleet_file_in_a_subprocess_has_no_traceback(assets, tmp_path):
    devices = with_table([local("host-a", 1.0, format="tvm")], assets)
    proc = subprocess.run([sys.executable, "-m", "ofa_deploy", "deploy", "--fleet",
                           str(fleet_file(tmp_path / "fleet.yaml", assets, devices)), "--out", str(tmp_path / "o")],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr and "host-a" in proc.stderr


def test_parse_fleet_resolves_runners_and_tables(tmp_path):
    from ofa_deploy.errors import ConfigError, UnknownNameError
    from ofa_deploy.pipeline.fleet_spec import parse_fleet

    spec = parse_fleet({"supernet": "ofa_mbv3_w10", "devices": [
        {"name": "pi", "profile": "ort-cpu-1t", "budget": {"latency_ms": 5, "params_m": 2},
         "runner": {"type": "ssh", "host": "10.0.0.5", "user": "pi"}, "table": "build"},
        {"name": "inline", "profile": {"name": "my-ort", "backend": "onnxruntime", "intra_op_threads": 1},
         "budget": {"latency_ms": 3}, "table": {"build": "t.json"}}]}, base=tmp_path)
    pi, inline = spec.devices
    assert pi.runner.runner == "ssh" and pi.runner.settings["host"] == "10.0.0.5" and pi.remote
    assert pi.params_m == 2 and pi.table.kind == "build" and pi.table.path is None
    assert inline.profile.name == "my-ort" and inline.table.path == tmp_path / "t.json" and not inline.remote
    with pytest.raises(ConfigError, match="ssh runner needs host"):
        parse_fleet({"devices": [{"name": "x", "profile": "ort-cpu-1t", "budget": {"latency_ms": 1},
                                  "runner": {"type": "ssh"}}]})
    with pytest.raises(UnknownNameError, match="Did you mean 'ssh'"):
        parse_fleet({"devices": [{"name": "x", "profile": "ort-cpu-1t", "budget": {"latency_ms": 1},
                                  "runner": {"type": "shh", "host": "h"}}]})
    with pytest.raises(ConfigError, match="device 'x'.*eager PyTorch"):
        parse_fleet({"devices": [{"name": "x", "profile": "torch-cpu", "budget": {"latency_ms": 1}}]})
    with pytest.raises(ConfigError, match="latency_ms"):
        parse_fleet({"devices": [{"name": "x", "profile": "ort-cpu-1t", "budget": {"macs_m": 1}}]})


def test_fleet_on_ray_runs_each_device_where_its_resource_is(assets, tmp_path, _ray_shutdown):
    """--executor ray: one Ray actor per device, placed by the custom resource device:<name>."""
    import ray

    from ofa_deploy.demo import load_demo_supernet
    from ofa_deploy.pipeline import deploy_fleet, parse_fleet
    from ofa_deploy.predictors.accuracy import AccuracyPredictor
    from ofa_deploy.scale.ray_executor import worker_runtime_env

    generous = round(3 * assets["high"], 5)
    spec = parse_fleet({"search": SEARCH, "timing": TIMING,
                        "devices": with_table([local("ray-a", generous), local("ray-b", generous)], assets)})
    ray.shutdown()
    ray.init(num_cpus=2, resources={"device:ray-a": 1, "device:ray-b": 1}, include_dashboard=False,
             _node_ip_address="127.0.0.1", runtime_env=worker_runtime_env(), log_to_driver=False)
    try:
        result = deploy_fleet(spec, out_dir=tmp_path / "bundle", supernet=load_demo_supernet(assets["weights"]),
                              predictor=AccuracyPredictor.load(assets["predictor"]), executor="ray")
    finally:
        ray.shutdown()
    assert result.verified and [d["name"] for d in result.devices] == ["ray-a", "ray-b"]
    workers = {d["worker"]["pid"] for d in result.devices}
    assert os.getpid() not in workers and len(workers) == 2  # each device in its own actor, not in the driver
    assert result.manifest["executor"] == "ray"


def test_adapted_table_for_a_device(assets, tmp_path):
    """table: {adapt: SOURCE}: the ORT 1-thread table adapted to ORT on every core before the search; the manifest
    names what it was adapted from. An adaptation whose held-out check fails is never used: the device's row
    then carries the AdaptationError instead."""
    generous = round(3 * assets["high"], 5)
    devices = [{**local("all-cores", generous), "profile": "ort-cpu-all", "table": {"adapt": str(assets["lut"])}}]
    out = tmp_path / "bundle"
    res = run_cli(["deploy", "--fleet", str(fleet_file(tmp_path / "fleet.yaml", assets, devices)), "--out", str(out)])
    row = json.loads((out / "manifest.json").read_text())["devices"][0]
    if row["status"] == "failed":
        assert res.exit_code == 4 and "held-out" in row["reason"], row["reason"]
        assert not (out / "all-cores" / "lut-adapted.json").exists()
        return
    assert res.exit_code == 0, res.output
    table = row["table"]
    assert table["adapted_from"]["path"] == str(assets["lut"]) and table["adaptation"]["validation"]["passed"]
    assert table["path"] == str(out / "all-cores" / "lut-adapted.json") and table["host"]["ok"]
    assert table["provenance"]["adapted_from"]["path"] == str(assets["lut"])
