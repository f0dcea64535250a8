"""LUT builds end to end on real ORT sessions: tiny build, interrupted + resumed build, on-device script
without torch, validation metrics."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ofa_deploy.profiling.builder import build_lut
from ofa_deploy.profiling.isolated import LayerTimingJob
from ofa_deploy.executors import LocalExecutor
from ofa_deploy.hostinfo import read_host
from ofa_deploy.profiling.hardware import HardwareProfile
from ofa_deploy.tables.latency import LatencyTable
from ofa_deploy.profiling.models import write_plan
from ofa_deploy.profiling.plan import ANCHOR_ID, CALIBRATION_PREFIX, make_plan, read_plan
from ofa_deploy.profiling.timing.protocol import ProtocolSettings
from ofa_deploy.profiling.timing.timer import TimerSettings

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "ofa_deploy" / "ondevice.py"
FAST = TimerSettings(warmup=1, repeats=3, rounds=2, anchor_every=8, seed=0)


@pytest.fixture(scope="module")
def space(tiny_space):
    return tiny_space


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("layer_models")  # exported once, shared by the builds below


@pytest.fixture(scope="module")
def full_build(space, profile, models_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("lut") / "tiny.lut.json"
    return build_lut(space, None, profile, out, timer=FAST, progress=False, model_dir=models_dir, method="isolated",
                     calibration_subnets=8)


def store_records(result):
    return [json.loads(line) for line in result.store_path.read_text().splitlines()[1:]]


def test_tiny_build_writes_a_valid_lut(full_build, space):
    from ofa_deploy.predictors.latency import LatencyPredictor

    table = LatencyTable.load(full_build.path)
    plan = make_plan(space)
    assert len(table) == len(plan) == 26
    assert all(table[i.spec].n == FAST.rounds and table[i.spec].median >= 0 for i in plan)
    # an entry is its layer minus the per-call overhead, clipped at 0: on a loaded machine the tiniest 32 px
    # layer (the global pool on a 1x1 map, ~0.5 us here) can fall within the overhead's noise; all others must be > 0
    assert sum(table[i.spec].median > 0 for i in plan) >= len(plan) - 1
    assert table.provenance.profile_name == "ort-cpu-1t"
    assert table.provenance.host["backend"] == "onnxruntime" and table.provenance.threads == 1
    assert json.loads(table.provenance.notes)["timer"]["rounds"] == FAST.rounds
    records = store_records(full_build)
    assert full_build.measured == len(records)
    for r in range(FAST.rounds):  # every round: the overhead, every layer, anchor visits on both sides of each
        in_round = sorted((x for x in records if x["round"] == r), key=lambda x: x["seq"])
        assert {x["id"] for x in in_round} >= {i.id for i in plan} | {ANCHOR_ID}
        assert in_round[1]["id"] == ANCHOR_ID and in_round[-1]["id"] == ANCHOR_ID
    # entries are in anchor units, with the anchor's build-time median and a calibration fitted on whole subnets
    assert table.unit == "anchor" and table.anchor.ms > 0 and table.anchor.space == space.name
    calib = {x["id"] for x in records if x["id"].startswith(CALIBRATION_PREFIX)}
    assert table.calibration.fit["n"] == len(calib) >= 6 and "held_out_2fold" in table.calibration.fit
    assert table.provenance.host["cpu_model"] and table.provenance.host["backend"] == "onnxruntime"
    pred = LatencyPredictor(space, table).predict(space.sample_batch(5, 0))
    assert pred.shape == (5,) and (pred > 0).all()
    assert full_build.overhead_ms > 0  # measured, and subtracted from every entry (hence the clipping above)


class InterruptingExecutor(LocalExecutor):
    """Runs `k` items, then raises KeyboardInterrupt as a user pressing Ctrl-C would."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.jobs: list[LayerTimingJob] = []

    def map(self, job, items):
        self.jobs.append(job)
        for n, item in enumerate(items):
            if n == self.k:
                raise KeyboardInterrupt
            yield job(item)


class CountingExecutor(LocalExecutor):
    def __init__(self) -> None:
        self.jobs: list[LayerTimingJob] = []

    def map(self, job, items):
        self.jobs.append(job)
        yield from super().map(job, items)


