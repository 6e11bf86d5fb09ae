"""Quantising a float32 ONNX export: float16, or int8 through onnxruntime's quantisation tools.

* ``fp16``: weights and computation in float16, inputs and outputs kept float32
  (``onnxruntime.transformers.float16``, the converter of onnxconverter-common that onnxruntime
  ships, with ``keep_io_types``); ``Resize`` stays float32, since onnxruntime's CPU provider has
  no float16 kernel for it.
* ``int8-dynamic``: int8 weights, activations quantised on the fly per call (``quantize_dynamic``:
  ``ConvInteger``, ``MatMulInteger``).
* ``int8-static``: int8 weights and activations, the activations' ranges calibrated once
  (``quantize_static``, QDQ format) on latents and labels drawn as ``ganctl generate`` draws them
  from a fixed seed.

The result keeps the float32 file's inputs, outputs and metadata, adds ``ganctl.quantization``,
and must contain at least one quantised operation: a graph onnxruntime leaves unchanged is refused.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ganctl import api

from ._quiet import captured_fds

MODES = ("fp16", "int8-dynamic", "int8-static")
METADATA_KEY = "ganctl.quantization"
CALIBRATION_SEED = 20_260_101
CALIBRATION_N = 512
CALIBRATION_BATCH = 64
FP32_OPS = ("Resize",)
"""Kept in float32 by fp16: onnxruntime's CPU provider runs them only in float32."""
QUANTISED_OPS = {
    "int8-dynamic": ("ConvInteger", "MatMulInteger", "DynamicQuantizeMatMul", "QLinearConv", "QLinearMatMul"),
    "int8-static": ("QuantizeLinear",),
}
"""Operations whose presence shows that int8 quantisation took hold."""


def quantize(source: api.ExportSource, exported: Path, path: Path, mode: str) -> None:
    """Write the ``mode`` quantisation of the float32 ONNX file ``exported`` to ``path``."""
    import onnx

    if mode not in MODES:
        raise api.ConfigError(f"unknown quantisation {mode!r}; choose one of {', '.join(MODES)}.")
    if source.kind != "generator":
        raise api.ConfigError(f"a {source.kind} is not quantised: ganctl measures what quantisation costs in image "
                              "quality, which only a generator has. Export it without --quantize.")
    float_model = onnx.load(str(exported))
    with tempfile.TemporaryDirectory(prefix=".quantize-", dir=path.parent) as scratch:
        staged = Path(scratch) / "quantized.onnx"
        with _quiet():
            if mode == "fp16":
                _fp16(float_model, staged)
            elif mode == "int8-dynamic":
                _int8_dynamic(exported, staged)
            else:
                _int8_static(exported, staged, source)
        model = onnx.load(str(staged))
    if mode in QUANTISED_OPS:
        ops = Counter(node.op_type for node in model.graph.node)
        if not any(ops[op] for op in QUANTISED_OPS[mode]):
            present = ", ".join(sorted(Counter(n.op_type for n in float_model.graph.node)))
            raise api.ConfigError(
                f"{mode} quantises none of this generator's operations ({present}): onnxruntime quantises "
                "convolutions and matrix products to int8, and this graph has none it can convert. Use --quantize fp16, "
                "or export it in float32."
            )
    del model.metadata_props[:]
    for entry in float_model.metadata_props:
        model.metadata_props.add().CopyFrom(entry)
    added = model.metadata_props.add()
    added.key, added.value = METADATA_KEY, mode
    model.doc_string = float_model.doc_string
    onnx.save_model(model, str(path))
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except onnx.checker.ValidationError as exc:
        raise api.GanctlError(f"the {mode} ONNX model does not pass onnx.checker: {exc}") from None


def _fp16(model: Any, path: Path) -> None:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16
    from onnxruntime.transformers.onnx_model import OnnxModel

    converted = convert_float_to_float16(model, keep_io_types=True, op_block_list=list(FP32_OPS))
    graph = OnnxModel(converted)
    graph.topological_sort()  # the converter appends the casts it inserts at the end of the graph
    onnx.save_model(graph.model, str(path))


def _int8_dynamic(exported: Path, path: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(exported), str(path), weight_type=QuantType.QInt8)


def _int8_static(exported: Path, path: Path, source: api.ExportSource) -> None:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Calibration(CalibrationDataReader):
        """The latents (and labels) ``ganctl generate --seed CALIBRATION_SEED`` would draw, in batches."""

        def __init__(self) -> None:
            z, labels = source.example_inputs(CALIBRATION_N, seed=CALIBRATION_SEED)
            self.feeds = iter([_feed(z[i : i + CALIBRATION_BATCH],
                                     None if labels is None else labels[i : i + CALIBRATION_BATCH])
                               for i in range(0, CALIBRATION_N, CALIBRATION_BATCH)])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.feeds, None)

    quantize_static(str(exported), str(path), Calibration(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)


def _feed(z: np.ndarray, labels: np.ndarray | None) -> dict[str, np.ndarray]:
    feed = {api.INPUT_Z: z.astype(np.float32)}
    if labels is not None:
        feed[api.INPUT_LABEL] = labels.astype(np.int64)
    return feed


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """onnxruntime's quantisation tools log advice (pre-processing) on the root logger and print
    kernel warnings from C++; both are noise here."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with captured_fds():
            yield
    finally:
        root.setLevel(level)
