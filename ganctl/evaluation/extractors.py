"""Feature extractors as evaluation uses them: built from a section, checked, run batch by batch.

Which extractor is used when none is named, and which one runs a classifier's ONNX export, is
declared by the plugins (``default`` and ``reads_classifier_exports``, API 1.5), not known here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from ganctl import api
from ganctl.errors import GanctlError, PluginError
from ganctl.plugins import PluginHost
from ganctl.recipe.load import Section, validate_section


@dataclass
class Extractor:
    """A prepared feature extractor and its identity."""

    name: str
    plugin: api.FeatureExtractor
    identity: dict[str, str]

    def __call__(self, images: np.ndarray) -> api.Features:
        size = max(1, int(self.plugin.batch_size))
        parts = [self.plugin.extract(images[i : i + size]) for i in range(0, len(images), size)]
        features = np.concatenate([p.features for p in parts]).astype(np.float32, copy=False)
        if features.ndim != 2 or len(features) != len(images):
            raise GanctlError(
                f"feature extractor '{self.name}' returned features of shape {list(features.shape)} for "
                f"{len(images)} images; expected [{len(images)}, D]. This is a bug in the plugin."
            )
        probabilities = None
        if parts[0].probabilities is not None:
            probabilities = np.concatenate([p.probabilities for p in parts]).astype(np.float32, copy=False)
        return api.Features(features, probabilities)


def default_features(host: PluginHost) -> str:
    """The extractor metrics look through when none is named: the first that declares ``default``."""
    return host.defaults("feature_extractors", "name one with --features, or with features: in the metric's "
                                               "section")[0]


def classifier_reader(host: PluginHost) -> str:
    """The extractor that runs a ganctl classifier's ONNX export (``{plugin: NAME, model: PATH}``):
    the first that declares ``reads_classifier_exports``."""
    found = host.declaring("feature_extractors", "reads_classifier_exports")
    if not found:
        raise PluginError("no feature extractor plugin can run a classifier's ONNX export (none declares "
                          "reads_classifier_exports = True); evaluate the classifier's run directory instead, which "
                          "runs in Keras. See `ganctl plugins`.")
    return found[0]


def make_extractor(host: PluginHost, section: str | dict[str, Any], spec: api.DataSpec) -> Extractor:
    """Build, check and prepare the extractor named by ``section`` (a name or ``{plugin: NAME, ...}``)."""
    if isinstance(section, str):
        section = {"plugin": section}
    checked: Section = validate_section(section, "feature_extractors", host, source="features")
    plugin = host.build("feature_extractors", checked.plugin, checked.params, expected=api.FeatureExtractor)
    plugin.prepare(spec)
    identity = dict(plugin.identity())
    missing = [k for k in ("name", "sha256") if not identity.get(k)]
    if missing:
        raise GanctlError(f"feature extractor '{checked.plugin}' does not say its {', '.join(missing)}; "
                          "this is a bug in the plugin.")
    identity["params"] = json.dumps(checked.params.model_dump(mode="json"), sort_keys=True)
    return Extractor(checked.plugin, plugin, identity)
