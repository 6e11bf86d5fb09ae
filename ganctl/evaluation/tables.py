"""Metrics of a table model's run (API 1.7): generated rows decoded and compared with the real table.

The real table is the run's data (its held-out split when it trained on ``split: train``), decoded
with its missing values; the generated one is ``n`` rows (default: as many as the real table
holds) sampled with ganctl's latents for ``seed`` and decoded as ``ganctl generate`` decodes them.
Each :class:`ganctl.api.TableMetric` compares the two; its result carries that protocol. A metric
that ``needs_training_rows`` (machine-learning efficacy, the distance to the closest record) also
gets the rows the model trained on, which requires a held-out split the model never saw.

``ganctl evaluate`` (:func:`evaluate_table`) and a recipe's ``metrics:`` during training
(:class:`ganctl.training.metrics.TrackMetrics`) share :func:`real_tables` and :func:`compare`; a
generated table from a file is scored by :func:`score` too (:mod:`ganctl.evaluation.table_files`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ganctl import __version__, api
from ganctl.errors import ConfigError, GanctlError
from ganctl.evaluation.metrics import Result
from ganctl.plugins import PluginHost
from ganctl.recipe.load import Section, validate_section
from ganctl.runs.rundir import RunDir
from ganctl.runs.tables import decode_rng
from ganctl.sampling import BATCH, inputs

Built = tuple[str, api.Params, api.TableMetric]


def is_table_run(path: Path) -> bool:
    """Whether ``path`` is the run directory of a model of a table."""
    return RunDir.open(path).read_info().get("data_spec", {}).get("kind") == api.TableSpec.kind


def table_metrics(host: PluginHost) -> list[str]:
    """Every installed metric of tables, in registration order (all are computed when none is named)."""
    return host.declaring("metrics", "data_kinds", ("table",))


def build_metric(host: PluginHost, section: str | dict[str, Any] | Section, source: str = "--metric") -> Built:
    """A metric of tables from a name, ``{plugin: NAME, ...params}`` or a recipe's validated section."""
    if not isinstance(section, Section):
        raw = {"plugin": section} if isinstance(section, str) else dict(section)
        section = validate_section(raw, "metrics", host, source=source)
    built = host.build("metrics", section.plugin, section.params, expected=api.Metric)
    if not isinstance(built, api.TableMetric):
        twin = f"table-{section.plugin}"
        hint = f" ({twin} is its counterpart for tables)" if twin in table_metrics(host) else ""
        raise ConfigError(f"{source} {section.plugin} compares images, and this run models a table: use a metric of "
                          f"tables{hint}: {', '.join(table_metrics(host)) or 'none is installed'}.")
    if isinstance(section, Section) and section.features is not None:
        raise ConfigError(f"{source} {section.plugin} compares tables column by column: features: is for metrics of "
                          "images. Leave it out.")
    return section.plugin, section.params, built


def usable(metrics: Sequence[Built], spec: api.TableSpec, held_out: bool, *, named: bool) -> tuple[list[Built], list[str]]:
    """The metrics that can run on tables of ``spec`` (``held_out``: whether the real rows are a
    held-out split the model never saw). A metric that cannot is an error when ``named``, else
    left out with a note, returned beside them."""
    out, notes = [], []
    for name, params, metric in metrics:
        try:
            metric.check(spec)
            if metric.needs_training_rows and not held_out:
                raise ConfigError(f"{name} compares the rows the model trained on with rows it never saw, and this "
                                  "run trained on all its rows: train on data.split: train (the rest is held out).")
        except GanctlError as exc:
            if named:
                raise ConfigError(f"{name}: {exc.message}" if not exc.message.startswith(name) else exc.message) \
                    from None
            notes.append(f"{name} left out: {exc.message}")
            continue
        out.append((name, params, metric))
    return out, notes


def check_table_metrics(session: Any, host: PluginHost) -> list[Built]:
    """A table recipe's ``metrics:``, built; a metric that cannot run on this table stops
    ``ganctl train`` before training starts, naming the recipe and the metric."""
    from ganctl.session.data import held_out_section

    spec = session.spec
    held = held_out_section(session.recipe.data) is not None
    out = []
    for index, section in enumerate(session.recipe.metrics):
        where = f"{session.recipe.source}: metrics[{index}] ({section.plugin})"
        try:
            out += usable([build_metric(host, section, source="metric")], spec, held, named=True)[0]
        except GanctlError as exc:
            raise ConfigError(f"{where}: {exc.message}") from None
    return out


@dataclass
class RealTables:
    """The real rows a run is compared with, decoded: held out (or, without a held-out split, the
    training rows themselves), and the training rows when they are apart."""

    section: Section
    real: dict[str, np.ndarray]
    n_real: int
    train: dict[str, np.ndarray] | None


