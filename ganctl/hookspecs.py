"""The hooks a ganctl plugin can implement.

Each ``register_<kind>`` hook receives ``register(name, factory)`` and calls it once per component it
provides; ``register_commands`` receives a Typer app and adds commands to it.
See :mod:`ganctl.api` for the factory contract and ``docs/plugins.md`` for a guide.
Hook specifications only grow: new arguments may be added, none are removed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

from ganctl.api import Register

if TYPE_CHECKING:
    import typer

hookspec = pluggy.HookspecMarker("ganctl")


@hookspec
def register_models(register: Register) -> None:
    """Register generative model factories (e.g. ``register("dcgan", DCGAN)``)."""


@hookspec
def register_datasets(register: Register) -> None:
    """Register dataset factories; each builds an ``api.Dataset`` from its ``Params``."""


@hookspec
def register_metrics(register: Register) -> None:
    """Register metric factories, usable in a recipe's ``metrics:`` list and ``ganctl evaluate``."""


@hookspec
def register_exporters(register: Register) -> None:
    """Register exporter factories, usable in a recipe's ``export:`` list and ``ganctl export``."""


@hookspec
def register_feature_extractors(register: Register) -> None:
    """Register feature-extractor factories (API 1.2), used by metrics (``features:`` in a metric section)."""


@hookspec
def register_commands(cli: typer.Typer) -> None:
    """Add ``ganctl`` subcommands (API 1.7): ``cli`` is a ``typer.Typer`` of this plugin's own, and each
    command (``@cli.command()``) or group (``cli.add_typer(group, name=...)``) added to it becomes
    ``ganctl NAME``."""
