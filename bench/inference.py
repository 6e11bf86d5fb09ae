"""Inference speed: ``ganctl.inference.Generator`` (onnxruntime) against Keras on the same weights.

Targets (issue): on the reference CPU (2 cores), for the quickstart-sized DCGAN (conditional,
8x8x1 digits, latent_dim 32, filters 64), ``Generator.sample`` at least 1.5x the fastest Keras
path at batch 256, and at most 0.3 ms per call at batch 1.

The model: a copy of recipes/quickstart.yaml trained for one epoch of two steps (speed does
not depend on the weights) and exported with ``ganctl export RUN --onnx``; or ``--run RUN_DIR``.

Paths timed, each on the same latents and labels:

* onnxruntime (one child process): ``Generator.sample(n, seed)`` (the public API: latents drawn
  from the seed, labels, the onnxruntime call); ``Generator.run(z, labels)``; and
  ``InferenceSession.run`` on prebuilt feeds, with the session ``Generator`` made (the floor:
  onnxruntime alone, no ganctl code).
* Keras, one child process per backend (the backend is fixed per process): ``model.predict``;
  the direct call ``generator([z, labels], training=False)`` as ``session.engine.generate`` makes
  it (eager); and the direct call compiled: JAX ``jax.jit`` over ``stateless_call``, TensorFlow
  ``tf.function`` (no XLA, as ganctl on CPUs). PyTorch has no compiled path here (``torch.compile``
  takes minutes).

``--ablation`` adds onnxruntime variants, each a raw ``InferenceSession.run`` in its own process
with one change from what ``Generator`` does: another graph optimisation level, one thread, no
spinning, IO binding (inputs bound in place, a preallocated output), the converter's graph
without ganctl's rewrite (plugins/ganctl_export/_rewrite.py) or with its up-sampling part only;
their baseline is the raw ``InferenceSession.run`` of ``Generator``'s own session. And
``Generator.sample`` as it was at commit 5c40b29 (read with ``git show``), before its per-call
overhead was cut, on today's export and on the converter's graph (before any of this tuning),
against today's.

Method: the children are started one after another (loading and compiling are not timed); each
path is warmed up and its block size calibrated so that a block takes about ``--slice``
seconds. Then rounds: in each round, for each batch size, every child in turn runs one block of
each of its paths (the order reversed every other round; the others wait, idle, on a pipe),
after ``--settle`` seconds of untimed calls: when a process gets the CPUs back, onnxruntime's
first calls are 2-3x slower for 50-100 ms, which would otherwise fall on whichever path is first.
Ratios are *paired*: onnxruntime's samples/s over a Keras path's, within each round, then the
median [min, max] over rounds. Latencies are per call (median and 90th percentile over every
timed call). The machine may be shared: before each round the script waits (``--patience``)
for a quiet second, and a round during which other processes used more than ``--threshold``
of the CPUs (from /proc/stat, less this benchmark's own processes) is dropped and run again,
up to ``--max-rounds``. onnxruntime's spinning threads make it far slower than the Keras paths
when another process wants the same cores, so an unguarded run on a busy machine measures the
neighbours, not the model.

FLOPs: the multiply-accumulates of every Conv, ConvTranspose, Gemm and MatMul in the exported
graph, per sample (shapes from running it). The ceiling: the best of a few large float32
MatMuls (2048 x 2048), in onnxruntime on the same threads as ``Generator`` and in NumPy.

Usage:
    python bench/inference.py                        # all backends, batches 1, 64, 256 (~5 min)
    python bench/inference.py --backends jax --rounds 3
    python bench/inference.py --ablation --json out.json
    python bench/inference.py --run runs/quickstart-...   # an existing run (exported if needed)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import machine, receive, stop  # bench/common.py (scripts run as python bench/NAME.py)

ROOT = Path(__file__).resolve().parent.parent
BACKENDS = ("jax", "tensorflow", "torch")
ORT = "onnxruntime"
SAMPLE, RUN, SESSION = "Generator.sample", "Generator.run", "InferenceSession.run"
PREDICT, DIRECT, COMPILED = "predict", "direct call", "direct call, compiled"
GRAPHS = {  # --ablation: the same export with parts of ganctl's rewrite (plugins/ganctl_export/_rewrite.py) off
    "plain.onnx": ("upsampling_to_resize", "single_channel_convs_to_depthwise", "constant_subtractions_to_additions"),
    "resize-only.onnx": ("single_channel_convs_to_depthwise", "constant_subtractions_to_additions"),
}
BEFORE = "5c40b29"  # the commit whose Generator per-call code the ablation compares with
WARMUP = 5
CEILING_N = 2048


# ============================================================================================
# Setup: a quickstart-sized run, exported
# ============================================================================================


def prepare(args: argparse.Namespace, workdir: Path) -> Path:
    """The run directory to time, with exports/generator.onnx (and plain.onnx with --ablation)."""
    ganctl = [sys.executable, "-m", "ganctl"]
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    if args.run:
        run = Path(args.run).resolve()
    else:
        run = workdir / "run"
        print("training a copy of recipes/quickstart.yaml (1 epoch of 2 steps) ...", file=sys.stderr, flush=True)
        subprocess.run([*ganctl, "train", "recipes/quickstart.yaml", "--set", "train.epochs=1",
                        "--set", "train.steps_per_epoch=2", "--out", str(run), "-q"],
                       check=True, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    if not (run / "exports" / "generator.onnx").is_file():
        print("exporting it (ganctl export RUN --onnx) ...", file=sys.stderr, flush=True)
        subprocess.run([*ganctl, "export", str(run), "--onnx"], check=True, cwd=ROOT, env=env,
                       stdout=subprocess.DEVNULL)
    if args.ablation:
        for name in GRAPHS:
            subprocess.run([sys.executable, __file__, "--export-variant", name, str(run), str(workdir / name)],
                           check=True, cwd=ROOT, env=env)
        old = subprocess.run(["git", "show", f"{BEFORE}:ganctl/inference.py"], cwd=ROOT, capture_output=True, text=True)
        if old.returncode == 0:
            (workdir / "inference_before.py").write_text(old.stdout)
    return run


def export_variant(variant: str, run: str, out: str) -> None:
    """Export ``run``'s generator as the onnx exporter does, with the rewrites ``GRAPHS[variant]`` off."""
    from ganctl import api, exporting
    from ganctl.generate import open_trained
    from ganctl.plugins import get_host
    from ganctl_export import onnx as onnx_exporter

    host = get_host()
    trained = open_trained(Path(run), host)
    session = trained.session
    for name in GRAPHS[variant]:  # these rewrites, switched off
        setattr(onnx_exporter, name, lambda *args: 0)
    _, exporter = exporting.make_exporter(host, "onnx", source="bench")
    source = api.ExportSource(
        generator=exporting._called_network(session), spec=session.spec, latent_dim=session.model.latent_dim,
        conditional=session.model.conditional, backend=session.backend,
        metadata=exporting.metadata(session, trained.checkpoint.progress.step),
    )
    exporter.export(source, Path(out))


