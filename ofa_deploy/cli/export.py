"""``ofa-deploy export onnx|ort|int8|tvm``: build a subnet, export it, validate it, write an artifact directory.

Exit codes: 0 ok, 1 domain error, 2 usage, 3 validation failed (artifacts and report kept).
"""
from __future__ import annotations

import functools
import logging
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ofa_deploy.cli.common import check_model_source, emit, handle_errors
from ofa_deploy.cli.options import (
    format_option,
    net_config_options,
    resolution_option,
    seed_option,
    subnet_option,
    supernet_option,
    weights_option,
)

log = logging.getLogger(__name__)

NO_RECALIBRATION_NOTE = ("a subnet of a supernet checkpoint was exported without BN recalibration: BN statistics are "
                         "shared across subnets, so its accuracy is below what the subnet reaches; pass --data "
                         "imagefolder:PATH (a few hundred training images) to recalibrate before export")


def _remember_data(ctx: click.Context, param: click.Parameter, value: str) -> str:
    from ofa_deploy.cli.inputs import parse_data

    parse_data(value)  # a bad value fails before anything slow
    ctx.meta["ofa_deploy.export.data"] = value
    return value


RANDOM_INIT_NOTE = ("weights are random-init (no --weights given): accuracy is meaningless and the outputs do not "
                    "depend on the input, so the export is validated on a randomised-BN copy (structure only)")


def _source_options(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        supernet_option(required=False, note="with --subnet"),
        subnet_option(),
        weights_option(note="with --net-config: the static net's checkpoint"),
        net_config_options,
        resolution_option(note="overrides the config's"),
        click.option("--data", default="none", show_default=True, metavar="none|digits|imagefolder:PATH",
                     expose_value=False, callback=_remember_data,
                     help="Images to recalibrate BN on before export (supernet subnets): an ImageNet-style folder "
                          "PATH/<class>/<image>, or digits."),
        click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
                     help="Artifact directory to create (must be empty or new unless --overwrite)."),
        click.option("--overwrite", is_flag=True, help="Replace a non-empty --out directory."),
        click.option("--opset", type=int, default=None,
                     help="ONNX opset (default 18; dynamo exporter: 18..20, torchscript: 11..20)."),
        click.option("--exporter", type=click.Choice(["dynamo", "torchscript"]), default=None,
                     help="torch's ONNX exporter (default dynamo, the torch.export-based one; torchscript: the "
                          "classic one, faster to export)."),
        click.option("--no-validate", "no_validate", is_flag=True, help="Skip validation."),
        seed_option(note="the validation inputs are drawn with it"),
        format_option,
    ]
    for opt in reversed(options):
        func = opt(func)
    return func


def _tolerance_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--atol/--rtol: fp32 backends only (int8 is judged by --min-top1, so it does not offer them)."""
    func = click.option("--rtol", type=float, default=1e-3, show_default=True,
                        help="Validation relative tolerance.")(func)
    return click.option("--atol", type=float, default=1e-4, show_default=True,
                        help="Validation absolute tolerance.")(func)


def _refuse_tolerance(ctx: click.Context, param: click.Parameter, value: float | None) -> None:
    if value is not None:
        raise click.UsageError(f"--{param.name} does not apply to int8: an int8 export is judged by top-1 agreement "
                               "with fp32; set --min-top1 instead (--atol/--rtol are for onnx, ort and tvm)", ctx)


def _no_tolerance_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Hidden --atol/--rtol that fail with a usage error saying what int8 is judged by."""
    for name in ("rtol", "atol"):
        func = click.option(f"--{name}", type=float, default=None, hidden=True, expose_value=False,
                            callback=_refuse_tolerance)(func)
    return func


def _export_options(*, no_validate: bool, seed: int, overwrite: bool, info: dict[str, Any] | None,
                    notes: list[str], **more: Any) -> Any:
    """The `ExportOptions` of one command (validation, seed, overwrite, provenance, plus e.g. atol/rtol); a subnet
    of a registry supernet records its weights' preprocessing."""
    from ofa_deploy.compat.released import preprocessing_of
    from ofa_deploy.export.options import ExportOptions

    supernet = (info or {}).get("supernet")
    return ExportOptions(validate=not no_validate, seed=seed, overwrite=overwrite, subnet_info=info,
                         notes=tuple(notes), preprocessing=preprocessing_of(supernet) if supernet else None, **more)


