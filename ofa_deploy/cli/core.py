"""Core commands: ``list supernets``, ``sample``, ``macs``, ``env``.

Torch is imported only where a model is built (``macs --check`` and ``--net-config``) and by ``env``.
"""
from __future__ import annotations

import logging
import os
import platform
import sys
from collections.abc import Callable
from typing import Any

import click

from ofa_deploy.cli.common import (
    EXIT_DOMAIN_ERROR,
    check_model_source,
    emit,
    handle_errors,
    parse_subnet,
)
from ofa_deploy.cli.options import (
    format_option,
    net_config_options,
    resolution_option,
    seed_option,
    subnet_option,
    supernet_option,
)
from ofa_deploy.spaces import LayerSpec, SearchSpace, SubnetConfig, get_space, list_spaces, space_description

logger = logging.getLogger(__name__)

NOT_INSTALLED = "not installed"


# ---------------------------------------------------------------------------------------------
# list
# ---------------------------------------------------------------------------------------------
def _emit_table(rows: list[dict[str, Any]], output_format: str, header: str, line: Callable[[dict[str, Any]], str],
                *, empty: str | None = None) -> None:
    """Print `rows` in `output_format`; for people, `header` then `line(row)` for each row (`empty` when none)."""
    def human(data: list[dict[str, Any]]) -> str:
        if not data and empty is not None:
            return empty
        return "\n".join([header, *(line(r) for r in data)])

    emit(rows, output_format, human)


@click.group("list")
def list_group() -> None:
    """List registered things: supernets, hardware profiles, stored latency tables."""


@list_group.command("profiles")
@format_option
@handle_errors
def list_profiles_cmd(output_format: str) -> None:
    """The hardware profiles (packaged, and yours in $OFA_DEPLOY_PROFILES or ~/.config/ofa-deploy/hardware_profiles)."""
    from ofa_deploy.profiling.hardware import HardwareProfile, list_profiles

    rows = []
    for name in list_profiles():
        prof = HardwareProfile.load(name)
        rows.append({"name": prof.name, "backend": prof.backend, "device_kind": prof.device_kind,
                     "threads": prof.intra_op_threads, "precision": prof.precision, "path": str(prof.path),
                     "description": prof.description})
    _emit_table(rows, output_format, f"{'name':<20} {'backend':<12} {'device':<7} {'threads':>7}  description",
                lambda r: f"{r['name']:<20} {r['backend']:<12} {r['device_kind']:<7} {r['threads']!s:>7}  "
                          f"{r['description']}")


@list_group.command("tables")
@format_option
@handle_errors
def list_tables_cmd(output_format: str) -> None:
    """The stored latency tables that `--profile` finds: built here (the cache) first, then the packaged ones."""
    from ofa_deploy.profiling.lut import stored_tables

    rows = stored_tables()
    _emit_table(rows, output_format, f"{'profile':<20} {'supernet':<20} {'host':<20} {'where':<9} path",
                lambda r: f"{r['profile']:<20} {r['supernet']:<20} {r['host'] or '-':<20} {r['where']:<9} {r['path']}",
                empty="no stored latency tables; build one with `ofa-deploy profile build --profile P --supernet S`")


@list_group.command("supernets")
@format_option
@handle_errors
def list_supernets_cmd(output_format: str) -> None:
    """The supernets (search spaces) with their size and resolution range."""
    rows = []
    for name in list_spaces():
        space = get_space(name)
        info = space.describe()
        lo, hi, n_res = info["resolutions"]  # type: ignore[misc]
        rows.append({"name": name, "family": space.family, "description": space_description(name),
                     "log10_size": round(float(info["log10_size"]), 2),  # type: ignore[arg-type]
                     "resolution_min": lo, "resolution_max": hi, "n_resolutions": n_res,
                     "n_genes": info["n_genes"]})
    def line(r: dict[str, Any]) -> str:
        res = f"{r['resolution_min']}-{r['resolution_max']} ({r['n_resolutions']})"
        return f"{r['name']:<20} {r['family']:<10} {r['log10_size']:>10.1f}  {res:<16} {r['description']}"

    _emit_table(rows, output_format, f"{'name':<20} {'family':<10} {'log10 size':>10}  {'resolutions':<16} description",
                line)


