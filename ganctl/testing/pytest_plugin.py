"""ganctl's pytest plugin (entry point ``pytest11``): fixtures for testing ganctl plugins.

Installed with ganctl, so a plugin's tests use these fixtures without importing anything. Name the
plugin under test once, in ``pyproject.toml``::

    [tool.pytest.ini_options]
    ganctl_plugin = "ganctl_squares"

(or override the ``ganctl_plugin`` fixture in a conftest.py). Fixtures:

- ``ganctl_plugin``: the plugin module under test (None: ganctl's built-ins only);
- ``plugin_host``: an isolated :class:`~ganctl.testing.host.KitHost` (the built-ins plus that
  plugin, nothing else installed), also the host ``ganctl`` commands use during the test;
- ``digits_data`` / ``noise_data``: 64 labelled 8x8 digits / 64 unlabelled 8x8 noise images;
- ``run_dir``: a path for a run directory (not created) under the test's temporary folder;
- ``train_recipe``: ``train_recipe(recipe, epochs=None, overrides=(), backend=None)`` trains a
  recipe (a dict, e.g. from :func:`ganctl.testing.runs.recipe`, or a file) with ``ganctl train``
  into ``run_dir`` and returns the :class:`~ganctl.testing.runs.Run`.

Heavy modules are imported when a fixture is used, not when pytest starts.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("ganctl_plugin", "import name of the ganctl plugin module under test (ganctl.testing)")


@pytest.fixture
def ganctl_plugin(request: pytest.FixtureRequest) -> Any:
    """The plugin module under test, from the ``ganctl_plugin`` ini option; None when unset."""
    name = request.config.getini("ganctl_plugin")
    return importlib.import_module(name) if name else None


@pytest.fixture
def plugin_host(ganctl_plugin: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The built-in plugins plus the plugin under test, and nothing else installed."""
    from ganctl.testing.host import KitHost

    monkeypatch.setenv("GANCTL_LOAD_PLUGINS", "")
    host = KitHost(*([ganctl_plugin] if ganctl_plugin is not None else []))
    host.check_loaded()
    with host.installed():
        yield host


@pytest.fixture
def digits_data() -> Any:
    """64 labelled 8x8 digits (scikit-learn's, no download), as an ``api.ArrayDataset``."""
    from ganctl.testing.data import digits

    return digits(64)


@pytest.fixture
def noise_data() -> Any:
    """64 unlabelled 8x8x1 uint8 noise images, as an ``api.ArrayDataset``."""
    from ganctl.testing.data import noise

    return noise(64)


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """Where a run directory goes (not created)."""
    return tmp_path / "run"


@pytest.fixture
def train_recipe(plugin_host: Any, run_dir: Path) -> Callable[..., Any]:
    """Train a recipe with ``ganctl train`` into ``run_dir``; returns the ``Run``."""
    from ganctl.testing.runs import train

    def _train(recipe: dict[str, Any] | str | Path, *, epochs: int | None = None,
               overrides: tuple[str, ...] | list[str] = (), backend: str | None = None) -> Any:
        return train(recipe, run_dir, host=plugin_host, epochs=epochs, overrides=overrides, backend=backend)

    return _train
