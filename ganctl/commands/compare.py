"""``ganctl compare``: what runs achieved, side by side."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from ganctl.console import guarded, stdout

# what must agree for two values of a metric to be comparable
PROTOCOL_KEYS = ("params", "extractor", "n_real", "n_fake", "real", "seed")


def _against(record: dict) -> str:
    """How a value stands against its floor, in short: ``3.1x floor`` or ``floor 0.486``."""
    ratio = record["verdict"].get("x_floor")
    return f"{ratio:.2g}x floor" if ratio is not None else f"floor {next(iter(record['floor']['values'].values())):.4g}"


def register(app: typer.Typer) -> None:
    app.command("compare")(compare)


@guarded
def compare(
    runs: list[Path] = typer.Argument(..., metavar="RUN_DIR", help="The run directories to compare: one or more.",
                                      show_default=False),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """The latest evaluation of each run (ganctl evaluate), side by side, with floors and verdicts; differing
    protocols are marked."""
    from ganctl.errors import ConfigError
    from ganctl.runs.rundir import RunDir

    rows = []
    for path in runs:
        run = RunDir.open(path)
        info = run.read_info()
        rows.append({"run": str(path), "model": info.get("model"), "backend": info.get("backend"),
                     "step": info.get("step"), "status": info.get("status"), "evaluations": run.latest_evaluations()})
    metrics = list(dict.fromkeys(m for row in rows for m in row["evaluations"]))
    if not metrics:
        raise ConfigError("none of these runs has been evaluated yet: run ganctl evaluate RUN_DIR on each first.")
    differing = []
    for metric in metrics:
        protocols = {json.dumps({k: row["evaluations"][metric]["protocol"].get(k) for k in PROTOCOL_KEYS},
                                sort_keys=True) for row in rows if metric in row["evaluations"]}
        if len(protocols) > 1:
            differing.append(metric)
    if as_json:
        typer.echo(json.dumps({"runs": rows, "protocols_differ": differing}, indent=2))
        return
    from rich.table import Table

    table = Table(title="latest evaluations", title_justify="left")
    for column in ("run", "model", "backend", "step", *[f"{m}{' *' if m in differing else ''}" for m in metrics]):
        table.add_column(column, overflow="fold")
    for row in rows:
        cells = []
        for metric in metrics:
            record = row["evaluations"].get(metric)
            if record is None:
                cells.append("-")
            else:
                key, value = next(iter(record["values"].items()))
                verdict = record.get("verdict")  # ganctl evaluate's, against the floor of real images
                cells.append(f"{key} {value:.4g}" + (f" ({_against(record)}: {verdict['verdict']})" if verdict else ""))
        table.add_row(row["run"], str(row["model"]), str(row["backend"]), str(row["step"]), *cells)
    stdout().print(table)
    if differing:
        stdout().print(f"* computed with different protocols across runs (n, extractor, real data, seed or "
                  f"parameters): {', '.join(differing)}. Evaluate the runs the same way before comparing.")
