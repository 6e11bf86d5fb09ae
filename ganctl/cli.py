"""The ``ganctl`` command line.

Heavy libraries (keras, a backend, pydantic, numpy) are imported inside commands, so
``ganctl --help`` and ``ganctl --version`` stay fast.
"""

from __future__ import annotations

import typer

from ganctl import __version__
from ganctl.commands import bench, compare, data, evaluate, export, recipe, system, train

app = typer.Typer(
    name="ganctl",
    help="Train GANs and VAEs declaratively on any Keras 3 backend, and ship them as ONNX.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    add_completion=False,
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
    """Train GANs and VAEs declaratively on any Keras 3 backend, and ship them as ONNX."""


system.register(app)
train.register(app)
export.register(app)
evaluate.register(app)
compare.register(app)
bench.register(app)
app.add_typer(recipe.app, name="recipe")
app.add_typer(data.app, name="data")


def main() -> None:
    app()
