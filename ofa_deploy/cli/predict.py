"""`ofa-deploy predict`: efficiency of one subnet from a latency table (LUT) or from the MAC count."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ofa_deploy.cli.common import emit, handle_errors, parse_subnet
from ofa_deploy.cli.options import (
    format_option,
    profile_option,
    resolution_option,
    subnet_option,
    supernet_option,
)
from ofa_deploy.errors import ConfigError



def _space(name: str) -> Any:
    from ofa_deploy.spaces import get_space

    return get_space(name)


def _load_tables(space: Any, luts: tuple[str, ...], ofa_luts: tuple[str, ...], profiles: tuple[str, ...],
                 stat: str | None) -> list[tuple[str, str, Any]]:
    """(label, path, table) for every --lut, --ofa-lut and --profile, in that order."""
    from ofa_deploy.profiling.hosts.fingerprint import warn_if_foreign
    from ofa_deploy.profiling.lut import find_table
    from ofa_deploy.tables.latency import LatencyTable

    if not (luts or ofa_luts or profiles):
        raise click.UsageError("give at least one latency table: --lut FILE, --ofa-lut DIR or --profile NAME "
                               "(each repeatable)")
    tables: list[tuple[str, str, Any]] = []
    for lut in luts:
        table = LatencyTable.load(lut)
        warn_if_foreign(table, source=f"latency table {lut}")
        tables.append((table.provenance.profile_name or table.provenance.device or lut, lut, table))
    for ofa_lut in ofa_luts:
        from ofa_deploy.compat.ofa_lut import load_ofa_lut

        table = load_ofa_lut(ofa_lut, space)
        tables.append((table.provenance.device or ofa_lut, ofa_lut, table))
    for profile in profiles:
        from ofa_deploy.profiling.hardware import HardwareProfile

        name = HardwareProfile.load(profile).name  # unknown names fail here, with suggestions
        path = find_table(name, space.name)
        table = LatencyTable.load(path)
        warn_if_foreign(table, source=f"latency table {path} of profile {name}")
        tables.append((name, str(path), table))
    labels = [label for label, _, _ in tables]
    out = []
    for i, (label, path, table) in enumerate(tables):
        if labels.count(label) > 1:
            label = f"{label}#{labels[:i + 1].count(label)}"
        out.append((label, path, table.copy(stat=stat) if stat else table))
    return out


def _is_net_config(text: str) -> bool:
    """An OFA net.config file (``*.net.config``, ``net.config``, or JSON with ``blocks``) rather than a subnet."""
    path = Path(text)
    if not path.is_file():
        return False
    if path.name.endswith("net.config"):
        return True
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and "blocks" in data and "first_conv" in data


def _relative_resolution(space: Any, text: str, predictors: list[Any]) -> int:
    """For ``max``/``min``: the largest/smallest resolution that every table covers (not the space's)."""
    covered = set(space.resolutions)
    for p in predictors:
        covered &= set(p.covered_resolutions())
    if not covered:
        raise ConfigError(f"--subnet {text}: the latency tables cover no common resolution of {space.name} "
                          f"({space.resolutions[0]}..{space.resolutions[-1]}); pass a table for this space, or "
                          "--resolution with a resolution the tables cover")
    return max(covered) if text == "max" else min(covered)


def _subnet_options(func: Any) -> Any:
    func = click.option("--per-layer", is_flag=True, help="Also list every layer with its share.")(func)
    func = resolution_option()(func)
    func = subnet_option(required=True, note="or (latency only) an OFA net.config file")(func)
    return supernet_option()(func)


@click.group("predict")
def predict_group() -> None:
    """Predict a subnet's efficiency: latency from a lookup table, or MACs. (Accuracy: `ofa-deploy accuracy predict`.)"""


@predict_group.command("latency", epilog="""\b
Examples:
  ofa-deploy predict latency --supernet ofa_mbv3_w12 --subnet max --profile ort-cpu-1t
  ofa-deploy predict latency --supernet ofa_mbv3_w12 --subnet min --ofa-lut ../shared/reference/ofa/ --profile ort-cpu-1t
  ofa-deploy predict latency --supernet ofa_mbv3_w12 --subnet flops-595M_top1-80.0_finetune-75.net.config -r 224 \\
      --ofa-lut ../shared/reference/ofa/""")
@_subnet_options
@click.option("--lut", "luts", multiple=True, type=click.Path(dir_okay=False),
              help="An ofa-deploy latency table (.json); repeatable.")
@click.option("--ofa-lut", "ofa_luts", multiple=True, type=click.Path(),
              help="OFA YAML tables: a directory of <r>_lookup_table.yaml files, or one YAML file; repeatable.")
@profile_option(tables=True)
@click.option("--stat", type=click.Choice(["median", "mean", "p90"]), default=None,
              help="Statistic to sum (default: the table's; OFA tables only have the mean).")
@format_option
@handle_errors
def latency_cmd(supernet: str, subnet: str, resolution: int | None, per_layer: bool, luts: tuple[str, ...],
                ofa_luts: tuple[str, ...], profiles: tuple[str, ...], stat: str | None, output_format: str) -> None:
    """Predicted latency (ms) of one subnet, or of an OFA net.config, on one or more latency tables: the sum
    of its layers' entries. ``max``/``min`` mean the largest/smallest subnet at the largest/smallest
    resolution every given table covers."""
    from ofa_deploy.spaces.ofa_keys import ofa_key
    from ofa_deploy.predictors.latency import LatencyPredictor

    space = _space(supernet)
    tables = _load_tables(space, luts, ofa_luts, profiles, stat)
    predictors = [LatencyPredictor(space, table) for _, _, table in tables]
    text = subnet.strip()
    if _is_net_config(text):
        from ofa_deploy.compat.net_config import net_config_to_specs, resolve_resolution

        res = resolve_resolution(text, None, resolution)
        specs = net_config_to_specs(text, None, res)
        head: dict[str, Any] = {"net_config": text, "subnet": Path(text).name, "resolution": res}
        values = [(p.predict_specs(specs, res), p.specs_breakdown(specs, res)) for p in predictors]
    else:
        if text in ("max", "min") and resolution is None:
            resolution = _relative_resolution(space, text, predictors)
        cfg = parse_subnet(space, text, resolution)
        head = {"subnet": cfg.to_string(), "resolution": cfg.resolution}
        values = [(float(p.predict([cfg])[0]), p.breakdown(cfg)) for p in predictors]
    rows = []
    for (label, path, table), (total, layers) in zip(tables, values):
        prov = table.provenance
        row: dict[str, Any] = {"label": label, "latency_ms": total, "stat": table.stat,
                               "table": {"device": prov.device, "profile": prov.profile_name,
                                         "backend": prov.host.get("backend", ""), "entries": len(table), "path": path}}
        if per_layer:
            row["layers"] = [{"layer": spec.short(), "role": spec.role, "ofa_key": ofa_key(spec), "ms": ms}
                             for spec, ms in layers]
        rows.append(row)
    data: dict[str, Any] = {"supernet": space.name, **head, **{k: v for k, v in rows[0].items() if k != "label"},
                            "tables": rows}

    def human(d: dict[str, Any]) -> str:
        lines = [f"{d['supernet']} {d['subnet']} @ {d['resolution']} px"]
        lines.append(f"{'latency (ms)':>13}  {'stat':<6} {'table':<16} source")
        for row in d["tables"]:
            lines.append(f"{row['latency_ms']:13.3f}  {row['stat']:<6} {row['label']:<16} {row['table']['path']}")
        for row in d["tables"]:
            if "layers" in row:
                lines.append(f"layers on {row['label']}: {'ms':>9}  share  layer")
                for layer in row["layers"]:
                    lines.append(f"  {layer['ms']:9.4f} ms  {100 * layer['ms'] / row['latency_ms']:5.1f}%  "
                                 f"{layer['layer']}")
        return "\n".join(lines)

    emit(data, output_format, human)


@predict_group.command("macs")
@_subnet_options
@format_option
@handle_errors
def macs_cmd(supernet: str, subnet: str, resolution: int | None, per_layer: bool, output_format: str) -> None:
    """MACs and parameters of one subnet, from the layer walk (OFA counting: conv + linear)."""
    from ofa_deploy.predictors.macs import count_layers
    from ofa_deploy.spaces.costs import layer_macs, layer_params

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
