"""What quantisation and pruning cost and gain: float32, fp16, int8-dynamic, int8-static exports of
trained runs, pruned runs among them, in one table.

    python bench/quantize.py RUN [RUN ...] --out DIR [--n N] [--no-latency] [--json]
    python bench/quantize.py --latency-only DIR [--seconds S] [--json]

For each run (a generator's run directory), ``ganctl export`` writes its float32 ONNX file and
one file per quantisation (``--modes``; a run trained with ``train.prune`` gets ``--pruned-modes``,
float32 alone by default) into ``DIR/RUN_NAME/``; each quantised one is checked against the float32
generator with a limit high enough that every one is written (this script reports the cost, it
does not judge it). Then for each file:

- its size, raw and compressed (zlib at level 9, what gzip and zip store: a pruned file's zeros
  shrink only the compressed size), and the fraction of zeros in its weight matrices (the
  initializers of two or more dimensions: kernels, and the embedding of a conditional model);
- FID and C2ST (ROC AUC) from ``ganctl evaluate FILE -m fid -m c2st``, through ``evaluate``'s
  default features (the data's classifier), and the floor (real held-out images scored the same
  way, ``--floor``). Runs on the same data share one ``n`` and one floor: the held-out images'
  number (360 for the quickstart's digits, 10,000 for Fashion-MNIST) unless ``--n`` is lower;
- median latency at batch sizes 1 and 256 from ``ganctl bench FILE...`` (the files of runs on the
  same data side by side, interleaved), unless ``--no-latency``.

Everything is written to ``DIR/table.json`` as it is measured. ``--latency-only DIR`` times the
files that an earlier run wrote there and adds the latency to that table: measure the quality on
any machine, the latency on an idle one. ``--reuse`` keeps the exports already in ``DIR/RUN_NAME/``
(an earlier or interrupted invocation's) instead of writing them again, and the n, floor and values
that ``DIR/table.json`` holds for the same data and files (same sha256), so runs can be added to
a table one at a time.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import harness  # bench/harness.py (scripts run as python bench/NAME.py)

MODES = ("fp16", "int8-dynamic", "int8-static")
FORMATS = ("float32", *MODES)
BATCHES = (1, 256)
TABLE = "table.json"


def ganctl_json(*args: str, check: bool = True) -> Any:
    """What ``ganctl ARGS`` printed, read as JSON when it is; a failure ends the script (with
    ``check``) or gives None."""
    done = subprocess.run(harness.ganctl(*args), cwd=harness.ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        if not check:
            return None
        sys.exit(f"ganctl {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout) if done.stdout.strip().startswith(("[", "{")) else done.stdout


# -- what each run is -----------------------------------------------------------------------------


def describe(run: Path) -> dict[str, Any]:
    """The run's name, the sparsity ``train.prune`` asked for (None: not pruned) and whether it was
    fine-tuned from another run (``init``), from its resolved recipe."""
    import yaml

    recipe_file = run / "recipe.yaml"
    if not recipe_file.is_file():
        sys.exit(f"{run} is not a run directory made by ganctl train (it has no recipe.yaml)")
    recipe = yaml.safe_load(recipe_file.read_text()) or {}
    prune = (recipe.get("train") or {}).get("prune")
    init = recipe.get("init")
    return {"run": str(run), "name": run.name, "sparsity": None if prune is None else float(prune["sparsity"]),
            "fine_tuned_from": None if init is None else str(init["from"])}


def export_all(run: Path, folder: Path, modes: tuple[str, ...], quality_n: int | None,
               reuse: bool = False) -> dict[str, Path]:
    """The run's exports in ``modes`` (``float32`` and quantisations), written into ``folder``
    (with ``reuse``, those already there are kept)."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for mode in modes:
        path = folder / ("generator.onnx" if mode == "float32" else f"generator-{mode}.onnx")
        if reuse and path.is_file():
            pass
        elif mode == "float32":
            ganctl_json("export", str(run), "--onnx", "--out", str(path))
        else:
            extra = ["--quality-n", str(quality_n)] if quality_n else []
            ganctl_json("export", str(run), "--onnx", "--quantize", mode, "--out", str(path),
                        "--max-fid-increase", "1e9", *extra)
        files[mode] = path
    return files


