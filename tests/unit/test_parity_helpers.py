"""The parity-test helpers: seeded randomisation and the checks that reject constant or exploding outputs."""
from __future__ import annotations

import pytest
import torch

from ofa_deploy.supernets import create_supernet
from tests.export_helpers import assert_close_scaled, assert_input_dependent, calibrate_bn, randomize_for_parity


def _small():
    return create_supernet("ofa_mbv3_w10", resolutions=(32,), width_mult=0.5, n_classes=10)


def test_input_dependence_check_rejects_constant_non_finite_and_huge_outputs() -> None:
    row = torch.linspace(-1, 1, 10)
    with pytest.raises(AssertionError, match="do not depend on the input"):
        assert_input_dependent(torch.stack([row, row + 1e-4]))
    with pytest.raises(AssertionError, match="not finite"):
        assert_input_dependent(torch.stack([row, row.flip(0) * float("nan")]))
    with pytest.raises(AssertionError, match="magnitude"):
        assert_input_dependent(torch.stack([row, row.flip(0)]) * 1e5)
    with pytest.raises(AssertionError, match="at least two"):
        assert_input_dependent(row[None])
    out = torch.stack([row, row.flip(0)])
    assert assert_input_dependent(out) is out


def test_scaled_closeness_follows_the_output_scale() -> None:
    want = torch.linspace(-1, 1, 20).reshape(2, 10)
    assert assert_close_scaled(want + 1e-7, want, rel=1e-5) < 1e-5
    with pytest.raises(AssertionError):
        assert_close_scaled(want + 1e-4, want, rel=1e-5)
    assert_close_scaled(1e4 * (want + 1e-7), 1e4 * want, rel=1e-5)  # the same relative error at a larger scale


def test_randomised_supernet_is_seeded_and_input_dependent_at_min_max_and_random_configs() -> None:
    torch.manual_seed(1)  # the global RNG only affects the default init, which is overwritten
    a = randomize_for_parity(_small(), seed=4, input_shape=(2, 3, 32, 32))
    torch.manual_seed(2)
    b = randomize_for_parity(_small(), seed=4, input_shape=(2, 3, 32, 32))
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(3)
    space = a.space
    for cfg in (space.min_config(), space.max_config(), space.sample(5)):
        a.set_active(cfg)
        calibrate_bn(a, torch.randn(2, 3, 32, 32, generator=g))
        assert not a.training
        with torch.no_grad():
            assert_input_dependent(a(x), min_rel=0.1, max_abs=100)


def test_check_catches_the_default_initialised_supernet() -> None:
    """Why the helpers exist: a freshly built supernet maps every input to the same logits."""
    net = _small().eval()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad(), pytest.raises(AssertionError, match="do not depend on the input"):
        assert_input_dependent(net(x))
