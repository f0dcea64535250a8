"""`ofa-deploy accuracy`: build accuracy datasets, train and query accuracy predictors, train the demo."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ofa_deploy.cli.common import emit, handle_errors
from ofa_deploy.cli.options import (
    format_option,
    resolution_option,
    seed_option,
    subnet_option,
    supernet_option,
    weights_option,
)
from ofa_deploy.errors import ConfigError
from ofa_deploy.fileio import is_regular_file
from ofa_deploy.scale.cli import executor_options, make_executor


def _int_list(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {text!r}") from None


def _load_supernet(name: str | None, weights: str) -> tuple[Any, str]:
    """A supernet with weights (`ofa_deploy.create_supernet`) and its name: a demo checkpoint (sidecar JSON beside
    it) or a registry supernet + a weights file."""
    from ofa_deploy.api import create_supernet
    from ofa_deploy.demo import DEMO_NAME

    path = Path(weights)
    if not is_regular_file(path):
        raise ConfigError(f"--weights file not found (or not a regular file): {path}")
    demo = is_regular_file(path.with_suffix(".json"))
    if not name and not demo:
        raise click.UsageError("--supernet is required unless --weights is a demo checkpoint (with its .json sidecar)")
    return create_supernet(name, weights=path).eval(), name or DEMO_NAME


@click.group("accuracy")
def accuracy_group() -> None:
    """Accuracy datasets (BN-recalibrated top-1 of sampled subnets) and accuracy predictors."""


@accuracy_group.command("build-dataset")
@supernet_option(required=False, dest="supernet_name", note="optional for demo weights (their sidecar names it)")
@weights_option(required=True, note="here a file (its sha256 is recorded)")
@click.option("--data", "data_spec", required=True, help="'digits' or an ImageFolder-style directory.")
@click.option("--n-subnets", type=int, required=True, help="Distinct architectures to sample.")
@click.option("--resolutions", help="Comma-separated resolutions (default: all of the space).")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Output JSON-lines file.")
@click.option("--resume", is_flag=True, help="Continue an existing file, skipping stored subnets.")
@seed_option()
@click.option("--calibration-size", type=int, default=2000, show_default=True, help="BN recalibration images.")
@click.option("--holdout-fraction", type=float, default=0.3, show_default=True)
@click.option("--max-per-class", type=int, help="Cap images per class of an ImageFolder directory.")
@click.option("--max-items", type=int, help="Stop after this many new measurements (time-boxed runs).")
@click.option("--threads", type=int, default=1, show_default=True, help="torch intra-op threads.")
@click.option("--progress/--no-progress", default=True, help="Progress bar on stderr.")
@executor_options
@format_option
@handle_errors
def build_dataset_cmd(supernet_name: str | None, weights: str, data_spec: str, n_subnets: int, resolutions: str | None,
                      out: str, resume: bool, seed: int, calibration_size: int, holdout_fraction: float,
                      max_per_class: int | None, max_items: int | None, threads: int, progress: bool,
                      executor_kind: str, workers: int | None, ray_address: str | None, output_format: str) -> None:
    """Measure top-1 of sampled subnets × resolutions after BN recalibration (resumable)."""
    from ofa_deploy.compat.released import preprocessing_of
    from ofa_deploy.fileio import file_sha256
    from ofa_deploy.data import load_dataset
    from ofa_deploy.predictors.dataset import build_accuracy_dataset
    from ofa_deploy.predictors.training import torch_threads

    with torch_threads(threads):
        supernet, name = _load_supernet(supernet_name, weights)
        res = _int_list(resolutions) or list(supernet.space.resolutions)
        data = load_dataset(data_spec, image_size=max(res), seed=seed, holdout_fraction=holdout_fraction,
                            calibration_size=calibration_size, max_per_class=max_per_class,
                            preprocessing=preprocessing_of(name))
        with make_executor(executor_kind, workers, ray_address) as executor:
            summary = build_accuracy_dataset(supernet, data, out, n_subnets=n_subnets, resolutions=res, seed=seed,
                                             resume=resume, supernet_name=name, weights_sha256=file_sha256(weights),
                                             progress=progress, max_items=max_items, executor=executor)
    emit(summary.to_dict(), output_format,
         lambda s: (f"{s['path']}: {s['n_stored_before'] + s['n_evaluated']}/{s['n_items']} subnets "
                    f"({s['n_evaluated']} measured now, {s['seconds']:.1f}s); top-1 "
                    f"{s['top1_min']:.4f} / {s['top1_median']:.4f} / {s['top1_max']:.4f} (min/median/max)"))


@accuracy_group.command("train-predictor")
@click.option("--dataset", "dataset_path", required=True, type=click.Path(dir_okay=False),
              help="Accuracy dataset (JSON lines).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output predictor directory.")
@click.option("--encoder", "encoder_name", help="Encoder name (default: the OFA nas encoder of the space); its "
              "resolution slots are the resolutions in the dataset.")
@seed_option()
@click.option("--max-epochs", type=int, default=400, show_default=True)
@click.option("--patience", type=int, default=40, show_default=True)
@format_option
@handle_errors
def train_predictor_cmd(dataset_path: str, out: str, encoder_name: str | None, seed: int, max_epochs: int,
                        patience: int, output_format: str) -> None:
    """Train OFA's MLP predictor (split by architecture); print held-out RMSE, Kendall tau, baseline."""
    from ofa_deploy.spaces import space_from_dict
    from ofa_deploy.predictors.dataset import load_accuracy_dataset
    from ofa_deploy.predictors.training import encoder_for_data, train_predictor

    data = load_accuracy_dataset(dataset_path)
    space = space_from_dict(data.header.get("space"))
    encoder = encoder_for_data(space, data.configs, encoder_name)
    predictor, report = train_predictor(encoder, data.configs, data.accuracies, seed=seed, max_epochs=max_epochs,
                                        patience=patience,
                                        meta={"dataset": str(dataset_path), "supernet": data.header.get("supernet"),
                                              "weights_sha256": data.header.get("weights_sha256")})
    predictor.save(out)
    result = {"predictor": str(out), **report.to_dict()}
    emit(result, output_format,
         lambda r: (f"{r['predictor']}: held-out RMSE {r['test_rmse']:.3f} top-1 points (mean-only baseline "
                    f"{r['test_baseline_rmse']:.3f}), Kendall tau {r['test_kendall_tau']:.3f}, "
                    f"{r['n_test']} held-out subnets"))


