"""Device pools on a two-node `ray.cluster_utils.Cluster`: each node offers one device resource; a LUT built
over the pool has the local build's items; odd anchors are flagged and kept apart; a device that cannot
connect or disappears mid-build is replaced by the rest of the pool."""
from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from ofa_deploy.profiling.builder import build_lut
from ofa_deploy.profiling.hosts.devices import DeviceSpec, DeviceUnavailableError, flag_devices
from ofa_deploy.scale.pool import DevicePool

from tests.hosts import usable_cpus

from .conftest import FAST


@pytest.fixture(scope="module")
def cluster():
    import ray
    from ray.cluster_utils import Cluster

    from ofa_deploy.scale.ray_executor import worker_runtime_env

    ray.shutdown()  # the session's single-node cluster gives way to a two-node one
    c = Cluster(initialize_head=True, head_node_args={"node_ip_address": "127.0.0.1", "num_cpus": 1, "resources": {"device:dev-a": 1,
                                                                                   "device:pi-ssh": 1}})
    c.add_node(node_ip_address="127.0.0.1", num_cpus=1, resources={"device:dev-b": 1, "device:dev-gone": 1})
    ray.init(address=c.address, _node_ip_address="127.0.0.1", runtime_env=worker_runtime_env(), log_to_driver=False)
    yield c
    ray.shutdown()
    c.shutdown()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def store_records(result) -> list[dict]:
    return [json.loads(line) for line in result.store_path.read_text().splitlines()[1:]]


