"""A 10k-sample FID on Fashion-MNIST, end to end, as ``ganctl evaluate`` computes it.

Target: ``ganctl evaluate GENERATOR.onnx -m fid --features '{plugin: classifier, model:
CLASSIFIER_RUN}' --n 10000`` in under 60 s on the reference machine (2 CPU cores), with nothing
cached: read the real data (the Fashion-MNIST train split, from the run's ``data:`` section) and
choose 10k images, draw 10k images from the generator's ONNX export (onnxruntime), extract the
classifier's features of both sets (its ONNX export, onnxruntime, in batches), and the FID.

What is timed, in this process, with ganctl.evaluation's own functions (``subject_from_onnx``
or ``subject_from_run``, then ``evaluate`` with one ``fid`` request), each evaluation from a
new subject, as a new ``ganctl evaluate`` would do:

- ``onnxruntime, cold``: a new, empty ``GANCTL_CACHE_DIR``, so the real features are extracted;
- ``onnxruntime, warm``: right after, the same cache: the real features come from it (what a
  second ``ganctl evaluate`` of another run on the same data costs);
- ``Keras, cold``: the baseline, the generator sampled by Keras from the run directory's newest
  checkpoint (``ganctl evaluate RUN_DIR``), on the run's backend unless ``--backend``; an empty
  cache too. Its FID must agree with the onnxruntime one (the export matches Keras to ~1e-4);
- ``ganctl evaluate``: the command itself, a new process, empty cache (start-up, imports and
  plugin loading included); ``--no-cli`` leaves it out.

Each in-process evaluation is split into stages, from wrappers around the subject's ``sample``,
a ``RealData`` subclass and the extractor plugin's ``extract`` (ganctl.evaluation is not
modified): opening the generator, set-up (the metric and the extractor: its ONNX session and
sha256), data (reading the dataset and choosing the real images), generation, real features,
fake features, and the FID itself.

Before the rounds, one untimed evaluation of each path at a small n (a full and a last partial
generation batch, so Keras compiles both shapes) imports the libraries and compiles; its times
are printed as the first evaluation in a process. Then ``--rounds`` rounds, the order of the
paths reversed every other round so that load from other processes hits them alike; the table
gives median, min and max, and the Keras / onnxruntime ratio is paired within rounds. Each round
also records the load average and the share of the CPUs other processes used during it (from
/proc/stat, less this process and its children): onnxruntime's spinning threads slow down by
2-3x when another process wants the same cores, so read the numbers with that share.

Models: ``--generator RUN_DIR`` (a Fashion-MNIST generator run with ``exports/generator.onnx``)
and ``--classifier RUN_DIR`` (a classifier run with ``exports/classifier.onnx``). Without them
the script trains its own first, in a temporary folder: recipes/fashion-mnist-dcgan.yaml and
recipes/fashion-mnist-classifier.yaml for 1 epoch of 2 steps (both recipes export ONNX). Speed
does not depend on how well they are trained: the networks have the recipes' shapes, and the
work per image is the same; only the FID's value means nothing then. It follows the recipes as
they are now (the generator's size is most of the time: it prints each model's settings), so
re-run it when they change.

Usage:
    python bench/evaluate.py                       # trains both models, then 3 rounds at n=10000
    python bench/evaluate.py --generator runs/fashion-mnist-dcgan-... --classifier runs/fashion-mnist-classifier-...
    python bench/evaluate.py --quick               # smoke run: n=2000, 1 round
    python bench/evaluate.py --rounds 5 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import harness  # bench/harness.py (scripts run as python bench/NAME.py)
import numpy as np

from ganctl.console import load_plugins
from ganctl.evaluation.metrics import evaluate, request
from ganctl.evaluation.real import RealData
from ganctl.evaluation.subjects import subject_from_onnx, subject_from_run
from ganctl.runs.rundir import export_path
from ganctl.sampling import BATCH

TARGET_S = 60.0
TARGET_N = 10_000
STAGES = ("open", "set-up", "data", "generation", "real features", "fake features", "fid")
STAGE_NOTES = {
    "open": "load the generator (ONNX session, or Keras model and checkpoint)",
    "set-up": "the metric and the extractor (classifier ONNX session, sha256)",
    "data": "read the dataset, choose the real images",
    "generation": "draw the generated images",
    "real features": "classifier features of the real images (or the cache)",
    "fake features": "classifier features of the generated images",
    "fid": "statistics and Frechet distance",
}
CASES = {
    "onnx cold": "onnxruntime, cold (real features extracted)",
    "onnx warm": "onnxruntime, warm (real features cached)",
    "keras cold": "Keras, cold (baseline: ganctl evaluate RUN_DIR)",
    "cli cold": "ganctl evaluate GEN.onnx, new process, cold",
}


# -- the models -----------------------------------------------------------------------------------


def export_of(run: Path, name: str, what: str) -> Path:
    path = export_path(run, name)
    if not path.is_file():
        raise SystemExit(f"{run} has no {path.relative_to(run)}: give a {what} run with an ONNX export "
                         f"(ganctl export {run} --onnx).")
    return path


def model_of(run: Path) -> dict[str, Any]:
    """The ``model:`` section of a run's recipe.yaml (what was measured: the recipes change)."""
    import yaml

    try:
        return dict(yaml.safe_load((run / "recipe.yaml").read_text())["model"])
    except (OSError, KeyError, TypeError, yaml.YAMLError):
        return {}


