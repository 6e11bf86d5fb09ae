"""ganctl's models of tables side by side with the anchors, ctgan and SDV: quality, fit time, sampling.

    python bench/tables.py                          # 4 tables x 3 seeds, 150 epochs of batch 100, every model
    python bench/tables.py --quick                  # smoke run: 2 tables, 1 seed, 2 epochs (not results)
    python bench/tables.py --tables penguins,wine --seeds 0,1,2 --epochs 300 --batch-size 100
    python bench/tables.py --ganctl tvae,ctgan --anchors sdv-ctgan,sdv-tvae --json out.json

Needs ``pip install -e '.[tables,anchors]'`` (ctgan, SDV, SDMetrics; the anchors' models are
left out, each with one line, where they are not installed).

For each table (a ``data:`` section of the csv dataset, with ``split: train``), every model
trains on the same training rows, with the same epochs and batch size, once per seed:

- ganctl's models (``--ganctl``) as a user runs them: ``ganctl train`` on the model's shipped
  recipe (``recipes/TABLE-MODEL.yaml``, else the first ``recipes/*-MODEL.yaml``) with ``--set``
  overrides for the data section, the seed, the epochs and the batch size, then
  ``ganctl generate RUN -n ROWS --seed SEED --out synthetic.csv``. Both are timed as commands,
  start-up included.
- the anchors (``--anchors``), in this process: ``ctgan`` and ``tvae`` (the ctgan package's
  CTGAN and TVAE), ``sdv-ctgan``, ``sdv-tvae`` and ``sdv-copula`` (SDV's CTGANSynthesizer,
  TVAESynthesizer and GaussianCopulaSynthesizer). They train on the training rows as read, holes
  included (``api.TableDataset.values``: not ganctl's imputed, encoded rows). The ctgan package
  refuses missing numbers, so its two models run only on tables whose training rows have none;
  SDV's wrappers of the same models handle holes themselves and run everywhere. ``fit`` and
  ``sample`` are timed; the sample is written as CSV.

Every synthetic CSV, ganctl's and the anchors', is then read and scored by the same code
(``ganctl.evaluation.table_files``): every installed metric of tables against the same real rows,
the held-out split (as ``ganctl evaluate RUN`` scores a run), and SDMetrics' QualityReport on the
same two tables as a cross-check. The report is a Markdown table per table: the median over seeds,
with the range, of each figure; ``--json FILE`` writes every run.

Timings are wall clock (and CPU seconds, which load disturbs less): run the full bench on an
idle machine. The quality of a ``--quick`` run is not a result.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import harness  # bench/harness.py (scripts run as python bench/NAME.py)

TABLES: dict[str, dict[str, Any]] = {
    # Palmer penguins with their real holes (as recipes/penguins-tvae.yaml reads them).
    "penguins": {"plugin": "csv", "name": "penguins", "label": "species", "split": "train"},
    # Wine with 10% of its values removed at random and filled by k nearest neighbours (as
    # recipes/wine-tvae.yaml).
    "wine": {"plugin": "csv", "name": "wine", "label": "target", "inject_missing": {"rate": 0.1, "seed": 0},
             "numeric_strategy": "knn", "split": "train"},
    # Two complete tables: the ctgan package's own models run on these.
    "breast-cancer": {"plugin": "csv", "name": "breast-cancer", "label": "target", "split": "train"},
    # sex declared categorical as in recipes/diabetes-tvae.yaml (two scaled values), without its holes.
    "diabetes": {"plugin": "csv", "name": "diabetes", "columns": {"sex": "categorical"}, "split": "train"},
}
# 150 epochs of batch 100: CTGAN's defaults are 300 of 500, but these tables have fewer training rows
# than 500 (one step an epoch); 150 epochs (1500 steps per model and seed over the four tables)
# keep the full bench at 19.5 minutes on 2 idle cores (measured); 300 would add about as much.
ANCHORS = ("ctgan", "tvae", "sdv-ctgan", "sdv-tvae", "sdv-copula")
NEURAL = {"ctgan", "tvae", "sdv-ctgan", "sdv-tvae"}
"""The anchors trained by epochs and batches (the Gaussian copula is fitted in one pass)."""
DEFAULTS = {"epochs": 150, "batch_size": 100, "seeds": "0,1,2", "tables": ",".join(TABLES), "rows": 1000}
QUICK = {"epochs": 2, "seeds": "0", "tables": "penguins,diabetes", "rows": 300}


# -- options ------------------------------------------------------------------------------------


def names(text: str, known: Sequence[str] | None, what: str) -> list[str]:
    """A comma-separated list (``none``: empty), each name checked against ``known``."""
    items = [] if text.strip() in ("", "none") else [t.strip() for t in text.split(",") if t.strip()]
    bad = [t for t in items if known is not None and t not in known]
    if bad:
        raise SystemExit(f"--{what}: unknown {', '.join(bad)}; choose from {', '.join(known or ())} (or none).")
    return list(dict.fromkeys(items))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", help=f"tables, comma-separated [default: {DEFAULTS['tables']}]")
    parser.add_argument("--seeds", help=f"seeds, comma-separated [default: {DEFAULTS['seeds']}]")
    parser.add_argument("--epochs", type=int, help=f"epochs of every model [default: {DEFAULTS['epochs']}]")
    parser.add_argument("--batch-size", type=int, help=f"batch size of every model [default: {DEFAULTS['batch_size']}]")
    parser.add_argument("--rows", type=int, help=f"synthetic rows per run [default: {DEFAULTS['rows']}]")
    parser.add_argument("--ganctl", default="tvae,ctgan", help="ganctl's models, comma-separated [default: tvae,ctgan]")
    parser.add_argument("--anchors", default=",".join(ANCHORS), help=f"anchors [default: {','.join(ANCHORS)}]")
    parser.add_argument("--backend", default=None, help="ganctl's Keras backend [default: ganctl's]")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: " + ", ".join(f"{k} {v}" for k, v in QUICK.items()) + " (unless given)")
    parser.add_argument("--keep", type=Path, default=None, help="keep the runs and CSV files in this folder")
    parser.add_argument("--json", type=Path, default=None, help="also write every run's figures to this file")
    args = parser.parse_args(argv)
    preset = {**DEFAULTS, **(QUICK if args.quick else {})}
    for key in ("tables", "seeds", "epochs", "batch_size", "rows"):
        if getattr(args, key) is None:
            setattr(args, key, preset[key])
    args.tables = names(args.tables, list(TABLES), "tables")
    try:
        args.seeds = [int(s) for s in names(args.seeds, None, "seeds")]
    except ValueError:
        raise SystemExit(f"--seeds: expected whole numbers separated by commas, got {args.seeds!r}.") from None
    args.ganctl = names(args.ganctl, None, "ganctl")
    args.anchors = names(args.anchors, ANCHORS, "anchors")
    for key in ("epochs", "batch_size", "rows"):
        if getattr(args, key) < 1:
            raise SystemExit(f"--{key.replace('_', '-')} must be at least 1.")
    if not args.tables or not args.seeds or not (args.ganctl or args.anchors):
        raise SystemExit("nothing to run: give at least one table, one seed and one model.")
    return args


# -- one measured run ---------------------------------------------------------------------------


@dataclass
class Record:
    """One (table, model, seed): what it took and how good its synthetic table is."""

    table: str
    model: str
    seed: int
    fit_s: float
    fit_cpu_s: float
    sample_s: float | None
    """Sampling ``rows`` in a process that holds the model (None: not measured)."""
    fresh_sample_s: float | None
    """Sampling ``rows`` into a CSV file from the saved model, as a new process (start-up included;
    an anchor's on the first seed only)."""
    rows: int
    metrics: dict[str, float | None] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def ganctl_recipe(model: str, table: str) -> Path | None:
    """The shipped recipe a ganctl model is trained from: the table's own, else the model's first."""
    own = harness.ROOT / "recipes" / f"{table}-{model}.yaml"
    if own.is_file():
        return own
    return next(iter(sorted((harness.ROOT / "recipes").glob(f"*-{model}.yaml"))), None)


def flow(value: Any) -> str:
    """``value`` as one line of YAML (JSON is YAML), for ``--set KEY=VALUE``."""
    return json.dumps(value, separators=(",", ":"))


def ganctl_train_command(recipe: Path, data: dict[str, Any], seed: int, epochs: int, batch_size: int, out: Path,
                         backend: str | None) -> list[str]:
    """``ganctl train`` on ``recipe`` with the bench's data section, seed and budget (samples and
    checkpoints at the end only, and no recipe metrics: the anchors write and measure none)."""
    sets = {"data": flow(data), "seed": seed, "train.epochs": epochs, "train.batch_size": batch_size,
            "train.sample_every": epochs, "train.checkpoint_every": epochs, "metrics": "[]"}
    args = ["train", str(recipe), "--out", str(out), "-q", *[a for k, v in sets.items() for a in ("--set", f"{k}={v}")]]
    return harness.ganctl(*args, *(["--backend", backend] if backend else []))


def run_ganctl(model: str, table: str, seed: int, args: argparse.Namespace, folder: Path) -> tuple[Record, Path]:
    recipe = ganctl_recipe(model, table)
    assert recipe is not None
    run, csv_path = folder / "run", folder / "synthetic.csv"
    cpu = children_cpu()
    trained = harness.run(ganctl_train_command(recipe, TABLES[table], seed, args.epochs, args.batch_size, run,
                                               args.backend))
    fit_cpu = children_cpu() - cpu
    sampled = harness.run(harness.ganctl("generate", str(run), "-n", str(args.rows), "--seed", str(seed),
                                         "--out", str(csv_path)))
    info = json.loads((run / "run.json").read_text())
    notes = {"recipe": str(recipe.relative_to(harness.ROOT)), "backend": info.get("backend"),
             "steps": info.get("step"), "timed": "commands, start-up included"}
    return Record(table, f"ganctl-{model}", seed, trained.seconds, fit_cpu, None, sampled.seconds, args.rows,
                  notes=notes), csv_path


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def frame_of(values: dict[str, Any], spec: Any) -> Any:
    """A DataFrame of a table's columns: numbers float64, categories strings; holes NaN."""
    import numpy as np
    import pandas as pd

    columns = {}
    for c in spec.columns:
        if c.type == "numeric":
            columns[c.name] = np.asarray(values[c.name], np.float64)
        else:
            column = pd.Series(list(values[c.name]), dtype=object)
            columns[c.name] = column.where(column.notna(), np.nan)
    return pd.DataFrame(columns)


def sdv_metadata(spec: Any) -> dict[str, Any]:
    """SDV / SDMetrics metadata of the table: numbers numerical, everything else categorical."""
    return {"columns": {c.name: {"sdtype": "numerical" if c.type == "numeric" else "categorical"}
                        for c in spec.columns}}


def anchor_refusal(anchor: str, train: Any, spec: Any) -> str | None:
    """Why ``anchor`` cannot run on these training rows (None when it can), or is not installed."""
    module = "ctgan" if anchor in ("ctgan", "tvae") else "sdv"
    try:
        __import__(module)
    except ImportError:
        return f"{module} is not installed (pip install -e '.[anchors]')"
    if module == "ctgan":
        holes = [c.name for c in spec.columns if c.type == "numeric" and train[c.name].isna().any()]
        if holes:
            return (f"the ctgan package refuses missing numbers ({', '.join(holes[:3])}"
                    f"{', ...' if len(holes) > 3 else ''}); sdv-{anchor} covers this table")
    return None


def build_anchor(anchor: str, spec: Any, epochs: int, batch_size: int) -> Any:
    if anchor in ("ctgan", "tvae"):
        import ctgan

        cls = ctgan.CTGAN if anchor == "ctgan" else ctgan.TVAE
        return cls(epochs=epochs, batch_size=batch_size, enable_gpu=False)
    from sdv.metadata import Metadata
    from sdv.single_table import CTGANSynthesizer, GaussianCopulaSynthesizer, TVAESynthesizer

    metadata = Metadata.load_from_dict({"tables": {"table": sdv_metadata(spec)}})
    if anchor == "sdv-copula":
        return GaussianCopulaSynthesizer(metadata)
    cls = CTGANSynthesizer if anchor == "sdv-ctgan" else TVAESynthesizer
    return cls(metadata, epochs=epochs, batch_size=batch_size, enable_gpu=False)


def run_anchor(anchor: str, table: str, seed: int, train: Any, spec: Any, args: argparse.Namespace,
               folder: Path, fresh: bool) -> tuple[Record, Path]:
    model = build_anchor(anchor, spec, args.epochs, args.batch_size)
    discrete = [c.name for c in spec.columns if c.type != "numeric"]
    seed_everything(seed)
    if anchor in ("ctgan", "tvae"):
        model.set_random_state(seed)
    began, cpu = time.perf_counter(), time.process_time()
    if anchor in ("ctgan", "tvae"):
        model.fit(train, discrete)
    else:
        model.fit({"table": train})  # SDV 2 takes {table name: DataFrame}
    fit_s, fit_cpu = time.perf_counter() - began, time.process_time() - cpu
    seed_everything(seed)
    if hasattr(model, "_set_random_state"):  # SDV samples from its own fixed seed unless told another
        model._set_random_state(seed)
    began = time.perf_counter()
    synthetic = model.sample(args.rows) if anchor in ("ctgan", "tvae") else model.sample(num_rows=args.rows)
    if isinstance(synthetic, dict):  # SDV 2: {table name: DataFrame}
        synthetic = synthetic["table"]
    sample_s = time.perf_counter() - began
    csv_path = folder / "synthetic.csv"
    synthetic.to_csv(csv_path, index=False)
    fresh_s = None
    if fresh:  # start-up dominates and does not depend on the seed: measured once per table
        saved = folder / "model.pkl"
        model.save(str(saved))
        fresh_s = harness.run([sys.executable, str(Path(__file__).resolve()), SAMPLE_SAVED, anchor, str(saved),
                               str(args.rows), str(folder / "fresh.csv")]).seconds
    notes = {"timed": "fit() and sample() in the bench's process; a new process loading the saved model and "
             "writing its CSV", "epochs": args.epochs if anchor in NEURAL else None}
    return Record(table, anchor, seed, fit_s, fit_cpu, sample_s, fresh_s, args.rows, notes=notes), csv_path


SAMPLE_SAVED = "--sample-saved"


def sample_saved(anchor: str, path: str, rows: int, out: str) -> None:
    """What a user of the anchor runs to sample a saved model into a CSV file (the counterpart of
    ``ganctl generate RUN -n ROWS --out FILE``): ``python bench/tables.py --sample-saved ANCHOR
    MODEL ROWS OUT``."""
    if anchor in ("ctgan", "tvae"):
        import ctgan

        table = getattr(ctgan, "CTGAN" if anchor == "ctgan" else "TVAE").load(path).sample(rows)
    else:
        from sdv.utils import load_synthesizer

        table = load_synthesizer(path).sample(num_rows=rows)
        table = table["table"] if isinstance(table, dict) else table
    table.to_csv(out, index=False)


# -- quality: the same code for every model's CSV ------------------------------------------------


def metric_directions(host: Any, metrics: Sequence[str]) -> dict[str, bool]:
    """Whether each metric's headline is better higher."""
    return {name: not getattr(host.get("metrics", name).factory, "lower_is_better", True) for name in metrics}


def score(csv_path: Path, real: Any, train: Any, host: Any, metrics: Sequence[str],
          seed: int) -> tuple[dict[str, float | None], dict[str, str]]:
    """Each metric's headline on the CSV file against the held-out rows ``real`` (with the training
    rows ``train`` for the metrics that need them), and SDMetrics' quality score; a metric that does
    not apply to the table is None, with its reason."""
    from ganctl.errors import GanctlError
    from ganctl.evaluation.table_files import compare_tables, read_table_csv

    fake = read_table_csv(csv_path, real.spec)
    values: dict[str, float | None] = {}
    why: dict[str, str] = {}
    for name in metrics:
        try:
            result = compare_tables(real, fake, host, [name], seed=seed, train=train)[0]
            values[name] = result.headline[1]
        except GanctlError as error:
            values[name], why[name] = None, str(error).splitlines()[0]
    values["sdmetrics-quality"] = sdmetrics_quality(real, fake)
    return values, why


def sdmetrics_quality(real: Any, fake: dict[str, Any]) -> float | None:
    """SDMetrics' QualityReport overall score (column shapes and pair trends; 1: alike); None
    without SDMetrics."""
    try:
        from sdmetrics.reports.single_table import QualityReport
    except ImportError:
        return None
    report = QualityReport()
    report.generate(frame_of(real.columns, real.spec), frame_of(fake, real.spec), sdv_metadata(real.spec),
                    verbose=False)
    return float(report.get_score())


# -- the report ---------------------------------------------------------------------------------


def cell(values: Sequence[float | None], digits: int = 3) -> str:
    """``median (min-max)`` of the values that exist; the median alone for one."""
    found = [v for v in values if v is not None]
    if not found:
        return "n/a"
    median = f"{statistics.median(found):.{digits}g}"
    if len(found) == 1 or min(found) == max(found):
        return median
    return f"{median} ({min(found):.{digits}g}-{max(found):.{digits}g})"


def summarise(records: Sequence[Record]) -> dict[str, dict[str, dict[str, list[Any]]]]:
    """``{table: {model: {figure: [value per seed]}}}``, tables and models in the order they ran."""
    out: dict[str, dict[str, dict[str, list[Any]]]] = {}
    for r in records:
        figures = out.setdefault(r.table, {}).setdefault(r.model, {})
        rate = r.rows / r.sample_s if r.sample_s else None
        for key, value in [("fit_s", r.fit_s), ("fit_cpu_s", r.fit_cpu_s), ("rows_per_s", rate),
                           ("fresh_sample_s", r.fresh_sample_s), *r.metrics.items()]:
            figures.setdefault(key, []).append(value)
    return out


def markdown(records: Sequence[Record], directions: dict[str, bool]) -> str:
    """One Markdown table per table: each model's median (range) over seeds."""
    metrics = [*directions, "sdmetrics-quality"]
    arrows = {**{m: "↑" if up else "↓" for m, up in directions.items()}, "sdmetrics-quality": "↑"}
    lines: list[str] = []
    for table, models in summarise(records).items():
        seeds = max(len(f["fit_s"]) for f in models.values())
        lines += [f"**{table}** (median over {seeds} seed{'s' * (seeds > 1)}, range in brackets)", "",
                  "| model | fit s | fit CPU s | sampling rows/s | new process: sample s | "
                  + " | ".join(f"{m} {arrows[m]}" for m in metrics) + " |", "| --- " * (5 + len(metrics)) + "|"]
        for model, figures in models.items():
            lines.append(f"| {model} | {cell(figures['fit_s'])} | {cell(figures['fit_cpu_s'])} | "
                         f"{cell(figures['rows_per_s'])} | {cell(figures['fresh_sample_s'])} | "
                         + " | ".join(cell(figures.get(m, [None])) for m in metrics) + " |")
        lines.append("")
    return "\n".join(lines)


def verdicts(records: Sequence[Record], directions: dict[str, bool]) -> list[str]:
    """Per table, each ganctl model against its anchor (the ctgan package's model of the same design
    where it ran, else SDV's): the fit time ratio and, per quality figure, which median is better."""
    lines = []
    ups = {**directions, "sdmetrics-quality": True}
    for table, models in summarise(records).items():
        for design in ("ctgan", "tvae"):
            ours = models.get(f"ganctl-{design}")
            anchor = next((a for a in (design, f"sdv-{design}") if a in models), None)
            if ours is None or anchor is None:
                continue
            theirs = models[anchor]
            ratio = statistics.median(ours["fit_s"]) / statistics.median(theirs["fit_s"])
            better, worse = [], []
            for metric, up in ups.items():
                a = [v for v in ours.get(metric, []) if v is not None]
                b = [v for v in theirs.get(metric, []) if v is not None]
                if a and b and statistics.median(a) != statistics.median(b):
                    wins = (statistics.median(a) > statistics.median(b)) == up
                    (better if wins else worse).append(
                        f"{metric} {statistics.median(a):.3g} vs {statistics.median(b):.3g}")
            lines.append(f"{table}: ganctl-{design} vs {anchor}: fit time {ratio:.2f}x; "
                         f"better on {', '.join(better) or 'nothing'}; worse on {', '.join(worse) or 'nothing'}.")
    return lines


# -- the run ------------------------------------------------------------------------------------


def plan(args: argparse.Namespace, host: Any) -> tuple[list[str], list[str]]:
    """The ganctl models that can run (and a line for each one that cannot)."""
    models, skipped = [], []
    installed = host.names("models")
    for model in args.ganctl:
        if model not in installed:
            skipped.append(f"ganctl-{model}: no ganctl model {model!r} is installed here (`ganctl plugins` lists "
                           "them); skipped.")
        elif ganctl_recipe(model, "penguins") is None:
            skipped.append(f"ganctl-{model}: no recipes/*-{model}.yaml to train it from; skipped.")
        else:
            models.append(model)
    return models, skipped


def main(argv: Sequence[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == [SAMPLE_SAVED]:
        sample_saved(argv[1], argv[2], int(argv[3]), argv[4])
        return
    args = parse_args(argv)
    from ganctl.evaluation.table_files import real_table
    from ganctl.evaluation.tables import table_metrics
    from ganctl.plugins import get_host

    host = get_host()
    metrics = table_metrics(host)
    directions = metric_directions(host, metrics)
    ganctl_models, skipped = plan(args, host)
    say: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    for line in skipped:
        say(line)
    records: list[Record] = []
    reasons: dict[str, str] = {}
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="ganctl-tables-") as scratch:
        root = args.keep or Path(scratch)
        for table in args.tables:
            say(f"{table}: reading the training and held-out rows ...")
            train_rows = real_table(TABLES[table], host, split="train")
            held_out = real_table(TABLES[table], host)
            assert train_rows.values is not None, "the csv dataset gives the rows as read"
            train = frame_of(train_rows.values, train_rows.spec)
            anchors = []
            for anchor in args.anchors:
                refusal = anchor_refusal(anchor, train, train_rows.spec)
                if refusal:
                    skipped.append(f"{anchor} on {table}: {refusal}.")
                    say(skipped[-1])
                else:
                    anchors.append(anchor)
            runners = [f"ganctl-{m}" for m in ganctl_models] + anchors
            for k, seed in enumerate(args.seeds):
                for model in harness.rotated(runners, k):  # who goes first changes with the seed
                    folder = root / table / model / f"seed-{seed}"
                    folder.mkdir(parents=True, exist_ok=True)
                    say(f"{table}, {model}, seed {seed}: training ...")
                    if model.startswith("ganctl-"):
                        record, csv_path = run_ganctl(model.removeprefix("ganctl-"), table, seed, args, folder)
                    else:
                        record, csv_path = run_anchor(model, table, seed, train, train_rows.spec, args, folder,
                                                      fresh=k == 0)
                    record.metrics, why = score(csv_path, held_out, train_rows, host, metrics, seed)
                    reasons.update({f"{m} on {table}": reason for m, reason in why.items()})
                    record.notes.update(train_rows=train_rows.n, held_out_rows=held_out.n)
                    records.append(record)
                    say(f"  fit {record.fit_s:.1f} s")
    import numpy  # noqa: F401 - its version is reported
    try:
        import ctgan  # noqa: F401
        import sdmetrics  # noqa: F401
        import sdv  # noqa: F401
        import torch  # noqa: F401
    except ImportError:
        pass
    meta = {"machine": harness.machine(), "versions": harness.versions(["ganctl", "numpy", "torch", "ctgan", "sdv",
                                                                        "sdmetrics", "pandas"]),
            "load_average": {"before": load_before, "after": os.getloadavg()[0]},
            "budget": {"epochs": args.epochs, "batch_size": args.batch_size, "rows": args.rows,
                       "seeds": args.seeds, "quick": args.quick},
            "tables": {t: TABLES[t] for t in args.tables}, "metrics": metrics, "skipped": skipped,
            "not_applicable": reasons}
    print(f"Budget: {args.epochs} epochs, batch {args.batch_size}, for every model; {args.rows} synthetic rows per "
          f"run, scored against the held-out rows.{' QUICK RUN: not results.' if args.quick else ''}\n")
    print(markdown(records, directions))
    for line in verdicts(records, directions):
        print(f"- {line}")
    for line in [*skipped, *(f"{k}: {v}" for k, v in reasons.items())]:
        print(f"- {line}")
    print(f"\nFit: ganctl's `ganctl train` command (start-up and compilation included); the anchors' fit() call. "
          f"Sampling rows/s: the anchors' sample() call ({args.rows} rows; not measured for ganctl). New process: "
          f"`ganctl generate RUN -n {args.rows} --out FILE`, and for the anchors a new Python process that loads the "
          f"saved model, samples and writes the CSV file (first seed only). {meta['machine']['cpus']} CPUs ({meta['machine']['cpu_model']}); load average "
          f"{load_before:.2f} before, {meta['load_average']['after']:.2f} after; "
          + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()))
    if args.json:
        args.json.write_text(json.dumps({**meta, "runs": [vars(r) for r in records]}, indent=2))


if __name__ == "__main__":
    main()
