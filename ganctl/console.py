"""What every command shares: consoles, the error guard, and loading plugins with warnings.

Only light imports here: this module is on the path of ``ganctl --help``.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from ganctl.errors import GanctlError
from ganctl.interrupts import Interrupt, caught

if TYPE_CHECKING:
    from rich.console import Console

    from ganctl.plugins import PluginHost

F = TypeVar("F", bound=Callable[..., Any])

PIPE_WIDTH = 10_000  # the width of output that is not a terminal (and no COLUMNS): tables take what they need


@functools.cache
def stdout() -> Console:
    """stdout's Rich console, made on first use (importing Rich's console costs ``ganctl --help``
    a sixth of its start-up, and no light command needs it).

    Its width is a terminal's own; otherwise ``COLUMNS`` when set, else :data:`PIPE_WIDTH`: Rich
    would assume 80 columns in a pipe (or the width of whatever terminal stderr is), and fold run
    paths and table cells over several lines for no reader's benefit. Markup is off: text printed
    here (paths, install commands, errors, recipe values) is shown as it is; colour is asked for
    explicitly, with rich.text.Text and its styles.
    """
    from rich.console import Console, ConsoleDimensions

    class Stdout(Console):
        @property
        def size(self) -> ConsoleDimensions:
            size = super().size
            if self.is_terminal:
                return size
            columns = os.environ.get("COLUMNS", "")
            return ConsoleDimensions(int(columns) if columns.isdigit() and int(columns) > 0 else PIPE_WIDTH,
                                     size.height)

        @size.setter
        def size(self, new_size: tuple[int, int]) -> None:
            Console.size.fset(self, new_size)  # type: ignore[attr-defined]

    return Stdout(highlight=False, markup=False)


def warn(message: str) -> None:
    """A one-line warning on stderr."""
    typer.echo(f"warning: {message}", err=True)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print an error on stderr and return the Exit to raise."""
    for line in message.splitlines() or [message]:
        typer.echo(f"error: {line}", err=True)
    return typer.Exit(code)


def guarded(command: F) -> F:
    """Turn user errors into a message and an exit code; never show a traceback for them.

    Anything else is a bug: it is reported in one line, with the traceback only when
    ``GANCTL_DEBUG=1``.
    """

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except GanctlError as exc:
            raise fail(exc.message, exc.exit_code) from None
        except Interrupt as stop:  # Ctrl-C / SIGTERM outside a training loop (see ganctl.interrupts)
            caught()
            raise fail(f"{stop.name} received: stopped.", stop.exit_code) from None
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except BrokenPipeError:  # stdout's reader went away (`ganctl ... | head`): nobody is left to tell
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(1) from None
        except Exception as exc:
            if os.environ.get("GANCTL_DEBUG"):
                raise
            raise fail(
                f"internal error: {type(exc).__name__}: {exc}. This is a bug in ganctl or a plugin; "
                "rerun with GANCTL_DEBUG=1 to see the traceback, and please report it.",
                1,
            ) from None

    return wrapper  # type: ignore[return-value]


def load_plugins() -> PluginHost:
    """The plugin host, with a one-line warning per failed plugin (fatal when strict)."""
    from ganctl.plugins import get_host

    host = get_host()
    if not getattr(host, "_warned", False):
        host._warned = True  # type: ignore[attr-defined]
        for info in host.failures:
            warn(f"plugin '{info.name}' ({info.label}) failed to load: {info.error} (see `ganctl plugins`)")
    host.check_strict()
    return host


def is_terminal() -> bool:
    return sys.stdout.isatty()