def file_facts(path: Path) -> dict[str, Any]:
    """Size raw and compressed (zlib level 9), and the fraction of zeros in the weight matrices."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    data = path.read_bytes()
    zeros = total = 0
    for tensor in onnx.load(str(path)).graph.initializer:
        if len(tensor.dims) >= 2:
            values = numpy_helper.to_array(tensor)
            zeros += int(np.count_nonzero(values == 0))
            total += values.size
    return {"bytes": len(data), "compressed_bytes": len(zlib.compress(data, 9)),
            "zeros": zeros / total if total else 0.0, "sha256": hashlib.sha256(data).hexdigest()}


def data_of(path: Path) -> str:
    """What an export was trained on and its inputs (``ganctl.data``, latent size, classes): runs
    that agree share a floor, and ``ganctl bench`` times their files side by side."""
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    inputs = f"latent_dim {meta.get('ganctl.latent_dim')}, {meta.get('ganctl.num_classes')} classes"
    return f"{meta.get('ganctl.data', '')}; {inputs}"


# -- quality ------------------------------------------------------------------------------------


def _values(found: list[dict[str, Any]], key: str | None = None) -> dict[str, float]:
    return {r["metric"]: next(iter((r[key] if key else r)["values"].values())) for r in found}


def quality(rows: list[dict[str, Any]], n: int | None, earlier: dict[str, Any] | None = None) -> dict[str, Any]:
    """FID and C2ST of each row's file, and the floor, at one n: ``n``, or the held-out images'
    number when that is fewer (or ``n`` is None); fills the rows in place. ``earlier``: this
    group as an earlier run measured it, whose n, floor and values of the same files are kept."""
    if earlier is not None:
        floor, kept = earlier["floor"], {(r["path"], r["sha256"]): r for r in earlier["rows"]}
    else:
        command = ("evaluate", rows[0]["path"], "-m", "fid", "-m", "c2st", "--floor", "--json")
        first = ganctl_json(*command, "-n", str(n), check=False) if n else None
        first = first or ganctl_json(*command)  # n is more than the held-out images: all of them
        floor, kept = {"n": int(first[0]["protocol"]["n_fake"]), **_values(first, "floor")}, {}
        kept[rows[0]["path"], rows[0]["sha256"]] = _values(first)
    for row in rows:
        found = kept.get((row["path"], row["sha256"]))
        if found is None:
            found = _values(ganctl_json("evaluate", row["path"], "-m", "fid", "-m", "c2st", "-n", str(floor["n"]),
                                        "--json"))
        row.update({metric: found[metric] for metric in ("fid", "c2st")})
    return floor


# -- latency ------------------------------------------------------------------------------------


def latency(rows: list[dict[str, Any]], seconds: float) -> None:
    """Median milliseconds per call of each row's file at each batch size, the files side by side."""
    found = ganctl_json("bench", *(r["path"] for r in rows), "--batch", ",".join(map(str, BATCHES)),
                        "--seconds", str(seconds), "--json")
    by_label = {}
    for row in rows:  # ganctl bench labels a file by its name, or by its path when names repeat
        by_label[row["path"]] = by_label[Path(row["path"]).name] = row
    for result in found["results"]:
        by_label[result["path"]][f"ms_batch_{result['batch']}"] = result["median_ms"]


def time_groups(table: dict[str, Any], seconds: float) -> None:
    for group in table["groups"]:
        latency(group["rows"], seconds)
    table["latency"] = {"machine": harness.machine(), "seconds": seconds, "batches": list(BATCHES)}


# -- the table ----------------------------------------------------------------------------------


def label(row: dict[str, Any]) -> str:
    what = "" if row["sparsity"] is None else f"pruned {row['sparsity']:.0%}"
    if row["fine_tuned_from"] is not None:
        what = f"{what}, fine-tuned" if what else "fine-tuned, not pruned"
    return f"{row['name']} ({what})" if what else row["name"]


def render(table: dict[str, Any]) -> str:
    """The table as Markdown, one section per data (its floor first)."""
    lines = []
    for group in table["groups"]:
        floor = group["floor"]
        lines += [f"n = {floor['n']} for FID and C2ST (ROC AUC); data {group['data']}", "",
                  "| run | format | size KiB | compressed KiB | zeros | FID | C2ST | ms, batch 1 | ms, batch 256 |",
                  "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
                  f"| floor (real held-out images) | | | | | {floor['fid']:.4g} | {floor['c2st']:.4g} | | |"]
        for row in group["rows"]:
            ms = ["" if row.get(f"ms_batch_{b}") is None else f"{row[f'ms_batch_{b}']:.3g}" for b in BATCHES]
            lines.append(f"| {label(row)} | {row['format']} | {row['bytes'] / 1024:.0f} | "
                         f"{row['compressed_bytes'] / 1024:.0f} | {row['zeros']:.0%} | {row['fid']:.4g} | "
                         f"{row['c2st']:.4g} | {ms[0]} | {ms[1]} |")
        lines.append("")
    return "\n".join(lines)


