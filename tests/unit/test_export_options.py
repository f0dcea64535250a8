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
    """The keyword forms repeat no default of their own: each equals ExportOptions' (resolved) or the format's."""
    cls = FORMATS[fmt]
    resolved = ExportOptions().resolve(cls(calibration=[0]) if cls is Int8Options else cls())
    fmt_defaults = {f: p.default for f, p in inspect.signature(cls).parameters.items()}
    params = inspect.signature(WRAPPERS[fmt]).parameters
    checked = 0
    for name, param in params.items():
        if param.default is inspect.Parameter.empty or name == "reference":
            continue
        if name in option_names(ExportOptions):
            expected = getattr(resolved, name)
            if name == "notes":
                expected = tuple(expected)
                assert tuple(param.default) == expected, name
            else:
                assert param.default == expected, (fmt, name, param.default, expected)
        else:
            assert name in fmt_defaults, f"{fmt}: keyword {name} is neither an ExportOptions nor a {cls.__name__} field"
            assert param.default == fmt_defaults[name], (fmt, name)
        checked += 1
    assert checked >= 9
    wrapper_names = set(params) - {"onnx_path", "onnx_path_or_model", "model", "out_dir", "reference"}
    assert set(option_names(cls)) <= wrapper_names  # every format option is reachable from the keyword form


def test_int8_has_other_validation_defaults_and_no_tolerance():
    assert ExportOptions().resolve(Int8Options(calibration=[0])).n_inputs == 4
    assert ExportOptions().resolve(OnnxOptions()).n_inputs == 3
    assert "atol" not in inspect.signature(export_int8).parameters
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
    (OnnxOptions, {"opset": 21}, "opsets 11..20"), (OnnxOptions, {"model_name": "../m.onnx"}, "model_name"),
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
