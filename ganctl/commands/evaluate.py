"""``ganctl evaluate``: metrics of a run's generator or an ONNX file, each with its protocol."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from ganctl.console import guarded, load_plugins, out

DEFAULT_METRICS = ("fid", "kid", "prdc", "c2st")


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate)


@guarded
def evaluate(
    source: Path = typer.Argument(..., metavar="RUN_DIR|MODEL.onnx", help="A run directory or an exported ONNX file.",
                                  show_default=False),
    metrics: list[str] = typer.Option([], "--metric", "-m", help="Metric plugin (repeatable) [default: the recipe's "
                                      "metrics:, else fid, kid, prdc, c2st]."),
    n: int = typer.Option(None, "--n", help="Real and generated images each [default: 2000]."),
    features: str = typer.Option(None, "--features", help="Feature extractor [default: pixels]."),
    seed: int = typer.Option(0, "--seed", help="Seed of the generated latents and of the choice of real images."),
    data: str = typer.Option(None, "--data", help="Real data: a recipe or a dataset plugin name [default: what the "
                             "model was trained on]."),
    backend: str = typer.Option(None, "--backend", help="Keras backend for a run directory (default: the run's)."),
    provider: str = typer.Option("auto", "--provider", help="onnxruntime provider for an ONNX file."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Extract the real features again instead of reusing them."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (values and protocol) instead of a table."),
) -> None:
    """Compare generated images with real ones: FID, KID, PRDC, C2ST, ... with how each was computed."""
    from ganctl import evaluation
    from ganctl.errors import ConfigError

    if seed < 0:
        raise ConfigError(f"--seed must be 0 or more, got {seed}.")
    host = load_plugins()
    is_onnx = source.suffix.lower() == ".onnx" or source.is_file()
    if is_onnx and backend:
        raise ConfigError("--backend is for run directories; an ONNX file runs on onnxruntime (see --provider).")
    sections: list = list(metrics)
    recipe_metrics = []
    if not is_onnx and not sections:
        from ganctl.recipe import load_recipe
        from ganctl.rundir import RunDir

        recipe = load_recipe(RunDir.open(source).recipe_path, host)
        recipe_metrics = [m.to_dict(core=("n", "features")) for m in recipe.metrics]
    sections = sections or recipe_metrics or list(DEFAULT_METRICS)
    requests = [evaluation.request(host, section, features) for section in sections]  # names checked before loading
    real_data = None
    if data is not None:
        from ganctl.data import load_dataset

        name, params, _ = load_dataset(data, [], host)
        real_data = {"plugin": name, **params}
    subject = (evaluation.subject_from_onnx(source, provider) if is_onnx
               else evaluation.subject_from_run(source, host, backend))
    if n is None and recipe_metrics and not metrics:
        n = next((m["n"] for m in recipe_metrics if m.get("n")), None)
    results = evaluation.evaluate(subject, requests, host, n=n or evaluation.DEFAULT_N, seed=seed,
                                  real_data=real_data, use_cache=not no_cache)
    if not is_onnx:
        from ganctl.rundir import RunDir

        run = RunDir(source)
        for result in results:
            run.log_evaluation(result.to_dict())
    if as_json:
        typer.echo(json.dumps([r.to_dict() for r in results], indent=2))
        return
    _table(results, subject)


def _table(results, subject) -> None:
    from rich.table import Table

    first = results[0].protocol
    table = Table(title=f"{subject.name}: {first['n_fake']} generated vs {first['n_real']} real images "
                        f"(seed {first['seed']}; {subject.engine})", title_justify="left")
    for column in ("metric", "value", "details", "features"):
        table.add_column(column, overflow="fold")
    for result in results:
        key, value = result.headline
        rest = ", ".join(f"{k} {v:.4g}" for k, v in list(result.values.items())[1:] if not k.startswith("class_"))
        extractor = result.protocol["extractor"]
        table.add_row(result.metric, f"{key} {value:.4g}", rest, f"{extractor['name']} ({extractor['sha256'][:12]})")
    out.print(table)
    real = json.dumps(first["real"])
    out.print(f"real data: {real}; ganctl {first['ganctl']}. --json prints every value with its full protocol.")
