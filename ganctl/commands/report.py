"""``ganctl report``: one run as a self-contained HTML page."""

from __future__ import annotations

from pathlib import Path

import typer

from ganctl.console import guarded


def register(app: typer.Typer) -> None:
    app.command("report")(report)


@guarded
def report(
    run_dir: Path = typer.Argument(..., metavar="RUN_DIR", help="A run directory.", show_default=False),
    out_file: Path = typer.Option(None, "--out", help="The HTML file to write [default: RUN_DIR/report.html]."),
) -> None:
    """One self-contained HTML page: curves, sample grids over time, evaluations, recipe, run.json."""
    from ganctl.errors import ConfigError
    from ganctl.fsutil import atomic_write, why_unwritable
    from ganctl.runs.report import render
    from ganctl.runs.rundir import RunDir

    run = RunDir.open(run_dir)
    target = out_file or run.path / "report.html"
    if target.is_dir():
        raise ConfigError(f"--out {target} is a folder; give a file path ending in .html.")
    page = render(run, _held_out_predictions(run))
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(target, page.encode())
    except OSError as exc:
        raise ConfigError(
            f"cannot write {target}: {why_unwritable(target, exc)}. Choose a writable --out.") from None
    typer.echo(f"wrote {target} ({len(page) // 1024} KB)")


def _held_out_predictions(run):
    """A classifier run's probabilities and labels on its held-out split (None for a generator,
    or a classifier without such a split, which the report then leaves out)."""
    if run.read_info().get("kind") != "classifier":
        return None
    from ganctl.console import load_plugins
    from ganctl.errors import ConfigError
    from ganctl.evaluation.scoring import held_out_predictions

    try:
        probabilities, labels, _, _ = held_out_predictions(run.path, load_plugins())
    except ConfigError:  # trained on all its data: nothing held out to draw
        return None
    return probabilities, labels
