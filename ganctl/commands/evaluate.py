"""``ganctl evaluate``: metrics of a run's generator or an ONNX file, each with its protocol."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from ganctl.console import guarded, load_plugins, stdout


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate)


@guarded
def evaluate(
    source: Path = typer.Argument(..., metavar="RUN_DIR|MODEL.onnx", help="A run directory or an exported ONNX file.",
                                  show_default=False),
    metrics: list[str] = typer.Option([], "--metric", "-m", metavar="NAME", help="Metric plugin (repeatable) [default: the recipe's "
                                      "metrics:, else fid, kid, prdc, c2st; a model of a table: every metric of tables "
                                      "that can run on it]."),
    n: int = typer.Option(None, "--n", "-n", help="Real and generated images each [default: the recipe's metrics: "
                          "n, else 2000, or all the real (and, with --floor, held-out) images when fewer]."),
    features: str = typer.Option(None, "--features", help="Feature extractor: a name, or a YAML mapping such as "
                                 "'{plugin: classifier, model: RUN_DIR}' [default: the recipe's, else a classifier "
                                 "of the data, trained once and cached (docs/evaluation.md)]."),
    floor: bool = typer.Option(None, "--floor/--no-floor", help="Also score real held-out images against real "
                               "training images: what a perfect generator would get at this --n [default: on when "
                               "the data has a held-out split the model never saw]."),
    seed: int = typer.Option(0, "--seed", help="Seed of the generated latents and of the choice of real images."),
    data: str = typer.Option(None, "--data", help="Real data: a recipe or a dataset plugin name [default: what the "
                             "model was trained on]."),
    backend: str = typer.Option(None, "--backend", help="Keras backend for a run directory (default: the run's)."),
    provider: str = typer.Option("auto", "--provider", help="onnxruntime provider for an ONNX file."),
    weights: str = typer.Option(None, "--weights", metavar="ema|raw",
                                help="A run directory's generator weights: ema (the moving average that train.ema "
                                     "keeps) or raw (as trained). [default: ema when the run keeps one, else raw]"),
    no_cache: bool = typer.Option(False, "--no-cache", help="Extract the real features again instead of reusing them."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (values and protocol) instead of a table."),
) -> None:
    """Compare generated images with real ones: FID, KID, PRDC, C2ST, ... with how each was computed."""
    from ganctl.errors import ConfigError
    from ganctl.evaluation.held_out import held_out_result
    from ganctl.evaluation.metrics import default_metrics, default_n, evaluate, names_features, request
    from ganctl.evaluation.scoring import evaluate_classifier, is_classifier
    from ganctl.evaluation.subjects import floor_subject, subject_from_onnx, subject_from_run
    from ganctl.runs.rundir import is_model_file

    if seed < 0:
        raise ConfigError(f"--seed must be 0 or more, got {seed}.")
    host = load_plugins()
    is_onnx = is_model_file(source)
    if is_onnx and backend:
        raise ConfigError("--backend is for run directories; an ONNX file runs on onnxruntime (see --provider).")
    if is_onnx and weights is not None:
        raise ConfigError("--weights is for run directories; an ONNX file's weights were chosen when it was exported "
                          "(ganctl export RUN_DIR --weights ema|raw).")
    from ganctl.runs.trained import check_weights

    weights = check_weights(weights or "auto")
    real_data = _real_data(data, host)
    if is_classifier(source):
        if weights != "auto":
            raise ConfigError(f"{source} is a classifier: --weights chooses a generator's weights (train.ema's "
                              "moving average or the raw ones); leave it out.")
        if metrics or features or floor is not None or n is not None:
            reader = host.declaring("feature_extractors", "reads_classifier_exports")
            use = f" To use it for a generator's metrics: --features '{{plugin: {reader[0]}, model: {source}}}'." \
                if reader else ""
            raise ConfigError(f"{source} is a classifier: it is scored on held-out labelled data (accuracy, precision, "
                              f"recall, F1, ROC-AUC), so --metric, --features, --floor and --n do not apply.{use}")
        result = evaluate_classifier(source, host, backend=backend, data=real_data)
        if not is_onnx:
            from ganctl.runs.rundir import RunDir

            RunDir(source).log_evaluation(result.to_dict())
        if as_json:
            typer.echo(json.dumps([result.to_dict()], indent=2))
        else:
            _classifier_table(result)
        return
    from ganctl.evaluation.tables import is_table_run

    if not is_onnx and is_table_run(source):
        _evaluate_table(source, host, metrics, n=n, seed=seed, backend=backend, weights=weights,
                        others={"--features": features, "--floor": floor or None, "--data": data}, as_json=as_json)
        return
    features_section = _features(features)
    sections: list = list(metrics)
    recipe_metrics = []
    if not is_onnx and not sections:
        from ganctl.recipe.load import load_recipe
        from ganctl.runs.rundir import RunDir

        recipe = load_recipe(RunDir.open(source).recipe_path, host)
        recipe_metrics = list(recipe.metrics)  # validated sections: requests use them as they are
    sections = sections or recipe_metrics or default_metrics(host)
    requests = [request(host, section, features_section) for section in sections]  # checked before loading
    subject = subject_from_onnx(source, provider) if is_onnx else subject_from_run(source, host, backend, weights)
    choice = None
    if features_section is None and not all(names_features(section) for section in sections):
        choice = _default_features(subject, real_data, host)
        requests = [request(host, section, None, choice.features) for section in sections]
    if n is None and recipe_metrics and not metrics:
        n = next((m.n for m in recipe_metrics if m.n), None)
    floors, reference, note, floor_note = [], None, "", ""
    asked = floor is not None
    if not asked:
        floor = _has_unseen_held_out(real_data or subject.data, subject.data, host)
    if floor:  # first (a too large --n fails early), and against the same real images as the model
        section = real_data or subject.data
        if section is None:
            raise ConfigError(f"{source} does not say what data it was trained on; give it with --data for --floor.")
        held_out, reference = floor_subject(section, host, subject.spec, subject.conditional, trained_on=subject.data)
        if not asked and n is not None and n > (held_out.holds or 0):  # the default floor gives way to --n
            floor, reference = False, None
            floor_note = (f"no floor: --n {n} is more than the {held_out.holds} held-out images it is measured on; "
                          f"use --n {held_out.holds} or less to see each value next to its floor.")
    if floor:
        if n is None:  # one n for both rows: the default, capped at the held-out and the reference images
            n, note = default_n({held_out.name: held_out.holds or 0,
                                 f"the real data {json.dumps(reference.described)}": len(reference.pool(host))})
        floors = evaluate(held_out, requests, host, n=n, seed=seed, real=reference, use_cache=not no_cache,
                          n_note=note)
    results = evaluate(subject, requests, host, n=n, seed=seed, real_data=real_data, use_cache=not no_cache,
                       real=reference, n_note=note)
    held_out, held_out_note = held_out_result(subject, host)  # a run's model on its held-out split, when it can
    from ganctl.evaluation.verdict import of_record

    records = [r.to_dict() for r in results]
    for record, found in zip(records, floors, strict=False):
        record["floor"] = found.to_dict()
        judged = of_record(host, record)
        if judged is not None:
            record["verdict"] = judged.to_dict()
    for record, request_ in zip(records, requests, strict=False):
        record["protocol"]["features_source"] = _source(request_, choice, features_section)
    if held_out is not None:
        records.append(held_out.to_dict())
    for line in (floor_note, held_out_note):
        if line:
            from ganctl.console import warn

            warn(line)
    if not is_onnx:
        from ganctl.runs.rundir import RunDir

        run = RunDir(source)
        for record in records:
            run.log_evaluation(record)
    if as_json:
        typer.echo(json.dumps(records, indent=2))
        return
    _table(results, subject, host, floors, held_out)
    _features_lines(records)
    verdicts = [record["verdict"]["line"] for record in records if "verdict" in record]
    if verdicts:
        stdout().print("verdict (x floor: distances; else how much worse than real images):\n  "
                       + "\n  ".join(verdicts), highlight=False)


def _default_features(subject, real_data, host):
    """The data's default features (:mod:`ganctl.training.default_classifier`), its classifier
    trained now on the subject's backend when it is not cached yet."""
    from ganctl.engine import backends
    from ganctl.errors import ConfigError
    from ganctl.training.default_classifier import choose
    from ganctl.training.loop import Trainer

    section = real_data or subject.data
    if section is None:
        raise ConfigError(f"{subject.name} does not say what data it was trained on (no ganctl.data metadata); "
                          "give the real data with --data RECIPE|DATASET.")
    backend = subject.session.backend if subject.session is not None else backends.resolve()[0]
    return choose(host, section, backend, Trainer)


