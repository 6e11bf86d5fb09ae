"""The default features of a dataset, with its classifier trained on first use.

:func:`choose` decides what metrics look through when nobody names an extractor (see
:mod:`ganctl.evaluation.default_features` for the order). A labelled dataset's classifier is
looked up in ganctl's cache; when it is absent it is trained here, through ganctl's own training
path (a classifier recipe made from the data section, the same session, trainer, checkpoints and
ONNX export as ``ganctl train``), into a scratch folder beside the cache entry that is renamed
into place only once the export exists: an interrupted training leaves nothing half-written, and
two processes that train the same classifier at once both end with a complete one.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
from pathlib import Path
from typing import Any, TextIO

from ganctl.evaluation import default_features as defaults
from ganctl.evaluation.default_features import Choice
from ganctl.plugins import PluginHost


def choose(host: PluginHost, section: dict[str, Any], backend: str, trainer: type, *, dataset: Any = None,
           stream: TextIO | None = None) -> Choice:
    """The default features for metrics on the data ``section`` (a generator's data section, as
    its run's recipe has it). ``backend``: where a missing classifier trains (the active one);
    ``trainer``: :class:`ganctl.training.loop.Trainer` (passed in: the loop's metrics callback
    uses this module); ``dataset``: the data already loaded (training); ``stream``: where the
    classifier's progress goes (stderr)."""
    from ganctl.evaluation.extractors import classifier_reader  # noqa: F401 - fails early when none reads exports
    from ganctl.recipe.load import validate_section
    from ganctl.session.data import build_dataset
    from ganctl.session.provenance import fingerprint

    found = defaults.declared(host, section)
    if found is not None:
        return found
    model = defaults.classifier_model(host)
    if model is None:
        return defaults.fallback(host, "no classifier model plugin trains default features "
                                       "(none declares trains_default_features)")
    if not host.declaring("feature_extractors", "reads_classifier_exports"):
        return defaults.fallback(host, "no feature extractor runs a classifier's export")
    train_on = defaults.training_section(section, host)
    if dataset is None or train_on != section:
        dataset = build_dataset(validate_section(train_on, "datasets", host, source="the default classifier's data"),
                                host)
    if not defaults.labelled(dataset):
        return defaults.fallback(host, f"the data ({section['plugin']}) has no labels to train a classifier on")
    key = defaults.cache_key(train_on, fingerprint(dataset), model)
    run = defaults.cached_run(key)
    if run is None:
        return defaults.fallback(host, "ganctl's cache is off (GANCTL_CACHE_DIR is empty), so there is nowhere to "
                                       "keep a default classifier")
    if defaults.is_complete(run):
        return defaults.reading(host, run, "cached", f"features: the default classifier of this data, cached at {run}")
    stream = stream or sys.stderr
    exporters = host.defaults("exporters", "install an exporter that declares default = True")
    recipe = defaults.classifier_recipe(train_on, model, len(dataset), exporters)
    print(f"training the default classifier of this data ({recipe['train']['epochs']} epochs on "
          f"{len(dataset)} images; once, then cached at {run}):", file=stream, flush=True)
    train(recipe, host, backend, trainer, run, stream)
    return defaults.reading(host, run, "trained", f"features: the default classifier of this data, trained now "
                                                  f"and cached at {run}")


def train(raw: dict[str, Any], host: PluginHost, backend: str, trainer_class: type, destination: Path,
          stream: TextIO) -> None:
    """Train the classifier recipe ``raw`` into ``destination`` (a run directory made whole
    with one rename), printing plain progress lines on ``stream``."""
    from ganctl.recipe.load import validate
    from ganctl.runs.checkpoint import Progress
    from ganctl.runs.rundir import RunDir
    from ganctl.session.assemble import open_session
    from ganctl.session.provenance import fingerprint, resolve_locations
    from ganctl.training.progress import PlainReporter
    from ganctl.training.recipe_exports import check_exporters, export_after_training
    from ganctl.training.run_info import run_info

    recipe = validate(raw, host, source="the default classifier's recipe")
    recipe, locations = resolve_locations(recipe, host)
    session = open_session(recipe, host, backend)
    check_exporters(session, host)
    destination.parent.mkdir(parents=True, exist_ok=True)
    scratch = destination.parent / f".{destination.name}.{secrets.token_hex(4)}.tmp"
    try:
        run = RunDir.create(str(destination.parent), recipe.name, recipe.to_dict(), scratch)
        run.write_info({**run_info(session, {}), "epochs": recipe.train.epochs, "data_locations": locations,
                        "data_fingerprint": fingerprint(session.dataset)})
        trainer = trainer_class(session, PlainReporter(recipe.train.log_every, stream), host)
        trainer.use(run)
        outcome = trainer.fit(Progress())
        export_after_training(session, host, run, outcome.progress.step)
        try:
            os.replace(scratch, destination)
        except OSError:  # another process put a complete one there first
            if not defaults.is_complete(destination):
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    validation = RunDir(destination).read_info().get("validation")
    if validation:
        print(f"default classifier: held-out accuracy {validation['accuracy']:.4f} on {validation['n']} images",
              file=stream, flush=True)


def for_quality_check(session: Any, host: PluginHost, trainer: type, stream: TextIO | None = None) -> Any:
    """The default features of a quantised export's quality check on ``session``'s data
    (:mod:`ganctl.evaluation.quantised`): None when the recipe's metrics name their features
    (the check uses those), else :func:`choose`'s, its line printed on ``stream`` (stderr)."""
    from ganctl.evaluation.quantised import features_of, metrics_of

    if features_of(session, metrics_of(host)) is not None:
        return None
    choice = choose(host, session.recipe.data.to_dict(), session.backend, trainer, dataset=session.dataset,
                    stream=stream)
    print(f"quality check: {choice.detail}", file=stream or sys.stderr, flush=True)
    return choice.features
