"""``ganctl generate``: sample a trained generator, from its ONNX export or its run directory."""

from __future__ import annotations

from pathlib import Path

import typer

from ganctl.console import guarded, load_plugins


def register(app: typer.Typer) -> None:
    app.command("generate")(generate)


@guarded
def generate(
    source: Path = typer.Argument(..., metavar="MODEL.onnx|RUN_DIR", show_default=False,
                                  help="An ONNX export (ganctl export RUN_DIR --onnx), run with onnxruntime; "
                                       "or a run directory made by ganctl train, run with Keras."),
    n: int = typer.Option(64, "-n", "--n", help="How many images (a model of a table: rows)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the latents: the same seed gives the same images."),
    label: str = typer.Option(None, "--label", metavar="CLASS",
                              help="Class to generate (conditional models): its index or its name; default: all "
                                   "in turn."),
    output: Path = typer.Option(None, "--out", help="FILE.png (a grid) or FILE.npz (images in [-1, 1], labels); for "
                                                    "a model of a table, FILE.csv (the table's columns) or FILE.npz "
                                                    "(encoded rows), or no --out to print the rows.",
                                show_default=False),
    backend: str = typer.Option(None, "--backend", help="Run directories: the backend to sample with "
                                                        "(default: the run's)."),
    provider: str = typer.Option(None, "--provider", help="ONNX models: onnxruntime's execution provider, auto "
                                                          "(TensorRT, then CUDA, when they can run here; else "
                                                          "CPU), cpu, cuda or tensorrt. [default: auto]"),
    weights: str = typer.Option(None, "--weights", metavar="ema|raw",
                                help="Run directories: the generator's weights, ema (the moving average that "
                                     "train.ema keeps) or raw (as trained). [default: ema when the run keeps one, "
                                     "else raw]"),
) -> None:
    """Sample a trained generator (an ONNX export or a run directory) into a PNG grid or an .npz file (a model
    of a table: a CSV file, or the rows printed when --out is left out)."""
    import os

    from ganctl.errors import ConfigError
    from ganctl.runs.rundir import is_model_file
    from ganctl.runs.trained import check_label, write_samples

    if n < 1:
        raise ConfigError(f"-n must be at least 1, got {n}.")
    if seed < 0:
        raise ConfigError(f"--seed must be 0 or more, got {seed}.")
    suffix = output.suffix.lower() if output is not None else ""
    if output is not None:
        if suffix not in (".png", ".npz", ".csv"):
            raise ConfigError(f"--out {output}: the file must end in .png (a grid), .npz (arrays) or .csv (a model of "
                              "a table: its rows).")
        if output.is_dir():
            raise ConfigError(f"--out {output} is a folder; give a file name in it, e.g. "
                              f"{output / ('samples' + suffix)}.")
        folder = next((p for p in output.absolute().parents if p.exists()), None)
        if folder is not None and (not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK)):
            raise ConfigError(f"cannot write {output}: {folder} is not a writable folder; choose a writable location.")
    if is_model_file(source):
        from ganctl.inference.generator import Generator

        if backend is not None:
            raise ConfigError(f"--backend is for run directories; {source} is an ONNX model, which runs on "
                              "onnxruntime: choose its execution provider with --provider.")
        if weights is not None:
            raise ConfigError(f"--weights is for run directories; {source} is an ONNX model, whose weights were "
                              "chosen when it was exported (ganctl export RUN_DIR --weights ema|raw).")
        generator = Generator.open(source, provider=(provider or "auto").strip().lower())
        _check_out(source, output, generator.table,
                   "its ONNX file has no table metadata (ganctl.table): it is a generator of images")
        label = check_label(label, generator.conditional, generator.num_classes, generator.class_names)
        images, labels = generator.sample(n, seed=seed, label=label)
        engine = f"onnxruntime, {generator.providers[0]}"
        if generator.table is not None:
            _table_out(output, generator.table, images, labels, seed, source, engine)
            return
        low, high = generator.value_range
        if (low, high) != (-1.0, 1.0):  # the files hold [-1, 1] images, as for run directories
            images = ((images - low) * (2.0 / (high - low)) - 1.0).astype("float32")
        write_samples(output, images, labels)
        typer.echo(f"wrote {n} images to {output} ({engine})")
        return
    from ganctl import api
    from ganctl.runs.rundir import RunDir
    from ganctl.runs.trained import check_weights, sample_run
    from ganctl.session.assemble import spec_from_dict

    if provider is not None:
        raise ConfigError(f"--provider is for ONNX models; {source} is a run directory, sampled with Keras: "
                          "choose its backend with --backend.")
    spec = spec_from_dict(RunDir.open(source).read_info()["data_spec"])
    table = spec if isinstance(spec, api.TableSpec) else None
    _check_out(source, output, table, "it models images")
    images, labels = sample_run(source, load_plugins(), n=n, seed=seed, label=label, backend=backend,
                                weights=check_weights(weights or "auto"))
    if table is not None:
        _table_out(output, table, images, labels, seed, source, "keras")
        return
    write_samples(output, images, labels)
    typer.echo(f"wrote {n} images to {output}")


def _check_out(source: Path, output: Path | None, table, images_because: str) -> None:
    """``--out`` fits what ``source`` makes: a model of a table writes .csv or .npz (or prints its
    rows without --out), a model of images .png or .npz."""
    from ganctl.errors import ConfigError

    suffix = output.suffix.lower() if output is not None else None
    if table is not None and suffix == ".png":
        raise ConfigError(f"--out {output}: {source} models a table, so write its rows to a .csv file (or encoded rows "
                          "to .npz), or leave --out out to print them.")
    if table is None and suffix in (".csv", None):
        start = f"--out {output}: a .csv file holds the rows of a model of a table, and" if suffix \
            else "--out is needed:"
        raise ConfigError(f"{start} {source} makes images ({images_because}). Write them with --out FILE.png "
                          "(a grid) or --out FILE.npz (arrays).")


def _table_out(output: Path | None, spec, rows, labels, seed: int, source: Path, engine: str) -> None:
    """A model of a table's rows: decoded into a CSV file (``ganctl.runs.tables``), encoded into an
    .npz file, or, without --out, decoded and printed."""
    from ganctl.runs.tables import table_cells, write_table
    from ganctl.runs.trained import write_samples

    n = len(rows)
    if output is None:
        from rich.table import Table
        from rich.text import Text

        from ganctl.console import stdout

        header, cells = table_cells(spec, rows, seed)
        table = Table()
        for name in header:
            table.add_column(name, justify="right" if spec.column(name).type == "numeric" else "left")
        for row in cells:
            table.add_row(*(value if value else Text("NA", style="dim") for value in row))
        stdout().print(table)
        typer.echo(f"{n} rows from {source} (seed {seed}, {engine}); NA: a missing value. --out FILE.csv writes them.")
        return
    if output.suffix.lower() == ".csv":
        write_table(output, spec, rows, seed)
        typer.echo(f"wrote {n} rows to {output} ({engine})")
        return
    write_samples(output, rows, labels)
    typer.echo(f"wrote {n} encoded rows to {output} ({engine})")