def _has_unseen_held_out(section, trained_on, host) -> bool:
    """Whether the default floor applies: the data has a held-out split the model never saw."""
    from ganctl.session.data import held_out_sections, saw_held_out

    if section is None:
        return False
    found = held_out_sections(section, host)
    return found is not None and not saw_held_out(trained_on, found[0], host)


def _source(item, choice, asked) -> dict:
    """Where a request's features came from, for its protocol."""
    if asked is not None:
        return {"source": "asked", "detail": "features: asked for with --features"}
    if choice is not None and item.features == choice.features:
        return {"source": choice.source, "detail": choice.detail}
    return {"source": "asked", "detail": "features: named in the metric's features:"}


def _features_lines(records) -> None:
    """One line per distinct source of features (which extractor, and where it came from)."""
    for detail in dict.fromkeys(r["protocol"]["features_source"]["detail"] for r in records
                                if "features_source" in r["protocol"]):  # held-out values have no features
        stdout().print(detail, highlight=False)


def _evaluate_table(source: Path, host, metrics: list[str], *, n: int | None, seed: int, backend: str | None,
                    weights: str, others: dict, as_json: bool) -> None:
    """A table model's run: the metrics of tables (all installed ones when none is named)."""
    from ganctl.errors import ConfigError
    from ganctl.evaluation.tables import evaluate_table
    from ganctl.runs.rundir import RunDir

    given = [option for option, value in others.items() if value]
    if given:
        raise ConfigError(f"{source} models a table: {', '.join(given)} are for models of images (a table is compared "
                          "with its own data, column by column). Leave them out.")
    sections: list = [_features(m) if m.strip().startswith("{") else m for m in metrics]
    if not sections:  # the recipe's metrics:, else every metric of tables that can run
        from ganctl.recipe.load import load_recipe

        sections = list(load_recipe(RunDir.open(source).recipe_path, host).metrics)
        if n is None:
            n = next((m.n for m in sections if m.n), None)
    notes: list[str] = []
    results = evaluate_table(source, host, sections, n=n, seed=seed, backend=backend, weights=weights, notes=notes)
    from ganctl.console import warn

    for line in notes:  # on stderr, so --json stays JSON
        warn(line)
    run = RunDir(source)
    for result in results:
        run.log_evaluation(result.to_dict())
    if as_json:
        typer.echo(json.dumps([r.to_dict() for r in results], indent=2))
        return
    from rich.table import Table

    first = results[0].protocol
    table = Table(title=f"{source}: {first['n_fake']} generated vs {first['n_real']} real rows (seed {first['seed']}; "
                        f"{first['engine']})", title_justify="left")
    for column in ("metric", "value", "details"):
        table.add_column(column, overflow="fold")
    for result in results:
        key, value = result.headline
        rest = ", ".join(f"{k} {v:.4g}" for k, v in list(result.values.items())[1:])
        table.add_row(result.metric, f"{key} {value:.4g}", rest)
    stdout().print(table)
    stdout().print(f"real data: {json.dumps(first['data'])}; ganctl {first['ganctl']}. --json prints every value "
                   "with its full protocol.")