def test_interrupted_build_resumes_without_remeasuring(space, profile, models_dir, tmp_path):
    out = tmp_path / "resume.lut.json"
    with pytest.raises(KeyboardInterrupt):
        build_lut(space, None, profile, out, timer=FAST, progress=False, model_dir=models_dir,
                  executor=InterruptingExecutor(17), method="isolated", calibration_subnets=4)
    assert not out.exists()  # the table is only written when complete
    store = out.with_name(out.name + ".measurements.jsonl")
    assert len(store.read_text().splitlines()) == 1 + 17
    counting = CountingExecutor()
    result = build_lut(space, None, profile, out, timer=FAST, progress=False, model_dir=models_dir, executor=counting,
                       method="isolated", calibration_subnets=4)
    total = len(store.read_text().splitlines()) - 1
    assert counting.jobs[0].measurements == total - 17
    assert (result.measured, result.reused) == (total - 17, 17)
    keys = [(r["id"], r["round"], r["seq"]) for r in store_records(result)]
    assert len(keys) == len(set(keys))  # nothing measured twice
    assert len(LatencyTable.load(out)) == 26
    again = CountingExecutor()
    assert build_lut(space, None, profile, out, timer=FAST, progress=False, model_dir=models_dir,
                     executor=again, method="isolated", calibration_subnets=4).measured == 0
    assert again.jobs[0].measurements == 0


