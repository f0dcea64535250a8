"""Export options: one frozen type for what every format shares, one small frozen type per format.

Every default lives here, once. As in optimum's ``OnnxConfig`` (class-level ``DEFAULT_ONNX_OPSET`` and
``ATOL_FOR_VALIDATION``), each format's options class carries that format's validation defaults as class
constants (`FormatOptions.ATOL`, ``RTOL``, ``N_INPUTS``); `ExportOptions` fields left at None take them
(`ExportOptions.resolve`). A format that is not judged by a tolerance (int8: top-1 agreement) has ``ATOL = None``
and refuses an explicit ``atol``/``rtol`` instead of ignoring it. Torch-free; imports no backend.
"""
from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, ClassVar, Literal

from ofa_deploy.errors import ExportOptionError, unknown_name
from ofa_deploy.preprocessing import Preprocessing

OnConstant = Literal["randomise_bn", "fail"]
ON_CONSTANT: tuple[str, ...] = ("randomise_bn", "fail")

#: opsets the classic exporter emits and ONNX Runtime runs for these models (11 is the oldest tested here;
#: 20 is ``torch.onnx._constants.ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET``).
MIN_OPSET = 11
MAX_OPSET = 20

#: torch's ONNX exporters: "dynamo" (``torch.export``-based, needs onnxscript, writes opset 18 and newer; the default
#: of artifact exports) and "torchscript" (classic, ``dynamo=False``; 4-12x faster to export, so the profiler's
#: hundreds of layer and subnet models keep it, at opset `TORCHSCRIPT_OPSET`)
ONNX_EXPORTERS = ("dynamo", "torchscript")
DEFAULT_EXPORTER = "dynamo"
DYNAMO_MIN_OPSET = 18
DEFAULT_OPSET = 18
TORCHSCRIPT_OPSET = 17

#: ORT format optimization styles and target platforms (see `ofa_deploy.export.ort_mobile`).
ORT_STYLES = ("Fixed", "Runtime")
ORT_PLATFORMS = ("amd64", "arm")


def check_opset(opset: Any, *, exporter: str = DEFAULT_EXPORTER) -> int:
    """Return `opset` if `exporter` supports it, else raise `ExportOptionError` naming the range."""
    if exporter not in ONNX_EXPORTERS:
        raise ExportOptionError(f"unknown ONNX exporter {exporter!r}; expected one of {', '.join(ONNX_EXPORTERS)}")
    low = DYNAMO_MIN_OPSET if exporter == "dynamo" else MIN_OPSET
    if isinstance(opset, bool) or not isinstance(opset, int) or not low <= opset <= MAX_OPSET:
        which = "the dynamo (torch.export) exporter" if exporter == "dynamo" else "the classic torch.onnx exporter"
        raise ExportOptionError(
            f"unsupported ONNX opset {opset!r}: {which} supports opsets {low}..{MAX_OPSET}. Pass --opset/opset= "
            f"within that range (default {DEFAULT_OPSET})."
        )
    return opset


def check_input_shape(input_shape: Any) -> tuple[int, ...]:
    """Validate an NCHW-like input shape and return it as a tuple of positive ints."""
    try:
        shape = tuple(int(s) for s in input_shape)
    except (TypeError, ValueError) as exc:
        raise ExportOptionError(
            f"input_shape must be a sequence of ints such as (1, 3, 224, 224), got {input_shape!r}") from exc
    if len(shape) < 2 or any(s <= 0 for s in shape):
        raise ExportOptionError(
            f"input_shape must have >= 2 positive dims such as (1, 3, 224, 224), got {input_shape!r}")
    return shape


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ExportOptionError(message)


def _check_flags(obj: Any, *names: str) -> None:
    for name in names:
        _check(isinstance(getattr(obj, name), bool), f"{name} must be True or False, got {getattr(obj, name)!r}")


def _tolerance(name: str, value: Any) -> None:
    _check(value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)
                             and math.isfinite(value) and value >= 0),
           f"{name} must be a finite number >= 0 (or None for the format's default), got {value!r}")


@dataclass(frozen=True)
class FormatOptions:
    """Base of the per-format options; the class constants are the format's validation defaults."""

    FORMAT: ClassVar[str] = ""
    ATOL: ClassVar[float | None] = 1e-4
    RTOL: ClassVar[float | None] = 1e-3
    N_INPUTS: ClassVar[int] = 3


