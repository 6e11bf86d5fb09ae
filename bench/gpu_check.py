"""GPU check: does ganctl train, export and infer on this machine's NVIDIA GPU(s)? One table.

On a machine with an NVIDIA GPU it runs, briefly (one epoch of ``--steps`` steps), the quickstart
and the Fashion-MNIST DCGAN recipes on each installed backend, in float32 and with mixed precision
(``train.precision``: mixed_bfloat16, and mixed_float16 with loss scaling), with 2-device data
parallelism on JAX where there are 2 devices (``train.distribution.devices=2``), then times the
quickstart's ONNX export on onnxruntime's CUDA provider (``ganctl bench --provider cuda``). Each
cell says ok with the seconds from launch to exit (start-up and compilation included: this is a
check, not a benchmark), FAILED with the error's last line, or why it was not run (a backend or
a recipe setting that is not available, one device only, no Fashion-MNIST data). It also prints
``ganctl doctor``'s view of each backend and onnxruntime on the GPU.

On a machine without an NVIDIA GPU it says so and exits 0 (CI runs it in that mode).
Exit status: 0 when nothing failed, 1 otherwise.

Usage:
    python bench/gpu_check.py                   # every check (a few minutes on a GPU)
    python bench/gpu_check.py --steps 5 --backends jax --json out.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import harness  # bench/harness.py (scripts run as python bench/NAME.py)

RECIPES = {"quickstart": "recipes/quickstart.yaml", "fashion-mnist": "recipes/fashion-mnist-dcgan.yaml"}
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


@dataclass
class Check:
    """One cell of the table: what runs, or why it does not."""

    recipe: str
    backend: str
    precision: str
    devices: int
    skip: str = ""  # why it is not run ("" when it is)

    @property
    def column(self) -> str:
        return self.precision + (f", {self.devices} devices" if self.devices > 1 else "")


def settings() -> dict[str, bool]:
    """Which of the issue's recipe settings this ganctl has (they are built alongside this script)."""
    from ganctl.recipe.schema import TrainConfig

    return {key: key in TrainConfig.model_fields for key in ("precision", "distribution")}


def plan(backends: list[str], jax_gpus: int, have: dict[str, bool], fashion: bool) -> list[Check]:
    """Every training check, in the table's order; those that cannot run carry the reason."""
    checks = []
    for recipe in RECIPES:
        for backend in backends:
            for precision in PRECISIONS:
                check = Check(recipe, backend, precision, 1)
                if precision != "float32" and not have["precision"]:
                    check.skip = "not available (no train.precision in this ganctl)"
                elif recipe == "fashion-mnist" and not fashion:
                    check.skip = "no data (apt-get install dataset-fashion-mnist)"
                checks.append(check)
        check = Check(recipe, "jax", "float32", 2)
        if "jax" not in backends:
            check.skip = "jax not checked"
        elif not have["distribution"]:
            check.skip = "not available (no train.distribution in this ganctl)"
        elif jax_gpus < 2:
            check.skip = f"not run: JAX sees {jax_gpus} GPU{'s' if jax_gpus != 1 else ''}"
        elif recipe == "fashion-mnist" and not fashion:
            check.skip = "no data (apt-get install dataset-fashion-mnist)"
        checks.append(check)
    return checks


def train(check: Check, out: Path, steps: int) -> tuple[str, float]:
    """Train one check; ("ok", seconds) or ("FAILED: last line", seconds)."""
    args = ["train", RECIPES[check.recipe], "--backend", check.backend, "--out", str(out), "-q",
            "--set", "train.epochs=1", "--set", f"train.steps_per_epoch={steps}"]
    if check.precision != "float32":
        args += ["--set", f"train.precision={check.precision}"]
    if check.devices > 1:
        args += ["--set", f"train.distribution.devices={check.devices}"]
    done = harness.run(harness.ganctl(*args), check=False)
    if done.returncode == 0:
        return "ok", done.seconds
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    return f"FAILED: {lines[-1] if lines else f'exit {done.returncode}'}", done.seconds