def _onnx_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--onnx", "onnx_path", default=None, type=click.Path(dir_okay=False),
                        help="Start from this .onnx instead of building a model (validated against it).")(func)


def build_model(*, supernet: str | None, subnet: str | None, weights: str | None, net_config: str | None,
                run_config: str | None, resolution: int | None) -> tuple[Any, dict[str, Any], list[str]]:
    """The eval-mode model to export, its provenance (for subnet.json) and notes for the report."""
    check_model_source(supernet=supernet, subnet=subnet, net_config=net_config, run_config=run_config)
    notes: list[str] = []
    if net_config is not None:
        from ofa_deploy.compat.net_config import load_net_config, resolve_resolution
        from ofa_deploy.compat.static_weights import load_static_weights

        res = resolve_resolution(net_config, run_config, resolution)
        model = load_net_config(net_config, run_config, res)
        if weights:
            load_static_weights(model, weights)
        info: dict[str, Any] = {"source": "net_config", "net_config": str(Path(net_config).absolute()),
                                "run_config": str(Path(run_config).absolute()) if run_config else None,
                                "network": model.meta.get("net_config"), "resolution": res}
    else:
        from ofa_deploy.api import create_supernet
        from ofa_deploy.cli.common import parse_subnet

        assert supernet is not None and subnet is not None
        sup = create_supernet(supernet, weights=weights or None).eval()
        cfg = parse_subnet(sup.space, subnet, resolution)
        model = sup.extract(cfg)
        info = {"source": "supernet", "supernet": supernet, "config": cfg.to_dict(), "compact": cfg.to_string(),
                "resolution": cfg.resolution}
        info["bn_recalibration"] = _recalibrate(model, cfg.resolution, weights, notes, supernet)
    info["weights"] = str(Path(weights).absolute()) if weights else None
    if not weights:
        notes.append(RANDOM_INIT_NOTE)
        log.warning(RANDOM_INIT_NOTE)
    model.eval()
    return model, info, notes


def _recalibrate(model: Any, resolution: int, weights: str | None, notes: list[str],
                 supernet: str) -> dict[str, Any] | None:
    """Recalibrate BN on ``--data`` (if given, prepared as the supernet's weights expect); warn when a checkpoint
    subnet goes out without it."""
    from ofa_deploy.cli.inputs import load_data
    from ofa_deploy.compat.released import preprocessing_of

    ctx = click.get_current_context(silent=True)
    spec = ctx.meta.get("ofa_deploy.export.data", "none") if ctx is not None else "none"
    data = load_data(spec, image_size=resolution, preprocessing=preprocessing_of(supernet))
    if data is None:
        if weights:
            notes.append(NO_RECALIBRATION_NOTE)
            log.warning(NO_RECALIBRATION_NOTE)
        return None
    from ofa_deploy.nn.bn import recalibrate_bn

    n = recalibrate_bn(model, data.calibration.batches(resolution, 256))
    return {"images": n, **data.describe()}


def _input_shape(model: Any) -> tuple[int, ...]:
    res = int(model.input_resolution)
    return (1, 3, res, res)


def _human(data: dict[str, Any]) -> str:
    v = data.get("validation") or {}
    status = "not validated" if data["passed"] is None else "PASSED" if data["passed"] else "FAILED"
    lines = [f"{data['backend']} export -> {data['out_dir']}  ({status})"]
    for role, name in data["files"].items():
        lines.append(f"  {role:<18} {name}")
    if v:
        lines.append(f"  validation: {v['message']}")
    if "latency_ms" in data.get("extra", {}):
        lat = data["extra"]["latency_ms"]
        lines.append(f"  latency fp32 {lat['fp32']:.2f} ms, int8 {lat['int8']:.2f} ms "
                     f"(ratio {data['extra']['latency_ratio_int8_over_fp32']:.2f})")
    timings = ", ".join(f"{k} {t:.1f}s" for k, t in data.get("timings_s", {}).items())
    lines.append(f"  timings: {timings}")
    lines += [f"  note: {n}" for n in data.get("notes", [])]
    return "\n".join(lines)


def _finish(report: Any, output_format: str) -> None:
    emit(report.to_dict(), output_format, _human)


