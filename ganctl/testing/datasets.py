"""``check_dataset``: the contract of a dataset plugin, checked the way ganctl uses datasets."""

from __future__ import annotations

from typing import Any

import numpy as np

from ganctl import api
from ganctl.errors import GanctlError
from ganctl.testing.host import KitHost, PluginRef, fail


def check_dataset(plugin: PluginRef | None, name: str, params: dict[str, Any] | None = None, *,
                  batch_size: int = 8) -> api.Dataset:
    """Check the dataset ``name`` (registered by ``plugin``; None: a built-in) built from recipe-like
    ``params``: its spec, the dtype, shape and range of its batches, its labels, that it is the same
    for the same parameters and shuffles by ``(seed, epoch)``, and that a missing file is a clear
    error. Raises :class:`~ganctl.testing.host.CheckFailed` saying what to change; returns the dataset."""
    host = KitHost(*([plugin] if plugin is not None else []))
    host.check_loaded()
    what = "dataset"
    dataset = host.build("datasets", name, params)
    spec = dataset.spec
    if not isinstance(spec, api.DataSpec):
        raise fail(what, name, f"its spec is a {type(spec).__name__}, not a ganctl.api.DataSpec.",
                   "set self.spec = api.DataSpec(height=..., width=..., channels=..., num_classes=...) "
                   "(api.ArrayDataset does it for you).")
    n = len(dataset)
    if n < 1:
        raise fail(what, name, "it holds no examples.", "raise api.DataError naming the file when there is no data.")
    size = min(batch_size, n)
    batch = dataset.take(np.arange(size, dtype=np.int64))
    if not isinstance(batch, api.Batch):
        raise fail(what, name, f"take() returned a {type(batch).__name__}.", "return api.Batch(images, labels).")
    _check_batch(name, spec, batch, size)
    _check_labels(name, dataset, batch, n)
    again = host.build("datasets", name, params)
    if len(again) != n or not _same(again.take(np.arange(size, dtype=np.int64)), batch):
        raise fail(what, name, "two datasets built from the same parameters differ.",
                   "draw any randomness from a seed in Params (numpy.random.default_rng(seed)), never the global one.")
    first = [b.images for b in dataset.batches(size, seed=0, epoch=0)]
    if [b.images.tobytes() for b in dataset.batches(size, seed=0, epoch=0)] != [x.tobytes() for x in first]:
        raise fail(what, name, "the same (seed, epoch) gave different batches.",
                   "do not override batches(); implement take(indices) and let api.Dataset shuffle.")
    if n >= 2 * size and n > 2:
        other = [b.images for b in dataset.batches(size, seed=0, epoch=1)]
        distinct = len({x.tobytes() for x in first}) > 1 or len({x.tobytes() for x in other}) > 1
        if distinct and [x.tobytes() for x in other] == [x.tobytes() for x in first]:
            raise fail(what, name, "epochs 0 and 1 gave the same batches in the same order.",
                       "do not override batches(); api.Dataset draws a new order for every (seed, epoch).")
    _check_missing_paths(host, name, params)
    return dataset


def _check_batch(name: str, spec: api.DataSpec, batch: api.Batch, size: int) -> None:
    images = np.asarray(batch.images)
    if images.dtype != np.float32:
        raise fail("dataset", name, f"take() gave images of dtype {images.dtype}.",
                   "scale to float32 in take() (api.ArrayDataset keeps the storage dtype and scales each batch).")
    if images.shape != (size, *spec.shape):
        raise fail("dataset", name, f"take() gave images of shape {list(images.shape)}; its spec says "
                   f"{[size, *spec.shape]} (NHWC).", "make spec and images agree: [N, height, width, channels].")
    if not np.all(np.isfinite(images)) or images.min() < -1.0 or images.max() > 1.0:
        raise fail("dataset", name, f"image values span [{images.min():.3g}, {images.max():.3g}], outside [-1, 1].",
                   "scale to [-1, 1]: give api.ArrayDataset the raw_range of the stored values, e.g. (0, 255).")
    if size > 1 and float(images.max() - images.min()) == 0.0:
        raise fail("dataset", name, "every value of the first batch is the same.",
                   "check raw_range: values far below its high end all map to one value.")


def _check_labels(name: str, dataset: api.Dataset, batch: api.Batch, n: int) -> None:
    spec = dataset.spec
    if not spec.conditional:
        if batch.labels is not None:
            raise fail("dataset", name, "take() gave labels, but spec.num_classes is 0.",
                       "set num_classes in the spec, or return labels=None.")
        return
    labels = np.asarray(batch.labels) if batch.labels is not None else None
    if labels is None or labels.dtype != np.int64 or labels.shape != (len(batch.images),):
        got = "no labels" if labels is None else f"labels of dtype {labels.dtype}, shape {list(labels.shape)}"
        raise fail("dataset", name, f"spec says {spec.num_classes} classes, but take() gave {got}.",
                   "return int64 labels of shape [B] (one per image).")
    if labels.min() < 0 or labels.max() >= spec.num_classes:
        raise fail("dataset", name, f"labels span {labels.min()}..{labels.max()} with {spec.num_classes} classes.",
                   "use labels 0..num_classes-1.")
    every = dataset.labels
    if every is None or len(every) != n or not np.array_equal(np.asarray(every)[: len(labels)], labels):
        raise fail("dataset", name, "its labels property disagrees with take().",
                   "return all labels (int64 [N]) in the order of take(), or do not override labels.")


def _check_missing_paths(host: KitHost, name: str, params: dict[str, Any] | None) -> None:
    """A parameter declared with api.PathField that names nothing must be a GanctlError naming it."""
    model = host.host.get("datasets", name).params_model
    for field, info in model.model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        if extra.get("format") != api.PATH_FORMAT:
            continue
        missing = "/nonexistent/ganctl-check/missing-data"
        try:
            host.build("datasets", name, {**(params or {}), field: missing})
        except GanctlError as exc:
            if missing not in str(exc) and "missing-data" not in str(exc):
                raise fail("dataset", name, f"with {field}={missing} the error does not name the path: {exc}",
                           "name the file in the api.DataError message.") from None
            continue
        except Exception as exc:  # noqa: BLE001 - the point: which error the author raised
            raise fail("dataset", name, f"with {field}={missing} it raised {type(exc).__name__}: {exc}.",
                       "check the path and raise api.DataError naming it and saying how to fix it.") from None
        raise fail("dataset", name, f"with {field}={missing} (a path that does not exist) it built a dataset.",
                   "check that the path exists and raise api.DataError naming it.")


def _same(a: api.Batch, b: api.Batch) -> bool:
    if not np.array_equal(a.images, b.images):
        return False
    return (a.labels is None) == (b.labels is None) and (a.labels is None or np.array_equal(a.labels, b.labels))
