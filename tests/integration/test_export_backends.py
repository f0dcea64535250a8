"""Derived exports of one small subnet: ORT format (.ort), int8 static QDQ; corrupt inputs give clear errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ofa_deploy.errors import ExportError, ValidationFailedError
from ofa_deploy.export.artifacts import load_report
from ofa_deploy.export.onnx import export_onnx
from ofa_deploy.export.ort_mobile import export_ort
from ofa_deploy.export.quantize import calibration_batches, export_int8
from tests.export_helpers import randomize_for_parity
from ofa_deploy.nn.layers import SubnetModel
from ofa_deploy.spaces import get_space

SHAPE = (1, 3, 128, 128)



@pytest.fixture(scope="module")
def small(tmp_path_factory):
    space = get_space("ofa_mbv3_w10")
    model = randomize_for_parity(SubnetModel(space.walk_layers(space.min_config(128))), seed=3)
    report = export_onnx(model, tmp_path_factory.mktemp("onnx") / "out", input_shape=SHAPE, n_inputs=2)
    return model, report.path("model")


@pytest.fixture()
def corrupt(tmp_path):
    path = tmp_path / "corrupt.onnx"
    path.write_bytes(b"\x08\x07this is not a protobuf model" * 10)
    return path


def test_ort_fixed_validates_against_torch(small, tmp_path):
    model, onnx_path = small
    report = export_ort(onnx_path, tmp_path / "ort", reference=model, n_inputs=2)
    assert report.passed and report.validation.max_abs < 1e-4, report.validation.message
    assert report.validation.input_shapes[1][0] == 3  # dynamic batch survives the conversion
    names = sorted(p.name for p in (tmp_path / "ort").iterdir())
    assert names == ["export_report.json", "model.onnx", "model.ort", "required_operators.config"]
    assert (tmp_path / "ort" / "model.ort").read_bytes()[4:8] == b"ORTM"  # flatbuffer file identifier
    assert load_report(tmp_path / "ort").extra["optimization_style"] == "Fixed"


def test_ort_runtime_style_validates_against_onnx(small, tmp_path):
    _, onnx_path = small
    report = export_ort(onnx_path, tmp_path / "ort", optimization_style="Runtime", include_onnx=False, n_inputs=2)
    assert report.passed and report.extra["reference"].startswith("onnxruntime")
    assert "onnx" not in report.files


def test_int8_reports_agreement_and_latency(small, tmp_path):
    model, onnx_path = small
    calib = [torch.randn(2, *SHAPE[1:], generator=torch.Generator().manual_seed(i)) for i in range(4)]
    report = export_int8(onnx_path, tmp_path / "int8", calibration=calib, min_top1=0.0, n_inputs=2,
                         validation_batch=8, time_runs=3, time_rounds=2)
    v = report.validation
    assert v.mode == "top1" and v.n_samples == 16 and 0.0 <= v.top1_agreement <= 1.0
    assert (v.top1_agreement * v.n_samples).is_integer()  # a fraction of the 16 samples, not a made-up figure
    assert v.max_abs > 0  # int8 is not bit-exact: the comparison really ran on the quantized model
    lat = report.extra["latency_ms"]
    assert lat["fp32"] > 0 and lat["int8"] > 0
    assert report.extra["latency_ratio_int8_over_fp32"] == pytest.approx(lat["int8"] / lat["fp32"])
    assert report.extra["model_bytes"] < 0.5 * report.extra["fp32_bytes"]  # int8 weights
    import onnx

    ops = {n.op_type for n in onnx.load(str(report.path("model"))).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops


def test_int8_below_required_agreement_fails_and_keeps_artifacts(small, tmp_path):
    model, onnx_path = small
    from ofa_deploy.export.validate import torch_runner

    ref = torch_runner(model)
    argmin = lambda x: [-ref(x)[0]]  # noqa: E731 - a reference whose top-1 is the int8 model's bottom-1
    calib = np.random.default_rng(0).standard_normal((2, *SHAPE[1:])).astype(np.float32)
    with pytest.raises(ValidationFailedError) as err:
        export_int8(onnx_path, tmp_path / "int8", calibration=calib, reference=argmin, min_top1=0.5, n_inputs=1,
                    time_runs=1, time_rounds=1)
    assert err.value.report.passed is False and err.value.report.validation.top1_agreement < 0.5
    with pytest.raises(ExportError, match="min_top1"):  # an impossible requirement is refused up front
        export_int8(onnx_path, tmp_path / "int8_bad", calibration=calib, min_top1=1.01)
    assert (tmp_path / "int8" / "model_int8.onnx").is_file() and load_report(tmp_path / "int8").passed is False


def test_calibration_inputs_are_normalised():
    arr = np.zeros((3, 3, 4, 4), dtype=np.float64)
    assert [b.shape for b in calibration_batches(arr)] == [(1, 3, 4, 4)] * 3
    pairs = [(torch.zeros(2, 3, 4, 4), torch.tensor([0, 1]))]
    assert calibration_batches(pairs)[0].dtype == np.float32
    with pytest.raises(ExportError, match="empty"):
        calibration_batches([])
    with pytest.raises(ExportError, match="numeric"):
        calibration_batches([["a", "b"]])
    with pytest.raises(ExportError, match="share one"):
        calibration_batches([np.zeros((1, 3, 4, 4)), np.zeros((1, 3, 5, 5))])


@pytest.mark.parametrize("step", ["ort", "int8"])
def test_corrupt_onnx_is_a_clear_error(step, corrupt, tmp_path):
    with pytest.raises(ExportError, match="not a valid ONNX model"):
        if step == "ort":
            export_ort(corrupt, tmp_path / "out")
        else:
            export_int8(corrupt, tmp_path / "out", calibration=np.zeros((1, 3, 8, 8), np.float32))
    assert not (tmp_path / "out").exists()


def test_missing_onnx_and_bad_style(small, tmp_path):
    with pytest.raises(ExportError, match="does not exist"):
        export_ort(tmp_path / "nope.onnx", tmp_path / "out")
    with pytest.raises(ExportError, match="optimization style"):
        export_ort(small[1], tmp_path / "out", optimization_style="Fast")
    assert not (tmp_path / "out").exists()


def test_forced_failure_with_perturbed_runner_keeps_report(small, tmp_path):
    model, onnx_path = small
    from ofa_deploy.export.validate import torch_runner

    ref = torch_runner(model)
    perturbed = lambda x: [ref(x)[0] + 1e-2]  # noqa: E731 - a reference that disagrees by 1e-2
    with pytest.raises(ValidationFailedError, match="FAILED") as err:
        export_ort(onnx_path, tmp_path / "ort", reference=perturbed, n_inputs=1)
    assert err.value.report.validation.max_abs == pytest.approx(1e-2, rel=1e-2)
    assert (tmp_path / "ort" / "model.ort").is_file() and not load_report(tmp_path / "ort").passed
