"""A third-party plugin that adds a command, `ganctl greet`, as one on PyPI would: it imports only
ganctl.api (and Typer, which ganctl's commands are written with)."""

import typer

from ganctl import api

GANCTL_API = "1.7"  # register_commands is API 1.7


@api.hookimpl
def register_commands(cli):
    @cli.command()
    def greet(
        name: str = typer.Option("world", help="Whom to greet."),
        shout: bool = typer.Option(False, help="In capitals."),
    ) -> None:
        """Print a greeting (a plugin's command)."""
        if name == "nobody":
            raise api.ConfigError("--name nobody: there is nobody to greet. Fix: give a name.")
        text = f"hello, {name}"
        typer.echo(text.upper() if shout else text)
