"""The click options more than one command takes, each defined once: ``--format``, ``--supernet``, ``--profile``,
``--weights``, ``--subnet``, ``--resolution``, ``--net-config``/``--run-config``, ``--seed``.

Where commands differ (required or not, one value or many, a note on what the command does with it) the option is
a small factory; its name, destination, type and help text are written here only. (A required option gets no
``default``: with click 8.3 an explicit ``default=None`` counts as given.) Options that come with their
loader (accuracy predictor, latency budgets, calibration data) live beside it in `ofa_deploy.cli.inputs`.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]

#: the hardware profile of commands that measure on this machine when none is named
DEFAULT_PROFILE = "ort-cpu-1t"

format_option = click.option(
    "--format", "output_format", type=click.Choice(["human", "json"]), default="human", show_default=True,
    help="Result format on stdout.",
)


def _help(text: str, note: str) -> str:
    return f"{text}{'; ' + note if note else ''}."


def supernet_option(*, required: bool = True, dest: str = "supernet", note: str = "") -> Decorator:
    """``--supernet NAME``: a registry name (`ofa-deploy list supernets`)."""
    return click.option("--supernet", dest, required=required, metavar="NAME",
                        help=_help("Supernet name (see `ofa-deploy list supernets`), e.g. ofa_mbv3_w12", note))


def profile_option(*, default: str | None = DEFAULT_PROFILE, required: bool = False, tables: bool = False,
                   note: str = "") -> Decorator:
    """``--profile``: the hardware profile a command runs with (to ``profile_name``; ``required=True``: no default),
    or with ``tables=True`` the stored latency tables of one or more profiles (repeatable, to ``profiles``)."""
    if tables:
        return click.option("--profile", "profiles", multiple=True, metavar="NAME",
                            help=_help("The stored latency table of this hardware profile (`ofa-deploy list "
                                       "tables`); repeatable", note))
    given: dict[str, Any] = ({"required": True} if required  # a required option gets no default (see above)
                             else {"default": default, "show_default": default is not None})
    return click.option("--profile", "profile_name", metavar="NAME|YAML", **given,
                        help=_help("Hardware profile: a name (`ofa-deploy list profiles`) or a YAML path", note))


def weights_option(*, required: bool = False, note: str = "") -> Decorator:
    """``--weights NAME|PATH``: supernet weights, as `ofa_deploy.create_supernet` takes them."""
    return click.option("--weights", required=required, metavar="NAME|PATH",
                        type=click.Path(dir_okay=False),
                        help=_help("Supernet weights: a released name (ofa_mbv3_w12, or its file name; fetched once "
                                   "into the cache), an OFA checkpoint, or an ofa-deploy .pt with its .json "
                                   "sidecar", note))


def subnet_option(*, required: bool = False, multiple: bool = False, note: str = "") -> Decorator:
    """``--subnet``: one subnet of the supernet (to ``subnet``), or with ``multiple=True`` several (``subnets``)."""
    return click.option("--subnet", "subnets" if multiple else "subnet", required=required, multiple=multiple,
                        help=_help("Subnet: 'max', 'min', a compact string (r224-d4,...-k...-e...), JSON (ours or an "
                                   "OFA arch dict {ks,e,d}) or a .json path", note))


def resolution_option(*, note: str = "overrides the subnet's") -> Decorator:
    """``--resolution/-r PX``: the input side (by default overriding the subnet's)."""
    return click.option("--resolution", "-r", type=int, default=None, metavar="PX",
                        help=_help("Input resolution in px, one of the space's", note))


def net_config_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--net-config PATH`` and ``--run-config PATH``: an OFA specialized net instead of ``--supernet/--subnet``."""
    func = click.option("--run-config", "run_config", default=None, type=click.Path(dir_okay=False),
                        help="run.config giving image_size (with --net-config; default: the one beside it).")(func)
    return click.option("--net-config", "net_config", default=None, type=click.Path(),
                        help="An OFA specialized net.config (or its folder) instead of --supernet/--subnet.")(func)


def seed_option(*, default: int | None = 0, note: str = "") -> Decorator:
    """``--seed N``: the random seed (default 0, or None for a fresh one the command reports)."""
    return click.option("--seed", type=int, default=default, show_default=default is not None,
                        help=_help("Random seed", note))


__all__ = ["DEFAULT_PROFILE", "format_option", "net_config_options", "profile_option", "resolution_option",
           "seed_option", "subnet_option", "supernet_option", "weights_option"]
