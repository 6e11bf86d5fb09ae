"""What is known about plugins without importing them: the installed entry points of the
``ganctl`` group (read from metadata), which of them ``GANCTL_LOAD_PLUGINS`` selects, and the
names of ganctl's own commands (which no plugin command may take).

Light on purpose (no ganctl.api, so no NumPy or pydantic): ``ganctl --help`` reads it to list
the commands plugins add.
"""

from __future__ import annotations

import importlib.metadata as metadata
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass

BUILTIN_DISTRIBUTION = "ganctl"
RESERVED_COMMANDS: set[str] = set()


def normalise(name: str) -> str:
    """A distribution or plugin name as pip compares them (``Ganctl_Hello`` is ``ganctl-hello``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def reserve_commands(names: Iterable[str]) -> None:
    """Declare ganctl's own command names (the CLI does, once): a plugin command may not take one."""
    RESERVED_COMMANDS.update(names)


@dataclass(frozen=True)
class Entry:
    """One entry point of the ``ganctl`` group and its distribution."""

    entry_point: metadata.EntryPoint
    distribution: str
    version: str
    builtin: bool
    selected: bool  # False: GANCTL_LOAD_PLUGINS leaves it out

    @property
    def key(self) -> str:
        return key(self.distribution, self.version, self.entry_point.name)


def key(distribution: str, version: str, name: str) -> str:
    """What identifies a plugin's code: its distribution, version and entry-point name."""
    return f"{normalise(distribution)}=={version}:{name}"


def entries(env: dict[str, str] | None = None) -> list[Entry]:
    """The installed entry points of the ``ganctl`` group, built-ins first, each once."""
    env = os.environ if env is None else env
    wanted = env.get("GANCTL_LOAD_PLUGINS")
    allow = None if wanted is None else {normalise(n) for n in wanted.split(",") if n.strip()}
    found: dict[tuple[str, str], Entry] = {}
    for ep in metadata.entry_points(group="ganctl"):
        dist = ep.dist
        name = (dist.metadata["Name"] if dist is not None else None) or "unknown"
        version = (dist.version if dist is not None else None) or ""
        builtin = normalise(name) == BUILTIN_DISTRIBUTION
        selected = builtin or allow is None or bool({normalise(ep.name), normalise(name)} & allow)
        found.setdefault((normalise(name), ep.name), Entry(ep, name, version, builtin, selected))
    builtin_first = lambda item: (item[0][0] != BUILTIN_DISTRIBUTION, item[0])  # noqa: E731
    return [entry for _, entry in sorted(found.items(), key=builtin_first)]
