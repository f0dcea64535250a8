"""Bad input to `adapt_table`: each a clear error that says what was wrong, and nothing written at `out`."""
from __future__ import annotations

import socket
from pathlib import Path

import pytest

from ofa_deploy.adapt import AdaptationError, adapt_table
from ofa_deploy.errors import ConfigError
from ofa_deploy.profiling.hosts.devices import DeviceUnavailableError
from ofa_deploy.profiling.hardware import HardwareProfile
from tests.adapt_helpers import synthetic_source

COMMITTED = Path(__file__).resolve().parents[2] / "ofa_deploy" / "hardware_profiles" / "luts" / "ort-cpu-1t" / \
    "ofa_mbv3_w12.json"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("OFA_DEPLOY_CACHE", str(tmp_path / "cache"))


def test_a_source_for_another_space(tmp_path):
    out = tmp_path / "a.json"
    with pytest.raises(ConfigError, match="is for supernet 'ofa_mbv3_w12', not 'ofa_proxyless_w13'"):
        adapt_table(COMMITTED, profile="ort-cpu-1t", supernet="ofa_proxyless_w13", out=out)
    assert not out.exists()


def test_a_source_with_no_entries_for_the_resolutions(tmp_path, tiny_space):
    out = tmp_path / "a.json"
    with pytest.raises(ConfigError, match=r"has no entries for the target's resolutions \[128\].*covers \[160, 176"):
        adapt_table(COMMITTED, profile="ort-cpu-1t", resolutions=[128], out=out)
    other = synthetic_source(tiny_space)  # a table of the tiny variant, given for the full space of that name
    with pytest.raises(ConfigError, match="has no entries for the target's resolutions"):
        adapt_table(other, profile="ort-cpu-1t", supernet="ofa_mbv3_w10", out=out)
    assert not out.exists()


def test_an_ofa_yaml_source_needs_its_space(tmp_path, ofa_reference_dir):
    with pytest.raises(ConfigError, match="names no supernet; pass supernet="):
        adapt_table(ofa_reference_dir, profile="ort-cpu-1t", out=tmp_path / "a.json")


def test_a_target_that_cannot_be_reached(tmp_path, tiny_space):
    base = HardwareProfile.load("ort-cpu-1t").to_dict()
    profile = HardwareProfile.from_dict({**base, "name": "gone-board", "devices": [
        {"name": "board-01", "runner": "ssh", "host": "127.0.0.1", "port": closed_port(), "connect_timeout": 5}]})
    out = tmp_path / "a.json"
    with pytest.raises(DeviceUnavailableError, match="no device of profile gone-board could be reached.*board-01"):
        adapt_table(synthetic_source(tiny_space), profile=profile, supernet=tiny_space, out=out)
    assert not out.exists()


def test_a_budget_too_small_for_the_held_out_check(tmp_path, tiny_space):
    out = tmp_path / "a.json"
    with pytest.raises(AdaptationError, match=r"too small for the held-out check on ort-cpu-1t.*pass max_seconds >="):
        adapt_table(synthetic_source(tiny_space), profile="ort-cpu-1t", supernet=tiny_space, out=out,
                    max_seconds=0.01)
    assert not out.exists() and not list(tmp_path.glob("*.json"))


def test_bad_arguments(tmp_path, tiny_space):
    source = synthetic_source(tiny_space)
    with pytest.raises(ConfigError, match="fallback must be one of"):
        adapt_table(source, profile="ort-cpu-1t", supernet=tiny_space, fallback="retry")
    with pytest.raises(ConfigError, match="max_seconds must be a number of device seconds > 0"):
        adapt_table(source, profile="ort-cpu-1t", supernet=tiny_space, max_seconds=0)
    with pytest.raises(ConfigError, match="not found"):
        adapt_table(tmp_path / "missing.json", profile="ort-cpu-1t")
    with pytest.raises(ConfigError, match="int8, and full builds time fp32 layer models"):
        adapt_table(source, profile="ort-cpu-1t-int8", supernet=tiny_space, fallback="build")


def test_a_built_table_at_out_is_never_replaced(tmp_path, tiny_space):
    built = synthetic_source(tiny_space)
    out = built.save(tmp_path / "built.json")
    before = out.read_bytes()
    with pytest.raises(ConfigError, match="holds a latency table that was built, not adapted"):
        adapt_table(built, profile="ort-cpu-1t", supernet=tiny_space, out=out)
    assert out.read_bytes() == before
