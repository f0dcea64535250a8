"""ONNX → TVM 0.27 Relax → shared library, reloaded in a fresh VirtualMachine and validated.

Targets are given as dicts (TVM 0.27 rejects CLI strings with flags) and wrapped in `tvm.target.Target`.
A string such as ``"llvm -mcpu=skylake-avx512 -num-cores=4"`` (hardware profile, user) is parsed into that dict.
``-mcpu=native`` is rejected: LLVM 22 in TVM silently falls back to ``generic`` for it; use the detected name.
Untuned TVM builds are naive (no conv schedules): never report their latency as "TVM speed".
"""
from __future__ import annotations

import json
import logging
import os
import shlex
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ofa_deploy import hostinfo
from ofa_deploy.errors import BackendUnavailableError, ExportError
from ofa_deploy.export.artifacts import ExportReport, check_out_dir
from ofa_deploy.export.common import load_onnx_checked, onnx_input_shape, reference_for, resolve_input_shape, timed
from ofa_deploy.export.onnx import export_copy_onnx
from ofa_deploy.export.options import ExportOptions, TvmOptions, common_options
from ofa_deploy.export.run import Check, export_and_publish, new_report, source_exporter
from ofa_deploy.export.structural import Rebuild
from ofa_deploy.export.validate import make_inputs

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'apache-tvm==0.27.*' 'apache-tvm-ffi==0.1.14.post1'"
TUNING_HINT = "pip install psutil cloudpickle xgboost-cpu"


def import_tvm() -> Any:
    """Import tvm or raise `BackendUnavailableError` with the install command."""
    try:
        import tvm
        from tvm import relax  # noqa: F401
    except ImportError as exc:
        raise BackendUnavailableError(f"TVM is not installed ({exc}); install it with `{INSTALL_HINT}`") from exc
    return tvm


def detected_cpu() -> str:
    """LLVM's name for this host CPU (e.g. ``emeraldrapids``)."""
    tvm = import_tvm()
    return str(tvm.target.codegen.llvm_get_system_cpu())


def default_target(*, mcpu: bool = False, num_cores: int | None = None) -> dict[str, Any]:
    """The default host target dict: ``{"kind": "llvm", "num-cores": N}`` (+ ``mcpu`` of this CPU if `mcpu`).

    Plain ``llvm`` is the default because untuned code built with the detected ``mcpu`` measured slower here
    (see benchmarks/bench_export.py); pass ``mcpu=True`` or an explicit target to specialise.
    """
    tgt: dict[str, Any] = {"kind": "llvm"}
    if mcpu:
        tgt["mcpu"] = detected_cpu()
    tgt["num-cores"] = int(num_cores or hostinfo.read_host().cores)
    return tgt


def parse_target(target: str | dict[str, Any] | None, *, num_cores: int | None = None) -> dict[str, Any]:
    """Normalise a target given as None, a dict, a JSON string, or a TVM CLI string into the dict form.

    ``"llvm -mcpu=x -mattr=+avx2,+fma -num-cores=2"`` → ``{"kind": "llvm", "mcpu": "x", "mattr": ["+avx2", "+fma"],
    "num-cores": 2}``. ``num-cores`` defaults to the machine's logical CPUs (MetaSchedule needs it).
    """
    if target is None:
        return default_target(num_cores=num_cores)
    if isinstance(target, dict):
        tgt = dict(target)
    elif isinstance(target, str):
        text = target.strip()
        if text.startswith("{"):
            try:
                tgt = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ExportError(f"target {target!r} is not valid JSON: {exc}") from exc
        else:
            try:
                tokens = shlex.split(text)
            except ValueError as exc:
                raise ExportError(f"cannot parse target {target!r}: {exc}") from exc
            if not tokens or tokens[0].startswith("-"):
                raise ExportError(f"target {target!r} must start with a kind such as 'llvm'")
            tgt = {"kind": tokens[0]}
            for tok in tokens[1:]:
                if not tok.startswith("-") or "=" not in tok:
                    raise ExportError(f"cannot parse target option {tok!r} in {target!r}; expected -key=value "
                                      "(e.g. 'llvm -mcpu=skylake-avx512 -num-cores=4')")
                key, value = tok.lstrip("-").split("=", 1)
                if key in ("mattr", "libs", "keys"):
                    tgt[key] = [v for v in value.split(",") if v]
                elif key == "num-cores":
                    if not value.isdigit() or int(value) < 1:
                        raise ExportError(f"target option -num-cores={value} in {target!r} must be a positive int")
                    tgt[key] = int(value)
                else:
                    tgt[key] = value
    else:
        raise ExportError(f"target must be a dict, a JSON string or a string like 'llvm -mcpu=x', got {target!r}")
    if "kind" not in tgt:
        raise ExportError(f"target {target!r} has no 'kind' (e.g. 'llvm')")
    if str(tgt.get("mcpu", "")).lower() == "native":
        cpu = _safe_detected_cpu()
        raise ExportError(
            "target -mcpu=native is not supported: TVM's LLVM silently falls back to -mcpu=generic for it. "
            f"Use the detected CPU name instead: mcpu={cpu!r} (e.g. --target 'llvm -mcpu={cpu}')."
        )
    if tgt["kind"] == "llvm":
        tgt.setdefault("num-cores", int(num_cores or hostinfo.read_host().cores))
    return tgt


