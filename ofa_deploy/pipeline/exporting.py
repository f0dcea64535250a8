"""Step 3, export: extract a pick, recalibrate its BN statistics, export it to ONNX, measure the exported model's
top-1, and convert it to the device's format (``ort``, ``int8``, ``tvm``) through `ofa_deploy.export.export`.

The first half (`export_subnet`) depends on the subnet and the input shape only, so a fleet does it once per
distinct subnet and converts the result for every device that picked it (`export_for_device`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ofa_deploy.errors import ConfigError
from ofa_deploy.spaces.config import SubnetConfig

#: the export formats each timing backend runs (eager torch times modules, not exported files)
BACKEND_FORMATS: dict[str, tuple[str, ...]] = {"onnxruntime": ("onnx", "ort", "int8"), "tvm": ("tvm",)}


@dataclass(frozen=True)
class SubnetArtifact:
    """An extracted, BN-recalibrated subnet exported to ONNX, with the exported model's holdout top-1.

    Attributes:
        model: the recalibrated torch module (the reference of further conversions).
        onnx: the exported ``model.onnx``; its directory is the artifact.
        report: the ONNX export report (``ExportReport.to_dict()``).
        top1: top-1 (%) of the exported model on the holdout in ONNX Runtime (None without data).
    """

    config: SubnetConfig
    shape: tuple[int, ...]
    model: Any
    onnx: Path
    report: dict[str, Any]
    bn_images: int
    top1: float | None


@dataclass(frozen=True)
class ExportedPick:
    """A pick ready to time on a device: the file timed (`timed`) in the device's `format`, and the directories
    to publish as its model.

    Attributes:
        report: the ONNX export report, or ``{"onnx": ..., "<format>": ...}`` when converted further.
        artifact_dirs: (directory, suffix) pairs: the ONNX artifact (suffix "") and the converted one
            (suffix ``"_tvm"``, ``"_ort"``, ``"_int8"``).
    """

    subnet: SubnetArtifact
    format: str
    timed: Path
    report: dict[str, Any]
    artifact_dirs: tuple[tuple[Path, str], ...]

    @property
    def config(self) -> SubnetConfig:
        return self.subnet.config

    @property
    def shape(self) -> tuple[int, ...]:
        return self.subnet.shape

    @property
    def top1(self) -> float | None:
        return self.subnet.top1


def profile_format(profile: Any) -> str:
    """The format a single deploy exports for `profile`: ``tvm`` for TVM profiles, else ``onnx``."""
    return "tvm" if profile.backend == "tvm" else "onnx"


def check_format(profile: Any, fmt: str, *, where: str = "") -> None:
    """Refuse a format the profile's backend cannot run, naming the formats it can."""
    from ofa_deploy.errors import unknown_name
    from ofa_deploy.export.options import FORMATS

    if fmt not in FORMATS:
        raise unknown_name(f"{where}export format", fmt, FORMATS)
    runs = BACKEND_FORMATS.get(profile.backend, ())
    if fmt not in runs:
        hint = (f"use one of {', '.join(runs)} with it, or a profile whose backend runs {fmt}" if runs else
                "eager PyTorch times torch modules, not exported files: use an onnxruntime or tvm profile")
        raise ConfigError(f"{where}format {fmt!r} cannot run on profile {profile.name} (backend {profile.backend}); "
                          f"{hint}")
    if getattr(profile, "precision", "fp32") == "int8" and fmt != "int8":
        raise ConfigError(f"{where}format {fmt!r} is not int8, and profile {profile.name} runs int8 models; use "
                          "format int8, or a profile of the precision you export")


def export_subnet(supernet: Any, cfg: SubnetConfig, data: Any, out_dir: Path, *, batch_size: int,
                  validate: bool) -> SubnetArtifact:
    """Extract `cfg`, recalibrate BN on `data`'s calibration split, export to ONNX in `out_dir`, and measure the
    exported model's top-1 on the holdout (when `data` is given)."""
    from ofa_deploy.export.onnx import export_onnx
    from ofa_deploy.nn.bn import recalibrate_bn

    model = supernet.extract(cfg).eval()
    n_calib = 0
    if data is not None:
        n_calib = recalibrate_bn(model, data.calibration.batches(cfg.resolution, 256))
    shape = (int(batch_size), 3, cfg.resolution, cfg.resolution)
    report = export_onnx(model, out_dir, input_shape=shape, validate=validate, overwrite=True,
                         subnet_info={"supernet": supernet.space.name, "config": cfg.to_dict(),
                                      "config_string": cfg.to_string()})
    onnx_path = report.path("model")
    top1 = 100.0 * onnx_top1(onnx_path, data, cfg.resolution) if data is not None else None
    return SubnetArtifact(config=cfg, shape=shape, model=model, onnx=onnx_path, report=report.to_dict(),
                          bn_images=n_calib, top1=top1)


def export_for_device(subnet: SubnetArtifact, fmt: str, out_dir: Path, profile: Any, *, data: Any = None,
                      validate: bool = True) -> ExportedPick:
    """`subnet` in format `fmt` for `profile`: the ONNX itself, or converted into ``<out_dir>_<fmt>``."""
    from ofa_deploy.export.api import export_model

    if fmt == "onnx":
        return ExportedPick(subnet=subnet, format=fmt, timed=subnet.onnx, report=subnet.report,
                            artifact_dirs=((subnet.onnx.parent, ""),))
    target = out_dir.parent / f"{out_dir.name}_{fmt}"
    options: dict[str, Any] = {"input_shape": subnet.shape, "validate": validate, "overwrite": True}
    if fmt == "tvm":
        options["target"] = profile.tvm_target
    if fmt == "int8":
        if data is None:
            raise ConfigError("an int8 export needs calibration data; pass data (e.g. --data digits)")
        options["calibration"] = [images.numpy() for images, _ in
                                  data.calibration.batches(subnet.config.resolution, subnet.shape[0])][:16]
    report = export_model(subnet.onnx, target, format=fmt, reference=subnet.model, **options)
    return ExportedPick(subnet=subnet, format=fmt, timed=report.path("model"),
                        report={"onnx": subnet.report, fmt: report.to_dict()},
                        artifact_dirs=((subnet.onnx.parent, ""), (target, f"_{fmt}")))


def timed_file(pick: ExportedPick) -> Path:
    """The file the profile's backend prepares: TVM profiles compile the exported ONNX with the profile's target
    (as the export did); ONNX Runtime times the shipped file (``.onnx``, ``.ort``, int8 ``.onnx``)."""
    return pick.subnet.onnx if pick.format == "tvm" else pick.timed


def onnx_top1(onnx_path: Path, data: Any, resolution: int) -> float:
    """Top-1 (fraction) of an exported model on `data`'s holdout, run through the export runners (ORT, 1 thread)."""
    from ofa_deploy.export.runners import ort_runner

    run = ort_runner(onnx_path, threads=1)
    correct = total = 0
    for images, labels in data.holdout.batches(resolution, 256):
        logits = run(images.numpy())[0]
        correct += int((logits.argmax(axis=1) == labels.numpy()).sum())
        total += int(labels.shape[0])
    return correct / max(total, 1)


__all__ = ["BACKEND_FORMATS", "ExportedPick", "SubnetArtifact", "check_format", "export_for_device",
           "export_subnet", "onnx_top1", "profile_format", "timed_file"]
