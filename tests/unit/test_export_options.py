"""Export options: one set of defaults, validated up front; `export_model()` routes keywords, refuses unknown ones."""
from __future__ import annotations

import inspect

import pytest

from ofa_deploy.errors import ConfigError, ExportError, ExportOptionError, UnknownNameError
from ofa_deploy.export import (
    FORMATS,
    ExportOptions,
    Int8Options,
    OnnxOptions,
    OrtOptions,
    TvmOptions,
    export_int8,
    export_model,
    export_onnx,
    export_ort,
    export_tvm,
)
from ofa_deploy.export.options import option_names

WRAPPERS = {"onnx": export_onnx, "ort": export_ort, "int8": export_int8, "tvm": export_tvm}


def test_each_format_has_one_options_type_and_one_wrapper():
    assert set(FORMATS) == set(WRAPPERS) == {"onnx", "ort", "int8", "tvm"}
    assert not set(option_names(ExportOptions)) & {n for cls in FORMATS.values() for n in option_names(cls)}


@pytest.mark.parametrize("fmt", sorted(WRAPPERS))
def test_wrapper_defaults_are_the_options_defaults(fmt):
    """The keyword forms repeat no default of their own: the format's keywords equal its options' defaults, and the
    shared ones (`ExportOptions`, but the input shape) are not in their signatures at all: they pass ``**options``."""
    cls = FORMATS[fmt]
    fmt_defaults = {f: p.default for f, p in inspect.signature(cls).parameters.items()}
    params = inspect.signature(WRAPPERS[fmt]).parameters
    assert params["options"].kind is inspect.Parameter.VAR_KEYWORD
    assert set(params) & set(option_names(ExportOptions)) == {"input_shape"}
    for name, param in params.items():
        if name in ("reference", "input_shape", "options") or param.default is inspect.Parameter.empty:
            continue
        assert name in fmt_defaults, f"{fmt}: keyword {name} is neither an ExportOptions nor a {cls.__name__} field"
        assert param.default == fmt_defaults[name], (fmt, name)
    wrapper_names = set(params) - {"onnx_path", "onnx_path_or_model", "model", "out_dir", "reference"}
    assert set(option_names(cls)) <= wrapper_names  # every format option is reachable from the keyword form


@pytest.mark.parametrize("fmt", sorted(WRAPPERS))
def test_keyword_forms_refuse_unknown_options_with_suggestions(fmt, tmp_path):
    required = {"onnx": {"input_shape": (1, 3, 8, 8)}, "int8": {"calibration": [0]}}.get(fmt, {})
    with pytest.raises(UnknownNameError, match="'atoll'.*Did you mean 'atol'"):
        WRAPPERS[fmt]("model.onnx", tmp_path / "o", atoll=0.1, **required)
    assert not (tmp_path / "o").exists()


def test_int8_has_other_validation_defaults_and_no_tolerance():
    assert ExportOptions().resolve(Int8Options(calibration=[0])).n_inputs == 4
    assert ExportOptions().resolve(OnnxOptions()).n_inputs == 3
    assert "atol" not in inspect.signature(export_int8).parameters
    with pytest.raises(ExportOptionError, match="drop atol/rtol"):
        export_int8("model.onnx", "out", calibration=[0], atol=0.1)
    with pytest.raises(ExportOptionError, match="top-1 agreement.*drop atol/rtol"):
        ExportOptions(atol=1e-3).resolve(Int8Options(calibration=[0]))
    with pytest.raises(ExportOptionError, match="drop atol/rtol"):
        export_model("model.onnx", "out", format="int8", calibration=[0], rtol=0.1)


@pytest.mark.parametrize("kwargs, match", [
    ({"input_shape": (1, 0, 8, 8)}, "input_shape"), ({"input_shape": "abc"}, "input_shape"),
    ({"atol": -1.0}, "atol"), ({"rtol": float("inf")}, "rtol"), ({"atol": True}, "atol"),
    ({"n_inputs": 0}, "n_inputs"), ({"seed": -1}, "seed"), ({"seed": 1.5}, "seed"),
    ({"validate": "no"}, "validate"), ({"on_constant_outputs": "ignore"}, "on_constant_outputs"),
    ({"notes": "one string"}, "notes"), ({"subnet_info": ["x"]}, "subnet_info"),
])
def test_bad_export_options_are_config_and_export_errors(kwargs, match):
    with pytest.raises(ExportOptionError, match=match) as err:
        ExportOptions(**kwargs)
    assert isinstance(err.value, ConfigError) and isinstance(err.value, ExportError)


@pytest.mark.parametrize("cls, kwargs, match", [
    (OnnxOptions, {"opset": 21}, "dynamo .*opsets 18..20"), (OnnxOptions, {"opset": 17}, "dynamo .*opsets 18..20"),
    (OnnxOptions, {"opset": 21, "exporter": "torchscript"}, "classic .*opsets 11..20"),
    (OnnxOptions, {"exporter": "fx"}, "unknown ONNX exporter 'fx'"),
    (OnnxOptions, {"model_name": "../m.onnx"}, "model_name"),
    (OrtOptions, {"optimization_style": "Fast"}, "optimization style"),
    (OrtOptions, {"target_platform": "riscv"}, "target platform"),
    (Int8Options, {}, "calibration"), (Int8Options, {"calibration": [0], "min_top1": 1.01}, "min_top1"),
    (Int8Options, {"calibration": [0], "threads": -1}, "threads"),
    (TvmOptions, {"tune_trials": -1}, "tune_trials"), (TvmOptions, {"target": 5}, "target"),
])
def test_bad_format_options(cls, kwargs, match):
    with pytest.raises(ExportOptionError, match=match):
        cls(**kwargs)


def test_options_are_frozen_and_normalised():
    opts = ExportOptions(input_shape=[1, 3, 8, 8], notes=["a"])
    assert opts.input_shape == (1, 3, 8, 8) and opts.notes == ("a",)
    with pytest.raises(AttributeError):
        opts.seed = 3  # type: ignore[misc]


def test_export_refuses_unknown_formats_and_options_with_suggestions(tmp_path):
    with pytest.raises(UnknownNameError, match="'onxx'.*Did you mean 'onnx'"):
        export_model(object(), tmp_path / "o", format="onxx")
    with pytest.raises(UnknownNameError, match="'opest'.*Did you mean 'opset'"):
        export_model(object(), tmp_path / "o", format="onnx", opest=13)
    with pytest.raises(UnknownNameError, match="'calibration'"):  # an int8 option is not an ort option
        export_model("m.onnx", tmp_path / "o", format="ort", calibration=[0])
    with pytest.raises(ExportOptionError, match="reference= is for ort/int8/tvm"):
        export_model(object(), tmp_path / "o", format="onnx", reference=object(), input_shape=(1, 3, 8, 8))
    with pytest.raises(ExportOptionError, match="needs input_shape"):
        export_model(object(), tmp_path / "o", format="onnx")
    assert not (tmp_path / "o").exists()
