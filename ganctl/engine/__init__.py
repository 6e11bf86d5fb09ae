"""Backend engines: all code that touches jax, tensorflow or torch directly lives here.

``interface.py`` writes down what a backend package provides; ``backends.py`` chooses and
activates the backend (before Keras is imported) and holds the per-backend jit policy; one
package per backend (``jax/``, ``tensorflow/``, ``torch/``) implements the interface in its
``engine.py``, with room beside it for that backend's precision and distribution code.
Everything else in ganctl goes through Keras or this package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from ganctl.engine.interface import BackendModule


def engine_for(backend: str) -> BackendModule:
    """The engine module of ``backend`` (``ganctl.engine.jax.engine`` etc.); imports that backend
    and provides its input gradients to ``ganctl.api.input_gradient``."""
    from ganctl import api

    module = cast("BackendModule", importlib.import_module(f"ganctl.engine.{backend}.engine"))
    api.provide_input_gradient(backend, module.input_gradient)
    return module
