"""The shared validator: pass/fail rules, error figures, top-1 mode, shapes — with plain numpy runners."""
from __future__ import annotations

import numpy as np
import pytest

from ofa_deploy.export.validate import make_inputs, validate_runner


def _linear(seed: int = 0):
    w = np.random.default_rng(seed).standard_normal((12, 10)).astype(np.float32)
    return lambda x: x.reshape(x.shape[0], -1)[:, :12] @ w


def test_make_inputs_alternates_batch_and_is_seeded():
    a = make_inputs((1, 3, 8, 8), n_inputs=3, seed=4)
    b = make_inputs((1, 3, 8, 8), n_inputs=3, seed=4)
    assert [x.shape for x in a] == [(1, 3, 8, 8), (3, 3, 8, 8), (1, 3, 8, 8)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], make_inputs((1, 3, 8, 8), n_inputs=1, seed=5)[0])
    assert [x.shape[0] for x in make_inputs((2, 3, 8, 8), n_inputs=2, dynamic_batch=False)] == [2, 2]


def test_identical_runner_passes_with_zero_error():
    ref = _linear()
    res = validate_runner(ref, ref, inputs=make_inputs((1, 12), n_inputs=3), atol=0.0, rtol=0.0, backend="same")
    assert res.passed and res.max_abs == 0.0 and res.top1_agreement == 1.0
    assert res.n_samples == 5 and res.input_shapes == ((1, 12), (3, 12), (1, 12))
    assert res.to_dict()["outputs"][0]["shape"] == [10]


def test_perturbed_runner_fails_and_reports_the_error():
    ref = _linear()
    res = validate_runner(ref, lambda x: ref(x) + 1e-3, inputs=make_inputs((1, 12)), atol=1e-4, rtol=0.0)
    assert not res.passed
    assert res.max_abs == pytest.approx(1e-3, rel=1e-3)
    assert "FAILED" in res.message
    # the same perturbation is inside a looser tolerance
    assert validate_runner(ref, lambda x: ref(x) + 1e-3, inputs=make_inputs((1, 12)), atol=2e-3, rtol=0.0).passed


def test_relative_tolerance_scales_with_reference():
    ref = _linear()
    res = validate_runner(ref, lambda x: ref(x) * (1 + 5e-4), inputs=make_inputs((1, 12)), atol=0.0, rtol=1e-3)
    assert res.passed and res.max_rel == pytest.approx(5e-4, rel=1e-2)


def test_top1_mode_passes_on_agreement_not_atol():
    ref = _linear()
    noisy = lambda x: ref(x) * 1.05 + 0.01  # noqa: E731 - order-preserving: argmax unchanged, values off
    res = validate_runner(ref, noisy, inputs=make_inputs((8, 12), dynamic_batch=False), mode="top1", min_top1=1.0)
    assert res.passed and res.top1_agreement == 1.0 and res.max_abs > 1e-3
    flipped = validate_runner(ref, lambda x: -ref(x), inputs=make_inputs((8, 12), dynamic_batch=False),
                              mode="top1", min_top1=0.5)
    assert not flipped.passed and flipped.top1_agreement < 0.5


def test_shape_mismatch_and_nan_fail():
    ref = _linear()
    bad_shape = validate_runner(ref, lambda x: ref(x)[:, :5], inputs=make_inputs((1, 12)), atol=1.0)
    assert not bad_shape.passed and "shape" in bad_shape.message
    nan = validate_runner(ref, lambda x: ref(x) * np.nan, inputs=make_inputs((1, 12)), atol=1.0)
    assert not nan.passed and "non-finite" in nan.message


