"""`ofa-deploy measure MODEL --profile P`: time any .onnx, .ort or TVM .so with the anchor-paired protocol."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ofa_deploy.cli.common import emit, handle_errors
from ofa_deploy.cli.options import format_option, profile_option, supernet_option
from ofa_deploy.errors import ConfigError


def _shape(text: str | None) -> tuple[int, ...] | None:
    if not text:
        return None
    try:
        shape = tuple(int(x) for x in text.replace("x", ",").split(",") if x.strip())
    except ValueError:
        shape = ()
    if len(shape) != 4 or min(shape) < 1:
        raise ConfigError(f"--input-shape {text!r}: expected N,C,H,W with positive integers, e.g. 1,3,224,224")
    return shape


def _anchor(model: Path, profile: Any, anchor: str | None, supernet: str | None, table: Any
            ) -> tuple[tuple[Any, tuple[int, ...]], dict[str, Any]]:
    """The anchor model and its description: --anchor, else the anchor subnet of the table's / --supernet's /
    the model's own space on the profile."""
    from ofa_deploy.profiling.timing.measure import anchor_for, space_anchor
    from ofa_deploy.profiling.timing.model_files import find_model_file, input_shape_of, space_of
    from ofa_deploy.spaces import get_space

    if anchor is not None:
        path = find_model_file(anchor, profile.backend)
        return (path, input_shape_of(path, int(profile.batch_size))), {"model": str(path), "source": "--anchor"}
    name = supernet or (table.provenance.supernet if table is not None else None) or space_of(model)
    if name is None:
        raise ConfigError(f"no anchor for {model.name}: pass --anchor MODEL, or --supernet NAME to pair it with that "
                          "space's anchor subnet (the model's export dir has no subnet.json naming its supernet)")
    space = get_space(name)
    cfg = anchor_for(space, table, profile)
    path, shape = space_anchor(space, table, profile)
    return (path, tuple(shape)), {"model": str(path), "source": f"anchor subnet of {space.name}",
                                  "config": cfg.to_string()}


@click.command("measure", epilog="""\\b
Examples:
  ofa-deploy measure run/model/model.onnx --profile ort-cpu-1t
  ofa-deploy measure run/model_tvm/model.so --profile tvm-cpu --supernet ofa_mbv3_w12
  ofa-deploy measure net.onnx --profile ort-cpu-1t --anchor other.onnx --format json""")
@click.argument("model_path", metavar="MODEL", type=click.Path(exists=True))
@profile_option(note="its backend, threads and protocol settings")
@click.option("--anchor", default=None, type=click.Path(exists=True),
              help="Anchor model to pair with (default: the profile's anchor subnet of --supernet, or of the "
                   "model's own space when its export dir has subnet.json).")
@supernet_option(required=False, note="its anchor subnet pairs with the model")
@click.option("--lut", default=None, type=click.Path(exists=True, dir_okay=False),
              help="A latency table: also report ms at its reference anchor time (comparable with its predictions).")
@click.option("--input-shape", default=None, help="N,C,H,W (default: the export report's, or the ONNX graph's).")
@click.option("--interval-target", "target", type=float, default=None,
              help="Stop once the 95%% interval of the ratio is within ± this fraction (default: profile, 0.03).")
@click.option("--min-rounds", type=int, default=None, help="Paired rounds before convergence is judged.")
@click.option("--max-rounds", type=int, default=None, help="Paired rounds at most.")
@click.option("--time-cap", type=float, default=None, help="Seconds after which no new round starts.")
@click.option("--repeats", type=int, default=None, help="Timed runs per visit (default: profile).")
@format_option
@handle_errors
def measure_cmd(model_path: str, profile_name: str, anchor: str | None, supernet: str | None, lut: str | None,
                input_shape: str | None, target: float | None, min_rounds: int | None, max_rounds: int | None,
                time_cap: float | None, repeats: int | None, output_format: str) -> None:
    """Time MODEL (.onnx, .ort, TVM .so, or an export directory) on PROFILE against an anchor model, in paired
    rounds: the ratio to the anchor with its 95% interval, this run's milliseconds and wall-clock percentiles
    (p50/p90/p99 of the raw runs), and with --lut the milliseconds at the table's reference speed."""
    from ofa_deploy.profiling.hardware import HardwareProfile
    from ofa_deploy.profiling.timing.measure import time_model
    from ofa_deploy.profiling.timing.model_files import check_backend, find_model_file, input_shape_of
    from ofa_deploy.profiling.timing.protocol import ProtocolSettings

    profile = HardwareProfile.load(profile_name)
    model = find_model_file(model_path, profile.backend)
    check_backend(model, profile)
    shape = _shape(input_shape) or input_shape_of(model, int(profile.batch_size))
    table = None
    if lut is not None:
        from ofa_deploy.profiling.hosts.fingerprint import warn_if_foreign
        from ofa_deploy.tables.latency import LatencyTable

        table = LatencyTable.load(lut)
        warn_if_foreign(table, source=f"latency table {lut}")
        if table.anchor is None:
            raise ConfigError(f"latency table {lut} has no anchor (an OFA table or an old one); --lut needs a table "
                              "built with the anchor-paired protocol (`ofa-deploy profile build`)")
    pair, info = _anchor(model, profile, anchor, supernet, table)
    check_backend(Path(pair[0]), profile)
    protocol = ProtocolSettings.from_profile(profile, target=target, min_rounds=min_rounds, max_rounds=max_rounds,
                                             time_cap_s=time_cap, repeats=repeats)
    timing = time_model(model, profile, pair, input_shape=shape, protocol=protocol, table=table, table_path=lut,
                        anchor_info=info)
    emit(timing.to_dict(), output_format, _human)


def _human(d: dict[str, Any]) -> str:
    now, wall = d["now"], d["wall_ms"]
    lo, hi = d["ratio_interval"]
    lines = [f"{d['model']} on {d['profile']} ({'x'.join(map(str, d['input_shape']))}), "
             f"{d['rounds']} paired rounds in {d['seconds']} s, {'converged' if d['converged'] else 'NOT converged'}",
             f"  ratio to anchor   {d['ratio']:.4f}  (95% interval {lo:.4f}..{hi:.4f}; anchor: {d['anchor']['source']})",
             f"  now (ms)          {now['ms']:.4g}  (95% interval {now['interval_ms'][0]:.4g}..{now['interval_ms'][1]:.4g}"
             f"; anchor {now['anchor_ms']:.4g} ms, swing {now['anchor_swing']:.2f}x)"]
    if wall.get("n_runs"):
        lines.append(f"  wall clock (ms)   p50 {wall['p50']:.4g}  p90 {wall['p90']:.4g}  p99 {wall['p99']:.4g}  "
                     f"({wall['n_runs']} runs)")
    if d.get("at_table_reference"):
        t = d["at_table_reference"]
        lines.append(f"  at table ref (ms) {t['ms']:.4g}  (95% interval {t['interval_ms'][0]:.4g}..{t['interval_ms'][1]:.4g};"
                     f" anchor {t['anchor_ms']:.4g} ms in {t['path']})")
    return "\n".join(lines)


__all__ = ["measure_cmd"]
