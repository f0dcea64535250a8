"""`ofa-deploy profile`: build, validate, plan and import per-layer latency tables (LUTs)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ofa_deploy.cli.common import emit, handle_errors
from ofa_deploy.cli.options import format_option, profile_option, seed_option, supernet_option
from ofa_deploy.scale.cli import executor_options, make_executor


def _resolutions(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers such as 160,176,192, got {text!r}") from None


def _timer(profile: Any, rounds: int | None, repeats: int | None, warmup: int | None, clock: str | None) -> Any:
    from ofa_deploy.profiling.timing.timer import TimerSettings

    return TimerSettings.from_profile(profile, rounds=rounds, repeats=repeats, warmup=warmup, clock=clock)


def _timer_options(func: Any) -> Any:
    func = click.option("--clock", type=click.Choice(["auto", "wall", "thread"]), default=None,
                        help="Timing clock (auto: thread CPU time for 1-thread CPU backends).")(func)
    func = click.option("--warmup", type=int, default=None,
                        help="Untimed runs per entry and round (default: profile).")(func)
    func = click.option("--repeats", type=int, default=None,
                        help="Timed runs per entry and round (default: profile).")(func)
    func = click.option("--rounds", type=int, default=None, help="Interleaved rounds (default: profile).")(func)
    return func


def _protocol(profile: Any, target: float | None, min_rounds: int | None, max_rounds: int | None,
              time_cap: float | None, visit_repeats: int | None, visit_warmup: int | None) -> Any:
    from ofa_deploy.profiling.timing.protocol import ProtocolSettings

    return ProtocolSettings.from_profile(profile, target=target, min_rounds=min_rounds, max_rounds=max_rounds,
                                         time_cap_s=time_cap, repeats=visit_repeats, warmup=visit_warmup)


def _protocol_options(func: Any) -> Any:
    func = click.option("--visit-warmup", type=int, default=None,
                        help="Untimed runs before each paired visit (default: profile).")(func)
    func = click.option("--visit-repeats", type=int, default=None,
                        help="Timed runs per paired visit; their minimum counts (default: profile).")(func)
    func = click.option("--time-cap", type=float, default=None,
                        help="Seconds after which no new paired round starts (default: profile).")(func)
    func = click.option("--max-rounds", type=int, default=None, help="Paired rounds at most (default: profile).")(func)
    func = click.option("--min-rounds", type=int, default=None,
                        help="Paired rounds before convergence is judged (default: profile).")(func)
    func = click.option("--interval-target", "target", type=float, default=None,
                        help="Stop once the 95%% interval of each median ratio is within ± this fraction "
                             "(default: profile, 0.03).")(func)
    return func


@click.group("profile")
def profile_group() -> None:
    """Measure per-layer latency tables on a hardware profile, and check them against whole subnets."""


@profile_group.command("build")
@profile_option(required=True)
@supernet_option()
@click.option("--resolutions", default=None, help="Comma-separated input sides (default: all of the space's).")
@click.option("--out", default=None, type=click.Path(dir_okay=False),
              help="LUT JSON to write (default: $OFA_DEPLOY_CACHE or ~/.cache/ofa-deploy, luts/<profile>/<supernet>.json; "
                   "`predict --profile` and `deploy` find it there).")
@click.option("--resume/--no-resume", default=True, show_default=True,
              help="Continue from <out>.measurements.jsonl instead of starting over.")
@click.option("--method", type=click.Choice(["auto", "in_context", "isolated"]), default="auto", show_default=True,
              help="in_context: ORT profiler inside covering subnets (auto: ONNX Runtime on MobileNet spaces); "
                   "isolated: one model per layer.")
@click.option("--context-subnets", type=int, default=0, show_default=True,
              help="in_context: extra random subnets per resolution profiled besides the covering ones.")
@click.option("--calibration-subnets", type=int, default=24, show_default=True,
              help="Random whole subnets timed against the anchor each round; the table's calibration is fitted "
                   "on them (0: none).")
@click.option("--limit", type=int, default=None,
              help="Quick checks: only the first N layers (isolated) or covering subnets (in_context).")
@click.option("--no-progress", is_flag=True, help="No progress bar on stderr.")
@_timer_options
@executor_options
@format_option
@handle_errors
def build_cmd(profile_name: str, supernet: str, resolutions: str | None, out: str | None, resume: bool,
              method: str, context_subnets: int, calibration_subnets: int, limit: int | None, no_progress: bool,
              rounds: int | None, repeats: int | None, warmup: int | None, clock: str | None,
              executor_kind: str, workers: int | None, ray_address: str | None, output_format: str) -> None:
    """Time every distinct layer of SUPERNET at RESOLUTIONS on PROFILE and write the LUT (in units of the
    profile's anchor model, with a calibration fitted on whole subnets and this host's fingerprint)."""
    from ofa_deploy.profiling.builder import build_lut
    from ofa_deploy.profiling.hardware import HardwareProfile
    from ofa_deploy.profiling.lut import table_path
    from ofa_deploy.spaces import get_space

    profile = HardwareProfile.load(profile_name)
    space = get_space(supernet)
    path = Path(out) if out else table_path(profile.name, space.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    with make_executor(executor_kind, workers, ray_address, profile) as executor:
        result = build_lut(space, _resolutions(resolutions), profile, path, resume=resume, limit=limit,
                           method=method, context_subnets=context_subnets, calibration_subnets=calibration_subnets,
                           progress=not no_progress, timer=_timer(profile, rounds, repeats, warmup, clock),
                           executor=executor)
    table = result.table
    emit({**result.summary(), "anchor": table.anchor.to_dict() if table.anchor else None,
          "calibration": table.calibration.to_dict() if not table.calibration.is_identity else {}},
         output_format, _build_human)


def _build_human(d: dict[str, Any]) -> str:
    lines = [f"wrote {d['path']}: {d['entries']} layers ({d['measured']} items measured, {d['reused']} reused) "
             f"in {d['seconds']} s"]
    anchor = d.get("anchor")
    if anchor:
        lines.append(f"  anchor {anchor['config']}: {anchor['ms']:.4g} ms median during the build "
                     f"(slowest/fastest visit {anchor['swing']:.2f}x)")
    else:
        lines.append("  no anchor: entries are in ms of this build's clock")
    held = d.get("calibration", {}).get("fit", {}).get("held_out_2fold")
    if held:
        lines.append(f"  calibration on {held['n']} whole subnets (held-out halves): {held['within_10pct']:.0%} "
                     f"within ±10%, Spearman {held['spearman']:.3f}, bias {held['mean_pct_error']:+.1f}%")
    return "\n".join(lines)


@profile_group.command("validate")
@profile_option(required=True)
@supernet_option()
@click.option("--lut", default=None, type=click.Path(dir_okay=False),
              help="LUT JSON (default: the stored table of the profile and supernet).")
@click.option("-n", "n", type=int, default=50, show_default=True, help="Random subnets to measure.")
@seed_option()
@click.option("--resolutions", default=None, help="Resolutions to sample (default: the table's).")
@click.option("--out", default=None, type=click.Path(dir_okay=False),
              help="Report JSON (default: <lut>.validation.json).")
@click.option("--no-progress", is_flag=True)
@_protocol_options
@format_option
@handle_errors
def validate_cmd(profile_name: str, supernet: str, lut: str | None, n: int, seed: int, resolutions: str | None,
                 out: str | None, no_progress: bool, target: float | None, min_rounds: int | None,
                 max_rounds: int | None, time_cap: float | None, visit_repeats: int | None, visit_warmup: int | None,
                 output_format: str) -> None:
    """Measure N random subnets whole against the table's anchor and compare them with its predictions."""
    from ofa_deploy.profiling.hardware import HardwareProfile
    from ofa_deploy.profiling.lut import find_table
    from ofa_deploy.profiling.validate import validate_lut
    from ofa_deploy.spaces import get_space
    from ofa_deploy.tables.latency import LatencyTable

    profile = HardwareProfile.load(profile_name)
    space = get_space(supernet)
    lut_path = Path(lut) if lut else find_table(profile.name, space.name)
    table = LatencyTable.load(lut_path)
    report_path = Path(out) if out else lut_path.with_name(lut_path.stem + ".validation.json")
    report = validate_lut(space, table, profile, n=n, seed=seed, resolutions=_resolutions(resolutions),
                          protocol=_protocol(profile, target, min_rounds, max_rounds, time_cap, visit_repeats,
                                             visit_warmup),
                          out_path=report_path, progress=not no_progress)
    data = {"report": str(report_path), "metrics": report.metrics, "scaled_metrics": report.scaled_metrics,
            "noise_floor": report.noise_floor, "converged": report.converged, "reference": report.reference,
            "host": report.host, "seconds": round(report.seconds, 1)}

    def human(d: dict) -> str:
        m, g, f = d["metrics"], d["scaled_metrics"], d["noise_floor"]
        lines = [f"{m['n']} subnets ({d['converged']} converged), measured at the {d['reference']}:",
                 f"  predicted: {m['within_5pct']:.0%} within ±5%, {m['within_10pct']:.0%} within ±10%, "
                 f"Spearman {m['spearman']:.3f}, Kendall {m['kendall']:.3f}, bias {m['mean_pct_error']:+.1f}%",
                 f"  after one global scale ({g['scale']:.3f}): {g['within_10pct']:.0%} within ±10%",
                 f"  noise floor (even vs odd rounds): {f['within_10pct']:.0%} within ±10%, "
                 f"Spearman {f['spearman']:.3f}"]
        if not d["host"]["ok"]:
            lines.append(f"  warning: {d['host']['message']}")
        lines.append(f"  report {d['report']}")
        return "\n".join(lines)

    emit(data, output_format, human)


