"""The ganctl ONNX contract: what an exported generator looks like, and reading a model against it.

A ganctl export (docs/export.md) takes ``z: float32 [batch, latent_dim]``, plus ``label: int64
[batch]`` for a conditional model, returns ``images: float32 [batch, H, W, C]`` (NHWC), and
carries ``ganctl.*`` metadata (format, latent_dim, num_classes, class_names, value_range,
data_shape, ...). A generator of a table (format 2) returns ``rows: float32 [batch, width]``
instead, and carries its :class:`ganctl.api.TableSpec` (``ganctl.table``), which decodes them.
A foreign model, without that metadata, is run when it has exactly one float input ``[batch, k]``
and one NHWC image output. :func:`read_model` checks a model's signature and metadata against
this contract; :func:`model_path` finds the model a command was given.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ganctl import api
from ganctl.errors import ConfigError
from ganctl.runs.rundir import export_path, is_run_dir

FORMAT = "1"
"""The version of the contract: the ``ganctl.format`` metadata ganctl writes and reads. It names
the oldest contract a reader must know: ``1`` for generators of images and classifiers."""

TABLE_FORMAT = "2"
"""Format 2 adds generators of tables (output ``rows``, metadata ``ganctl.table``, decoded as
:mod:`ganctl.runs.tables` decodes): what such an export is written as, so that a ganctl that
reads only format 1 refuses it by asking for an upgrade."""

FORMATS = (FORMAT, TABLE_FORMAT)
"""The formats this ganctl reads."""

EXPECTED = (
    "ganctl expects a ganctl export (input z: float32 [batch, latent_dim], plus label: int64 [batch] "
    "for conditional models; output images: float32 [batch, H, W, C], NHWC, or for a model of a table "
    "rows: float32 [batch, width]; ganctl.* metadata), or a model with exactly one float input [batch, k] "
    "and one NHWC image output [batch, H, W, C]."
)

FLOATS = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64}
"""onnxruntime's float element types, and the NumPy type of each."""

_TYPE_NAMES = {"float": "float32", "double": "float64"}


@dataclass(frozen=True)
class TensorInfo:
    """One input or output of an ONNX model: its name, element type and shape."""

    name: str
    type: str  # onnxruntime's spelling, e.g. "tensor(float)"
    shape: tuple[int | str | None, ...]

    @property
    def dtype(self) -> str:
        """The element type in NumPy's words (``float32``, ``int64``, ...)."""
        inner = self.type.removeprefix("tensor(").removesuffix(")")
        return _TYPE_NAMES.get(inner, inner)

    def __str__(self) -> str:
        dims = ", ".join("?" if d is None else str(d) for d in self.shape)
        return f"{self.name}: {self.dtype} [{dims}]"


def signature(inputs: Sequence[TensorInfo], outputs: Sequence[TensorInfo]) -> str:
    """A model's inputs and outputs in one line, e.g. ``z: float32 [batch, 8] -> images: float32 [...]``."""
    return f"{', '.join(map(str, inputs)) or '(no inputs)'} -> {', '.join(map(str, outputs)) or '(no outputs)'}"


def model_path(path: str | Path) -> Path:
    """The ONNX file a command was given: ``path`` itself, or a run directory's generator export.

    Raises:
        ConfigError: ``path`` does not exist, or is a folder without an export.
    """
    path = Path(path)
    hint = "ganctl export RUN_DIR --onnx writes RUN_DIR/exports/generator.onnx"
    if path.is_dir():
        export = export_path(path)
        if export.is_file():
            return export
        if is_run_dir(path):
            raise ConfigError(f"{path} is a run directory without an ONNX export ({export} is missing): "
                              f"run `ganctl export {path} --onnx` first.")
        raise ConfigError(f"{path} is a folder, not an ONNX model or a ganctl run directory with an export; "
                          f"give a .onnx file ({hint}).")
    if not path.exists():
        raise ConfigError(f"{path} does not exist; give an ONNX model file or a run directory ({hint}).")
    return path


def json_field(meta: dict[str, str], key: str, path: Path, default: Any = None) -> Any:
    """The JSON value of the ``key`` metadata entry of the model at ``path``.

    A missing entry is ``default``, or, without one, a ConfigError saying the file is damaged; an
    entry that is not JSON is a ConfigError asking for a new export.
    """
    if key not in meta:
        if default is None:
            raise ConfigError(f"{path}: the ganctl metadata lacks {key}; the file is damaged or was edited. "
                              "Export the run again (ganctl export RUN_DIR --onnx).")
        return default
    try:
        return json.loads(meta[key])
    except ValueError:
        raise ConfigError(f"{path}: the metadata {key} is not valid JSON ({meta[key]!r}); export the run again "
                          "(ganctl export RUN_DIR --onnx).") from None


