"""Accuracy datasets and LUT builds through the process pool and Ray equal the local results; workers killed
mid-build and a killed driver lose nothing and write nothing twice."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ofa_deploy.predictors.dataset import build_accuracy_dataset
from ofa_deploy.profiling.builder import build_lut
from ofa_deploy.executors import ProcessExecutor
from ofa_deploy.scale.ray_executor import RayExecutor

from .conftest import FAST

REPO = Path(__file__).resolve().parents[3]


def dataset_records(path: Path) -> dict[str, float]:
    """config → top-1; fails on a config stored twice."""
    lines = path.read_text().splitlines()[1:]
    records = [json.loads(line) for line in lines]
    configs = [r["config"] for r in records]
    assert len(configs) == len(set(configs)), "an item was written twice"
    return {r["config"]: r["top1"] for r in records}


@pytest.fixture(scope="module")
def local_dataset(demo_supernet, digits, tmp_path_factory):
    out = tmp_path_factory.mktemp("acc") / "local.jsonl"
    build_accuracy_dataset(demo_supernet, digits, out, n_subnets=6, resolutions=(16, 24), seed=3, progress=False)
    return dataset_records(out)


def test_accuracy_dataset_on_process_pool_and_ray_equals_local(demo_supernet, digits, tmp_path, local_dataset,
                                                               ray_local):
    assert len(local_dataset) == 12
    for name, executor in (("process", ProcessExecutor(2)), ("ray", RayExecutor(workers=2))):
        out = tmp_path / f"{name}.jsonl"
        summary = build_accuracy_dataset(demo_supernet, digits, out, n_subnets=6, resolutions=(16, 24), seed=3,
                                         progress=False, executor=executor)
        assert summary.n_evaluated == 12
        assert dataset_records(out) == local_dataset, name  # same items, same top-1 (deterministic on CPU)


def test_killed_workers_lose_nothing(demo_supernet, digits, tmp_path, local_dataset, ray_local):
    ray = ray_local
    executor = RayExecutor(workers=2)
    seen: list[str] = []
    gone: list[bool] = []  # after the kill, per record: whether the dead actor has left the pool

    def kill_one(record: dict) -> None:
        seen.append(record["config"])
        if len(seen) == 2:
            ray.kill(executor.actors["worker-0"], no_restart=True)
        elif len(seen) > 2:
            gone.append("worker-0" not in executor.actors)

    out = tmp_path / "ray-killed.jsonl"
    build_accuracy_dataset(demo_supernet, digits, out, n_subnets=6, resolutions=(16, 24), seed=3, progress=False,
                           executor=executor, on_item=kill_one)
    assert gone and gone[-1], gone  # the dead actor left the pool while the build went on (the pool is emptied after)
    assert dataset_records(out) == local_dataset

    process = ProcessExecutor(2)
    killed: list[int] = []

    def kill_process(record: dict) -> None:
        if not killed and len(process.pids) >= 2:
            os.kill(process.pids[0], signal.SIGKILL)
            killed.append(process.pids[0])

    out = tmp_path / "process-killed.jsonl"
    build_accuracy_dataset(demo_supernet, digits, out, n_subnets=6, resolutions=(16, 24), seed=3, progress=False,
                           executor=process, on_item=kill_process)
    assert killed and len(process.pids) >= 3  # a replacement worker was started
    assert dataset_records(out) == local_dataset


def test_resume_after_the_driver_is_killed(demo_supernet, digits, tmp_path, ray_local):
    """A driver process building through Ray is SIGKILLed mid-build; a resumed build completes the file."""
    ray = ray_local
    out = tmp_path / "driver-killed.jsonl"
    script = textwrap.dedent(f"""
        import torch
        torch.set_num_threads(1)
        from ofa_deploy.data import load_digits
        from ofa_deploy.demo import QUICK_RECIPE, create_demo_supernet
        from ofa_deploy.predictors.dataset import build_accuracy_dataset
        from ofa_deploy.scale.ray_executor import RayExecutor
        net = create_demo_supernet(QUICK_RECIPE).eval()
        data = load_digits(image_size=24, seed=0, holdout_fraction=0.2, calibration_size=64)
        build_accuracy_dataset(net, data, {str(out)!r}, n_subnets=40, resolutions=(16, 24), seed=3,
                               progress=False, executor=RayExecutor(workers=2, address={ray.get_runtime_context().gcs_address!r}))
    """)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if out.is_file() and len(out.read_text().splitlines()) >= 4:
            break
        time.sleep(0.05)
    assert proc.poll() is None, f"the driver ended before it could be killed: {proc.stderr.read()[-2000:]}"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stored = dataset_records(out)
    assert 3 <= len(stored) < 80
    summary = build_accuracy_dataset(demo_supernet, digits, out, n_subnets=40, resolutions=(16, 24), seed=3,
                                     progress=False, resume=True, executor=RayExecutor(workers=2))
    assert summary.n_stored_before == len(stored) and summary.n_evaluated == 80 - len(stored)
    final = dataset_records(out)
    assert len(final) == 80 and all(final[c] == v for c, v in stored.items())
    # the values equal a local build of the same items
    local = tmp_path / "local40.jsonl"
    build_accuracy_dataset(demo_supernet, digits, local, n_subnets=40, resolutions=(16, 24), seed=3, progress=False)
    assert dataset_records(local) == final


def lut_keys(result) -> set[tuple[str, int, int]]:
    records = [json.loads(line) for line in result.store_path.read_text().splitlines()[1:]]
    keys = [(r["id"], r["round"], r["seq"]) for r in records]
    assert len(keys) == len(set(keys)), "a LUT task was stored twice"
    return set(keys)


def test_lut_built_through_ray_has_the_local_items(tiny_space, profile, fast_protocol, tmp_path, ray_local):
    common = dict(timer=FAST, protocol=fast_protocol, progress=False, model_dir=tmp_path / "models",
                  method="isolated", calibration_subnets=0)
    local = build_lut(tiny_space, None, profile, tmp_path / "local.json", **common)
    remote = build_lut(tiny_space, None, profile, tmp_path / "ray.json", executor=RayExecutor(workers=2), **common)
    assert lut_keys(remote) == lut_keys(local)
    assert set(remote.table) == set(local.table) and len(local.table) == 26
    assert all(remote.table[s].n == FAST.rounds for s in remote.table)  # timings differ run to run; counts do not
