"""``ganctl train`` and ``ganctl generate``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from ganctl.console import guarded, load_plugins

SET_HELP = "Override a recipe key: KEY.PATH=VALUE (value read as YAML). Repeatable."
BACKEND_HELP = "Keras backend: jax, tensorflow or torch (beats the recipe's backend: and KERAS_BACKEND)."


def register(app: typer.Typer) -> None:
    app.command("train")(train)
    app.command("generate")(generate)


def _differences(a: Any, b: Any, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two resolved recipes."""
    if isinstance(a, dict) and isinstance(b, dict):
        keys = list(dict.fromkeys([*a, *b]))
        return [d for k in keys for d in _differences(a.get(k), b.get(k), f"{prefix}{k}.")]
    return [] if a == b else [prefix.rstrip(".")]


def _resumable(run: Any, host: Any, recipe_file: Path | None, overrides: list[str], backend: str | None):
    """The recipe and backend to resume ``run`` with; only ``train.epochs`` may differ from the run's."""
    from ganctl.errors import ConfigError
    from ganctl.recipe import load_recipe

    stored = load_recipe(run.recipe_path, host).to_dict()
    recipe = load_recipe(recipe_file or run.recipe_path, host, overrides)
    changed = [k for k in _differences(stored, recipe.to_dict()) if k != "train.epochs"]
    if changed:
        raise ConfigError(
            f"the recipe differs from the one {run.path} was started with, at: {', '.join(changed)}. "
            "A resumed run must keep its recipe (only train.epochs may change, to train longer); "
            "start a new run for a different recipe."
        )
    chosen = run.read_info()["backend"]
    if backend and backend != chosen:
        raise ConfigError(f"{run.path} was trained on the {chosen} backend; resume it on {chosen} (leave out --backend).")
    return recipe, chosen


@guarded
def train(
    recipe_file: Path = typer.Argument(None, metavar="RECIPE", help="The recipe (YAML).", show_default=False),
    resume: Path = typer.Option(None, "--resume", help="Continue this run directory from its last checkpoint."),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
    backend: str = typer.Option(None, "--backend", help=BACKEND_HELP),
    out_dir: Path = typer.Option(None, "--out", help="Run directory to create (default: OUTPUT/NAME-TIMESTAMP)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress display; print only the run directory."),
) -> None:
    """Train a recipe's model, writing checkpoints, sample grids and metrics to a run directory."""
    from ganctl import backend as backends
    from ganctl.checkpoint import Progress
    from ganctl.errors import ConfigError
    from ganctl.evaluation import check_metrics
    from ganctl.exporting import check_exporters, export_after_training
    from ganctl.progress import reporter
    from ganctl.recipe import load_recipe
    from ganctl.rundir import RunDir
    from ganctl.session import open_session
    from ganctl.trainer import Trainer, run_info

    host = load_plugins()
    if resume is not None:
        if out_dir is not None:
            raise ConfigError("--out makes a new run; with --resume the run directory is the one resumed.")
        run = RunDir.open(resume)
        recipe, chosen = _resumable(run, host, recipe_file, set_, backend)
    elif recipe_file is None:
        raise ConfigError("give a recipe to train (ganctl train RECIPE), or a run to continue (--resume RUN_DIR).")
    else:
        recipe = load_recipe(recipe_file, host, set_)
        chosen, _ = backends.resolve(backend, recipe.backend)

    session = open_session(recipe, host, chosen)
    check_exporters(session, host)  # an export that cannot run should stop us before training, not after
    check_metrics(session, host)  # a metric that cannot run should stop us before training, not after
    trainer = Trainer(session, reporter(quiet, recipe.train.log_every), host)
    if resume is not None:
        run.update_info(**{k: v for k, v in run_info(session, {}).items() if k in ("ganctl", "keras", "devices")})
        trainer.use(run)
        start = trainer.restore()
        if start.epoch >= recipe.train.epochs:
            typer.echo(
                f"{run.path} already finished its {recipe.train.epochs} epochs. To train longer: "
                f"ganctl train --resume {run.path} --set train.epochs={recipe.train.epochs * 2}"
            )
            return
        run.update_info(epochs=recipe.train.epochs)
        run.write_recipe(recipe.to_dict())  # train.epochs may have grown
    else:
        run = RunDir.create(recipe.output, recipe.name, recipe.to_dict(), out_dir)
        plugins = {p.name: f"{p.distribution} {p.version}" for p in host.plugins if p.status == "loaded"}
        run.write_info({**run_info(session, plugins), "epochs": recipe.train.epochs})
        trainer.use(run)
        start = Progress()
    if not quiet:
        typer.echo(f"run {run.path}: {recipe.model.plugin} on {recipe.data.plugin}, backend {chosen}, "
                  f"{'jit' if session.jit else 'eager'}")
    outcome = trainer.fit(start)
    for result in export_after_training(session, host, run, outcome.progress.step):
        if not quiet:
            typer.echo(f"exported {result.format}: {result.path} (max abs difference from Keras {result.max_abs_diff:.2g})")
    if quiet:
        typer.echo(str(run.path))
    elif session.model.kind == "generator":
        typer.echo(f"done: {outcome.progress.step} steps in {outcome.seconds:.1f} s; samples in "
                  f"{run.samples}; run directory {run.path}")
    else:
        validation = run.read_info().get("validation")
        scored = (f"held-out accuracy {validation['accuracy']:.4f} on {validation['n']} images; "
                  if validation else "")
        typer.echo(f"done: {outcome.progress.step} steps in {outcome.seconds:.1f} s; {scored}run directory {run.path}")