# -- reading a model against the contract ---------------------------------------------------------


@dataclass(frozen=True)
class ModelContract:
    """What ganctl knows of a generator once its signature and metadata are read."""

    latent_dim: int
    num_classes: int  # 0 for an unconditional model
    class_names: list[str]
    value_range: tuple[float, float]
    data_shape: tuple[int, ...] | None  # (H, W, C); None when a foreign model leaves it open
    z: TensorInfo
    label: TensorInfo | None
    output: TensorInfo
    foreign: bool  # True for a model without ganctl metadata
    table: api.TableSpec | None = None
    """A generator of a table: the spec that decodes its rows (``data_shape`` is then ``(width,)``)."""


def read_model(path: Path, metadata: dict[str, str], inputs: Sequence[TensorInfo],
               outputs: Sequence[TensorInfo]) -> ModelContract:
    """Check the model at ``path`` against the contract: ganctl metadata when it has a
    ``ganctl.format`` entry, else the rules for a foreign model.

    Raises:
        ConfigError: a model ganctl cannot run; the message shows its signature and what ganctl expects.
    """
    if "ganctl.format" in metadata:
        return _read_ganctl(path, metadata, inputs, outputs)
    return _read_foreign(path, inputs, outputs)


def _not_runnable(path: Path, problem: str, inputs: Sequence[TensorInfo],
                  outputs: Sequence[TensorInfo]) -> ConfigError:
    return ConfigError(
        f"{path} is not a generator ganctl can run: {problem}.\n"
        f"  its signature: {signature(inputs, outputs)}\n"
        f"  {EXPECTED}"
    )


def _read_foreign(path: Path, inputs: Sequence[TensorInfo], outputs: Sequence[TensorInfo]) -> ModelContract:
    def fail(problem: str) -> ConfigError:
        return _not_runnable(path, problem, inputs, outputs)

    floats = [i for i in inputs if i.type in FLOATS]
    if len(inputs) != 1 or len(floats) != 1:
        raise fail(f"it has no ganctl metadata and {len(inputs)} inputs ({len(floats)} of them float)")
    (z,) = floats
    if len(z.shape) != 2 or not isinstance(z.shape[1], int) or z.shape[1] < 1:
        raise fail(f"it has no ganctl metadata and its input {z.name} is not [batch, k] with a fixed k")
    if len(outputs) != 1:
        raise fail(f"it has {len(outputs)} outputs; ganctl needs one image output")
    out = outputs[0]
    if out.type not in FLOATS or len(out.shape) != 4:
        raise fail(f"its output {out.name} is not a float [batch, H, W, C] image batch")
    channels = out.shape[1:]
    if channels[0] in (1, 3) and isinstance(channels[2], int) and channels[2] not in (1, 3, 4):
        raise fail(f"its output {out.name} looks like NCHW; ganctl needs NHWC (add a Transpose "
                   "with perm [0, 2, 3, 1])")
    data_shape = tuple(channels) if all(isinstance(d, int) for d in channels) else None
    return ModelContract(latent_dim=z.shape[1], num_classes=0, class_names=[], value_range=(-1.0, 1.0),
                         data_shape=data_shape, z=z, label=None, output=out, foreign=True)