def _safe_detected_cpu() -> str:
    try:
        return detected_cpu()
    except BackendUnavailableError:
        return "<cpu name from `llc --version` / tvm.target.codegen.llvm_get_system_cpu()>"


def tvm_runner(lib_path: str | os.PathLike[str]) -> Any:
    """Load an exported ``.so`` into a fresh Relax VirtualMachine; return a numpy runner."""
    import numpy as np

    tvm = import_tvm()
    from tvm import relax

    lib = tvm.runtime.load_module(str(lib_path))
    vm = relax.VirtualMachine(lib, tvm.cpu())
    fn = vm["main"]

    def run(x: np.ndarray) -> list[np.ndarray]:
        out = fn(tvm.runtime.tensor(np.ascontiguousarray(x, dtype=np.float32)))
        if hasattr(out, "numpy"):
            return [out.numpy()]
        return [o.numpy() for o in out]

    run.vm = vm  # type: ignore[attr-defined]
    return run


def export_tvm(
    onnx_path_or_model: str | os.PathLike[str] | Any,
    out_dir: str | os.PathLike[str],
    *,
    target: str | dict[str, Any] | None = None,
    input_shape: Sequence[int] | None = None,
    tune_trials: int = 0,
    tune_max_tasks: int | None = None,
    tuning_db: str | os.PathLike[str] | None = None,
    reference: Any = None,
    **options: Any,
) -> ExportReport:
    """Compile an ONNX model with TVM Relax to ``model.so``, reload it in a fresh VM and validate it.

    The keyword form of ``export_model(onnx_path, out_dir, format="tvm", ...)`` (see
    `ofa_deploy.export.api.export_model`).

    Args:
        onnx_path_or_model: ``.onnx`` path or an ``onnx.ModelProto``.
        target: dict, JSON, or ``"llvm -mcpu=..."`` string (see `parse_target`); default `default_target()`.
        input_shape: concrete input shape (default: from the graph, batch 1). Untuned builds keep a dynamic batch
            if the ONNX has one; tuned builds are static at this shape.
        tune_trials: MetaSchedule trials per task (0: no tuning; an existing `tuning_db` is still applied).
        tune_max_tasks: tune only the heaviest N tasks (None: all).
        tuning_db: persistent MetaSchedule database directory (tune once, rebuild from it later). Default when
            tuning: ``<out_dir>/tuning_db`` inside the artifact.
        reference: torch module/runner to validate against; default the source ONNX in ORT. If its outputs do not
            depend on the input (random-init supernet) and it is a torch module, an untuned build validates the
            structure on a randomised-BN copy compiled the same way (see `ofa_deploy.export.structural`); a tuned
            build (tuning the copy would double the slow part) or an ONNX-only reference fails with a message
            saying so.
        on_constant_outputs: ``"randomise_bn"`` (the structural check above) or ``"fail"``.
        **options: fields of `ExportOptions` (validate, atol, rtol, n_inputs, seed, overwrite, on_constant_outputs,
            subnet_info, notes); left out, the format's defaults.

    Raises:
        BackendUnavailableError: TVM (or tuning dependencies) missing.
        ExportError: bad target (e.g. ``-mcpu=native``), corrupt ONNX, compile failure, non-empty out dir.
        ValidationFailedError: outputs differ; artifacts and report are kept.
    """
    fmt = TvmOptions(target=target, tune_trials=tune_trials, tune_max_tasks=tune_max_tasks, tuning_db=tuning_db)
    return run_tvm(onnx_path_or_model, out_dir, common_options(fmt, input_shape=input_shape, **options), fmt,
                   reference=reference)


