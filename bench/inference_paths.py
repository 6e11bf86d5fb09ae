"""The paths bench/inference.py times, each built in its own child process: ``Generator``'s
(onnxruntime), a raw ``InferenceSession`` with one change (``--ablation``), and Keras's on one
backend; and what the report puts them against: the generator's FLOPs and a MatMul ceiling.

A path is ``f(batch, i)``: one call at a batch size (``i`` numbers the calls), always on the
latents and labels ``Generator.sample(batch, seed=0)`` draws (``ganctl.sampling``).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

SAMPLE, RUN, SESSION = "Generator.sample", "Generator.run", "InferenceSession.run"
PREDICT, DIRECT, COMPILED = "predict", "direct call", "direct call, compiled"
BEFORE = "5c40b29"  # the commit whose Generator per-call code the ablation compares with
CEILING_N = 2048

Path_ = Callable[[int, int], Any]
"""A timed path: ``f(batch, i)`` runs one call at a batch size (``i`` numbers the calls)."""

ABLATIONS: dict[str, dict[str, Any]] = {
    "optimisation level extended": {"level": "ORT_ENABLE_EXTENDED"},
    "optimisation level basic": {"level": "ORT_ENABLE_BASIC"},
    "1 thread": {"threads": 1},
    "no spinning": {"spinning": "0"},
    "IO binding, preallocated output": {"iobinding": True},
    "graph without ganctl's rewrite": {"graph": "plain.onnx"},
    "graph with only the up-sampling rewrite": {"graph": "resize-only.onnx"},
    f"Generator.sample as of {BEFORE}": {"before": True},
    f"Generator.sample as of {BEFORE}, graph without ganctl's rewrite": {"before": True, "graph": "plain.onnx"},
}
"""``--ablation``: one child process each, timing a raw ``InferenceSession.run`` with one change from
what ``Generator`` does (separate processes: two sessions in one process would share the cores
with each other's spinning threads)."""


def feeds(latent_dim: int, num_classes: int, batches: list[int]) -> dict[int, dict[str, Any]]:
    """Per batch size, the ONNX contract's inputs with the latents and labels ``Generator.sample(batch,
    seed=0)`` draws."""
    import numpy as np

    from ganctl import api
    from ganctl.sampling import inputs

    found = {}
    for batch in batches:
        z, labels = inputs(0, batch, latent_dim, num_classes, label_dtype=np.int64)
        found[batch] = {api.INPUT_Z: z} if labels is None else {api.INPUT_Z: z, api.INPUT_LABEL: labels}
    return found


def ort_paths(run: Path, batches: list[int]) -> tuple[dict[str, Path_], dict[str, Any]]:
    """``Generator.sample``, ``Generator.run`` and its own session's ``InferenceSession.run``; and the
    model's FLOPs and the MatMul ceiling on its threads."""
    from ganctl import api
    from ganctl.inference.generator import Generator
    from ganctl.runs.rundir import export_path

    generator = Generator.open(export_path(run), provider="cpu")
    session = generator.session
    fed = feeds(generator.latent_dim, generator.num_classes, batches)
    paths: dict[str, Path_] = {
        SAMPLE: lambda batch, i: generator.sample(batch, seed=i),
        RUN: lambda batch, i: generator.run(fed[batch][api.INPUT_Z], fed[batch].get(api.INPUT_LABEL)),
        SESSION: lambda batch, i: session.run([api.OUTPUT_IMAGES], fed[batch]),
    }
    info = {"threads": generator.threads, "providers": generator.providers,
            "macs_per_sample": macs_per_sample(generator.path),
            "ceiling": ceiling(generator.threads)}
    return paths, info


def ablation_paths(name: str, run: Path, batches: list[int], workdir: Path) -> tuple[dict[str, Path_], dict[str, Any]]:
    """One raw session, made as ``Generator.open`` makes it but for the change ``ABLATIONS[name]``."""
    import numpy as np
    import onnxruntime as ort

    from ganctl import api
    from ganctl.inference.generator import Generator
    from ganctl.runs.rundir import export_path

    change = ABLATIONS[name]
    if change.get("before"):  # Generator's own code as of BEFORE: its sample(), on its own session
        import importlib.util

        spec = importlib.util.spec_from_file_location("inference_before", workdir / "inference_before.py")
        if spec is None or spec.loader is None or not (workdir / "inference_before.py").is_file():
            raise SystemExit(f"cannot read ganctl/inference.py as of {BEFORE} (git show)")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
        graph = workdir / change["graph"] if "graph" in change else export_path(run)
        old = module.Generator.open(graph, provider="cpu")
        return {name: lambda batch, i: old.sample(batch, seed=i)}, {}
    generator = Generator.open(export_path(run), provider="cpu")  # its settings, metadata
    options = ort.SessionOptions()
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, change.get("level", "ORT_ENABLE_ALL"))
    options.intra_op_num_threads = change.get("threads", generator.threads)
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    if "spinning" in change:
        options.add_session_config_entry("session.intra_op.allow_spinning", change["spinning"])
    path = workdir / change["graph"] if "graph" in change else generator.path
    del generator
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    shape = json.loads(meta["ganctl.data_shape"])
    fed = feeds(int(meta["ganctl.latent_dim"]), int(meta["ganctl.num_classes"]), batches)
    if not change.get("iobinding"):
        return {name: lambda batch, i: session.run([api.OUTPUT_IMAGES], fed[batch])}, {}

    def bound(batch: int, i: int) -> Any:  # inputs bound in place, a fresh output array each call
        binding = session.io_binding()
        for key, value in fed[batch].items():
            binding.bind_cpu_input(key, value)
        out = np.empty((batch, *shape), np.float32)
        binding.bind_output(api.OUTPUT_IMAGES, "cpu", 0, np.float32, out.shape, out.ctypes.data)
        session.run_with_iobinding(binding)
        return out

    return {name: bound}, {}