def _with_report_on_failure(func: Callable[..., Any]) -> Callable[..., Any]:
    """Print the kept report's location before `handle_errors` maps ValidationFailedError to exit 3."""
    from ofa_deploy.errors import ValidationFailedError

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ValidationFailedError as exc:
            if exc.report is not None and kwargs.get("output_format") == "json":
                emit(exc.report.to_dict(), "json")  # type: ignore[attr-defined]
            raise

    return wrapper


@click.group("export")
def export_group() -> None:
    """Export a subnet to ONNX, ORT format, int8 ONNX or a TVM library, validated against PyTorch."""


@export_group.command("onnx")
@_source_options
@_tolerance_options
@click.option("--slim", is_flag=True, help="Simplify the graph with onnxslim (if installed).")
@click.option("--static-batch", is_flag=True, help="Fix the batch size to 1 instead of a dynamic 'batch' axis.")
@handle_errors
@_with_report_on_failure
def export_onnx_cmd(supernet: str | None, subnet: str | None, weights: str | None, net_config: str | None,
                    run_config: str | None, resolution: int | None, out_dir: str, overwrite: bool, opset: int | None,
                    exporter: str | None,
                    atol: float, rtol: float, no_validate: bool, seed: int, output_format: str, slim: bool,
                    static_batch: bool) -> None:
    """PyTorch → ONNX (torch.export-based exporter by default, BN folded), validated in ONNX Runtime on batch 1
    and 3."""
    from ofa_deploy.export.api import export_model

    onnx_format = _onnx_format(opset, exporter)
    model, info, notes = build_model(supernet=supernet, subnet=subnet, weights=weights, net_config=net_config,
                                     run_config=run_config, resolution=resolution)
    options = _export_options(no_validate=no_validate, seed=seed, overwrite=overwrite, info=info, notes=notes,
                              input_shape=_input_shape(model), atol=atol, rtol=rtol)
    report = export_model(model, out_dir, format="onnx", options=options, dynamic_batch=not static_batch, slim=slim,
                          **onnx_format)
    _finish(report, output_format)


def _onnx_format(opset: int | None, exporter: str | None) -> dict[str, Any]:
    """``--opset``/``--exporter`` with the export options' defaults filled in, checked before anything slow."""
    from ofa_deploy.export.options import DEFAULT_EXPORTER, DEFAULT_OPSET, check_opset

    exporter = exporter or DEFAULT_EXPORTER
    return {"opset": check_opset(DEFAULT_OPSET if opset is None else opset, exporter=exporter), "exporter": exporter}


def _source_onnx(tmp: Path, *, onnx_path: str | None, opset: int | None, exporter: str | None, seed: int,
                 **src: Any) -> tuple[Path, Any, dict[str, Any] | None, list[str]]:
    """(onnx file, torch reference or None, subnet info, notes): a given --onnx, or a fresh validated export."""
    from ofa_deploy.export.onnx import export_onnx

    if onnx_path is not None:
        if any(v is not None for v in src.values()):
            raise click.UsageError("--onnx replaces --supernet/--subnet/--net-config/--weights; pass one or the other")
        return Path(onnx_path), None, {"source": "onnx", "onnx": str(Path(onnx_path).absolute())}, []
    onnx_format = _onnx_format(opset, exporter)
    model, info, notes = build_model(**src)
    rep = export_onnx(model, tmp / "onnx", input_shape=_input_shape(model), seed=seed, **onnx_format,
                      subnet_info=info, notes=notes)
    return rep.path("model"), model, info, notes


def _convert_onnx(fmt: str, source: dict[str, Any], out_dir: str, *, overwrite: bool, output_format: str,
                  no_validate: bool, tolerance: dict[str, float],
                  prepare: Callable[[Path], tuple[dict[str, Any], str]] | None = None, **format_args: Any) -> None:
    """Convert the source ONNX (`source`: the command's source flags, ``--onnx``/``--opset``/``--exporter``/
    ``--seed`` and `_source_options`, as `_source_onnx` takes them) to `fmt` in `out_dir`, validated, and print
    the report. `prepare(onnx file)` gives more `export_model` arguments and a
    note (int8: the calibration inputs); `format_args` go to `export_model` as they are."""
    from ofa_deploy.export.api import export_model
    from ofa_deploy.export.artifacts import check_out_dir

    check_out_dir(out_dir, overwrite=overwrite)
    with tempfile.TemporaryDirectory(prefix="ofa-export-") as tmp:
        src, ref, info, notes = _source_onnx(Path(tmp), **source)
        if prepare is not None:
            more, note = prepare(src)
            format_args.update(more)
            notes = [*notes, note]
        options = _export_options(no_validate=no_validate, seed=source["seed"], overwrite=overwrite, info=info,
                                  notes=notes, **tolerance)
        report = export_model(src, out_dir, format=fmt, options=options, reference=ref, **format_args)
    _finish(report, output_format)


