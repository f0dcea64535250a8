"""Shared fixtures: the OFA reference artifacts in ../shared and the reference `ofa` package."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_OFA = Path(os.environ.get("OFA_DEPLOY_SHARED", REPO.parent / "shared")) / "reference" / "ofa"


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
