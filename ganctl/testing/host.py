"""An isolated plugin host for tests: ganctl's built-in plugins plus the plugins under test.

Nothing else installed in the environment is loaded, so a test sees the same registry on every
machine. This is the public way to load a plugin in a test (``ganctl.plugins.PluginHost`` is
private and may change).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

from ganctl import __version__, api
from ganctl import plugins as registry
from ganctl.plugins import PluginHost, PluginInfo, set_host
from ganctl.recipe.load import validate_section
from ganctl.testing.data import KitPlugin

PluginRef = ModuleType | str | object
"""A plugin: its module, the module's import name (``"ganctl_squares"``), or any object with hook
implementations."""


class CheckFailed(AssertionError):
    """A contract check failed; the message says what the plugin's author must change."""


def fail(kind: str, name: str, problem: str, fix: str) -> CheckFailed:
    """The error of a failed check: which component, what is wrong, what to change."""
    return CheckFailed(f"{kind} '{name}': {problem} Fix: {fix}")


def plugin_module(plugin: PluginRef) -> Any:
    """The plugin object of ``plugin`` (a module name is imported)."""
    return importlib.import_module(plugin) if isinstance(plugin, str) else plugin


def module_name(plugin: PluginRef | None) -> str | None:
    """The import name of ``plugin``, for a child process that loads it again (None: built-ins only)."""
    if plugin is None:
        return None
    if isinstance(plugin, str):
        return plugin
    if isinstance(plugin, ModuleType):
        return plugin.__name__
    raise TypeError("a check that runs in other processes needs the plugin as a module or its import name, "
                    f"not {type(plugin).__name__}")


class KitHost:
    """The built-in plugins plus the plugins under test, and ways to build their components.

    It also registers the kit's own dataset, ``kit-digits`` (:mod:`ganctl.testing.data`)."""

    def __init__(self, *plugins: PluginRef) -> None:
        self.host = PluginHost()
        self.host.load_entry_points(env={"GANCTL_LOAD_PLUGINS": ""})  # built-ins only
        self.host.add(KitPlugin, PluginInfo("ganctl_testing", "ganctl (test kit)", __version__,
                                            module="ganctl.testing.data"))  # kit-digits: the kit's own data
        self.added: list[PluginInfo] = []
        builtin = {info.module: info for info in self.host.plugins if info.builtin}
        for plugin in plugins:
            obj = plugin_module(plugin)
            name = getattr(obj, "__name__", type(obj).__name__)
            if name in builtin:  # one of ganctl's own, already loaded
                self.added.append(builtin[name])
                continue
            info = PluginInfo(name, f"{name} (under test)", "test", module=name)
            self.added.append(self.host.add(obj, info))

    def check_loaded(self) -> None:
        """Raise :class:`CheckFailed` when a plugin under test did not load (with its error)."""
        for info in self.added:
            if info.status != "loaded":
                raise CheckFailed(f"plugin '{info.name}' did not load: {info.error}. Fix: change its hook "
                                  "implementations until `ganctl plugins` lists it as loaded.")

    def names(self, kind: str) -> list[str]:
        """The registered names of ``kind`` (one of ``ganctl.api.KINDS``)."""
        return self.host.names(kind)

    def registered(self, kind: str) -> list[str]:
        """What the plugins under test registered of ``kind`` (or ``commands``: their ganctl subcommands)."""
        return [name for info in self.added for name in (info.commands if kind == "commands" else info.registered[kind])]

    def params(self, kind: str, name: str, params: dict[str, Any] | None = None) -> api.Params:
        """``params`` validated as a recipe's section would be (a ConfigError naming the key if not)."""
        section = validate_section({"plugin": name, **(params or {})}, kind, self.host, source="test")
        return section.params

    def build(self, kind: str, name: str, params: dict[str, Any] | None = None, *args: Any) -> Any:
        """Build the component ``name`` of ``kind`` from recipe-like ``params``, checking its type as
        ganctl does (a model also needs the ``DataSpec`` as ``args``)."""
        expected = {"models": (api.GenerativeModel, api.ClassifierModel), "datasets": api.Dataset,
                    "metrics": api.Metric, "exporters": api.Exporter,
                    "feature_extractors": api.FeatureExtractor}[kind]
        return self.host.build(kind, name, self.params(kind, name, params), *args, expected=expected)

    @contextmanager
    def installed(self) -> Iterator[KitHost]:
        """Make this host the one ganctl's commands use, for the duration of the block (then the
        one before it again)."""
        previous = registry._host
        set_host(self.host)
        try:
            yield self
        finally:
            set_host(previous)
