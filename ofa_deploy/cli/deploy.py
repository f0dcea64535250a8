"""`ofa-deploy deploy` (search → extract → export → measure → report) and `ofa-deploy demo` (the same, end
to end, on the embedded demo supernet trained on scikit-learn digits)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ofa_deploy.cli.common import emit, handle_errors, say
from ofa_deploy.cli.inputs import (
    budget_option,
    data_option,
    load_accuracy_predictor,
    load_data,
    load_supernet,
    parse_budgets,
    parse_data,
    predictor_options,
)
from ofa_deploy.cli.options import format_option, profile_option, seed_option, supernet_option, weights_option
from ofa_deploy.errors import ConfigError


def _stderr(msg: str) -> None:
    say(msg)


def _result_data(result: Any) -> dict[str, Any]:
    r = result.report
    return {"out_dir": str(result.out_dir), "config": result.config.to_string(), "budget": result.budget,
            "predicted": result.predicted, "measured": result.measured,
            "predicted_vs_measured": r["predicted_vs_measured"], "files": result.files, "timings_s": r["timings_s"],
            "other_devices": r.get("other_devices", []), "searched_resolutions": r.get("searched_resolutions"),
            "data": r.get("data")}


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
    for dev in d.get("other_devices", []):
        budget = f" | budget {dev['budget_ms']:.4g} ms" if dev.get("budget_ms") is not None else ""
        lines.append(f"  {dev['device']:<8} predicted {dev['predicted_ms']:.4g} ms{budget} ({dev['verdict']})")
    pvm = d["predicted_vs_measured"]
    if pvm.get("n"):
        lines.append(f"  LUT check on {pvm['n']} exported subnets: median measured/predicted "
                     f"{pvm['median_ratio']:.2f}, "
                     f"{pvm['within_25pct']:.0%} within ±25%")
    lines.append(f"  run dir  {d['out_dir']} (report.json, summary.md, pareto.png, model/)")
    return "\n".join(lines)


def _target_table(profile: Any, space: Any, lut: str | None, build_lut: bool, resolutions: Any) -> tuple[Path | None,
                                                                                                     Path | None]:
    """(table to use, where to build one): --lut, else the profile's stored table, else --build-lut into the
    user's cache, else an error with the estimated build time and the command."""
    from ofa_deploy.profiling.lut import find_table, table_path, table_search_path

    if lut is not None:
        return Path(lut), None
    if any(path.is_file() for path in table_search_path(profile.name, space.name)):
        return find_table(profile.name, space.name), None  # the one measured here, if any
    target = table_path(profile.name, space.name)
    if build_lut:
        return None, target
    from ofa_deploy.profiling.plan import make_plan

    res = list(resolutions or space.resolutions)
    layers = len(make_plan(space, res))
    minutes = layers * SECONDS_PER_LAYER / 60
    raise ConfigError(
        f"no latency table for profile {profile.name!r} and supernet {space.name!r} (looked in "
        f"{', '.join(str(p.parent) for p in table_search_path(profile.name, space.name))}). Building one here times "
        f"{layers} layers at {len(res)} resolution(s): about {minutes:.0f} min on this kind of 2-core host "
        f"({SECONDS_PER_LAYER} s per layer). Run `ofa-deploy profile build --profile {profile.name} --supernet "
        f"{space.name} --resolutions {','.join(map(str, res))}` (resumable), pass --build-lut to build it now, or "
        "pass --lut FILE")


# seconds per layer of an in-context ORT build on this project's 2-core reference host (README, Host latency table)
SECONDS_PER_LAYER = 2.1


@click.command("deploy", epilog="""\b
Examples:
  ofa-deploy deploy --supernet ofa_mbv3_w12 --weights ofa_mbv3_w12 \\
      --ofa-predictor acc_predictor_mbv3_tutorial.pth --profile ort-cpu-1t --latency-budget 8 \\
      --ofa-lut ../shared/reference/ofa/ --latency-budget note10=25 --data imagefolder:val/ --out run/
  ofa-deploy deploy --supernet ofa_mbv3_w10 --weights w.pt --predictor pred/ --lut my.json --out run/""")