@dataclass(frozen=True)
class ExportOptions:
    """What every export format shares: the input, validation, output-directory policy and provenance.

    Attributes:
        input_shape: example input, batch first. Required for ``onnx``; the others read it from the ONNX graph
            (batch 1 when the batch axis is symbolic) unless it is given.
        validate: compare the artifact with its reference after building it.
        atol, rtol: elementwise tolerance ``atol + rtol * |ref|``; None: the format's default (1e-4, 1e-3).
            int8 is judged by top-1 agreement (``min_top1``) and rejects them.
        n_inputs: number of seeded validation inputs; None: the format's default (3; int8: 4 batches).
        seed: seed of the validation inputs (and of the randomised-BN copy of a constant-output model).
        overwrite: replace a non-empty output directory.
        on_constant_outputs: when the reference's outputs do not depend on the input, ``"randomise_bn"`` validates
            the structure on a randomised-BN copy (see `ofa_deploy.export.structural`), ``"fail"`` fails.
        subnet_info: provenance written to ``subnet.json`` (onnx: default the model's ``.meta``).
        notes: lines added to the report.
        preprocessing: how inputs are prepared (`ofa_deploy.preprocessing.Preprocessing`), recorded in
            ``export_report.json`` at the input's side; None: the source export's (ort/int8/tvm from an ofa-deploy
            ONNX export), else OFA's ImageNet evaluation (resize 1/0.875, center crop, bilinear, ImageNet mean/std).
    """

    input_shape: tuple[int, ...] | None = None
    validate: bool = True
    atol: float | None = None
    rtol: float | None = None
    n_inputs: int | None = None
    seed: int = 0
    overwrite: bool = False
    on_constant_outputs: OnConstant = "randomise_bn"
    subnet_info: Mapping[str, Any] | None = None
    notes: tuple[str, ...] = ()
    preprocessing: Preprocessing | None = None

    def __post_init__(self) -> None:
        if self.input_shape is not None:
            object.__setattr__(self, "input_shape", check_input_shape(self.input_shape))
        _check_flags(self, "validate", "overwrite")
        _tolerance("atol", self.atol)
        _tolerance("rtol", self.rtol)
        _check(self.n_inputs is None or (_is_int(self.n_inputs) and self.n_inputs >= 1),
               f"n_inputs must be an int >= 1 (or None for the format's default), got {self.n_inputs!r}")
        _check(_is_int(self.seed) and self.seed >= 0, f"seed must be an int >= 0, got {self.seed!r}")
        _check(self.on_constant_outputs in ON_CONSTANT,
               f"on_constant_outputs must be one of {', '.join(map(repr, ON_CONSTANT))}, "
               f"got {self.on_constant_outputs!r}")
        _check(self.subnet_info is None or isinstance(self.subnet_info, Mapping),
               f"subnet_info must be a JSON-able mapping or None, got {type(self.subnet_info).__name__}")
        _check(not isinstance(self.notes, str) and isinstance(self.notes, Sequence)
               and all(isinstance(n, str) for n in self.notes),
               f"notes must be a sequence of strings (not one string), got {self.notes!r}")
        object.__setattr__(self, "notes", tuple(self.notes))
        _check(self.preprocessing is None or isinstance(self.preprocessing, Preprocessing),
               f"preprocessing must be an ofa_deploy.preprocessing.Preprocessing or None, got "
               f"{type(self.preprocessing).__name__}")

    def resolve(self, fmt: FormatOptions) -> ExportOptions:
        """These options with `fmt`'s validation defaults in place of None (``atol``, ``rtol``, ``n_inputs``).

        Raises:
            ExportOptionError: ``atol``/``rtol`` given for a format that is not judged by a tolerance (int8).
        """
        if fmt.ATOL is None and (self.atol is not None or self.rtol is not None):
            raise ExportOptionError(
                f"{fmt.FORMAT} exports are judged by top-1 agreement with the fp32 model (min_top1, --min-top1), "
                f"not by a tolerance; drop atol/rtol (got atol={self.atol!r}, rtol={self.rtol!r})")
        return replace(self, atol=fmt.ATOL if self.atol is None else self.atol,
                       rtol=fmt.RTOL if self.rtol is None else self.rtol,
                       n_inputs=fmt.N_INPUTS if self.n_inputs is None else self.n_inputs)


@dataclass(frozen=True)
class OnnxOptions(FormatOptions):
    """PyTorch → ONNX: exporter (`ONNX_EXPORTERS`), opset, batch axis, optional onnxslim pass, file name."""

    FORMAT: ClassVar[str] = "onnx"

    opset: int = DEFAULT_OPSET
    dynamic_batch: bool = True
    slim: bool = False
    model_name: str = "model.onnx"
    exporter: str = DEFAULT_EXPORTER

    def __post_init__(self) -> None:
        check_opset(self.opset, exporter=self.exporter)
        _check_flags(self, "dynamic_batch", "slim")
        _check(isinstance(self.model_name, str) and self.model_name.endswith(".onnx")
               and os.path.basename(self.model_name) == self.model_name,
               f"model_name must be a plain file name ending in .onnx, got {self.model_name!r}")


