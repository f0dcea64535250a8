"""`ofa-deploy search`: best subnet under budgets (evolution) or the Pareto front (NSGA-II)."""
from __future__ import annotations

import logging
from typing import Any

import click

from pathlib import Path

from ofa_deploy.cli.common import emit, handle_errors
from ofa_deploy.cli.inputs import budget_option, predictor_options
from ofa_deploy.cli.options import format_option, profile_option, seed_option, supernet_option
from ofa_deploy.errors import ConfigError
from ofa_deploy.fileio import atomic_write_json

log = logging.getLogger(__name__)


def parse_resolutions(text: str | None) -> list[int] | None:
    """``"160,176,192"`` or ``"160:224:16"`` (start:stop:step, stop included) → list of ints."""
    if not text:
        return None
    try:
        if ":" in text:
            start, stop, step = (int(x) for x in text.split(":"))
            return list(range(start, stop + 1, step))
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"--resolutions: expected '160,176,192' or '160:224:16', got {text!r}") from None


@click.command("search", epilog="""\b
Examples:
  ofa-deploy search --supernet ofa_mbv3_w12 --ofa-predictor acc_predictor_mbv3_tutorial.pth \\
      --ofa-lut ../shared/reference/ofa/ --latency-budget 25
  ofa-deploy search --supernet ofa_mbv3_w12 --ofa-predictor acc_predictor_mbv3_tutorial.pth \\
      --ofa-lut ../shared/reference/ofa/ --profile ort-cpu-1t --latency-budget note10=25 \\
      --latency-budget ort-cpu-1t=8 --pareto --plot front.png""")
@supernet_option()
@predictor_options
@click.option("--lut", "luts", multiple=True, type=click.Path(exists=True), help="Latency table file (repeatable).")
@click.option("--ofa-lut", "ofa_luts", multiple=True, type=click.Path(exists=True),
              help="OFA YAML latency tables: a directory of <r>_lookup_table.yaml files (repeatable).")
@profile_option(tables=True)
@budget_option
@click.option("--macs-budget", type=float, default=None, help="Upper bound on MACs, in millions.")
@click.option("--resolutions", default=None, help="Search only these input sides (px): '160,176' or '160:224:16'.")
@click.option("--pareto", is_flag=True, help="Compute the Pareto front (NSGA-II) instead of one best subnet.")
@click.option("--plot", type=click.Path(dir_okay=False), default=None,
              help="With --pareto: write a plot of the front (accuracy against each device's latency) here (.png).")
@seed_option()
@click.option("--generations", type=int, default=None, help="Default: 500 (evolution), 100 (Pareto).")
@click.option("--population", type=int, default=100, show_default=True)
@click.option("--output", type=click.Path(dir_okay=False), default=None, help="Also write the JSON result here.")
@click.option("--threads", type=int, default=1, show_default=True,
              help="Torch threads for the accuracy predictor (small batches: 1 is fastest).")
@format_option
@handle_errors
def search_cmd(supernet: str, predictor: str | None, ofa_predictor: str | None, ofa_predictor_kind: str,
               luts: tuple[str, ...], ofa_luts: tuple[str, ...], profiles: tuple[str, ...],
               latency_budgets: tuple[str, ...], macs_budget: float | None, resolutions: str | None, pareto: bool,
               plot: str | None, seed: int, generations: int | None, population: int, output: str | None,
               threads: int, output_format: str) -> None:
    """Search subnets of SUPERNET with an accuracy predictor under per-device latency and MACs budgets.

    The accuracy predictor comes from `ofa-deploy accuracy train-predictor` (a directory) or is OFA's released one
    (.pth). A predictor covering fewer resolutions than the supernet (OFA's tutorial one: 160..224 step 16)
    restricts the search to those."""
    from ofa_deploy.cli.inputs import assign_budgets, load_accuracy_predictor, parse_budgets
    from ofa_deploy.search import Budget, GeneDomain
    from ofa_deploy.search.inputs import load_latency, load_macs, predictor_threads
    from ofa_deploy.search.objectives import accuracy_objective
    from ofa_deploy.spaces import get_space

    if plot and not pareto:
        raise click.UsageError("--plot draws the Pareto front: add --pareto")
    full = get_space(supernet)  # unknown names fail here, with suggestions
    budgets_in = parse_budgets(latency_budgets)
    pred = load_accuracy_predictor(supernet, predictor, ofa_predictor, ofa_predictor_kind, space=full)
    res = parse_resolutions(resolutions)
    if res is not None:
        from ofa_deploy.spaces import align_space

        pred = pred.for_space(align_space(pred.space, full, what="the accuracy predictor", resolutions=res))
    space, acc = pred.space, accuracy_objective(pred)
    lats = load_latency(space, luts=[*luts, *_profile_tables(profiles, space)], ofa_luts=ofa_luts)
    if budgets_in and not lats:
        raise ConfigError("--latency-budget needs a latency table: pass --lut FILE, --ofa-lut DIR or --profile NAME")
    limits = assign_budgets(budgets_in, [o.target for o in lats])
    macs = load_macs(space)
    budgets = [Budget(o, limits[o.target]) for o in lats if o.target in limits]
    if macs_budget is not None:
        budgets.append(Budget(macs, macs_budget))
    domain = GeneDomain.for_space(space)
    with predictor_threads(threads):
        data, human = _run(domain, acc, lats, macs, budgets, pareto, population, generations, seed)
    if plot:
        from ofa_deploy.report import plot_front

        plot_front(data, Path(plot), {b.objective.label: b.limit for b in budgets})
        data["plot"] = str(plot)
    if output:
        atomic_write_json(output, data)
    emit(data, output_format, human)


