"""Computing metrics: real and generated images, through a feature extractor, into numbers.

Every number comes with its protocol — the metric and its parameters, the extractor and the
sha256 of its weights, how many real and generated images, which real data (dataset section and
split), the seed, what generated the images (Keras on a backend, or onnxruntime) and the ganctl
version — so that two numbers are only compared when they were computed the same way.

Which metrics run when none is named is declared by the metric plugins (``default``, API 1.5).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ganctl import __version__, api
from ganctl.errors import ConfigError, GanctlError
from ganctl.evaluation.extractors import Extractor, default_features, make_extractor
from ganctl.evaluation.real import RealData
from ganctl.evaluation.subjects import Subject, subject_from_session
from ganctl.plugins import PluginHost
from ganctl.recipe.load import Section, validate_section

DEFAULT_N = 2000


def default_n(holds: Mapping[str, int]) -> tuple[int, str]:
    """The ``n`` of an evaluation whose user gave none: ``DEFAULT_N``, or fewer when the real
    data holds fewer images. ``holds`` maps each set of real images that ``n`` are drawn from (as
    a user would name it) to its size. Returns ``n`` and, when below the default, why ("" if not).
    """
    if not holds or min(holds.values()) >= DEFAULT_N:
        return DEFAULT_N, ""
    what, count = min(holds.items(), key=lambda item: item[1])
    return count, f"n = {count}, not the default {DEFAULT_N}: {what} holds only {count} images."


def default_metrics(host: PluginHost) -> list[str]:
    """The metrics computed when neither the user nor the recipe names any: those that declare
    ``default``, in registration order (ganctl's own: fid, kid, prdc, c2st)."""
    return host.defaults("metrics", "name one with --metric, or list them in the recipe's metrics:")


@dataclass(frozen=True)
class Request:
    """One metric to compute: the plugin, its parameters, and the extractor it looks through."""

    name: str
    params: api.Params
    features: str | dict[str, Any]


@dataclass
class Result:
    """One metric's values, the protocol they were computed under, and how long it took."""

    metric: str
    values: dict[str, float]
    protocol: dict[str, Any]
    seconds: float

    @property
    def headline(self) -> tuple[str, float]:
        key = next(iter(self.values))
        return key, self.values[key]

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "values": self.values, "protocol": self.protocol,
                "seconds": round(self.seconds, 3)}


def names_features(section: str | dict[str, Any] | Section) -> bool:
    """Whether a metric (a name, a mapping or a recipe's section) names its own extractor."""
    if isinstance(section, Section):
        return section.features is not None
    return isinstance(section, dict) and section.get("features") is not None


def request(host: PluginHost, section: str | dict[str, Any] | Section,
            features: str | dict[str, Any] | None = None, default: str | dict[str, Any] | None = None) -> Request:
    """A request from a metric name, ``{plugin: NAME, features: ..., ...params}`` or a recipe's
    validated metric section (used as it is, not validated again). ``features`` (--features)
    beats the section's; without either, ``default`` (the data's default features, see
    :mod:`ganctl.evaluation.default_features`), else the extractor plugins' default."""
    if isinstance(section, Section):
        name, params, from_section = section.plugin, section.params, section.features
    else:
        raw = {"plugin": section} if isinstance(section, str) else dict(section)
        from_section = raw.pop("features", None)
        raw.pop("every", None)
        raw.pop("n", None)
        checked = validate_section(raw, "metrics", host, source="--metric")
        name, params = checked.plugin, checked.params
    if "image" not in getattr(host.get("metrics", name).factory, "data_kinds", ("image",)):
        raise ConfigError(f"metric {name} compares tables (API 1.7), and this is a model of images: leave it out.")
    return Request(name, params, features or from_section or default or default_features(host))


def _prepare(subject: Subject, requests: Sequence[Request], host: PluginHost
             ) -> tuple[list[tuple[Request, api.Metric]], dict[str, Extractor]]:
    """Build the metrics and their extractors, and check that each can run on ``subject``."""
    metrics: list[tuple[Request, api.Metric]] = []
    for item in requests:
        metric = host.build("metrics", item.name, item.params, expected=api.Metric)
        if metric.needs_labels and not subject.conditional:
            raise ConfigError(
                f"the {item.name} metric compares generated images with the labels they were asked for, "
                f"but {subject.name} is unconditional; use it on a conditional model, or leave it out."
            )
        metrics.append((item, metric))
    extractors: dict[str, Extractor] = {}
    for item, metric in metrics:
        key = json.dumps(item.features, sort_keys=True)
        if key not in extractors:
            extractors[key] = make_extractor(host, item.features, subject.spec)
        if metric.needs_probabilities and not extractors[key].plugin.num_classes:
            raise ConfigError(
                f"the {item.name} metric needs class probabilities, which the '{extractors[key].name}' feature "
                "extractor does not give; use a feature extractor that is a classifier (see ganctl plugins)."
            )
    return metrics, extractors