# ============================================================================================
# Children: one builds and times the onnxruntime paths, one per backend the Keras paths
# ============================================================================================

Path_ = Callable[[int, int], Any]
"""A timed path: ``f(batch, i)`` runs one call at a batch size (``i`` numbers the calls)."""


def inputs(latent_dim: int, num_classes: int, batch: int) -> tuple[Any, Any]:
    """The latents and labels ``Generator.sample(batch, seed=0)`` draws (labels int64, or None)."""
    import numpy as np

    from ganctl.sampling import latents, sample_labels

    labels = sample_labels(batch, num_classes)
    return latents(0, batch, latent_dim), None if labels is None else labels.astype(np.int64)


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


def _feeds(latent_dim: int, num_classes: int, batches: list[int]) -> dict[int, dict[str, Any]]:
    feeds = {}
    for batch in batches:
        z, labels = inputs(latent_dim, num_classes, batch)
        feeds[batch] = {"z": z} if labels is None else {"z": z, "label": labels}
    return feeds


def ort_paths(run: Path, batches: list[int]) -> tuple[dict[str, Path_], dict[str, Any]]:
    from ganctl.inference import Generator

    generator = Generator.open(run / "exports" / "generator.onnx", provider="cpu")
    session = generator._session
    feeds = _feeds(generator.latent_dim, generator.num_classes, batches)
    paths: dict[str, Path_] = {
        SAMPLE: lambda batch, i: generator.sample(batch, seed=i),
        RUN: lambda batch, i: generator.run(feeds[batch]["z"], feeds[batch].get("label")),
        SESSION: lambda batch, i: session.run(["images"], feeds[batch]),
    }
    info = {"threads": generator.threads, "providers": generator.providers,
            "macs_per_sample": macs_per_sample(generator.path, generator.latent_dim, generator.num_classes),
            "ceiling": ceiling(generator.threads)}
    return paths, info


