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
    n: int = typer.Option(64, "-n", "--n", help="How many images."),
    seed: int = typer.Option(0, "--seed", help="Seed of the latents: the same seed gives the same images."),
    label: str = typer.Option(None, "--label", metavar="CLASS",
                              help="Class to generate (conditional models): its index or its name; default: all "
                                   "in turn."),
    output: Path = typer.Option(..., "--out", help="FILE.png (a grid) or FILE.npz (images in [-1, 1], labels); for "
                                                   "a model of a table, FILE.csv (the table's columns) or FILE.npz "
                                                   "(encoded rows).", show_default=False),
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
    of a table: a CSV file)."""
    import os

    from ganctl.errors import ConfigError
    from ganctl.runs.rundir import is_model_file
    from ganctl.runs.trained import check_label, write_samples

    if n < 1:
        raise ConfigError(f"-n must be at least 1, got {n}.")
    if seed < 0:
        raise ConfigError(f"--seed must be 0 or more, got {seed}.")
    suffix = output.suffix.lower()
    if suffix not in (".png", ".npz", ".csv"):
        raise ConfigError(f"--out {output}: the file must end in .png (a grid), .npz (arrays) or .csv (a model of a "
                          "table: its rows).")
    if output.is_dir():
        raise ConfigError(f"--out {output} is a folder; give a file name in it, e.g. {output / ('samples' + suffix)}.")
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
        if suffix == ".csv":
            raise ConfigError(f"--out {output}: a .csv file is written from the run directory of a model of a table; "
                              f"{source} is an ONNX model (tables cannot be exported yet).")
        generator = Generator.open(source, provider=(provider or "auto").strip().lower())
        label = check_label(label, generator.conditional, generator.num_classes, generator.class_names)
        images, labels = generator.sample(n, seed=seed, label=label)
        low, high = generator.value_range
        if (low, high) != (-1.0, 1.0):  # the files hold [-1, 1] images, as for run directories
            images = ((images - low) * (2.0 / (high - low)) - 1.0).astype("float32")
        write_samples(output, images, labels)
        typer.echo(f"wrote {n} images to {output} (onnxruntime, {generator.providers[0]})")
        return
    from ganctl.runs.rundir import RunDir
    from ganctl.runs.trained import check_weights, sample_run
    from ganctl.session.assemble import spec_from_dict

    if provider is not None:
        raise ConfigError(f"--provider is for ONNX models; {source} is a run directory, sampled with Keras: "
                          "choose its backend with --backend.")
    spec = spec_from_dict(RunDir.open(source).read_info()["data_spec"])
    if (suffix == ".csv") != (spec.kind == "table") and suffix != ".npz":
        raise ConfigError(f"--out {output}: {source} models {'a table' if spec.kind == 'table' else 'images'}, "
                          + ("write its rows to a .csv file (or encoded rows to .npz)." if spec.kind == "table"
                             else "so it writes .png or .npz files, not .csv."))
    images, labels = sample_run(source, load_plugins(), n=n, seed=seed, label=label, backend=backend,
                                weights=check_weights(weights or "auto"))
    if suffix == ".csv":
        from ganctl.runs.tables import write_table

        write_table(output, spec, images, seed)  # type: ignore[arg-type]  # a TableSpec: checked above
        typer.echo(f"wrote {n} rows to {output}")
        return
    write_samples(output, images, labels)
    typer.echo(f"wrote {n} {'encoded rows' if spec.kind == 'table' else 'images'} to {output}")
