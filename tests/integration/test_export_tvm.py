"""TVM: one small subnet per space compiles (untuned), exports a .so, reloads in a fresh VM and validates."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch

pytest.importorskip("tvm")

from ofa_deploy.errors import ExportError  # noqa: E402
from ofa_deploy.export.artifacts import load_report  # noqa: E402
from ofa_deploy.export.onnx import torch_to_onnx  # noqa: E402
from tests.export_helpers import randomize_for_parity  # noqa: E402
from ofa_deploy.export.tvm import export_tvm  # noqa: E402
from ofa_deploy.nn.layers import SubnetModel  # noqa: E402
from ofa_deploy.spaces import get_space, list_spaces  # noqa: E402

pytestmark = pytest.mark.tvm
SHAPE = (1, 3, 128, 128)



@pytest.fixture(scope="module", params=list_spaces())
def built(request, tmp_path_factory):
    """(model, onnx path, report) per space: the min subnet at 128 px, built once per module."""
    space = get_space(request.param)
    eps = 1e-3 if space.family == "proxyless" else 1e-5
    model = randomize_for_parity(SubnetModel(space.walk_layers(space.min_config(128)), bn_eps=eps), seed=5)
    root = tmp_path_factory.mktemp(request.param)
    onnx_path = torch_to_onnx(model, root / "model.onnx", input_shape=SHAPE)
    report = export_tvm(onnx_path, root / "tvm", reference=model, n_inputs=2,
                        subnet_info={"space": request.param, "config": space.min_config(128).to_dict()})
    return model, onnx_path, report


def test_tvm_build_reloads_and_matches_torch(built):
    _, _, report = built
    v = report.validation
    assert report.passed and v.passed, v.message
    assert v.outputs[0].ref_abs_max > 0.1 and v.top1_agreement == 1.0
    assert v.input_shapes[1][0] == 3  # symbolic batch kept in the untuned build
    out = report.path("model").parent
    assert sorted(p.name for p in out.iterdir()) == ["export_report.json", "model.onnx", "model.so", "subnet.json"]
    loaded = load_report(out)
    assert loaded.target["kind"] == "llvm" and loaded.target["num-cores"] >= 1
    assert loaded.extra["tuned"] is False and any("untuned" in n for n in loaded.notes)
    assert loaded.versions["apache-tvm"] and loaded.validation == v


@pytest.mark.parametrize("built", ["ofa_mbv3_w10"], indirect=True)  # reuses that build; one check is enough
def test_library_loads_in_a_fresh_process(built):
    model, _, report = built
    code = ("import numpy as np, sys; from ofa_deploy.export.tvm import tvm_runner; "
            "y = tvm_runner(sys.argv[1])(np.ones((2, 3, 128, 128), np.float32))[0]; print(y.shape, float(y.sum()))")
    out = subprocess.run([sys.executable, "-c", code, str(report.path("model"))], capture_output=True, text=True,
                         timeout=120, check=True).stdout.split()
    with torch.inference_mode():
        ref = model.eval()(torch.ones(2, 3, 128, 128))
    assert out[:2] == ["(2,", "1000)"] and float(out[2]) == pytest.approx(float(ref.sum()), abs=1e-3)


def test_tvm_rejects_native_and_corrupt_input(tmp_path):
    with pytest.raises(ExportError, match="mcpu=native.*detected CPU name"):
        export_tvm(tmp_path / "whatever.onnx", tmp_path / "out", target="llvm -mcpu=native")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"definitely not onnx")
    with pytest.raises(ExportError, match="not a valid ONNX model"):
        export_tvm(bad, tmp_path / "out")
    assert not (tmp_path / "out").exists()




def test_constant_outputs_are_checked_on_a_randomised_bn_copy_or_fail_plainly(tmp_path):
    """A random-init subnet's outputs are constant: the untuned build is checked on a compiled randomised-BN copy."""
    from ofa_deploy.errors import ValidationFailedError
    from ofa_deploy.supernets import create_supernet

    sup = create_supernet("ofa_mbv3_w10", resolutions=(64,)).eval()
    model = sup.extract(sup.space.min_config(64)).eval()
    onnx_path = torch_to_onnx(model, tmp_path / "model.onnx", input_shape=(1, 3, 64, 64))
    report = export_tvm(onnx_path, tmp_path / "tvm", reference=model, n_inputs=2)
    assert report.passed and report.validated_on == "randomised-bn copy"
    assert report.model_validation.constant_outputs and report.model_validation.input_sensitivity < 1e-6
    assert report.validation.input_sensitivity > 0.1 and report.validation.backend == "tvm [randomised-bn copy]"
    with pytest.raises(ValidationFailedError, match="do not depend on the input") as err:
        export_tvm(onnx_path, tmp_path / "tvm_fail", reference=model, n_inputs=2, on_constant_outputs="fail")
    assert err.value.report.validation.constant_outputs and err.value.report.passed is False


@pytest.mark.parametrize("built", ["ofa_mbv3_w10"], indirect=True)  # one small case: a TVM build is slow
def test_entry_point_matches_export_tvm(built, tmp_path):
    import numpy as np

    from ofa_deploy.export import ExportOptions, export_model
    from ofa_deploy.export.tvm import tvm_runner
    from ofa_deploy.export.validate import make_inputs
    from tests.integration.test_export_api import comparable

    model, onnx_path, wrapped = built
    options = ExportOptions(n_inputs=2, subnet_info=wrapped.subnet)
    entry = export_model(onnx_path, tmp_path / "entry", format="tvm", options=options, reference=model, target=None)
    assert entry.passed and comparable(entry) == comparable(wrapped)
    assert sorted(p.name for p in (tmp_path / "entry").iterdir()) == \
        sorted(p.name for p in wrapped.path("model").parent.iterdir())
    x = make_inputs(SHAPE, n_inputs=1, seed=9)[0]
    assert np.array_equal(tvm_runner(entry.path("model"))(x)[0], tvm_runner(wrapped.path("model"))(x)[0])