def test_torn_store_of_the_previous_version_resumes_without_remeasuring(space, profile, models_dir, tmp_path):
    """A build killed mid-append, its store in the previous version's format: the complete items are reused."""
    out = tmp_path / "old.lut.json"
    with pytest.raises(KeyboardInterrupt):
        build_lut(space, None, profile, out, timer=FAST, progress=False, model_dir=models_dir,
                  executor=InterruptingExecutor(12), method="isolated", calibration_subnets=4)
    store = out.with_name(out.name + ".measurements.jsonl")
    header, *records = store.read_bytes().splitlines(keepends=True)
    assert len(records) == 12 and json.loads(header)["job"] == "lut-build"
    old_header = (json.dumps({"header": json.loads(header)}) + "\n").encode()  # what the previous version wrote
    torn = records[-1][: len(records[-1]) // 2]  # the 12th item was being written when the build was killed
    store.write_bytes(old_header + b"".join(records[:11]) + torn)
    counting = CountingExecutor()
    result = build_lut(space, None, profile, out, timer=FAST, progress=False, model_dir=models_dir,
                       executor=counting, method="isolated", calibration_subnets=4)
    lines = store.read_bytes().splitlines(keepends=True)
    assert lines[0] == old_header and lines[1:12] == records[:11]  # resumed in place, the torn tail cut
    total = len(lines) - 1
    assert (result.measured, result.reused) == (total - 11, 11) and counting.jobs[0].measurements == total - 11
    keys = [(r["id"], r["round"], r["seq"]) for r in map(json.loads, lines[1:])]
    assert len(keys) == len(set(keys))  # the torn item measured again once, nothing else twice
    assert len(LatencyTable.load(out)) == 26


@pytest.mark.parametrize("name", ["torch-cpu", "tvm-cpu"])
def test_isolated_build_on_other_backends(space, name, tmp_path):
    if name == "tvm-cpu":
        pytest.importorskip("tvm")
    result = build_lut(space, None, HardwareProfile.load(name), tmp_path / "t.json", progress=False, limit=2,
                       model_dir=tmp_path, timer=TimerSettings(warmup=1, repeats=2, rounds=1), calibration_subnets=0,
                       protocol=ProtocolSettings(warmup=1, repeats=2))
    table = LatencyTable.load(result.path)
    assert len(table) == 2 and table.provenance.host["backend"] == name.split("-")[0]
    assert json.loads(table.provenance.notes)["method"] == "isolated"
    assert table.unit == "anchor" and table.anchor.ms > 0


def test_resume_with_other_settings_is_refused(space, profile, models_dir, full_build):
    from ofa_deploy.errors import ConfigError

    with pytest.raises(ConfigError, match="different job"):
        build_lut(space, None, profile, full_build.path, progress=False, model_dir=models_dir, method="isolated",
                  timer=TimerSettings(warmup=1, repeats=4, rounds=2))


def test_ondevice_script_runs_without_torch_and_imports(space, profile, tmp_path):
    from ofa_deploy.profiling.ondevice_import import import_results

    from ofa_deploy.profiling.timing.anchor import default_anchor_config

    plan = make_plan(space, limit=6)
    write_plan(plan, tmp_path / "plan", profile=profile, space=space, anchor=default_anchor_config(space),
               in_context=False)
    blocker = tmp_path / "blocked"
    for name in ("torch", "ofa_deploy"):
        (blocker / name).mkdir(parents=True)
        (blocker / name / "__init__.py").write_text(f"raise ImportError('{name} is not available on the device')\n")
    env = {**os.environ, "PYTHONPATH": str(blocker)}
    cmd = [sys.executable, str(SCRIPT), str(tmp_path / "plan"), "--out", str(tmp_path / "results.json"),
           "--rounds", "2", "--repeats", "3", "--warmup", "1"]
    check = subprocess.run([sys.executable, "-c", "import torch"], env=env, capture_output=True, text=True)
    assert "not available on the device" in check.stderr  # the blocker works
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["measured"] == summary["records"] == 2 * (1 + 6 + 2)  # overhead + layers + anchor twice per round
    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert json.loads(rerun.stdout)["measured"] == 0  # resumable: nothing left to do
    table = import_results(tmp_path / "results.json", tmp_path / "plan", tmp_path / "device.lut.json")
    assert len(table) == 6 and set(table) == {i.spec for i in read_plan(tmp_path / "plan")[0]}
    saved = LatencyTable.load(tmp_path / "device.lut.json")
    assert saved.provenance.execution_provider == "CPUExecutionProvider"
    assert saved.unit == "anchor" and saved.anchor.config == default_anchor_config(space).to_string()
    assert saved.provenance.host["cores"] == read_host().cores and saved.provenance.host["backend"] == "onnxruntime"


def test_ondevice_script_in_context_mode(space, profile, tmp_path):
    from ofa_deploy.profiling.ondevice_import import import_results

    from ofa_deploy.profiling.timing.anchor import default_anchor_config

    plan = make_plan(space)
    write_plan(plan, tmp_path / "plan", profile=profile, space=space, anchor=default_anchor_config(space))
    raw = json.loads((tmp_path / "plan" / "plan.json").read_text())
    assert raw["subnets"] and all(len(s["layers"]) > 5 for s in raw["subnets"])
    cmd = [sys.executable, str(SCRIPT), str(tmp_path / "plan"), "--out", str(tmp_path / "ctx.json"),
           "--rounds", "2", "--repeats", "3", "--warmup", "1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["measured"] == 2 * len(raw["subnets"])
    results = json.loads((tmp_path / "ctx.json").read_text())
    assert results["settings"]["method"] == "in_context"
    table = import_results(tmp_path / "ctx.json", tmp_path / "plan")
    assert set(table) == {i.spec for i in plan} and all(table[i.spec].n == 2 for i in plan)
    assert table.unit == "anchor" and all("ratio" in r for r in results["records"])


def test_validate_lut_reports_all_metrics(space, profile, full_build, tmp_path):
    from ofa_deploy.profiling.validate import validate_lut

    out = tmp_path / "val.json"
    protocol = ProtocolSettings(warmup=1, repeats=3, min_rounds=2, max_rounds=3)
    report = validate_lut(space, full_build.table, profile, n=6, seed=3, protocol=protocol, progress=False,
                          out_path=out)
    keys = {"n", "within_5pct", "within_10pct", "spearman", "kendall", "mean_abs_pct_error", "max_abs_pct_error",
            "mean_pct_error"}
    assert keys <= set(report.metrics) and keys <= set(report.noise_floor) and keys <= set(report.scaled_metrics)
    assert report.reference == "table anchor" and report.anchor["table_ms"] == full_build.table.anchor.ms
    assert report.host["ok"] is True and 2 <= report.protocol["rounds"] <= 3
    assert report.metrics["n"] == 6 and len(report.measured_ms) == 6
    assert all(m > 0 for m in report.measured_ms + report.pass_a_ms + report.pass_b_ms)
    assert keys <= set(report.calibrated["held_out"]) and report.calibrated["fit_on"] == 3
    assert json.loads(out.read_text())["metrics"] == report.metrics


def test_in_context_build_covers_the_space_and_resumes(space, profile, full_build, tmp_path):
    from ofa_deploy.profiling.plan import covering_set

    out = tmp_path / "ctx.lut.json"
    plan = make_plan(space)
    n_cfgs = len(covering_set(space, plan.resolutions, {i.spec for i in plan}))
    with pytest.raises(KeyboardInterrupt):
        build_lut(space, None, profile, out, timer=FAST, progress=False, executor=InterruptingExecutor(1),
                  model_dir=tmp_path / "models", calibration_subnets=0)
    counting = CountingExecutor()
    result = build_lut(space, None, profile, out, timer=FAST, progress=False, executor=counting,
                       model_dir=tmp_path / "models", calibration_subnets=0)
    assert (result.measured, result.reused) == (FAST.rounds * n_cfgs - 1, 1)
    table = LatencyTable.load(out)
    assert set(table) == {i.spec for i in plan}
    assert json.loads(table.provenance.notes)["method"] == "in_context"
    extra = build_lut(space, None, profile, tmp_path / "ctx2.lut.json", timer=FAST, progress=False,
                      model_dir=tmp_path / "models", context_subnets=2, calibration_subnets=0)
    assert extra.measured == FAST.rounds * (n_cfgs + 2) and set(extra.table) == set(table)
    # in context, each layer costs about what it costs alone or more (colder caches), never ~0
    # (the isolated build may clip its one tiniest layer to 0 within the overhead's noise: that entry is left out)
    alone = {s: full_build.table.latency(s) for s in table}
    assert sum(ms == 0 for ms in alone.values()) <= 1
    ratio = sorted(table.latency(s) / ms for s, ms in alone.items() if ms > 0)
    assert ratio[len(ratio) // 2] > 0.5