@dataclass(frozen=True)
class OrtOptions(FormatOptions):
    """``.onnx`` → ORT format: optimization style (``Fixed``: host-specific; ``Runtime``: portable) and platform."""

    FORMAT: ClassVar[str] = "ort"

    optimization_style: str = "Fixed"
    target_platform: str = "amd64"
    include_onnx: bool = True

    def __post_init__(self) -> None:
        _check(self.optimization_style in ORT_STYLES,
               f"unknown ORT optimization style {self.optimization_style!r}; expected one of {ORT_STYLES}")
        _check(self.target_platform in ORT_PLATFORMS,
               f"unknown ORT target platform {self.target_platform!r}; expected one of {ORT_PLATFORMS}")
        _check_flags(self, "include_onnx")


@dataclass(frozen=True)
class Int8Options(FormatOptions):
    """``.onnx`` → int8 QDQ ONNX, judged by top-1 agreement with fp32, timed against it.

    Attributes:
        calibration: a few representative batches (see `ofa_deploy.export.quantize.calibration_batches`).
        min_top1: required top-1 agreement with the fp32 reference on the validation inputs.
        validation_batch: batch size of each validation input when the batch axis is dynamic.
        time_runs, time_rounds, threads: latency measurement (batch 1, interleaved rounds).
    """

    FORMAT: ClassVar[str] = "int8"
    ATOL: ClassVar[float | None] = None
    RTOL: ClassVar[float | None] = None
    N_INPUTS: ClassVar[int] = 4

    calibration: Any = field(default=None, compare=False, repr=False)
    per_channel: bool = True
    min_top1: float = 0.8
    validation_batch: int = 8
    time_runs: int = 10
    time_rounds: int = 5
    threads: int = 1
    include_onnx: bool = True

    def __post_init__(self) -> None:
        _check(self.calibration is not None, "int8 export needs calibration data (calibration=...): a few batches "
               "of representative inputs, e.g. 8 training images")
        _check_flags(self, "per_channel", "include_onnx")
        _check(isinstance(self.min_top1, (int, float)) and not isinstance(self.min_top1, bool)
               and 0.0 <= self.min_top1 <= 1.0, f"min_top1 must be a number in [0, 1], got {self.min_top1!r}")
        for name in ("validation_batch", "time_runs", "time_rounds"):
            value = getattr(self, name)
            _check(_is_int(value) and value >= 1, f"{name} must be an int >= 1, got {value!r}")
        _check(_is_int(self.threads) and self.threads >= 0,
               f"threads must be an int >= 0 (0: ORT's default), got {self.threads!r}")


@dataclass(frozen=True)
class TvmOptions(FormatOptions):
    """``.onnx`` → TVM Relax shared library: target and optional MetaSchedule tuning.

    Attributes:
        target: dict, JSON or ``"llvm -mcpu=..."`` string (see `ofa_deploy.export.tvm.parse_target`); None: plain
            ``llvm`` with this host's cores.
        tune_trials: MetaSchedule trials per task (0: untuned; an existing `tuning_db` is still applied).
        tune_max_tasks: tune only the N heaviest tasks (None: all).
        tuning_db: persistent MetaSchedule database directory (default when tuning: inside the artifact).
    """

    FORMAT: ClassVar[str] = "tvm"

    target: str | Mapping[str, Any] | None = None
    tune_trials: int = 0
    tune_max_tasks: int | None = None
    tuning_db: str | os.PathLike[str] | None = None

    def __post_init__(self) -> None:
        _check(self.target is None or isinstance(self.target, (str, Mapping)),
               f"target must be a dict, a JSON string or a string like 'llvm -mcpu=x', got {self.target!r}")
        _check(_is_int(self.tune_trials) and self.tune_trials >= 0,
               f"tune_trials must be an int >= 0, got {self.tune_trials!r}")
        _check(self.tune_max_tasks is None or (_is_int(self.tune_max_tasks) and self.tune_max_tasks >= 1),
               f"tune_max_tasks must be an int >= 1 or None, got {self.tune_max_tasks!r}")
        _check(self.tuning_db is None or isinstance(self.tuning_db, (str, os.PathLike)),
               f"tuning_db must be a directory path or None, got {self.tuning_db!r}")


#: The export formats and their options types.
FORMATS: dict[str, type[FormatOptions]] = {cls.FORMAT: cls for cls in (OnnxOptions, OrtOptions, Int8Options,
                                                                       TvmOptions)}


def option_names(cls: type[Any]) -> tuple[str, ...]:
    """The field names of an options dataclass."""
    return tuple(f.name for f in fields(cls))


def common_options(fmt: FormatOptions, **options: Any) -> ExportOptions:
    """The `ExportOptions` of a keyword form (`export_onnx`, `export_ort`, ...): its ``**options`` are fields of
    `ExportOptions`, any other name is refused with the close matches (`UnknownNameError`)."""
    names = option_names(ExportOptions)
    for name in options:
        if name not in names:
            raise unknown_name(f"{fmt.FORMAT} export option", name, (*names, *option_names(type(fmt))))
    return ExportOptions(**options)
