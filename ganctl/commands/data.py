"""``ganctl data info``: load a dataset through its plugin and describe it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from ganctl.console import guarded, load_plugins, stdout

app = typer.Typer(help="Inspect datasets.", no_args_is_help=True)


@app.command()
@guarded
def info(
    source: str = typer.Argument(
        ..., metavar="RECIPE|DATASET", show_default=False,
        help="A recipe file (its data: section is used) or a dataset plugin name.",
    ),
    set_: list[str] = typer.Option(
        [], "--set", metavar="KEY=VALUE",
        help="A recipe override, or a dataset parameter when the source is a dataset plugin name. Repeatable."
    ),
    preview: Path = typer.Option(None, "--preview", help="Write a PNG grid of the first 64 images (shuffled by --seed)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the preview's shuffle."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Load a dataset and show its shape, classes and value range; optionally a preview grid."""
    import numpy as np

    from ganctl.session.data import load_dataset

    host = load_plugins()
    name, params, dataset = load_dataset(source, set_, host)
    spec = dataset.spec
    report: dict[str, Any] = {"plugin": name, "params": params, "examples": len(dataset), **spec.to_dict()}
    if dataset.labels is not None:
        counts = np.bincount(dataset.labels, minlength=spec.num_classes)
        report["class_counts"] = {(spec.class_names[i] if spec.class_names else str(i)): int(c)
                                  for i, c in enumerate(counts)}
    if preview is not None:
        from ganctl.runs.images import grid, save_png

        count = min(64, len(dataset))
        batch = next(dataset.batches(count, seed=seed))
        report["preview"] = str(save_png(grid(batch.images), preview))
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    from rich.table import Table

    table = Table(title=f"dataset: {name}", title_justify="left", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value", overflow="fold")
    table.add_row("parameters", ", ".join(f"{k}={v}" for k, v in params.items()) or "(defaults)")
    table.add_row("examples", str(len(dataset)))
    table.add_row("image shape", " x ".join(map(str, spec.shape)) + f" ({spec.layout})")
    table.add_row("value range", f"[{spec.value_range[0]:g}, {spec.value_range[1]:g}] float32")
    table.add_row("classes", str(spec.num_classes) if spec.num_classes else "none (unlabelled)")
    if "class_counts" in report:
        table.add_row("per class", ", ".join(f"{k}: {v}" for k, v in report["class_counts"].items()))
    if preview is not None:
        table.add_row("preview", report["preview"])
    stdout().print(table)