def test_torch_reference_does_not_touch_callers_model():
    torch = pytest.importorskip("torch")
    model = torch.nn.Sequential(torch.nn.Linear(12, 10), torch.nn.BatchNorm1d(10)).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}

    def run(x):
        return [model.eval()(torch.from_numpy(x)).detach().numpy()]

    model.train()
    res = validate_runner(model, lambda x: [np.asarray(run(x)[0])], inputs=make_inputs((2, 12), n_inputs=2), atol=1e-6)
    assert res.passed
    model.train()
    validate_runner(model, lambda x: run(x), inputs=make_inputs((2, 12), n_inputs=1), atol=1e-6)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_constant_reference_fails_with_a_clear_message_even_when_the_backend_agrees():
    const = np.linspace(-0.01, 0.02, 10, dtype=np.float32)
    ref = lambda x: np.tile(const, (x.shape[0], 1)) + 1e-9 * x[:, :10]  # noqa: E731 - input moves it by ~1 ulp
    res = validate_runner(ref, ref, inputs=make_inputs((1, 12)), atol=0.0, rtol=0.0, backend="ort")
    assert not res.passed and res.constant_outputs and res.max_abs == 0.0 and res.top1_agreement == 1.0
    assert res.input_sensitivity is not None and 0 < res.input_sensitivity < 1e-6
    assert "do not depend on the input" in res.message and "randomised BN" in res.message
    assert res.to_dict()["constant_outputs"] is True and res.to_dict()["input_sensitivity"] == res.input_sensitivity
    # the same holds in top-1 mode (int8): agreement on constant logits is trivially 1.0
    top1 = validate_runner(ref, ref, inputs=make_inputs((8, 12), dynamic_batch=False), mode="top1", min_top1=0.5)
    assert not top1.passed and top1.constant_outputs and top1.top1_agreement == 1.0
    # the check can be switched off explicitly
    assert validate_runner(ref, ref, inputs=make_inputs((1, 12)), min_input_sensitivity=0.0).passed


def test_varying_reference_passes_and_records_its_input_sensitivity():
    ref = _linear()
    inputs = make_inputs((1, 12), n_inputs=3)
    outs = np.concatenate([ref(x) for x in inputs])
    assert np.ptp(outs, axis=0).max() > 0.5  # the outputs really vary across the inputs
    res = validate_runner(ref, ref, inputs=inputs, atol=0.0, rtol=0.0)
    assert res.passed and not res.constant_outputs
    expected = np.ptp(outs.astype(np.float64), axis=0).max() / np.abs(outs).max()
    assert res.input_sensitivity == pytest.approx(expected, rel=1e-6) and res.input_sensitivity > 1e-3
    assert "input sensitivity" in res.message and res.to_dict()["min_input_sensitivity"] == 1e-3


def test_single_sample_sensitivity_is_not_measured():
    ref = _linear()
    res = validate_runner(ref, ref, inputs=make_inputs((1, 12), n_inputs=1))
    assert res.passed and res.input_sensitivity is None and "not measured" in res.message


def test_bad_arguments_raise_the_projects_errors():
    from ofa_deploy.errors import OfaDeployError

    with pytest.raises(OfaDeployError, match="at least one input"):
        validate_runner(_linear(), _linear(), inputs=[])
    with pytest.raises(OfaDeployError, match="mode"):
        validate_runner(_linear(), _linear(), inputs=make_inputs((1, 12)), mode="exact")  # type: ignore[arg-type]
    with pytest.raises(OfaDeployError, match="callable"):
        validate_runner(42, _linear(), inputs=make_inputs((1, 12)))
    with pytest.raises(OfaDeployError, match="n_inputs"):
        make_inputs((1, 12), n_inputs=0)


@pytest.mark.parametrize("kwargs, match", [
    ({"atol": -1e-4}, "atol"), ({"rtol": float("nan")}, "rtol"), ({"atol": "1e-4"}, "atol"),
    ({"min_top1": 1.5}, "min_top1"), ({"mode": "top1", "min_top1": "all"}, "min_top1"),
])
def test_bad_tolerances_are_config_errors(kwargs, match):
    from ofa_deploy.errors import ConfigError

    with pytest.raises(ConfigError, match=match):
        validate_runner(_linear(), _linear(), inputs=make_inputs((1, 12)), **kwargs)


@pytest.mark.parametrize("shape", [("a", 12), (1,), (1, 0), None])
def test_bad_input_shapes_are_config_errors(shape):
    from ofa_deploy.errors import ConfigError

    with pytest.raises(ConfigError, match="input_shape"):
        make_inputs(shape)


def test_a_crashing_runner_is_an_export_error_naming_the_backend_and_input():
    from ofa_deploy.errors import ExportError

    def static_batch_1(x):
        if x.shape[0] != 1:
            raise RuntimeError("Got invalid dimensions for input: index 0 Got: 3 Expected: 1")
        return _linear()(x)

    with pytest.raises(ExportError, match=r"onnxruntime failed on validation input 1 of shape \(3, 12\).*Expected: 1"):
        validate_runner(_linear(), static_batch_1, inputs=make_inputs((1, 12)), backend="onnxruntime")
