"""Plugin discovery and the registry of components.

Plugins are modules named by entry points in the ``ganctl`` group. ganctl's own plugins (in
``plugins/``) ship in the ganctl distribution and are found the same way. Loading is isolated
per plugin: one that needs a newer ``ganctl.api`` than this one (``GANCTL_API``), fails to
import, fails its hook, or registers something invalid is recorded with its error and none of
its registrations are kept; the others load normally.

Environment:
    GANCTL_LOAD_PLUGINS  comma-separated names (entry-point or distribution) of the external
                         plugins to load; set but empty loads none. Built-ins always load.
    GANCTL_STRICT_PLUGINS=1  a plugin failure is fatal (PluginError) instead of a warning.
"""

from __future__ import annotations

import difflib
import os
import re
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pluggy

from ganctl import __version__, hookspecs, plugin_index
from ganctl.api import API_ATTRIBUTE, API_VERSION, KINDS, Params
from ganctl.errors import PluginError
from ganctl.interrupts import Interrupt

SINGULAR = {"models": "model", "datasets": "dataset", "metrics": "metric", "exporters": "exporter",
            "feature_extractors": "feature extractor"}
_NAME = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$")
_API = re.compile(r"^(\d+)\.(\d+)$")


@dataclass
class PluginInfo:
    """One plugin as ``ganctl plugins`` shows it."""

    name: str
    distribution: str
    version: str
    module: str = ""
    builtin: bool = False
    status: str = "loaded"  # loaded | failed | skipped
    error: str | None = None
    registered: dict[str, list[str]] = field(default_factory=lambda: {k: [] for k in KINDS})
    api: str | None = None  # the ganctl.api version the plugin declares it needs (GANCTL_API)
    commands: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.distribution} {self.version}".strip()

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "module": self.module,
            "builtin": self.builtin,
            "status": self.status,
            "api": self.api,
            **{kind: list(self.registered[kind]) for kind in KINDS},
            "commands": list(self.commands),
            "error": self.error,
        }


@dataclass(frozen=True)
class Component:
    """A registered factory and the plugin that registered it."""

    kind: str
    name: str
    factory: Any
    plugin: PluginInfo

    @property
    def params_model(self) -> type:
        return self.factory.Params

    @property
    def description(self) -> str:
        doc = (getattr(self.factory, "__doc__", None) or "").strip()
        return doc.splitlines()[0] if doc else ""


def _describe(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(exc), exc)).strip().replace("\n", " ")


def api_refusal(needed: object, info: PluginInfo) -> str | None:
    """Why a plugin that declares ``GANCTL_API = needed`` cannot load here, or None when it can
    (same major version, and a minor version no newer than :data:`ganctl.api.API_VERSION`)."""
    if needed is None:
        return None
    found = _API.match(needed) if isinstance(needed, str) else None
    if found is None:
        return (f"{API_ATTRIBUTE} = {needed!r} in {info.module or info.name} is not an API version: "
                f'write the ganctl.api version the plugin needs as "MAJOR.MINOR" (this ganctl provides '
                f'{API_VERSION}, e.g. {API_ATTRIBUTE} = "{API_VERSION}")')
    major, minor = int(found[1]), int(found[2])
    ours_major, ours_minor = (int(n) for n in API_VERSION.split("."))
    if major > ours_major or (major == ours_major and minor > ours_minor):
        return (f"needs ganctl API {needed}, but this ganctl ({__version__}) provides API {API_VERSION}; "
                "upgrade ganctl: `ganctl plugins install --upgrade ganctl`")
    if major < ours_major:
        return (f"was written for ganctl API {needed}, but this ganctl ({__version__}) provides API "
                f"{API_VERSION}, a new major version (docs/plugins.md lists what changed); upgrade the "
                f"plugin: `ganctl plugins install --upgrade {info.distribution}`")
    return None


