"""The ``ganctl`` command line.

Heavy libraries (keras, a backend, pydantic, numpy) are imported inside commands, so
``ganctl --help`` and ``ganctl --version`` stay fast.
"""

from __future__ import annotations

import typer

from ganctl import __version__, interrupts
from ganctl.commands import (
    bench,
    compare,
    data,
    doctor,
    evaluate,
    export,
    generate,
    launch,
    plugins,
    recipe,
    report,
    scaffold,
    train,
)
from ganctl.plugin_commands import PluginCommandGroup
from ganctl.plugin_index import reserve_commands

# What ganctl does, as pyproject.toml and the README say it (tests/test_docs.py keeps them honest).
SUMMARY = (
    "Train GANs (and the classifier that scores them) declaratively on any Keras 3 backend, "
    "and ship them as ONNX."
)

app = typer.Typer(
    name="ganctl",
    cls=PluginCommandGroup,  # ganctl's commands, then those plugins add (listed without loading plugins)
    help=SUMMARY,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    add_completion=True,  # --install-completion / --show-completion; Typer imports nothing heavy for them
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ganctl {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Train GANs (and the classifier that scores them) on any Keras 3 backend; ship them as ONNX."""


plugins.register(app)
scaffold.register(plugins.app)  # ganctl plugins new
doctor.register(app)
train.register(app)
launch.register(app)
generate.register(app)
export.register(app)
evaluate.register(app)
compare.register(app)
report.register(app)
bench.register(app)
app.add_typer(recipe.app, name="recipe")
app.add_typer(data.app, name="data")
reserve_commands([c.name for c in app.registered_commands] + [g.name for g in app.registered_groups])


def main() -> None:
    interrupts.install()  # first: from here on Ctrl-C and SIGTERM never show a traceback
    app()
