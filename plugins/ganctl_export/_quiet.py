"""Keeping converters quiet: their logs and prints are captured and shown only on failure."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import tempfile
from collections.abc import Iterator

from ganctl import api

# Loggers of the converters Keras drives; they log pages of INFO/WARNING per export.
_LOGGERS = ("jax2onnx", "onnx_ir", "onnxscript", "tf2onnx", "tensorflow", "absl", "torch", "torch.onnx", "keras")


@contextlib.contextmanager
def captured_fds() -> Iterator[io.StringIO]:
    """Send file descriptors 1 and 2 (C++ logs write there directly) to a buffer."""
    buffer = io.StringIO()
    sys.stdout.flush()
    sys.stderr.flush()
    with tempfile.TemporaryFile(mode="w+b") as sink:
        saved = {fd: os.dup(fd) for fd in (1, 2)}
        try:
            for fd in (1, 2):
                os.dup2(sink.fileno(), fd)
            yield buffer
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            for fd, copy in saved.items():
                os.dup2(copy, fd)
                os.close(copy)
            sink.seek(0)
            buffer.write(sink.read().decode(errors="replace"))


@contextlib.contextmanager
def quiet_conversion(what: str) -> Iterator[None]:
    """Run a conversion with its output captured; on failure, raise a GanctlError with its tail."""
    levels = {name: logging.getLogger(name).level for name in _LOGGERS}
    for name in _LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    captured = io.StringIO()
    try:
        with captured_fds() as raw, contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
            yield
    except api.GanctlError:
        raise
    except Exception as exc:
        log = (captured.getvalue() + raw.getvalue()).strip().splitlines()[-8:]
        detail = ("\n  " + "\n  ".join(log)) if log else ""
        raise api.GanctlError(f"{what} failed: {type(exc).__name__}: {exc}{detail}") from exc
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