def dependency_refusal(dist: Any) -> str | None:
    """Why a plugin cannot load because its distribution's dependency on ``ganctl`` excludes this
    ganctl (``ganctl>=0.3`` in its pyproject.toml, installed with ``--no-deps``, or ganctl was
    downgraded since), or None. The ``GANCTL_API`` attribute is the primary declaration; this
    is the same check pip makes when it installs the plugin."""
    from packaging.requirements import InvalidRequirement, Requirement

    for text in (dist.requires if dist is not None else None) or []:
        try:
            requirement = Requirement(text)
        except InvalidRequirement:
            continue
        if plugin_index.normalise(requirement.name) != plugin_index.BUILTIN_DISTRIBUTION:
            continue
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        if not requirement.specifier.contains(__version__, prereleases=True):
            return (f"requires {requirement} (its dependency on the ganctl distribution), but ganctl "
                    f"{__version__} (API {API_VERSION}) is installed; upgrade ganctl: "
                    "`ganctl plugins install --upgrade ganctl`")
    return None


class PluginHost:
    """Loads plugins into a pluggy manager and keeps the registry of their components."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager("ganctl")
        self.pm.add_hookspecs(hookspecs)
        self.plugins: list[PluginInfo] = []
        self.components: dict[str, dict[str, Component]] = {kind: {} for kind in KINDS}
        self.commands: dict[str, tuple[Any, PluginInfo]] = {}  # name -> (click command, plugin)

    # -- loading ------------------------------------------------------------------------------

    def load_entry_points(self, env: dict[str, str] | None = None) -> None:
        """Load every plugin of the ``ganctl`` entry-point group, built-ins first."""
        for entry in plugin_index.entries(env):
            ep = entry.entry_point
            info = PluginInfo(ep.name, entry.distribution, entry.version, module=ep.value, builtin=entry.builtin)
            if not entry.selected:
                info.status = "skipped"
                info.error = "not in GANCTL_LOAD_PLUGINS"
                self.plugins.append(info)
                continue
            refusal = None if entry.builtin else dependency_refusal(ep.dist)
            if refusal is not None:  # before importing code written for another ganctl
                self.plugins.append(self._fail(info, refusal))
                continue
            try:
                module = ep.load()
            except BaseException as exc:  # noqa: BLE001 - a plugin must never take the CLI down
                if isinstance(exc, (KeyboardInterrupt, Interrupt)):  # a stop signal, not a plugin bug
                    raise
                self.plugins.append(self._fail(info, f"import failed: {_describe(exc)}"))
                continue
            self.add(module, info)

    def add(self, plugin: ModuleType | object, info: PluginInfo) -> PluginInfo:
        """Register one plugin object (a module, or any object with hook implementations).

        Its registrations are checked as a whole: on any problem the plugin is marked failed
        and nothing it registered is kept.
        """
        self.plugins.append(info)
        if any(p is not info and p.name == info.name and p.status == "loaded" for p in self.plugins):
            return self._fail(info, f"another plugin is already loaded under the name '{info.name}'")
        needed = getattr(plugin, API_ATTRIBUTE, None)
        info.api = None if needed is None else str(needed)
        refusal = api_refusal(needed, info)
        if refusal is not None:
            return self._fail(info, refusal)
        try:
            self.pm.register(plugin, name=info.name)
        except BaseException as exc:  # noqa: BLE001
            if isinstance(exc, (KeyboardInterrupt, Interrupt)):  # a stop signal, not a plugin bug
                raise
            return self._fail(info, f"invalid hook implementation: {_describe(exc)}")
        unknown = [hc.name for hc in self.pm.get_hookcallers(plugin) or [] if hc.spec is None]
        if unknown:
            self.pm.unregister(plugin)
            return self._fail(info, f"implements unknown hook(s) {', '.join(unknown)}; valid hooks are "
                              + ", ".join(f"register_{k}" for k in (*KINDS, "commands")))
        staged: list[Component] = []
        others = [p for p in self.pm.get_plugins() if p is not plugin]
        for kind in KINDS:
            caller = self.pm.subset_hook_caller(f"register_{kind}", remove_plugins=others)

            def register(name: str, factory: Any, _kind: str = kind) -> None:
                staged.append(self._check(_kind, name, factory, info, staged))

            try:
                caller(register=register)
            except BaseException as exc:  # noqa: BLE001
                if isinstance(exc, (KeyboardInterrupt, Interrupt)):  # a stop signal, not a plugin bug
                    raise
                self.pm.unregister(plugin)
                return self._fail(info, f"register_{kind} failed: {_describe(exc)}")
        try:
            commands = self._commands(plugin, others, info)
        except BaseException as exc:  # noqa: BLE001
            if isinstance(exc, (KeyboardInterrupt, Interrupt)):  # a stop signal, not a plugin bug
                raise
            self.pm.unregister(plugin)
            return self._fail(info, f"register_commands failed: {_describe(exc)}")
        for component in staged:
            self.components[component.kind][component.name] = component
            info.registered[component.kind].append(component.name)
        for name, command in commands.items():
            self.commands[name] = (command, info)
            info.commands.append(name)
        return info

    def _commands(self, plugin: object, others: list[object], info: PluginInfo) -> dict[str, Any]:
        """The click commands ``plugin``'s ``register_commands`` adds, by name, checked (API 1.7)."""
        if not any(hc.name == "register_commands" for hc in self.pm.get_hookcallers(plugin) or []):
            return {}
        import typer
        from typer.main import get_group

        cli = typer.Typer(rich_markup_mode=None, pretty_exceptions_enable=False)  # as ganctl's own
        self.pm.subset_hook_caller("register_commands", remove_plugins=others)(cli=cli)
        found = dict(get_group(cli).commands) if cli.registered_commands or cli.registered_groups else {}
        for name in found:
            if not _NAME.match(name):
                raise ValueError(f"command name {name!r} is invalid: use lowercase letters, digits, '-' or '_', "
                                 "starting with a letter")
            if name in plugin_index.RESERVED_COMMANDS:
                raise ValueError(f"command '{name}' is one of ganctl's own commands; give the plugin's command "
                                 "another name (e.g. prefixed with the plugin's)")
            if name in self.commands:
                owner = self.commands[name][1]
                raise ValueError(f"command '{name}' is already registered by plugin '{owner.name}' ({owner.label}); "
                                 f"{info.label} registers it too. Uninstall one of the two distributions")
        return found

    def _check(self, kind: str, name: str, factory: Any, info: PluginInfo, staged: list[Component]) -> Component:
        what = SINGULAR[kind]
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(
                f"{what} name {name!r} is invalid: use lowercase letters, digits, '-' or '_', "
                "starting with a letter"
            )
        params = getattr(factory, "Params", None)
        if not callable(factory) or not (isinstance(params, type) and issubclass(params, Params)):
            raise TypeError(
                f"{what} '{name}': the factory must be callable and have a `Params` attribute "
                "that subclasses ganctl.api.Params"
            )
        if any(c.kind == kind and c.name == name for c in staged):
            raise ValueError(f"{what} '{name}' is registered twice by this plugin")
        existing = self.components[kind].get(name)
        if existing is not None:
            raise ValueError(
                f"{what} '{name}' is already registered by plugin '{existing.plugin.name}' "
                f"({existing.plugin.label}); {info.label} registers it too. "
                "Uninstall one of the two distributions, or restrict loading with GANCTL_LOAD_PLUGINS"
            )
        return Component(kind, name, factory, info)

    def _fail(self, info: PluginInfo, error: str) -> PluginInfo:
        info.status, info.error = "failed", error
        return info

    # -- queries ------------------------------------------------------------------------------

    @property
    def failures(self) -> list[PluginInfo]:
        return [p for p in self.plugins if p.status == "failed"]

    def names(self, kind: str) -> list[str]:
        return sorted(self.components[kind])

    def get(self, kind: str, name: str) -> Component:
        """The component ``name`` of ``kind``, or a PluginError listing the valid names."""
        try:
            return self.components[kind][name]
        except KeyError:
            raise PluginError(unknown_name_message(SINGULAR[kind], name, self.names(kind))) from None

    def build(self, kind: str, name: str, *args: Any, expected: type | tuple[type, ...]) -> Any:
        """Build the component ``name`` of ``kind`` (``factory(*args)``) and check what came back.

        The one place that turns a factory returning the wrong type into an error that blames
        the plugin (it is not the user's input that is wrong).
        """
        component = self.get(kind, name)
        built = component.factory(*args)
        if not isinstance(built, expected):
            wanted = " or ".join(f"ganctl.api.{t.__name__}" for t in (expected if isinstance(expected, tuple)
                                                                          else (expected,)))
            raise PluginError(f"{SINGULAR[kind]} plugin '{name}' ({component.plugin.label}) built a "
                              f"{type(built).__name__}, not a {wanted}; this is a bug in the plugin.")
        return built

    def declaring(self, kind: str, attribute: str, value: Any = True) -> list[str]:
        """The components of ``kind`` whose factory has the class attribute ``attribute`` equal
        to ``value`` (e.g. ``default = True``), in registration order: ganctl's own plugins
        first, then the others in the order they loaded."""
        return [name for name, component in self.components[kind].items()
                if getattr(component.factory, attribute, None) == value]

    def defaults(self, kind: str, instead: str) -> list[str]:
        """The components of ``kind`` that plugins declare the default (``default = True``, API
        1.5), in registration order; a PluginError when none does. ``instead``: how the user
        names one instead, for that error (e.g. "name one with --metric")."""
        found = self.declaring(kind, "default")
        if not found:
            what = SINGULAR[kind]
            installed = f"installed: {', '.join(self.names(kind))}" if self.names(kind) else "none is installed"
            raise PluginError(f"no {what} plugin declares itself the default (default = True; {installed}), so "
                              f"there is no {what} to use when none is named; {instead}. See `ganctl plugins`.")
        return found

    def check_strict(self, env: dict[str, str] | None = None) -> None:
        """Raise PluginError for any failed plugin when GANCTL_STRICT_PLUGINS is set."""
        env = os.environ if env is None else env
        if env.get("GANCTL_STRICT_PLUGINS", "").strip().lower() in ("", "0", "false", "no"):
            return
        if self.failures:
            lines = [f"plugin '{p.name}' ({p.label}): {p.error}" for p in self.failures]
            raise PluginError(
                "GANCTL_STRICT_PLUGINS is set and plugins failed to load: " + "; ".join(lines)
                + ". Fix or uninstall them, or unset GANCTL_STRICT_PLUGINS."
            )


def suggest(name: str, choices: Iterable[str]) -> str | None:
    """The closest of ``choices`` to ``name``, if any is close enough to be a likely typo."""
    matches = difflib.get_close_matches(str(name), list(choices), n=1, cutoff=0.6)
    return matches[0] if matches else None


def unknown_name_message(what: str, name: str, valid: list[str]) -> str:
    hint = suggest(name, valid)
    text = f"unknown {what} plugin '{name}'."
    if hint:
        text += f" Did you mean '{hint}'?"
    if valid:
        text += f" Installed {what} plugins: {', '.join(valid)}."
    else:
        text += f" No {what} plugins are installed."
    return text + " See `ganctl plugins`."


_host: PluginHost | None = None


def get_host() -> PluginHost:
    """The process-wide plugin host, loaded from entry points on first use."""
    global _host
    if _host is None:
        host = PluginHost()
        host.load_entry_points()
        _host = host
    return _host


def set_host(host: PluginHost | None) -> None:
    """Replace (or with None, forget) the process-wide host; for tests and embedding."""
    global _host
    _host = host
