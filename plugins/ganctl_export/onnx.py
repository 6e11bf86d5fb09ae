"""The ``onnx`` exporter: Keras's own ONNX export, normalised to ganctl's contract.

Keras writes ONNX differently per backend (jax2onnx on JAX, tf2onnx on TensorFlow, the
TorchScript exporter on PyTorch): output names differ, labels are int32, weights over 1 MB
may go to a side file. This exporter rewrites the result into one contract (docs/export.md):

* inputs ``z`` float32 ``[batch, latent]`` and, when conditional, ``label`` int64 ``[batch]``
  (cast inside the graph to what the generator takes);
* output ``images`` float32 ``[batch, H, W, C]``; ``batch`` is a dynamic axis everywhere;
* ``ganctl.*`` metadata properties; one self-contained file, checked with
  ``onnx.checker.check_model(full_check=True)``.

A generator of a table (API 1.7) gets the same treatment with the output ``rows`` float32
``[batch, width]`` (the encoded rows; its ``TableSpec`` is in the metadata, ``ganctl.table``).

A classifier (``ganctl.kind`` ``classifier``) gets the same treatment with its own names: input
``images`` float32 ``[batch, H, W, C]``, outputs ``probabilities`` ``[batch, classes]`` and
``features`` ``[batch, D]``.

The graph is then rewritten for speed where that changes nothing but rounding (:func:`optimise`,
``_rewrite``): nearest-neighbour up-sampling chains become ``Resize``, which lets onnxruntime run
the convolutions in its blocked NCHW layout instead of transposing around each one, and a
convolution to one channel becomes a depthwise one plus a sum over channels.
"""

from __future__ import annotations

import importlib.util
import tempfile
from collections.abc import Collection
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ganctl import api

from ._quiet import quiet_conversion
from ._rewrite import (
    constant_subtractions_to_additions,
    single_channel_convs_to_depthwise,
    upsampling_to_resize,
)
from .quantize import MODES, quantize

REWRITES = ("upsampling_to_resize", "single_channel_convs_to_depthwise", "constant_subtractions_to_additions")
"""The graph rewrites :func:`optimise` applies, in this order (functions of ``_rewrite``)."""

MAX_BYTES = 2**31 - 2**20  # protobuf's 2 GB limit on one message, with room for the graph
CONVERTER = {"jax": "jax2onnx", "tensorflow": "tf2onnx", "torch": None}
CONVERTER_INSTALL = {
    # jax2onnx requires the CPU-only onnxruntime package, which overwrites onnxruntime-gpu:
    # its other dependencies come with ganctl, so it is installed without them.
    "jax2onnx": "pip install --no-deps 'jax2onnx==0.17.1'",
    "tf2onnx": "pip install 'ganctl[tensorflow]'",
}


