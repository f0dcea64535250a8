"""Entry point of `ofa-deploy` / `python -m ofa_deploy`.

Sub-commands live in their own modules and are imported only when used, so `ofa-deploy --help`
does not pay for torch, onnxruntime or TVM.
"""
from __future__ import annotations

import importlib
import logging
import sys

import click

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
}


class LazyGroup(click.Group):
    """A click group whose sub-commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("ofa_deploy"):
                return None  # command not built yet
            raise
        return getattr(module, attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option("-v", "--verbose", count=True, help="More log output on stderr (-v info, -vv debug).")
@click.version_option(package_name="ofa-deploy")
def cli(verbose: int) -> None:
    """Take Once-for-All supernets to real hardware: extract, export, profile, predict, search, deploy."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")


def main() -> None:
    cli(prog_name="ofa-deploy")