@guarded
def generate(
    source: Path = typer.Argument(..., metavar="MODEL.onnx|RUN_DIR", show_default=False,
                                  help="An ONNX export (ganctl export RUN_DIR --onnx), run with onnxruntime; "
                                       "or a run directory made by ganctl train, run with Keras."),
    n: int = typer.Option(64, "-n", help="How many images."),
    seed: int = typer.Option(0, "--seed", help="Seed of the latents: the same seed gives the same images."),
    label: int = typer.Option(None, "--label", help="Class to generate (conditional models); default: all in turn."),
    output: Path = typer.Option(..., "--out", help="FILE.png (a grid) or FILE.npz (images in [-1, 1], labels).",
                                show_default=False),
    backend: str = typer.Option(None, "--backend", help="Run directories: the backend to sample with "
                                                        "(default: the run's)."),
    provider: str = typer.Option(None, "--provider", help="ONNX models: onnxruntime's execution provider, auto "
                                                          "(TensorRT, then CUDA, when they can run here; else "
                                                          "CPU), cpu, cuda or tensorrt. [default: auto]"),
) -> None:
    """Sample a trained generator (an ONNX export or a run directory) into a PNG grid or an .npz file."""
    import os

    from ganctl.errors import ConfigError
    from ganctl.generate import check_label, write_samples

    if n < 1:
        raise ConfigError(f"-n must be at least 1, got {n}.")
    if seed < 0:
        raise ConfigError(f"--seed must be 0 or more, got {seed}.")
    suffix = output.suffix.lower()
    if suffix not in (".png", ".npz"):
        raise ConfigError(f"--out {output}: the file must end in .png (a grid) or .npz (arrays).")
    if output.is_dir():
        raise ConfigError(f"--out {output} is a folder; give a file name in it, e.g. {output / ('samples' + suffix)}.")
    folder = next((p for p in output.absolute().parents if p.exists()), None)
    if folder is not None and (not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK)):
        raise ConfigError(f"cannot write {output}: {folder} is not a writable folder; choose a writable location.")
    onnx = not source.is_dir() and (source.suffix.lower() == ".onnx" or source.is_file())
    if onnx:
        from ganctl.inference import Generator

        if backend is not None:
            raise ConfigError(f"--backend is for run directories; {source} is an ONNX model, which runs on "
                              "onnxruntime: choose its execution provider with --provider.")
        generator = Generator.open(source, provider=(provider or "auto").strip().lower())
        check_label(label, generator.conditional, generator.num_classes)
        images, labels = generator.sample(n, seed=seed, label=label)
        low, high = generator.value_range
        if (low, high) != (-1.0, 1.0):  # the files hold [-1, 1] images, as for run directories
            images = ((images - low) * (2.0 / (high - low)) - 1.0).astype("float32")
        write_samples(output, images, labels)
        typer.echo(f"wrote {n} images to {output} (onnxruntime, {generator.providers[0]})")
        return
    from ganctl.generate import sample_run

    if provider is not None:
        raise ConfigError(f"--provider is for ONNX models; {source} is a run directory, sampled with Keras: "
                          "choose its backend with --backend.")
    images, labels = sample_run(source, load_plugins(), n=n, seed=seed, label=label, backend=backend)
    write_samples(output, images, labels)
    typer.echo(f"wrote {n} images to {output}")