def build(runs: list[Path], out: Path, modes: tuple[str, ...], pruned_modes: tuple[str, ...], n: int | None,
          quality_n: int | None, reuse: bool = False, formats: dict[str, tuple[str, ...]] | None = None) -> dict[str, Any]:
    """Export every run, measure sizes and quality; the table, grouped by data. ``formats``: some
    runs' own formats, by name."""
    groups: dict[str, dict[str, Any]] = {}
    for run in runs:
        about = describe(run)
        own = (formats or {}).get(about["name"], pruned_modes if about["sparsity"] is not None else modes)
        files = export_all(run, out / about["name"], own, quality_n, reuse)
        for mode, path in files.items():
            data = data_of(path)
            group = groups.setdefault(data, {"data": data, "rows": []})
            group["rows"].append({**about, "format": mode, "path": str(path), **file_facts(path)})
    before = {}
    if reuse and (out / TABLE).is_file():
        before = {g["data"]: g for g in json.loads((out / TABLE).read_text())["groups"]}
    for group in groups.values():
        group["floor"] = quality(group["rows"], n, before.get(group["data"]))
    return {"runs": [str(r) for r in runs], "groups": list(groups.values()), "latency": None}


def _modes(text: str) -> tuple[str, ...]:
    modes = tuple(m.strip() for m in text.split(",") if m.strip())
    unknown = [m for m in modes if m not in FORMATS]
    if unknown or not modes:
        raise argparse.ArgumentTypeError(f"{text!r}: list formats among {', '.join(FORMATS)}, separated by commas")
    return modes


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="*", help="trained run directories (generators)")
    parser.add_argument("--out", type=Path, help="folder for the exports and table.json")
    parser.add_argument("--latency-only", type=Path, metavar="DIR",
                        help="time the exports an earlier run wrote to DIR and add the latency to DIR/table.json")
    parser.add_argument("--modes", type=_modes, default=FORMATS, help="formats of each run [default: all four]")
    parser.add_argument("--pruned-modes", type=_modes, default=("float32",),
                        help="formats of each pruned run (train.prune) [default: float32]")
    parser.add_argument("--formats", action="append", default=[], metavar="RUN_NAME=LIST",
                        help="one run's formats (by its folder's name), instead of --modes or --pruned-modes; repeatable")
    parser.add_argument("--n", type=int, default=None,
                        help="images per metric, at most [default: all the held-out images, the floor's cap]")
    parser.add_argument("--quality-n", type=int, default=None, help="images of each quantised export's own check")
    parser.add_argument("--reuse", action="store_true",
                        help="keep the exports an earlier run left in --out, and their values in its table.json")
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds of timed calls per file and batch")
    parser.add_argument("--no-latency", action="store_true", help="only sizes and quality")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)

    if args.latency_only is not None:
        if args.runs or args.out:
            parser.error("--latency-only DIR times what DIR holds: give no runs and no --out")
        out = args.latency_only.resolve()
        try:
            table = json.loads((out / TABLE).read_text())
        except (OSError, ValueError) as exc:
            parser.error(f"{out / TABLE} is not a table this script wrote ({exc}); run it with --out {out} first")
        missing = [r["path"] for g in table["groups"] for r in g["rows"] if not Path(r["path"]).is_file()]
        if missing:
            parser.error(f"the exports {', '.join(missing)} of {out / TABLE} are gone; run the script with --out again")
        time_groups(table, args.seconds)
    else:
        if not args.runs or args.out is None:
            parser.error("give the run directories and --out DIR (or --latency-only DIR)")
        formats = {}
        for entry in args.formats:
            name, _, listed = entry.partition("=")
            if name not in {run.resolve().name for run in args.runs}:
                parser.error(f"--formats {entry}: no run named {name!r} among the runs given")
            try:
                formats[name] = _modes(listed)
            except argparse.ArgumentTypeError as exc:
                parser.error(f"--formats {entry}: {exc}")
        out = args.out.resolve()
        table = build([run.resolve() for run in args.runs], out, args.modes, args.pruned_modes, args.n, args.quality_n,
                      args.reuse, formats)
        (out / TABLE).write_text(json.dumps(table, indent=2))
        if not args.no_latency:
            time_groups(table, args.seconds)
    (out / TABLE).write_text(json.dumps(table, indent=2))
    print(json.dumps(table, indent=2) if args.json else render(table))


if __name__ == "__main__":
    main()
