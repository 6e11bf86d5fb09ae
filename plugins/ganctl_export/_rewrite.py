"""Rewriting exported ONNX graphs so that onnxruntime runs them faster, without changing what they compute.

Keras's converters write nearest-neighbour up-sampling (``UpSampling2D``, ``ops.repeat``) as a
chain of data-movement operators: Reshape / Unsqueeze, then Expand or Tile, then Reshape, once
per axis, with the shape arithmetic (Shape, Gather, Concat, ...) to go with them, in NHWC, and
a Transpose to NCHW in front of every Conv. onnxruntime cannot see through such a chain: the
Transposes around the convolutions stay, the batch-norm arithmetic after a convolution is not
fused into it, and each up-sampling copies the activations several times. Replaced by one
``Resize`` (mode nearest), preceded by the Transpose that ended the chain, onnxruntime's own
optimisers move the Transposes out of the way, fuse batch norm and ReLU into the convolutions,
and run the whole convolution stack in its blocked NCHWc layout (``Resize`` included).

A convolution with one output channel (a DCGAN's last layer, for grey images) is the other
slow spot: onnxruntime's blocked layout computes output channels 8 (or 16) at a time, so it
does 8x the work, then transposes back. :func:`single_channel_convs_to_depthwise` writes it as
a depthwise convolution (one filter per input channel) and a ReduceSum over the channels, which
computes the same sum in a different order.

A chain is never recognised by the names or the exact sequence of its operators (each
converter writes it differently): :func:`upsampling_to_resize` runs the graph once, with every
intermediate value as an output, at two batch sizes, and replaces a chain of data-movement
operators from a 4-D value X to a 4-D value Y only when Y *is*, element for element at both batch
sizes, ``transpose(repeat(X, factors), perm)``. The caller checks the rewritten model against the
original, and keeps the original when anything differs.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import numpy as np

MOVES = frozenset({"Reshape", "Unsqueeze", "Squeeze", "Expand", "Tile", "Transpose", "Identity", "Flatten", "Cast"})
"""Operators that only move, copy or re-type values (a Cast that changes values fails the check)."""

COPIES = frozenset({"Expand", "Tile"})
PROBE_BATCHES = (1, 3)


def values_at(model: Any, feeds: Callable[[int], dict[str, np.ndarray]]) -> dict[int, dict[str, np.ndarray]]:
    """Every value the graph computes (node outputs and inputs), at each of :data:`PROBE_BATCHES`.

    Run with onnxruntime, its graph optimisations off, so that each value is the graph's own.
    """
    import onnx
    import onnxruntime as ort

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    listed = {o.name for o in probe.graph.output}
    for node in probe.graph.node:
        for name in node.output:
            if name and name not in listed:
                probe.graph.output.append(onnx.ValueInfoProto(name=name))
                listed.add(name)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    session = ort.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    found = {}
    for batch in PROBE_BATCHES:
        feed = feeds(batch)
        found[batch] = {**feed, **dict(zip(names, (np.asarray(v) for v in session.run(names, feed)), strict=True))}
    return found


def _as_repeat(x: dict[int, np.ndarray], y: dict[int, np.ndarray]) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """``(perm, factors)`` such that ``y == transpose(repeat(x, factors), perm)`` at every probed batch size."""
    found = None
    for batch in PROBE_BATCHES:
        xb, yb = x[batch], y[batch]
        match = None
        for rest in itertools.permutations((1, 2, 3)):
            perm = (0, *rest)
            back = yb.transpose(np.argsort(perm))
            if any(b % a for a, b in zip(xb.shape, back.shape, strict=True)):
                continue
            factors = tuple(b // a for a, b in zip(xb.shape, back.shape, strict=True))
            if factors[0] != 1:
                continue
            repeated = xb
            for axis, factor in enumerate(factors):
                if factor > 1:
                    repeated = np.repeat(repeated, factor, axis=axis)
            if np.array_equal(repeated, back):
                match = (perm, factors)
                break
        if match is None or (found is not None and match != found):
            return None
        found = match
    return found


def upsampling_to_resize(model: Any, feeds: Callable[[int], dict[str, np.ndarray]]) -> int:
    """Replace, in place, each data-movement chain that computes a nearest-neighbour up-sampling
    (optionally followed by a transpose) by ``Transpose`` + ``Resize``. Returns how many were replaced."""
    import onnx
    from onnx import helper, numpy_helper

    graph = model.graph
    values = values_at(model, feeds)
    first, second = PROBE_BATCHES

    def batched_4d(name: str) -> bool:
        a, b = values[first].get(name), values[second].get(name)
        return (a is not None and b is not None and a.ndim == 4 and b.ndim == 4 and a.shape[0] == first
                and b.shape[0] == second and a.shape[1:] == b.shape[1:] and a.dtype.kind == "f")

    consumers: dict[str, list[tuple[Any, int]]] = {}
    for node in graph.node:
        for index, name in enumerate(node.input):
            consumers.setdefault(name, []).append((node, index))
    outputs = {o.name for o in graph.output}

    def next_move(name: str) -> Any:
        """The one operator that moves ``name`` on (Shape readers aside), if there is exactly one."""
        data = [(node, index) for node, index in consumers.get(name, []) if node.op_type != "Shape"]
        if name in outputs or len(data) != 1:
            return None
        node, index = data[0]
        return node if node.op_type in MOVES and node.domain in ("", "ai.onnx") and index == 0 else None

    replacements: list[tuple[Any, str, str, tuple[int, ...], tuple[int, ...]]] = []
    covered: set[str] = set()
    order = [i.name for i in graph.input] + [name for node in graph.node for name in node.output]
    for start in order:
        if start in covered or not batched_4d(start):
            continue
        chain, ends, current = [], [], start
        while (node := next_move(current)) is not None and len(node.output) == 1:
            chain.append(node)
            current = node.output[0]
            if batched_4d(current):
                ends.append(len(chain))
        for length in reversed(ends):  # the longest chain that is an up-sampling
            if not any(node.op_type in COPIES for node in chain[:length]):
                break
            end = chain[length - 1].output[0]
            found = _as_repeat({b: values[b][start] for b in PROBE_BATCHES}, {b: values[b][end] for b in PROBE_BATCHES})
            if found is not None:
                replacements.append((chain[length - 1], start, end, *found))
                covered.update(node.output[0] for node in chain[: length - 1])  # the end may start another
                break
    if not replacements:
        return 0

    nodes = list(graph.node)
    producers = {name: node for node in nodes for name in node.output}
    constants = constant_values(graph)
    taken = {name for node in nodes for name in [*node.input, *node.output]} | {t.name for t in graph.initializer}
    for last, start, end, perm, factors in replacements:
        scales = _fresh(f"{end}_scales", taken)
        resize = {"mode": "nearest", "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}
        if perm == (0, 1, 2, 3):
            graph.initializer.append(numpy_helper.from_array(np.array(factors, np.float32), scales))
            new = [helper.make_node("Resize", [start, "", scales], [end], name=_fresh(f"{end}_resize", taken), **resize)]
        else:
            moved = _fresh(f"{end}_moved", taken)
            transpose = {"perm": list(perm), "name": _fresh(f"{end}_transpose", taken)}
            if _from_transpose(start, producers, constants, perm):
                # after a layer that transposed back: transpose first, so that onnxruntime cancels
                # the two and up-samples in its own layout (nchwc Upsample)
                graph.initializer.append(numpy_helper.from_array(np.array([factors[p] for p in perm], np.float32),
                                                                 scales))
                new = [helper.make_node("Transpose", [start], [moved], **transpose),
                       helper.make_node("Resize", [moved, "", scales], [end], name=_fresh(f"{end}_resize", taken),
                                        **resize)]
            else:
                # else up-sample first: onnxruntime folds a Transpose in front of a Conv into its
                # layout conversion (ReorderInput), but not one that a Resize separates from it
                graph.initializer.append(numpy_helper.from_array(np.array(factors, np.float32), scales))
                new = [helper.make_node("Resize", [start, "", scales], [moved], name=_fresh(f"{end}_resize", taken),
                                        **resize),
                       helper.make_node("Transpose", [moved], [end], **transpose)]
        at = nodes.index(last)
        nodes[at : at + 1] = new
    del graph.node[:]
    graph.node.extend(nodes)
    prune(graph)
    onnx.checker.check_model(model)
    return len(replacements)


ELEMENTWISE = frozenset({"Relu", "LeakyRelu", "Elu", "Selu", "Sigmoid", "Tanh", "Clip", "Cast", "Identity",
                         "Add", "Sub", "Mul", "Div", "Max", "Min", "Neg", "Abs", "Sqrt", "Exp", "Log"})


def constant_values(graph: Any) -> set[str]:
    """The values computed from initialisers alone (no graph input reaches them); nodes in order."""
    found = {t.name for t in graph.initializer} - {i.name for i in graph.input}
    for node in graph.node:
        if all(name in found for name in node.input if name) and not any(
                a.type in (5, 10) for a in node.attribute):  # GRAPH, GRAPHS: control flow is not folded
            found.update(name for name in node.output if name)
    return found


def _from_transpose(name: str, producers: dict[str, Any], constants: set[str], perm: tuple[int, ...]) -> bool:
    """Whether ``name`` is a Transpose undoing ``perm``, seen through element-wise operators
    (following their one non-constant input)."""
    inverse = list(np.argsort(perm))
    for _ in range(64):
        node = producers.get(name)
        if node is None:
            return False
        if node.op_type == "Transpose":
            return [a.ints for a in node.attribute if a.name == "perm"] == [inverse]
        if node.op_type not in ELEMENTWISE:
            return False
        variable = [i for i in node.input if i and i not in constants]
        if len(variable) != 1:
            return False
        name = variable[0]
    return False


def single_channel_convs_to_depthwise(model: Any, feeds: Callable[[int], dict[str, np.ndarray]],
                                      min_channels: int = 8) -> int:
    """Rewrite, in place, each 2-D Conv with one output channel, at least ``min_channels`` input
    channels and constant weights as ``Conv(group=C)`` + ``ReduceSum`` (+ the bias). Returns how many."""
    import onnx
    from onnx import helper, numpy_helper

    graph = model.graph
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < 13:  # ReduceSum takes its axes as an input from opset 13
        return 0
    constants = constant_values(graph)
    candidates = []
    for node in graph.node:
        if node.op_type != "Conv" or node.domain not in ("", "ai.onnx") or node.input[1] not in constants:
            continue
        attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if attributes.get("group", 1) != 1:
            continue
        candidates.append(node)
    if not candidates:
        return 0
    values = values_at(model, feeds)[PROBE_BATCHES[0]]
    initialisers = {t.name: t for t in graph.initializer}

    def value(name: str) -> np.ndarray | None:
        if name in values:
            return values[name]
        return numpy_helper.to_array(initialisers[name]) if name in initialisers else None

    taken = {name for node in graph.node for name in [*node.input, *node.output]} | set(initialisers)
    nodes = list(graph.node)
    count = 0
    for node in candidates:
        weight = value(node.input[1])
        if weight is None or weight.ndim != 4 or weight.shape[0] != 1 or weight.shape[1] < min_channels:
            continue
        channels = weight.shape[1]
        depthwise = _fresh(f"{node.input[1]}_depthwise", taken)
        axes = _fresh(f"{node.output[0]}_channel_axis", taken)
        graph.initializer.extend([numpy_helper.from_array(weight.reshape(channels, 1, *weight.shape[2:]), depthwise),
                                  numpy_helper.from_array(np.array([1], np.int64), axes)])
        per_channel = _fresh(f"{node.output[0]}_per_channel", taken)
        attributes = [a for a in node.attribute if a.name != "group"]
        conv = helper.make_node("Conv", [node.input[0], depthwise], [per_channel], name=_fresh(f"{node.name}_depthwise", taken),
                                group=channels)
        conv.attribute.extend(attributes)
        bias = node.input[2] if len(node.input) > 2 and node.input[2] else None
        summed = _fresh(f"{node.output[0]}_sum", taken) if bias else node.output[0]
        new = [conv, helper.make_node("ReduceSum", [per_channel, axes], [summed], keepdims=1,
                                      name=_fresh(f"{node.name}_channel_sum", taken))]
        if bias:
            new.append(helper.make_node("Add", [summed, bias], [node.output[0]], name=_fresh(f"{node.name}_bias", taken)))
        at = nodes.index(node)
        nodes[at : at + 1] = new
        count += 1
    if count:
        del graph.node[:]
        graph.node.extend(nodes)
        prune(graph)
        onnx.checker.check_model(model)
    return count


def constant_subtractions_to_additions(model: Any) -> int:
    """``Sub(x, c)`` with a constant ``c`` becomes ``Add(x, Neg(c))`` (the same number: IEEE 754
    subtracts by adding the negation), in place. onnxruntime folds an Add (and a Mul) that follows a
    convolution into its bias (and weights), but not a Sub, which is how PyTorch's exporter
    writes batch normalisation. Returns how many."""
    from onnx import helper

    graph = model.graph
    constants = constant_values(graph)
    taken = {name for node in graph.node for name in [*node.input, *node.output]} | {t.name for t in graph.initializer}
    nodes, count = [], 0
    for node in graph.node:
        if (node.op_type == "Sub" and node.domain in ("", "ai.onnx") and len(node.input) == 2
                and node.input[1] in constants and node.input[0] not in constants):
            negated = _fresh(f"{node.input[1]}_negated", taken)
            nodes += [helper.make_node("Neg", [node.input[1]], [negated], name=_fresh(f"{node.name}_negate", taken)),
                      helper.make_node("Add", [node.input[0], negated], list(node.output), name=node.name)]
            count += 1
        else:
            nodes.append(node)
    if count:
        del graph.node[:]
        graph.node.extend(nodes)
    return count


def prune(graph: Any) -> None:
    """Drop nodes whose outputs nothing reads, and unused initialisers and value_info entries."""
    needed = {o.name for o in graph.output}
    kept = []
    for node in reversed(graph.node):
        if any(name in needed for name in node.output):
            kept.append(node)
            needed.update(name for name in node.input if name)
            for attribute in node.attribute:  # control flow: subgraphs may read outer values
                for sub in [attribute.g, *attribute.graphs]:
                    needed.update(name for n in sub.node for name in n.input)
    kept.reverse()
    del graph.node[:]
    graph.node.extend(kept)
    produced = {name for node in kept for name in node.output}
    initialisers = [t for t in graph.initializer if t.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(initialisers)
    infos = [v for v in graph.value_info if v.name in produced]
    del graph.value_info[:]
    graph.value_info.extend(infos)
    missing = sorted(name for name in needed - produced - {t.name for t in graph.initializer}
                     - {i.name for i in graph.input})
    if missing:
        raise ValueError(f"the rewritten graph reads values nothing computes: {missing[:3]}")


def _fresh(stem: str, taken: set[str]) -> str:
    name, n = stem, 0
    while name in taken:
        n += 1
        name = f"{stem}_{n}"
    taken.add(name)
    return name