@accuracy_group.command("predict")
@click.option("--predictor", "predictor_dir", type=click.Path(file_okay=False), help="Predictor directory.")
@click.option("--ofa-predictor", type=click.Path(dir_okay=False), help="OFA's released predictor .pth.")
@click.option("--kind", type=click.Choice(["auto", "resnet50", "mbv3_tutorial"]), default="auto", show_default=True,
              help="Which OFA predictor --ofa-predictor is (auto: told from its keys).")
@subnet_option(required=True, multiple=True, note="repeatable")
@resolution_option()
@format_option
@handle_errors
def predict_cmd(predictor_dir: str | None, ofa_predictor: str | None, kind: str, subnets: tuple[str, ...],
                resolution: int | None, output_format: str) -> None:
    """Predicted top-1 of subnets."""
    from ofa_deploy.cli.common import parse_subnet
    from ofa_deploy.predictors.accuracy import AccuracyPredictor, load_ofa_predictor

    if (predictor_dir is None) == (ofa_predictor is None):
        raise click.UsageError("give exactly one of --predictor DIR or --ofa-predictor PATH")
    predictor = (AccuracyPredictor.load(predictor_dir) if predictor_dir
                 else load_ofa_predictor(ofa_predictor, kind=kind))
    cfgs = [parse_subnet(predictor.space, s, resolution) for s in subnets]  # max/min: within its resolutions
    acc = predictor.predict(cfgs)
    rows = [{"subnet": c.to_string(), "resolution": c.resolution, "top1": float(a)} for c, a in zip(cfgs, acc)]
    emit({"space": predictor.space.name, "encoder": predictor.encoder.name, "predictions": rows}, output_format,
         lambda d: "\n".join(f"{r['top1'] * 100:6.2f}%  {r['subnet']}" for r in d["predictions"]))


@accuracy_group.command("train-demo")
@click.option("--cache-dir", type=click.Path(file_okay=False), help="Default: $OFA_DEPLOY_CACHE/demo.")
@click.option("--quick", is_flag=True, help="A much shorter recipe (smoke tests).")
@click.option("--progress/--no-progress", default=True, help="Progress bars on stderr.")
@format_option
@handle_errors
def train_demo_cmd(cache_dir: str | None, quick: bool, progress: bool, output_format: str) -> None:
    """Train (or reuse) the demo supernet on digits, build its accuracy dataset, train its predictor."""
    from ofa_deploy.demo import prepare_demo_assets

    assets = prepare_demo_assets(cache_dir, quick=quick, progress=progress)
    data = assets.to_dict()
    emit(data, output_format, lambda d: json.dumps(d, indent=2))