@export_group.command("ort")
@_source_options
@_tolerance_options
@_onnx_option
@click.option("--style", "optimization_style", type=click.Choice(["Fixed", "Runtime"]), default="Fixed",
              show_default=True, help="Fixed: host-specific, fast here. Runtime: portable, for other targets.")
@click.option("--target-platform", type=click.Choice(["amd64", "arm"]), default="amd64", show_default=True)
@handle_errors
@_with_report_on_failure
def export_ort_cmd(out_dir: str, overwrite: bool, output_format: str, no_validate: bool, atol: float, rtol: float,
                   optimization_style: str, target_platform: str, **source: Any) -> None:
    """ONNX → ORT format (.ort) with onnxruntime's converter, validated in ONNX Runtime."""
    _convert_onnx("ort", source, out_dir, overwrite=overwrite, output_format=output_format, no_validate=no_validate,
                  tolerance={"atol": atol, "rtol": rtol},
                  optimization_style=optimization_style, target_platform=target_platform)


@export_group.command("int8")
@_source_options
@_no_tolerance_options
@_onnx_option
@click.option("--calib-batches", type=click.IntRange(min=1), default=8, show_default=True,
              help="Number of seeded random calibration inputs (use real images via the Python API).")
@click.option("--min-top1", type=click.FloatRange(0, 1), default=0.8, show_default=True,
              help="Required top-1 agreement with fp32 on the validation inputs.")
@handle_errors
@_with_report_on_failure
def export_int8_cmd(out_dir: str, overwrite: bool, output_format: str, no_validate: bool, calib_batches: int,
                    min_top1: float, **source: Any) -> None:
    """ONNX → int8 ONNX (static QDQ, per-channel), judged by top-1 agreement (--min-top1); fp32/int8 latency."""
    import numpy as np

    from ofa_deploy.export.common import load_onnx_checked, resolve_input_shape

    def calibrate(src: Path) -> tuple[dict[str, Any], str]:
        shape, _ = resolve_input_shape(load_onnx_checked(src), None)
        calib = np.random.default_rng(source["seed"] + 1).standard_normal((calib_batches, *shape[1:]), dtype=np.float32)
        return {"calibration": calib}, f"calibrated on {calib_batches} seeded random inputs, not real images"

    _convert_onnx("int8", source, out_dir, overwrite=overwrite, output_format=output_format, no_validate=no_validate,
                  tolerance={}, prepare=calibrate, min_top1=min_top1)


@export_group.command("tvm")
@_source_options
@_tolerance_options
@_onnx_option
@click.option("--target", default=None,
              help="TVM target: 'llvm', 'llvm -mcpu=NAME [-num-cores=N]' or JSON dict (default: plain llvm).")
@click.option("--tune-trials", type=click.IntRange(min=0), default=0, show_default=True,
              help="MetaSchedule trials per task (0: untuned; slow: minutes per model even at 8).")
@click.option("--tune-max-tasks", type=click.IntRange(min=1), default=None, help="Tune only the N heaviest tasks.")
@click.option("--tuning-db", default=None, type=click.Path(file_okay=False),
              help="Persistent MetaSchedule database dir: tune once, later builds reuse it.")
@handle_errors
@_with_report_on_failure
def export_tvm_cmd(out_dir: str, overwrite: bool, output_format: str, no_validate: bool, atol: float, rtol: float,
                   target: str | None, tune_trials: int, tune_max_tasks: int | None, tuning_db: str | None,
                   **source: Any) -> None:
    """ONNX → TVM Relax shared library (.so), reloaded in a fresh VM and validated."""
    from ofa_deploy.export.tvm import import_tvm, parse_target

    tgt = parse_target(target)  # reject -mcpu=native before any expensive work
    import_tvm()
    _convert_onnx("tvm", source, out_dir, overwrite=overwrite, output_format=output_format, no_validate=no_validate,
                  tolerance={"atol": atol, "rtol": rtol},
                  target=tgt, tune_trials=tune_trials, tune_max_tasks=tune_max_tasks, tuning_db=tuning_db)
