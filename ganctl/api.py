"""The public plugin API of ganctl: everything a plugin may import, and nothing else.

A plugin is a module (found through the ``ganctl`` entry-point group) that implements one or
more hooks from :mod:`ganctl.hookspecs`. Each hook receives a ``register(name, factory)``
callback::

    from ganctl import api

    class Shapes(api.ArrayDataset):
        \"\"\"Random white squares on black: a toy dataset.\"\"\"

        class Params(api.Params):
            count: int = api.Field(1000, ge=1, description="How many images.")

        def __init__(self, params: Params) -> None:
            images = ...  # uint8 [N, H, W, C]
            super().__init__(images, raw_range=(0, 255))

    @api.hookimpl
    def register_datasets(register):
        register("shapes", Shapes)

The factory contract is the same for every kind of component:

* ``factory.Params`` is a subclass of :class:`Params` (a pydantic model that forbids unknown
  keys). It validates the plugin's section of a recipe, e.g. ``data: {plugin: shapes, count: 5}``
  is validated as ``Shapes.Params(count=5)``, and it is what ``ganctl recipe schema`` publishes.
* ``factory(params)`` builds the component. A dataset factory returns a :class:`Dataset`.
* The factory's docstring (first line) is its description in ``ganctl plugins``.
* Plugins, not ganctl, say which components are used when the user names none (1.5): a metric,
  feature extractor or exporter class sets ``default = True`` (see :attr:`Metric.default`,
  :attr:`FeatureExtractor.default`, :attr:`Exporter.default`). ganctl reads these class
  attributes on the registered factory.

Versioning: :data:`API_VERSION` is ``MAJOR.MINOR``. The minor number grows when something is
added (a hook, a keyword, a helper); the major number changes only when something a plugin may
rely on is removed or changed. Hooks only ever grow new arguments, and pluggy lets an
implementation accept fewer arguments than the spec, so plugins written for an older minor
version keep working.

A plugin module says which version it needs with a module attribute (API 1.7)::

    GANCTL_API = "1.7"

ganctl loads it when the major numbers are equal and its own minor number is at least the
plugin's; otherwise the plugin is refused (listed as failed by ``ganctl plugins``, with both
versions and the command that fixes it). A name that is replaced stays importable under its old
spelling until the next major version, and using it warns (:class:`DeprecationWarning`, shown by
pytest); see ``docs/plugins.md`` for the deprecation policy.
"""

from __future__ import annotations

import math
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import numpy as np
import pluggy
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ganctl.errors import ConfigError, DataError, GanctlError

__all__ = [
    "API_ATTRIBUTE",
    "API_VERSION",
    "KINDS",
    "ArrayDataset",
    "Batch",
    "COLUMN_TYPES",
    "ClassifierModel",
    "Column",
    "ConfigError",
    "DataError",
    "DataSpec",
    "DATA_KINDS",
    "Dataset",
    "ExportSource",
    "Exporter",
    "FeatureExtractor",
    "Features",
    "Field",
    "GanctlError",
    "GenerativeModel",
    "INPUT_LABEL",
    "INPUT_IMAGES",
    "INPUT_Z",
    "Metric",
    "Model",
    "OUTPUT_FEATURES",
    "OUTPUT_IMAGES",
    "OUTPUT_PROBABILITIES",
    "OUTPUT_ROWS",
    "PATH_FORMAT",
    "Params",
    "PathField",
    "Register",
    "Runner",
    "Segment",
    "TableDataset",
    "TableMetric",
    "TableSpec",
    "hookimpl",
    "input_gradient",
    "provide_input_gradient",
    "model_validator",
]

API_VERSION = "1.7"
"""Version of this module's contract: ``MAJOR.MINOR`` (see the module docstring)."""

API_ATTRIBUTE = "GANCTL_API"
"""The module attribute by which a plugin declares the API version it needs, e.g.
``GANCTL_API = "1.7"`` (1.7)."""

_DEPRECATED: dict[str, tuple[str, str]] = {}
"""Deprecated names: old name -> (the name that replaces it, the API version that deprecated it).
An old name keeps working, with a :class:`DeprecationWarning`, until the next major version."""


def __getattr__(name: str) -> Any:
    """Deprecated names: the replacement, with a warning that says what to write instead."""
    if name not in _DEPRECATED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    replacement, since = _DEPRECATED[name]
    major = int(API_VERSION.split(".")[0])
    warnings.warn(f"ganctl.api.{name} is deprecated since API {since} and will be removed in API {major + 1}.0; "
                  f"use ganctl.api.{replacement} instead", DeprecationWarning, stacklevel=2)
    return globals()[replacement]

KINDS = ("models", "datasets", "metrics", "exporters", "feature_extractors")
"""The kinds of component a plugin can register, one hook each (``register_<kind>``)."""

hookimpl = pluggy.HookimplMarker("ganctl")
"""Decorator marking a function as the implementation of a ganctl hook."""

Register = Callable[[str, Any], None]
"""The callback each ``register_*`` hook receives: ``register(name, factory)``."""


class Params(BaseModel):
    """Base class of every plugin's parameter schema.

    Unknown keys are errors (so typos are caught), values are validated and coerced by
    pydantic, and instances are immutable. Give each field a default and a ``description``:
    descriptions end up in ``ganctl recipe schema`` and in editors.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)


PATH_FORMAT = "path"
"""The JSON Schema ``format`` of a parameter that names a file or folder (see :func:`PathField`)."""


def PathField(default: Any = ..., *, description: str = "", **kwargs: Any) -> Any:  # noqa: N802 - like Field
    """A parameter that names a file or folder holding data (1.4).

    Declare locations with it instead of ``Field``: when a run is created ganctl stores the
    location as an absolute path (a run resumes from any directory) and records what the recipe
    said; a resumed run may point it somewhere else (``--set data.path=...``) when the data
    moved, and ganctl checks that the data found there is the same. Relative values are taken
    from the current directory, and ``~`` and ``$VARS`` are expanded.
    """
    return Field(default, description=description, json_schema_extra={"format": PATH_FORMAT}, **kwargs)


# --------------------------------------------------------------------------------------------
# Datasets
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DataSpec:
    """What a model needs to know about the data it is trained on.

    Images are always delivered as float32 arrays in NHWC layout with values in
    ``value_range`` (``[-1, 1]``), whatever the storage format was. A table is described by
    :class:`TableSpec` instead (1.7); ``kind`` tells the two apart.
    """

    kind: ClassVar[str] = "image"
    """What the data is: ``"image"`` here, ``"table"`` for a :class:`TableSpec` (1.7)."""

    height: int
    width: int
    channels: int
    num_classes: int = 0
    """Number of classes (labels are ``0 .. num_classes-1``); 0 for unlabelled data."""
    class_names: tuple[str, ...] = ()
    value_range: tuple[float, float] = (-1.0, 1.0)
    layout: str = "NHWC"

    def __post_init__(self) -> None:
        if min(self.height, self.width, self.channels) < 1:
            raise ValueError(f"DataSpec dimensions must be positive, got {self.shape}")
        if self.class_names and len(self.class_names) != self.num_classes:
            raise ValueError(
                f"DataSpec has {self.num_classes} classes but {len(self.class_names)} class names"
            )

    @property
    def shape(self) -> tuple[int, int, int]:
        """One image's shape, ``(height, width, channels)``."""
        return (self.height, self.width, self.channels)

    @property
    def conditional(self) -> bool:
        """Whether the data carries class labels."""
        return self.num_classes > 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "shape": list(self.shape),
            "channels": self.channels,
            "num_classes": self.num_classes,
            "class_names": list(self.class_names),
            "value_range": list(self.value_range),
            "layout": self.layout,
        }


