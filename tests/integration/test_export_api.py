"""`export_model(source, out_dir, format=...)` builds the same artifacts as the keyword form of each format."""
from __future__ import annotations

import numpy as np
import pytest

from ofa_deploy.errors import ValidationFailedError
from ofa_deploy.export import ExportOptions, export_int8, export_model, export_onnx, export_ort, load_report
from ofa_deploy.nn.layers import SubnetModel
from ofa_deploy.spaces import get_space
from tests.export_helpers import randomize_for_parity

SHAPE = (1, 3, 128, 128)
VOLATILE = {"out_dir", "timings_s", "created"}
#: int8 latencies are measurements: they differ between two runs of the same export
VOLATILE_EXTRA = {"latency_ms", "latency_ratio_int8_over_fp32"}


def comparable(report) -> dict:
    """The report as written, without what differs between two identical exports (paths, times, latencies)."""
    data = {k: v for k, v in load_report(report.out_dir).to_dict().items() if k not in VOLATILE}
    data["extra"] = {k: v for k, v in data["extra"].items() if k not in VOLATILE_EXTRA}
    return data


def assert_same_artifacts(a, b, *, same_bytes: tuple[str, ...], same_outputs: tuple[str, ...] = ()) -> None:
    """Same report, same files; `same_bytes` roles byte-identical, `same_outputs` roles (whose serialisation is
    not deterministic, e.g. the ORT converter's node order) the same size and bit-identical outputs in ORT."""
    from ofa_deploy.export.runners import ort_runner
    from ofa_deploy.export.validate import make_inputs

    assert comparable(a) == comparable(b)
    assert sorted(p.name for p in a.path("report").parent.iterdir()) == \
        sorted(p.name for p in b.path("report").parent.iterdir())
    for role in same_bytes:
        assert a.path(role).read_bytes() == b.path(role).read_bytes(), role
    x = make_inputs(SHAPE, n_inputs=1, seed=9)[0]
    for role in same_outputs:
        assert a.path(role).stat().st_size == b.path(role).stat().st_size, role
        assert np.array_equal(ort_runner(a.path(role))(x)[0], ort_runner(b.path(role))(x)[0]), role


@pytest.fixture(scope="module")
def model():
    space = get_space("ofa_mbv3_w10")
    return randomize_for_parity(SubnetModel(space.walk_layers(space.min_config(128))), seed=3)


@pytest.fixture(scope="module")
def onnx_pair(model, tmp_path_factory):
    root = tmp_path_factory.mktemp("api")
    info = {"space": "ofa_mbv3_w10", "which": "min"}
    wrapped = export_onnx(model, root / "wrapper", input_shape=SHAPE, opset=19, n_inputs=2, subnet_info=info,
                          notes=["n"])
    entry = export_model(model, root / "entry", format="onnx", options=ExportOptions(input_shape=SHAPE, n_inputs=2,
                                                                                subnet_info=info, notes=("n",)),
                   opset=19)
    return wrapped, entry


def test_onnx_entry_point_matches_export_onnx(onnx_pair):
    wrapped, entry = onnx_pair
    assert wrapped.passed and entry.opset == 19 and entry.validation.n_samples == 4
    assert_same_artifacts(wrapped, entry, same_bytes=("model", "subnet"))


def test_ort_entry_point_matches_export_ort(model, onnx_pair, tmp_path):
    src = onnx_pair[0].path("model")
    wrapped = export_ort(src, tmp_path / "wrapper", reference=model, optimization_style="Runtime", n_inputs=2)
    entry = export_model(src, tmp_path / "entry", format="ort", reference=model, optimization_style="Runtime",
                   n_inputs=2)  # an ExportOptions field given as a keyword
    assert entry.passed and entry.extra["optimization_style"] == "Runtime" and entry.extra["reference"] == "pytorch"
    assert_same_artifacts(wrapped, entry, same_bytes=("onnx",), same_outputs=("model",))
    ops = [[ln for ln in r.path("required_operators").read_text().splitlines() if not ln.startswith("#")]
           for r in (wrapped, entry)]  # the comment names the (temporary) source path
    assert ops[0] == ops[1] and any("Conv" in ln for ln in ops[0])


def test_int8_entry_point_matches_export_int8(onnx_pair, tmp_path):
    src = onnx_pair[0].path("model")
    calib = np.random.default_rng(1).standard_normal((4, *SHAPE[1:]), dtype=np.float32)
    kw = {"calibration": calib, "min_top1": 0.5, "time_runs": 1, "time_rounds": 1}
    wrapped = export_int8(src, tmp_path / "wrapper", **kw)
    entry = export_model(src, tmp_path / "entry", format="int8", **kw)
    assert entry.validation.mode == "top1" and entry.validation.n_samples == 4 * 8  # int8's own n_inputs default
    assert entry.extra["latency_ms"]["int8"] > 0
    assert_same_artifacts(wrapped, entry, same_bytes=("model", "onnx"), same_outputs=("model",))


def test_entry_point_failure_keeps_artifacts_like_the_wrapper(model, onnx_pair, tmp_path):
    src = onnx_pair[0].path("model")
    with pytest.raises(ValidationFailedError) as err:
        export_model(src, tmp_path / "strict", format="ort", reference=model, options=ExportOptions(atol=0.0, rtol=0.0))
    assert err.value.report.passed is False and load_report(tmp_path / "strict").passed is False
    assert (tmp_path / "strict" / "model.ort").is_file()