def _decoded(dataset: api.Dataset, spec: api.TableSpec) -> dict[str, np.ndarray]:
    return spec.decode(dataset.take(np.arange(len(dataset), dtype=np.int64)).images)


def real_tables(trained_on: Section, spec: api.TableSpec, host: PluginHost, *, training: api.Dataset | None = None,
                held_out: api.Dataset | None = None, need_train: bool = False) -> RealTables:
    """The real tables of a run that trained on ``trained_on`` (``training``, ``held_out``: its
    training and held-out rows, when already loaded)."""
    from ganctl.session.data import build_dataset, held_out_section

    held = held_out_section(trained_on)
    if held is not None:
        dataset = held_out if held_out is not None else build_dataset(held, host)
    else:
        dataset = training if training is not None else build_dataset(trained_on, host)
    train = None
    if held is not None and need_train:
        train = _decoded(training if training is not None else build_dataset(trained_on, host), spec)
    return RealTables(held or trained_on, _decoded(dataset, spec), len(dataset), train)


def compare(metrics: Sequence[Built], tables: RealTables, spec: api.TableSpec, generate: Callable[[np.ndarray], np.ndarray],
            latent_dim: int, *, n: int | None, seed: int, about: dict[str, Any]) -> list[Result]:
    """Each metric on ``n`` rows generated (``generate``: latents to encoded rows) for ``seed``
    against the real ``tables``; ``about``: what generated them, for the protocol."""
    n = tables.n_real if n is None else n
    if n < 2:
        raise ConfigError(f"--n must be at least 2, got {n}.")
    z, _ = inputs(seed, n, latent_dim, 0)
    rows = np.concatenate([generate(z[i : i + BATCH]) for i in range(0, n, BATCH)])
    fake = spec.decode(rows, decode_rng(seed))
    return score(metrics, tables, spec, fake, seed=seed, about={"decode": "one-hot blocks drawn", **about})


def score(metrics: Sequence[Built], tables: RealTables, spec: api.TableSpec, fake: dict[str, np.ndarray], *,
          seed: int, about: dict[str, Any]) -> list[Result]:
    """Each metric comparing the generated columns ``fake`` (as :meth:`api.TableSpec.decode` gives
    them) with the real ``tables``; ``about`` goes into each result's protocol."""
    n_fake = len(next(iter(fake.values())))
    results = []
    for name, params, metric in metrics:
        if metric.needs_training_rows and tables.train is None:
            raise ConfigError(f"{name} compares with the rows the model trained on, and they were not given.")
        began = time.perf_counter()
        extra = {"train": tables.train} if metric.needs_training_rows else {}
        values = metric.compare(tables.real, fake, spec, seed=seed, **extra)
        protocol = {"metric": name, "params": params.model_dump(mode="json"), "data": tables.section.to_dict(),
                    "n_real": tables.n_real, "n_fake": n_fake, "seed": seed, **about, "ganctl": __version__}
        if tables.train is not None and metric.needs_training_rows:
            protocol["n_train"] = len(next(iter(tables.train.values())))
        results.append(Result(name, {k: float(v) for k, v in values.items()}, protocol, time.perf_counter() - began))
    return results


def evaluate_table(path: Path, host: PluginHost, sections: list[Any], *, n: int | None, seed: int,
                   backend: str | None, weights: str, notes: list[str] | None = None) -> list[Result]:
    """Each requested metric of tables on the run at ``path``: ``sections`` (names, mappings or the
    recipe's validated sections), else every installed one that can run (those that cannot are
    left out with a line in ``notes``)."""
    from ganctl.runs.trained import open_trained
    from ganctl.session.data import held_out_section

    built = [build_metric(host, section) for section in (sections or table_metrics(host))]  # checked first
    if not built:
        raise ConfigError("no metric of tables is installed; see `ganctl plugins`.")
    from ganctl.recipe.load import load_recipe
    from ganctl.session.assemble import spec_from_dict

    run = RunDir.open(path)
    spec = spec_from_dict(run.read_info()["data_spec"])
    assert isinstance(spec, api.TableSpec)
    held = held_out_section(load_recipe(run.recipe_path, host).data) is not None
    metrics, skipped = usable(built, spec, held, named=bool(sections))  # before the model is built
    if notes is not None:
        notes.extend(skipped)
    if not metrics:
        raise ConfigError("no metric of tables can run on this run: " + " ".join(skipped))
    trained = open_trained(path, host, backend, weights=weights)
    session = trained.session
    tables = real_tables(session.recipe.data, spec, host, need_train=any(m.needs_training_rows for _, _, m in metrics))
    about = {"generator": str(path), "engine": session.backend, "weights": trained.weights}
    return compare(metrics, tables, spec, lambda z: session.engine.generate(z, None), session.model.latent_dim,
                   n=n, seed=seed, about=about)