def _features(text: str | None) -> str | dict | None:
    """``--features``: a plugin name, or a YAML mapping ``{plugin: NAME, ...}``."""
    if text is None or not text.strip().startswith("{"):
        return text
    import yaml

    from ganctl.errors import ConfigError

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"--features {text!r} is not a valid YAML mapping ({str(exc).splitlines()[0]}); write it "
                          "as '{plugin: classifier, model: runs/my-classifier}'.") from None
    if not isinstance(value, dict) or not isinstance(value.get("plugin"), str):
        raise ConfigError(f"--features {text!r} must name its plugin, e.g. '{{plugin: classifier, model: RUN_DIR}}'.")
    return value


def _real_data(data: str | None, host) -> dict | None:
    if data is None:
        return None
    from ganctl.session.data import load_dataset

    name, params, _ = load_dataset(data, [], host)
    return {"plugin": name, **params}


def _table(results, subject, host, floors=(), held_out=None) -> None:
    from rich.table import Table

    first = results[0].protocol
    table = Table(title=f"{subject.name}: {first['n_fake']} generated vs {first['n_real']} real images "
                        f"(seed {first['seed']}; {subject.engine})", title_justify="left")
    columns = ["metric", "value", "details", "features"]
    if floors:
        columns[2:2] = ["floor", "x floor"]
    for column in columns:
        table.add_column(column, overflow="fold")
    for index, result in enumerate(results):
        key, value = result.headline
        rest = ", ".join(f"{k} {v:.4g}" for k, v in list(result.values.items())[1:] if not k.startswith("class_"))
        extractor = result.protocol["extractor"]
        distance = getattr(host.get("metrics", result.metric).factory, "distance", False)
        shown = [value] + ([floors[index].headline[1]] if floors else [])
        if distance and min(shown) < 0:  # e.g. KID, an unbiased estimate of MMD², which is 0 or more
            which = {(True, True): "value and floor", (True, False): "value", (False, True): "floor"}[
                (value < 0, len(shown) > 1 and shown[1] < 0)]
            rest += (f"{'; ' if rest else ''}{key} {which} below 0: an unbiased estimate of a distance that is 0 "
                     "when the two sets are indistinguishable can fall below 0 (read it as 0)")
        row = [result.metric, f"{key} {value:.4g}", rest, f"{extractor['name']} ({extractor['sha256'][:12]})"]
        if floors:  # the ratio means something for distances above 0 (FID, KID), not for scores (AUC, coverage)
            low = shown[1]
            row[2:2] = [f"{low:.4g}", f"{value / low:.3g}" if distance and min(shown) > 0 else "-"]
        table.add_row(*row)
    if held_out is not None:  # the model's own values on held-out images: no features, no floor
        key, value = held_out.headline
        rest = ", ".join(f"{k} {v:.4g}" for k, v in list(held_out.values.items())[1:])
        split = held_out.protocol["data"].get("split", "held-out")
        rest += f"{'; ' if rest else ''}mean over {held_out.protocol['n']} images of the {split} split"
        table.add_row(*(["held_out", f"{key} {value:.4g}"] + (["-", "-"] if floors else []) + [rest, "-"]))
    stdout().print(table)
    if first.get("n_note"):
        stdout().print(first["n_note"])
    real = json.dumps(first["real"])
    stdout().print(f"real data: {real}; ganctl {first['ganctl']}. --json prints every value with its full protocol.")
    if floors:
        stdout().print(f"floor: {floors[0].protocol['generator']} vs {json.dumps(floors[0].protocol['real'])}, "
                  f"the same n and seed.")


def _classifier_table(result) -> None:
    from rich.table import Table

    protocol = result.protocol
    stdout().print(f"{protocol['classifier']}: {protocol['n']} held-out images ({protocol['engine']})")
    table = Table()
    for column in ("score", "value"):
        table.add_column(column)
    for key, value in result.values.items():
        table.add_row(key, f"{value:.4f}")
    stdout().print(table)
    stdout().print(f"data: {json.dumps(protocol['data'])}; precision, recall and F1 are macro averages, ROC-AUC is "
              f"one-vs-rest. ganctl {protocol['ganctl']}.")
