"""`ofa-deploy deploy --fleet FLEET.yaml` and `ofa-deploy demo --fleet`: load the fleet's shared inputs once,
run `deploy_fleet`, print the per-device summary."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ofa_deploy.cli.common import emit, say


def _human(d: dict[str, Any]) -> str:
    from ofa_deploy.pipeline.bundle import summary_rows

    ok = sum(1 for r in d["devices"] if r["verified"])
    lines = [f"fleet: {ok} of {len(d['devices'])} device(s) verified under their budgets", *summary_rows(d),
             f"bundle: {d['out_dir']} (manifest.json, summary.md, fleet.png, one directory per device)"]
    return "\n".join(lines)


def _emit(result: Any, output_format: str) -> None:
    emit({**result.manifest, "out_dir": str(result.out_dir), "files": result.files}, output_format, _human)


def run_fleet(path: str, *, out_dir: str, supernet: str | None, weights: str | None, predictor: str | None,
              ofa_predictor: str | None, ofa_predictor_kind: str, data: str | None, seed: int, executor: str,
              address: str | None, resume: bool, output_format: str) -> None:
    """Load the fleet file and its shared inputs (CLI options override the file's), deploy, print."""
    from ofa_deploy.cli.inputs import load_accuracy_predictor, load_data, load_supernet, parse_data
    from ofa_deploy.pipeline.fleet_spec import load_fleet

    spec = load_fleet(path)
    name = supernet or spec.supernet
    if name is None:
        raise click.UsageError(f"{path} names no supernet: add 'supernet: NAME' to it or pass --supernet")
    from ofa_deploy.spaces import get_space

    get_space(name)  # unknown names fail here, with suggestions
    data_spec = data or spec.data
    parse_data(data_spec)
    net = load_supernet(name, weights or spec.weights, say=say)
    pred, ofa_pred = (predictor, ofa_predictor) if (predictor or ofa_predictor) else (spec.predictor,
                                                                                      spec.ofa_predictor)
    acc = load_accuracy_predictor(name, pred, ofa_pred, ofa_predictor_kind, space=net.space)
    splits = load_data(data_spec, image_size=max(acc.space.resolutions), seed=seed)
    _deploy(spec, out_dir, net, acc, splits, name, executor, address, resume, output_format)


def _deploy(spec: Any, out_dir: str, net: Any, acc: Any, splits: Any, name: str, executor: str,
            address: str | None, resume: bool, output_format: str) -> None:
    from ofa_deploy.errors import BudgetNotVerifiedError
    from ofa_deploy.pipeline.fleet import deploy_fleet

    try:
        result = deploy_fleet(spec, out_dir=Path(out_dir), supernet=net, predictor=acc, data=splits,
                              supernet_name=name, executor=executor, address=address, resume=resume, progress=say)
    except BudgetNotVerifiedError as exc:
        _emit(exc.report, output_format)
        raise
    _emit(result, output_format)


def run_demo_fleet(assets: Any, recipe: Any, *, out_dir: str, quick: bool, seed: int, executor: str,
                   resume: bool, output_format: str) -> None:
    """The demo supernet deployed to three devices of this machine, each with its own budget (written to
    ``<out>/fleet.yaml`` first, so the run can be repeated with `ofa-deploy deploy --fleet`)."""
    from ofa_deploy.demo import DEMO_NAME, demo_fleet_file, load_demo_data
    from ofa_deploy.pipeline.fleet_spec import load_fleet

    net = assets.load_supernet()
    predictor = assets.load_predictor()
    fleet_path = demo_fleet_file(assets, Path(out_dir), quick=quick, seed=seed, progress=say)
    say(f"demo fleet file: {fleet_path}")
    _deploy(load_fleet(fleet_path), out_dir, net, predictor, load_demo_data(recipe), DEMO_NAME, executor, None,
            resume, output_format)


__all__ = ["run_demo_fleet", "run_fleet"]
