"""ganctl's first-party feature extractors: what metrics see of an image.

* ``pixels``: flattened (optionally pooled) pixels; no weights, for tiny images and tests.

Importing this package is cheap: networks are loaded in ``prepare``.
"""

from __future__ import annotations

from ganctl import api

from .pixels import Pixels

__all__ = ["Pixels", "register_feature_extractors"]


@api.hookimpl
def register_feature_extractors(register: api.Register) -> None:
    """Register the first-party feature extractors."""
    register("pixels", Pixels)