class OnnxExporter(api.Exporter):
    """ONNX for onnxruntime: one file, stable names, parity-checked against Keras."""

    suffix = ".onnx"
    kinds = ("generator", "classifier")
    data_kinds = ("image", "table")
    default = True  # written by ganctl export RUN_DIR when the recipe has no export:
    rewrites: tuple[str, ...] = REWRITES
    """The graph rewrites :meth:`export` applies (see :func:`optimise`); bench/inference.py leaves
    some out to measure what they gain."""

    quantizations = MODES

    class Params(api.Params):
        opset: int | None = api.Field(
            None, ge=13, le=23,
            description="ONNX opset to target (default: the converter's own choice).",
        )
        quantize: Literal["fp16", "int8-dynamic", "int8-static"] | None = api.Field(
            None, exclude_if=lambda value: value is None,  # unquantised exports keep their resolved recipe
            description="Write a quantised generator (docs/export.md#quantised-exports): fp16 (float16 weights "
                        "and compute), int8-dynamic or int8-static; inputs and outputs stay float32.",
        )

    def unavailable(self, backend: str) -> str | None:
        missing = [m for m in ("onnx", "onnxruntime", CONVERTER.get(backend)) if m and importlib.util.find_spec(m) is None]
        if not missing:
            return None
        fixes = [CONVERTER_INSTALL.get(m, "pip install ganctl") for m in missing]
        return f"needs {', '.join(missing)} on the {backend} backend; install with: {'; '.join(dict.fromkeys(fixes))}"

    def export(self, source: api.ExportSource, path: Path) -> None:
        import onnx

        with tempfile.TemporaryDirectory(prefix=".onnx-", dir=path.parent) as scratch:
            raw = Path(scratch) / "keras.onnx"
            with quiet_conversion("ONNX export"):
                source.generator.export(
                    str(raw), format="onnx", verbose=False, opset_version=self.params.opset,
                    input_signature=_signature(source),
                )
            model = onnx.load(str(raw))  # pulls any side .data file in: the result is self-contained
        normalise(model, source)
        optimise(model, source, rewrites=self.rewrites)
        size = model.ByteSize()
        if size > MAX_BYTES:
            raise api.ConfigError(
                f"the generator is {size / 2**30:.1f} GB, over ONNX's 2 GB limit for one file; "
                "a smaller generator (fewer filters) fits."
            )
        onnx.save_model(model, str(path))
        try:
            onnx.checker.check_model(str(path), full_check=True)
        except onnx.checker.ValidationError as exc:
            raise api.GanctlError(f"the ONNX model written from Keras does not pass onnx.checker: {exc}") from None

    def quantize(self, source: api.ExportSource, exported: Path, path: Path) -> None:
        if self.quantization is None:
            raise api.ConfigError("this onnx exporter has no quantize: set; nothing to quantise.")
        quantize(source, exported, path, self.quantization)

    def load(self, path: Path) -> api.Runner:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        names = {i.name for i in session.get_inputs()}
        output = api.OUTPUT_ROWS if api.OUTPUT_ROWS in {o.name for o in session.get_outputs()} else api.OUTPUT_IMAGES

        def run(z: np.ndarray, labels: np.ndarray | None) -> np.ndarray:
            feed = {api.INPUT_Z: z.astype(np.float32)}
            if api.INPUT_LABEL in names:
                feed[api.INPUT_LABEL] = np.asarray(labels).astype(np.int64)
            return session.run([output], feed)[0]

        def classify(images: np.ndarray, _: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
            probabilities, features = session.run([api.OUTPUT_PROBABILITIES, api.OUTPUT_FEATURES],
                                                  {api.INPUT_IMAGES: images.astype(np.float32)})
            return probabilities, features

        return classify if api.INPUT_IMAGES in names and api.INPUT_Z not in names else run


def _signature(source: api.ExportSource) -> list[Any]:
    """Input specs with a free batch axis (PyTorch's exporter fixes it to 1 otherwise)."""
    import keras

    if source.kind == "classifier":
        return [keras.InputSpec(shape=(None, *source.spec.shape), dtype="float32", name=api.INPUT_IMAGES)]
    specs = [keras.InputSpec(shape=(None, source.latent_dim), dtype="float32", name=api.INPUT_Z)]
    if source.conditional:
        label_dtype = source.generator.inputs[1].dtype
        specs.append(keras.InputSpec(shape=(None,), dtype=label_dtype, name=api.INPUT_LABEL))
        return [specs]
    return specs


# -- normalising the graph ----------------------------------------------------------------------


def normalise(model: Any, source: api.ExportSource) -> None:
    """Rewrite ``model`` (an ``onnx.ModelProto``) in place to ganctl's contract."""
    graph = model.graph
    if source.kind == "classifier":
        _normalise_classifier(graph, source)
    else:
        _normalise_generator(graph, source)
    del model.metadata_props[:]
    for key, value in source.metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    model.doc_string = f"{source.kind.capitalize()} exported by ganctl; contract: docs/export.md"


def _graph_inputs(graph: Any) -> list[Any]:
    initialisers = {t.name for t in graph.initializer}
    return [i for i in graph.input if i.name not in initialisers]


def _check_float(value: Any, what: str) -> None:
    import onnx

    if value.type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
        raise api.GanctlError(f"the exported {what} {value.name} is not float32.")


def _normalise_classifier(graph: Any, source: api.ExportSource) -> None:
    """One float input (the images) and two outputs: the probabilities, then the features."""
    inputs = _graph_inputs(graph)
    if len(inputs) != 1 or len(graph.output) != 2:
        raise api.GanctlError(
            f"the converter wrote a classifier with inputs {[i.name for i in inputs]} and outputs "
            f"{[o.name for o in graph.output]}; expected one input and two outputs."
        )
    _check_float(inputs[0], "image input")
    _rename(graph, inputs[0].name, api.INPUT_IMAGES)
    outputs = list(graph.output)
    for output in outputs:
        _check_float(output, "output")
    width = [_last_dim(o) for o in outputs]
    classes = source.spec.num_classes
    if width[1] == classes and width[0] != classes:
        outputs.reverse()  # the converter listed the features first
    names = [o.name for o in outputs]
    features_dim = _last_dim(outputs[1])
    _rename(graph, names[0], api.OUTPUT_PROBABILITIES)
    _rename(graph, names[1], api.OUTPUT_FEATURES)
    _set_shape(graph.input, api.INPUT_IMAGES, ["batch", *source.spec.shape])
    _set_shape(graph.output, api.OUTPUT_PROBABILITIES, ["batch", classes])
    _set_shape(graph.output, api.OUTPUT_FEATURES, ["batch", features_dim] if features_dim else ["batch", "features"])
    order = {api.OUTPUT_PROBABILITIES: 0, api.OUTPUT_FEATURES: 1}
    ordered = sorted(graph.output, key=lambda o: order[o.name])
    copies = [type(o)() for o in ordered]
    for copy, original in zip(copies, ordered, strict=True):
        copy.CopyFrom(original)
    del graph.output[:]
    graph.output.extend(copies)


def _last_dim(value: Any) -> int:
    dims = value.type.tensor_type.shape.dim
    return int(dims[-1].dim_value) if dims and dims[-1].HasField("dim_value") else 0


def _normalise_generator(graph: Any, source: api.ExportSource) -> None:
    """A latent input (and a label input) and one output, the images (a table's generator: its rows)."""
    inputs = _graph_inputs(graph)
    expected = 2 if source.conditional else 1
    if len(inputs) != expected or len(graph.output) != 1:
        raise api.GanctlError(
            f"the converter wrote a graph with inputs {[i.name for i in inputs]} and outputs "
            f"{[o.name for o in graph.output]}; expected {expected} input(s) and one output."
        )
    z_input, label_input = _pick_inputs(inputs, source.conditional)
    _check_float(z_input, "latent input")
    _rename(graph, z_input.name, api.INPUT_Z)
    if label_input is not None:
        _label_as_int64(graph, label_input)
    output = graph.output[0]
    _check_float(output, "output")
    name = api.OUTPUT_ROWS if source.spec.kind == "table" else api.OUTPUT_IMAGES
    _rename(graph, output.name, name)

    _set_shape(graph.input, api.INPUT_Z, ["batch", source.latent_dim])
    _set_shape(graph.input, api.INPUT_LABEL, ["batch"])
    _set_shape(graph.output, name, ["batch", *source.spec.shape])


def optimise(model: Any, source: api.ExportSource, atol: float = 1e-5,
             rewrites: Collection[str] = REWRITES) -> bool:
    """Rewrite ``model`` in place for onnxruntime's speed (see ``_rewrite``) with those of
    :data:`REWRITES` named in ``rewrites``; True when it changed.

    Best effort: the rewritten graph must compute what the converter's graph computes (within
    ``atol``, on random latents at two batch sizes), or the converter's graph is kept.
    """
    import onnx

    if model.ByteSize() > MAX_BYTES:
        return False
    rng = np.random.default_rng(0)

    def feeds(batch: int) -> dict[str, np.ndarray]:
        if source.kind == "classifier":
            return {api.INPUT_IMAGES: rng.uniform(-1, 1, (batch, *source.spec.shape)).astype(np.float32)}
        feed = {api.INPUT_Z: rng.standard_normal((batch, source.latent_dim), dtype=np.float32)}
        if source.conditional:
            feed[api.INPUT_LABEL] = np.arange(batch, dtype=np.int64) % max(1, source.spec.num_classes)
        return feed

    original = onnx.ModelProto()
    original.CopyFrom(model)
    try:
        run = {"upsampling_to_resize": lambda: upsampling_to_resize(model, feeds),
               "single_channel_convs_to_depthwise": lambda: single_channel_convs_to_depthwise(model, feeds),
               "constant_subtractions_to_additions": lambda: constant_subtractions_to_additions(model)}
        changes = sum(run[name]() for name in REWRITES if name in rewrites)
        if not changes:
            return False
        checks = [feeds(batch) for batch in (1, 7)]
        before, after = (_outputs(m, checks) for m in (original, model))
        if all(a.shape == b.shape and float(np.max(np.abs(a - b))) <= atol
               for x, y in zip(before, after, strict=True) for a, b in zip(x, y, strict=True)):
            return True
    except Exception:  # an optimisation that fails leaves the converter's graph
        pass
    model.CopyFrom(original)
    return False


def _outputs(model: Any, feeds: list[dict[str, np.ndarray]]) -> list[list[np.ndarray]]:
    """Every output of ``model`` for each feed."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return [[np.asarray(o) for o in session.run(None, feed)] for feed in feeds]


def _pick_inputs(inputs: list[Any], conditional: bool) -> tuple[Any, Any]:
    """The latent and label inputs: by name when the converter kept the names, else by type."""
    import onnx

    by_name = {i.name: i for i in inputs}
    if api.INPUT_Z in by_name and (not conditional or api.INPUT_LABEL in by_name):
        return by_name[api.INPUT_Z], by_name.get(api.INPUT_LABEL)
    if not conditional:
        return inputs[0], None
    floats = [i for i in inputs if i.type.tensor_type.elem_type == onnx.TensorProto.FLOAT]
    others = [i for i in inputs if i not in floats]
    if len(floats) != 1 or len(others) != 1:
        return inputs[0], inputs[1]  # the order of the Keras model's inputs: [z, label]
    return floats[0], others[0]


def _label_as_int64(graph: Any, label: Any) -> None:
    """Make ``label`` an int64 input, cast in the graph to the type the generator was built with."""
    import onnx

    elem = label.type.tensor_type.elem_type
    if elem == onnx.TensorProto.INT64:
        _rename(graph, label.name, api.INPUT_LABEL)
        return
    inner = _fresh(graph, "label_cast")
    _rename(graph, label.name, inner)  # consumers now read the cast's output
    label.name = api.INPUT_LABEL
    label.type.tensor_type.elem_type = onnx.TensorProto.INT64
    graph.node.insert(0, onnx.helper.make_node("Cast", [api.INPUT_LABEL], [inner], to=elem, name="ganctl_label_cast"))


def _values(graph: Any) -> set[str]:
    names = {i.name for i in graph.input} | {o.name for o in graph.output} | {t.name for t in graph.initializer}
    for node in graph.node:
        names.update(node.input)
        names.update(node.output)
    return names


def _fresh(graph: Any, stem: str) -> str:
    taken = _values(graph)
    name, n = stem, 0
    while name in taken:
        n += 1
        name = f"{stem}_{n}"
    return name


def _rename(graph: Any, old: str, new: str) -> None:
    """Rename the value ``old`` to ``new`` everywhere, moving any other value called ``new`` aside."""
    if old == new:
        return
    if new in _values(graph):
        _rename(graph, new, _fresh(graph, f"{new}_inner"))
    for node in graph.node:
        node.input[:] = [new if n == old else n for n in node.input]
        node.output[:] = [new if n == old else n for n in node.output]
        for attribute in node.attribute:  # control flow: subgraphs may read outer values
            for sub in [attribute.g, *attribute.graphs]:
                if sub.node:
                    _rename(sub, old, new)
    for collection in (graph.input, graph.output, graph.value_info, graph.initializer):
        for item in collection:
            if item.name == old:
                item.name = new


def _set_shape(collection: Any, name: str, dims: list[int | str]) -> None:
    for item in collection:
        if item.name != name:
            continue
        shape = item.type.tensor_type.shape
        del shape.dim[:]
        for value in dims:
            dim = shape.dim.add()
            if isinstance(value, str):
                dim.dim_param = value
            else:
                dim.dim_value = int(value)
