"""Shared CLI plumbing: error → exit code mapping, output, subnet parsing (the shared options: `cli.options`)."""
from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from ofa_deploy.errors import BudgetNotVerifiedError, ConfigError, OfaDeployError, ValidationFailedError
from ofa_deploy.fileio import is_regular_file, parse_json_text, read_json_file
from ofa_deploy.spaces import SearchSpace, SubnetConfig

F = TypeVar("F", bound=Callable[..., Any])

EXIT_DOMAIN_ERROR = 1
EXIT_VALIDATION_FAILED = 3
EXIT_BUDGET_NOT_VERIFIED = 4

def report_error(exc: BaseException, exit_code: int, *, as_json: bool, hint: str | None = None) -> None:
    """Print an error on stderr: ``error: ...`` or, with ``--format json``, one JSON object
    ``{"error": {"type", "message", "exit_code"[, "hint"]}}``."""
    message = exc.format_message() if isinstance(exc, click.ClickException) else str(exc)
    if as_json:
        body: dict[str, Any] = {"type": type(exc).__name__, "message": message, "exit_code": exit_code}
        if hint:
            body["hint"] = hint
        click.echo(json.dumps({"error": body}, sort_keys=True), err=True)
    else:
        click.echo(f"error: {message}" + (f"\n{hint}" if hint else ""), err=True)


def exit_code_for(exc: OfaDeployError) -> int:
    """3 for an export that failed validation, 4 for a budget not verified on the target, else 1."""
    if isinstance(exc, ValidationFailedError):
        return EXIT_VALIDATION_FAILED
    if isinstance(exc, BudgetNotVerifiedError):
        return EXIT_BUDGET_NOT_VERIFIED
    return EXIT_DOMAIN_ERROR


def handle_errors(func: F) -> F:
    """Turn toolchain errors into a message on stderr (JSON with ``--format json``) and exit 1 (3: validation
    failed, 4: budget not verified)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except OfaDeployError as exc:
            code = exit_code_for(exc)
            report_error(exc, code, as_json=kwargs.get("output_format") == "json")
            sys.exit(code)

    return wrapper  # type: ignore[return-value]


def is_quiet() -> bool:
    """Whether the top-level ``-q/--quiet`` was given (progress messages are then not printed)."""
    ctx = click.get_current_context(silent=True)
    obj = ctx.find_root().obj if ctx is not None else None
    return bool(obj and obj.get("quiet"))


def say(msg: str) -> None:
    """A timestamped progress message on stderr, unless ``-q``."""
    if not is_quiet():
        import time

        click.echo(f"[{time.strftime('%H:%M:%S')}] {msg}", err=True)


def emit(data: Any, output_format: str, human: Callable[[Any], str] | None = None) -> None:
    """Print a result on stdout as JSON or as human text."""
    if output_format == "json":
        click.echo(json.dumps(data, indent=2, sort_keys=False, default=str))
    else:
        click.echo(human(data) if human else json.dumps(data, indent=2, default=str))


def parse_subnet(space: SearchSpace, text: str, resolution: int | None = None) -> SubnetConfig:
    """A subnet from ``max`` | ``min`` | a compact string | JSON (ours or an OFA arch dict) | a .json path."""
    text = text.strip()
    if resolution is not None:
        space.check_resolution(resolution)
    if text in ("max", "min"):
        return space.max_config(resolution) if text == "max" else space.min_config(resolution)
    if text.startswith("{"):
        cfg = _config_from_json(space, text, "--subnet JSON", resolution)
    elif text.endswith(".json") or is_regular_file(text):
        data = read_json_file(text, what="--subnet file", hint="expected 'max', 'min', a compact string like "
                              "'r224-d2,3,4,...', JSON, or a path to a .json file")
        cfg = _config_from_data(space, data, "--subnet file", resolution)
    else:
        try:
            cfg = SubnetConfig.from_string(text)
        except ConfigError as exc:
            raise ConfigError(f"{exc}; --subnet also accepts 'max', 'min', JSON or a .json path") from exc
    if resolution is not None:
        cfg = cfg.replace(resolution=resolution)
    return space.validate(cfg)


def _config_from_json(space: SearchSpace, text: str, where: str, resolution: int | None) -> SubnetConfig:
    return _config_from_data(space, parse_json_text(text, where=where), where, resolution)


def _config_from_data(space: SearchSpace, data: Any, where: str, resolution: int | None) -> SubnetConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a JSON object, got {type(data).__name__}")
    if "resolution" in data or "depths" in data:
        return SubnetConfig.from_dict(data)
    if resolution is None and data.get("image_size") is None and data.get("r") is None:
        raise ConfigError(f"{where} is an OFA arch dict without 'image_size'; add it or pass --resolution")
    return space.from_ofa(data, resolution)


def check_model_source(*, supernet: str | None, subnet: str | None, net_config: str | None,
                       run_config: str | None) -> None:
    """A model comes from --supernet/--subnet or from --net-config [--run-config], never both (usage error)."""
    if net_config is not None and (supernet or subnet):
        raise click.UsageError("use either --net-config or --supernet/--subnet, not both")
    if net_config is None and not (supernet and subnet):
        raise click.UsageError("pass --supernet NAME --subnet SUBNET, or --net-config PATH")
    if run_config is not None and net_config is None:
        raise click.UsageError("--run-config only goes with --net-config")
