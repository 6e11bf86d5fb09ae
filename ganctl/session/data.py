"""Building a dataset from a recipe or a plugin name, with plugin errors made user-facing."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from ganctl.api import Dataset
from ganctl.errors import ConfigError, DataError
from ganctl.plugins import PluginHost, unknown_name_message
from ganctl.recipe.load import Section, load_recipe, validate_section
from ganctl.recipe.overrides import apply_overrides
from ganctl.recipe.yamlio import Positions


def build_dataset(section: Section, host: PluginHost) -> Dataset:
    """Call the dataset plugin's factory; file-system failures become DataErrors."""
    try:
        return host.build("datasets", section.plugin, section.params, expected=Dataset)
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        raise DataError(
            f"dataset '{section.plugin}' could not read its data{where}: {exc.strerror or exc}. "
            "Check the path and permissions in the recipe's data: section."
        ) from None


def load_dataset(source: str, overrides: list[str], host: PluginHost) -> tuple[str, dict[str, Any], Dataset]:
    """The dataset named by a recipe file or a dataset plugin name (with ``KEY=VALUE`` params)."""
    path = Path(source)
    if path.suffix.lower() in (".yaml", ".yml") or path.is_file():
        section = load_recipe(path, host, overrides).data
    else:
        if source not in host.components["datasets"]:
            raise ConfigError(
                unknown_name_message("dataset", source, host.names("datasets"))
                + " (Or give the path of a recipe file.)"
            )
        raw: dict[str, Any] = {"plugin": source}
        apply_overrides(raw, overrides, Positions(), f"dataset '{source}'")
        section = validate_section(raw, "datasets", host, source=f"dataset '{source}'")
    return section.plugin, section.params.model_dump(mode="json"), build_dataset(section, host)


HELD_OUT_SPLIT, TRAINING_SPLIT = "test", "train"


def held_out_sections(section: dict[str, Any], host: PluginHost) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The dataset's held-out part and its training part: ``section`` with ``split: test`` and
    with ``split: train``, when the dataset plugin takes both; None when it has no such splits.

    Validation (classifiers) and the real-vs-real floor of metrics use it: neither means much
    when the "held-out" images were also trained on.
    """
    from pydantic import ValidationError

    params_model = host.get("datasets", section["plugin"]).params_model
    if "split" not in params_model.model_fields:
        return None
    params = {k: v for k, v in section.items() if k != "plugin"}
    out = []
    for split in (HELD_OUT_SPLIT, TRAINING_SPLIT):
        try:
            params_model.model_validate({**params, "split": split})
        except ValidationError:
            return None
        out.append({**section, "split": split})
    return out[0], out[1]


def held_out_section(trained_on: Section) -> Section | None:
    """``trained_on`` with its held-out split (``split: test``) instead of ``split: train``; None
    when it does not train on the training split of a dataset that has both. The validated
    counterpart of :func:`held_out_sections`, for a recipe's own data section (a classifier's
    validation during training)."""
    params = trained_on.params
    if "split" not in type(params).model_fields or params.split != TRAINING_SPLIT:
        return None
    from pydantic import ValidationError

    try:  # the one changed value is checked; the rest was validated with the recipe
        held_out = type(params).model_validate({**params.model_dump(), "split": HELD_OUT_SPLIT})
    except ValidationError:
        return None
    return replace(trained_on, params=held_out)


def saw_held_out(trained: dict[str, Any] | None, held_out: dict[str, Any], host: PluginHost) -> bool:
    """Whether a model trained on the data section ``trained`` saw images of ``held_out``.

    It did when both read the same dataset (the same plugin and parameters, whatever their
    ``split`` and ``limit``, with data locations compared as absolute paths) and it was not
    trained on the training split alone: ``split: all`` or ``test`` includes the test split, and
    a dataset without splits is all one part. Unknown training data (None) is taken as unseen.
    """
    from ganctl.session.provenance import absolute, location_params

    if trained is None:
        return False

    def dataset(section: dict[str, Any]) -> dict[str, Any]:
        locations = location_params(section["plugin"], host) if section.get("plugin") in host.names("datasets") else []
        return {k: absolute(v) if k in locations and isinstance(v, str) else v
                for k, v in section.items() if k not in ("split", "limit")}

    return dataset(trained) == dataset(held_out) and trained.get("split") != TRAINING_SPLIT
