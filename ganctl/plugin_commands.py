"""Commands that plugins add (``register_commands``, API 1.7), without loading plugins for ``--help``.

``ganctl --help`` lists plugin commands from a small cache: for each entry point of the ``ganctl``
group, keyed by its distribution, version and entry-point name, the names and one-line help of the
commands it registered (``plugin-commands/commands.json`` in ganctl's cache, see
:func:`ganctl.fsutil.cache_dir`). Reading the installed entry points' metadata is cheap; only an
entry point missing from the cache (a plugin just installed or upgraded) makes the listing load the
plugins, once, and write the cache. Running a plugin command loads the plugins, and ``ganctl
plugins`` refreshes the cache (the way to update it after editing an editable install's commands).
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from typer.core import TyperCommand, TyperGroup

from ganctl import plugin_index
from ganctl.console import fail, guarded, load_plugins
from ganctl.errors import GanctlError
from ganctl.fsutil import atomic_write, cache_dir

if TYPE_CHECKING:
    from click import Command, Context  # the types Typer's own copy of click follows

    from ganctl.plugins import PluginHost

CACHE_FORMAT = 1
_listed: dict[tuple[str | None, str | None], dict[str, str]] = {}  # this process's listing, per setting


def _cache_file() -> str | None:
    folder = cache_dir("plugin-commands")
    return None if folder is None else os.path.join(folder, "commands.json")


def _read() -> dict[str, dict[str, str]]:
    path = _cache_file()
    if path is None:  # caching is off (GANCTL_CACHE_DIR="")
        return {}
    try:
        with open(path) as handle:
            data = json.load(handle)
    except (OSError, ValueError):  # no cache yet, or a damaged file: rebuilt from the plugins
        return {}
    if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT or not isinstance(data.get("plugins"), dict):
        return {}
    return data["plugins"]


def refresh(host: PluginHost) -> dict[str, dict[str, str]]:
    """Record the commands of every installed plugin ``host`` loaded (or failed to load: none) in
    the cache, and return the cache's entries. Never fails: a cache that cannot be written is
    only a slower ``--help``."""
    _listed.clear()
    entries = _read()
    installed = {entry.key for entry in plugin_index.entries()}
    fresh = {}
    for info in host.plugins:
        key = plugin_index.key(info.distribution, info.version, info.name)
        if key in installed and info.status != "skipped":
            fresh[key] = {name: host.commands[name][0].get_short_help_str(limit=80) for name in info.commands}
    merged = {key: value for key, value in entries.items() if key in installed} | fresh
    path = _cache_file()
    if path is not None and merged != entries:
        try:
            atomic_write(path, json.dumps({"format": CACHE_FORMAT, "plugins": merged}, indent=1).encode())
        except OSError:
            pass
    return merged


def listed() -> dict[str, str]:
    """The plugin commands to list in ``ganctl --help`` (name -> one-line help), from the cache;
    the plugins are loaded (without warnings: ``--help`` is not the place) only when an
    installed entry point is not in it yet."""
    setting = (os.environ.get("GANCTL_LOAD_PLUGINS"), _cache_file())
    if setting not in _listed:
        wanted = [entry.key for entry in plugin_index.entries() if entry.selected]
        entries = _read()
        if any(key not in entries for key in wanted):
            from ganctl.plugins import get_host

            entries = refresh(get_host())
        _listed[setting] = {name: text for key in wanted for name, text in entries.get(key, {}).items()}
    return _listed[setting]


def _guard(command: Any) -> Any:
    """A plugin's command with ganctl's error handling: a GanctlError is one clean paragraph."""
    if command.callback is not None:
        command.callback = guarded(command.callback)
    for sub in getattr(command, "commands", {}).values():
        _guard(sub)
    return command


def resolve(name: str) -> Any | None:
    """The click command a plugin registered as ``name`` (the plugins are loaded), or None."""
    host = load_plugins()
    refresh(host)
    found = host.commands.get(name)
    if found is None:
        return None
    command, _ = found
    if not getattr(command, "_ganctl_guarded", False):
        _guard(command)
        command._ganctl_guarded = True
    return command


class PluginCommandGroup(TyperGroup):
    """ganctl's root group: its own commands, then those plugins add (listed from the cache,
    loaded only when one is run)."""

    def list_commands(self, ctx: Context) -> list[str]:
        own = super().list_commands(ctx)
        return own + sorted(name for name in listed() if name not in own)

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        text = listed().get(cmd_name)
        if text is None:
            return None
        return TyperCommand(cmd_name, short_help=text, help=text, add_help_option=False)  # --help's listing

    def resolve_command(self, ctx: Context, args: list[str]) -> tuple[str | None, Command | None, list[str]]:
        name = args[0] if args else None
        if name is not None and not name.startswith("-") and super().get_command(ctx, name) is None:
            try:
                command = resolve(name)
            except GanctlError as exc:  # GANCTL_STRICT_PLUGINS and a plugin failed
                raise fail(exc.message, exc.exit_code) from None
            if command is not None:
                return name, command, args[1:]
        return super().resolve_command(ctx, args)  # resolving refreshed the cache: a stale name is gone
