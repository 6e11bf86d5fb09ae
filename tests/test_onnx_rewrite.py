"""The onnx exporter's graph rewrite (plugins/ganctl_export/_rewrite.py): nearest-neighbour up-sampling
chains become Resize, only where that provably computes the same thing."""

from __future__ import annotations

import collections
import os
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from ganctl.cli import app
from ganctl_export import _rewrite
from ganctl_export import onnx as onnx_exporter

H, W, C = 2, 2, 3


def _model(chain: list[onnx.NodeProto], constants: dict[str, np.ndarray], end: str, out_hw: tuple[int, int],
           nchw_before: bool = False) -> onnx.ModelProto:
    """z [batch, 4] -> MatMul -> Reshape to NHWC [batch, 2, 2, 3] (value 'x'; with ``nchw_before``,
    Reshape to NCHW, Transpose to NHWC, ReLU, as after a convolution) -> ``chain`` -> ``end`` ->
    Transpose to NCHW -> Conv 3x3 -> Transpose back -> images [batch, *out_hw, 2]."""
    rng = np.random.default_rng(0)
    weights = {
        "w": rng.standard_normal((4, H * W * C)).astype(np.float32),
        "base": np.array([-1, C, H, W] if nchw_before else [-1, H, W, C], np.int64),
        "k": rng.standard_normal((2, C, 3, 3)).astype(np.float32),
        **constants,
    }
    if nchw_before:
        start = [helper.make_node("MatMul", ["z", "w"], ["flat"]), helper.make_node("Reshape", ["flat", "base"], ["r"]),
                 helper.make_node("Transpose", ["r"], ["t"], perm=[0, 2, 3, 1]), helper.make_node("Relu", ["t"], ["x"])]
    else:
        start = [helper.make_node("MatMul", ["z", "w"], ["flat"]), helper.make_node("Reshape", ["flat", "base"], ["x"])]
    nodes = [*start,
             *chain,
             helper.make_node("Transpose", [end], ["nchw"], perm=[0, 3, 1, 2]),
             helper.make_node("Conv", ["nchw", "k"], ["conv"], pads=[1, 1, 1, 1]),
             helper.make_node("Transpose", ["conv"], ["images"], perm=[0, 2, 3, 1])]
    outputs = [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", *out_hw, 2])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", 4])],
                              outputs, [numpy_helper.from_array(v, k) for k, v in weights.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 10
    onnx.checker.check_model(model)
    return model


def _jax_style(nchw_before: bool = False) -> onnx.ModelProto:
    """jnp.repeat, as jax2onnx writes it: per axis Reshape (target from Shape), Expand, Reshape."""
    chain = [
        helper.make_node("Shape", ["x"], ["x_shape"]),
        helper.make_node("Slice", ["x_shape", "zero", "one"], ["n"]),
        helper.make_node("Concat", ["n", "h_split"], ["h_target"], axis=0),
        helper.make_node("Reshape", ["x", "h_target"], ["h5"]),
        helper.make_node("Expand", ["h5", "h_expand"], ["h5x"]),
        helper.make_node("Reshape", ["h5x", "h_merged"], ["xh"]),
        helper.make_node("Reshape", ["xh", "w_split"], ["w5"]),
        helper.make_node("Expand", ["w5", "w_expand"], ["w5x"]),
        helper.make_node("Reshape", ["w5x", "w_merged"], ["up"]),
    ]
    constants = {
        "zero": np.array([0], np.int64), "one": np.array([1], np.int64),
        "h_split": np.array([H, 1, W, C], np.int64), "h_expand": np.array([1, H, 2, W, C], np.int64),
        "h_merged": np.array([-1, 2 * H, W, C], np.int64),
        "w_split": np.array([-1, 2 * H, W, 1, C], np.int64), "w_expand": np.array([1, 2 * H, W, 2, C], np.int64),
        "w_merged": np.array([-1, 2 * H, 2 * W, C], np.int64),
    }
    return _model(chain, constants, "up", (2 * H, 2 * W), nchw_before)


def _tf_style(nchw_before: bool = False) -> onnx.ModelProto:
    """tf.repeat, as tf2onnx writes it: Unsqueeze, Tile, Reshape."""
    chain = [
        helper.make_node("Unsqueeze", ["x", "axis2"], ["h5"]),
        helper.make_node("Tile", ["h5", "h_tiles"], ["h5x"]),
        helper.make_node("Reshape", ["h5x", "h_merged"], ["xh"]),
        helper.make_node("Unsqueeze", ["xh", "axis3"], ["w5"]),
        helper.make_node("Tile", ["w5", "w_tiles"], ["w5x"]),
        helper.make_node("Reshape", ["w5x", "w_merged"], ["up"]),
    ]
    constants = {
        "axis2": np.array([2], np.int64), "axis3": np.array([3], np.int64),
        "h_tiles": np.array([1, 1, 2, 1, 1], np.int64), "h_merged": np.array([-1, 2 * H, W, C], np.int64),
        "w_tiles": np.array([1, 1, 1, 2, 1], np.int64), "w_merged": np.array([-1, 2 * H, 2 * W, C], np.int64),
    }
    return _model(chain, constants, "up", (2 * H, 2 * W), nchw_before)


def _feeds(batch: int) -> dict[str, np.ndarray]:
    return {"z": np.random.default_rng(batch).standard_normal((batch, 4), dtype=np.float32)}


def _run(model: onnx.ModelProto, batch: int) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, _feeds(batch))