# ---------------------------------------------------------------------------------------------
# sample
# ---------------------------------------------------------------------------------------------
def _space(name: str) -> SearchSpace:
    return get_space(name)  # UnknownNameError lists close matches


def _cost_dict(specs: list[LayerSpec]) -> dict[str, Any]:
    from ofa_deploy.predictors.macs import count_layers

    cost = count_layers(specs)
    return {"macs": cost.macs, "mmacs": round(cost.macs / 1e6, 3), "flops": cost.flops, "params": cost.params,
            "mparams": round(cost.params / 1e6, 4)}


@click.command("sample")
@supernet_option()
@click.option("-n", "--num", "n", type=click.IntRange(min=1), default=5, show_default=True, help="How many subnets.")
@seed_option(default=None, note="default: fresh; the seed used is reported")
@resolution_option(note="every sample at it")
@format_option
@handle_errors
def sample_cmd(supernet: str, n: int, seed: int | None, resolution: int | None, output_format: str) -> None:
    """Sample random subnets; print their compact strings with MACs and params."""
    space = _space(supernet)
    if resolution is not None:
        space.check_resolution(resolution)
    if seed is None:
        seed = int.from_bytes(os.urandom(4), "little")
    subnets = []
    for cfg in space.sample_batch(n, seed, resolution):
        subnets.append({"config": cfg.to_string(), "subnet": cfg.to_dict(), **_cost_dict(space.walk_layers(cfg))})
    data = {"supernet": supernet, "seed": seed, "subnets": subnets}

    def human(d: dict[str, Any]) -> str:
        lines = [f"# {d['supernet']}, seed {d['seed']}"]
        lines += [f"{s['mmacs']:9.1f}M MACs {s['mparams']:7.2f}M params  {s['config']}" for s in d["subnets"]]
        return "\n".join(lines)

    emit(data, output_format, human)


# ---------------------------------------------------------------------------------------------
# macs
# ---------------------------------------------------------------------------------------------
def _layer_rows(specs: list[LayerSpec]) -> list[dict[str, Any]]:
    from ofa_deploy.spaces.costs import layer_macs, layer_params

    return [{"index": i, "role": s.role, "layer": s.short(), "macs": layer_macs(s), "params": layer_params(s),
             "spec": s.to_dict()} for i, s in enumerate(specs)]


def _build_for_check(supernet: str | None, cfg: SubnetConfig | None, net_config: Any) -> tuple[Any, str]:
    """The real model to run the hook counter on, and how it was obtained."""
    if net_config is not None:
        return net_config, "built from the net.config"
    from ofa_deploy.supernets import create_supernet

    assert supernet is not None and cfg is not None
    return create_supernet(supernet).extract(cfg), "extracted from the supernet"


@click.command("macs")
@supernet_option(required=False, note="with --subnet")
@subnet_option()
@net_config_options
@resolution_option(note="overrides the config's")
@click.option("--per-layer", is_flag=True, help="List every layer with its MACs.")
@click.option("--check", is_flag=True, help="Also build the model and compare with the hook counter (exit 1 if off).")
@format_option
@handle_errors
def macs_cmd(supernet: str | None, subnet: str | None, net_config: str | None, run_config: str | None,
             resolution: int | None, per_layer: bool, check: bool, output_format: str) -> None:
    """MACs (OFA's "FLOPs": conv + linear multiply-accumulates) and params of one subnet."""
    check_model_source(supernet=supernet, subnet=subnet, net_config=net_config, run_config=run_config)
    model: Any = None
    if net_config is not None:
        from ofa_deploy.compat.net_config import load_net_config, resolve_resolution

        res = resolve_resolution(net_config, run_config, resolution)
        model = load_net_config(net_config, run_config, res)
        specs = list(model.specs)
        data: dict[str, Any] = {"net_config": net_config, "network": model.meta["net_config"], "resolution": res}
        cfg = None
    else:
        assert supernet is not None and subnet is not None
        space = _space(supernet)
        cfg = parse_subnet(space, subnet, resolution)
        specs = space.walk_layers(cfg)
        data = {"supernet": supernet, "subnet": cfg.to_string(), "resolution": cfg.resolution}
    data.update(_cost_dict(specs))
    if per_layer:
        data["layers"] = _layer_rows(specs)
    mismatch = None
    if check:
        from ofa_deploy.predictors.macs import count_module

        built, how = _build_for_check(supernet, cfg, model)
        r = data["resolution"]
        hooked = count_module(built, (1, 3, r, r))
        ok = hooked.macs == data["macs"] and hooked.params == data["params"]
        data["check"] = {"model": how, "hook_macs": hooked.macs, "hook_params": hooked.params, "match": ok}
        if not ok:
            mismatch = (f"the hook counter on the model {how} gives {hooked.macs} MACs / {hooked.params} params, "
                        f"the layer walk {data['macs']} / {data['params']}")
    emit(data, output_format, _macs_human)
    if mismatch:
        click.echo(f"error: {mismatch}", err=True)
        sys.exit(EXIT_DOMAIN_ERROR)


