"""What quantisation costs and gains, for one trained run: float32, fp16, int8-dynamic, int8-static.

    python bench/quantize.py RUN_DIR [--n N] [--seconds S] [--no-latency] [--json]

Writes the four ONNX exports with ``ganctl export`` (each quantised one checked against the
float32 generator, with a limit high enough that every one is written: this script reports the
cost, it does not judge it) into a scratch folder, then for each file:

- its size;
- FID and C2ST (ROC AUC) from ``ganctl evaluate FILE -m fid -m c2st``, all at one ``n``, and the
  floor (real held-out images scored the same way, ``--floor``), which caps ``n`` at the
  held-out images (360 for the quickstart's digits);
- median latency at batch sizes 1 and 256 from ``ganctl bench FILE...`` (all files side by
  side, interleaved), unless ``--no-latency``.

Run it on an idle machine for the latency; the quality columns do not depend on the load.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import harness  # bench/harness.py (scripts run as python bench/NAME.py)

MODES = ("fp16", "int8-dynamic", "int8-static")
BATCHES = "1,256"


def ganctl_json(*args: str) -> Any:
    done = subprocess.run(harness.ganctl(*args), cwd=harness.ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"ganctl {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout) if done.stdout.strip().startswith(("[", "{")) else done.stdout


def export_all(run: Path, folder: Path, quality_n: int | None) -> dict[str, Path]:
    """The float32 export and one per mode, written into ``folder``."""
    files = {"float32": folder / "generator.onnx"}
    ganctl_json("export", str(run), "--onnx", "--out", str(files["float32"]))
    for mode in MODES:
        files[mode] = folder / f"generator-{mode}.onnx"
        extra = ["--quality-n", str(quality_n)] if quality_n else []
        ganctl_json("export", str(run), "--onnx", "--quantize", mode, "--out", str(files[mode]),
                    "--max-fid-increase", "1e9", *extra)
    return files


def quality(files: dict[str, Path], n: int | None) -> tuple[dict[str, dict[str, float]], int]:
    """FID and C2ST of each file, and of the floor, at one n (the floor's, when ``n`` is None)."""
    rows: dict[str, dict[str, float]] = {}
    first = ganctl_json("evaluate", str(files["float32"]), "-m", "fid", "-m", "c2st", "--floor", "--json",
                        *(["-n", str(n)] if n else []))
    n = int(first[0]["protocol"]["n_fake"])
    rows["float32"] = {r["metric"]: next(iter(r["values"].values())) for r in first}
    rows["floor"] = {r["metric"]: next(iter(r["floor"]["values"].values())) for r in first}
    for name, path in files.items():
        if name == "float32":
            continue
        found = ganctl_json("evaluate", str(path), "-m", "fid", "-m", "c2st", "-n", str(n), "--json")
        rows[name] = {r["metric"]: next(iter(r["values"].values())) for r in found}
    return rows, n


def latency(files: dict[str, Path], seconds: float) -> dict[tuple[str, int], float]:
    """Median milliseconds per call of each file at each batch size."""
    found = ganctl_json("bench", *map(str, files.values()), "--batch", BATCHES, "--seconds", str(seconds), "--json")
    names = {path.name: name for name, path in files.items()}
    return {(names[r["path"]], r["batch"]): r["median_ms"] for r in found["results"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a trained run directory (a generator)")
    parser.add_argument("--n", type=int, default=None, help="images per metric [default: the floor's cap]")
    parser.add_argument("--quality-n", type=int, default=None, help="images of the export's own check")
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds of timed calls per file and batch")
    parser.add_argument("--no-latency", action="store_true", help="only sizes and quality")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ganctl-quantize-") as scratch:
        files = export_all(args.run, Path(scratch), args.quality_n)
        sizes = {name: path.stat().st_size for name, path in files.items()}
        metrics, n = quality(files, args.n)
        timings = {} if args.no_latency else latency(files, args.seconds)
    rows = []
    for name in ("floor", *files):
        row: dict[str, Any] = {"file": name, "bytes": sizes.get(name), **metrics[name]}
        for batch in map(int, BATCHES.split(",")):
            row[f"ms_batch_{batch}"] = timings.get((name, batch))
        rows.append(row)
    meta = {"run": str(args.run), "n": n, "machine": harness.machine(), "latency": not args.no_latency}
    if args.json:
        print(json.dumps({**meta, "rows": rows}, indent=2))
        return
    print(f"{args.run}: n = {n} for FID and C2ST (ROC AUC); floor: real held-out images")
    print("| file | size KiB | FID | C2ST | ms, batch 1 | ms, batch 256 |")
    print("| --- | --- | --- | --- | --- | --- |")
    for row in rows:
        size = "" if row["bytes"] is None else f"{row['bytes'] / 1024:.0f}"
        ms = [("" if row[k] is None else f"{row[k]:.3f}") for k in ("ms_batch_1", "ms_batch_256")]
        print(f"| {row['file']} | {size} | {row['fid']:.4g} | {row['c2st']:.4g} | {ms[0]} | {ms[1]} |")


if __name__ == "__main__":
    main()