@click.option("--fleet", "fleet", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Deploy to every device of a fleet file (YAML: devices with profile, runner, budget, format, "
                   "table; supernet, weights, predictor and data once): a verified subnet per device, one bundle.")
@supernet_option(required=False, note="required without --fleet; with --fleet it overrides the file's")
@weights_option()
@predictor_options
@profile_option(note="of the target: where the model is exported for and measured")
@click.option("--lut", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Latency table of the target (default: the profile's stored table; `ofa-deploy list tables`).")
@click.option("--build-lut", is_flag=True, help="No stored table: build one for the target now (into the cache).")
@click.option("--ofa-lut", "ofa_luts", multiple=True, type=click.Path(exists=True),
              help="OFA YAML tables of another device (e.g. Note10), repeatable: searched under its own budget "
                   "(--latency-budget note10=25) and reported as predicted; it is not measured here.")
@click.option("--other-lut", "other_luts", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="An ofa-deploy table of another device, repeatable (as --ofa-lut).")
@budget_option
@click.option("--macs-budget", type=float, default=None, help="Upper bound on MACs, in millions.")
@click.option("--resolutions", default=None, help="Input sides in px: '160,176' or '160:224:16'.")
@data_option
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True, help="Run directory.")
@click.option("--generations", type=int, default=500, show_default=True)
@click.option("--population", type=int, default=100, show_default=True)
@seed_option()
@click.option("--max-tries", type=int, default=4, show_default=True,
              help="Picks exported and measured at most while verifying the budget on the target.")
@click.option("--allow-foreign-lut", is_flag=True,
              help="Use a target table measured on another host (refused by default; see `profile check`).")
@click.option("--adapt", is_flag=True,
              help="A target table measured on another host is adapted to this one with a few whole-subnet "
                   "measurements (kept only when its held-out check passes) instead of being refused.")
@click.option("--executor", "executor_kind", type=click.Choice(["local", "process", "ray"]), default="local",
              show_default=True, help="--fleet: where devices run: one after the other here, a process pool, or Ray "
                                      "(one task per device holding the resource device:<name>).")
@click.option("--ray-address", default=None, help="--fleet --executor ray: the Ray cluster to join.")
@click.option("--resume", is_flag=True, help="--fleet: reuse every device already finished in --out.")
@format_option
@handle_errors
def deploy_cmd(fleet: str | None, supernet: str | None, weights: str | None, predictor: str | None, ofa_predictor: str | None,
               ofa_predictor_kind: str, profile_name: str, lut: str | None, build_lut: bool, ofa_luts: tuple[str, ...],
               other_luts: tuple[str, ...], latency_budgets: tuple[str, ...], macs_budget: float | None,
               resolutions: str | None, data: str, out_dir: str, generations: int, population: int, seed: int,
               max_tries: int, allow_foreign_lut: bool, adapt: bool, executor_kind: str, ray_address: str | None,
               resume: bool, output_format: str) -> None:
    """Search the best subnet under a budget, export it for the profile's backend, measure it on the target
    against the table's anchor, retry with a tightened budget until one is verified under the budget, report.

    The target is the profile's device (this host for the ort-*/tvm-* CPU profiles): its table is --lut or the
    profile's stored one, and the verdict is about it. Tables of other devices (--ofa-lut, --other-lut) constrain
    the search with their own budgets and are reported as predictions.

    With --fleet, every device of the fleet file gets its own subnet, export and verdict (see `deploy_fleet`);
    the bundle (manifest.json, summary.md, fleet.png, one directory per device) is written into --out.

    Exit codes: 0 verified under budget (every device, with --fleet), 1 bad input, 2 usage, 3 export validation
    failed, 4 no pick could be verified under the budget (with --fleet: some devices, named; the run dir and report
    are still written)."""
    if fleet is not None:
        single = {"--lut": lut, "--build-lut": build_lut, "--ofa-lut": ofa_luts, "--other-lut": other_luts,
                  "--latency-budget": latency_budgets, "--macs-budget": macs_budget, "--resolutions": resolutions}
        given = [name for name, value in single.items() if value]
        if given:
            raise click.UsageError(f"{', '.join(given)}: with --fleet, tables and budgets are given per device in "
                                   "the fleet file")
        from ofa_deploy.cli.fleet import run_fleet

        run_fleet(fleet, out_dir=out_dir, supernet=supernet, weights=weights, predictor=predictor,
                  ofa_predictor=ofa_predictor, ofa_predictor_kind=ofa_predictor_kind,
                  data=data if data != "none" else None, seed=seed, executor=executor_kind, address=ray_address,
                  resume=resume, output_format=output_format)
        return
    if supernet is None:
        raise click.UsageError("give --supernet (a registry name), or --fleet FLEET.yaml")
    from ofa_deploy.compat.released import preprocessing_of
    from ofa_deploy.pipeline import DeployRequest
    from ofa_deploy.profiling.hardware import HardwareProfile
    from ofa_deploy.spaces import get_space

    get_space(supernet)  # unknown names fail here, with suggestions
    prof = HardwareProfile.load(profile_name)
    res = _parse_res(resolutions)
    parse_data(data)  # a bad --data fails before anything slow
    budgets = parse_budgets(latency_budgets)
    target_budget = next((ms for d, ms in budgets if d in (None, prof.name)), None)
    net = load_supernet(supernet, weights, say=_stderr)
    acc = load_accuracy_predictor(supernet, predictor, ofa_predictor, ofa_predictor_kind, space=net.space)
    table, build_at = _target_table(prof, acc.space, lut, build_lut, res)
    splits = load_data(data, image_size=max(acc.space.resolutions), seed=seed,
                       preprocessing=preprocessing_of(supernet))
    req = DeployRequest(out_dir=Path(out_dir), profile=profile_name, lut=table, lut_cache=build_at,
                        latency_budget_ms=target_budget, macs_budget=macs_budget, resolutions=res,
                        generations=generations, population=population, seed=seed, max_tries=max_tries,
                        allow_foreign_lut=allow_foreign_lut, adapt=adapt, ofa_luts=tuple(Path(p) for p in ofa_luts),
                        extra_luts=tuple(Path(p) for p in other_luts),
                        device_budgets=tuple((d, ms) for d, ms in budgets if d not in (None, prof.name)))
    _run_and_emit(req, net, acc, splits, supernet, output_format)


def _parse_res(text: str | None) -> tuple[int, ...] | None:
    from ofa_deploy.cli.search import parse_resolutions

    res = parse_resolutions(text)
    return tuple(res) if res else None


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
@profile_option()
@click.option("--latency-budget", type=float, default=None, help="ms (default: 35% into the feasible range).")
@seed_option()
@click.option("--fleet", is_flag=True,
              help="Deploy to three devices of this machine instead (ORT 1 thread, ORT all threads in ORT format, "
                   "ORT int8), each with its own budget: a verified subnet per device, one bundle in --out.")
@click.option("--resume", is_flag=True, help="--fleet: reuse every device already finished in --out.")
@format_option
@handle_errors
def demo_cmd(quick: bool, out_dir: str, cache_dir: str | None, profile_name: str, latency_budget: float | None,
             seed: int, fleet: bool, resume: bool, output_format: str) -> None:
    """Run the whole toolchain on the built-in demo: train (or reuse) a small OFA supernet on digits and its
    accuracy predictor, build a latency table for this machine, search under a budget, export, measure, report.
    With --fleet, the same for three devices at once (see `deploy --fleet`)."""
    from ofa_deploy.demo import DEMO_NAME, QUICK_RECIPE, DemoRecipe, load_demo_data, prepare_demo_assets
    from ofa_deploy.pipeline import DeployRequest
    from ofa_deploy.profiling.hardware import HardwareProfile

    _stderr("preparing the demo supernet, accuracy dataset and predictor (cached after the first run)")
    assets = prepare_demo_assets(cache_dir, quick=quick, progress=True)
    _stderr(f"demo assets ready: {json.dumps(assets.timings)} (reused: {assets.reused})")
    recipe = QUICK_RECIPE if quick else DemoRecipe()
    if fleet:
        if latency_budget is not None or profile_name != "ort-cpu-1t":
            raise click.UsageError("--latency-budget and --profile are single-device options; demo --fleet sets a "
                                   "profile and a budget per device (see the fleet.yaml it writes)")
        from ofa_deploy.cli.fleet import run_demo_fleet

        run_demo_fleet(assets, recipe, out_dir=out_dir, quick=quick, seed=seed, executor="local", resume=resume,
                       output_format=output_format)
        return
    prof = HardwareProfile.load(profile_name)
    if quick:
        settings: dict[str, Any] = {"generations": 60, "population": 40, "pareto_generations": 15, "n_checks": 1,
                                    "timing_rounds": 2, "timing_repeats": 10}
    else:
        settings = {"generations": 500, "population": 100, "pareto_generations": 60, "n_checks": 4}
    req = DeployRequest(out_dir=Path(out_dir), profile=profile_name, latency_budget_ms=latency_budget, seed=seed,
                        lut_cache=Path(assets.weights).parent / f"lut-{prof.name}-{prof.sha256[:8]}.json", **settings)
    _run_and_emit(req, assets.load_supernet(), assets.load_predictor(), load_demo_data(recipe), DEMO_NAME,
                  output_format, extra={"demo": assets.to_dict()})


__all__ = ["deploy_cmd", "demo_cmd"]