def _macs_human(d: dict[str, Any]) -> str:
    head = d.get("subnet") or d.get("net_config")
    lines = [f"{head} @ {d['resolution']}px",
             f"MACs:   {d['mmacs']:.2f}M  (FLOPs = 2 x MACs = {2 * d['mmacs']:.2f}M)",
             f"params: {d['mparams']:.3f}M"]
    if "layers" in d:
        lines.append(f"{'#':>3} {'role':<12} {'MMACs':>9} {'params':>10}  layer")
        for row in d["layers"]:
            lines.append(f"{row['index']:>3} {row['role']:<12} {row['macs'] / 1e6:>9.2f} {row['params']:>10}  "
                         f"{row['layer']}")
    if "check" in d:
        c = d["check"]
        verdict = "match" if c["match"] else "MISMATCH"
        lines.append(f"check ({c['model']}): hook counter {c['hook_macs'] / 1e6:.2f}M MACs, "
                     f"{c['hook_params'] / 1e6:.3f}M params: {verdict}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# env
# ---------------------------------------------------------------------------------------------
def _probe(fn: Callable[[], Any]) -> Any:
    """Run a version probe; a missing package reads "not installed", any other failure "error: ..."."""
    try:
        return fn()
    except ImportError:
        return NOT_INSTALLED
    except Exception as exc:  # an optional package that is installed but broken must not crash `env`
        return f"error: {type(exc).__name__}: {exc}"


def _torch_info() -> dict[str, Any]:
    import torch

    return {"version": torch.__version__, "threads": torch.get_num_threads(),
            "cuda": torch.cuda.is_available()}


def _onnx_version() -> str:
    import onnx

    return str(onnx.__version__)


def _ort_info() -> dict[str, Any]:
    import onnxruntime as ort

    return {"version": ort.__version__, "providers": list(ort.get_available_providers())}


def _tvm_info() -> dict[str, Any]:
    import tvm

    info: dict[str, Any] = {"version": tvm.__version__}
    info["llvm_cpu"] = _probe(lambda: str(tvm.target.codegen.llvm_get_system_cpu()))
    return info


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ofa-deploy")
    except PackageNotFoundError:
        import ofa_deploy

        return ofa_deploy.__version__


def cpu_info() -> dict[str, Any]:
    """CPU model, physical cores, logical threads and the threads this process may use (`read_host`)."""
    from ofa_deploy.hostinfo import read_host

    host = read_host()
    return {"model": host.cpu_model, "cores": host.physical_cores, "threads": host.cores,
            "available_threads": len(host.usable_cpus)}


def collect_env() -> dict[str, Any]:
    """Versions of everything the toolchain uses, never raising for optional packages."""
    return {
        "ofa_deploy": _probe(_package_version),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": _probe(_torch_info),
        "onnx": _probe(_onnx_version),
        "onnxruntime": _probe(_ort_info),
        "tvm": _probe(_tvm_info),
        "cpu": cpu_info(),
    }


def _env_human(d: dict[str, Any]) -> str:
    def fmt(value: Any) -> str:
        if isinstance(value, dict):
            return ", ".join(f"{k}={', '.join(v) if isinstance(v, list) else v}" if k != "version" else str(v)
                             for k, v in value.items())
        return str(value)

    return "\n".join(f"{key:<12} {fmt(value)}" for key, value in d.items())


@click.command("env")
@format_option
@handle_errors
def env_cmd(output_format: str) -> None:
    """Versions of Python, torch, ONNX, ONNX Runtime, TVM and ofa-deploy, and the CPU."""
    emit(collect_env(), output_format, _env_human)
