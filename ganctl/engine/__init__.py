"""Backend engines: all code that touches jax, tensorflow or torch directly lives here,
one module per backend. Everything else in ganctl goes through Keras or these modules."""

from __future__ import annotations

import importlib
from types import ModuleType


def engine_for(backend: str) -> ModuleType:
    """The engine module of ``backend`` (``ganctl.engine.jax`` etc.); imports that backend."""
    return importlib.import_module(f"ganctl.engine.{backend}")
