"""Options and loaders that `search` and `deploy` (and `export`, for data) share: accuracy predictors, latency
tables, per-device budgets, supernet weights, calibration data."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

from ofa_deploy.errors import ConfigError

PREDICTOR_KINDS = ("auto", "mbv3_tutorial", "resnet50")


def predictor_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--predictor PATH (a saved predictor dir or OFA's released .pth), --ofa-predictor FILE, --ofa-predictor-kind."""
    options = [
        click.option("--predictor", "predictor", type=click.Path(exists=True), default=None,
                     help="Accuracy predictor: a directory from `ofa-deploy accuracy train-predictor`, or OFA's "
                          "released weights (.pth, same as --ofa-predictor)."),
        click.option("--ofa-predictor", type=click.Path(exists=True, dir_okay=False), default=None,
                     help="OFA's released accuracy predictor (.pth): the tutorial MBv3 or the ResNet50 one."),
        click.option("--ofa-predictor-kind", type=click.Choice(PREDICTOR_KINDS), default="auto", show_default=True,
                     help="Which OFA predictor the file is (auto: told from its keys)."),
    ]
    for opt in reversed(options):
        func = opt(func)
    return func


def budget_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--latency-budget", "latency_budgets", multiple=True, metavar="[DEVICE=]MS",
        help="Latency upper bound in ms, per device: 'note10=25' (repeatable). A bare number applies to the only "
             "table (search) or to the target profile (deploy).")(func)


def load_accuracy_predictor(supernet: str, predictor: str | None, ofa_predictor: str | None, kind: str,
                            space: Any = None) -> Any:
    """The predictor for `supernet`'s space, restricted to the resolutions it covers (`align_space`)."""
    from ofa_deploy.predictors.accuracy import AccuracyPredictor, load_ofa_predictor
    from ofa_deploy.spaces import get_space

    if predictor is not None and ofa_predictor is not None:
        raise click.UsageError("give one accuracy predictor: --predictor PATH or --ofa-predictor FILE, not both")
    if predictor is None and ofa_predictor is None:
        raise click.UsageError("give an accuracy predictor: --predictor DIR (saved with `ofa-deploy accuracy "
                               "train-predictor`) or --ofa-predictor FILE (OFA's released .pth)")
    space = space if space is not None else get_space(supernet)
    if predictor is not None and Path(predictor).is_dir():
        return AccuracyPredictor.load(predictor, space=space)
    return load_ofa_predictor(Path(ofa_predictor or str(predictor)), kind=kind, space=space)


def parse_budgets(values: Sequence[str]) -> list[tuple[str | None, float]]:
    """``["25", "note10=25"]`` → ``[(None, 25.0), ("note10", 25.0)]``."""
    out: list[tuple[str | None, float]] = []
    for text in values:
        device, _, number = text.rpartition("=")
        try:
            ms = float(number)
        except ValueError:
            raise ConfigError(f"--latency-budget {text!r}: expected milliseconds, e.g. '25' or 'note10=25'") from None
        if not ms > 0:
            raise ConfigError(f"--latency-budget {text!r}: the budget must be > 0 ms")
        out.append((device.strip() or None, ms))
    devices = [d for d, _ in out]
    if len(set(devices)) != len(devices):
        raise ConfigError(f"--latency-budget given twice for the same device: {list(values)}")
    return out


def assign_budgets(budgets: Sequence[tuple[str | None, float]], targets: Sequence[str],
                   default: str | None = None) -> dict[str, float]:
    """Map parsed budgets onto table targets (device/profile names); a bare number goes to `default`, or to the
    only table. Unknown devices and ambiguous bare numbers are errors naming the tables."""
    known = ", ".join(targets) or "none"
    out: dict[str, float] = {}
    for device, ms in budgets:
        if device is None:
            if default is None and len(targets) != 1:
                raise ConfigError(f"--latency-budget {ms:g} is ambiguous with {len(targets)} latency tables "
                                  f"({known}); name the device: --latency-budget {targets[0] if targets else 'DEV'}"
                                  f"={ms:g}")
            device = default or targets[0]
        if device not in targets:
            raise ConfigError(f"--latency-budget {device}={ms:g}: no latency table for {device!r}; the tables are "
                              f"{known}")
        out[device] = ms
    return out


def parse_data(spec: str | None) -> tuple[str, str | None]:
    """``none`` | ``digits`` | ``imagefolder:PATH`` (or a bare directory) → (kind, path)."""
    if spec in (None, "", "none"):
        return "none", None
    if spec == "digits":
        return "digits", None
    path = spec[len("imagefolder:"):] if spec.startswith("imagefolder:") else spec
    if not Path(path).is_dir():
        raise ConfigError(f"--data {spec!r}: expected 'none', 'digits' or 'imagefolder:PATH' with PATH an "
                          "ImageNet-style directory (PATH/<class>/<image>); "
                          f"{path!r} is not a directory")
    return "imagefolder", path


def data_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--data", default="none", show_default=True, metavar="none|digits|imagefolder:PATH",
        help="Images for BN recalibration (and the measured top-1): an ImageNet-style folder PATH/<class>/<image> "
             "(resize + center crop 0.875, ImageNet mean/std; class index = sorted folder order, as ImageNet's "
             "synsets), or scikit-learn's digits.")(func)


def load_data(spec: str | None, *, image_size: int, seed: int = 0, max_per_class: int | None = None,
              preprocessing: Any = None) -> Any:
    """`DataSplits` for ``--data`` (None for ``none``), prepared as `preprocessing` says (the weights' metadata,
    `compat.released.preprocessing_of`; None: OFA's ImageNet evaluation)."""
    kind, path = parse_data(spec)
    if kind == "none":
        return None
    from ofa_deploy.data import load_digits, load_image_folder

    if kind == "digits":
        return load_digits(image_size=image_size, seed=seed, preprocessing=preprocessing)
    return load_image_folder(path, image_size=image_size, seed=seed,  # type: ignore[arg-type]
                             max_per_class=max_per_class, preprocessing=preprocessing)


def load_supernet(name: str, weights: str | None, *, say: Callable[[str], None] | None = None) -> Any:
    """`ofa_deploy.create_supernet(name, weights=weights)` in eval mode, saying so when the weights are random."""
    from ofa_deploy.api import create_supernet

    if weights is None and say is not None:
        say(f"no --weights: {name} has random weights (latency is meaningful, accuracy is not)")
    return create_supernet(name, weights=weights).eval()


__all__ = ["assign_budgets", "budget_option", "data_option", "load_accuracy_predictor", "load_data", "load_supernet",
           "parse_budgets", "parse_data", "predictor_options"]