def described(model: dict[str, Any]) -> str:
    keys = ("latent_dim", "filters", "conditional", "features")
    return f"{model.get('plugin', '?')} (" + ", ".join(f"{k} {model[k]}" for k in keys if k in model) + ")"


# -- one evaluation, in stages --------------------------------------------------------------------


class Clock:
    """Seconds per stage of one evaluation."""

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(STAGES, 0.0)
        self.real_done = False  # extract() calls after the real features are the generated images'

    @contextmanager
    def stage(self, name: str):
        began = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - began


class TimedRealData(RealData):
    """``RealData`` that times reading the data and the real features (``clock`` set after creation)."""

    clock: Clock

    def load(self, host):
        with self.clock.stage("data"):
            return super().load(host)

    def features(self, extractor, host, use_cache=True):
        timed_extract(extractor.plugin, self.clock)
        data_before = self.clock.seconds["data"]
        began = time.perf_counter()
        found = super().features(extractor, host, use_cache)
        reading = self.clock.seconds["data"] - data_before
        self.clock.seconds["real features"] += time.perf_counter() - began - reading
        self.clock.real_done = True
        return found


def timed_extract(plugin: Any, clock: Clock) -> None:
    """Count the extractor's batches after the real features as the generated images' features."""
    extract = plugin.extract
    if getattr(extract, "timed_by_bench", False):
        return

    def timed(images):
        if not clock.real_done:
            return extract(images)
        with clock.stage("fake features"):
            return extract(images)

    timed.timed_by_bench = True  # type: ignore[attr-defined]
    plugin.extract = timed


def evaluate_once(path: str, source: Path, features: dict[str, Any], host: Any, n: int, seed: int,
                  cache: Path, backend: str | None) -> dict[str, Any]:
    """One FID evaluation of ``source`` by ``path`` ("onnx" or "keras"), with ``cache`` as GANCTL_CACHE_DIR."""
    os.environ["GANCTL_CACHE_DIR"] = str(cache)  # ganctl.fsutil.cache_dir() reads it on every call
    clock = Clock()
    began = time.perf_counter()
    with clock.stage("open"):
        subject = (subject_from_onnx(source) if path == "onnx"
                   else subject_from_run(source, host, backend))
    sample = subject.sample

    def timed_sample(count: int, sample_seed: int):
        with clock.stage("generation"):
            return sample(count, sample_seed)

    subject.sample = timed_sample  # type: ignore[method-assign]
    real = TimedRealData(subject.data, n, seed)
    real.clock = clock
    [result] = evaluate(subject, [request(host, "fid", features)], host, n=n, seed=seed,
                                   real=real)
    total = time.perf_counter() - began
    stages = clock.seconds
    stages["fid"] = result.seconds - stages["data"] - stages["real features"] - stages["fake features"]
    stages["set-up"] = total - stages["open"] - stages["generation"] - result.seconds
    return {"seconds": total, "stages": dict(stages), "fid": result.values["fid"], "engine": subject.engine,
            "real_features_cached": result.protocol["real_features_cached"]}