def shapes_per_sample(model: Any) -> dict[str, tuple[int, ...]]:
    """The shape of every value of ``model`` (an ``onnx.ModelProto``) at batch 1, from ONNX's shape
    inference; a dimension it cannot tell is None."""
    import onnx

    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    for value in fixed.graph.input:
        batch = value.type.tensor_type.shape.dim[0]
        batch.Clear()
        batch.dim_value = 1
    inferred = onnx.shape_inference.infer_shapes(fixed, strict_mode=True, data_prop=True)
    shapes = {v.name: tuple(d.dim_value if d.HasField("dim_value") else None for d in v.type.tensor_type.shape.dim)
              for v in [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]}
    shapes.update((t.name, tuple(t.dims)) for t in inferred.graph.initializer)
    return shapes


def macs_per_sample(path: Path) -> dict[str, int]:
    """Multiply-accumulates per sample of each Conv, ConvTranspose, Gemm and MatMul, by operator type."""
    import math

    import onnx

    model = onnx.load(str(path))
    known = shapes_per_sample(model)

    def shape(name: str) -> tuple[int, ...]:
        found = known.get(name)
        if not found or None in found:
            raise SystemExit(f"{path}: ONNX's shape inference cannot tell the shape of {name!r} ({found}), "
                             "so the FLOPs cannot be counted.")
        return found

    counts: dict[str, int] = {}
    for node in model.graph.node:
        if node.op_type not in ("Conv", "ConvTranspose", "MatMul", "Gemm"):
            continue
        x, w, out = shape(node.input[0]), shape(node.input[1]), shape(node.output[0])
        if node.op_type == "Conv":  # W: [M, C/group, kh, kw]; out: [N, M, ...]
            macs = math.prod(out) * math.prod(w[1:])
        elif node.op_type == "ConvTranspose":  # W: [C, M/group, kh, kw]; each input value fans out
            macs = math.prod(x) * math.prod(w[1:])
        else:
            trans_a = any(a.name == "transA" and a.i for a in node.attribute)
            macs = math.prod(out) * (x[-2] if trans_a else x[-1])
        counts[node.op_type] = counts.get(node.op_type, 0) + macs
    return counts


def ceiling(threads: int) -> dict[str, float]:
    """GFLOP/s of the best of 5 float32 MatMuls of CEILING_N x CEILING_N: onnxruntime (``threads``) and NumPy."""
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    n = CEILING_N
    graph = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["c"])], "matmul",
                              [helper.make_tensor_value_info(x, TensorProto.FLOAT, [n, n]) for x in "ab"],
                              [helper.make_tensor_value_info("c", TensorProto.FLOAT, [n, n])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 10
    onnx.checker.check_model(model)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((n, n), dtype=np.float32), rng.standard_normal((n, n), dtype=np.float32)

    def best(call: Callable[[], Any]) -> float:
        call()
        times = []
        for _ in range(5):
            began = time.perf_counter()
            call()
            times.append(time.perf_counter() - began)
        return 2 * n**3 / min(times) / 1e9

    return {"onnxruntime_gflops": best(lambda: session.run(["c"], {"a": a, "b": b})),
            "numpy_gflops": best(lambda: a @ b)}


def keras_paths(backend: str, run: Path, batches: list[int]) -> tuple[dict[str, Path_], dict[str, Any]]:
    """``predict``, the direct call and (JAX, TensorFlow) the direct call compiled, on ``backend``,
    with the run's newest checkpoint."""
    import keras
    import numpy as np

    from ganctl.plugins import get_host
    from ganctl.runs.trained import open_trained
    from ganctl.sampling import inputs

    trained = open_trained(run, get_host(), backend)
    session = trained.session
    engine, model = session.engine, session.model
    engine.sync()
    network = model.generator
    conditional = model.conditional
    feeds = {batch: inputs(0, batch, model.latent_dim, session.spec.num_classes if conditional else 0)
             for batch in batches}

    def predict(batch: int, i: int) -> Any:
        z, labels = feeds[batch]
        return network.predict(z if labels is None else [z, labels], batch_size=batch, verbose=0)

    def direct(batch: int, i: int) -> Any:  # session.engine.generate, less its one-off sync
        with engine.inference():
            return np.asarray(keras.ops.convert_to_numpy(model.generate(*feeds[batch])))

    paths: dict[str, Path_] = {PREDICT: predict, DIRECT: direct}
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        # copies: predict donates the variables' buffers, which would delete these otherwise
        trainable = [jnp.array(v.value, copy=True) for v in network.trainable_variables]
        other = [jnp.array(v.value, copy=True) for v in network.non_trainable_variables]

        @jax.jit
        def call(trainable: Any, other: Any, x: Any) -> Any:
            return network.stateless_call(trainable, other, x, training=False)[0]

        def compiled(batch: int, i: int) -> Any:
            z, labels = feeds[batch]
            return np.asarray(call(trainable, other, z if labels is None else [z, labels]))

        paths[COMPILED] = compiled
    elif backend == "tensorflow":
        import tensorflow as tf

        function = tf.function(lambda x: network(x, training=False), reduce_retracing=True)

        def compiled(batch: int, i: int) -> Any:
            z, labels = feeds[batch]
            return function(z if labels is None else [z, labels]).numpy()

        paths[COMPILED] = compiled
    return paths, {"backend": backend}


