"""Ctrl-C and SIGTERM: one policy for the whole life of a command.

``ganctl`` installs :func:`install` before anything else runs, so a signal never shows a
traceback. What a signal does depends on the phase the command is in:

- **immediate** (the default: start-up, loading, exporting): the signal raises
  :class:`Interrupt` where the program is; :func:`ganctl.console.guarded` turns it into one
  line and exit code 128 + the signal's number (130 for SIGINT, 143 for SIGTERM).
- **deferred** (:func:`deferred`, around a training loop): the first signal is only recorded;
  the loop looks at :func:`requested` at its safe points, checkpoints and stops. A second signal
  raises :class:`Interrupt` at once ("stop now"): checkpoints are atomic, so nothing is corrupted.
- **ignored** (:func:`finished`, once the work is done and only the exit is left): signals are
  ignored, so interpreter shutdown (atexit callbacks, the libraries' clean-up) runs undisturbed
  and the command exits with the code it already chose.

Once an :class:`Interrupt` has reached the code that handles it (:func:`caught`), later signals
are ignored: the clean-up (marking the run interrupted) is never cut short. Python swallows an
exception raised inside a gc callback (JAX has one), a ``__del__`` or ``sys.unraisablehook``;
a signal that lands there is sent again, to be raised once the interpreter has moved on.
"""

from __future__ import annotations

import _thread
import gc
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)

_IMMEDIATE, _DEFERRED, _IGNORED = "immediate", "deferred", "ignored"


class Interrupt(BaseException):
    """A stop signal, raised at once where the program is.

    A BaseException, so no ``except Exception`` swallows it; not a KeyboardInterrupt, which
    Click would turn into "Aborted!" and exit code 1.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.name = signal.Signals(signum).name
        self.exit_code = 128 + signum


class _State:
    def __init__(self) -> None:
        self.mode = _IMMEDIATE
        self.received: list[int] = []  # each signal once, re-deliveries not counted
        self.stopping = False  # an Interrupt reached its handler: its clean-up is not cut short
        self.redelivering: int | None = None
        self.installed = False


_state = _State()


def _swallowed_here(frame: FrameType | None) -> bool:
    """Whether an exception raised at ``frame`` would be swallowed: Python prints "Exception
    ignored in ..." and goes on when it comes out of a gc callback (JAX has one), a ``__del__`` or
    ``sys.unraisablehook``, so the signal would be lost."""
    swallowing = {getattr(callback, "__code__", None) for callback in gc.callbacks} | {_unraisable.__code__}
    while frame is not None:
        if frame.f_code in swallowing or frame.f_code.co_name == "__del__":
            return True
        frame = frame.f_back
    return False


def _redeliver(signum: int) -> None:
    """Have ``signum``'s handler run again a moment from now, from another thread: by then the
    interpreter has left the place that swallows exceptions (if not, this happens again).
    (Tripping it from here would run the handler at once, inside this very place.)"""

    def later() -> None:
        time.sleep(0.005)
        _thread.interrupt_main(signum)

    _state.redelivering = signum
    threading.Thread(target=later, name="ganctl-signal", daemon=True).start()


def _handler(signum: int, frame: FrameType | None) -> None:
    if _state.redelivering == signum:
        _state.redelivering = None
    else:
        _state.received.append(signum)
    if _state.stopping or _state.mode == _IGNORED:
        return
    if _state.mode == _DEFERRED and len(_state.received) == 1:
        return
    if _swallowed_here(frame):
        _redeliver(signum)
        return
    raise Interrupt(signum)


def _unraisable(hook: Any) -> None:
    """``sys.unraisablehook``: an Interrupt that was swallowed all the same is sent again, not printed."""
    if isinstance(hook.exc_value, Interrupt) and not _state.stopping:
        _redeliver(hook.exc_value.signum)
        return
    _previous_unraisable(hook)


_previous_unraisable = sys.unraisablehook


def install() -> None:
    """Route SIGINT and SIGTERM through this module for the rest of the process (main thread only)."""
    global _previous_unraisable
    for signum in SIGNALS:
        signal.signal(signum, _handler)
    if sys.unraisablehook is not _unraisable:
        _previous_unraisable, sys.unraisablehook = sys.unraisablehook, _unraisable
    _state.installed = True


def caught() -> None:
    """An :class:`Interrupt` reached the code that handles it: from now on signals are ignored, so
    the clean-up (marking the run interrupted, the message) is never cut short."""
    _state.stopping = True


def installed() -> bool:
    return _state.installed and all(signal.getsignal(s) is _handler for s in SIGNALS)


def requested() -> int | None:
    """The first signal received while deferred, or None."""
    return _state.received[0] if _state.received else None


@contextmanager
def deferred() -> Iterator[None]:
    """Within the block the first signal is recorded for the caller to act on; a second raises.

    Outside a process that called :func:`install` (a test's CliRunner, a library user) the
    handlers are installed for the block and the previous ones put back after it.
    """
    previous = None if installed() else {s: signal.signal(s, _handler) for s in SIGNALS}
    mode, _state.mode = _state.mode, _DEFERRED
    _state.received.clear()
    _state.stopping = False
    try:
        yield
    finally:
        _state.mode = mode
        if previous is not None:
            for signum, handler in previous.items():
                signal.signal(signum, handler)


def finished() -> None:
    """The work is done: from now on signals are ignored.

    In a process that called :func:`install`, the signals are set to ``SIG_IGN``: Python's
    finalization puts a Python-level handler back to the default action (death by the signal,
    exit code -2 or -15) while the libraries' own clean-up still runs, but leaves "ignore" alone.
    """
    if installed():
        for signum in SIGNALS:
            signal.signal(signum, signal.SIG_IGN)
    _state.mode = _IGNORED


def reset() -> None:
    """Back to the start-up state (tests, and a process that runs several commands)."""
    _state.mode = _IMMEDIATE
    _state.received.clear()
    _state.stopping = False
    _state.redelivering = None