def cli_once(onnx: Path, features: dict[str, Any], n: int, seed: int, cache: Path) -> dict[str, Any]:
    """``ganctl evaluate ONNX -m fid --features ... --n N --json`` as a new process, timed from launch to exit."""
    done = harness.run(harness.ganctl("evaluate", str(onnx), "-m", "fid", "--features", json.dumps(features),
                                      "--n", str(n), "--seed", str(seed), "--no-floor", "--json"),
                       {"GANCTL_CACHE_DIR": str(cache)})  # the floor (on by default) would extract real features first
    [record] = json.loads(done.stdout)
    return {"seconds": done.seconds, "fid": record["values"]["fid"],
            "real_features_cached": record["protocol"]["real_features_cached"]}


# -- report ---------------------------------------------------------------------------------------


def relative(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), abs(b), 1e-300)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generator", type=Path, help="a Fashion-MNIST generator run with exports/generator.onnx "
                        "[default: train one, 1 epoch of 2 steps]")
    parser.add_argument("--classifier", type=Path, help="a Fashion-MNIST classifier run with "
                        "exports/classifier.onnx [default: train one, 1 epoch of 2 steps]")
    parser.add_argument("--n", type=int, default=TARGET_N, help=f"real and generated images each ({TARGET_N})")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every path (3)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the latents and of the real images (0)")
    parser.add_argument("--backend", help="Keras backend of the baseline [default: the run's]")
    parser.add_argument("--no-cli", action="store_true", help="leave out the ganctl evaluate process")
    parser.add_argument("--quick", action="store_true", help="smoke run: --n 2000, 1 round")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if args.quick:
        args.n, args.rounds = 2000, 1
    if args.n < 2 or args.rounds < 1:
        parser.error("--n must be at least 2 and --rounds at least 1")

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="ganctl-bench-evaluate-") as scratch_name:
        scratch = Path(scratch_name)
        os.environ["GANCTL_CACHE_DIR"] = str(scratch / "cache-process")
        trained: dict[str, float] = {}
        if args.generator is None:
            args.generator = scratch / "generator"
            print("training a generator: recipes/fashion-mnist-dcgan.yaml, 1 epoch of 2 steps ...", flush=True)
            trained["generator"] = harness.train_briefly("recipes/fashion-mnist-dcgan.yaml", args.generator,
                                                         {"GANCTL_CACHE_DIR": str(scratch / "cache-train")})
        if args.classifier is None:
            args.classifier = scratch / "classifier"
            print("training a classifier: recipes/fashion-mnist-classifier.yaml, 1 epoch of 2 steps ...", flush=True)
            trained["classifier"] = harness.train_briefly("recipes/fashion-mnist-classifier.yaml", args.classifier,
                                                          {"GANCTL_CACHE_DIR": str(scratch / "cache-train")})
        onnx = export_of(args.generator, "generator", "generator")
        export_of(args.classifier, "classifier", "classifier")
        features = {"plugin": "classifier", "model": str(args.classifier)}
        models = {"generator": model_of(args.generator), "classifier": model_of(args.classifier)}
        print(f"generator {args.generator}: {described(models['generator'])}; classifier {args.classifier}: "
              f"{described(models['classifier'])}", flush=True)
        sources = {"onnx": onnx, "keras": args.generator}
        host = load_plugins()

        # Untimed: imports, sessions, compilation (a full and a last partial generation batch).
        batch = BATCH
        warm_n = args.n if args.n <= batch else batch + args.n % batch
        first = {}
        for path in ("onnx", "keras"):
            first[path] = evaluate_once(path, sources[path], features, host, warm_n, args.seed,
                                        scratch / f"cache-first-{path}", args.backend)
            print(f"first evaluation in this process, {path}, n={warm_n}: {first[path]['seconds']:.1f} s "
                  f"({first[path]['engine']})", flush=True)

        rounds: list[dict[str, Any]] = []
        for index in range(args.rounds):
            order = ["onnx", "keras", "cli"] if index % 2 == 0 else ["cli", "keras", "onnx"]
            if args.no_cli:
                order.remove("cli")
            found: dict[str, Any] = {"load": os.getloadavg()[0]}
            load = harness.Load()  # other processes: all but this one and the ganctl evaluate it waits for
            for path in order:
                cache = scratch / f"cache-{index}-{path}"
                if path == "onnx":
                    found["onnx cold"] = evaluate_once("onnx", onnx, features, host, args.n, args.seed, cache,
                                                       args.backend)
                    found["onnx warm"] = evaluate_once("onnx", onnx, features, host, args.n, args.seed, cache,
                                                       args.backend)
                elif path == "keras":
                    found["keras cold"] = evaluate_once("keras", args.generator, features, host, args.n, args.seed,
                                                        cache, args.backend)
                else:
                    found["cli cold"] = cli_once(onnx, features, args.n, args.seed, cache)
            found["others"] = load.foreign()
            rounds.append(found)
            others = "?" if found["others"] is None else f"{100 * found['others']:.0f} %"
            print(f"round {index + 1}/{args.rounds} (load {found['load']:.2f}, other processes {others}): "
                  + ", ".join(f"{case} {found[case]['seconds']:.1f} s" for case in CASES if case in found),
                  flush=True)
    load_after = os.getloadavg()

    # Checks: what was cached, and that every path computed the same FID.
    for found in rounds:
        for case in CASES:
            if case in found and found[case]["real_features_cached"] != (case == "onnx warm"):
                raise SystemExit(f"{case}: the real features were {'' if found[case]['real_features_cached'] else 'not '}"
                                 "cached; the cache did not behave as this benchmark assumes.")
    keras_vs_onnx = max(relative(r["keras cold"]["fid"], r["onnx cold"]["fid"]) for r in rounds)
    warm_vs_cold = max(relative(r["onnx warm"]["fid"], r["onnx cold"]["fid"]) for r in rounds)
    cli_vs_onnx = (max(relative(r["cli cold"]["fid"], r["onnx cold"]["fid"]) for r in rounds)
                   if not args.no_cli else None)

    cases = {case: harness.summary([r[case]["seconds"] for r in rounds]) for case in CASES if case in rounds[0]}
    stages = {case: {stage: harness.summary([r[case]["stages"][stage] for r in rounds]) for stage in STAGES}
              for case in ("onnx cold", "onnx warm", "keras cold")}
    ratio = [r["keras cold"]["seconds"] / r["onnx cold"]["seconds"] for r in rounds]
    generation_ratio = [r["keras cold"]["stages"]["generation"] / r["onnx cold"]["stages"]["generation"]
                        for r in rounds]
    decisive = "cli cold" if "cli cold" in cases else "onnx cold"
    verdict_s = cases[decisive]["median"]

    import keras
    import onnxruntime

    info = {**harness.machine(),
            "numpy": np.__version__, "onnxruntime": onnxruntime.__version__, "keras": keras.__version__,
            "keras_engine": rounds[0]["keras cold"]["engine"], "onnx_engine": rounds[0]["onnx cold"]["engine"],
            "load_before": load_before, "load_after": load_after}

    print()
    print(f"FID of {args.n} generated vs {args.n} real Fashion-MNIST images, classifier features; "
          f"{len(rounds)} round(s); generator {described(models['generator'])}, classifier "
          f"{described(models['classifier'])}")
    print()
    print(f"| {'case':50} | {'median s':>8} | {'min s':>6} | {'max s':>6} | runs |")
    print(f"| {'-' * 50} | {'-' * 7}: | {'-' * 5}: | {'-' * 5}: | ---: |")
    for case, s in cases.items():
        print(f"| {CASES[case]:50} | {s['median']:8.2f} | {s['min']:6.2f} | {s['max']:6.2f} | {s['runs']:4} |")
    print()
    print("stages (median s):")
    print()
    print(f"| {'stage':14} | {'onnx cold':>9} | {'onnx warm':>9} | {'keras cold':>10} | what |")
    print(f"| {'-' * 14} | {'-' * 8}: | {'-' * 8}: | {'-' * 9}: | --- |")
    for stage in STAGES:
        print(f"| {stage:14} | {stages['onnx cold'][stage]['median']:9.2f} | "
              f"{stages['onnx warm'][stage]['median']:9.2f} | {stages['keras cold'][stage]['median']:10.2f} | "
              f"{STAGE_NOTES[stage]} |")
    print()
    print(f"first evaluation in this process (imports, sessions, compilation), n={warm_n}: "
          f"onnxruntime {first['onnx']['seconds']:.1f} s, Keras {first['keras']['seconds']:.1f} s")
    if trained:
        print("training the models (untimed setup): "
              + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in trained.items()))
    print(f"Keras / onnxruntime, cold, paired per round: {statistics.median(ratio):.2f}x "
          f"[{min(ratio):.2f}, {max(ratio):.2f}]; generation alone: {statistics.median(generation_ratio):.2f}x "
          f"[{min(generation_ratio):.2f}, {max(generation_ratio):.2f}]")
    print(f"fid {rounds[0]['onnx cold']['fid']:.6g}; relative difference Keras vs onnxruntime {keras_vs_onnx:.1e}, "
          f"warm vs cold {warm_vs_cold:.1e}" + (f", ganctl evaluate vs in-process {cli_vs_onnx:.1e}"
                                                 if cli_vs_onnx is not None else ""))
    if keras_vs_onnx > 1e-3:
        print(f"WARNING: the Keras and onnxruntime FIDs differ by {keras_vs_onnx:.1e} (relative), more than the "
              "1e-3 an export matching Keras to ~1e-4 gives: check the export (ganctl export RUN --onnx).")
    if args.n == TARGET_N:
        verdict = "met" if verdict_s < TARGET_S else "NOT met"
        print(f"target: a {TARGET_N}-sample FID in < {TARGET_S:.0f} s, cold, onnxruntime path: {verdict} "
              f"(median {verdict_s:.1f} s, {CASES[decisive]})")
    else:
        print(f"target: a {TARGET_N}-sample FID in < {TARGET_S:.0f} s: not checked (this run used --n {args.n})")
    print(f"machine: {info['cpus']} CPUs, {info['cpu_model']}; numpy {info['numpy']}, onnxruntime "
          f"{info['onnxruntime']}, keras {info['keras']} ({info['keras_engine']})")
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f}; per round "
          + ", ".join(f"{r['load']:.2f}" for r in rounds) + "; other processes' share of the CPUs per round "
          + ", ".join("?" if r["others"] is None else f"{100 * r['others']:.0f} %" for r in rounds))
    if args.json:
        results = {"n": args.n, "rounds": len(rounds), "seed": args.seed, "generator": str(args.generator),
                   "classifier": str(args.classifier), "models": models, "trained_here": trained, "first_n": warm_n,
                   "first": first, "cases": cases, "stages": stages,
                   "keras_over_onnx": harness.summary(ratio),
                   "generation_keras_over_onnx": harness.summary(generation_ratio),
                   "fid": rounds[0]["onnx cold"]["fid"],
                   "relative_difference": {"keras_vs_onnx": keras_vs_onnx, "warm_vs_cold": warm_vs_cold,
                                           "cli_vs_onnx": cli_vs_onnx},
                   "target": {"n": TARGET_N, "seconds": TARGET_S, "case": decisive, "median_s": verdict_s,
                              "met": args.n == TARGET_N and verdict_s < TARGET_S},
                   "per_round": rounds}
        args.json.write_text(json.dumps({"machine": info, "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