class Batch(NamedTuple):
    """One batch: ``images`` float32 ``[B, H, W, C]`` in ``[-1, 1]``; ``labels`` int64 ``[B]`` or None.

    For a table (1.7), ``images`` holds the encoded rows, float32 ``[B, TableSpec.width]``.
    """

    images: np.ndarray
    labels: np.ndarray | None


class Dataset(ABC):
    """A finite, randomly accessible set of images (and optionally labels).

    Subclasses set :attr:`spec` and implement :meth:`__len__` and :meth:`take`; shuffling and
    batching are done here, deterministically for a seed and epoch, one batch at a time (the
    whole set is never copied per epoch).
    """

    spec: DataSpec | TableSpec
    """An image dataset's :class:`DataSpec`, or a table's :class:`TableSpec` (1.7)."""

    default_features: ClassVar[str | dict[str, Any] | None] = None
    """Set on the dataset factory (1.7): the feature extractor metrics on this data look through
    when nobody names one (a name or ``{plugin: NAME, ...}``), instead of the classifier ganctl
    trains on the data's training split and caches (docs/evaluation.md). None: that classifier."""

    @abstractmethod
    def __len__(self) -> int:
        """Number of examples."""

    @abstractmethod
    def take(self, indices: np.ndarray) -> Batch:
        """The examples at ``indices`` (int64 array), scaled to ``spec.value_range``."""

    @property
    def labels(self) -> np.ndarray | None:
        """All labels (int64 ``[N]``), or None for unlabelled data. Override when cheap."""
        if not self.spec.conditional:
            return None
        return self.take(np.arange(len(self), dtype=np.int64)).labels

    def steps_per_epoch(self, batch_size: int, *, drop_remainder: bool = True) -> int:
        """How many batches :meth:`batches` yields for ``batch_size``."""
        self._check_batch_size(batch_size)
        n = len(self)
        return n // batch_size if drop_remainder else math.ceil(n / batch_size)

    def batches(
        self,
        batch_size: int,
        *,
        seed: int,
        epoch: int = 0,
        shuffle: bool = True,
        drop_remainder: bool = True,
        start: int = 0,
    ) -> Iterator[Batch]:
        """Yield the batches of one epoch, from batch number ``start`` on.

        The order depends only on ``(seed, epoch)``: the same pair always gives the same
        batches, and each epoch of a run gets a fresh permutation. ``start`` skips batches
        without loading them (to resume in the middle of an epoch).
        """
        steps = self.steps_per_epoch(batch_size, drop_remainder=drop_remainder)
        n = len(self)
        if shuffle:
            order = np.random.default_rng([seed, epoch]).permutation(n)
        else:
            order = np.arange(n)
        for step in range(start, steps):
            yield self.take(order[step * batch_size : (step + 1) * batch_size])

    def _check_batch_size(self, batch_size: int) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch size must be at least 1, got {batch_size}.")
        if batch_size > len(self):
            raise ConfigError(
                f"batch size {batch_size} is larger than the dataset ({len(self)} examples): "
                f"set train.batch_size to at most {len(self)}."
            )


class ArrayDataset(Dataset):
    """A dataset held in memory as arrays in their storage dtype (usually uint8).

    Images are kept as given and scaled to ``[-1, 1]`` batch by batch, so 60,000 28x28 uint8
    images take 47 MB, not the 188 MB of a float32 copy.

    Args:
        images: ``[N, H, W]`` or ``[N, H, W, C]`` array of any real dtype.
        labels: ``[N]`` array of non-negative integers, or None.
        raw_range: the ``(low, high)`` values that map to ``-1`` and ``+1``; e.g. ``(0, 255)``
            for 8-bit images. Values outside are clipped.
        num_classes: number of classes; defaults to ``max(labels) + 1``.
        class_names: optional names, one per class.
    """

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray | None = None,
        *,
        raw_range: tuple[float, float] = (0.0, 255.0),
        num_classes: int | None = None,
        class_names: Sequence[str] = (),
    ) -> None:
        images = np.asarray(images)
        if images.ndim == 3:
            images = images[..., np.newaxis]
        if images.ndim != 4:
            raise DataError(
                f"images must have shape [N, H, W] or [N, H, W, C], got {list(images.shape)}."
            )
        if images.shape[0] == 0:
            raise DataError("the dataset holds no images.")
        if not (np.issubdtype(images.dtype, np.integer) or np.issubdtype(images.dtype, np.floating)):
            raise DataError(f"images must be numbers, got dtype {images.dtype}.")
        low, high = float(raw_range[0]), float(raw_range[1])
        if not high > low:
            raise DataError(f"raw_range must be (low, high) with high > low, got {raw_range}.")
        if labels is not None:
            labels = np.asarray(labels)
            if labels.shape != (images.shape[0],):
                raise DataError(
                    f"labels must have shape [{images.shape[0]}] (one per image), "
                    f"got {list(labels.shape)}."
                )
            if labels.size and not np.issubdtype(labels.dtype, np.integer):
                if not np.all(np.equal(np.mod(labels, 1), 0)):
                    raise DataError(f"labels must be whole numbers, got dtype {labels.dtype}.")
            labels = labels.astype(np.int64)
            if labels.min() < 0:
                raise DataError(f"labels must be >= 0, found {int(labels.min())}.")
            found = int(labels.max()) + 1
            if num_classes is None:
                num_classes = found
            elif found > num_classes:
                raise DataError(f"labels go up to {found - 1} but num_classes is {num_classes}.")
        else:
            num_classes = 0
        self._images = images
        self._labels = labels
        self._offset = low
        self._scale = 2.0 / (high - low)
        self.spec = DataSpec(
            height=int(images.shape[1]),
            width=int(images.shape[2]),
            channels=int(images.shape[3]),
            num_classes=int(num_classes),
            class_names=tuple(class_names),
        )

    def __len__(self) -> int:
        return int(self._images.shape[0])

    @property
    def labels(self) -> np.ndarray | None:
        return self._labels

    def take(self, indices: np.ndarray) -> Batch:
        raw = self._images[indices]
        images = (raw.astype(np.float32) - np.float32(self._offset)) * np.float32(self._scale) - 1.0
        np.clip(images, -1.0, 1.0, out=images)
        labels = None if self._labels is None else self._labels[indices]
        return Batch(images, labels)


