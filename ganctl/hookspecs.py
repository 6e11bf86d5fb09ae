"""The hooks a ganctl plugin can implement.

Each hook receives ``register(name, factory)`` and calls it once per component it provides.
See :mod:`ganctl.api` for the factory contract and ``docs/plugins.md`` for a guide.
Hook specifications only grow: new arguments may be added, none are removed.
"""

from __future__ import annotations

import pluggy

from ganctl.api import Register

hookspec = pluggy.HookspecMarker("ganctl")


@hookspec
def register_models(register: Register) -> None:
    """Register generative model factories (e.g. ``register("dcgan", DCGAN)``)."""


@hookspec
def register_datasets(register: Register) -> None:
    """Register dataset factories; each builds an ``api.Dataset`` from its ``Params``."""


@hookspec
def register_metrics(register: Register) -> None:
    """Register metric factories, usable in a recipe's ``metrics:`` list and ``ganctl evaluate``."""


@hookspec
def register_exporters(register: Register) -> None:
    """Register exporter factories, usable in a recipe's ``export:`` list and ``ganctl export``."""


@hookspec
def register_feature_extractors(register: Register) -> None:
    """Register feature-extractor factories (API 1.2), used by metrics (``features:`` in a metric section)."""
