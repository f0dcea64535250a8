"""`ofa-deploy deploy` (search → extract → export → measure → report) and `ofa-deploy demo` (the same, end
to end, on the embedded demo supernet trained on scikit-learn digits)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ofa_deploy.cli.common import emit, format_option, handle_errors, say


def _stderr(msg: str) -> None:
    say(msg)


def _result_data(result: Any) -> dict[str, Any]:
    r = result.report
    return {"out_dir": str(result.out_dir), "config": result.config.to_string(), "budget": result.budget,
            "predicted": result.predicted, "measured": result.measured,
            "predicted_vs_measured": r["predicted_vs_measured"], "files": result.files, "timings_s": r["timings_s"]}


def _human(d: dict[str, Any]) -> str:
    p, m, b = d["predicted"], d["measured"], d["budget"]
    lo, hi = m["latency_interval_ms"]
    lines = [f"deployed {d['config']}",
             f"  budget   {'verified under budget' if b['verified'] else 'NOT verified under budget'}: "
             f"{b['message']}",
             f"  latency  predicted {p['latency_ms']:.4g} ms | measured {m['latency_ms']:.4g} ms "
             f"(95% interval {lo:.4g}..{hi:.4g}, at {b['reference']}; wall clock now {m['wall_ms']:.4g} ms) "
             f"| budget {b['latency_ms']:.4g} ms"]
    if "top1" in m:
        lines.append(f"  top-1    predicted {p['accuracy']:.2f}% | measured {m['top1']:.2f}% (holdout, exported model)")
    else:
        lines.append(f"  top-1    predicted {p['accuracy']:.2f}%")
    pvm = d["predicted_vs_measured"]
    if pvm.get("n"):
        lines.append(f"  LUT check on {pvm['n']} exported subnets: median measured/predicted "
                     f"{pvm['median_ratio']:.2f}, "
                     f"{pvm['within_25pct']:.0%} within ±25%")
    lines.append(f"  run dir  {d['out_dir']} (report.json, summary.md, pareto.png, model/)")
    return "\n".join(lines)


def _load_supernet(name: str, weights: str | None) -> Any:
    from ofa_deploy.supernets import create_supernet

    if weights is None:
        _stderr(f"no --weights: {name} has random weights (latency is meaningful, accuracy is not)")
        return create_supernet(name).eval()
    path = Path(weights)
    if path.with_suffix(".json").is_file():  # a demo / ofa-deploy supernet with its sidecar
        from ofa_deploy.demo import load_demo_supernet

        return load_demo_supernet(path)
    from ofa_deploy.compat.checkpoint import load_supernet_weights

    return load_supernet_weights(create_supernet(name), path).eval()


def _parse_res(text: str | None) -> tuple[int, ...] | None:
    from ofa_deploy.cli.search import parse_resolutions

    res = parse_resolutions(text)
    return tuple(res) if res else None


@click.command("deploy")
@click.option("--supernet", required=True, help="Registry name (e.g. ofa_mbv3_w12).")
@click.option("--weights", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Supernet weights: an OFA checkpoint, or an ofa-deploy .pt with its .json sidecar.")
@click.option("--predictor", "predictor_dir", type=click.Path(exists=True, file_okay=False), required=True,
              help="Accuracy predictor directory for this supernet (`ofa-deploy accuracy train-predictor`).")
@click.option("--profile", default="ort-cpu-1t", show_default=True, help="Hardware profile name or YAML.")
@click.option("--lut", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Latency table for the profile (default: build one now; small spaces only).")
@click.option("--latency-budget", type=float, default=None, help="ms (default: 35% into the feasible range).")
@click.option("--macs-budget", type=float, default=None, help="Millions of MACs.")
@click.option("--resolutions", default=None, help="'160,176' or '160:224:16'.")
@click.option("--data", type=click.Choice(["none", "digits"]), default="none", show_default=True,
              help="Dataset for BN recalibration and the measured top-1 (digits: scikit-learn's, built in).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True, help="Run directory.")
@click.option("--generations", type=int, default=500, show_default=True)
@click.option("--population", type=int, default=100, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--max-tries", type=int, default=4, show_default=True,
              help="Picks exported and measured at most while verifying the budget on the target.")
@click.option("--allow-foreign-lut", is_flag=True,
              help="Use a latency table measured on another host (refused by default; see `profile check`).")
@format_option
@handle_errors
def deploy_cmd(supernet: str, weights: str | None, predictor_dir: str, profile: str, lut: str | None,
               latency_budget: float | None, macs_budget: float | None, resolutions: str | None, data: str,
               out_dir: str, generations: int, population: int, seed: int, max_tries: int, allow_foreign_lut: bool,
               output_format: str) -> None:
    """Search the best subnet under a budget, export it for the profile's backend, measure it on the target
    against the table's anchor, retry with a tightened budget until one is verified under the budget, report.

    Exit codes: 0 verified under budget, 1 bad input, 3 export validation failed, 4 no pick could be verified
    under the budget (the run dir and report are still written)."""
    from ofa_deploy.pipeline import DeployRequest
    from ofa_deploy.predictors.accuracy import AccuracyPredictor

    net = _load_supernet(supernet, weights)
    predictor = AccuracyPredictor.load(predictor_dir, space=net.space)
    splits = None
    if data == "digits":
        from ofa_deploy.data import load_digits

        splits = load_digits(image_size=max(net.space.resolutions), seed=seed)
    req = DeployRequest(out_dir=Path(out_dir), profile=profile, lut=Path(lut) if lut else None,
                        latency_budget_ms=latency_budget, macs_budget=macs_budget, resolutions=_parse_res(resolutions),
                        generations=generations, population=population, seed=seed, max_tries=max_tries,
                        allow_foreign_lut=allow_foreign_lut)
    _run_and_emit(req, net, predictor, splits, supernet, output_format)


def _run_and_emit(req: Any, net: Any, predictor: Any, splits: Any, name: str, output_format: str,
                  extra: dict[str, Any] | None = None) -> None:
    """Run deploy and print its result; a run whose budget was not verified is printed, then exits 4."""
    from ofa_deploy.errors import BudgetNotVerifiedError
    from ofa_deploy.pipeline import deploy

    try:
        result = deploy(req, supernet=net, predictor=predictor, data=splits, supernet_name=name, progress=_stderr)
    except BudgetNotVerifiedError as exc:
        emit({**_result_data(exc.report), **(extra or {})}, output_format, _human)
        raise
    emit({**_result_data(result), **(extra or {})}, output_format, _human)


@click.command("demo")
@click.option("--quick", is_flag=True, help="Short recipe and search (tests, a first look): about a minute.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="ofa-deploy-demo", show_default=True,
              help="Run directory.")
@click.option("--cache-dir", type=click.Path(file_okay=False), default=None,
              help="Demo cache (default $OFA_DEPLOY_CACHE/demo or ~/.cache/ofa-deploy/demo).")
@click.option("--profile", default="ort-cpu-1t", show_default=True, help="Hardware profile name or YAML.")
@click.option("--latency-budget", type=float, default=None, help="ms (default: 35% into the feasible range).")
@click.option("--seed", type=int, default=0, show_default=True)
@format_option
@handle_errors
def demo_cmd(quick: bool, out_dir: str, cache_dir: str | None, profile: str, latency_budget: float | None,
             seed: int, output_format: str) -> None:
    """Run the whole toolchain on the built-in demo: train (or reuse) a small OFA supernet on digits and its
    accuracy predictor, build a latency table for this machine, search under a budget, export, measure, report."""
    from ofa_deploy.demo import DEMO_NAME, QUICK_RECIPE, DemoRecipe, load_demo_data, prepare_demo_assets
    from ofa_deploy.pipeline import DeployRequest
    from ofa_deploy.profiling.hardware import HardwareProfile

    _stderr("preparing the demo supernet, accuracy dataset and predictor (cached after the first run)")
    assets = prepare_demo_assets(cache_dir, quick=quick, progress=True)
    _stderr(f"demo assets ready: {json.dumps(assets.timings)} (reused: {assets.reused})")
    recipe = QUICK_RECIPE if quick else DemoRecipe()
    prof = HardwareProfile.load(profile)
    if quick:
        settings: dict[str, Any] = {"generations": 60, "population": 40, "pareto_generations": 15, "n_checks": 1,
                                    "timing_rounds": 2, "timing_repeats": 10}
    else:
        settings = {"generations": 500, "population": 100, "pareto_generations": 60, "n_checks": 4}
    req = DeployRequest(out_dir=Path(out_dir), profile=profile, latency_budget_ms=latency_budget, seed=seed,
                        lut_cache=Path(assets.weights).parent / f"lut-{prof.name}-{prof.sha256[:8]}.json", **settings)
    _run_and_emit(req, assets.load_supernet(), assets.load_predictor(), load_demo_data(recipe), DEMO_NAME,
                  output_format, extra={"demo": assets.to_dict()})


__all__ = ["deploy_cmd", "demo_cmd"]