@profile_group.command("check")
@click.argument("table_path", metavar="TABLE", type=click.Path(dir_okay=False))
@profile_option(default=None, note="to check against (default: the one the table was built with)")
@format_option
@handle_errors
def check_cmd(table_path: str, profile_name: str | None, output_format: str) -> None:
    """Say whether TABLE was measured on this host with this runtime (exit 0) or elsewhere (exit 1)."""
    from ofa_deploy.errors import ForeignTableError
    from ofa_deploy.profiling.hardware import HardwareProfile
    from ofa_deploy.profiling.hosts.fingerprint import check_table_host
    from ofa_deploy.tables.latency import LatencyTable

    table = LatencyTable.load(table_path)
    name = profile_name or table.provenance.profile_name
    profile = HardwareProfile.load(name) if name else None
    check = check_table_host(table, profile)
    data = {"table": table_path, "profile": name, "unit": table.unit,
            "anchor": table.anchor.to_dict() if table.anchor else None, **check.to_dict()}
    emit(data, output_format, lambda d: ("valid here: " if d["ok"] else "NOT valid here: ") + d["message"])
    if not check.ok:
        raise ForeignTableError(f"{table_path}: {check.describe()}")


@profile_group.command("plan")
@supernet_option()
@click.option("--resolutions", default=None, help="Comma-separated input sides (default: all of the space's).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Directory for plan.json + models/.")
@profile_option(default=None, note="stored in the plan (batch size)")
@click.option("--ort", "ort_format", is_flag=True, help="Also write .ort models (Runtime style, for ORT mobile).")
@click.option("--in-context", "in_context", is_flag=True,
              help="Also export the covering subnets so the device can time layers in context (~25 MB each).")
