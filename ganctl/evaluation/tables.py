"""Metrics of a table model's run (API 1.7): generated rows decoded and compared with the real table.

The real table is the run's data (its held-out split when it trained on ``split: train``), decoded
with its missing values; the generated one is ``n`` rows (default: as many as the real table
holds) sampled with ganctl's latents for ``seed`` and decoded as ``ganctl generate`` decodes them.
Each :class:`ganctl.api.TableMetric` compares the two; its result carries that protocol.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from ganctl import __version__, api
from ganctl.errors import ConfigError
from ganctl.evaluation.metrics import Result
from ganctl.plugins import PluginHost
from ganctl.recipe.load import Section, validate_section
from ganctl.runs.rundir import RunDir
from ganctl.runs.tables import decode_rng
from ganctl.sampling import BATCH, inputs


def is_table_run(path: Path) -> bool:
    """Whether ``path`` is the run directory of a model of a table."""
    return RunDir.open(path).read_info().get("data_spec", {}).get("kind") == api.TableSpec.kind


def table_metrics(host: PluginHost) -> list[str]:
    """Every installed metric of tables, in registration order (all are computed when none is named)."""
    return host.declaring("metrics", "data_kinds", ("table",))


def _metric(host: PluginHost, section: str | dict[str, Any] | Section) -> tuple[str, api.Params, api.TableMetric]:
    if not isinstance(section, Section):
        raw = {"plugin": section} if isinstance(section, str) else dict(section)
        section = validate_section(raw, "metrics", host, source="--metric")
    built = host.build("metrics", section.plugin, section.params, expected=api.Metric)
    if not isinstance(built, api.TableMetric):
        raise ConfigError(f"--metric {section.plugin} compares images, and this run models a table: use a metric of "
                          f"tables ({', '.join(table_metrics(host)) or 'none is installed'}).")
    return section.plugin, section.params, built


def evaluate_table(path: Path, host: PluginHost, sections: list[Any], *, n: int | None, seed: int,
                   backend: str | None, weights: str) -> list[Result]:
    """Each requested metric of tables (all when ``sections`` is empty) on the run at ``path``."""
    from ganctl.runs.trained import open_trained
    from ganctl.session.data import build_dataset, held_out_section

    metrics = [_metric(host, section) for section in (sections or table_metrics(host))]  # checked first
    if not metrics:
        raise ConfigError("no metric of tables is installed; see `ganctl plugins`.")
    trained = open_trained(path, host, backend, weights=weights)
    session = trained.session
    spec = session.spec
    assert isinstance(spec, api.TableSpec)
    section = held_out_section(session.recipe.data) or session.recipe.data
    dataset = build_dataset(section, host)
    real = spec.decode(dataset.take(np.arange(len(dataset), dtype=np.int64)).images)
    n = len(dataset) if n is None else n
    if n < 2:
        raise ConfigError(f"--n must be at least 2, got {n}.")
    z, _ = inputs(seed, n, session.model.latent_dim, 0)
    rows = np.concatenate([session.engine.generate(z[i : i + BATCH], None) for i in range(0, n, BATCH)])
    fake = spec.decode(rows, decode_rng(seed))
    results = []
    for name, params, metric in metrics:
        began = time.perf_counter()
        values = metric.compare(real, fake, spec, seed=seed)
        protocol = {"metric": name, "params": params.model_dump(mode="json"), "data": section.to_dict(),
                    "n_real": len(dataset), "n_fake": n, "seed": seed, "decode": "one-hot blocks drawn",
                    "generator": str(path), "engine": session.backend, "weights": trained.weights,
                    "ganctl": __version__}
        results.append(Result(name, {k: float(v) for k, v in values.items()}, protocol,
                              time.perf_counter() - began))
    return results
