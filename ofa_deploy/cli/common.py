"""Shared CLI plumbing: output format, error → exit code mapping, subnet selection options."""
from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from ofa_deploy.errors import OfaDeployError, ValidationFailedError

F = TypeVar("F", bound=Callable[..., Any])

EXIT_DOMAIN_ERROR = 1
EXIT_VALIDATION_FAILED = 3

format_option = click.option(
    "--format", "output_format", type=click.Choice(["human", "json"]), default="human", show_default=True,
    help="Result format on stdout.",
)


def handle_errors(func: F) -> F:
    """Turn toolchain errors into a one-line message on stderr and exit code 1 (3: validation failed)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ValidationFailedError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_VALIDATION_FAILED)
        except OfaDeployError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_DOMAIN_ERROR)

    return wrapper  # type: ignore[return-value]


def emit(data: Any, output_format: str, human: Callable[[Any], str] | None = None) -> None:
    """Print a result on stdout as JSON or as human text."""
    if output_format == "json":
        click.echo(json.dumps(data, indent=2, sort_keys=False, default=str))
    else:
        click.echo(human(data) if human else json.dumps(data, indent=2, default=str))
