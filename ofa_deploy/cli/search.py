"""`ofa-deploy search`: best subnet under budgets (evolution) or the Pareto front (NSGA-II)."""
from __future__ import annotations

import logging
from typing import Any

import click

from ofa_deploy.cli.common import emit, format_option, handle_errors
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


@click.command("search")
@click.option("--supernet", "supernet", required=True, help="Space / supernet name, e.g. ofa_mbv3_w12.")
@click.option("--predictor", "predictor_dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="Accuracy predictor directory (from `ofa-deploy accuracy train`).")
@click.option("--ofa-predictor", type=click.Path(exists=True, dir_okay=False), default=None,
              help="OFA's released accuracy predictor weights (.pth).")
@click.option("--ofa-predictor-kind", type=click.Choice(["mbv3_tutorial", "resnet50"]), default="mbv3_tutorial",
              show_default=True)
@click.option("--lut", "luts", multiple=True, type=click.Path(exists=True), help="Latency table file (repeatable).")
@click.option("--ofa-lut", "ofa_luts", multiple=True, type=click.Path(exists=True),
              help="OFA YAML latency tables: a directory of <r>_lookup_table.yaml files (repeatable).")
@click.option("--latency-budget", type=float, default=None, help="Upper bound in ms on every latency table.")
@click.option("--macs-budget", type=float, default=None, help="Upper bound on MACs, in millions.")
@click.option("--resolutions", default=None, help="Search only these resolutions: '160,176' or '160:224:16'.")
@click.option("--pareto", is_flag=True, help="Compute the Pareto front (NSGA-II) instead of one best subnet.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--generations", type=int, default=None, help="Default: 500 (evolution), 100 (Pareto).")
@click.option("--population", type=int, default=100, show_default=True)
@click.option("--output", type=click.Path(dir_okay=False), default=None, help="Also write the JSON result here.")
@click.option("--threads", type=int, default=1, show_default=True,
              help="Torch threads for the accuracy predictor (small batches: 1 is fastest).")
@format_option
@handle_errors
def search_cmd(supernet: str, predictor_dir: str | None, ofa_predictor: str | None, ofa_predictor_kind: str,
               luts: tuple[str, ...], ofa_luts: tuple[str, ...], latency_budget: float | None,
               macs_budget: float | None, resolutions: str | None, pareto: bool, seed: int,
               generations: int | None, population: int, output: str | None, threads: int,
               output_format: str) -> None:
    """Search subnets of SUPERNET with an accuracy predictor under latency / MACs budgets."""
    from ofa_deploy.search import Budget, GeneDomain
    from ofa_deploy.search.inputs import load_accuracy, load_latency, load_macs, predictor_threads
    from ofa_deploy.spaces import get_space

    get_space(supernet)  # unknown names fail here, with suggestions
    space, acc = load_accuracy(predictor_dir=predictor_dir, ofa_predictor=ofa_predictor, ofa_kind=ofa_predictor_kind)
    if space.name != supernet:
        raise ConfigError(f"the accuracy predictor is for {space.name!r}, not {supernet!r}; "
                          f"pass --supernet {space.name}")
    lats = load_latency(space, luts=luts, ofa_luts=ofa_luts)
    if latency_budget is not None and not lats:
        raise ConfigError("--latency-budget needs a latency table: pass --lut FILE or --ofa-lut DIR")
    macs = load_macs(space)
    budgets = [Budget(o, latency_budget) for o in lats] if latency_budget is not None else []
    if macs_budget is not None:
        budgets.append(Budget(macs, macs_budget))
    domain = GeneDomain.for_space(space, resolutions=parse_resolutions(resolutions))
    with predictor_threads(threads):
        data, human = _run(domain, acc, lats, macs, budgets, pareto, population, generations, seed)
    if output:
        atomic_write_json(output, data)
    emit(data, output_format, human)


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


def _human_best(d: dict[str, Any]) -> str:
    eff = ", ".join(f"{k} {v:.4g}" for k, v in d["efficiency"].items())
    return (f"best subnet of {d['space']}: {d['best_config_string']}\n"
            f"  predicted accuracy {d['accuracy']:.2f}%  |  {eff}\n"
            f"  {d['settings']['generations']} generations x {d['settings']['population_size']} in "
            f"{d['timings']['total_s']:.2f} s (seed {d['seed']})")


def _human_front(d: dict[str, Any]) -> str:
    labels = [o["label"] for o in d["objectives"]]
    lines = [f"Pareto front of {d['space']}: {len(d['front'])} subnets ({d['timings']['total_s']:.2f} s)",
             "  ".join(f"{lab:>16}" for lab in labels) + "  config"]
    for row in d["front"]:
        lines.append("  ".join(f"{row[lab]:16.4g}" for lab in labels) + f"  {row['config']}")
    return "\n".join(lines)
