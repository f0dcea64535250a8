"""`ofa-deploy profile`: build, validate, plan and import per-layer latency tables (LUTs)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ofa_deploy.cli.common import emit, format_option, handle_errors


def _resolutions(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers such as 160,176,192, got {text!r}") from None


def _timer(profile: Any, rounds: int | None, repeats: int | None, warmup: int | None, clock: str | None) -> Any:
    from ofa_deploy.profiling.timer import TimerSettings

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


@click.group("profile")
def profile_group() -> None:
    """Measure per-layer latency tables on a hardware profile, and check them against whole subnets."""


@profile_group.command("build")
@click.option("--profile", "profile_name", required=True, help="Hardware profile name or YAML path.")
@click.option("--supernet", required=True, help="Search space name (see `ofa-deploy list supernets`).")
@click.option("--resolutions", default=None, help="Comma-separated input sides (default: all of the space's).")
@click.option("--out", default=None, type=click.Path(dir_okay=False),
              help="LUT JSON to write (default: hardware_profiles/luts/<profile>/<supernet>.json).")
@click.option("--resume/--no-resume", default=True, show_default=True,
              help="Continue from <out>.measurements.jsonl instead of starting over.")
@click.option("--method", type=click.Choice(["auto", "in_context", "isolated"]), default="auto", show_default=True,
              help="in_context: ORT profiler inside covering subnets (auto: ONNX Runtime on MobileNet spaces); "
                   "isolated: one model per layer.")
@click.option("--context-subnets", type=int, default=0, show_default=True,
              help="in_context: extra random subnets per resolution profiled besides the covering ones.")
@click.option("--limit", type=int, default=None,
              help="Quick checks: only the first N layers (isolated) or covering subnets (in_context).")
@click.option("--no-progress", is_flag=True, help="No progress bar on stderr.")
@_timer_options
@format_option
@handle_errors
def build_cmd(profile_name: str, supernet: str, resolutions: str | None, out: str | None, resume: bool,
              method: str, context_subnets: int, limit: int | None, no_progress: bool, rounds: int | None,
              repeats: int | None, warmup: int | None, clock: str | None, output_format: str) -> None:
    """Time every distinct layer of SUPERNET at RESOLUTIONS on PROFILE and write the LUT."""
    from ofa_deploy.profiling.builder import build_lut
    from ofa_deploy.profiling.hardware import HardwareProfile
    from ofa_deploy.profiling.lut import table_path
    from ofa_deploy.spaces import get_space

    profile = HardwareProfile.load(profile_name)
    space = get_space(supernet)
    path = Path(out) if out else table_path(profile.name, space.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    result = build_lut(space, _resolutions(resolutions), profile, path, resume=resume, limit=limit, method=method,
                       context_subnets=context_subnets,
                       progress=not no_progress, timer=_timer(profile, rounds, repeats, warmup, clock))
    emit(result.summary(), output_format,
         lambda d: f"wrote {d['path']}: {d['entries']} layers ({d['measured']} items measured, {d['reused']} "
                   f"reused) in {d['seconds']} s")


@profile_group.command("validate")
@click.option("--profile", "profile_name", required=True, help="Hardware profile name or YAML path.")
@click.option("--supernet", required=True, help="Search space name.")
@click.option("--lut", default=None, type=click.Path(dir_okay=False),
              help="LUT JSON (default: the stored table of the profile and supernet).")
@click.option("-n", "n", type=int, default=50, show_default=True, help="Random subnets to measure.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--resolutions", default=None, help="Resolutions to sample (default: the table's).")
@click.option("--out", default=None, type=click.Path(dir_okay=False),
              help="Report JSON (default: <lut>.validation.json).")
@click.option("--no-progress", is_flag=True)
@_timer_options
@format_option
@handle_errors
def validate_cmd(profile_name: str, supernet: str, lut: str | None, n: int, seed: int, resolutions: str | None,
                 out: str | None, no_progress: bool, rounds: int | None, repeats: int | None, warmup: int | None,
                 clock: str | None, output_format: str) -> None:
    """Measure N random subnets whole and compare them with the LUT's predictions."""
    from ofa_deploy.profiling.hardware import HardwareProfile
    from ofa_deploy.profiling.lut import LatencyTable, find_table
    from ofa_deploy.profiling.validate import validate_lut
    from ofa_deploy.spaces import get_space

    profile = HardwareProfile.load(profile_name)
    space = get_space(supernet)
    lut_path = Path(lut) if lut else find_table(profile.name, space.name)
    table = LatencyTable.load(lut_path)
    report_path = Path(out) if out else lut_path.with_name(lut_path.stem + ".validation.json")
    report = validate_lut(space, table, profile, n=n, seed=seed, resolutions=_resolutions(resolutions),
                          timer=_timer(profile, rounds, repeats, warmup, clock), out_path=report_path,
                          progress=not no_progress)
    data = {"report": str(report_path), "metrics": report.metrics, "noise_floor": report.noise_floor,
            "calibrated_held_out": report.calibrated.get("held_out"), "seconds": round(report.seconds, 1)}

    def human(d: dict) -> str:
        m, f = d["metrics"], d["noise_floor"]
        return (f"{m['n']} subnets: {m['within_10pct']:.0%} within ±10%, Spearman {m['spearman']:.3f}, "
                f"Kendall {m['kendall']:.3f}, mean |err| {m['mean_abs_pct_error']:.1f}% "
                f"(noise floor: {f['within_10pct']:.0%}, Spearman {f['spearman']:.3f}); report {d['report']}")

    emit(data, output_format, human)


