"""Fused steps: training samples/s at each ``train.steps_per_execution`` k, against k = 1.

The measurement behind the key's default. For each backend (one child process each, since the
Keras backend is fixed per process) and each case, the child builds one session per k with
``open_session`` (the recipe with ``train.steps_per_execution=k``) and steps it with the
trainer's own :meth:`Trainer.train_steps`, the loop's path: chunks of k steps, each step with its
own batch of the recipe's data and its own latents, every logged value back on the host as a
float. Cases: the quickstart's conditional dcgan (8x8 digits, batch 32) and, when its data is
installed (``apt-get install dataset-fashion-mnist``), recipes/fashion-mnist-dcgan.yaml (28x28).

Method: compilation is not timed (each k runs a few chunks first). A round runs a slice of
``--steps`` steps for every k of a case, in an order rotated each round; the ratio to k = 1 is
paired, computed within each round, and summarised as median [min, max] over rounds. Children run
one after another. Refuses a busy machine (1-minute load average) unless ``--busy-ok``.

    python bench/steps_per_execution.py                      # k = 1, 2, 4, 8, 16; 5 rounds of 64 steps
    python bench/steps_per_execution.py --ks 1,4 --rounds 2 --steps 8 --cases quickstart --busy-ok  # smoke
    python bench/steps_per_execution.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import harness  # bench/harness.py (scripts run as python bench/NAME.py)

FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
CASES = {
    "quickstart": ("recipes/quickstart.yaml", "8x8 conditional dcgan, batch 32"),
    "fashion-mnist": ("recipes/fashion-mnist-dcgan.yaml", "28x28 dcgan"),
}
BACKENDS = ("jax", "tensorflow")


def available_cases(wanted: list[str]) -> list[str]:
    """The cases asked for whose data is here (Fashion-MNIST is a Debian package)."""
    return [case for case in wanted if case != "fashion-mnist" or FASHION_MNIST.is_dir()]


def child_main(backend: str, cases: list[str], ks: list[int]) -> None:
    """Build a trainer per (case, k) and warm it up; then time one slice per request."""

    def build() -> tuple[dict[str, Any], harness.Answer]:
        from ganctl.engine.backends import activate

        activate(backend)
        from ganctl.console import load_plugins
        from ganctl.recipe.load import load_recipe
        from ganctl.session.assemble import open_session
        from ganctl.training.loop import Trainer
        from ganctl.training.progress import Reporter

        began = time.perf_counter()
        host = load_plugins()
        trainers: dict[tuple[str, int], Any] = {}
        batches: dict[str, list[Any]] = {}
        info: dict[str, Any] = {}
        for case in cases:
            for k in ks:
                recipe = load_recipe(harness.ROOT / CASES[case][0], host, [f"train.steps_per_execution={k}"])
                session = open_session(recipe, host, backend)
                trainers[(case, k)] = Trainer(session, Reporter(), host)
            session = trainers[(case, ks[0])].session
            size = session.recipe.train.batch_size
            batches[case] = list(session.dataset.batches(size, seed=0, epoch=0))[:max(ks)]
            info[case] = {"batch": size, "jit": session.jit}
        step = {case: 0 for case in cases}

        def run(case: str, k: int, steps: int) -> float:
            """``steps`` steps (whole chunks of k) of the (case, k) trainer; the seconds they took."""
            trainer = trainers[(case, k)]
            schedule = trainer.model.schedule()
            data = batches[case]
            start = time.perf_counter()
            for first in range(step[case], step[case] + steps, k):
                chunk = [(data[(first + i) % len(data)], None) for i in range(k)]
                for logs in trainer.train_steps(first, chunk, schedule):
                    if not all(math.isfinite(value) for value in logs.values()):
                        raise SystemExit(f"{case} at k={k}: non-finite {logs}")
            seconds = time.perf_counter() - start
            step[case] += steps
            return seconds

        for (case, k) in trainers:  # compile: a few chunks each
            run(case, k, 2 * k)
        ready = {"info": info, "versions": harness.versions(["keras", backend]),
                 "setup_s": time.perf_counter() - began}

        def answer(request: dict[str, Any]) -> dict[str, Any]:
            k = request["k"]
            steps = max(k, request["steps"] // k * k)
            return {"seconds": run(request["case"], k, steps), "steps": steps}

        return ready, answer

    harness.serve(build)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ks", default="1,2,4,8,16", help="the values of k, comma-separated (1 is always added)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=64, help="steps per slice (rounded to whole chunks)")
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--busy-ok", action="store_true", help="measure on a busy machine (figures are marked)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    ks = sorted({1, *(int(k) for k in args.ks.split(","))})
    cases = available_cases(args.cases.split(","))
    if args.child:
        child_main(args.child, cases, ks)
        return
    if any(k < 1 for k in ks):
        raise SystemExit("every k must be 1 or more")
    load, busy = harness.refuse_if_busy(args.busy_ok)
    skipped = [c for c in args.cases.split(",") if c not in cases]
    if skipped:
        print(f"skipped {', '.join(skipped)}: {FASHION_MNIST} is absent (apt-get install dataset-fashion-mnist)",
              file=sys.stderr)
    report: dict[str, Any] = {"machine": harness.machine(), "load_average": load, "busy": busy, "ks": ks,
                              "rounds": args.rounds, "steps": args.steps, "results": []}
    print(f"| backend | case | k | samples/s (median of {args.rounds}) | vs k = 1: median [min, max] |")
    print("| --- | --- | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory() as folder:
        for backend in args.backends.split(","):
            command = [sys.executable, __file__, "--child", backend, "--ks", ",".join(map(str, ks)),
                       "--cases", ",".join(cases)]
            child = harness.start(backend, lambda command=command, backend=backend: harness.Child(
                backend, command, Path(folder) / f"{backend}.log", env={"GANCTL_LOAD_PLUGINS": "",
                                                                        "KERAS_BACKEND": backend}))
            load_share = harness.Load([child.pid])
            try:
                for case in cases:
                    rates: dict[int, list[float]] = {k: [] for k in ks}
                    for round_ in range(args.rounds):
                        for k in harness.rotated(ks, round_):
                            reply = child.ask({"case": case, "k": k, "steps": args.steps})
                            rates[k].append(child.ready["info"][case]["batch"] * reply["steps"] / reply["seconds"])
                    for k in ks:
                        ratios = [a / b for a, b in zip(rates[k], rates[1], strict=True)]
                        row = {"backend": backend, "case": case, "k": k, **harness.summary(rates[k], "_samples_s"),
                               "ratio": harness.summary(ratios)}
                        report["results"].append(row)
                        print(f"| {backend} | {case} | {k} | {statistics.median(rates[k]):.0f} | "
                              f"{statistics.median(ratios):.2f} [{min(ratios):.2f}, {max(ratios):.2f}] |", flush=True)
                report.setdefault("foreign_cpu_share", {})[backend] = load_share.foreign()
                report.setdefault("versions", {})[backend] = child.ready["versions"]
            finally:
                child.close()
    if busy:
        print(f"(measured on a busy machine: 1-minute load average {load:.2f})")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