@click.option("--limit", type=int, default=None, help="Only the first N layers.")
@format_option
@handle_errors
def plan_cmd(supernet: str, resolutions: str | None, out: str, profile_name: str | None, ort_format: bool,
             in_context: bool, limit: int | None, output_format: str) -> None:
    """Export one model per distinct layer + plan.json, and the on-device script (ondevice_profile.py) next to them."""
    from ofa_deploy.profiling.hardware import HardwareProfile
    from ofa_deploy.profiling.models import write_plan
    from ofa_deploy.profiling.plan import make_plan
    from ofa_deploy.spaces import get_space

    profile = HardwareProfile.load(profile_name) if profile_name else None
    space = get_space(supernet)
    plan = make_plan(space, _resolutions(resolutions), batch_size=profile.batch_size if profile else 1, limit=limit)
    if in_context and limit is not None:
        raise click.UsageError("--in-context needs the full plan; drop --limit")
    from ofa_deploy.profiling.timing.anchor import resolve_anchor_config

    anchor = resolve_anchor_config(space, getattr(profile, "anchor", None),
                                   source=f"profile {profile.name}" if profile else "")
    path = write_plan(plan, out, profile=profile, ort_format=ort_format, space=space, anchor=anchor,
                      in_context=in_context)
    emit({"plan": str(path), "layers": len(plan), "space": space.name, "resolutions": list(plan.resolutions)},
         output_format, lambda d: f"wrote {d['plan']} ({d['layers']} layer models)")