def ablation_paths(name: str, run: Path, batches: list[int], workdir: Path) -> tuple[dict[str, Path_], dict[str, Any]]:
    """One raw session, made as ``Generator.open`` makes it but for the change ``ABLATIONS[name]``."""
    import numpy as np
    import onnxruntime as ort

    from ganctl.inference import Generator

    change = ABLATIONS[name]
    if change.get("before"):  # Generator's own code as of BEFORE: its sample(), on its own session
        import importlib.util

        spec = importlib.util.spec_from_file_location("inference_before", workdir / "inference_before.py")
        if spec is None or spec.loader is None or not (workdir / "inference_before.py").is_file():
            raise SystemExit(f"cannot read ganctl/inference.py as of {BEFORE} (git show)")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
        old = module.Generator.open(workdir / change["graph"] if "graph" in change else run / "exports" / "generator.onnx",
                                    provider="cpu")
        return {name: lambda batch, i: old.sample(batch, seed=i)}, {}
    generator = Generator.open(run / "exports" / "generator.onnx", provider="cpu")  # its settings, metadata
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
    feeds = _feeds(int(meta["ganctl.latent_dim"]), int(meta["ganctl.num_classes"]), batches)
    if not change.get("iobinding"):
        return {name: lambda batch, i: session.run(["images"], feeds[batch])}, {}

    def bound(batch: int, i: int) -> Any:  # inputs bound in place, a fresh output array each call
        binding = session.io_binding()
        for key, value in feeds[batch].items():
            binding.bind_cpu_input(key, value)
        out = np.empty((batch, *shape), np.float32)
        binding.bind_output("images", "cpu", 0, np.float32, out.shape, out.ctypes.data)
        session.run_with_iobinding(binding)
        return out

    return {name: bound}, {}


def macs_per_sample(path: Path, latent_dim: int, num_classes: int) -> dict[str, int]:
    """Multiply-accumulates per sample of each Conv, ConvTranspose, Gemm and MatMul, by operator type."""
    import math

    import onnx

    from ganctl_export._rewrite import values_at

    def feeds(batch: int) -> dict[str, Any]:
        z, labels = inputs(latent_dim, num_classes, batch)
        return {"z": z} if labels is None else {"z": z, "label": labels}

    model = onnx.load(str(path))
    values = values_at(model, feeds)[1]  # at batch 1: per sample
    for tensor in model.graph.initializer:
        values.setdefault(tensor.name, onnx.numpy_helper.to_array(tensor))
    counts: dict[str, int] = {}
    for node in model.graph.node:
        shapes = [values[name].shape if name in values else None for name in node.input]
        out = values[node.output[0]].shape
        if node.op_type == "Conv":  # W: [M, C/group, kh, kw]; out: [N, M, ...]
            macs = math.prod(out) * math.prod(shapes[1][1:])
        elif node.op_type == "ConvTranspose":  # W: [C, M/group, kh, kw]; each input value fans out
            macs = math.prod(shapes[0]) * math.prod(shapes[1][1:])
        elif node.op_type in ("MatMul", "Gemm"):
            trans_a = any(a.name == "transA" and a.i for a in node.attribute)
            k = shapes[0][-2] if trans_a else shapes[0][-1]
            macs = math.prod(out) * k
        else:
            continue
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
    import keras
    import numpy as np

    from ganctl.generate import open_trained
    from ganctl.plugins import get_host

    trained = open_trained(run, get_host(), backend)
    session = trained.session
    engine, model = session.engine, session.model
    engine.sync()
    network = model.generator
    conditional = model.conditional
    feeds = {}
    for batch in batches:
        z, labels = inputs(model.latent_dim, session.spec.num_classes if conditional else 0, batch)
        feeds[batch] = (z, None if labels is None else labels.astype(np.int32))

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