def _read_ganctl(path: Path, meta: dict[str, str], inputs: Sequence[TensorInfo],
                 outputs: Sequence[TensorInfo]) -> ModelContract:
    def fail(problem: str) -> ConfigError:
        return _not_runnable(path, problem, inputs, outputs)

    if meta.get("ganctl.kind", "generator") != "generator":
        from ganctl.runs.trained import not_a_generator

        raise not_a_generator(path)
    if meta["ganctl.format"] not in FORMATS:
        raise ConfigError(f"{path} is in ganctl ONNX format {meta['ganctl.format']}, which this ganctl does not "
                          f"read (it reads formats {' and '.join(FORMATS)}); upgrade ganctl (written by ganctl "
                          f"{meta.get('ganctl.version', '?')}).")
    table = read_table(path, meta) if meta["ganctl.format"] == TABLE_FORMAT or "ganctl.table" in meta else None
    layout = meta.get("ganctl.layout", "NHWC")
    if table is None and layout != "NHWC":
        raise ConfigError(f"{path} has images in {layout} layout; ganctl reads NHWC. Export the run again.")
    try:
        latent_dim = int(meta.get("ganctl.latent_dim", ""))
        num_classes = int(meta.get("ganctl.num_classes", "0"))
        class_names = [str(c) for c in json_field(meta, "ganctl.class_names", path, [])]
        low, high = (float(v) for v in json_field(meta, "ganctl.value_range", path, [-1.0, 1.0]))
        value_range = (low, high)
        data_shape = (table.width,) if table else tuple(int(d) for d in json_field(meta, "ganctl.data_shape", path))
    except (TypeError, ValueError):
        fields = ", ".join(f"{k}={v}" for k, v in meta.items() if k.startswith("ganctl.") and k != "ganctl.table")
        raise ConfigError(f"{path}: the ganctl metadata is malformed ({fields}); export the run again "
                          "(ganctl export RUN_DIR --onnx).") from None
    if (latent_dim < 1 or num_classes < 0 or len(data_shape) != (1 if table else 3) or min(data_shape) < 1
            or not low < high or (table is not None and num_classes != table.num_classes and num_classes)):
        raise ConfigError(f"{path}: the ganctl metadata is inconsistent (latent_dim {latent_dim}, "
                          f"num_classes {num_classes}, data_shape {list(data_shape)}, value_range "
                          f"{list(value_range)}); export the run again (ganctl export RUN_DIR --onnx).")
    by_name = {i.name: i for i in inputs}
    z, label = by_name.get(api.INPUT_Z), by_name.get(api.INPUT_LABEL)
    width = z.shape[1] if z is not None and len(z.shape) == 2 else None
    if z is None or z.type not in FLOATS or len(z.shape) != 2 or isinstance(width, int) and width != latent_dim:
        raise fail(f"its metadata says latent_dim {latent_dim}, but it has no input "
                   f"z: float32 [batch, {latent_dim}]")
    wanted = {api.INPUT_Z, api.INPUT_LABEL} if num_classes else {api.INPUT_Z}
    if set(by_name) != wanted or (label is not None and (label.type not in ("tensor(int64)", "tensor(int32)")
                                                         or len(label.shape) != 1)):
        kind = f"conditional ({num_classes} classes)" if num_classes else "unconditional"
        need = "z and label: int64 [batch]" if num_classes else "only z"
        raise fail(f"its metadata says it is {kind}, so it must take {need}")
    by_output = {o.name: o for o in outputs}
    name, what = (api.OUTPUT_ROWS, "rows [batch, width]") if table else (api.OUTPUT_IMAGES, "images [batch, H, W, C]")
    out = by_output.get(name) or (outputs[0] if len(outputs) == 1 else None)
    if out is None or len(out.shape) != len(data_shape) + 1:
        raise fail(f"it has no {what} output")
    if any(isinstance(d, int) and d != want for d, want in zip(out.shape[1:], data_shape, strict=True)):
        raise fail(f"its metadata says the table's rows are {data_shape[0]} wide, but its output is {out}" if table
                   else f"its metadata says the images are {list(data_shape)} (H, W, C), but its output is {out}")
    return ModelContract(latent_dim=latent_dim, num_classes=num_classes, class_names=class_names,
                         value_range=value_range, data_shape=data_shape, z=z, label=label, output=out,
                         foreign=False, table=table)


def read_table(path: Path, meta: dict[str, str]) -> api.TableSpec:
    """The :class:`ganctl.api.TableSpec` in the ``ganctl.table`` metadata of a table's generator.

    Raises:
        ConfigError: the entry is missing, not JSON, or not a table spec (the file is damaged).
    """
    data = json_field(meta, "ganctl.table", path)
    try:
        spec = api.TableSpec.from_dict(data)
        width = data.get("width", spec.width)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise ConfigError(f"{path}: the metadata ganctl.table does not describe a table ({type(exc).__name__}: "
                          f"{exc}); the file is damaged or was edited. Export the run again "
                          "(ganctl export RUN_DIR --onnx).") from None
    if width != spec.width:
        raise ConfigError(f"{path}: the metadata ganctl.table says its rows are {width} wide, but its columns "
                          f"make rows {spec.width} wide; the file is damaged or was edited. Export the run again "
                          "(ganctl export RUN_DIR --onnx).")
    return spec
