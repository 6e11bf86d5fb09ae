"""Recipe problems as users read them: ``FILE:LINE:COL: dotted.key: what is wrong. How to fix it.``

Pydantic's errors are flattened to locations relative to the recipe's root (:func:`flatten`)
and each is worded with what the schema accepts at that place (:func:`format_error`).
"""

from __future__ import annotations

import re
import types
from typing import Annotated, Any, NamedTuple, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from ganctl.plugins import SINGULAR, PluginHost, suggest
from ganctl.recipe.yamlio import Loc, Positions


class NestedError(ValueError):
    """A ValidationError of a nested model, raised from a validator, with its location kept.

    :func:`flatten` expands it, so each of its errors points at its own key.
    """

    def __init__(self, loc: Loc, error: ValidationError) -> None:
        super().__init__(str(error))
        self.loc, self.error = loc, error


class Problem(NamedTuple):
    """One formatted problem and the line it points at (0: none), for ordering."""

    line: int
    text: str


def flatten(error: ValidationError, prefix: Loc) -> list[dict[str, Any]]:
    """Pydantic errors with locations relative to the recipe root; nested validator errors expanded."""
    items: list[dict[str, Any]] = []
    for item in error.errors():
        nested = (item.get("ctx") or {}).get("error")
        loc = prefix + tuple(item["loc"])
        if isinstance(nested, NestedError):
            items.extend(flatten(nested.error, loc + nested.loc))
        else:
            items.append({**item, "loc": loc})
    return items


def dotted(loc: Loc) -> str:
    """A location as a recipe key: ``train.optimizers.generator``, ``metrics[0].plugin``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def problem_at(source: str, place: tuple[int, int] | str | None, loc: Loc | None, message: str) -> Problem:
    """``message`` about the key at ``loc``, prefixed with where it is: ``source:LINE:COL`` for a
    position in the file, ``source (LABEL)`` for a value set elsewhere (``--set``), else ``source``."""
    if isinstance(place, tuple):
        where = f"{source}:{place[0]}:{place[1]}"
    elif isinstance(place, str):
        where = f"{source} ({place})"
    else:
        where = source
    text = f"{where}: {dotted(loc)}: {message}" if loc else f"{where}: {message}"
    return Problem(place[0] if isinstance(place, tuple) else 0, text)


def value_at(data: Any, loc: Loc) -> Any:
    """The value at ``loc`` inside parsed recipe data; None where there is none."""
    for part in loc:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def kind_of(value: Any) -> str:
    """What kind of YAML value ``value`` is, in words: ``a mapping``, ``a list``, ``text``, ..."""
    names = {dict: "a mapping", list: "a list", str: "text", bool: "true/false", int: "a number",
             float: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


_SECTION_KINDS = {"data": "datasets", "model": "models", "metrics": "metrics", "export": "exporters"}


def format_error(
    item: dict[str, Any], source: str, positions: Positions, model: type[BaseModel], prefix: Loc, raw: Any,
    host: PluginHost,
) -> Problem:
    """One flattened pydantic error of ``model`` (validated at ``prefix`` of ``raw``) as a Problem."""
    loc: Loc = item["loc"]
    kind = item["type"]
    relative = loc[len(prefix):]
    if kind == "extra_forbidden":
        valid = _valid_keys(model, relative[:-1], value_at(raw, loc[:-1]))
        hint = suggest(str(loc[-1]), valid)
        message = f"unknown key '{loc[-1]}'."
        if hint:
            message += f" Did you mean '{hint}'?"
        message += f" Valid keys here: {', '.join(valid)}." if valid else " No keys are accepted here."
    elif kind == "missing":
        message = f"required key '{loc[-1]}' is missing; add it"
        if len(loc) > 1:
            message += f" under '{dotted(loc[:-1])}'"
        message += "."
        kind = _SECTION_KINDS.get(str(loc[0]))
        if loc[-1] == "plugin" and kind and len(loc) <= 3:
            names = host.names(kind)
            message += f" Installed {SINGULAR[kind]} plugins: {', '.join(names) or 'none'}."
    elif kind == "literal_error":
        choices = re.findall(r"'([^']*)'", item["ctx"].get("expected", ""))
        hint = suggest(str(item.get("input")), choices)
        message = f"{item['msg']}, got {_show(item.get('input'))}."
        if hint:
            message += f" Did you mean '{hint}'?"
    elif kind in ("model_type", "dict_type", "model_attributes_type"):
        message = f"expected a mapping of keys, got {kind_of(item.get('input'))}."
    elif kind == "value_error":
        message = item["msg"].removeprefix("Value error, ").rstrip(".") + "."
    elif kind == "string_pattern_mismatch" and relative == ("name",):
        message = (f"{_show(item.get('input'))} is not a valid run name: use letters, digits, "
                   "'.', '_' or '-', starting with a letter or digit.")
    else:
        message = f"{item['msg']}, got {_show(item.get('input'))}."
    return problem_at(source, positions.find(loc), loc, message)


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _valid_keys(model: type[BaseModel], loc: Loc, value: Any) -> list[str]:
    """The field names of the model found at ``loc`` below ``model``."""
    current: Any = model
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel) and isinstance(part, str):
            field = current.model_fields.get(part)
            if field is None:
                return []
            current = field.annotation
        elif get_origin(current) in (list, tuple) and isinstance(part, int):
            current = get_args(current)[0]
        elif get_origin(current) is dict:
            current = get_args(current)[1]
        else:
            return []
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [field.alias or name for name, field in current.model_fields.items()]  # init's `from`
    return []


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin is Union or origin is types.UnionType:
            options = [a for a in get_args(annotation) if a is not type(None)]
            models = [a for a in options if isinstance(a, type) and issubclass(a, BaseModel)]
            annotation = models[0] if models else options[0]
        else:
            return annotation
