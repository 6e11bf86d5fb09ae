"""Where a run's data lives, and what it is.

A dataset plugin declares its file and folder parameters with ``api.PathField``. When a run is
created those are stored in its recipe as absolute paths, so the run resumes, evaluates and
exports from any directory; ``run.json`` keeps what the recipe said (``data_locations``).

A location is not the data's identity: data may move. ``run.json`` also holds a fingerprint of
the data (``data_fingerprint``: the number of examples, their shape and classes, and a hash of
256 examples spread over the set); a resumed run may point a location elsewhere with ``--set``,
and is refused when the data found there is not the same.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from typing import Any

import numpy as np

from ganctl import api
from ganctl.errors import ConfigError
from ganctl.plugins import PluginHost
from ganctl.recipe.load import Recipe

FINGERPRINT_EXAMPLES = 256


def location_params(plugin: str, host: PluginHost) -> list[str]:
    """The names of a dataset plugin's parameters declared with ``api.PathField``."""
    model = host.get("datasets", plugin).params_model
    found = []
    for name, field in model.model_fields.items():
        extra = field.json_schema_extra
        if isinstance(extra, dict) and extra.get("format") == api.PATH_FORMAT:
            found.append(name)
    return found


def relocatable_keys(recipe: Recipe, host: PluginHost) -> list[str]:
    """The recipe's dotted keys a resumed run may change: the data's locations."""
    return [f"data.{name}" for name in location_params(recipe.data.plugin, host)]


def absolute(value: str) -> str:
    """A location as a dataset plugin reads it (``~`` and ``$VARS`` expanded, relative to the
    current directory), made absolute."""
    return os.path.abspath(os.path.expandvars(os.path.expanduser(value)))


def resolve_locations(recipe: Recipe, host: PluginHost) -> tuple[Recipe, dict[str, dict[str, str]]]:
    """The recipe with absolute data locations, and ``{dotted key: {"given", "path"}}`` for each."""
    names = location_params(recipe.data.plugin, host)
    params = recipe.data.params
    given = {name: getattr(params, name) for name in names if getattr(params, name)}
    if not given:
        return recipe, {}
    resolved = {name: absolute(str(value)) for name, value in given.items()}
    data = dataclasses.replace(recipe.data, params=params.model_copy(update=resolved))
    record = {f"data.{name}": {"given": str(given[name]), "path": resolved[name]} for name in given}
    return dataclasses.replace(recipe, data=data), record


def fingerprint(dataset: api.Dataset) -> dict[str, Any]:
    """What identifies a dataset wherever it lies: size, shape, classes and a hash of examples."""
    n = len(dataset)
    spec = dataset.spec
    indices = np.unique(np.linspace(0, n - 1, min(n, FINGERPRINT_EXAMPLES)).astype(np.int64))
    batch = dataset.take(indices)
    digest = hashlib.sha256(np.ascontiguousarray(batch.images, dtype=np.float32).tobytes())
    if batch.labels is not None:
        digest.update(np.ascontiguousarray(batch.labels, dtype=np.int64).tobytes())
    found = {"examples": n, "shape": list(spec.shape), "classes": spec.num_classes, "sha256": digest.hexdigest()[:32]}
    if spec.kind == "table":  # a table's columns, so a resume on another column set names them (API 1.7)
        found["columns"] = [column.name for column in spec.columns]
    return found


def check_same_data(stored: dict[str, Any] | None, dataset: api.Dataset, run: str,
                    locations: dict[str, dict[str, str]]) -> None:
    """Refuse to resume ``run`` on data other than the data it was trained on."""
    if not stored:  # a run made before fingerprints were recorded
        return
    found = fingerprint(dataset)
    if found == stored:
        return
    where = ", ".join(f"{key}={entry['path']}" for key, entry in locations.items()) or "the recipe's data: section"
    if found.get("columns") != stored.get("columns"):
        now, then = found.get("columns") or [], stored.get("columns") or []
        changes = [f"column {name!r} is new" for name in now if name not in then]
        changes += [f"column {name!r} is gone" for name in then if name not in now]
        what = (f"its columns differ ({'; '.join(changes) or 'their order changed'}: it has {', '.join(now)} where "
                f"the run trained on {', '.join(then)})")
    elif found["examples"] != stored["examples"] or found["shape"] != stored["shape"]:
        what = (f"{found['examples']} examples of shape {found['shape']} where the run trained on "
                f"{stored['examples']} of shape {stored['shape']}")
    else:
        what = "the same number and shape of examples, but different images or labels"
    raise ConfigError(
        f"the data at {where} is not the data {run} was trained on: {what}. A resumed run must see the same "
        "data to continue exactly; point the location at the original data (e.g. --set data.path=...), or "
        "start a new run for new data."
    )
