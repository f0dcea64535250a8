"""The anchor-paired timing protocol on a synthetic machine whose speed drifts (deterministic, no sleeps)."""
from __future__ import annotations

import numpy as np
import pytest

from ofa_deploy.errors import ConfigError
from ofa_deploy.profiling.timing.protocol import ProtocolSettings, measure_paired, median_interval, relative_halfwidth


class DriftingMachine:
    """Every visit costs `cost * speed`, where the speed follows a slow wave (1.0..2.3x) plus seeded jitter."""

    def __init__(self, swing: float = 2.3, jitter: float = 0.01, seed: int = 0) -> None:
        self.calls = 0
        self.swing = swing
        self.jitter = jitter
        self.rng = np.random.default_rng(seed)

    def speed(self) -> float:
        wave = 1 + (self.swing - 1) * 0.5 * (1 + np.sin(self.calls / 7.0))
        return float(wave * (1 + self.jitter * self.rng.standard_normal()))

    def visit(self, cost: float) -> float:
        self.calls += 1
        return cost * self.speed()


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        self.t += 1.0
        return self.t


COSTS = {"small": 0.5, "mid": 1.3, "large": 4.0}


def run(machine: DriftingMachine, settings: ProtocolSettings, costs=COSTS, clock=None):
    return measure_paired({k: v for k, v in costs.items()}, 2.0, settings, visit=machine.visit,
                          now=clock or FakeClock())


def test_ratios_cancel_a_2x_drift():
    machine = DriftingMachine()
    result = run(machine, ProtocolSettings(time_cap_s=1e9))
    swing = result.anchor_swing
    assert swing > 1.8, "the synthetic machine must drift for this test to mean anything"
    for key, cost in COSTS.items():
        r = result.results[key]
        assert r.ratio == pytest.approx(cost / 2.0, rel=0.03), key
        assert r.converged and r.interval[0] <= r.ratio <= r.interval[1]
        assert relative_halfwidth(r.ratio, r.interval) <= 0.03
        assert r.ms(2.0) == pytest.approx(cost, rel=0.03)  # at the reference anchor time: the true cost
        raw = np.asarray(r.item_ms)
        assert raw.max() / raw.min() > 1.5  # the absolute times alone are useless


def test_same_seed_same_result():
    a = run(DriftingMachine(seed=3), ProtocolSettings(seed=5))
    b = run(DriftingMachine(seed=3), ProtocolSettings(seed=5))
    assert {k: r.to_dict() for k, r in a.results.items()} == {k: r.to_dict() for k, r in b.results.items()}


def test_noisy_items_hit_the_round_cap_and_say_so():
    machine = DriftingMachine(jitter=0.25)
    result = run(machine, ProtocolSettings(min_rounds=3, max_rounds=6, target=0.01, time_cap_s=1e9))
    assert result.rounds == 6
    assert not result.converged
    for r in result.results.values():
        assert r.converged is False and r.rounds == 6
        assert relative_halfwidth(r.ratio, r.interval) > 0.01


def test_time_cap_stops_after_min_rounds():
    machine = DriftingMachine(jitter=0.25)
    result = run(machine, ProtocolSettings(min_rounds=3, max_rounds=30, target=0.001, time_cap_s=10),
                 clock=lambda: float(machine.calls))  # one second per visit: the cap is long past after 3 rounds
    assert result.rounds == 3
    assert not any(r.converged for r in result.results.values())


def test_converged_items_drop_out_of_later_rounds():
    machine = DriftingMachine(jitter=0.002)
    noisy = {"quiet": 1.0}
    result = run(machine, ProtocolSettings(min_rounds=4, time_cap_s=1e9), costs=noisy)
    assert result.results["quiet"].rounds == 4 and result.results["quiet"].converged


def test_halves_give_the_noise_floor():
    result = run(DriftingMachine(), ProtocolSettings(min_rounds=8, time_cap_s=1e9))
    for r in result.results.values():
        a, b = r.halves()
        assert a == pytest.approx(b, rel=0.05)


def test_median_interval_covers_the_median():
    values = np.random.default_rng(0).normal(10, 1, 40)
    lo, hi = median_interval(values, rng=1)
    assert lo < np.median(values) < hi and hi - lo < 2
    assert median_interval([3.0]) == (3.0, 3.0)


def test_bad_settings_are_refused():
    with pytest.raises(ConfigError, match="target"):
        ProtocolSettings(target=0)
    with pytest.raises(ConfigError, match="min_rounds"):
        ProtocolSettings(min_rounds=5, max_rounds=3)
    with pytest.raises(ConfigError, match="at least one item"):
        measure_paired({}, object())


def test_settings_from_profile_fields():
    from ofa_deploy.profiling.hardware import HardwareProfile

    profile = HardwareProfile.from_dict({"name": "p", "interval_target": 0.05, "max_rounds": 9, "visit_repeats": 4})
    s = ProtocolSettings.from_profile(profile)
    assert (s.target, s.max_rounds, s.repeats, s.min_rounds) == (0.05, 9, 4, ProtocolSettings().min_rounds)
    assert ProtocolSettings.from_profile(profile, max_rounds=12).max_rounds == 12


def test_real_onnx_runtime_sessions(tmp_path):
    """The protocol on real ORT sessions: a subnet twice as deep as another measures a larger ratio."""
    from ofa_deploy.profiling.timing.backends import create_backend
    from ofa_deploy.profiling.hardware import HardwareProfile
    from ofa_deploy.profiling.models import export_subnet
    from ofa_deploy.supernets import create_supernet

    space = create_supernet("ofa_mbv3_w10", resolutions=(32,), n_classes=10).space
    profile = HardwareProfile.load("ort-cpu-1t")
    small, large = space.min_config(32), space.max_config(32)
    backend = create_backend(profile)
    runners = {name: backend.prepare(export_subnet(space, cfg, tmp_path), (1, 3, 32, 32))
               for name, cfg in (("small", small), ("large", large))}
    anchor = backend.prepare(export_subnet(space, small, tmp_path), (1, 3, 32, 32))
    result = measure_paired(runners, anchor, ProtocolSettings(min_rounds=3, max_rounds=4, repeats=3, warmup=1))
    for r in result.results.values():
        assert r.rounds >= 3 and r.anchor_ms > 0 and len(r.item_ms) == r.rounds
    assert result.results["large"].ratio > result.results["small"].ratio