@pytest.fixture(scope="module")
def local_build(tiny_space, profile, fast_protocol, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("local")
    return build_lut(tiny_space, None, profile, tmp / "local.json", timer=FAST, protocol=fast_protocol,
                     progress=False, model_dir=tmp / "models", method="isolated", calibration_subnets=0)


@pytest.fixture
def devices() -> list[DeviceSpec]:
    """Two local devices, each pinned to one of two CPUs this process may use (skipped with fewer)."""
    a, b = usable_cpus(2)
    return [DeviceSpec("dev-a", "local", {"cpus": [a]}), DeviceSpec("dev-b", "local", {"cpus": [b]})]


def test_pool_build_equals_local_and_flags_odd_anchors(cluster, devices, tiny_space, profile, fast_protocol, tmp_path,
                                                       local_build):
    common = dict(timer=FAST, protocol=fast_protocol, progress=False, model_dir=tmp_path / "models",
                  calibration_subnets=0)
    unreachable = DeviceSpec("dev-gone", "ssh", {"host": "127.0.0.1", "port": closed_port(), "connect_timeout": 5})
    pool = DevicePool([*devices, unreachable], tolerance=10.0)  # no flagging here (a loaded host drifts)
    result = build_lut(tiny_space, None, profile, tmp_path / "pool.json", executor=pool, **common)
    records = store_records(result)
    keys = [(r["id"], r["round"], r["seq"]) for r in records]
    assert len(keys) == len(set(keys))
    assert set(keys) == {(r["id"], r["round"], r["seq"]) for r in store_records(local_build)}
    assert set(result.table) == set(local_build.table) and len(result.table) == 26
    assert {r["device"] for r in records} == {"dev-a", "dev-b"}  # both devices took work
    assert "dev-gone" in result.pool["lost"] and "connecting failed" in result.pool["lost"]["dev-gone"]
    for device in devices:  # each device ran pinned to its CPU
        assert result.pool["connected"][device.name]["cpus"] == device.settings["cpus"]
    assert set(result.pool["devices"]) == {"dev-a", "dev-b"}
    provenance = json.loads(result.table.provenance.notes)["pool"]
    assert provenance["tolerance"] == pool.tolerance and provenance["reference_ms"] > 0

    # a strict tolerance flags the device whose anchor is slower: its entries stay in the store, out of the table
    strict = DevicePool(devices, tolerance=1e-6)
    out = tmp_path / "strict.json"
    flagged = build_lut(tiny_space, None, profile, out, executor=strict, **common)
    (odd,) = flagged.pool["flagged"]
    good = ({"dev-a", "dev-b"} - {odd}).pop()
    records = store_records(flagged)
    by_device = {d: {(r["id"], r["round"], r["seq"]) for r in records if r["device"] == d} for d in (odd, good)}
    assert by_device[odd] and flagged.pool["kept_apart"] == len(by_device[odd])
    assert by_device[good] == set(keys)  # everything the odd device measured was measured again on the good one
    assert set(flagged.table) == set(local_build.table)
    assert flagged.table.provenance.device == f"pool:{good}"
    devices = flagged.pool["devices"]  # judged on the first pass: the odd device's anchor was the slower one
    assert devices[odd]["anchor_ms"] > devices[good]["anchor_ms"] == flagged.pool["reference_ms"]


def test_device_disappearing_mid_build_is_replaced(cluster, devices, tiny_space, profile, fast_protocol, tmp_path,
                                                   local_build):
    import ray

    pool = DevicePool(devices, tolerance=10.0)  # about disappearing, not flagging
    out = tmp_path / "gone.json"
    store = out.with_name(out.name + ".measurements.jsonl")
    killed: list[str] = []

    def kill_dev_b() -> None:
        deadline = time.time() + 120
        while time.time() < deadline:
            if store.is_file() and len(store.read_text().splitlines()) > 10 and "dev-b" in pool.actors:
                ray.kill(pool.actors["dev-b"], no_restart=True)
                killed.append("dev-b")
                return
            time.sleep(0.02)

    thread = threading.Thread(target=kill_dev_b)
    thread.start()
    result = build_lut(tiny_space, None, profile, out, executor=pool, timer=FAST, protocol=fast_protocol,
                       progress=False, model_dir=tmp_path / "models", calibration_subnets=0)
    thread.join()
    assert killed and "dev-b" in result.pool["lost"]
    records = store_records(result)
    keys = [(r["id"], r["round"], r["seq"]) for r in records]
    assert len(keys) == len(set(keys)) and set(keys) == {(r["id"], r["round"], r["seq"])
                                                         for r in store_records(local_build)}
    assert any(r["device"] == "dev-b" for r in records)  # what dev-b measured before it went is kept
    assert set(result.table) == set(local_build.table)


def test_pool_without_any_reachable_device_is_a_clear_error(cluster, tiny_space, profile, fast_protocol, tmp_path):
    pool = DevicePool([DeviceSpec("dev-gone", "ssh", {"host": "127.0.0.1", "port": closed_port(),
                                                       "connect_timeout": 5})])
    with pytest.raises(DeviceUnavailableError, match="no device of the pool could connect: dev-gone"):
        build_lut(tiny_space, None, profile, tmp_path / "none.json", executor=pool, timer=FAST,
                  protocol=fast_protocol, progress=False, model_dir=tmp_path / "models", calibration_subnets=0)
    missing = DevicePool([DeviceSpec("dev-nowhere", "local", {})])
    with pytest.raises(DeviceUnavailableError, match="device:dev-nowhere"):
        build_lut(tiny_space, None, profile, tmp_path / "nowhere.json", executor=missing, timer=FAST,
                  protocol=fast_protocol, progress=False, model_dir=tmp_path / "models", calibration_subnets=0)


def test_flag_devices_uses_the_low_median():
    info = flag_devices({"a": [1.0, 1.1, 0.9], "b": [1.05], "c": [1.5, 1.6]}, 0.15)
    assert info["reference_ms"] == 1.05 and info["flagged"] == ["c"]
    assert not flag_devices({"a": [1.0], "b": [1.1]}, 0.15)["flagged"]
    assert flag_devices({"a": [1.0], "b": [1.2]}, 0.15)["flagged"] == ["b"]


def test_pool_with_an_ssh_device(cluster, sshd, tiny_space, profile, fast_protocol, tmp_path, local_build):
    """A local device and a board reached over ssh (a real sshd on 127.0.0.1) build one table together."""
    (cpu,) = usable_cpus(1)
    pool = DevicePool([DeviceSpec("dev-a", "local", {"cpus": [cpu]}), DeviceSpec("pi-ssh", "ssh", sshd["settings"])],
                      tolerance=10.0)
    result = build_lut(tiny_space, None, profile, tmp_path / "ssh.json", executor=pool, timer=FAST,
                       protocol=fast_protocol, progress=False, model_dir=tmp_path / "models", calibration_subnets=0)
    records = store_records(result)
    assert {r["device"] for r in records} == {"dev-a", "pi-ssh"}
    assert {(r["id"], r["round"], r["seq"]) for r in records} == {(r["id"], r["round"], r["seq"])
                                                                  for r in store_records(local_build)}
    assert set(result.table) == set(local_build.table) and result.pool["connected"]["pi-ssh"]["runner"] == "ssh"
