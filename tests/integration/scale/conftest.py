"""Fixtures of the scale-out tests: one local Ray cluster (2 CPUs) shared by the session, tiny jobs."""
from __future__ import annotations

import pytest

from ofa_deploy.profiling.timer import TimerSettings

FAST = TimerSettings(warmup=1, repeats=3, rounds=2, anchor_every=8, seed=0)


@pytest.fixture(scope="session")
def _ray_shutdown():
    yield
    import ray

    ray.shutdown()


@pytest.fixture
def ray_local(_ray_shutdown):
    """The session's local Ray cluster (started on first use, again after a multi-node test shut it down)."""
    import ray

    from ofa_deploy.scale.ray_executor import worker_runtime_env

    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, runtime_env=worker_runtime_env(), log_to_driver=False)
    return ray


@pytest.fixture(scope="module")
def tiny_space():
    from ofa_deploy.spaces import get_space

    return get_space("ofa_mbv3_w10", width_mult=0.5, depths=(1, 2), kernel_sizes=(3,), expand_ratios=(3, 4),
                     resolutions=(32,), n_classes=10)


@pytest.fixture(scope="module")
def profile():
    from ofa_deploy.profiling.hardware import HardwareProfile

    return HardwareProfile.load("ort-cpu-1t")


@pytest.fixture(scope="module")
def fast_protocol(profile):
    from ofa_deploy.profiling.protocol import ProtocolSettings

    return ProtocolSettings.from_profile(profile, repeats=3, warmup=1)