def versions() -> dict[str, str]:
    found = {}
    for name in ("keras", "jax", "tensorflow", "torch", "onnxruntime", "numpy"):
        if name in sys.modules:
            found[name] = getattr(sys.modules[name], "__version__", "?")
    return found


def child_main(kind: str, run: Path, batches: list[int], workdir: Path) -> None:
    """Build and warm up, say ready; then run one block per command until stdin closes."""
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # whatever the libraries print goes to stderr, never into the protocol
    began = time.perf_counter()
    if kind == ORT:
        paths, info = ort_paths(run, batches)
    elif kind.startswith("ablation:"):
        paths, info = ablation_paths(kind.removeprefix("ablation:"), run, batches, workdir)
    else:
        from ganctl.backend import activate

        activate(kind)
        paths, info = keras_paths(kind, run, batches)
    per_call = {}
    for batch in batches:
        for name, path in paths.items():
            for i in range(WARMUP):
                path(batch, i)
            start = time.perf_counter()
            path(batch, WARMUP)
            per_call[f"{name}|{batch}"] = time.perf_counter() - start
    proto.write(json.dumps({"paths": list(paths), "info": info, "per_call": per_call, "versions": versions(),
                            "setup_s": time.perf_counter() - began}) + "\n")
    i = WARMUP + 1
    for line in sys.stdin:
        command = json.loads(line)
        batch, calls = command["batch"], command["calls"]
        names = list(paths) if command["flip"] == 0 else list(paths)[::-1]
        # Untimed first: after another process had the CPUs, onnxruntime's first calls run 2-3x
        # slower for 50-100 ms (its threads are placed again), which would fall on whichever path
        # comes first.
        settle = time.perf_counter() + command["settle"]
        while True:
            paths[names[0]](batch, i)
            i += 1
            if time.perf_counter() >= settle:
                break
        times: dict[str, list[float]] = {}
        for name in names:
            path, spent = paths[name], []
            for _ in range(calls[name]):
                start = time.perf_counter()
                path(batch, i)
                spent.append(time.perf_counter() - start)
                i += 1
            times[name] = spent
        proto.write(json.dumps({"times": times}) + "\n")


# ============================================================================================
# Parent: start the children, interleave them, summarise
# ============================================================================================


class Child:
    def __init__(self, kind: str, args: argparse.Namespace, run: Path, workdir: Path) -> None:
        self.kind = kind
        self.log = workdir / f"{kind}.log"
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
        if kind in BACKENDS:
            env["KERAS_BACKEND"] = kind
        command = [sys.executable, __file__, "--child", kind, "--run", str(run), "--workdir", str(workdir),
                   "--batches", ",".join(map(str, args.batches))]
        with self.log.open("w") as log:
            self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                                         text=True, cwd=ROOT, env=env)
        self.ready = self.receive()
        self.paths: list[str] = self.ready["paths"]

    def receive(self) -> dict[str, Any]:
        return receive(self.proc, self.log, self.kind)

    def calls(self, batch: int, seconds: float) -> dict[str, int]:
        """Calls per block for each path: about ``seconds`` of them, at least one."""
        return {name: max(1, min(5000, round(seconds / max(self.ready["per_call"][f"{name}|{batch}"], 1e-6))))
                for name in self.paths}

    def run(self, batch: int, calls: dict[str, int], flip: int, settle: float) -> dict[str, list[float]]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"batch": batch, "calls": calls, "flip": flip, "settle": settle}) + "\n")
        self.proc.stdin.flush()
        return self.receive()["times"]

    def close(self) -> None:
        stop(self.proc)


# -- what else the machine is doing ----------------------------------------------------------------


def _cpu_jiffies() -> tuple[int, int]:
    """(busy, total) CPU time of the whole machine so far, in clock ticks (Linux /proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields[:8]) - idle, sum(fields[:8])


def _own_jiffies(pids: list[int]) -> int:
    """CPU time (user + system, clock ticks) of these processes so far."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total