@profile_group.command("import")
@click.argument("results", type=click.Path(exists=True, dir_okay=False))
@click.option("--plan", "plan_dir", required=True, type=click.Path(exists=True), help="The plan directory.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="LUT JSON to write.")
@format_option
@handle_errors
def import_cmd(results: str, plan_dir: str, out: str, output_format: str) -> None:
    """Turn RESULTS of the on-device script (`python -m ofa_deploy.ondevice`) into a LUT."""
    from ofa_deploy.profiling.ondevice_import import import_results

    table = import_results(results, plan_dir, out)
    emit({"lut": out, "entries": len(table), "device": table.provenance.device,
          "provider": table.provenance.execution_provider}, output_format,
         lambda d: f"wrote {d['lut']} ({d['entries']} layers from {d['device']})")


@profile_group.command("adapt")
@click.option("--from", "source", required=True, type=click.Path(),
              help="Source table: an ofa-deploy table JSON (any host or backend) or an OFA YAML table directory/file.")
@profile_option(required=True, note="the target")
@supernet_option(required=False, note="needed for OFA YAML tables, which name none")
@click.option("--resolutions", default=None, help="Comma-separated input sides (default: all the source covers).")
@click.option("--out", default=None, type=click.Path(dir_okay=False),
              help="Adapted table JSON (default: the user's cache, luts/<profile>/<supernet>.json, where `predict` "
                   "and `deploy` find it).")
@click.option("--max-seconds", type=float, default=60.0, show_default=True,
              help="Device seconds the adaptation may spend timing, held-out check included.")
@click.option("--fallback", type=click.Choice(["stop", "build"]), default="stop", show_default=True,
              help="When the held-out goal is not met: stop with the figures (exit 1), or build the full table.")
@seed_option(note="of the measured subnets")
@format_option
@handle_errors
def adapt_cmd(source: str, profile_name: str, supernet: str | None, resolutions: str | None, out: str | None,
              max_seconds: float, fallback: str, seed: int, output_format: str) -> None:
    """Adapt a latency table from another host, backend or device to PROFILE: measure a few designed subnets
    there, fit a correction, and write the table only if random held-out subnets measured there confirm it."""
    from ofa_deploy.adapt import adapt_table

    result = adapt_table(source, profile=profile_name, supernet=supernet, out=out, max_seconds=max_seconds,
                         fallback=fallback, seed=seed, resolutions=_resolutions(resolutions),
                         progress=lambda line: click.echo(line, err=True))
    emit(result.to_dict(), output_format, _adapt_human)


def _adapt_human(d: dict[str, Any]) -> str:
    v = d["validation"]
    lines = [f"wrote {d['path']}: {d['entries']} layers, method {d['method']}"
             + ("" if d["passed"] else " (the adaptation missed its goal; this is the full build)"),
             f"  held-out: {v['within_10pct']:.0%} within ±10%, {v['within_5pct']:.0%} within ±5%, Spearman "
             f"{v['spearman']:.3f}, bias {v['bias']:+.1f}% on {v['n']} subnets",
             f"  measured {d['measurements']} subnets in {d['device_seconds']} device s"]
    base = d["details"].get("global_scale_baseline")
    if base:
        lines.append(f"  one global scale alone: {base['within_10pct']:.0%} within ±10%, {base['within_5pct']:.0%} "
                     f"within ±5%, Spearman {base['spearman']:.3f}")
    return "\n".join(lines)