def run_tvm(onnx_path_or_model: str | os.PathLike[str] | Any, out_dir: str | os.PathLike[str],
            options: ExportOptions, fmt: TvmOptions, *, reference: Any = None) -> ExportReport:
    """`export_tvm` with its options as the two option objects (what `export` calls for ``format="tvm"``)."""
    options = options.resolve(fmt)
    tgt_dict = parse_target(dict(fmt.target) if isinstance(fmt.target, Mapping) else fmt.target)
    tvm = import_tvm()
    from tvm import relax
    from tvm.relax.frontend.onnx import from_onnx

    if isinstance(onnx_path_or_model, (str, os.PathLike)):
        src: Path | None = Path(onnx_path_or_model)
        proto = load_onnx_checked(src)
    else:
        src, proto = None, onnx_path_or_model
    shape, dynamic = resolve_input_shape(proto, options.input_shape)
    _, input_name = onnx_input_shape(proto)
    db_dir = Path(fmt.tuning_db).expanduser().absolute() if fmt.tuning_db is not None else None
    tuned = fmt.tune_trials > 0 or (db_dir is not None and _has_db(db_dir))
    if fmt.tune_trials > 0:
        _check_tuning_deps()
    out = check_out_dir(out_dir, overwrite=options.overwrite)
    try:
        tgt = tvm.target.Target(tgt_dict)
    except Exception as exc:
        raise ExportError(f"TVM rejected target {tgt_dict}: {exc}") from exc
    report = new_report("tvm", out, options, files={"model": "model.so"}, input_shape=shape,
                        subnet=options.subnet_info, source=src, target=tgt_dict, dynamic_batch=dynamic and not tuned,
                        extra={"tuned": tuned, "source_onnx": str(src) if src else None})
    if not tuned:
        report.notes.append("untuned TVM build (naive schedules): its latency is not representative of TVM")

    def build(staged: Path) -> Callable[[], Check]:
        import onnx

        onnx.save(proto, str(staged / "model.onnx"))
        report.files["onnx"] = "model.onnx"
        shape_dict = None if (dynamic and not tuned) else {input_name: list(shape)}
        try:
            mod, report.timings["import"] = timed(lambda: from_onnx(proto, shape_dict=shape_dict))
        except Exception as exc:
            raise ExportError(f"TVM could not import the ONNX model: {exc}") from exc
        if tuned:
            from ofa_deploy.export import tvm_tuning

            mod = relax.get_pipeline("zero")(mod)
            db_path = db_dir or (staged / "tuning_db")
            (database, info), report.timings["tune"] = timed(lambda: tvm_tuning.tune(
                mod, tgt, db_dir=db_path, trials_per_task=fmt.tune_trials, max_tasks=fmt.tune_max_tasks,
                seed=options.seed))
            report.extra["tuning"] = {**info, "database": str(db_dir) if db_dir else "tuning_db"}
            mod = tvm_tuning.apply_database(mod, tgt, database)
            if db_dir is None:
                report.files["tuning_db"] = "tuning_db"
        try:
            ex, report.timings["compile"] = timed(lambda: tvm.compile(mod, target=tgt))
            _, report.timings["export_library"] = timed(lambda: ex.export_library(str(staged / "model.so")))
        except Exception as exc:
            raise ExportError(f"TVM compile/export for target {tgt_dict} failed: {exc}") from exc
        report.extra["model_bytes"] = (staged / "model.so").stat().st_size

        def check() -> Check:
            runner = tvm_runner(staged / "model.so")  # reloaded from disk: validates the shipped artifact
            ref, ref_name = reference_for(reference, src if src else staged / "model.onnx")
            inputs = make_inputs(shape, n_inputs=options.n_inputs, seed=options.seed,
                                 dynamic_batch=report.dynamic_batch)
            rebuild = None if tuned else untuned_rebuild(tgt, shape, dynamic=report.dynamic_batch,
                                                         opset=next(_opsets(proto), None),
                                                         exporter=source_exporter(src))
            return Check(runner=runner, reference=ref, inputs=inputs, backend="tvm", rebuild=rebuild,
                         criteria={"atol": options.atol, "rtol": options.rtol}, reference_name=ref_name)

        return check

    return export_and_publish(report, options, build)


def untuned_rebuild(tgt: Any, shape: tuple[int, ...], *, dynamic: bool, opset: int | None,
                    exporter: str = "torchscript") -> Rebuild:
    """Rebuild for the structural check: torch copy → ONNX → untuned Relax build → ``.so`` → fresh VM runner."""

    def rebuild(model: Any, where: Path) -> Any:
        import onnx
        from tvm.relax.frontend.onnx import from_onnx

        tvm = import_tvm()
        proto = onnx.load(str(export_copy_onnx(model, where, input_shape=shape, opset=opset, dynamic_batch=dynamic,
                                               exporter=exporter)))
        _, name = onnx_input_shape(proto)
        mod = from_onnx(proto, shape_dict=None if dynamic else {name: list(shape)})
        tvm.compile(mod, target=tgt).export_library(str(where / "model.so"))
        return tvm_runner(where / "model.so")

    return rebuild


def _opsets(proto: Any) -> Any:
    return (int(i.version) for i in proto.opset_import if i.domain in ("", "ai.onnx"))


def _has_db(db_dir: Path) -> bool:
    from ofa_deploy.export.tvm_tuning import database_has_records

    return database_has_records(db_dir)


def _check_tuning_deps() -> None:
    import importlib.util

    missing = [m for m in ("psutil", "cloudpickle") if importlib.util.find_spec(m) is None]
    if missing:
        raise BackendUnavailableError(f"MetaSchedule tuning needs {', '.join(missing)}; install with `{TUNING_HINT}`")
