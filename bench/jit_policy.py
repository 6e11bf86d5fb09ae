"""Which compilation mode is fastest per backend: the measurement behind `train.jit: auto`.

For each backend (one child process each, since KERAS_BACKEND is read once per process) it
times ganctl's engine on the quickstart DCGAN (8x8 digits, batch 32) in every compilation mode
that backend offers, interleaved over rounds, and prints samples/s (median) per mode with the
ratio to the mode `auto` picks.

    python bench/jit_policy.py [--rounds 5] [--steps 40] [--backends jax,tensorflow,torch]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import harness  # bench/harness.py (scripts run as python bench/NAME.py)

MODES = {
    "jax": ["jit", "eager"],
    "tensorflow": ["tf.function", "tf.function+xla", "eager"],
    "torch": ["eager", "torch.compile"],
}
AUTO = {"jax": "jit", "tensorflow": "tf.function", "torch": "eager"}
BATCH = 32


def child(backend: str, rounds: int, steps: int) -> None:
    os.environ["KERAS_BACKEND"] = backend
    import numpy as np

    from ganctl.engine.backends import activate

    activate(backend)
    from ganctl.engine import engine_for
    from ganctl.plugins import get_host
    from ganctl.recipe.load import load_recipe
    from ganctl.session.assemble import build_model
    from ganctl.session.optimizers import make_optimizer

    module = engine_for(backend)
    host = get_host()
    recipe = load_recipe("recipes/quickstart.yaml", host)
    from ganctl.api import DataSpec

    spec = DataSpec(height=8, width=8, channels=1, num_classes=10)
    engines = {}
    for mode in MODES[backend]:
        model = build_model(recipe, spec, host)
        optimizers = {p: make_optimizer(recipe.train.optimizer_for(p), p) for p in model.players}
        engine = module.Engine(model, optimizers, jit=mode not in ("eager",))
        if mode == "tf.function+xla":
            engine.xla = True
        engines[mode] = engine
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (BATCH, 8, 8, 1)).astype(np.float32)
    labels = (np.arange(BATCH) % 10).astype(np.int32)

    def run(engine, n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            for player in ("discriminator", "generator"):
                engine.step(player, images, labels, rng.standard_normal((BATCH, 32), dtype=np.float32))
        return time.perf_counter() - start

    for engine in engines.values():
        run(engine, 3)  # compile
    results: dict[str, list[float]] = {mode: [] for mode in engines}
    for _ in range(rounds):
        for mode, engine in engines.items():
            results[mode].append(BATCH * steps / run(engine, steps))
    print(json.dumps(results))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--backends", default="jax,tensorflow,torch")
    parser.add_argument("--child")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.rounds, args.steps)
        return
    print(f"| backend | mode | samples/s (median of {args.rounds}) | vs auto's choice |")
    print("| --- | --- | ---: | ---: |")
    for backend in args.backends.split(","):
        done = harness.run(
            [sys.executable, __file__, "--child", backend, "--rounds", str(args.rounds), "--steps", str(args.steps)],
            env={"GANCTL_LOAD_PLUGINS": ""}, check=False,
        )
        if done.returncode != 0:
            print(f"| {backend} | failed: {done.stderr.strip().splitlines()[-1]} | | |")
            continue
        results = json.loads(done.stdout.strip().splitlines()[-1])
        medians = {mode: statistics.median(values) for mode, values in results.items()}
        for mode, value in medians.items():
            marker = " (auto)" if mode == AUTO[backend] else ""
            print(f"| {backend} | {mode}{marker} | {value:.0f} | {value / medians[AUTO[backend]]:.2f} |")


if __name__ == "__main__":
    main()