# --------------------------------------------------------------------------------------------
# Tables (API 1.7)
# --------------------------------------------------------------------------------------------

DATA_KINDS = ("image", "table")
"""The kinds of data a dataset gives and a model takes (:attr:`DataSpec.kind`, :attr:`Model.data_kinds`)."""

COLUMN_TYPES = ("numeric", "categorical", "boolean")
"""The types of a table's column (:attr:`Column.type`)."""

SAMPLING_STREAM = 0xC7A5
"""Seeds the draws of :meth:`TableDataset.sampled_batches` (with the run's seed, the epoch and the batch)."""

MODE_CLIP = 0.99
"""How far a numeric value's offset within its mode may go (a fraction of 4 standard deviations)."""

MAX_DECIMALS = 6
"""A numeric column's values with more decimal places than this are decoded unrounded (1.7)."""


@dataclass(frozen=True)
class Column:
    """One column of a table and how it is encoded into a row of floats (1.7).

    A ``numeric`` column is encoded by mode-specific normalisation (Xu et al. 2019, CTGAN/TVAE): a
    Gaussian mixture of ``len(means)`` modes fitted to the column; a value ``x`` becomes its most
    likely mode ``k`` (a one-hot slot per mode, none when there is one mode) and its offset
    ``(x - means[k]) / (4 * stds[k])``, clipped to ``[-0.99, 0.99]`` (one slot). A
    ``categorical`` or ``boolean`` column is one-hot over ``categories`` (a boolean's two, false
    first). A column with ``indicator`` has two more slots, one-hot ``[present, missing]``: where
    a value was missing the row holds an imputed value and says so.
    """

    name: str
    type: str
    categories: tuple[str, ...] = ()
    """categorical, boolean: the values, in the order of their one-hot slots."""
    weights: tuple[float, ...] = ()
    """numeric: the mixture's weights, one per mode."""
    means: tuple[float, ...] = ()
    stds: tuple[float, ...] = ()
    low: float = 0.0
    """numeric: the smallest value encoded, imputed ones included (decoded values are clipped to ``[low, high]``)."""
    high: float = 0.0
    integer: bool = False
    """numeric: every value seen was a whole number (decoded values are rounded)."""
    decimals: int | None = None
    """numeric: the most decimal places of the values seen, when at most :data:`MAX_DECIMALS`
    (decoded values are rounded to them: a table of lengths to 0.1 mm gives lengths to 0.1 mm);
    None when more or not known (1.7)."""
    missing_rate: float = 0.0
    """The fraction of the source's values that were missing (before imputation or dropping)."""
    indicator: bool = False
    """The encoding carries a missingness indicator: generated rows may hold missing values here."""
    imputation: str = ""
    """How missing values were filled for training (a strategy name; empty when none were)."""
    frequencies: tuple[float, ...] = ()
    """categorical, boolean: each category's share of the rows the encoding was fitted on, in the order
    of ``categories`` (1.7); empty when the dataset does not say (a model then takes them as equal)."""

    def __post_init__(self) -> None:
        if self.type not in COLUMN_TYPES:
            raise ValueError(f"column {self.name!r}: type must be one of {', '.join(COLUMN_TYPES)}, got {self.type!r}")
        if self.type == "numeric":
            if not self.means or not len(self.means) == len(self.stds) == len(self.weights):
                raise ValueError(f"numeric column {self.name!r} needs as many weights, means and stds (at least one)")
            if min(self.stds) <= 0:
                raise ValueError(f"numeric column {self.name!r}: every std must be positive")
        elif len(self.categories) < 1 or (self.type == "boolean" and len(self.categories) != 2):
            raise ValueError(f"{self.type} column {self.name!r} needs its categories (a boolean: two)")
        if self.frequencies and len(self.frequencies) != len(self.categories):
            raise ValueError(f"column {self.name!r}: give one frequency per category, or none")

    @property
    def modes(self) -> int:
        """A numeric column's number of mixture modes (0 for others)."""
        return len(self.means)

    def to_dict(self) -> dict[str, Any]:
        data = {"name": self.name, "type": self.type, "missing_rate": self.missing_rate,
                "indicator": self.indicator, "imputation": self.imputation}
        if self.type == "numeric":
            data.update(weights=list(self.weights), means=list(self.means), stds=list(self.stds),
                        low=self.low, high=self.high, integer=self.integer)
            if self.decimals is not None:
                data["decimals"] = self.decimals
        else:
            data["categories"] = list(self.categories)
            if self.frequencies:
                data["frequencies"] = list(self.frequencies)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Column:
        tuples = {k: tuple(data[k]) for k in ("categories", "weights", "means", "stds", "frequencies") if k in data}
        return cls(**{**dict(data), **tuples})


class Segment(NamedTuple):
    """A run of slots of an encoded row (1.7): which column, what (``value``: a numeric offset in
    ``[-1, 1]``, a ``tanh`` slot; ``mode``, ``category`` or ``missing``: a one-hot block, ``softmax``)."""

    column: str
    role: str
    start: int
    size: int

    @property
    def activation(self) -> str:
        return "tanh" if self.role == "value" else "softmax"

    @property
    def stop(self) -> int:
        return self.start + self.size