@profile_group.command("plan")
@click.option("--supernet", required=True, help="Search space name.")
@click.option("--resolutions", default=None, help="Comma-separated input sides (default: all of the space's).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Directory for plan.json + models/.")
@click.option("--profile", "profile_name", default=None, help="Hardware profile stored in the plan (batch size).")
@click.option("--ort", "ort_format", is_flag=True, help="Also write .ort models (Runtime style, for ORT mobile).")
@click.option("--in-context", "in_context", is_flag=True,
              help="Also export the covering subnets so the device can time layers in context (~25 MB each).")
@click.option("--limit", type=int, default=None, help="Only the first N layers.")
@format_option
@handle_errors
def plan_cmd(supernet: str, resolutions: str | None, out: str, profile_name: str | None, ort_format: bool,
             in_context: bool, limit: int | None, output_format: str) -> None:
    """Export one model per distinct layer + plan.json for benchmarks/ondevice_profile.py."""
    from ofa_deploy.profiling.hardware import HardwareProfile
    from ofa_deploy.profiling.plan import make_plan, write_plan
    from ofa_deploy.spaces import get_space

    profile = HardwareProfile.load(profile_name) if profile_name else None
    space = get_space(supernet)
    plan = make_plan(space, _resolutions(resolutions), batch_size=profile.batch_size if profile else 1, limit=limit)
    if in_context and limit is not None:
        raise click.UsageError("--in-context needs the full plan; drop --limit")
    path = write_plan(plan, out, profile=profile, ort_format=ort_format, space=space if in_context else None)
    emit({"plan": str(path), "layers": len(plan), "space": space.name, "resolutions": list(plan.resolutions)},
         output_format, lambda d: f"wrote {d['plan']} ({d['layers']} layer models)")


@profile_group.command("import")
@click.argument("results", type=click.Path(exists=True, dir_okay=False))
@click.option("--plan", "plan_dir", required=True, type=click.Path(exists=True), help="The plan directory.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="LUT JSON to write.")
@format_option
@handle_errors
def import_cmd(results: str, plan_dir: str, out: str, output_format: str) -> None:
    """Turn RESULTS of benchmarks/ondevice_profile.py into a LUT."""
    from ofa_deploy.profiling.ondevice_import import import_results

    table = import_results(results, plan_dir, out)
    emit({"lut": out, "entries": len(table), "device": table.provenance.device,
          "provider": table.provenance.execution_provider}, output_format,
         lambda d: f"wrote {d['lut']} ({d['entries']} layers from {d['device']})")
