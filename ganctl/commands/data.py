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
    if spec.kind == "table":
        if preview is not None:
            from ganctl.errors import ConfigError

            raise ConfigError("--preview draws images, and this dataset is a table: leave --preview out.")
        _table_info(name, params, dataset, as_json)
        return
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


def _table_info(name: str, params: dict[str, Any], dataset: Any, as_json: bool) -> None:
    """A table's columns: type, range or categories, missing rate, how missing values were filled."""
    import numpy as np

    spec = dataset.spec
    columns = []
    for c in spec.columns:
        entry: dict[str, Any] = {"name": c.name, "type": c.type, "missing_rate": c.missing_rate,
                                 "imputation": c.imputation or None, "indicator": c.indicator}
        if c.type == "numeric":
            entry.update(low=c.low, high=c.high, integer=c.integer, modes=c.modes)
        else:
            entry["categories"] = list(c.categories)
        columns.append(entry)
    report: dict[str, Any] = {"plugin": name, "params": params, "kind": "table", "examples": len(dataset),
                              "label": spec.label, "width": spec.width, "columns": columns}
    if dataset.labels is not None:
        counts = np.bincount(dataset.labels, minlength=spec.num_classes)
        report["class_counts"] = {spec.class_names[i]: int(n) for i, n in enumerate(counts)}
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    from rich.table import Table

    table = Table(title=f"table: {name} ({len(dataset)} rows, encoded as {spec.width} values)", title_justify="left")
    for header in ("column", "type", "range / categories", "missing", "filled by"):
        table.add_column(header, overflow="fold")
    for entry in columns:
        if entry["type"] == "numeric":
            values = f"{entry['low']:g} .. {entry['high']:g}" + (" (whole)" if entry["integer"] else "")
        else:
            shown = entry["categories"][:8]
            values = ", ".join(shown) + (f" (+{len(entry['categories']) - 8})" if len(entry["categories"]) > 8 else "")
        label = " (label)" if entry["name"] == spec.label else ""
        filled = (entry["imputation"] or "-") + (" + indicator" if entry["indicator"] else "")
        table.add_row(entry["name"] + label, entry["type"], values, f"{entry['missing_rate']:.1%}", filled)
    stdout().print(table)
    if "class_counts" in report:
        stdout().print("per class: " + ", ".join(f"{k}: {v}" for k, v in report["class_counts"].items()))
