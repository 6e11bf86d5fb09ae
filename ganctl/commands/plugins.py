"""``ganctl plugins``: the installed plugins, what each registers, and failures; ``install`` and
``uninstall`` run pip in the environment ganctl runs in (as ``llm install`` does)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

import typer

from ganctl.console import fail, guarded, load_plugins, stdout, warn
from ganctl.plugin_index import BUILTIN_DISTRIBUTION, entries, normalise

app = typer.Typer(help="List installed plugins (with no subcommand); install or uninstall them.",
                  no_args_is_help=False, invoke_without_command=True)
"""The ``plugins`` group: bare, it lists the plugins; ``install`` and ``uninstall`` are below, ``new``
(the scaffold) is added in cli.py."""


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="plugins")


@app.callback(invoke_without_command=True)
@guarded
def plugins(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list instead of a table."),
) -> None:
    """List installed plugins: distribution, version, the API version each needs, what each
    registers, and failures."""
    if ctx.invoked_subcommand is not None:
        return
    from ganctl.plugin_commands import refresh

    host = load_plugins()
    refresh(host)  # `ganctl --help` lists plugin commands from this cache
    rows = [p.to_dict() for p in host.plugins]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    _table(rows)


def _table(rows: list[dict[str, Any]]) -> None:
    from rich.table import Table
    from rich.text import Text

    from ganctl.api import KINDS

    table = Table(title="ganctl plugins", title_justify="left")
    for column in ("plugin", "distribution", "version", "API"):
        table.add_column(column, no_wrap=True)
    for column in ("kinds", "registered names", "status"):
        table.add_column(column, overflow="fold")
    for row in rows:
        kinds = [kind for kind in (*KINDS, "commands") if row.get(kind)]
        names = "\n".join(f"{kind}: {', '.join(row[kind])}" for kind in kinds)
        if row["status"] == "loaded":
            status = Text.assemble(("loaded", "green"), " (built-in)" if row["builtin"] else "")
        elif row["status"] == "skipped":
            status = Text.assemble(("skipped", "yellow"), f": {row['error']}")
        else:
            status = Text.assemble(("failed", "red"), f": {row['error']}")
        table.add_row(row["name"], row["distribution"], row["version"], row.get("api") or "-", ", ".join(kinds),
                      names, status)
    stdout().print(table)


def _pip(*args: str) -> None:
    """Run pip in ganctl's own environment, its output passed through; a failure is an error."""
    command = [sys.executable, "-m", "pip", *args]
    code = subprocess.run(command).returncode
    if code != 0:
        raise fail(f"`{' '.join(command)}` failed (exit {code}); pip's output above says why.", 1)


def _versions() -> dict[str, str]:
    """Installed distributions with ganctl plugins: normalised name -> version."""
    import importlib

    importlib.invalidate_caches()
    return {normalise(e.distribution): e.version for e in entries(env={})}


def _requirement_name(text: str) -> str:
    return normalise(re.split(r"[\s<>=!~\[;@]", text.strip(), maxsplit=1)[0])


@app.command("install")
@guarded
def install(
    packages: list[str] = typer.Argument(None, metavar="PACKAGE", help="What to install: names from PyPI "
                                         "(with version specifiers), local folders or wheel files.",
                                         show_default=False),
    editable: list[str] = typer.Option(None, "-e", "--editable", metavar="FOLDER", help="A local folder to "
                                       "install in editable mode (repeatable).", show_default=False),
    upgrade: bool = typer.Option(False, "-U", "--upgrade", help="Upgrade what is already installed."),
) -> None:
    """Install plugins with pip into the environment ganctl runs in, then show what each registered.

    pip's own options go after `--` (e.g. `ganctl plugins install ganctl-squares -- --pre`).
    """
    wanted = [*(packages or []), *(item for path in editable or [] for item in ("-e", path))]
    if not wanted:
        raise fail("name at least one package, folder or wheel to install (or -e FOLDER); "
                   "e.g. `ganctl plugins install ganctl-squares`.")
    before = _versions()
    _pip("install", *(["--upgrade"] if upgrade else []), *wanted)
    changed = {name for name, version in _versions().items() if before.get(name) != version}
    changed |= {_requirement_name(p) for p in packages or []}  # named and already up to date: show it anyway
    changed.discard(BUILTIN_DISTRIBUTION)
    listing = subprocess.run([sys.executable, "-m", "ganctl", "plugins", "--json"], capture_output=True, text=True)
    if listing.returncode != 0:  # e.g. GANCTL_STRICT_PLUGINS and a plugin that fails
        sys.stderr.write(listing.stderr)
        raise fail("installed, but `ganctl plugins` failed (above).", 1)
    rows = [row for row in json.loads(listing.stdout) if normalise(row["distribution"]) in changed]
    if not rows:
        warn("pip installed it, but it holds no ganctl plugin (no entry point in the `ganctl` group).")
        return
    _table(rows)
    failed = [row for row in rows if row["status"] == "failed"]
    if failed:
        names = ", ".join(f"'{row['name']}' ({row['distribution']} {row['version']})" for row in failed)
        raise fail(f"installed, but plugin {names} failed to load (see the table); fix it, or remove it with "
                   f"`ganctl plugins uninstall {' '.join(row['distribution'] for row in failed)}`.", 1)


@app.command("uninstall")
@guarded
def uninstall(
    packages: list[str] = typer.Argument(..., metavar="PACKAGE", help="Distributions to uninstall "
                                         "(e.g. ganctl-squares).", show_default=False),
    yes: bool = typer.Option(False, "-y", "--yes", help="Do not ask for confirmation."),
) -> None:
    """Uninstall plugin distributions with pip from the environment ganctl runs in."""
    if any(_requirement_name(p) == BUILTIN_DISTRIBUTION for p in packages):
        raise fail("refusing to uninstall ganctl itself with `ganctl plugins uninstall`; name only plugin "
                   f"distributions (to remove ganctl, run `{sys.executable} -m pip uninstall ganctl`).")
    before = _versions()
    _pip("uninstall", *(["--yes"] if yes else []), *packages)
    gone = sorted(set(before) - set(_versions()))
    if gone:
        typer.echo(f"uninstalled the plugins of: {', '.join(gone)}")