@dataclass(frozen=True)
class TableSpec:
    """What a model needs to know about a table (1.7): its columns, their encodings, the label.

    A dataset of this spec delivers each row encoded as float32 ``[width]`` (see :class:`Column`
    and :meth:`segments`) in :attr:`Batch.images`, and the label column's category index in
    :attr:`Batch.labels` when ``label`` is set (the label column is encoded in the row too).
    :meth:`decode` turns rows a generator made back into the table's columns.
    """

    kind: ClassVar[str] = "table"

    columns: tuple[Column, ...]
    label: str | None = None
    """The label column's name (categorical or boolean, never missing), for conditional models."""

    def __post_init__(self) -> None:
        if not self.columns:
            raise ValueError("a TableSpec needs at least one column")
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            raise ValueError(f"column names must be unique, got {names}")
        if self.label is not None:
            if self.label not in names:
                raise ValueError(f"the label column {self.label!r} is not one of the columns {names}")
            if self.column(self.label).type == "numeric":
                raise ValueError(f"the label column {self.label!r} must be categorical or boolean")

    def column(self, name: str) -> Column:
        """The column called ``name``."""
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)

    @property
    def num_classes(self) -> int:
        """The label column's number of categories; 0 without a label."""
        return len(self.column(self.label).categories) if self.label is not None else 0

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.column(self.label).categories if self.label is not None else ()

    @property
    def conditional(self) -> bool:
        return self.num_classes > 0

    def segments(self) -> list[Segment]:
        """The encoded row's slots, column by column, in order."""
        out: list[Segment] = []
        start = 0
        for c in self.columns:
            if c.type == "numeric":
                parts = [("value", 1)] + ([("mode", c.modes)] if c.modes > 1 else [])
            else:
                parts = [("category", len(c.categories))]
            if c.indicator:
                parts.append(("missing", 2))
            for role, size in parts:
                out.append(Segment(c.name, role, start, size))
                start += size
        return out

    @property
    def width(self) -> int:
        """The length of an encoded row."""
        return sum(s.size for s in self.segments())

    @property
    def shape(self) -> tuple[int]:
        """One encoded row's shape, ``(width,)``."""
        return (self.width,)

    def encode(self, values: Mapping[str, np.ndarray], missing: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
        """Rows float32 ``[N, width]``: ``values[name]`` holds a numeric column's numbers (no NaN:
        impute first) or a categorical or boolean column's category indices; ``missing[name]``
        (bool ``[N]``) where it had no value, for each column with an ``indicator``."""
        missing = missing or {}
        n = len(next(iter(values.values())))
        rows = np.zeros((n, self.width), np.float32)
        for s in self.segments():
            c = self.column(s.column)
            if s.role == "missing":
                flags = np.asarray(missing.get(c.name, np.zeros(n, bool)), bool)
                rows[np.arange(n), s.start + flags.astype(np.int64)] = 1.0
                continue
            v = np.asarray(values[c.name])
            if s.role == "category":
                rows[np.arange(n), s.start + v.astype(np.int64)] = 1.0
                continue
            x = v.astype(np.float64)
            k = self._mode_of(c, x)
            means, stds = np.asarray(c.means)[k], np.asarray(c.stds)[k]
            if s.role == "value":
                rows[:, s.start] = np.clip((x - means) / (4.0 * stds), -MODE_CLIP, MODE_CLIP)
            else:
                rows[np.arange(n), s.start + k] = 1.0
        return rows

    @staticmethod
    def _mode_of(c: Column, x: np.ndarray) -> np.ndarray:
        """Each value's most likely mode of the column's mixture."""
        means, stds, weights = (np.asarray(a, np.float64) for a in (c.means, c.stds, c.weights))
        log_p = (np.log(np.maximum(weights, 1e-12)) - np.log(stds)
                 - 0.5 * ((x[:, None] - means[None, :]) / stds) ** 2)
        return np.argmax(log_p, axis=1)

    def decode(self, rows: np.ndarray, rng: np.random.Generator | None = None) -> dict[str, np.ndarray]:
        """The columns of ``rows`` (``[N, width]``, as a generator made them): numeric ones float64,
        categorical and boolean ones object arrays of category strings; a value whose missingness
        indicator says ``missing`` is NaN (numeric) or None (others).

        Each one-hot block (a mode, a category, an indicator) is read by its largest slot, or, with
        ``rng``, drawn with its slots as probabilities (negative ones count as 0): drawing keeps
        rare categories and rare holes at their rate where the largest slot would never pick them."""
        rows = np.asarray(rows, np.float64)
        if rows.ndim != 2 or rows.shape[1] != self.width:
            raise GanctlError(f"encoded rows must have shape [N, {self.width}], got {list(rows.shape)}")
        parts: dict[str, dict[str, np.ndarray]] = {c.name: {} for c in self.columns}
        for s in self.segments():
            block = rows[:, s.start:s.stop]
            parts[s.column][s.role] = block[:, 0] if s.role == "value" else _pick(block, rng)
        out: dict[str, np.ndarray] = {}
        for c in self.columns:
            got = parts[c.name]
            if c.type == "numeric":
                k = got.get("mode", np.zeros(len(rows), np.int64))
                x = np.clip(got["value"], -1.0, 1.0) * 4.0 * np.asarray(c.stds)[k] + np.asarray(c.means)[k]
                x = np.clip(x, c.low, c.high)
                column: np.ndarray = np.round(x) if c.integer else x if c.decimals is None else np.round(x, c.decimals)
                if "missing" in got:
                    column = np.where(got["missing"] == 1, np.nan, column)
            else:
                column = np.asarray(c.categories, dtype=object)[got["category"]]
                if "missing" in got:
                    column = np.where(got["missing"] == 1, None, column)
            out[c.name] = column
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "columns": [c.to_dict() for c in self.columns], "label": self.label,
                "width": self.width, "num_classes": self.num_classes, "class_names": list(self.class_names)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TableSpec:
        return cls(columns=tuple(Column.from_dict(c) for c in data["columns"]), label=data.get("label"))


def _pick(block: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
    """Each row's slot of a one-hot block: the largest, or one drawn by ``rng`` in proportion."""
    if rng is None:
        return np.argmax(block, axis=1)
    weights = np.maximum(block, 0.0)
    total = weights.sum(axis=1, keepdims=True)
    weights = np.where(total > 0, weights / np.where(total > 0, total, 1.0), 1.0 / block.shape[1])
    drawn = (np.cumsum(weights, axis=1) < rng.random((len(block), 1))).sum(axis=1)
    return np.minimum(drawn, block.shape[1] - 1)


class TableDataset(Dataset):
    """A table held in memory as encoded rows (1.7): ``rows`` float32 ``[N, spec.width]`` (see
    :meth:`TableSpec.encode`), with the label column's category indices when ``spec.label`` is set.
    Shuffling, batching and splits behave as for images.

    ``values``, when the plugin gives it, holds the same rows as read, before their holes were
    filled and before encoding: ``{column: array}`` in :meth:`TableSpec.decode`'s format (float64
    with NaN, or category strings with None). A comparison with other table tools trains them on
    these (bench/tables.py)."""

    def __init__(self, rows: np.ndarray, spec: TableSpec, labels: np.ndarray | None = None,
                 values: Mapping[str, np.ndarray] | None = None) -> None:
        rows = np.asarray(rows, np.float32)
        if rows.ndim != 2 or rows.shape[1] != spec.width:
            raise DataError(f"encoded rows must have shape [N, {spec.width}], got {list(rows.shape)}.")
        if rows.shape[0] == 0:
            raise DataError("the table holds no rows.")
        if (labels is None) != (spec.label is None):
            raise DataError("give labels exactly when the spec names a label column.")
        self._rows = rows
        self._labels = None if labels is None else np.asarray(labels, np.int64)
        self.spec = spec
        if values is not None and (set(values) != {c.name for c in spec.columns}
                                   or any(len(v) != rows.shape[0] for v in values.values())):
            raise DataError("values must hold every column of the spec, one value per row.")
        self.values = None if values is None else {c.name: values[c.name] for c in spec.columns}

    def __len__(self) -> int:
        return int(self._rows.shape[0])

    @property
    def labels(self) -> np.ndarray | None:
        return self._labels

    def take(self, indices: np.ndarray) -> Batch:
        return Batch(self._rows[indices], None if self._labels is None else self._labels[indices])

    def condition_counts(self, blocks: Sequence[Segment]) -> np.ndarray:
        """How many rows have each slot of ``blocks`` (one-hot segments of :meth:`TableSpec.segments`)
        set, the blocks' slots laid end to end: int64 ``[sum of their sizes]`` (1.7)."""
        rows = self.take(np.arange(len(self), dtype=np.int64)).images
        return np.concatenate([(rows[:, s.start:s.stop] > 0.5).sum(axis=0) for s in blocks]).astype(np.int64)

    def sampled_batches(self, blocks: Sequence[Segment], batch_size: int, *, seed: int, epoch: int = 0,
                        start: int = 0) -> Iterator[Batch]:
        """One epoch's batches by *training-by-sampling* (CTGAN, Xu et al. 2019), from batch ``start`` (1.7).

        For each row of a batch a condition is drawn: one of ``blocks`` (one-hot segments of the row,
        see :meth:`TableSpec.segments`) uniformly, then one of its slots with probability in proportion to
        ``log(1 + count)``, ``count`` the rows that have it set; the row is drawn uniformly among those rows.
        ``Batch.labels`` holds each row's condition: the index of its slot among the blocks' slots laid
        end to end. Batch ``i`` of an epoch is drawn from ``(seed, epoch, i)`` alone, so the same
        arguments give the same batches, and ``start`` skips batches without drawing them. An epoch has
        :meth:`steps_per_epoch` batches, as with :meth:`Dataset.batches`; rows are drawn with replacement.
        """
        steps = self.steps_per_epoch(batch_size)
        counts = self.condition_counts(blocks)
        sizes = [s.size for s in blocks]
        ends = np.cumsum(sizes)
        weights = np.log1p(counts.astype(np.float64))
        cumulative = []  # per block: the cumulative probabilities of its slots
        for block, end in enumerate(ends):
            w = weights[end - sizes[block]:end]
            if w.sum() <= 0:
                raise DataError(f"column {blocks[block].column!r}: no row has any value of its {blocks[block].role} "
                                "block, so no row can be drawn for it.")
            c = np.cumsum(w) / w.sum()
            c[np.flatnonzero(w)[-1]:] = np.inf  # rounding never reaches a slot past the last one that has rows
            cumulative.append(c)
        rows = self.take(np.arange(len(self), dtype=np.int64)).images
        slots = np.concatenate([np.arange(s.start, s.stop) for s in blocks])
        members = [np.flatnonzero(rows[:, slot] > 0.5) for slot in slots]  # the rows of each condition
        for step in range(start, steps):
            rng = np.random.default_rng([seed, epoch, step, SAMPLING_STREAM])
            block = rng.integers(len(blocks), size=batch_size)
            u = rng.random(batch_size)
            within = np.array([np.searchsorted(cumulative[b], x, side="right") for b, x in zip(block, u, strict=True)],
                              np.int64)
            condition = ends[block] - np.asarray(sizes)[block] + within
            pick = rng.random(batch_size)
            indices = np.array([members[c][int(p * len(members[c]))] for c, p in zip(condition, pick, strict=True)],
                               np.int64)
            yield Batch(self.take(indices).images, condition.astype(np.int64))


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


class Model(ABC):
    """What a model factory builds: ``factory(params, spec)`` returns a Model.

    A model is written once with ``keras.layers`` and ``keras.ops`` and runs unchanged on JAX,
    TensorFlow and PyTorch: it declares its *players* (the networks that are trained, each by
    its own optimizer), the loss of each player, and how many steps each player takes per
    iteration. Gradients, compilation and the update itself are the engine's job.

    Subclass :class:`GenerativeModel` (a model that makes images: GANs, VAEs) or
    :class:`ClassifierModel` (a model that labels them), not this class directly: what ganctl
    does around training (sample grids, validation, what gets exported) follows from which.

    Class attributes:
        players: the player names, in the order they are updated within an iteration.
        kind: ``"generator"`` or ``"classifier"`` (set by the two subclasses).
        data_kinds: the kinds of data it takes (1.7; default images only).

    The constructor builds every network (so all variables exist before training starts) and
    raises :class:`ConfigError` when the data does not suit the model (say, a convolutional
    generator asked for 13x13 images).
    """

    players: ClassVar[tuple[str, ...]] = ()
    kind: ClassVar[str] = ""
    data_kinds: ClassVar[tuple[str, ...]] = ("image",)
    """The kinds of data the model takes (1.7): ``"image"`` (a :class:`DataSpec`), ``"table"`` (a
    :class:`TableSpec`). ganctl refuses a recipe that pairs it with a dataset of another kind."""

    latent_dim: int = 0
    """Size of the latent vector ``z`` the engine draws for each step (0: none needed)."""

    def __init__(self, params: Params, spec: DataSpec | TableSpec) -> None:
        self.params = params
        self.spec = spec

    @property
    def conditional(self) -> bool:
        """Whether the generator takes a ``label`` input (always False for a classifier)."""
        return False

    @abstractmethod
    def networks(self) -> dict[str, Any]:
        """Each player's network: the ``keras.Model`` whose trainable weights it updates."""

    def schedule(self) -> dict[str, int]:
        """Steps per iteration for each player (e.g. ``{"critic": 5, "generator": 1}``)."""
        return {player: 1 for player in self.players}

    def seed_generators(self) -> list[Any]:
        """Every ``keras.random.SeedGenerator`` the losses use outside the networks.

        The engine must know each stateful object: on JAX an unregistered one would be frozen
        into the compiled step and return the same numbers every time.
        """
        return []

    @property
    def training_by_sampling(self) -> tuple[Segment, ...]:
        """The one-hot blocks of a table's row this model trains by sampling over (1.7); empty (the
        default): batches are the dataset's seeded permutation.

        A table model in the CTGAN design returns the blocks it conditions on (its discrete columns'
        :class:`Segment` s). ganctl then draws each epoch's batches with
        :meth:`TableDataset.sampled_batches` over them, and the ``labels`` :meth:`loss` receives are each
        row's condition (its slot's index among the blocks' slots laid end to end), not the label column.
        """
        return ()

    def batch_size_problem(self, batch_size: int) -> str | None:
        """Why this model cannot train on batches of ``batch_size`` examples, with the fix; None when
        it can (1.7). ganctl asks before a run is made, and refuses the recipe with this reason (a
        PacGAN critic that packs ``pac`` examples into one needs a multiple of ``pac``)."""
        return None

    def begin_training(self, steps_per_epoch: int) -> None:  # noqa: B027 - most models need nothing
        """Called once before the first training step of a run, and again when it resumes (1.6).

        ``steps_per_epoch`` is the number of steps in one epoch: a model whose loss follows the
        training's progress in epochs (a KL warm-up over N epochs) converts epochs into updates
        here, and counts updates in its own state (a seed generator's or a non-trainable
        variable's), so that a resumed run continues where it stopped. Not called when a trained
        run is only sampled, evaluated or exported.
        """

    @abstractmethod
    def loss(self, player: str, images: Any, labels: Any, z: Any) -> tuple[Any, dict[str, Any]]:
        """The scalar loss of ``player`` on one batch, and named values to log.

        ``images`` is ``[B, H, W, C]`` in ``[-1, 1]``; ``labels`` is int ``[B]`` or None;
        ``z`` is ``[B, max(latent_dim, 1)]`` drawn from a standard normal by the engine. Write
        it with ``keras.ops`` only; call networks with ``training=True``. The logged values
        must include ``loss``.
        """


class GenerativeModel(Model):
    """A model that makes images (GANs, VAEs): ganctl samples it, and exports its generator."""

    kind: ClassVar[str] = "generator"

    @property
    @abstractmethod
    def generator(self) -> Any:
        """The network that makes images: a ``keras.Model`` taking ``z`` (and ``label``).

        It returns ``[batch, H, W, C]`` images in ``[-1, 1]``; this is what gets exported. A
        model of a table's returns encoded rows ``[batch, spec.width]`` (offsets through ``tanh``,
        each one-hot block a softmax), computed without randomness: ganctl draws each block when
        decoding (1.7). :meth:`generate` must compute what this network computes, which the
        export's parity check compares.
        """

    def generate(self, z: Any, labels: Any = None) -> Any:
        """Images for latents ``z`` (and ``labels``), in inference mode."""
        inputs = [z, labels] if self.conditional else z
        return self.generator(inputs, training=False)

    def held_out_logs(self, images: Any, labels: Any) -> dict[str, Any]:
        """Values that measure the model on held-out images, in inference mode (1.6).

        ``images`` and ``labels`` as in :meth:`Model.loss`; return scalar batch means written
        with ``keras.ops`` (a VAE: ``elbo``, ``reconstruction`` and ``kl``, per example). ganctl
        averages them over the held-out split after each epoch (logged as ``held_out/<key>``)
        and ``ganctl evaluate`` reports them beside the sample metrics. Default: none.
        """
        return {}

    def reconstruct(self, images: Any, labels: Any) -> Any | None:
        """Reconstructions of ``images`` (``[B, H, W, C]`` in ``[-1, 1]``), in inference mode (1.6).

        A model that encodes images (a VAE) returns its reconstructions, and ganctl draws
        held-out images beside them in the run and its report. Default: None (it cannot).
        """
        return None


class ClassifierModel(Model):
    """A model that labels images (API 1.3): one player, ``classifier``, trained on labelled data.

    ganctl validates it on held-out data after each epoch and exports :attr:`extractor`, which
    the ``classifier`` feature extractor then runs through onnxruntime: its class probabilities
    serve class-aware metrics, and its penultimate layer gives the features other metrics
    compare.
    """

    kind: ClassVar[str] = "classifier"
    players: ClassVar[tuple[str, ...]] = ("classifier",)
    trains_default_features: ClassVar[bool] = False
    """Set on the model factory (1.7): ganctl trains this model, with its ``Params``' defaults, on a
    labelled dataset's training split to give the features metrics use when nobody names an
    extractor (the first such model registered: ganctl's own ``classifier``)."""

    @property
    @abstractmethod
    def extractor(self) -> Any:
        """A ``keras.Model`` from ``[batch, H, W, C]`` images in ``[-1, 1]`` to two outputs:
        class probabilities ``[batch, num_classes]`` (rows sum to 1) and features
        ``[batch, D]`` (the penultimate layer). It shares its weights with the trained
        network; this is what gets exported."""

    def classify(self, images: Any) -> tuple[Any, Any]:
        """Probabilities and features of ``images``, in inference mode."""
        probabilities, features = self.extractor(images, training=False)
        return probabilities, features


_INPUT_GRADIENTS: dict[str, Callable[[Callable[[Any], Any], Any], Any]] = {}


def input_gradient(fn: Callable[[Any], Any], x: Any) -> Any:
    """The gradient of ``sum(fn(x))`` with respect to the input ``x``, differentiable itself.

    For penalties on a network's input gradient (WGAN-GP, R1): call it inside a loss. It works
    on every backend; the engine of the active backend computes it (ganctl loads that engine
    before a model's loss can run).
    """
    import keras

    backend = keras.backend.backend()
    if backend not in _INPUT_GRADIENTS:
        raise GanctlError(
            f"input_gradient needs ganctl's {backend} engine, which is loaded with a training session; call it "
            "inside a model's loss (or load the engine first: ganctl.engine.engine_for(backend)).")
    return _INPUT_GRADIENTS[backend](fn, x)


def provide_input_gradient(backend: str, compute: Callable[[Callable[[Any], Any], Any], Any]) -> None:
    """How ``backend`` computes :func:`input_gradient` (1.5). ganctl's engines call this when they
    are loaded; plugins never need to."""
    _INPUT_GRADIENTS[backend] = compute


# --------------------------------------------------------------------------------------------
# Exporters
# --------------------------------------------------------------------------------------------

INPUT_Z = "z"
"""Name of an exported generator's latent input: float32 ``[batch, latent_dim]``."""

INPUT_LABEL = "label"
"""Name of a conditional generator's class input: int64 ``[batch]``."""

OUTPUT_IMAGES = "images"
"""Name of an exported generator's output: float32 ``[batch, H, W, C]`` in the value range."""

OUTPUT_ROWS = "rows"
"""Name of an exported table generator's output: float32 ``[batch, width]``, the encoded rows
:meth:`TableSpec.decode` reads (1.7)."""

INPUT_IMAGES = "images"
"""Name of an exported classifier's input: float32 ``[batch, H, W, C]`` in ``[-1, 1]`` (1.3)."""

OUTPUT_PROBABILITIES = "probabilities"
"""Name of an exported classifier's first output: float32 ``[batch, num_classes]`` (1.3)."""

OUTPUT_FEATURES = "features"
"""Name of an exported classifier's second output: float32 ``[batch, D]`` (1.3)."""

Runner = Callable[[np.ndarray, "np.ndarray | None"], Any]
"""Runs an exported file. A generator's: ``runner(z, labels) -> images`` (labels int64 or
None). A classifier's: ``runner(images, None) -> (probabilities, features)``. All NumPy."""


@dataclass(frozen=True)
class ExportSource:
    """What an exporter receives: a trained generator, ready to call, and what describes it.

    ``generator`` is a ``keras.Model`` on the active backend that has already been called once
    (Keras cannot export a model loaded from disk before that). ``metadata`` holds the
    ``ganctl.*`` keys every export should carry where its format allows (see docs/export.md):
    version, model plugin, latent size, classes, value range, layout, data shape, recipe hash,
    backend and training step, all as strings.

    ``kind`` (1.3) says what is exported: ``"generator"`` (``generator`` maps ``z`` and
    ``label`` to images) or ``"classifier"`` (``generator`` then holds the classifier's
    extractor network, which maps images to ``[probabilities, features]``). Exporters declare
    the kinds they can write in :attr:`Exporter.kinds`.

    For a model of a table (1.7), ``spec`` is its :class:`TableSpec`, ``generator`` maps ``z``
    to encoded rows ``[batch, spec.width]``, and ``metadata`` carries the spec (``ganctl.table``)
    instead of the image keys; only exporters whose :attr:`Exporter.data_kinds` include
    ``"table"`` receive one.
    """

    generator: Any
    spec: DataSpec | TableSpec
    latent_dim: int
    conditional: bool
    backend: str
    metadata: Mapping[str, str]
    kind: str = "generator"

    @property
    def network(self) -> Any:
        """The network to export, whatever its kind (the same object as ``generator``)."""
        return self.generator

    def example_inputs(self, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray | None]:
        """Inputs for ``n`` examples from ``seed``: latents (float32) and, for conditional
        generators, labels (int32); for a classifier, images (float32 in ``[-1, 1]``) and None."""
        from ganctl.sampling import inputs

        if self.kind == "classifier":
            rng = np.random.default_rng(seed)
            return rng.uniform(-1.0, 1.0, (n, *self.spec.shape)).astype(np.float32), None
        return inputs(seed, n, self.latent_dim, self.spec.num_classes if self.conditional else 0)


class Exporter(ABC):
    """What an exporter factory builds: ``factory(params)`` returns an Exporter.

    ganctl calls :meth:`export` with a fresh path, then runs the written file through
    :meth:`load` on fixed latents and compares it with Keras; only an export that matches is
    moved to its destination, so a failed export never replaces a good one.

    Class attributes:
        suffix: what the written path ends with: ``".onnx"`` for a file, ``""`` for a folder.
        kinds: what it can export (1.3): ``"generator"``, and ``"classifier"`` when its
            :meth:`export` and :meth:`load` handle classifiers too (see :class:`ExportSource`).
        default: written by ``ganctl export RUN_DIR`` when neither ``--onnx``/``--format`` nor
            the recipe's ``export:`` names an exporter (1.5); every default exporter is written,
            in registration order (ganctl's own ``onnx`` declares it).
        quantizations: the lossy modes :meth:`quantize` can write (1.7), e.g. ``("fp16",)``;
            empty (the default) for an exporter that writes only what Keras computes. An exporter
            that declares some takes a ``quantize`` parameter naming one of them.
        data_kinds: the kinds of data whose models it exports (1.7; default images only, as
            :attr:`Model.data_kinds`): an exporter of ``"table"`` generators writes the rows
            (:data:`OUTPUT_ROWS`) and carries what decoding them needs (``source.spec``, a
            :class:`TableSpec`, in ``source.metadata``).
    """

    suffix: ClassVar[str] = ""
    kinds: ClassVar[tuple[str, ...]] = ("generator",)
    data_kinds: ClassVar[tuple[str, ...]] = ("image",)
    default: ClassVar[bool] = False
    quantizations: ClassVar[tuple[str, ...]] = ()

    def __init__(self, params: Params) -> None:
        self.params = params

    def unavailable(self, backend: str) -> str | None:
        """Why this format cannot be written from ``backend`` here (a missing package, an
        unsupported backend), with the fix; None when it can. Must be cheap: no exports."""
        return None

    @abstractmethod
    def export(self, source: ExportSource, path: Path) -> None:
        """Write ``source.generator`` to ``path`` (which does not exist yet).

        Raise :class:`ConfigError` for problems the user can fix (an unsupported opset...).
        """

    @abstractmethod
    def load(self, path: Path) -> Runner:
        """A function running the file at ``path``, used to check it against Keras (see
        :data:`Runner` for a generator's and a classifier's)."""

    @property
    def quantization(self) -> str | None:
        """The mode of :attr:`quantizations` this exporter's parameters ask for (their
        ``quantize``), or None for an export that computes what Keras computes (1.7). An
        exporter that declares no quantizations never quantises, whatever its parameters."""
        return getattr(self.params, "quantize", None) if self.quantizations else None

    def quantize(self, source: ExportSource, exported: Path, path: Path) -> None:
        """Write to ``path`` the :attr:`quantization` of ``exported`` (what :meth:`export` wrote
        for ``source``, already checked against Keras) (1.7).

        ganctl then checks the quantised file's quality instead of its parity: its images against
        the float32 generator's, and the change in FID and C2ST. Raise :class:`ConfigError` when
        this model cannot be quantised so (e.g. none of its operations has an int8 form).
        """
        raise ConfigError(f"{type(self).__name__} does not quantise (it declares no quantizations).")


# --------------------------------------------------------------------------------------------
# Evaluation: feature extractors and metrics (API 1.2)
# --------------------------------------------------------------------------------------------


class Features(NamedTuple):
    """What an extractor computes for a set of images.

    ``features`` is float32 ``[N, D]``; ``probabilities`` is float32 ``[N, K]`` (rows sum to 1)
    when the extractor is a classifier of ``K`` classes, else None.
    """

    features: np.ndarray
    probabilities: np.ndarray | None = None


class FeatureExtractor(ABC):
    """What a feature-extractor factory builds: ``factory(params)`` returns a FeatureExtractor.

    Metrics compare real and generated images through an extractor: a network (or none) that
    maps images to features, and optionally to class probabilities. Its identity (name and the
    sha256 of its weights) is part of every metric result, so numbers computed with different
    weights are never mistaken for each other.
    """

    num_classes: int = 0
    """Classes of the probabilities :meth:`extract` returns (0: it returns none)."""

    batch_size: int = 256
    """How many images ganctl passes to :meth:`extract` at once."""

    default: ClassVar[bool] = False
    """Metrics look through it when neither their ``features:`` nor ``--features`` names an
    extractor (1.5). When several declare it, the first registered wins (ganctl's own ``pixels``)."""

    reads_classifier_exports: ClassVar[bool] = False
    """Its ``Params`` take ``model``, a ganctl classifier's ONNX export (or that classifier's run
    directory), and :meth:`extract` returns the classifier's class probabilities (1.5): ``ganctl
    evaluate CLASSIFIER.onnx`` scores the export through the first such extractor (ganctl's own
    ``classifier``)."""

    def __init__(self, params: Params) -> None:
        self.params = params

    def prepare(self, spec: DataSpec) -> None:  # noqa: B027 - most extractors take any image
        """Check that images of ``spec`` can be processed; raise :class:`ConfigError` if not.

        Called once before any :meth:`extract`; load weights here (never download them).
        """

    @abstractmethod
    def identity(self) -> dict[str, str]:
        """What makes its features these features: at least ``name`` and ``sha256`` (of the
        weights, or of a description of the computation when there are none), and how images
        are resized or converted (``input``)."""

    @abstractmethod
    def extract(self, images: np.ndarray) -> Features:
        """Features of one batch: ``images`` float32 ``[B, H, W, C]`` in ``[-1, 1]``."""


class Metric(ABC):
    """What a metric factory builds: ``factory(params)`` returns a Metric.

    A metric compares the features of ``n`` real and ``n`` generated images (``n``, the
    extractor and ``every`` are recipe keys ganctl handles). Class attributes say what it needs:

    Class attributes:
        needs_probabilities: the extractor must be a classifier (``Features.probabilities``).
        needs_labels: the generator must be conditional (the requested labels are passed).
        lower_is_better: the direction of the headline value (for keep-best and comparisons).
        distance: the headline value is a distance from the real data, 0 when the two sets are
            alike (FID, KID), so its ratio to the real-vs-real floor means something (1.4).
        default: computed by ``ganctl evaluate`` when neither ``--metric`` nor the recipe's
            ``metrics:`` names a metric (1.5); every default metric is computed, in registration
            order (ganctl's own first: fid, kid, prdc, c2st). Declare it only for a metric that runs
            on any generator through the default extractor (no ``needs_labels`` or
            ``needs_probabilities``).
        checks_exports: computed, on the float32 generator and on the file, by the quality
            check of quantised exports (1.7); the first registered that declares it (ganctl's
            own: fid, then c2st) is the one ``--max-fid-increase`` limits. Like ``default``, only
            for a metric that runs on any generator through the default extractor.
    """

    needs_probabilities: ClassVar[bool] = False
    needs_labels: ClassVar[bool] = False
    lower_is_better: ClassVar[bool] = True
    distance: ClassVar[bool] = False
    default: ClassVar[bool] = False
    checks_exports: ClassVar[bool] = False
    data_kinds: ClassVar[tuple[str, ...]] = ("image",)
    """What it compares (1.7): images (through features), or tables (a :class:`TableMetric`)."""

    def __init__(self, params: Params) -> None:
        self.params = params

    def params_for(self, n: int) -> Params:
        """The parameters as they apply to ``n`` real and ``n`` generated images, which is what
        the protocol records (1.4): ``self.params``, unless the metric caps one at ``n``."""
        return self.params

    @abstractmethod
    def compute(self, real: Features, fake: Features, *, fake_labels: np.ndarray | None,
                seed: int) -> dict[str, float]:
        """The metric's values; the first key is the headline value (e.g. ``{"fid": 12.3}``)."""


class TableMetric(Metric):
    """A metric that compares a generated table with the real one, column by column (1.7).

    ``ganctl evaluate`` computes it on a run of a table model: ``n`` rows sampled from the model
    and decoded (each one-hot block drawn, as ``ganctl generate`` does) against the real rows of the
    run's data (its held-out split when it trained on ``split: train``), decoded with their
    missing values. When the user names no metric, every installed table metric that can run on
    the run is computed (see :meth:`check`).

    Class attributes:
        needs_training_rows: ``compare`` also gets ``train=``, the rows the model trained on
            (decoded the same way), beside the held-out ``real`` ones: machine-learning efficacy
            trains on them, the distance to the closest record measures from them. ganctl then
            requires a held-out split the model never saw (``split: train``).
    """

    data_kinds: ClassVar[tuple[str, ...]] = ("table",)
    needs_training_rows: ClassVar[bool] = False

    def check(self, spec: TableSpec) -> None:
        """Raise :class:`ConfigError` when the metric cannot compare tables of ``spec`` (too few
        columns of a type, a target column it does not have); called before any row is generated
        and, for a recipe's ``metrics:``, before training. By default every table fits."""

    @abstractmethod
    def compare(self, real: Mapping[str, np.ndarray], fake: Mapping[str, np.ndarray], spec: TableSpec, *,
                seed: int) -> dict[str, float]:
        """The metric's values (the first key is the headline) for two tables as
        :meth:`TableSpec.decode` gives them: numeric columns float64 with NaN where missing,
        others object arrays of category strings with None where missing. A metric with
        ``needs_training_rows`` takes one more keyword, ``train``: the training rows, alike."""

    def compute(self, real: Features, fake: Features, *, fake_labels: np.ndarray | None,
                seed: int) -> dict[str, float]:
        raise GanctlError("a table metric compares tables (TableMetric.compare), not image features.")

