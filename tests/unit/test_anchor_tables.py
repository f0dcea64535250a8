"""Latency tables in anchor units, their calibration, and host fingerprints (foreign-table warning/refusal)."""
from __future__ import annotations

import json
import logging
import subprocess
import sys

import numpy as np
import pytest

from ofa_deploy.errors import ConfigError
from ofa_deploy.predictors.latency import LatencyPredictor, fit_linear_calibration
from ofa_deploy.profiling.timing.anchor import default_anchor_config, resolve_anchor_config
from ofa_deploy.profiling.hosts.fingerprint import backend_fingerprint, check_table_host, compare, warn_if_foreign
from ofa_deploy.hostinfo import read_host
from ofa_deploy.spaces import get_space
from ofa_deploy.tables.anchor import AnchorInfo
from ofa_deploy.tables.latency import Calibration, LatencyStats, LatencyTable, Provenance
from tests.hosts import another_core_count, another_cpu_model, foreign_fingerprint


@pytest.fixture(scope="module")
def space():
    return get_space("ofa_mbv3_w10")


def units_table(space, *, host=None, anchor_ms=2.0, calibration=None, profile="ort-cpu-1t"):
    """Every layer of the space at 160 px gets 0.01 anchor units per 1M MACs (+0.001)."""
    from ofa_deploy.spaces.costs import layer_macs
    from ofa_deploy.profiling.plan import make_plan

    anchor = AnchorInfo(config=default_anchor_config(space).to_string(), space=space.name, batch_size=1,
                        ms=anchor_ms, visits=10, swing=1.4)
    table = LatencyTable(provenance=Provenance(profile_name=profile, host=host or {}), anchor=anchor,
                         calibration=calibration)
    for item in make_plan(space, [160]).items:
        table[item.spec] = LatencyStats.from_samples([0.001 + 0.01 * layer_macs(item.spec) / 1e6] * 3)
    return table


def test_anchor_units_round_trip_and_convert_to_ms(space, tmp_path):
    cal = Calibration(scale=1.1, offset=0.2, per_layer=0.003, fit={"n": 7})
    table = units_table(space, calibration=cal)
    path = table.save(tmp_path / "t.json")
    data = json.loads(path.read_text())
    assert data["schema_version"] == 2 and data["unit"] == "anchor" and data["anchor"]["ms"] == 2.0
    again = LatencyTable.load(path)
    assert again == table and again.calibration.fit == {"n": 7}
    spec = next(iter(again))
    assert again.latency(spec) == pytest.approx(again.units(spec) * 2.0)

    cfg = space.sample(0, resolution=160)
    raw = sum(again.units(s) for s in space.walk_layers(cfg))
    n = len(space.walk_layers(cfg))
    expected_ms = (1.1 * raw + 0.2 + 0.003 * n) * 2.0
    pred = LatencyPredictor(space, again)
    assert pred.predict([cfg])[0] == pytest.approx(expected_ms)
    genes = space.to_genes(space.sample_batch(50, 1, resolution=160) + [cfg])
    assert pred.predict_genes(genes)[-1] == pytest.approx(expected_ms)
    batch = pred.predict(space.from_genes(genes))
    assert np.allclose(pred.predict_genes(genes), batch)
    assert LatencyPredictor(space, again, calibrated=False).predict([cfg])[0] == pytest.approx(raw * 2.0)


def test_old_tables_without_anchor_still_load_in_ms(space, tmp_path):
    table = units_table(space)
    data = table.to_dict()
    data.update(schema_version=1, unit="ms")
    del data["anchor"]
    data["provenance"].pop("host")
    path = tmp_path / "old.json"
    path.write_text(json.dumps(data))
    old = LatencyTable.load(path)
    assert old.unit == "ms" and old.anchor is None and old.ms_per_unit == 1.0
    spec = next(iter(old))
    assert old.latency(spec) == old.units(spec)


def test_inconsistent_unit_is_refused(space, tmp_path):
    data = units_table(space).to_dict()
    data["unit"] = "ms"
    with pytest.raises(ConfigError, match="unit"):
        LatencyTable.from_dict(data)
    data["unit"] = "anchor"
    data["anchor"]["ms"] = -1
    with pytest.raises(ConfigError, match="anchor.ms"):
        LatencyTable.from_dict(data)


