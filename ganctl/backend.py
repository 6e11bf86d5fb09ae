"""Choosing the Keras backend, before Keras is first imported.

Precedence: the ``--backend`` option, then the recipe's ``backend:``, then ``KERAS_BACKEND``,
then ``jax``. Keras reads ``KERAS_BACKEND`` once, at import, so the choice must be applied
before anything imports keras; switching later in the same process is an error.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Mapping

from ganctl.errors import ConfigError

BACKENDS = ("jax", "tensorflow", "torch")
DEFAULT = "jax"
_INSTALL = {
    "jax": "pip install ganctl  (jax is a core dependency)",
    "tensorflow": "pip install 'ganctl[tensorflow]'",
    "torch": "pip install 'ganctl[torch]'",
}


def resolve(option: str | None = None, recipe: str | None = None, env: Mapping[str, str] | None = None) -> tuple[str, str]:
    """The backend to use and where the choice came from (for messages and run.json)."""
    env = os.environ if env is None else env
    for value, origin in ((option, "--backend"), (recipe, "recipe backend:"), (env.get("KERAS_BACKEND"), "KERAS_BACKEND")):
        if value:
            name = value.strip().lower()
            if name not in BACKENDS:
                raise ConfigError(
                    f"{origin} is '{value}', which is not a ganctl backend; use one of: {', '.join(BACKENDS)}."
                )
            return name, origin
    return DEFAULT, "default"


def activate(backend: str) -> None:
    """Make ``backend`` the Keras backend of this process. Must run before keras is imported."""
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend '{backend}'; use one of: {', '.join(BACKENDS)}.")
    if importlib.util.find_spec(backend) is None:
        raise ConfigError(f"the {backend} backend is not installed. Install it with: {_INSTALL[backend]}")
    if "keras" in sys.modules:
        current = sys.modules["keras"].backend.backend()
        if current != backend:
            raise ConfigError(
                f"Keras was already imported with the {current} backend in this process; "
                f"the {backend} backend must be chosen before Keras is imported."
            )
    os.environ["KERAS_BACKEND"] = backend
    # TensorFlow's C++ start-up chatter (CPU feature notes) on every import, also when JAX
    # exports through it; a user's own setting wins.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
