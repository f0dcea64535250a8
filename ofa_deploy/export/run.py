"""The one tail every export format shares: stage, build, validate, write the report, publish or raise.

A format supplies two things: its `ExportReport` (what it is about to build) and a ``build(staged)`` callable that
writes the artifact files into the staging directory and returns how to check them (a `Check`, made only when
validating). `export_and_publish` does the rest the same way for every format: the validation with the
structural fallback for constant outputs (`ofa_deploy.export.structural.validate_into`), the report files, the
atomic publish, and `ValidationFailedError` with the artifacts kept when the check fails.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ofa_deploy.errors import ConfigError
from ofa_deploy.export.artifacts import REPORT_NAME, ExportReport, finish, raise_if_failed, staging_dir
from ofa_deploy.export.options import ONNX_EXPORTERS, ExportOptions
from ofa_deploy.export.structural import Rebuild, validate_into
from ofa_deploy.export.validate import Runner
from ofa_deploy.fileio import is_regular_file, read_json_file
from ofa_deploy.preprocessing import OFA_IMAGENET, Preprocessing

log = logging.getLogger(__name__)


@dataclass
class Check:
    """How to validate one staged artifact.

    Attributes:
        runner: the artifact under test (numpy in → outputs).
        reference: torch module or runner giving the expected outputs.
        inputs: the validation inputs.
        backend: label of the runner in the report.
        rebuild: rebuilds the artifact from a torch module for the structural check (None: not supported).
        criteria: keyword arguments of `validate_runner` (``atol``/``rtol``, or ``mode="top1"``/``min_top1``).
        reference_name: recorded as ``extra["reference"]`` (None: not recorded).
        after: extra measurements once validated (int8: latency against fp32).
    """

    runner: Runner
    reference: Any
    inputs: Sequence[np.ndarray]
    backend: str
    rebuild: Rebuild | None = None
    criteria: Mapping[str, Any] = field(default_factory=dict)
    reference_name: str | None = None
    after: Callable[[], None] | None = None


def export_and_publish(report: ExportReport, options: ExportOptions,
                       build: Callable[[Path], Callable[[], Check]]) -> ExportReport:
    """Build into a staging dir next to ``report.out_dir``, validate if asked, write the report, publish.

    Raises:
        ValidationFailedError: the check failed; the artifacts and the report are published anyway and the
            report is attached as ``err.report``.
    """
    out = Path(report.out_dir)
    with staging_dir(out, overwrite=options.overwrite) as staged:
        make_check = build(staged)
        if options.validate:
            t0 = time.perf_counter()
            check = make_check()
            validate_into(report, check.reference, check.runner, inputs=check.inputs, backend=check.backend,
                          seed=options.seed, rebuild=check.rebuild, on_constant_outputs=options.on_constant_outputs,
                          **check.criteria)
            report.timings["validate"] = time.perf_counter() - t0
            if check.reference_name is not None:
                report.extra["reference"] = check.reference_name
            if check.after is not None:
                check.after()
        finish(report, staged, out)
        raise_if_failed(report, out)
    return report


def new_report(backend: str, out: Path, options: ExportOptions, *, files: dict[str, str],
               input_shape: tuple[int, ...], subnet: Mapping[str, Any] | None, source: Path | None = None,
               **fields: Any) -> ExportReport:
    """An `ExportReport` with the fields every format fills the same way.

    Its preprocessing is `options.preprocessing`, else that of the export `source` came from (the
    ``export_report.json`` beside a source ONNX), else OFA's ImageNet evaluation; always at the input's side.
    """
    preprocessing = options.preprocessing or source_preprocessing(source) or OFA_IMAGENET
    return ExportReport(backend=backend, out_dir=str(out), files=files, passed=None, input_shape=input_shape,
                        subnet=dict(subnet) if subnet is not None else None, notes=list(options.notes),
                        preprocessing=preprocessing.at(input_shape[-1]).to_dict(), **fields)


def source_report(source: Path | None) -> dict[str, Any]:
    """The export report beside a source ONNX as a dict ({} when there is none or it cannot be read)."""
    if source is None or not is_regular_file(Path(source).parent / REPORT_NAME):
        return {}
    try:
        data = read_json_file(Path(source).parent / REPORT_NAME, what="export report")
    except ConfigError as exc:
        log.warning("ignoring the export report beside %s: %s", source, exc)
        return {}
    return data if isinstance(data, dict) else {}


def source_preprocessing(source: Path | None) -> Preprocessing | None:
    """The preprocessing recorded in the export report beside `source` (None: no report, or none recorded)."""
    record = source_report(source).get("preprocessing")
    try:
        return Preprocessing.from_dict(record) if record is not None else None
    except ConfigError as exc:
        log.warning("ignoring the preprocessing of %s: %s", source, exc)
        return None


def source_exporter(source: Path | None) -> str:
    """The exporter that wrote a source ONNX, from the export report beside it; "torchscript" when unrecorded
    (exports before the exporter was recorded, and hand-made files)."""
    extra = source_report(source).get("extra")
    exporter = extra.get("exporter") if isinstance(extra, dict) else None
    return exporter if exporter in ONNX_EXPORTERS else "torchscript"
