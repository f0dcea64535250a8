"""The LUT build methods behind one protocol (tasks, job, reduce): both implement it, the builder dispatches by
name only, and the on-device results reduce through the same method as a host build."""
from __future__ import annotations

import ast
import inspect

import numpy as np
import pytest

from ofa_deploy.errors import ConfigError
from ofa_deploy.profiling import builder
from ofa_deploy.profiling.builder import BUILD_METHODS, make_method, resolve_method
from ofa_deploy.profiling.incontext import InContextMethod
from ofa_deploy.profiling.isolated import IsolatedMethod, table_from_records
from ofa_deploy.profiling.methods import BuildMethod, Task
from ofa_deploy.profiling.plan import ANCHOR_ID, CALIBRATION_PREFIX, OVERHEAD_ID, spec_id
from ofa_deploy.profiling.timing.timer import TimerSettings

SETTINGS = TimerSettings(warmup=1, repeats=2, rounds=3, anchor_every=5, seed=7)


@pytest.fixture(scope="module")
def methods(tiny_space, tmp_path_factory):
    out = {}
    for name in BUILD_METHODS:
        out[name] = make_method(name, tiny_space, None, batch_size=1, settings=SETTINGS,
                                model_dir=tmp_path_factory.mktemp(name), anchor=("anchor.onnx", (1, 3, 32, 32)))
    return out


def test_every_method_implements_the_protocol(methods):
    assert set(methods) == {"isolated", "in_context"}
    for name, method in methods.items():
        assert isinstance(method, BuildMethod), name
        assert method.name == name and method.estimate.startswith(name.replace("_", "-"))


def test_the_builder_has_no_method_forks():
    """The build never branches on a method's name: dispatch is the `BUILD_METHODS` lookup."""
    tree = ast.parse(inspect.getsource(builder))
    compared = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            names = [c.value for c in [node.left, *node.comparators] if isinstance(c, ast.Constant)]
            compared += [n for n in names if n in BUILD_METHODS]
    assert compared == []


def test_resolve_method():
    class Ort:
        name = "onnxruntime"

    class Tvm:
        name = "tvm"

    from ofa_deploy.spaces import get_space

    mbv3, resnet = get_space("ofa_mbv3_w10"), get_space("ofa_resnet50")  # the family says whether in-context fits
    assert resolve_method("auto", Ort(), mbv3) == "in_context"
    assert resolve_method("auto", Ort(), mbv3, pooled=True) == "isolated"
    assert resolve_method("auto", Ort(), resnet) == "isolated"
    assert resolve_method("auto", Tvm(), mbv3) == "isolated"
    assert resolve_method("in_context", Tvm(), mbv3) == "in_context"
    with pytest.raises(ConfigError, match="unknown LUT build method 'fast'"):
        resolve_method("fast", Ort(), mbv3)


@pytest.mark.parametrize("name", ["isolated", "in_context"])
def test_tasks_cover_every_item_and_calibration_subnet_each_round(methods, name):
    method = methods[name]
    calibration = [CALIBRATION_PREFIX + "c1", CALIBRATION_PREFIX + "c2"]
    tasks = method.tasks(calibration)
    assert all(isinstance(t, Task) for t in tasks)
    assert len({(t.item_id, t.round, t.seq) for t in tasks}) == len(tasks)  # one record per task, resumable
    units = [i.id for i in method.plan.items] if name == "isolated" else method.config_ids
    for r in range(SETTINGS.rounds):
        in_round = [t.item_id for t in tasks if t.round == r]
        assert set(units + calibration) <= set(in_round)
        assert sorted(t.seq for t in tasks if t.round == r) == list(range(len(in_round)))
    assert tasks == method.tasks(calibration)  # seeded


def _fake_in_context_records(space, method, rng):
    records = []
    for r in range(2):
        for seq, cid in enumerate(method.config_ids):
            n = len(method.layers(cid))
            records.append({"id": cid, "round": r, "seq": seq, "anchor": False,
                            "layers": rng.uniform(0.01, 0.2, n).tolist(), "ratio": float(rng.uniform(0.5, 2.0)),
                            "anchor_ms": float(rng.uniform(1.0, 1.2)), "item_ms": 1.0})
    records.append({"id": CALIBRATION_PREFIX + method.config_ids[0], "round": 0, "seq": 99, "anchor": False,
                    "ratio": 1.0, "anchor_ms": 1.1, "item_ms": 1.1})
    return records


def test_in_context_reduce_is_one_estimate_on_host_and_device(tiny_space, methods):
    """The on-device script names layers by the plan's spec ids; reducing its records gives the host's table."""
    host = methods["in_context"]
    records = _fake_in_context_records(tiny_space, host, np.random.default_rng(0))
    layer_ids = {cid: [spec_id(s) for s in host.layers(cid)] for cid in host.config_ids}
    device = InContextMethod(None, host.plan, list(layer_ids), layer_ids=layer_ids)
    a, b = host.reduce(records, None), device.reduce(records, None)
    assert len(a.table) == len(b.table) == len(host.plan)
    for item in host.plan.items:
        assert a.table[item.spec].median == pytest.approx(b.table[item.spec].median)
    # entries are in anchor units: each record's layers were scaled to sum to its ratio
    first = records[0]
    scaled = sum(np.array(first["layers"]) * first["ratio"] / sum(first["layers"]))
    assert scaled == pytest.approx(first["ratio"])
    assert a.anchor_visits_ms == [r["anchor_ms"] for r in records] and a.overhead_units == 0.0
    with pytest.raises(ConfigError, match="no in-context measurement"):
        host.reduce(records[: len(host.config_ids) // 2], None)
    with pytest.raises(ConfigError, match="which the plan does not list"):
        device.reduce([{**records[0], "id": "not-a-subnet"}], None)
    first = host.config_ids[0]
    tampered = InContextMethod(None, host.plan, [first], layer_ids={first: [*layer_ids[first][:-1], "no-such-layer"]})
    with pytest.raises(ConfigError, match="lists layer 'no-such-layer'.*not among its items"):
        tampered.reduce(records[:1], None)


def test_isolated_reduce_matches_the_record_reducer(methods):
    method = methods["isolated"]
    rng = np.random.default_rng(1)
    records = []
    for t in method.tasks([]):
        ms = 1.0 if t.item_id == ANCHOR_ID else 0.05 if t.item_id == OVERHEAD_ID else float(rng.uniform(0.1, 0.5))
        records.append({"id": t.item_id, "round": t.round, "seq": t.seq, "anchor": t.anchor, "ms": ms})
    result = method.reduce(records, None)
    table, overhead, _ = table_from_records(method.plan, records, provenance=None)
    assert overhead == pytest.approx(0.05) and result.overhead_units == pytest.approx(0.05)
    assert {s: v.median for s, v in result.table.items()} == {s: v.median for s, v in table.items()}
    from_plan_only = IsolatedMethod(None, method.plan)  # what the on-device import makes
    assert set(from_plan_only.reduce(records, None).table) == set(result.table)
    with pytest.raises(ConfigError, match="can only reduce records"):
        from_plan_only.tasks([])
