"""Inference speed: ganctl's ``Generator`` (onnxruntime) against Keras on the same weights.

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
graph, per sample (shapes from ONNX's shape inference at batch 1). The ceiling: the best of a
few large float32 MatMuls (2048 x 2048), in onnxruntime on the same threads as ``Generator`` and
in NumPy.

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
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import harness  # bench/harness.py (scripts run as python bench/NAME.py)
from inference_paths import (
    ABLATIONS,
    BEFORE,
    CEILING_N,
    SAMPLE,
    SESSION,
    ablation_paths,
    keras_paths,
    ort_paths,
)

BACKENDS = ("jax", "tensorflow", "torch")
ORT = "onnxruntime"
GRAPHS = {  # --ablation: the same export with only these of ganctl's rewrites (plugins/ganctl_export/_rewrite.py)
    "plain.onnx": (),
    "resize-only.onnx": ("upsampling_to_resize",),
}
WARMUP = 5


# ============================================================================================
# Setup: a quickstart-sized run, exported
# ============================================================================================


def prepare(args: argparse.Namespace, workdir: Path) -> Path:
    """The run directory to time, with exports/generator.onnx (and plain.onnx with --ablation)."""
    from ganctl.runs.rundir import export_path

    env = {"KERAS_BACKEND": "jax"}
    if args.run:
        run = Path(args.run).resolve()
    else:
        run = workdir / "run"
        print("training a copy of recipes/quickstart.yaml (1 epoch of 2 steps) ...", file=sys.stderr, flush=True)
        harness.train_briefly("recipes/quickstart.yaml", run, env)
    if not export_path(run).is_file():
        print("exporting it (ganctl export RUN --onnx) ...", file=sys.stderr, flush=True)
        harness.run(harness.ganctl("export", str(run), "--onnx"), env)
    if args.ablation:
        for name in GRAPHS:
            harness.run([sys.executable, __file__, "--export-variant", name, str(run), str(workdir / name)], env)
        old = harness.run(["git", "show", f"{BEFORE}:ganctl/inference.py"], check=False)
        if old.returncode == 0:
            (workdir / "inference_before.py").write_text(old.stdout)
    return run


def export_variant(variant: str, run: str, out: str) -> None:
    """Export ``run``'s generator as the onnx exporter does, with only the rewrites ``GRAPHS[variant]``."""
    from ganctl import exporting
    from ganctl.plugins import get_host
    from ganctl.runs.trained import open_trained

    host = get_host()
    trained = open_trained(Path(run), host)
    _, exporter = exporting.make_exporter(host, "onnx", source="bench")
    exporter.rewrites = GRAPHS[variant]
    exporter.export(exporting.export_source(trained.session, trained.checkpoint.progress.step), Path(out))


# ============================================================================================
# Children: one builds and times the onnxruntime paths (bench/inference_paths.py), one per
# backend the Keras paths
# ============================================================================================


def child_main(kind: str, run: Path, batches: list[int], workdir: Path) -> None:
    """Build and warm up, say ready; then run one block per request until the parent closes the pipe."""

    def build() -> tuple[dict[str, Any], harness.Answer]:
        began = time.perf_counter()
        if kind == ORT:
            paths, info = ort_paths(run, batches)
        elif kind.startswith("ablation:"):
            paths, info = ablation_paths(kind.removeprefix("ablation:"), run, batches, workdir)
        else:
            from ganctl.engine.backends import activate

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
        ready = {"paths": list(paths), "info": info, "per_call": per_call,
                 "versions": harness.versions(("keras", "jax", "tensorflow", "torch", "onnxruntime", "numpy")),
                 "setup_s": time.perf_counter() - began}
        i = WARMUP + 1

        def run_block(request: dict[str, Any]) -> dict[str, Any]:
            nonlocal i
            batch, calls = request["batch"], request["calls"]
            names = list(paths) if request["flip"] == 0 else list(paths)[::-1]
            # Untimed first: after another process had the CPUs, onnxruntime's first calls run 2-3x
            # slower for 50-100 ms (its threads are placed again), which would fall on whichever path
            # comes first.
            settle = time.perf_counter() + request["settle"]
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
            return {"times": times}

        return ready, run_block

    harness.serve(build)


# ============================================================================================
# Parent: start the children, interleave them, summarise
# ============================================================================================


class Child(harness.Child):
    """A child process for the onnxruntime paths, one ablation, or one Keras backend."""

    def __init__(self, kind: str, args: argparse.Namespace, run: Path, workdir: Path) -> None:
        self.kind = kind
        command = [sys.executable, __file__, "--child", kind, "--run", str(run), "--workdir", str(workdir),
                   "--batches", ",".join(map(str, args.batches))]
        super().__init__(kind, command, workdir / f"{kind}.log", {"KERAS_BACKEND": kind} if kind in BACKENDS else {})
        self.paths: list[str] = self.ready["paths"]

    def calls(self, batch: int, seconds: float) -> dict[str, int]:
        """Calls per block for each path: about ``seconds`` of them, at least one."""
        return {name: max(1, min(5000, round(seconds / max(self.ready["per_call"][f"{name}|{batch}"], 1e-6))))
                for name in self.paths}

    def run(self, batch: int, calls: dict[str, int], flip: int, settle: float) -> dict[str, list[float]]:
        return self.ask({"batch": batch, "calls": calls, "flip": flip, "settle": settle})["times"]


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
        for child in harness.rotated(children, index):  # rotate which child goes first
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
                children.append(harness.start(kind, lambda k=kind: Child(k, args, run, workdir)))
            calls = {(c.kind, b): c.calls(b, args.slice) for c in children for b in args.batches}
            load = harness.Load([os.getpid(), *(c.pid for c in children)])
            while len(kept) < args.rounds and len(rounds) < args.max_rounds:
                # a share /proc/stat cannot tell (not Linux) counts as 0: every round is kept
                before = (load.wait_until_quiet(args.threshold, args.patience) or 0.0) if args.patience > 0 else 0.0
                load.reset()
                results = one_round(children, calls, args.batches, len(rounds), args.settle)
                share = load.foreign() or 0.0
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
    meta = {"machine": harness.machine(), "versions": versions, "rounds_run": len(rounds),
            "kept": [rounds.index(r) for r in kept],
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
