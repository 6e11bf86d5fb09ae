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
    page = render(run)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(target, page.encode())
    except OSError as exc:
        raise ConfigError(
            f"cannot write {target}: {why_unwritable(target, exc)}. Choose a writable --out.") from None
    typer.echo(f"wrote {target} ({len(page) // 1024} KB)")
