"""Non-vacuous validation: a random-init OFA subnet (constant outputs) is checked on a randomised-BN copy."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ofa_deploy.errors import ValidationFailedError
from ofa_deploy.export.onnx import export_onnx
from ofa_deploy.export.ort_mobile import export_ort
from ofa_deploy.export.quantize import export_int8
from ofa_deploy.export.structural import randomised_bn_copy
from tests.export_helpers import randomize_for_parity
from ofa_deploy.export.validate import MIN_INPUT_SENSITIVITY, make_inputs
from ofa_deploy.supernets import create_supernet

SHAPE = (1, 3, 64, 64)


def _spread(model: torch.nn.Module) -> float:
    """Relative input sensitivity of `model` measured directly in torch (independent of the validator)."""
    with torch.inference_mode():
        outs = np.concatenate([model(torch.from_numpy(x)).double().numpy() for x in make_inputs(SHAPE, seed=0)])
    return float(np.ptp(outs, axis=0).max() / np.abs(outs).max())


@pytest.fixture(scope="module")
def random_init():
    """A random-init OFA-MBv3 w1.0 subnet at 64x64, exactly as `create_supernet` makes it (seeded: the int8 check
    on its randomised copy compares near-tied logits, so its agreement depends on the draw)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        sup = create_supernet("ofa_mbv3_w10", resolutions=(64,)).eval()
    model = sup.extract(sup.space.min_config(64)).eval()
    assert _spread(model) < 1e-6  # its outputs really are constant
    return model


def test_random_init_subnet_is_validated_on_a_randomised_bn_copy(random_init, tmp_path):
    before = {k: v.clone() for k, v in random_init.state_dict().items()}
    rng_before = torch.random.get_rng_state()
    report = export_onnx(random_init, tmp_path / "o", input_shape=SHAPE)
    assert report.passed and report.validated_on == "randomised-bn copy"
    own, structural = report.model_validation, report.validation
    assert not own.passed and own.constant_outputs and own.input_sensitivity < 1e-6
    assert "do not depend on the input" in own.message
    assert structural.passed and structural.input_sensitivity > 0.1 and "[randomised-bn copy]" in structural.backend
    assert any("validated structurally" in n and "do not depend on the input" in n for n in report.notes)
    on_disk = json.loads((tmp_path / "o" / "export_report.json").read_text())
    assert on_disk["validated_on"] == "randomised-bn copy" and on_disk["model_validation"]["constant_outputs"]
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["export_report.json", "model.onnx", "subnet.json"]
    assert all(torch.equal(before[k], v) for k, v in random_init.state_dict().items())  # caller's model untouched
    assert torch.equal(rng_before, torch.random.get_rng_state())  # no global RNG use


def test_constant_outputs_fail_when_the_structural_check_is_off(random_init, tmp_path):
    with pytest.raises(ValidationFailedError, match="do not depend on the input") as err:
        export_onnx(random_init, tmp_path / "o", input_shape=SHAPE, on_constant_outputs="fail")
    report = err.value.report
    assert report.passed is False and report.validated_on == "model" and report.validation.constant_outputs
    assert json.loads((tmp_path / "o" / "export_report.json").read_text())["passed"] is False


def test_derived_exports_use_the_copy_only_with_a_torch_reference(random_init, tmp_path):
    src = export_onnx(random_init, tmp_path / "onnx", input_shape=SHAPE).path("model")
    ort = export_ort(src, tmp_path / "ort", reference=random_init)
    assert ort.passed and ort.validated_on == "randomised-bn copy" and ort.validation.input_sensitivity > 0.1
    calib = np.random.default_rng(1).standard_normal((4, *SHAPE[1:])).astype(np.float32)
    int8 = export_int8(src, tmp_path / "int8", calibration=calib, reference=random_init, min_top1=0.25,
                       time_runs=1, time_rounds=1)
    assert int8.validated_on == "randomised-bn copy" and int8.model_validation.constant_outputs
    assert int8.passed and int8.validation.top1_agreement >= 0.25 and int8.validation.max_abs > 0
    with pytest.raises(ValidationFailedError, match="pass reference=<torch model>"):
        export_ort(src, tmp_path / "ort_no_ref")  # the source .onnx alone: constants, nothing to randomise


def test_varying_model_is_validated_on_itself(tmp_path):
    sup = create_supernet("ofa_mbv3_w10", resolutions=(64,)).eval()
    model = randomize_for_parity(sup.extract(sup.space.min_config(64)).eval(), seed=4, input_shape=(4, *SHAPE[1:]))
    assert _spread(model) > 0.1  # its outputs really vary
    report = export_onnx(model, tmp_path / "o", input_shape=SHAPE)
    assert report.passed and report.validated_on == "model" and report.model_validation is None
    assert report.validation.input_sensitivity == pytest.approx(_spread(model), rel=1e-3)
    assert report.validation.to_dict()["min_input_sensitivity"] == MIN_INPUT_SENSITIVITY


def test_randomised_bn_copy_is_seeded_varying_and_leaves_the_original(random_init):
    a = randomised_bn_copy(random_init, input_shape=SHAPE, seed=3)
    b = randomised_bn_copy(random_init, input_shape=SHAPE, seed=3)
    c = randomised_bn_copy(random_init, input_shape=SHAPE, seed=4)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert not all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), c.state_dict().values()))
    assert _spread(a) > 0.1 and _spread(random_init) < 1e-6