def _ops(model: onnx.ModelProto) -> collections.Counter:
    return collections.Counter(node.op_type for node in model.graph.node)


@pytest.mark.parametrize("nchw_before", [False, True])
@pytest.mark.parametrize("build", [_jax_style, _tf_style])
def test_an_upsampling_chain_becomes_one_resize(build, nchw_before):
    model = build(nchw_before)
    before = [_run(model, b) for b in (1, 5)]
    assert _rewrite.upsampling_to_resize(model, _feeds) == 1
    ops = _ops(model)
    assert ops["Resize"] == 1 and not ops["Expand"] and not ops["Tile"] and not ops["Shape"]
    ops = [n.op_type for n in model.graph.node]
    resize = next(n for n in model.graph.node if n.op_type == "Resize")
    scales = numpy_helper.to_array(next(t for t in model.graph.initializer if t.name == resize.input[2])).tolist()
    if nchw_before:  # the chain's closing transpose first: onnxruntime cancels it with the one before
        assert ops[4:6] == ["Transpose", "Resize"] and scales == [1, 1, 2, 2]
    else:  # up-sampling first: onnxruntime folds the transpose into its conversion in front of the Conv
        assert ops[2:4] == ["Resize", "Transpose"] and scales == [1, 2, 2, 1]
    for batch, expected in zip((1, 5), before, strict=True):
        np.testing.assert_array_equal(_run(model, batch)[0], expected[0])
    assert [o.name for o in model.graph.output] == ["images"] and [i.name for i in model.graph.input] == ["z"]


def test_a_tiling_that_is_not_an_upsampling_is_left_alone():
    """[x; x] along H (Tile on a new leading axis) copies like an up-sampling but is not one."""
    chain = [
        helper.make_node("Unsqueeze", ["x", "axis1"], ["t5"]),
        helper.make_node("Tile", ["t5", "tiles"], ["t5x"]),
        helper.make_node("Reshape", ["t5x", "merged"], ["up"]),
    ]
    constants = {"axis1": np.array([1], np.int64), "tiles": np.array([1, 2, 1, 1, 1], np.int64),
                 "merged": np.array([-1, 2 * H, W, C], np.int64)}
    model = _model(chain, constants, "up", (2 * H, W))
    serialized = model.SerializeToString()
    assert _rewrite.upsampling_to_resize(model, _feeds) == 0
    assert model.SerializeToString() == serialized


def test_a_chain_whose_inside_is_read_elsewhere_keeps_that_value():
    model = _jax_style(nchw_before=True)
    model.graph.output.append(helper.make_tensor_value_info("xh", TensorProto.FLOAT, ["batch", 2 * H, W, C]))  # H only
    before = [_run(model, b) for b in (1, 5)]
    replaced = _rewrite.upsampling_to_resize(model, _feeds)
    assert replaced >= 1 and "xh" in {o for n in model.graph.node for o in n.output}
    for batch, expected in zip((1, 5), before, strict=True):
        for got, want in zip(_run(model, batch), expected, strict=True):
            np.testing.assert_array_equal(got, want)