def _profile_tables(profiles: tuple[str, ...], space: Any) -> list[str]:
    """The stored table file of each --profile."""
    from ofa_deploy.profiling.hardware import HardwareProfile
    from ofa_deploy.profiling.lut import find_table

    return [str(find_table(HardwareProfile.load(p).name, space.name)) for p in profiles]


def _run(domain: Any, acc: Any, lats: list[Any], macs: Any, budgets: list[Any], pareto: bool, population: int,
         generations: int | None, seed: int) -> tuple[dict[str, Any], Any]:
    from ofa_deploy.search import EvolutionSettings, evolution_search
    from ofa_deploy.search.pareto import ParetoSettings, pareto_search

    if pareto:
        settings = ParetoSettings(population_size=population, generations=generations or 100)
        front = pareto_search(domain=domain, objectives=[acc, *lats, macs], budgets=budgets, settings=settings,
                              seed=seed)
        data: dict[str, Any] = {"mode": "pareto", **front.to_dict()}
        human = _human_front
    else:
        if not budgets:
            raise ConfigError("give a budget (--latency-budget and a LUT, or --macs-budget), or use --pareto")
        settings_e = EvolutionSettings(population_size=population,
                                       generations=500 if generations is None else generations)
        result = evolution_search(domain=domain, objective=acc, budgets=budgets, settings=settings_e, seed=seed)
        data = {"mode": "evolution", **result.to_dict()}
        data["efficiency"].update({o.label: float(o.predict_genes(result.best_genes[None])[0])
                                   for o in [*lats, macs] if o.label not in data["efficiency"]})
        human = _human_best
    return data, human


_UNITS = {"accuracy": "%", "latency": "ms", "macs": "M"}


def _unit(label: str) -> str:
    return _UNITS.get(label.split("@", 1)[0], "")


def _human_best(d: dict[str, Any]) -> str:
    eff = ", ".join(f"{k} {v:.4g} {_unit(k)}".rstrip() for k, v in d["efficiency"].items())
    return (f"best subnet of {d['space']}: {d['best_config_string']}\n"
            f"  predicted accuracy {d['accuracy']:.2f}%  |  {eff}\n"
            f"  {d['settings']['generations']} generations x {d['settings']['population_size']} in "
            f"{d['timings']['total_s']:.2f} s (seed {d['seed']})")


def _human_front(d: dict[str, Any]) -> str:
    labels = [o["label"] for o in d["objectives"]]
    heads = [f"{o['label']} ({o['unit']})" if o["unit"] else o["label"] for o in d["objectives"]]
    lines = [f"Pareto front of {d['space']}: {len(d['front'])} subnets ({d['timings']['total_s']:.2f} s)",
             "  ".join(f"{h:>22}" for h in heads) + "  config"]
    for row in d["front"]:
        lines.append("  ".join(f"{row[lab]:22.4g}" for lab in labels) + f"  {row['config']}")
    if d.get("plot"):
        lines.append(f"plot: {d['plot']}")
    return "\n".join(lines)
