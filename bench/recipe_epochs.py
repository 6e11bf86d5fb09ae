"""How long a shipped recipe's epochs take, run exactly as a user runs it.

Recipe comments quote these figures ("about N minutes per epoch on 2 CPU cores"): they must be
measured here, on an idle machine, and not while tests or another benchmark share the cores.
The script refuses to start when the 1-minute load average says the machine is busy (override
with --busy-ok, and the figure is then marked as taken on a busy machine).

Each backend runs `ganctl train RECIPE --set train.epochs=E --set export=[]` in a fresh process
(plain progress lines on a pipe). The time of each `epoch k/E done` line is taken as it arrives:
epoch 1 includes compiling, later epochs are warm. The quickstart's own epochs, measured in the
same run, are the baseline: their ratio shows how much heavier the recipe is per image, whatever
the machine.

    python bench/recipe_epochs.py recipes/fashion-mnist-dcgan.yaml --epochs 2 --backends jax tensorflow
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import harness  # bench/harness.py (scripts run as python bench/NAME.py)
import yaml

DONE = re.compile(r"^epoch (\d+)/(\d+) done")
BASELINE = harness.ROOT / "recipes" / "quickstart.yaml"


def steps_and_batch(recipe: Path, backend: str) -> tuple[int, int]:
    """Steps per epoch and batch size, as ganctl resolves them (through `ganctl recipe show`)."""
    train = json.loads(harness.run(harness.ganctl("recipe", "show", str(recipe), "--json")).stdout)["train"]
    examples = json.loads(harness.run(harness.ganctl("data", "info", str(recipe), "--json")).stdout)["examples"]
    return train.get("steps_per_epoch") or examples // train["batch_size"], train["batch_size"]


def epochs_of(recipe: Path, backend: str, epochs: int, scratch: str) -> dict[str, Any]:
    """Seconds of each epoch (wall time between `done` lines) and of the whole command."""
    env = {**os.environ, "KERAS_BACKEND": backend, "GANCTL_LOAD_PLUGINS": ""}
    out = Path(scratch) / f"{recipe.stem}-{backend}"
    command = harness.ganctl("train", str(recipe), "--out", str(out),
                             "--set", f"train.epochs={epochs}", "--set", "export=[]", "--set", "metrics=[]")
    began = time.perf_counter()
    marks = [began]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=harness.ROOT,
                          env=env) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            if DONE.match(line):
                marks.append(time.perf_counter())
    if proc.returncode != 0 or len(marks) != epochs + 1:
        raise SystemExit(f"{' '.join(command)} failed (exit {proc.returncode})")
    return {"epochs": [b - a for a, b in zip(marks, marks[1:], strict=False)],
            "command": time.perf_counter() - began}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe", type=Path)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--backends", nargs="+", default=["jax"])
    parser.add_argument("--busy-ok", action="store_true", help="measure even when the machine is busy")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    load, busy = harness.refuse_if_busy(args.busy_ok)
    recipe = args.recipe.resolve()
    name = yaml.safe_load(recipe.read_text())["name"]
    results: dict[str, Any] = {"recipe": name, "machine": harness.machine(), "load_average_at_start": load,
                               "busy": busy, "backends": {}}
    with tempfile.TemporaryDirectory() as scratch:
        for backend in args.backends:
            steps, batch = steps_and_batch(recipe, backend)
            base_steps, base_batch = steps_and_batch(BASELINE, backend)
            measured = epochs_of(recipe, backend, args.epochs, scratch)
            baseline = epochs_of(BASELINE, backend, 3, scratch)
            warm = measured["epochs"][1:] or measured["epochs"]
            base_warm = baseline["epochs"][1:]
            rate = steps * batch / statistics.median(warm)
            base_rate = base_steps * base_batch / statistics.median(base_warm)
            results["backends"][backend] = {
                "first_epoch_s": measured["epochs"][0], "warm_epoch_s": statistics.median(warm),
                "samples_per_s": rate, "command_s": measured["command"],
                "quickstart_samples_per_s": base_rate, "quickstart_over_recipe": base_rate / rate,
            }
    print(f"{name}, {args.epochs} epochs; 1-minute load average at start {load:.2f}"
          + (" (BUSY: not a figure of ganctl)" if busy else ""))
    print("| backend | first epoch s | warm epoch s | samples/s | command s | quickstart samples/s | ratio |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for backend, r in results["backends"].items():
        print(f"| {backend} | {r['first_epoch_s']:.1f} | {r['warm_epoch_s']:.1f} | {r['samples_per_s']:.0f} | "
              f"{r['command_s']:.1f} | {r['quickstart_samples_per_s']:.0f} | {r['quickstart_over_recipe']:.1f}x |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
