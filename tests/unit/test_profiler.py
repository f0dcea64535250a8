"""Profiler units: layer enumeration, ids, timer statistics, the measurement store, backends."""
from __future__ import annotations

import json
import time

import numpy as np
import pytest
import yaml

from ofa_deploy.errors import ConfigError
from ofa_deploy.profiling.plan import distinct_specs, make_plan, spec_id
from ofa_deploy.profiling.timing.timer import TimerSettings, round_statistic, time_runs
from ofa_deploy.profiling.validate import agreement
from ofa_deploy.spaces import get_space
from ofa_deploy.store import JsonlStore

RESOLUTIONS = (160, 176, 192, 208, 224)


def test_mbv3_w12_plan_has_one_entry_per_note10_key(ofa_reference_dir):
    space = get_space("ofa_mbv3_w12")
    for res in RESOLUTIONS:
        specs = [s for s, _ in distinct_specs(space, [res])]
        keys = yaml.safe_load((ofa_reference_dir / f"note10_{res}_lookup_table.yaml").read_text())
        assert len(specs) == len(keys) == 96


@pytest.mark.parametrize("name", ["ofa_mbv3_w10", "ofa_proxyless_w13", "ofa_resnet50"])
def test_plan_covers_every_layer_of_random_subnets(name):
    space = get_space(name)
    plan = make_plan(space, [160, 224])
    specs = {item.spec for item in plan}
    assert len(specs) == len(plan)  # distinct
    for res in (160, 224):
        for cfg in space.sample_batch(300, 1, resolution=res):
            assert all(s in specs for s in space.walk_layers(cfg))
    assert {r for item in plan for r in item.resolutions} == {160, 224}


def test_spec_ids_are_stable_and_distinct():
    plan = make_plan(get_space("ofa_mbv3_w10"), [160])
    ids = [item.id for item in plan]
    assert len(set(ids)) == len(ids)
    again = make_plan(get_space("ofa_mbv3_w10"), [160])
    assert [i.id for i in again] == ids
    spec = plan.items[3].spec
    assert spec_id(spec) == spec_id(type(spec).from_dict(json.loads(json.dumps(spec.to_dict()))))


def test_round_statistics_and_settings_errors():
    assert round_statistic([3.0, 1.0, 2.0], "min") == 1.0
    assert round_statistic([3.0, 1.0, 2.0], "median") == 2.0
    assert round_statistic(list(range(101)), "p10") == pytest.approx(10.0)
    with pytest.raises(ConfigError, match="statistic"):
        TimerSettings(statistic="fastest")
    with pytest.raises(ConfigError, match="clock"):
        TimerSettings(clock="sundial")
    with pytest.raises(ConfigError, match="repeats"):
        TimerSettings(repeats=0)


class _Spin:
    """A runner that burns a fixed amount of CPU on the calling thread."""

    natural_clock = "thread"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.calls = 0

    def run(self) -> None:
        self.calls += 1
        end = time.thread_time() + self.seconds
        while time.thread_time() < end:
            pass


def test_paired_protocol_ranks_real_work_against_an_anchor():
    from ofa_deploy.profiling.timing.protocol import ProtocolSettings, measure_paired

    runners = {"short": _Spin(0.0005), "mid": _Spin(0.002), "long": _Spin(0.004)}
    anchor = _Spin(0.002)
    result = measure_paired(runners, anchor, ProtocolSettings(warmup=1, repeats=3, min_rounds=3, max_rounds=4))
    ratio = {k: r.ratio for k, r in result.results.items()}
    assert ratio["short"] < ratio["mid"] < ratio["long"]
    assert ratio["mid"] == pytest.approx(1.0, rel=0.3) and ratio["long"] == pytest.approx(2.0, rel=0.3)
    assert all(3 <= r.rounds <= 4 for r in result.results.values())
    # warm-up + repeats per visit; the anchor brackets every item visit
    assert runners["short"].calls == result.results["short"].rounds * (1 + 3)
    assert anchor.calls == 4 * (result.rounds + sum(r.rounds for r in result.results.values()))


def test_time_runs_thread_clock_ignores_sleeping():
    samples = time_runs(lambda: time.sleep(0.01), warmup=0, repeats=3, clock="thread")
    assert max(samples) < 5.0  # sleeping costs no CPU time
    wall = time_runs(lambda: time.sleep(0.01), warmup=0, repeats=2, clock="wall")
    assert min(wall) >= 9.0


def test_store_resumes_and_rejects_other_jobs(tmp_path):
    path = tmp_path / "m.jsonl"
    store = JsonlStore(path, {"job": "x", "v": 1})
    store.append({"id": "a", "ms": 1.0})
    with path.open("a") as fh:
        fh.write('{"id": "b", "m')  # killed mid-write
    again = JsonlStore(path, {"job": "x", "v": 1})
    assert [r["id"] for r in again] == ["a"]
    with pytest.raises(ConfigError, match="different job"):
        JsonlStore(path, {"job": "x", "v": 2})
    fresh = JsonlStore(path, {"job": "x", "v": 2}, resume=False)
    assert len(fresh) == 0


def test_agreement_metrics():
    m = agreement([1.0, 2.0, 3.3, 4.0], [1.0, 2.1, 3.0, 4.5])
    assert m["n"] == 4
    assert m["within_10pct"] == 0.75
    assert m["spearman"] == pytest.approx(1.0)
    assert m["kendall"] == pytest.approx(1.0)
    assert m["max_abs_pct_error"] == pytest.approx(11.111, rel=1e-3)
    assert agreement([2.0, 1.0], [1.0, 2.0])["spearman"] == pytest.approx(-1.0)


def test_trace_attribution_sums_kernels_per_layer_and_run():
    from ofa_deploy.profiling.incontext import layer_times_from_trace

    def node(name, ts, dur):
        return {"cat": "Node", "name": f"{name}_kernel_time", "ts": ts, "dur": dur}

    events = []
    for run, t in enumerate((0, 1000)):
        events.append({"cat": "Session", "name": "model_run", "ts": t, "dur": 900})
        events += [node("/layers.0/conv/Conv", t + 1, 100), node("ReorderInput", t + 150, 10),
                   node("/layers.1/depth_conv/Conv", t + 200, 300 + run), node("ReorderOutput_token_3", t + 600, 20),
                   node("/layers.2/linear/Gemm", t + 700, 50)]
    out = layer_times_from_trace(events, 3, gaps=False)
    np.testing.assert_allclose(out, [[0.11, 0.32, 0.05], [0.11, 0.321, 0.05]])
    with_gaps = layer_times_from_trace(events, 3)  # gaps go to the next kernel's layer, the tail to the last
    np.testing.assert_allclose(with_gaps[0], [0.101 + 0.059, 0.34 + 0.12, 0.13 + 0.15])
    np.testing.assert_allclose(with_gaps.sum(axis=1), [0.9, 0.9])
    assert layer_times_from_trace(events, 3, skip_runs=1).shape == (1, 3)
    with pytest.raises(ConfigError, match="attributed"):
        layer_times_from_trace(events, 4)
