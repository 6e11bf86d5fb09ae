"""What metrics look through when nobody names an extractor, and where it came from.

In order: the extractor the dataset plugin declares (``default_features`` on its factory, API
1.7); else, for labelled data, a classifier trained on the data's training split, kept in
ganctl's cache (``classifiers/`` under :func:`ganctl.fsutil.cache_dir`) under a key made of the
data section (locations absolute) and the data's fingerprint
(:func:`ganctl.session.provenance.fingerprint`), so every run on the same data uses the same
classifier; else (unlabelled data, or no classifier model installed) the extractor plugins'
default (``pixels``). Training a missing classifier is :mod:`ganctl.training.default_classifier`'s.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ganctl import api
from ganctl.evaluation.extractors import classifier_reader, default_features
from ganctl.fsutil import cache_dir
from ganctl.plugins import PluginHost

CACHE = "classifiers"
"""The cache folder of the default classifiers (one run directory per key)."""
EXPORT = Path("exports") / "classifier.onnx"
"""A classifier run's ONNX export, which the classifier-reading extractor runs."""
STEPS = 1350
"""About how many training steps a default classifier takes (the digits recipe's 30 epochs)."""
MAX_EPOCHS = 30
RECIPE_VERSION = 1
"""Part of the cache key: raise it when :func:`classifier_recipe` changes what it trains."""


@dataclass(frozen=True)
class Choice:
    """The features metrics look through, and where they came from (for the output and protocols)."""

    features: str | dict[str, Any]
    source: str
    """``asked`` (--features or the metric's features:), ``declared`` (by the dataset plugin),
    ``cached`` (a cached classifier), ``trained`` (a classifier trained now) or ``fallback``."""
    detail: str = ""
    """A sentence for the user: which features, and why."""

    @property
    def name(self) -> str:
        return self.features if isinstance(self.features, str) else str(self.features.get("plugin"))

    def to_dict(self) -> dict[str, Any]:
        return {"features": self.features, "source": self.source, "detail": self.detail}


def declared(host: PluginHost, section: dict[str, Any]) -> Choice | None:
    """The extractor the dataset plugin of ``section`` declares for its data, if any."""
    factory = host.get("datasets", section["plugin"]).factory
    found = getattr(factory, "default_features", None)
    if found is None:
        return None
    return Choice(found, "declared", f"features: {json.dumps(found)}, which the {section['plugin']} dataset "
                                     "plugin declares for its data")


def classifier_model(host: PluginHost) -> str | None:
    """The classifier model plugin trained for default features: the first whose factory
    declares ``trains_default_features`` (ganctl's own ``classifier``); None when none does."""
    found = host.declaring("models", "trains_default_features")
    return found[0] if found else None


def fallback(host: PluginHost, why: str) -> Choice:
    """The extractor plugins' default (``pixels``), with the reason no classifier is used."""
    name = default_features(host)
    return Choice(name, "fallback", f"features: {name}, because {why}")


def training_section(section: dict[str, Any], host: PluginHost) -> dict[str, Any]:
    """The data a default classifier for ``section`` trains on: its training split when the
    dataset has train and test splits (so the classifier is validated on the test split), else
    the section itself."""
    from ganctl.session.data import held_out_sections

    found = held_out_sections(section, host)
    return dict(found[1]) if found is not None else dict(section)


def cache_key(section: dict[str, Any], fingerprint: dict[str, Any], model: str) -> str:
    """The cache key of the classifier trained on ``section`` (resolved) whose data has ``fingerprint``."""
    text = json.dumps({"data": section, "fingerprint": fingerprint, "model": model, "version": RECIPE_VERSION},
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def cached_run(key: str) -> Path | None:
    """Where the classifier of ``key`` lives in the cache (whether or not it exists yet);
    None when caching is off (``GANCTL_CACHE_DIR`` empty)."""
    folder = cache_dir(CACHE)
    return None if folder is None else folder / key


def is_complete(run: Path) -> bool:
    """Whether a cached classifier run holds its export (it is moved into place only when it does)."""
    return (run / EXPORT).is_file()


def reading(host: PluginHost, run: Path, source: str, detail: str) -> Choice:
    """The choice of reading the classifier at ``run`` through the classifier-reading extractor."""
    return Choice({"plugin": classifier_reader(host), "model": str(run)}, source, detail)


def classifier_recipe(section: dict[str, Any], model: str, examples: int, exporters: list[str]) -> dict[str, Any]:
    """The recipe of a default classifier on ``section`` (``examples`` images): the model
    plugin's own defaults, about :data:`STEPS` steps of Adam, exported by ``exporters`` (the
    default ones: ganctl's ONNX exporter, whose file the classifier-reading extractor runs)."""
    batch = 32 if examples < 8192 else 128
    steps_per_epoch = max(1, examples // batch)
    epochs = max(2, min(MAX_EPOCHS, math.ceil(STEPS / steps_per_epoch)))
    return {
        "name": "default-classifier", "seed": 0, "data": section, "model": {"plugin": model},
        "train": {"epochs": epochs, "batch_size": batch, "checkpoint_every": epochs,
                  "log_every": max(1, steps_per_epoch // 2),
                  "optimizer": {"type": "adam", "learning_rate": 1.0e-3, "beta_1": 0.9}},
        "export": list(exporters),
    }


def labelled(dataset: api.Dataset) -> bool:
    return dataset.spec.num_classes >= 2
