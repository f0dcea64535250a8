"""Property-based fuzzing of every input boundary (issue 10).

Subnet strings, JSON and OFA dicts, gene arrays and corrupt or special files go through the public entry
points; every failure must be an `OfaDeployError`, nothing may hang, and an input made invalid on purpose
must never be accepted. The targets live in `tests/fuzz_inputs.py`; `benchmarks/fuzz_inputs.py` runs them
with many more examples and prints the counts.
"""
from __future__ import annotations

import logging

import pytest
from hypothesis import HealthCheck, given, settings

from tests.fuzz_inputs import TARGETS

# Deterministic (derandomize) so a failure reproduces; each target runs in a few seconds.
FUZZ = settings(max_examples=600, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(autouse=True)
def _quiet(caplog):
    caplog.set_level(logging.ERROR)  # readers warn about tolerated damage (a torn last line); not the point here


def _assert_fine(outcome, drawn) -> None:
    assert outcome.kind in ("ok", "typed"), f"{outcome.kind}: {outcome.detail} <- {drawn!r}"[:2000]


@FUZZ
@given(TARGETS["subnet_string"][0]())
def test_subnet_strings(drawn) -> None:
    _assert_fine(TARGETS["subnet_string"][1](drawn), drawn)


@FUZZ
@given(TARGETS["subnet_json"][0]())
def test_subnet_json(drawn) -> None:
    _assert_fine(TARGETS["subnet_json"][1](drawn), drawn)


@FUZZ
@given(TARGETS["ofa_dict"][0]())
def test_ofa_dicts(drawn) -> None:
    _assert_fine(TARGETS["ofa_dict"][1](drawn), drawn)


@FUZZ
@given(TARGETS["genes"][0]())
def test_gene_arrays(drawn) -> None:
    _assert_fine(TARGETS["genes"][1](drawn), drawn)


@settings(FUZZ, max_examples=1000)
@given(TARGETS["file"][0]())
def test_corrupt_and_special_files(drawn) -> None:
    _assert_fine(TARGETS["file"][1](drawn), drawn)


def test_the_targets_can_tell_bugs_apart() -> None:
    """The classifier itself: a typed error passes, a stray exception or an accepted invalid input does not."""
    from ofa_deploy.errors import ConfigError
    from tests.fuzz_inputs import classify

    def raise_(exc: Exception):
        raise exc

    assert classify(lambda: raise_(ConfigError("bad")), must_reject=True).kind == "typed"
    assert classify(lambda: raise_(ValueError("bad")), must_reject=False).kind == "untyped"
    assert classify(lambda: 1, must_reject=True).kind == "silent"
    assert classify(lambda: 1, must_reject=False, check=lambda r: None).kind == "ok"
