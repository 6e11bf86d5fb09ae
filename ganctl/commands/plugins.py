"""``ganctl plugins``: the installed plugins, what each registers, and failures."""

from __future__ import annotations

import json

import typer

from ganctl.console import guarded, load_plugins, stdout

app = typer.Typer(rich_markup_mode=None)
"""The ``plugins`` group: bare, it lists the plugins; its subcommands (``new``) are added in cli.py."""


def register(parent: typer.Typer) -> None:
    app.callback(invoke_without_command=True)(plugins)
    parent.add_typer(app, name="plugins")


@guarded
def plugins(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list instead of a table."),
) -> None:
    """List installed plugins: distribution, version, what each registers, and failures."""
    if ctx.invoked_subcommand is not None:
        return
    from ganctl.api import KINDS

    host = load_plugins()
    if as_json:
        typer.echo(json.dumps([p.to_dict() for p in host.plugins], indent=2))
        return
    from rich.table import Table
    from rich.text import Text

    table = Table(title="ganctl plugins", title_justify="left")
    for column in ("plugin", "distribution", "version"):
        table.add_column(column, no_wrap=True)
    for column in ("kinds", "registered names", "status"):
        table.add_column(column, overflow="fold")
    for info in host.plugins:
        kinds = [kind for kind in KINDS if info.registered[kind]]
        names = "\n".join(f"{kind}: {', '.join(info.registered[kind])}" for kind in kinds)
        if info.status == "loaded":
            status = Text.assemble(("loaded", "green"), " (built-in)" if info.builtin else "")
        elif info.status == "skipped":
            status = Text.assemble(("skipped", "yellow"), f": {info.error}")
        else:
            status = Text.assemble(("failed", "red"), f": {info.error}")
        table.add_row(info.name, info.distribution, info.version, ", ".join(kinds), names, status)
    stdout().print(table)