def test_calibration_fit_recovers_a_known_model():
    rng = np.random.default_rng(0)
    sums = rng.uniform(1, 5, 30)
    counts = rng.integers(20, 40, 30).astype(float)
    measured = 1.2 * sums + 0.3 + 0.01 * counts
    cal = fit_linear_calibration(sums, counts, measured)
    assert (cal.scale, cal.offset, cal.per_layer) == pytest.approx((1.2, 0.3, 0.01), abs=1e-6)
    same_counts = fit_linear_calibration(sums, np.full(30, 25.0), 2 * sums + 1)
    assert same_counts.per_layer == 0 and same_counts.scale == pytest.approx(2)


def test_anchor_config_defaults_and_validation(space):
    cfg = default_anchor_config(space)
    assert space.is_valid(cfg) and resolve_anchor_config(space, "auto") == cfg
    assert resolve_anchor_config(space, space.max_config(160).to_string()) == space.max_config(160)
    with pytest.raises(ConfigError, match="anchor 'r999.*profile p"):
        resolve_anchor_config(space, "r999-d2,2,2,2,2", source="profile p")


def test_foreign_host_is_named_with_both_fingerprints(space, caplog):
    from ofa_deploy.profiling.hardware import HardwareProfile

    profile = HardwareProfile.load("ort-cpu-1t")
    here = backend_fingerprint(profile)
    assert check_table_host(units_table(space, host=here), profile).ok
    elsewhere = {**foreign_fingerprint(here), "cores": another_core_count(here["cores"])}
    check = check_table_host(units_table(space, host=elsewhere), profile)
    assert not check.ok and check.differences == ("cpu_model", "cores")
    assert f"table {elsewhere['cpu_model']!r}, here {here['cpu_model']!r}" in check.describe()
    assert f"table {elsewhere['cores']!r}, here {here['cores']!r}" in check.describe()
    with caplog.at_level(logging.WARNING):
        warn_if_foreign(units_table(space, host=elsewhere), profile)
    assert "measured on another host" in caplog.text and elsewhere["cpu_model"] in caplog.text
    unknown = compare({}, here)
    assert not unknown.ok and not unknown.known


# Provenance as ofa-deploy 0.1.0 wrote it: before host fingerprints (flat fields only), then with both.
FLAT_PROVENANCE = (b'{"device": "vm", "cpu_model": "Build Host CPU (0.1.0 flat fields)", "backend": "onnxruntime", '
                   b'"backend_version": "1.0.0", "execution_provider": "CPUExecutionProvider", "threads": 1, '
                   b'"precision": "fp32", "batch_size": 1, "profile_name": "ort-cpu-1t", "supernet": "ofa_mbv3_w10"}')
BOTH_PROVENANCE = (b'{"device": "vm", "cpu_model": "Build Host CPU (0.1.0 both)", "backend": "onnxruntime", "backend_version": "1.32.0", '
                   b'"execution_provider": "CPUExecutionProvider", "threads": 1, "profile_name": "ort-cpu-1t", '
                   b'"host": {"cpu_model": "Build Host CPU (0.1.0 both)", "cores": 2, "backend": "onnxruntime", '
                   b'"backend_version": "1.32.0", "provider": "CPUExecutionProvider", "threads": 1}}')
OFA_PROVENANCE = b'{"device": "note10", "backend": "ofa-lut", "supernet": "ofa_mbv3_w12"}'


def _with_provenance(space, raw: bytes, path):
    data = units_table(space).to_dict()
    data["provenance"] = json.loads(raw)
    path.write_text(json.dumps(data))
    return LatencyTable.load(path)


