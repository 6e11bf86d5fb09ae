"""``--set KEY.PATH=VALUE``: changing a parsed recipe from the command line.

The command modules import :data:`SET_HELP` when the CLI starts, so this module imports nothing
heavy at its top (YAML and pydantic come in when an override is applied).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ganctl.errors import RecipeError

if TYPE_CHECKING:
    from ganctl.recipe.yamlio import Positions

SET_HELP = "Override a recipe key: KEY.PATH=VALUE (value read as YAML). Repeatable."
"""The help of every command's ``--set`` option."""

_SEGMENT = re.compile(r"^[A-Za-z0-9_-]+$")


def apply_overrides(raw: dict[str, Any], overrides: Sequence[str], positions: Positions, source: str) -> None:
    """Apply ``key.path=value`` overrides in place; values are parsed as YAML."""
    from ganctl.recipe.messages import kind_of
    from ganctl.recipe.yamlio import YamlError, parse

    for item in overrides:
        key, sep, text = item.partition("=")
        parts = key.strip().split(".")
        if not sep or not key.strip() or not all(_SEGMENT.match(p) for p in parts):
            raise RecipeError([
                f"--set {item!r}: expected KEY.PATH=VALUE with a dotted key of letters, digits, "
                "'_' or '-' (e.g. --set train.epochs=5 or --set data.plugin=idx)."
            ])
        label = f"--set {item}"
        try:
            value = parse(text) if text.strip() else ""
        except YamlError as exc:
            raise RecipeError([f"{label}: the value is not valid YAML: {exc.message}."]) from None
        target: Any = raw
        path: list[str | int] = []
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            if isinstance(target, list):
                if not part.isdigit() or int(part) > len(target):
                    raise RecipeError([
                        f"{label}: {'.'.join(map(str, path)) or 'the recipe'} is a list of "
                        f"{len(target)} items; use an index from 0 to {len(target)} (to append)."
                    ])
                index = int(part)
                if index == len(target):
                    target.append({} if not last else value)
                elif last:
                    target[index] = value
                path.append(index)
            elif isinstance(target, dict):
                if last:
                    target[part] = value
                elif target.get(part) is None:
                    target[part] = {}
                path.append(part)
            else:
                raise RecipeError([
                    f"{label}: cannot set '{part}' inside {'.'.join(map(str, path))}, "
                    f"which is {kind_of(target)}, not a mapping or list."
                ])
            positions.places[tuple(path)] = label
            if not last:
                target = target[path[-1]]
