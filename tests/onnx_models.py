"""Small ONNX models built with ``onnx.helper``: generators that follow ganctl's export contract,
and foreign ones, for the inference tests. Each builds in milliseconds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 10  # what onnxruntime 1.2x-1.3x all read


def _metadata(latent_dim: int, num_classes: int, shape: tuple[int, int, int], **extra: str) -> dict[str, str]:
    meta = {
        "ganctl.format": "1",
        "ganctl.version": "0.0-test",
        "ganctl.model": "toy",
        "ganctl.latent_dim": str(latent_dim),
        "ganctl.num_classes": str(num_classes),
        "ganctl.class_names": json.dumps([f"class{i}" for i in range(num_classes)]),
        "ganctl.value_range": json.dumps([-1.0, 1.0]),
        "ganctl.layout": "NHWC",
        "ganctl.data_shape": json.dumps(list(shape)),
        "ganctl.recipe_hash": "0" * 16,
        "ganctl.backend": "jax",
        "ganctl.step": "10",
    }
    meta.update(extra)
    return meta


def _save(graph: onnx.GraphProto, path: Path, metadata: dict[str, str] | None) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    if metadata:
        helper.set_model_props(model, metadata)
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def generator(path: Path, *, latent_dim: int = 4, num_classes: int = 0, shape: tuple[int, int, int] = (2, 3, 1),
              metadata: bool | dict[str, str] = True, batch: int | str = "batch", z_name: str = "z",
              seed: int = 0) -> Path:
    """``images = tanh(reshape(z @ W (+ E[label])))``: NHWC images in (-1, 1).

    ``metadata``: True for ganctl's, a dict to override some of it, False for none (foreign).
    ``batch``: a dim_param name (dynamic) or a fixed batch size.
    """
    rng = np.random.default_rng(seed)
    size = int(np.prod(shape))
    inputs = [helper.make_tensor_value_info(z_name, TensorProto.FLOAT, [batch, latent_dim])]
    weights = [numpy_helper.from_array(rng.normal(size=(latent_dim, size)).astype(np.float32), "W"),
               numpy_helper.from_array(np.array([-1, *shape], np.int64), "shape")]
    nodes = [helper.make_node("MatMul", [z_name, "W"], ["h"])]
    hidden = "h"
    if num_classes:
        inputs.append(helper.make_tensor_value_info("label", TensorProto.INT64, [batch]))
        weights.append(numpy_helper.from_array(3 * rng.normal(size=(num_classes, size)).astype(np.float32), "E"))
        nodes += [helper.make_node("Gather", ["E", "label"], ["e"], axis=0),
                  helper.make_node("Add", ["h", "e"], ["he"])]
        hidden = "he"
    nodes += [helper.make_node("Reshape", [hidden, "shape"], ["r"]), helper.make_node("Tanh", ["r"], ["images"])]
    output = helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch, *shape])
    graph = helper.make_graph(nodes, "generator", inputs, [output], weights)
    meta = None
    if metadata:
        meta = _metadata(latent_dim, num_classes, shape, **(metadata if isinstance(metadata, dict) else {}))
    return _save(graph, path, meta)


def two_float_inputs(path: Path) -> Path:
    """A foreign model ganctl cannot drive: two float inputs."""
    inputs = [helper.make_tensor_value_info("a", TensorProto.FLOAT, ["batch", 4]),
              helper.make_tensor_value_info("b", TensorProto.FLOAT, ["batch", 4])]
    shape = numpy_helper.from_array(np.array([-1, 2, 2, 1], np.int64), "shape")
    nodes = [helper.make_node("Add", ["a", "b"], ["s"]), helper.make_node("Reshape", ["s", "shape"], ["out"])]
    output = helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", 2, 2, 1])
    return _save(helper.make_graph(nodes, "two", inputs, [output], [shape]), path, None)


def flat_output(path: Path) -> Path:
    """A foreign model with one float input but a flat [batch, 4] output (not an image batch)."""
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])]
    output = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])
    return _save(helper.make_graph([helper.make_node("Tanh", ["x"], ["y"])], "flat", inputs, [output]), path, None)