def check_metrics(session: Any, host: PluginHost) -> None:
    """Fail before training when a metric of the recipe cannot run on this model and data (a model
    of images; a table's are checked by :func:`ganctl.evaluation.tables.check_table_metrics`)."""
    if session.recipe.metrics and session.model.kind != "generator":
        raise ConfigError(
            f"{session.recipe.source}: metrics: the {session.recipe.model.plugin} model is a {session.model.kind}, and "
            "metrics compare generated images with real ones. Remove metrics: (a classifier is scored on the held-out "
            "split after every epoch, and with ganctl evaluate RUN_DIR)."
        )
    if session.spec.kind == "table":  # metrics of tables: ganctl.evaluation.tables.check_table_metrics
        return
    subject = subject_from_session(session, 0)
    for index, section in enumerate(session.recipe.metrics):
        where = f"{session.recipe.source}: metrics[{index}] ({section.plugin})"
        try:
            _prepare(subject, [request(host, section)], host)
        except GanctlError as exc:
            raise ConfigError(f"{where}: {exc.message}") from None
        n = section.n  # without it, default_n fits the default to the data
        if n and session.dataset is not None and n > len(session.dataset):
            raise ConfigError(f"{where}: n is {n}, more than the {len(session.dataset)} images of the dataset; "
                              f"set n to at most {len(session.dataset)}, or leave it out to use them all.")


def evaluate(subject: Subject, requests: Sequence[Request], host: PluginHost, *, n: int | None = None,
             seed: int = 0, real_data: dict[str, Any] | None = None, use_cache: bool = True,
             real_dataset: api.Dataset | None = None, real: RealData | None = None,
             n_note: str = "") -> list[Result]:
    """Compute every requested metric on ``n`` real and ``n`` generated images.

    ``n`` None: :func:`default_n` of the real data. ``real_dataset``: the dataset of
    ``real_data`` (or of the subject's data) when it is already loaded, as during training.
    ``real``: the real data itself, e.g. the floor's reference (its ``n`` and ``seed`` are set
    here). ``n_note``: why ``n`` is below the default, when it is (see :func:`default_n`),
    recorded in the protocols.
    """
    section = real.section if real is not None else real_data or subject.data
    if section is None:
        raise ConfigError(
            f"{subject.name} does not say what data it was trained on (no ganctl.data metadata); "
            "give the real data with --data RECIPE|DATASET."
        )
    metrics, extractors = _prepare(subject, requests, host)
    if real is None:
        real = RealData(section, 0, seed, real_dataset)
    if n is None:
        n, n_note = default_n({f"the real data {json.dumps(real.described)}": len(real.pool(host))})
    if n < 2:
        raise ConfigError(f"--n must be at least 2, got {n}.")
    real.n, real.seed = n, seed
    fake_images, fake_labels = subject.sample(n, seed)
    results = []
    fake_cache: dict[str, api.Features] = {}
    for item, metric in metrics:
        key = json.dumps(item.features, sort_keys=True)
        extractor = extractors[key]
        began = time.perf_counter()
        real_features, cached = real.features(extractor, host, use_cache)
        if key not in fake_cache:
            fake_cache[key] = extractor(fake_images)
        fake_features = fake_cache[key]
        if real_features.features.shape[1] != fake_features.features.shape[1]:
            raise ConfigError(
                f"the real features have {real_features.features.shape[1]} dimensions and the generated ones "
                f"{fake_features.features.shape[1]}: the generator's images ({list(subject.spec.shape)}) do not "
                "match the real data's. Evaluate against the data it was trained on (--data)."
            )
        values = metric.compute(real_features, fake_features, fake_labels=fake_labels, seed=seed)
        values = {k: float(v) for k, v in values.items()}
        protocol = {
            "metric": item.name, "params": metric.params_for(n).model_dump(mode="json"),
            "extractor": extractor.identity, "n_real": n, "n_fake": n,
            **({"n_note": n_note} if n_note else {}),
            "real": real.described, "real_features_cached": cached, "seed": seed,
            "generator": subject.name, "engine": subject.engine, "ganctl": __version__,
            **({"weights": subject.weights} if subject.weights else {}),
        }
        results.append(Result(item.name, values, protocol, time.perf_counter() - began))
    return results
