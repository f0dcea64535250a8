"""`ofa-deploy predict`: efficiency of one subnet from a latency table (LUT) or from the MAC count."""
from __future__ import annotations

from typing import Any

import click

from ofa_deploy.cli.common import emit, format_option, handle_errors, parse_subnet

_SUBNET_HELP = ("Subnet: compact string (r224-d4,...-k...-e...), JSON (ours or OFA's {ks,e,d}), a .json file, "
                "or 'max' / 'min'.")


def _space(name: str) -> Any:
    from ofa_deploy.spaces import get_space

    return get_space(name)


def _load_table(space: Any, lut: str | None, ofa_lut: str | None, profile: str | None, stat: str | None) -> Any:
    from ofa_deploy.profiling.lut import LatencyTable, find_table

    chosen = [name for name, value in (("--lut", lut), ("--ofa-lut", ofa_lut), ("--profile", profile)) if value]
    if len(chosen) != 1:
        raise click.UsageError(f"give exactly one of --lut, --ofa-lut, --profile (got {', '.join(chosen) or 'none'})")
    if lut:
        table = LatencyTable.load(lut)
    elif ofa_lut:
        from ofa_deploy.compat.ofa_lut import load_ofa_lut

        table = load_ofa_lut(ofa_lut, space)
    else:
        from ofa_deploy.profiling.hardware import HardwareProfile

        name = HardwareProfile.load(str(profile)).name  # unknown names fail here, with suggestions
        table = LatencyTable.load(find_table(name, space.name))
    if not ofa_lut:
        from ofa_deploy.profiling.host import warn_if_foreign

        warn_if_foreign(table, source=f"latency table {lut or profile}")
    return table.copy(stat=stat) if stat else table


def _subnet_options(func: Any) -> Any:
    func = click.option("--per-layer", is_flag=True, help="Also list every layer with its share.")(func)
    func = click.option("--resolution", "-r", type=int, default=None, help="Input resolution (overrides the subnet's).")(func)
    func = click.option("--subnet", required=True, help=_SUBNET_HELP)(func)
    func = click.option("--supernet", required=True, help="Search space name (see `ofa-deploy list supernets`).")(func)
    return func


@click.group("predict")
def predict_group() -> None:
    """Predict a subnet's efficiency: latency from a lookup table, or MACs. (Accuracy: `ofa-deploy accuracy predict`.)"""


@predict_group.command("latency")
@_subnet_options
@click.option("--lut", type=click.Path(dir_okay=False), default=None, help="An ofa-deploy latency table (.json).")
@click.option("--ofa-lut", type=click.Path(), default=None,
              help="OFA YAML tables: a directory of <r>_lookup_table.yaml files, or one YAML file.")
@click.option("--profile", default=None, help="Use the table measured for this hardware profile.")
@click.option("--stat", type=click.Choice(["median", "mean", "p90"]), default=None,
              help="Statistic to sum (default: the table's; OFA tables only have the mean).")
@format_option
@handle_errors
def latency_cmd(supernet: str, subnet: str, resolution: int | None, per_layer: bool, lut: str | None,
                ofa_lut: str | None, profile: str | None, stat: str | None, output_format: str) -> None:
    """Predicted latency (ms) of one subnet: the sum of its layers' entries in a latency table."""
    from ofa_deploy.compat.ofa_lut import ofa_key
    from ofa_deploy.predictors.latency import LatencyPredictor

    space = _space(supernet)
    cfg = parse_subnet(space, subnet, resolution)
    table = _load_table(space, lut, ofa_lut, profile, stat)
    predictor = LatencyPredictor(space, table)
    layers = predictor.breakdown(cfg)
    total = float(predictor.predict([cfg])[0])
    prov = table.provenance
    data: dict[str, Any] = {
        "supernet": space.name, "subnet": cfg.to_string(), "resolution": cfg.resolution, "latency_ms": total,
        "stat": table.stat, "table": {"device": prov.device, "profile": prov.profile_name, "backend": prov.backend,
                                      "entries": len(table)},
    }
    if per_layer:
        data["layers"] = [{"layer": spec.short(), "role": spec.role, "ofa_key": ofa_key(spec), "ms": ms}
                          for spec, ms in layers]

    def human(d: dict[str, Any]) -> str:
        source = d["table"]["profile"] or d["table"]["device"] or "table"
        lines = [f"{d['latency_ms']:.3f} ms  ({d['stat']} of {source}, {d['supernet']} {d['subnet']})"]
        for row in d.get("layers", []):
            lines.append(f"  {row['ms']:9.4f} ms  {100 * row['ms'] / d['latency_ms']:5.1f}%  {row['layer']}")
        return "\n".join(lines)

    emit(data, output_format, human)


@predict_group.command("macs")
@_subnet_options
@format_option
@handle_errors
def macs_cmd(supernet: str, subnet: str, resolution: int | None, per_layer: bool, output_format: str) -> None:
    """MACs and parameters of one subnet, from the layer walk (OFA counting: conv + linear)."""
    from ofa_deploy.predictors.macs import count_layers, layer_macs, layer_params

    space = _space(supernet)
    cfg = parse_subnet(space, subnet, resolution)
    specs = space.walk_layers(cfg)
    cost = count_layers(specs)
    data: dict[str, Any] = {"supernet": space.name, "subnet": cfg.to_string(), "resolution": cfg.resolution,
                            **cost.to_dict(), "flops": cost.flops}
    if per_layer:
        data["layers"] = [{"layer": s.short(), "role": s.role, "macs": layer_macs(s), "params": layer_params(s)}
                          for s in specs]

    def human(d: dict[str, Any]) -> str:
        lines = [f"{d['mmacs']:.1f} MMACs, {d['mparams']:.2f} M params  ({d['supernet']} {d['subnet']})"]
        for row in d.get("layers", []):
            share = 100 * row["macs"] / d["macs"] if d["macs"] else 0.0
            lines.append(f"  {row['macs'] / 1e6:9.2f} M  {share:5.1f}%  {row['layer']}")
        return "\n".join(lines)

    emit(data, output_format, human)