def test_old_provenance_loads_with_each_host_fact_once(space, tmp_path):
    flat = _with_provenance(space, FLAT_PROVENANCE, tmp_path / "flat.json")
    assert flat.provenance.host == {"cpu_model": "Build Host CPU (0.1.0 flat fields)", "backend": "onnxruntime",
                                    "backend_version": "1.0.0", "provider": "CPUExecutionProvider", "threads": 1}
    # the partial fingerprint the flat fields recorded, here and elsewhere (the machine only: no profile named)
    legacy = {**json.loads(FLAT_PROVENANCE), "profile_name": ""}
    elsewhere = _with_provenance(space, json.dumps({**legacy, "cpu_model": another_cpu_model()}).encode(),
                                 tmp_path / "elsewhere.json")
    check = check_table_host(elsewhere, None)
    assert check.known and check.differences == ("cpu_model",)
    here = _with_provenance(space, json.dumps({**legacy, "cpu_model": read_host().cpu_model}).encode(),
                            tmp_path / "here.json")
    assert check_table_host(here, None).ok  # the same machine, as far as a legacy provenance can tell
    both = _with_provenance(space, BOTH_PROVENANCE, tmp_path / "both.json")
    assert both.provenance.host["cpu_model"] == "Build Host CPU (0.1.0 both)" and both.provenance.host["cores"] == 2
    ofa = _with_provenance(space, OFA_PROVENANCE, tmp_path / "ofa.json")
    assert ofa.provenance.host == {"backend": "ofa-lut"} and not check_table_host(ofa, None).known
    for table in (flat, both, ofa):
        saved = table.to_dict()["provenance"]
        assert not {"cpu_model", "backend", "backend_version"} & set(saved)  # written once, in host
        assert LatencyTable.from_dict(table.to_dict()).provenance == table.provenance


def test_profile_check_cli(space, tmp_path):
    from ofa_deploy.profiling.hardware import HardwareProfile

    here = backend_fingerprint(HardwareProfile.load("ort-cpu-1t"))
    good = units_table(space, host=here).save(tmp_path / "good.json")
    elsewhere = foreign_fingerprint(here)
    bad = units_table(space, host=elsewhere).save(tmp_path / "bad.json")
    ok = subprocess.run([sys.executable, "-m", "ofa_deploy", "profile", "check", str(good)], capture_output=True,
                        text=True)
    assert ok.returncode == 0 and ok.stdout.startswith("valid here"), ok.stderr
    no = subprocess.run([sys.executable, "-m", "ofa_deploy", "profile", "check", str(bad), "--format", "json"],
                        capture_output=True, text=True)
    assert no.returncode == 1 and "Traceback" not in no.stderr
    data = json.loads(no.stdout)
    assert data["ok"] is False and data["differences"] == ["cpu_model"] and elsewhere["cpu_model"] in data["message"]


def test_an_anchor_that_cannot_run_names_the_profile(tmp_path):
    from ofa_deploy.profiling.hardware import HardwareProfile
    from ofa_deploy.profiling.timing.measure import measure_models

    broken = tmp_path / "anchor.onnx"
    broken.write_bytes(b"not an onnx model")
    with pytest.raises(ConfigError, match="anchor model .*anchor.onnx of profile ort-cpu-1t cannot run"):
        measure_models({"x": (broken, (1, 3, 8, 8))}, (broken, (1, 3, 8, 8)), HardwareProfile.load("ort-cpu-1t"))


def test_find_table_picks_the_table_measured_on_this_host(space, tmp_path, monkeypatch, caplog):
    """Several stored tables for one (profile, supernet): the one whose fingerprint matches this host is picked
    and the log says so; with none measured here, the default one (callers then warn, refuse or adapt)."""
    from ofa_deploy.profiling.hardware import HardwareProfile
    from ofa_deploy.profiling.lut import find_table, host_table_path, stored_tables, table_path

    monkeypatch.setenv("OFA_DEPLOY_CACHE", str(tmp_path / "cache"))
    here = backend_fingerprint(HardwareProfile.load("ort-cpu-1t"))
    elsewhere = foreign_fingerprint(here)
    default = units_table(space, host=elsewhere).save(table_path("ort-cpu-1t", space.name))
    ours = host_table_path("ort-cpu-1t", space.name, here)
    assert ours != default and ours.parent == default.parent and ours.name.startswith(f"{space.name}@")
    assert find_table("ort-cpu-1t", space.name) == default  # only the other host's table: it is the one found
    units_table(space, host=here).save(ours)
    with caplog.at_level(logging.INFO, logger="ofa_deploy.profiling.lut"):
        assert find_table("ort-cpu-1t", space.name) == ours
    assert f"{ours} (measured on this host)" in caplog.text
    # run as another machine (its fingerprint is neither table's): the default table, and the log says why
    assert find_table("ort-cpu-1t", space.name, here=foreign_fingerprint(elsewhere)) == default
    rows = [r for r in stored_tables() if r["where"] == "cache"]
    assert sorted((r["supernet"], r["host"]) for r in rows) == [(space.name, ""), (space.name, ours.stem.split("@")[1])]