class Load:
    """The share of the machine's CPU time used by processes other than this benchmark."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.available = Path("/proc/stat").is_file()
        self.reset()

    def reset(self) -> None:
        if self.available:
            self.busy, self.total = _cpu_jiffies()
            self.own = _own_jiffies(self.pids)

    def foreign(self) -> float:
        """Since the last reset: other processes' CPU time over all of the machine's (0 to 1)."""
        if not self.available:
            return 0.0
        busy, total = _cpu_jiffies()
        own = _own_jiffies(self.pids)
        share = max(0.0, (busy - self.busy) - (own - self.own)) / max(1, total - self.total)
        return share

    def wait_until_quiet(self, threshold: float, patience: float) -> float:
        """Wait (at most ``patience`` seconds) for a second in which others use under ``threshold``."""
        deadline = time.monotonic() + patience
        while True:
            self.reset()
            time.sleep(1.0)
            share = self.foreign()
            if share < threshold or time.monotonic() > deadline:
                return share


# -- summaries ----------------------------------------------------------------------------------------


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _ratio(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} [{min(values):.2f}, {max(values):.2f}]"


def _label(kind: str, path: str) -> str:
    return path if kind.startswith("ablation:") else f"{kind} {path}"


def summarise(rounds: list[dict[str, Any]], children: list[Child], batches: list[int]) -> list[dict[str, Any]]:
    """Per path and batch size: samples/s (median over rounds), latency per call; ratios paired by round."""
    rows = []
    for child in children:
        for name in child.paths:
            for batch in batches:
                key = f"{child.kind}|{name}|{batch}"
                rates = [r["results"][key]["rate"] for r in rounds]
                calls = [t for r in rounds for t in r["results"][key]["times"]]
                rows.append({"runtime": child.kind, "path": name, "batch": batch, "rates": rates,
                             "samples_per_s": statistics.median(rates), "median_ms": 1e3 * statistics.median(calls),
                             "p90_ms": 1e3 * _percentile(calls, 0.9), "calls": len(calls)})
    keras = [r for r in rows if r["runtime"] in BACKENDS]
    for row in rows:
        if row["runtime"] == ORT:
            row["vs"] = {_label(k["runtime"], k["path"]): [a / b for a, b in zip(row["rates"], k["rates"], strict=True)]
                         for k in keras if k["batch"] == row["batch"]}
    return rows


def report(rows: list[dict[str, Any]], meta: dict[str, Any], batches: list[int]) -> str:
    m = meta["machine"]
    out = ["## Inference speed", ""]
    out.append(f"Machine: {m['cpus']} CPUs ({m['cpu_model']}), {m['platform']}; Python {m['python']}, "
               + ", ".join(f"{k} {v}" for k, v in sorted(meta["versions"].items())) + ".")
    out.append(f"Model: {meta['model']}; onnxruntime on {meta['threads']} thread(s). {len(meta['kept'])} rounds "
               f"kept of {meta['rounds_run']} (a round is dropped when other processes used more than "
               f"{meta['threshold']:.0%} of the CPUs during it; their shares: "
               + ", ".join(f"{x:.0%}" for x in meta["foreign"]) + f"). Wall time {meta['wall_s']:.0f} s.")
    out += ["", "samples/s: median over rounds; latency: median and 90th percentile of every timed call.", ""]
    out += ["| runtime | path | batch | samples/s | median ms | p90 ms |", "| --- | --- | ---: | ---: | ---: | ---: |"]
    main = [r for r in rows if not r["runtime"].startswith("ablation:")]
    for r in sorted(main, key=lambda r: (r["batch"], r["runtime"] != ORT, r["runtime"])):
        out.append(f"| {r['runtime']} | {r['path']} | {r['batch']} | {r['samples_per_s']:,.0f} | "
                   f"{r['median_ms']:.3f} | {r['p90_ms']:.3f} |")
    keras = list(dict.fromkeys(_label(r["runtime"], r["path"]) for r in rows if r["runtime"] in BACKENDS))
    if keras:
        out += ["", "onnxruntime's samples/s over each Keras path's, paired within rounds: median [min, max].", ""]
        out += ["| onnxruntime path | batch | " + " | ".join(keras) + " |", "| --- | ---: |" + " ---: |" * len(keras)]
        for r in rows:
            if "vs" in r:
                out.append(f"| {r['path']} | {r['batch']} | " + " | ".join(_ratio(r["vs"][k]) for k in keras) + " |")
    out += ["", "Targets:"]
    sample = {r["batch"]: r for r in rows if r["runtime"] == ORT and r["path"] == SAMPLE}
    top = max(batches)
    if keras and top in sample:
        fastest = max((r for r in rows if r["runtime"] in BACKENDS and r["batch"] == top),
                      key=lambda r: r["samples_per_s"])
        name = _label(fastest["runtime"], fastest["path"])
        ratio = statistics.median(sample[top]["vs"][name])
        out.append(f"- batch {top}: Generator.sample / the fastest Keras path ({name}) = {ratio:.2f}x "
                   f"(target >= 1.5: {'met' if ratio >= 1.5 else 'MISSED'})")
    if 1 in sample:
        ms = sample[1]["median_ms"]
        out.append(f"- batch 1: Generator.sample {ms:.3f} ms per call, median (target <= 0.3: "
                   f"{'met' if ms <= 0.3 else 'MISSED'}); p90 {sample[1]['p90_ms']:.3f} ms")
    macs = sum(meta["macs_per_sample"].values())
    ceiling = meta["ceiling"]
    out += ["", f"FLOPs: {2 * macs / 1e6:.3f} MFLOP per sample ({macs:,} multiply-accumulates: "
            + ", ".join(f"{k} {v:,}" for k, v in meta["macs_per_sample"].items()) + "). Ceiling (best of 5 float32 "
            f"{CEILING_N}x{CEILING_N} MatMuls): onnxruntime {ceiling['onnxruntime_gflops']:.1f} GFLOP/s on "
            f"{meta['threads']} thread(s), NumPy {ceiling['numpy_gflops']:.1f} GFLOP/s.", ""]
    out += ["| runtime | path | batch | GFLOP/s | of the onnxruntime MatMul ceiling |", "| --- | --- | ---: | ---: | ---: |"]
    for r in main:
        if r["batch"] == top:
            gflops = 2 * macs * r["samples_per_s"] / 1e9
            out.append(f"| {r['runtime']} | {r['path']} | {top} | {gflops:.1f} | "
                       f"{gflops / ceiling['onnxruntime_gflops']:.0%} |")
    ablation = [r for r in rows if r["runtime"].startswith("ablation:")]
    if ablation:
        base = {(r["path"], r["batch"]): r for r in rows if r["runtime"] == ORT}
        out += ["", "Ablation: a raw InferenceSession.run with one change from Generator's session (or Generator.sample "
                "as it was), each in its own process; its speed over Generator's (InferenceSession.run, or "
                "Generator.sample, above), paired within rounds, median [min, max] (> 1: the change is faster), "
                "and its median ms per call.", ""]
        out += ["| change | " + " | ".join(f"batch {b}" for b in batches) + " |", "| --- |" + " ---: |" * len(batches)]
        for name in dict.fromkeys(r["path"] for r in ablation):
            cells = []
            for b in batches:
                r = next(x for x in ablation if x["path"] == name and x["batch"] == b)
                reference = base[(SAMPLE if name.startswith(SAMPLE) else SESSION, b)]
                cells.append(_ratio([a / c for a, c in zip(r["rates"], reference["rates"], strict=True)])
                             + f" ({r['median_ms']:.3f} ms)")
            out.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def one_round(children: list[Child], calls: dict[tuple[str, int], dict[str, int]], batches: list[int],
              index: int, settle: float) -> dict[str, Any]:
    """Every child runs a block of each of its paths at each batch size, one child at a time."""
    results: dict[str, Any] = {}
    for batch in batches:
        shift = index % len(children)  # rotate which child goes first
        for child in children[shift:] + children[:shift]:
            times = child.run(batch, calls[(child.kind, batch)], index % 2, settle)
            for name, spent in times.items():
                results[f"{child.kind}|{name}|{batch}"] = {"times": spent, "rate": batch * len(spent) / sum(spent)}
    return results


def parent_main(args: argparse.Namespace) -> None:
    began = time.perf_counter()
    kinds = [ORT, *args.backends, *([f"ablation:{name}" for name in ABLATIONS] if args.ablation else [])]
    with tempfile.TemporaryDirectory(prefix="ganctl-bench-inference-") as scratch:
        workdir = Path(scratch)
        run = prepare(args, workdir)
        children: list[Child] = []
        rounds: list[dict[str, Any]] = []
        kept: list[dict[str, Any]] = []
        try:
            for kind in kinds:
                print(f"starting {kind} ...", file=sys.stderr, flush=True)
                children.append(Child(kind, args, run, workdir))
                print(f"  ready after {children[-1].ready['setup_s']:.0f} s", file=sys.stderr, flush=True)
            calls = {(c.kind, b): c.calls(b, args.slice) for c in children for b in args.batches}
            load = Load([os.getpid(), *(c.proc.pid for c in children)])
            while len(kept) < args.rounds and len(rounds) < args.max_rounds:
                before = load.wait_until_quiet(args.threshold, args.patience) if args.patience > 0 else 0.0
                load.reset()
                results = one_round(children, calls, args.batches, len(rounds), args.settle)
                share = load.foreign()
                rounds.append({"results": results, "foreign": share, "foreign_before": before})
                if share <= args.threshold:
                    kept.append(rounds[-1])
                print(f"round {len(rounds)}: others used {share:.0%} of the CPUs "
                      f"({'kept' if share <= args.threshold else 'dropped'}; {len(kept)}/{args.rounds} kept, "
                      f"{time.perf_counter() - began:.0f} s)", file=sys.stderr, flush=True)
        finally:
            for child in children:
                child.close()
    if not kept:
        print(f"warning: every round ran while other processes used more than {args.threshold:.0%} of the CPUs; "
              "reporting all of them", file=sys.stderr)
        kept = rounds
    rows = summarise(kept, children, args.batches)
    versions: dict[str, str] = {}
    for child in children:
        versions.update(child.ready["versions"])
    meta = {"machine": machine(), "versions": versions, "rounds_run": len(rounds), "kept": [rounds.index(r) for r in kept],
            "foreign": [r["foreign"] for r in rounds], "threshold": args.threshold,
            "wall_s": time.perf_counter() - began, **children[0].ready["info"],
            "model": str(run) if args.run else "a copy of recipes/quickstart.yaml trained for 1 epoch of 2 steps"}
    print(report(rows, meta, args.batches))
    if args.json:
        Path(args.json).write_text(json.dumps({"meta": meta, "rows": rows, "rounds": rounds}, indent=2))


def _batches(text: str) -> list[int]:
    sizes = [int(part) for part in text.split(",")]
    if any(size < 1 for size in sizes):
        raise argparse.ArgumentTypeError("batch sizes must be at least 1")
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", type=lambda s: [b for b in s.split(",") if b], default=list(BACKENDS),
                        help="Keras backends to time, comma-separated (default: jax,tensorflow,torch; '' for none)")
    parser.add_argument("--batches", type=_batches, default=[1, 64, 256], help="default: 1,64,256")
    parser.add_argument("--rounds", type=int, default=7, help="rounds to keep (default 7)")
    parser.add_argument("--max-rounds", type=int, default=20, help="give up after this many rounds (default 20)")
    parser.add_argument("--threshold", type=float, default=0.05,
                        help="drop a round when other processes used more than this share of the CPUs (default 0.05)")
    parser.add_argument("--patience", type=float, default=60.0,
                        help="seconds to wait, before each round, for a quiet second (default 60; 0: do not wait)")
    parser.add_argument("--slice", type=float, default=0.25, help="seconds per path per block (default 0.25)")
    parser.add_argument("--settle", type=float, default=0.15,
                        help="untimed seconds at the start of each child's block (default 0.15)")
    parser.add_argument("--run", help="time this run directory (default: train a quickstart copy)")
    parser.add_argument("--ablation", action="store_true",
                        help="also time other onnxruntime settings and the graph without ganctl's rewrite")
    parser.add_argument("--json", help="also write every number, round by round, to this file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    parser.add_argument("--export-variant", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.export_variant:
        export_variant(*args.export_variant)
    elif args.child:
        child_main(args.child, Path(args.run), args.batches, Path(args.workdir))
    else:
        unknown = [b for b in args.backends if b not in BACKENDS]
        if unknown:
            parser.error(f"unknown backends {unknown}; use {', '.join(BACKENDS)}")
        parent_main(args)


if __name__ == "__main__":
    main()
