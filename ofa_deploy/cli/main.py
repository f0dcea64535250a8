"""Entry point of `ofa-deploy` / `python -m ofa_deploy`.

Sub-commands live in their own modules and are imported only when used, so `ofa-deploy --help`
does not pay for torch, onnxruntime or TVM.
"""
from __future__ import annotations

import importlib
import logging
import os
import sys
from typing import Any

import click

EXIT_INTERRUPTED = 130
DEBUG_ENV = "OFA_DEPLOY_DEBUG"

# command name -> "module:attribute" of its click command or group
COMMANDS: dict[str, str] = {
    "list": "ofa_deploy.cli.core:list_group",
    "sample": "ofa_deploy.cli.core:sample_cmd",
    "macs": "ofa_deploy.cli.core:macs_cmd",
    "env": "ofa_deploy.cli.core:env_cmd",
    "export": "ofa_deploy.cli.export:export_group",
    "profile": "ofa_deploy.cli.profile:profile_group",
    "predict": "ofa_deploy.cli.predict:predict_group",
    "accuracy": "ofa_deploy.cli.accuracy:accuracy_group",
    "search": "ofa_deploy.cli.search:search_cmd",
    "deploy": "ofa_deploy.cli.deploy:deploy_cmd",
    "demo": "ofa_deploy.cli.deploy:demo_cmd",
    "measure": "ofa_deploy.cli.measure:measure_cmd",
}


VERBOSITY_FLAGS = ("-q", "--quiet", "--verbose")


def _hoist_verbosity(args: list[str]) -> list[str]:
    """Move ``-v``/``-vv``/``--verbose``/``-q``/``--quiet`` from anywhere (before ``--``) to the front, so they
    work after the sub-command too (``ofa-deploy search ... -v``)."""
    front: list[str] = []
    rest: list[str] = []
    for i, arg in enumerate(args):
        if arg == "--":
            rest += args[i:]
            break
        if arg in VERBOSITY_FLAGS or (len(arg) > 1 and arg[0] == "-" and set(arg[1:]) == {"v"}):
            front.append(arg)
        else:
            rest.append(arg)
    return front + rest


def _wants_json(args: list[str]) -> bool:
    """Whether the command line asks for ``--format json`` (errors are then JSON too)."""
    return any(a == "--format=json" or (a == "--format" and i + 1 < len(args) and args[i + 1] == "json")
               for i, a in enumerate(args))


class LazyGroup(click.Group):
    """A click group whose sub-commands are imported on first use; errors never end in a traceback."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        # an import failure inside a command module is a real error (reported by main), never "no such command"
        return getattr(importlib.import_module(module_name), attr)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, _hoist_verbosity(list(args)))

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        """click's main, plus: usage errors as JSON with ``--format json``; Ctrl-C exits 130; an unexpected
        exception is one line (exit 1) unless ``OFA_DEPLOY_DEBUG=1`` asks for the traceback."""
        from ofa_deploy.cli.common import exit_code_for, report_error
        from ofa_deploy.errors import OfaDeployError

        argv = list(sys.argv[1:] if args is None else args)
        if not standalone_mode:
            return super().main(argv, prog_name, complete_var, standalone_mode, **extra)
        as_json = _wants_json(argv)
        try:
            rv = super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
        except click.ClickException as exc:
            if as_json:
                report_error(exc, exc.exit_code, as_json=True)
            else:
                exc.show()
            sys.exit(exc.exit_code)
        except (click.Abort, KeyboardInterrupt):
            click.echo("Aborted.", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except OfaDeployError as exc:  # raised outside a command body (e.g. while loading a command)
            code = exit_code_for(exc)
            report_error(exc, code, as_json=as_json)
            sys.exit(code)
        except Exception as exc:  # noqa: BLE001 - the CLI never ends in a traceback unless asked
            if os.environ.get(DEBUG_ENV, "") not in ("", "0"):
                raise
            report_error(exc, 1, as_json=as_json,
                         hint=f"this is a bug in ofa-deploy or an unexpected environment; rerun with {DEBUG_ENV}=1 "
                              "for the traceback and report it")
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option("-v", "--verbose", count=True, help="More log output on stderr (-v info, -vv debug); works anywhere.")
@click.option("-q", "--quiet", is_flag=True, help="Only errors on stderr: no progress messages or bars.")
@click.version_option(package_name="ofa-deploy")
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: bool) -> None:
    """Take Once-for-All supernets to real hardware: extract, export, profile, predict, search, deploy.

    \b
    Exit codes: 0 ok, 1 bad input or a domain error, 2 usage, 3 export failed validation,
    4 budget not verified on the target, 130 interrupted.
    Environment: OFA_DEPLOY_CACHE, OFA_DEPLOY_PROFILES, OFA_DEPLOY_DISABLE_PROGRESS_BARS, OFA_DEPLOY_DEBUG
    (see the README). Shell completion: eval "$(_OFA_DEPLOY_COMPLETE=bash_source ofa-deploy)".
    """
    from ofa_deploy.progress import DISABLE_ENV

    level = logging.ERROR if quiet else logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 \
        else logging.DEBUG
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(level)
    if quiet:
        os.environ[DISABLE_ENV] = "1"
    ctx.obj = {"verbose": verbose, "quiet": quiet}


def main() -> None:
    cli(prog_name="ofa-deploy")
