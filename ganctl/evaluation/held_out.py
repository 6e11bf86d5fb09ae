"""A generative model on held-out images: its own measures (a VAE's ELBO) and its reconstructions.

A model that implements ``GenerativeModel.held_out_logs`` (API 1.6) is measured on the held-out
split of the data it was trained on (``split: test`` when it trains on ``split: train``): after
each epoch of training (``held_out/<key>`` in the epoch's record) and by ``ganctl evaluate``.
Each value is the batch-size-weighted mean of the model's batch means over the first
:data:`HELD_OUT_LIMIT` examples of the split (all of them when it holds fewer), in the split's
order, so every epoch and every evaluation sees the same images. A model that implements
``GenerativeModel.reconstruct`` has :data:`RECONSTRUCTION_PAIRS` fixed held-out images drawn beside
their reconstructions.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ganctl import __version__, api
from ganctl.evaluation.metrics import Result
from ganctl.sampling import BATCH

HELD_OUT_LIMIT = 2048
"""At most this many held-out examples are measured (the first ones of the split)."""
RECONSTRUCTION_PAIRS = 16
"""Held-out images drawn beside their reconstructions (evenly spaced over the split)."""
PREFIX = "held_out/"


def _labels(batch: api.Batch) -> np.ndarray | None:
    """Labels as the model's loss gets them (int32), or None."""
    return None if batch.labels is None else batch.labels.astype(np.int32)


@dataclass(frozen=True)
class Abilities:
    """What a generative model can do on held-out images."""

    logs: bool
    reconstructs: bool

    def __bool__(self) -> bool:
        return self.logs or self.reconstructs


def abilities(engine: Any, spec: api.DataSpec) -> Abilities:
    """Whether the model gives held-out values and reconstructions: a model that does not
    override the API's methods gives neither (nothing runs); one that does is asked once, on one
    blank image of ``spec``'s shape, so that the held-out data is opened only when it is needed."""
    model = engine.model
    if model.kind != "generator":
        return Abilities(False, False)
    overrides = {name: getattr(type(model), name) is not getattr(api.GenerativeModel, name)
                 for name in ("held_out_logs", "reconstruct")}
    if not any(overrides.values()):
        return Abilities(False, False)
    images = np.zeros((1, *spec.shape), np.float32)
    labels = np.zeros(1, np.int32) if spec.num_classes else None
    logs = overrides["held_out_logs"] and bool(engine.held_out_logs(images, labels))
    reconstructs = overrides["reconstruct"] and engine.reconstruct(images, labels) is not None
    return Abilities(logs, reconstructs)


def held_out_means(engine: Any, dataset: api.Dataset, limit: int | None = None,
                   batch_size: int = BATCH) -> tuple[dict[str, float], int]:
    """``held_out/<key>``: each value's batch-size-weighted mean over the first ``limit`` examples
    of ``dataset`` (default :data:`HELD_OUT_LIMIT`); and how many examples that was."""
    n = min(len(dataset), HELD_OUT_LIMIT if limit is None else limit)
    if n == 0:
        return {}, 0
    sums: dict[str, float] = {}
    for start in range(0, n, batch_size):
        batch = dataset.take(np.arange(start, min(start + batch_size, n), dtype=np.int64))
        size = len(batch.images)
        for key, value in engine.held_out_logs(batch.images, _labels(batch)).items():
            sums[key] = sums.get(key, 0.0) + float(value) * size
    return {f"{PREFIX}{key}": total / n for key, total in sums.items()}, n


def reconstruction_pairs(engine: Any, dataset: api.Dataset,
                         count: int = RECONSTRUCTION_PAIRS) -> tuple[np.ndarray, np.ndarray] | None:
    """Fixed held-out images (``count``, evenly spaced over ``dataset``) and their
    reconstructions; None when the model gives none (or there are no images)."""
    if len(dataset) == 0:
        return None
    chosen = np.unique(np.linspace(0, len(dataset) - 1, min(count, len(dataset))).astype(np.int64))
    batch = dataset.take(chosen)
    found = engine.reconstruct(batch.images, _labels(batch))
    if found is None:
        return None
    found = np.asarray(found, dtype=np.float32)
    if found.shape != batch.images.shape:
        raise api.GanctlError(f"the model's reconstruct() returned shape {list(found.shape)} for images of shape "
                              f"{list(batch.images.shape)}: it must return one image of the same shape per image "
                              "(a bug in the model plugin).")
    return batch.images, found


def held_out_result(subject: Any, host: Any) -> tuple[Result | None, str]:
    """``ganctl evaluate``'s held-out values of a run's model (a :class:`~ganctl.evaluation.subjects.Subject`
    with its session; ``metric: held_out``), and a note for the user when the model has such values
    but the run's data has no held-out split ("" otherwise)."""
    from ganctl.session.data import build_dataset, held_out_section

    began = time.perf_counter()
    session = subject.session
    if session is None or not abilities(session.engine, session.spec).logs:
        return None, ""
    section = held_out_section(session.recipe.data)
    if section is None:
        return None, (f"no held-out values: the run's data ({session.recipe.data.plugin}) has no held-out split; "
                      "train on split: train of a dataset that has a test split to measure the model on it.")
    values, n = held_out_means(session.engine, build_dataset(section, host))
    protocol = {"metric": "held_out", "params": {}, "data": section.to_dict(), "n": n, "limit": HELD_OUT_LIMIT,
                "generator": subject.name, "engine": subject.engine, "ganctl": __version__}
    return Result("held_out", values, protocol, time.perf_counter() - began), ""
