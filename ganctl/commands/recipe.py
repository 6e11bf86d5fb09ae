"""``ganctl recipe validate|show|schema``."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from ganctl.console import guarded, load_plugins, stdout
from ganctl.recipe.overrides import SET_HELP

app = typer.Typer(help="Validate, resolve and describe recipes.", no_args_is_help=True)


@app.command()
@guarded
def validate(
    file: Path = typer.Argument(..., metavar="RECIPE", help="The recipe (YAML).", show_default=False),
    set_: list[str] = typer.Option([], "--set", metavar="KEY=VALUE", help=SET_HELP),
) -> None:
    """Check a recipe; exit 0 when valid, 2 with an error per problem when not."""
    from ganctl.recipe.load import load_recipe

    recipe = load_recipe(file, load_plugins(), set_)
    typer.echo(f"OK: {file} is a valid recipe ({recipe.data.plugin} data, {recipe.model.plugin} model).")


@app.command()
@guarded
def show(
    file: Path = typer.Argument(..., metavar="RECIPE", help="The recipe (YAML).", show_default=False),
    set_: list[str] = typer.Option([], "--set", metavar="KEY=VALUE", help=SET_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of YAML."),
) -> None:
    """Print the fully resolved recipe: overrides applied, every default filled in."""
    from ganctl.recipe.load import load_recipe

    resolved = load_recipe(file, load_plugins(), set_).to_dict()
    if as_json:
        typer.echo(json.dumps(resolved, indent=2))
    else:
        import yaml

        typer.echo(yaml.safe_dump(resolved, sort_keys=False), nl=False)


@app.command()
@guarded
def schema(
    output: Path = typer.Option(None, "--out", help="Write to this file instead of stdout."),
) -> None:
    """Print the JSON Schema of recipes (core keys and every installed plugin's parameters)."""
    from ganctl.recipe.jsonschema import json_schema

    text = json.dumps(json_schema(load_plugins()), indent=2)
    if output is None:
        typer.echo(text)
        return
    from ganctl.errors import ConfigError
    from ganctl.fsutil import why_unwritable

    try:
        output.write_text(text + "\n")
    except OSError as exc:
        raise ConfigError(
            f"cannot write {output}: {why_unwritable(output, exc)}; choose a writable path.") from None
    stdout().print(f"wrote {output}")
