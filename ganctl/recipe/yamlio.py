"""Strict, safe YAML reading with a line number for every key.

Only the plain YAML data types are accepted (mappings, sequences, strings, numbers, booleans,
null). Any other tag — ``!!python/object``, ``!!binary``, a custom ``!thing`` — is refused before
anything is constructed. Duplicate keys are errors, and so are alias bombs and recursive aliases.
Every mapping key and sequence item gets its position recorded, so schema errors can point at
the line that caused them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

Loc = tuple[str | int, ...]

_STANDARD = "tag:yaml.org,2002:"
_SCALAR_TAGS = {f"{_STANDARD}{t}" for t in ("str", "int", "float", "bool", "null")}
_TIMESTAMP = f"{_STANDARD}timestamp"  # read back as the text it was written as
_MAP, _SEQ, _MERGE = f"{_STANDARD}map", f"{_STANDARD}seq", f"{_STANDARD}merge"
_MAX_NODES = 100_000
_MAX_BYTES = 4 * 1024 * 1024


class YamlError(Exception):
    """A YAML document that cannot be read. ``line``/``column`` are 1-based when known."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        super().__init__(message)
        self.message, self.line, self.column = message, line, column


@dataclass
class Positions:
    """Where each key of a document came from: a ``(line, column)`` or a label like ``--set``."""

    places: dict[Loc, tuple[int, int] | str] = field(default_factory=dict)

    def find(self, loc: Loc) -> tuple[int, int] | str | None:
        """The position of ``loc``, or of its nearest recorded parent."""
        loc = tuple(loc)
        while True:
            if loc in self.places:
                return self.places[loc]
            if not loc:
                return None
            loc = loc[:-1]


def describe_tag(tag: str) -> str:
    return "!!" + tag[len(_STANDARD) :] if tag.startswith(_STANDARD) else tag


class _Builder:
    """Turns a composed node tree into plain Python data, checking tags as it goes."""

    def __init__(self, loader: yaml.SafeLoader, positions: Positions, base: Loc = ()) -> None:
        self.loader, self.positions, self.base = loader, positions, base
        self.count = 0

    def build(self, node: yaml.Node, path: Loc, active: frozenset[int] = frozenset()) -> Any:
        self.count += 1
        if self.count > _MAX_NODES:
            raise YamlError(
                f"the document expands to more than {_MAX_NODES} values "
                "(repeated aliases?); a recipe is far smaller",
                *_mark(node),
            )
        if id(node) in active:
            raise YamlError("a recursive alias refers to itself", *_mark(node))
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node)
        active = active | {id(node)}
        if isinstance(node, yaml.SequenceNode):
            self._check_tag(node, _SEQ)
            items = []
            for index, item in enumerate(node.value):
                self.positions.places[self.base + path + (index,)] = _mark(item)
                items.append(self.build(item, path + (index,), active))
            return items
        if isinstance(node, yaml.MappingNode):
            self._check_tag(node, _MAP)
            return self._mapping(node, path, active)
        raise YamlError(f"unsupported YAML node {type(node).__name__}", *_mark(node))

    def _mapping(self, node: yaml.MappingNode, path: Loc, active: frozenset[int]) -> dict:
        out: dict[Any, Any] = {}
        seen: dict[Any, tuple[int, int]] = {}
        merged: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                for source in sources:
                    value = self.build(source, path, active)
                    if not isinstance(value, dict):
                        raise YamlError("a merge key (<<) must refer to a mapping", *_mark(source))
                    merged.update({k: v for k, v in value.items() if k not in merged})
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                raise YamlError("mapping keys must be plain text, not lists or mappings", *_mark(key_node))
            key = self._scalar(key_node)
            if not isinstance(key, str):
                key = key_node.value  # e.g. `1: x` or `true: x`: keep the key as written
            if key in seen:
                first = seen[key][0]
                raise YamlError(
                    f"duplicate key '{key}' (first defined on line {first}); "
                    "remove one of them",
                    *_mark(key_node),
                )
            seen[key] = _mark(key_node)
            self.positions.places[self.base + path + (key,)] = _mark(key_node)
            out[key] = self.build(value_node, path + (key,), active)
        for key, value in merged.items():
            out.setdefault(key, value)
        return out

    def _scalar(self, node: yaml.ScalarNode) -> Any:
        if node.tag == _TIMESTAMP or node.tag == "!":
            return node.value
        if node.tag not in _SCALAR_TAGS:
            raise _tag_error(node)
        return self.loader.construct_object(node, deep=True)

    @staticmethod
    def _check_tag(node: yaml.Node, expected: str) -> None:
        if node.tag != expected:
            raise _tag_error(node)


def _tag_error(node: yaml.Node) -> YamlError:
    return YamlError(
        f"the tag {describe_tag(node.tag)} is not allowed: recipes hold plain data only "
        "(text, numbers, true/false, null, lists and mappings); remove the tag",
        *_mark(node),
    )


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def parse(text: str, positions: Positions | None = None, base: Loc = ()) -> Any:
    """Parse one YAML document from ``text``; record key positions (offset by ``base``)."""
    positions = positions if positions is not None else Positions()
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        return _Builder(loader, positions, base).build(node, ())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = exc.problem or exc.context or "invalid YAML"
        if exc.context and exc.problem:
            what = f"{exc.problem} ({exc.context})"
        line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
        raise YamlError(f"YAML syntax error: {what}", line, col) from None
    except yaml.YAMLError as exc:
        raise YamlError(f"YAML error: {exc}") from None
    finally:
        loader.dispose()


def read_text(path: Path) -> str:
    """Read a YAML file as UTF-8 text, with a clear error for anything that is not one."""
    if not path.exists():
        raise YamlError(f"file not found: {path} (check the path; it is relative to {Path.cwd()})")
    if path.is_dir():
        raise YamlError(f"{path} is a directory; give the path of a YAML recipe file inside it")
    try:
        size = path.stat().st_size
        if size > _MAX_BYTES:
            raise YamlError(f"{path} is {size} bytes, too large for a recipe (limit {_MAX_BYTES})")
        data = path.read_bytes()
    except OSError as exc:
        raise YamlError(f"cannot read {path}: {exc.strerror or exc}") from None
    if b"\x00" in data:
        raise YamlError(f"{path} is a binary file, not a YAML recipe (it contains NUL bytes)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise YamlError(
            f"{path} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "save the recipe as UTF-8 YAML"
        ) from None
    return text
