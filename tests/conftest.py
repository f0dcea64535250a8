"""Shared fixtures: the OFA reference artifacts in ../shared and the reference `ofa` package."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.ofa_reference import SHARED_OFA


@pytest.fixture(scope="session")
def ofa_reference_dir() -> Path:
    """../shared/reference/ofa: Note10 LUTs, released predictors, specialized net.configs."""
    if not SHARED_OFA.is_dir():
        pytest.skip(f"OFA reference artifacts not found at {SHARED_OFA} (set OFA_DEPLOY_SHARED)")
    return SHARED_OFA


@pytest.fixture(scope="session")
def ofa_ref():
    """The reference `ofa` package (installed with --no-deps by dev.py), imported through the stub."""
    from tests.ofa_reference import import_ofa

    return import_ofa()


@pytest.fixture(scope="session")
def w12():
    """The OFA-MBv3 w1.2 space, the space of OFA's released Note10 tables."""
    from ofa_deploy.spaces import get_space

    return get_space("ofa_mbv3_w12")


@pytest.fixture(scope="session")
def note10(ofa_reference_dir, w12):
    """OFA's Samsung Note10 latency tables (160..224 step 16), loaded against `w12`."""
    from ofa_deploy.compat.ofa_lut import load_ofa_lut

    return load_ofa_lut(ofa_reference_dir, w12)


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """One intra-op torch thread for the whole suite, restored afterwards.

    On this 2-core machine multi-threaded torch spin-waits whenever anything else runs; helpers measured
    forwards 5-20x slower with 2 threads under load. Timing tests set their own threads via profiles.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_space():
    """A small MobileNetV3 space (26 distinct layers at 32 px): LUT builds and pools finish in seconds."""
    from ofa_deploy.spaces import get_space

    return get_space("ofa_mbv3_w10", width_mult=0.5, depths=(1, 2), kernel_sizes=(3,), expand_ratios=(3, 4),
                     resolutions=(32,), n_classes=10)


@pytest.fixture(scope="session")
def profile():
    """The host profile every timing test uses: ONNX Runtime, CPU, one thread."""
    from ofa_deploy.profiling.hardware import HardwareProfile

    return HardwareProfile.load("ort-cpu-1t")


@pytest.fixture(scope="module")
def demo_supernet():
    """The demo's quick MobileNetV3 supernet (digits, tiny): accuracy datasets in seconds."""
    from ofa_deploy.demo import QUICK_RECIPE, create_demo_supernet

    return create_demo_supernet(QUICK_RECIPE).eval()


@pytest.fixture(scope="module")
def digits():
    """The digits images at 24 px with the calibration and holdout splits the accuracy tests use."""
    from ofa_deploy.data import load_digits

    return load_digits(image_size=24, seed=0, holdout_fraction=0.2, calibration_size=64)
