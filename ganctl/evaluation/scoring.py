"""``ganctl evaluate`` on a classifier: its run directory (Keras) or its ONNX export (onnxruntime),
scored on held-out labelled data with :mod:`ganctl.evaluation.classification`."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from ganctl import __version__, api
from ganctl.errors import ConfigError
from ganctl.evaluation.extractors import classifier_reader, make_extractor
from ganctl.evaluation.metrics import Result
from ganctl.plugins import PluginHost
from ganctl.recipe.load import validate_section
from ganctl.runs.rundir import RUN_JSON, is_model_file, is_run_dir


def is_classifier(source: Path) -> bool:
    """Whether ``source`` is a classifier's run directory or ONNX export (not a generator's)."""
    if is_run_dir(source):
        try:
            return json.loads((source / RUN_JSON).read_text()).get("kind") == "classifier"
        except (OSError, ValueError):
            return False
    if is_model_file(source) and source.is_file():
        try:
            import onnx

            model = onnx.load(str(source), load_external_data=False)
        except Exception:  # not readable as ONNX: the generator path reports it properly
            return False
        return any(p.key == "ganctl.kind" and p.value == "classifier" for p in model.metadata_props)
    return False


def held_out_predictions(source: Path, host: PluginHost, *, backend: str | None = None,
                         data: dict[str, Any] | None = None) -> tuple[np.ndarray, np.ndarray, dict[str, Any], str]:
    """A classifier's class probabilities on held-out labelled data, the true labels, that data's
    section and what ran the classifier.

    A run directory runs in Keras (its newest checkpoint), an ONNX file in onnxruntime, through
    the feature extractor that reads classifier exports. The data is ``data``, or the held-out
    test split of the data it was trained on.
    """
    from ganctl.evaluation.classification import predict
    from ganctl.session.data import build_dataset, held_out_sections, saw_held_out

    if not is_model_file(source):
        from ganctl.runs.trained import open_trained

        trained = open_trained(source, host, backend)
        session = trained.session
        trained_on, spec = session.recipe.data.to_dict(), session.spec
        engine = f"keras {session.backend} (step {trained.checkpoint.progress.step})"

        def classify(images: np.ndarray) -> np.ndarray:
            return session.engine.classify(images)[0]
    else:
        import onnx

        from ganctl.inference.contract import json_field

        meta = {p.key: p.value for p in onnx.load(str(source), load_external_data=False).metadata_props}
        trained_on = json_field(meta, "ganctl.data", source)
        height, width, channels = json_field(meta, "ganctl.data_shape", source)
        spec = api.DataSpec(height=height, width=width, channels=channels)
        extractor = make_extractor(host, {"plugin": classifier_reader(host), "model": str(source)}, spec)
        engine = "onnxruntime (CPU)"

        def classify(images: np.ndarray) -> np.ndarray:
            found = extractor(images).probabilities
            assert found is not None
            return found
    section = data
    if section is None:
        found = held_out_sections(trained_on, host)
        if found is None or saw_held_out(trained_on, found[0], host):
            raise ConfigError(
                f"{source} was trained on {json.dumps(trained_on)}, which leaves no held-out split it never saw to "
                "score it on; train it on split: train, or give labelled data it was not trained on with "
                "--data RECIPE|DATASET."
            )
        section = found[0]
    dataset = build_dataset(validate_section(section, "datasets", host, source="--data"), host)
    if dataset.labels is None:
        raise ConfigError(f"the data {json.dumps(section)} has no labels, so a classifier cannot be scored on it; "
                          "give labelled data with --data.")
    if dataset.spec.shape != spec.shape:
        raise ConfigError(f"{source} takes {'x'.join(map(str, spec.shape))} images, but {json.dumps(section)} has "
                          f"{'x'.join(map(str, dataset.spec.shape))}; give data of the size it was trained on.")
    probabilities, labels = predict(classify, dataset)
    return probabilities, labels, section, engine


def evaluate_classifier(source: Path, host: PluginHost, *, backend: str | None = None,
                        data: dict[str, Any] | None = None) -> Result:
    """A classifier's accuracy, precision, recall, F1 and ROC-AUC on held-out labelled data
    (:func:`held_out_predictions`)."""
    from ganctl.evaluation.classification import scores

    began = time.perf_counter()
    probabilities, labels, section, engine = held_out_predictions(source, host, backend=backend, data=data)
    values = scores(probabilities, labels)
    protocol = {"metric": "classification", "params": {}, "data": section, "n": int(len(labels)),
                "classifier": str(source), "engine": engine, "ganctl": __version__}
    return Result("classification", values, protocol, time.perf_counter() - began)