def test_optimise_keeps_the_converters_graph_when_the_rewrite_fails(monkeypatch):
    from ganctl.api import DataSpec, ExportSource

    model = _jax_style()
    serialized = model.SerializeToString()
    source = ExportSource(generator=None, spec=DataSpec(2 * H, 2 * W, 2), latent_dim=4, conditional=False,
                          backend="jax", metadata={})

    def broken(model, feeds):
        del model.graph.node[:3]  # half done, then fails
        raise RuntimeError("boom")

    monkeypatch.setattr(onnx_exporter, "upsampling_to_resize", broken)
    assert onnx_exporter.optimise(model, source) is False
    assert model.SerializeToString() == serialized

    monkeypatch.setattr(onnx_exporter, "upsampling_to_resize", _rewrite.upsampling_to_resize)
    assert onnx_exporter.optimise(model, source) is True and _ops(model)["Resize"] == 1


@pytest.mark.backends
def test_a_dcgan_export_has_resize_and_no_copy_chains(runner, write, tmp_path: Path):
    recipe = write("r.yaml", "name: r\nseed: 1\ndata: {plugin: digits, limit: 128}\n"
                             "model: {plugin: dcgan, latent_dim: 8, filters: 8, conditional: true}\n"
                             "train: {epochs: 1, batch_size: 32, steps_per_epoch: 1}\nexport: [onnx]\n")
    result = runner.invoke(app, ["train", str(recipe), "--out", str(tmp_path / "run"), "-q"])
    assert result.exit_code == 0, result.output
    model = onnx.load(str(tmp_path / "run" / "exports" / "generator.onnx"))
    ops = _ops(model)
    assert ops["Resize"] == 2 and not ops["Expand"] and not ops["Tile"], (os.environ.get("KERAS_BACKEND"), ops)
    assert [i.name for i in model.graph.input] == ["z", "label"] and [o.name for o in model.graph.output] == ["images"]


def _conv_model(out_channels: int, in_channels: int = 8) -> onnx.ModelProto:
    """x [batch, C, 4, 4] -> Conv 3x3 (+ bias) -> Sub a constant -> Tanh -> y."""
    rng = np.random.default_rng(1)
    weights = {"k": rng.standard_normal((out_channels, in_channels, 3, 3)).astype(np.float32),
               "b": rng.standard_normal(out_channels).astype(np.float32),
               "mean": rng.standard_normal((1, out_channels, 1, 1)).astype(np.float32)}
    nodes = [helper.make_node("Conv", ["x", "k", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Sub", ["c", "mean"], ["s"]), helper.make_node("Tanh", ["s"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", in_channels, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", out_channels, 4, 4])],
                              [numpy_helper.from_array(v, k) for k, v in weights.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 10
    return model


def _conv_feeds(batch: int, channels: int = 8) -> dict[str, np.ndarray]:
    return {"x": np.random.default_rng(batch).standard_normal((batch, channels, 4, 4), dtype=np.float32)}


def _conv_run(model: onnx.ModelProto, feed: dict[str, np.ndarray]) -> np.ndarray:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feed)[0]


def test_a_one_channel_conv_becomes_depthwise_and_a_sum():
    model = _conv_model(1)
    before = _conv_run(model, _conv_feeds(3))
    assert _rewrite.single_channel_convs_to_depthwise(model, _conv_feeds) == 1
    conv = next(n for n in model.graph.node if n.op_type == "Conv")
    assert helper.get_attribute_value(next(a for a in conv.attribute if a.name == "group")) == 8
    assert [n.op_type for n in model.graph.node] == ["Conv", "ReduceSum", "Add", "Sub", "Tanh"]
    np.testing.assert_allclose(_conv_run(model, _conv_feeds(3)), before, atol=1e-5)


@pytest.mark.parametrize("out_channels, in_channels", [(2, 8), (1, 4)])
def test_other_convs_are_left_alone(out_channels, in_channels):
    model = _conv_model(out_channels, in_channels)
    serialized = model.SerializeToString()
    assert _rewrite.single_channel_convs_to_depthwise(model, lambda b: _conv_feeds(b, in_channels)) == 0
    assert model.SerializeToString() == serialized


def test_subtracting_a_constant_becomes_adding_its_negation():
    model = _conv_model(2)
    before = _conv_run(model, _conv_feeds(3))
    assert _rewrite.constant_subtractions_to_additions(model) == 1
    assert [n.op_type for n in model.graph.node] == ["Conv", "Neg", "Add", "Tanh"]
    # onnxruntime now folds the Add into the convolution's bias: rounding may differ, nothing else
    np.testing.assert_allclose(_conv_run(model, _conv_feeds(3)), before, atol=1e-6)