def onnx_cuda(run: Path) -> str:
    """The quickstart's generator exported to ONNX, timed on onnxruntime's CUDA provider."""
    model = run / "exports" / "generator.onnx"
    if not model.exists():
        done = harness.run(harness.ganctl("export", str(run), "--format", "onnx"), check=False)
        if done.returncode != 0 or not model.exists():
            return "FAILED: export: " + (done.stderr.strip().splitlines() or ["?"])[-1]
    done = harness.run(harness.ganctl("bench", str(model), "--provider", "cuda", "--batch", "1,256",
                                      "--seconds", "1", "--json"), check=False)
    if done.returncode != 0:
        return "FAILED: " + (done.stderr.strip().splitlines() or ["?"])[-1]
    rows = json.loads(done.stdout)["results"]
    return "ok: " + ", ".join(f"batch {r['batch']} {r['samples_per_s']:,.0f} samples/s" for r in rows)


def table(results: list[tuple[Check, str]]) -> str:
    columns = list(dict.fromkeys(check.column for check, _ in results))
    rows: dict[tuple[str, str], dict[str, str]] = {}
    for check, cell in results:
        rows.setdefault((check.recipe, check.backend), {})[check.column] = cell
    out = ["| recipe | backend | " + " | ".join(columns) + " |", "| --- | --- |" + " --- |" * len(columns)]
    for (recipe, backend), cells in rows.items():
        out.append(f"| {recipe} | {backend} | " + " | ".join(cells.get(c, "") for c in columns) + " |")
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", nargs="+", default=None, help="default: every installed backend")
    parser.add_argument("--steps", type=int, default=20, help="training steps per check (default 20)")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()

    from ganctl.engine import backends as known
    from ganctl.engine import gpu
    from ganctl.inference.nvidia import gpus

    found = gpus()
    if not found:
        print("gpu_check: no NVIDIA GPU on this machine (none in /proc/driver/nvidia/gpus, nvidia-smi or "
              "/dev/nvidia*): nothing to check.")
        return 0
    print(f"gpu_check: {len(found)} NVIDIA GPU{'s' if len(found) > 1 else ''}: {', '.join(found)}")
    installed = [b for b in known.BACKENDS if known.missing(b) is None]
    chosen = [b for b in (args.backends or installed) if b in installed]
    doctor = {b: gpu.check(b) for b in chosen}
    for backend, verdict in doctor.items():
        print(f"  {backend}: " + ("on the GPU: " + ", ".join(verdict["devices"]) if verdict["usable"]  # type: ignore[arg-type]
                                  else f"cannot use the GPU: {verdict['problem']}. Fix: {verdict['fix']}"))
    jax_gpus = sum(1 for d in doctor.get("jax", {}).get("devices", []) if d.split(":")[0] in ("gpu", "cuda"))
    checks = plan(chosen, jax_gpus, settings(), FASHION_MNIST.is_dir())
    results: list[tuple[Check, str]] = []
    onnx = "not run: the quickstart did not train"
    with tempfile.TemporaryDirectory(prefix="ganctl-gpu-check-") as scratch:
        for index, check in enumerate(checks):
            if check.skip:
                results.append((check, check.skip))
                continue
            if not doctor[check.backend]["usable"]:
                results.append((check, "not run: the backend cannot use the GPU (above)"))
                continue
            run = Path(scratch) / f"run-{index}"
            status, seconds = train(check, run, args.steps)
            results.append((check, f"{status.split(':')[0]} ({seconds:.0f} s)" if status == "ok" else status))
            print(f"  {check.recipe}, {check.backend}, {check.column}: {status} ({seconds:.0f} s)",
                  file=sys.stderr, flush=True)
            if status == "ok" and check.recipe == "quickstart" and onnx.startswith("not run"):
                onnx = onnx_cuda(run)
    print()
    print(f"Training, 1 epoch of {args.steps} steps each (seconds from launch to exit, compilation included):")
    print()
    print(table(results))
    print()
    print(f"onnxruntime, CUDA provider (the quickstart's generator): {onnx}")
    if args.json:
        Path(args.json).write_text(json.dumps({"gpus": found, "doctor": doctor, "onnxruntime_cuda": onnx,
                                               "results": [{**vars(c), "result": r} for c, r in results]}, indent=2))
    failed = [r for _, r in results if r.startswith("FAILED")] + ([onnx] if onnx.startswith("FAILED") else [])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
