"""Every space: min, max and seeded random subnets export to ONNX and match PyTorch in ONNX Runtime (fp32)."""
from __future__ import annotations

import json

import onnx
import pytest
import torch

from ofa_deploy.errors import ExportError, ValidationFailedError
from ofa_deploy.export.artifacts import load_report
from ofa_deploy.export.onnx import export_onnx, torch_to_onnx
from ofa_deploy.export.options import DEFAULT_OPSET
from tests.export_helpers import randomize_for_parity
from ofa_deploy.nn.layers import SubnetModel
from ofa_deploy.spaces import get_space, list_spaces

RES = 128
SHAPE = (1, 3, RES, RES)



def _model(space_name: str, which: str | int) -> tuple[SubnetModel, dict]:
    space = get_space(space_name)
    cfg = {"min": space.min_config, "max": space.max_config}[which](RES) if isinstance(which, str) \
        else space.sample(which, RES)
    eps = 1e-3 if space.family == "proxyless" else 1e-5
    model = SubnetModel(space.walk_layers(cfg), bn_eps=eps,
                        meta={"space": space_name, "config": cfg.to_dict()})
    return randomize_for_parity(model, seed=7), cfg.to_dict()


@pytest.mark.parametrize("which", ["min", "max", 11, 12])
@pytest.mark.parametrize("space_name", list_spaces())
def test_subnet_exports_and_validates(space_name, which, tmp_path):
    model, cfg = _model(space_name, which)
    report = export_onnx(model, tmp_path / "out", input_shape=SHAPE, n_inputs=2, atol=1e-4, rtol=1e-3)
    v = report.validation
    assert report.passed and v is not None and v.passed, v.message
    assert v.input_shapes == ((1, 3, RES, RES), (3, 3, RES, RES))  # dynamic batch really used
    assert v.outputs[0].ref_abs_max > 0.1  # logits are O(1): the tolerance means something
    assert v.top1_agreement == 1.0
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["export_report.json", "model.onnx", "subnet.json"]
    assert json.loads((out / "subnet.json").read_text())["config"] == cfg
    loaded = load_report(out)
    assert loaded.passed and loaded.opset == DEFAULT_OPSET and loaded.validation == v
    assert loaded.extra["exporter"] == "dynamo"  # the torch.export-based exporter is the default
    assert loaded.to_dict() == report.to_dict()  # the file round-trips to the returned report


@pytest.mark.parametrize("exporter, opset", [("torchscript", 13), ("dynamo", 18)])
def test_graph_has_no_batchnorm_dynamic_batch_and_caller_model_untouched(exporter, opset, tmp_path):
    model, _ = _model("ofa_mbv3_w10", "min")
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    path = torch_to_onnx(model, tmp_path / "m.onnx", input_shape=SHAPE, opset=opset, exporter=exporter)
    assert model.training and all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    g = onnx.load(str(path))
    ops = {n.op_type for n in g.graph.node}
    assert "BatchNormalization" not in ops and "Conv" in ops
    assert g.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert next(i.version for i in g.opset_import if i.domain in ("", "ai.onnx")) == opset
    static = torch_to_onnx(model, tmp_path / "s.onnx", input_shape=SHAPE, dynamic_batch=False, exporter=exporter,
                           opset=opset)
    assert onnx.load(str(static)).graph.input[0].type.tensor_type.shape.dim[0].dim_value == 1


def test_slim_keeps_outputs(tmp_path):
    pytest.importorskip("onnxslim")
    model, _ = _model("ofa_mbv3_w10", "min")
    report = export_onnx(model, tmp_path / "out", input_shape=SHAPE, slim=True, n_inputs=2)
    assert report.passed and "slim" in report.timings


def test_unknown_opset_and_busy_out_dir_are_clear_errors(tmp_path):
    model, _ = _model("ofa_mbv3_w10", "min")
    with pytest.raises(ExportError, match="opsets 18..20"):
        export_onnx(model, tmp_path / "a", input_shape=SHAPE, opset=21)
    with pytest.raises(ExportError, match="opsets 11..20"):
        export_onnx(model, tmp_path / "a", input_shape=SHAPE, opset=21, exporter="torchscript")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    with pytest.raises(ExportError, match="not empty"):
        export_onnx(model, busy, input_shape=SHAPE)
    assert [p.name for p in busy.iterdir()] == ["keep.txt"]
    assert not (tmp_path / "a").exists()


def test_forced_validation_failure_keeps_artifacts_and_report(tmp_path):
    # ORT and PyTorch genuinely differ by ~1e-7..1e-5 in fp32: a zero tolerance must fail
    model, _ = _model("ofa_mbv3_w10", "min")
    with pytest.raises(ValidationFailedError) as err:
        export_onnx(model, tmp_path / "out", input_shape=SHAPE, atol=0.0, rtol=0.0, n_inputs=2)
    report = err.value.report
    assert report is not None and report.passed is False and report.validation.max_abs > 0
    loaded = load_report(tmp_path / "out")
    assert loaded.passed is False and loaded.validation.max_abs > 0 and not loaded.validation.passed
    assert (tmp_path / "out" / "model.onnx").is_file()
