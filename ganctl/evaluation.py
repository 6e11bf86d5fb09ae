"""Evaluating a generator: real and generated images, through a feature extractor, into metrics.

Every number comes with its protocol — the metric and its parameters, the extractor and the
sha256 of its weights, how many real and generated images, which real data (dataset section and
split), the seed, what generated the images (Keras on a backend, or onnxruntime) and the ganctl
version — so that two numbers are only compared when they were computed the same way.

Real features are cached per (data section, n, seed, extractor identity) under
``$GANCTL_CACHE_DIR/features`` (default ``~/.cache/ganctl/features``): evaluating many runs on
the same data extracts the real images once.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ganctl import __version__, api
from ganctl.errors import ConfigError, GanctlError
from ganctl.fsutil import atomic_write
from ganctl.plugins import PluginHost
from ganctl.recipe import Section, validate_section
from ganctl.sampling import latents, sample_labels

DEFAULT_N = 2000
DEFAULT_FEATURES = "pixels"
_REAL_STREAM = 0x7EA1  # separates the choice of real images from every other use of the seed
GENERATE_BATCH = 256


@dataclass
class Subject:
    """What is evaluated: something that draws ``n`` images for a seed, and what it was trained on."""

    name: str
    spec: api.DataSpec
    conditional: bool
    data: dict[str, Any] | None
    engine: str
    draw: Callable[[np.ndarray, np.ndarray | None], np.ndarray]

    def sample(self, n: int, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
        """``n`` images and their requested labels (classes in turn), with ganctl's latents for ``seed``."""
        if self.sampler is not None:
            return self.sampler(n, seed)
        z = latents(seed, n, self.latent_dim)
        labels = sample_labels(n, self.spec.num_classes) if self.conditional else None
        parts = [self.draw(z[i : i + GENERATE_BATCH], None if labels is None else labels[i : i + GENERATE_BATCH])
                 for i in range(0, n, GENERATE_BATCH)]
        return np.concatenate(parts).astype(np.float32), labels

    latent_dim: int = 0
    sampler: Callable[[int, int], tuple[np.ndarray, np.ndarray | None]] | None = None
    """Draws ``(images, labels)`` itself, instead of ``draw`` on latents (real data, for the floor)."""
    holds: int | None = None
    """How many images it can draw at most (real data); None: any number (a generator)."""


def default_n(holds: Mapping[str, int]) -> tuple[int, str]:
    """The ``n`` of an evaluation whose user gave none: ``DEFAULT_N``, or fewer when the real
    data holds fewer images. ``holds`` maps each set of real images that ``n`` are drawn from (as
    a user would name it) to its size. Returns ``n`` and, when below the default, why ("" if not).
    """
    if not holds or min(holds.values()) >= DEFAULT_N:
        return DEFAULT_N, ""
    what, count = min(holds.items(), key=lambda item: item[1])
    return count, f"n = {count}, not the default {DEFAULT_N}: {what} holds only {count} images."


def subject_from_run(path: Path, host: PluginHost, backend: str | None = None) -> Subject:
    """A run directory's generator (newest checkpoint), sampled with Keras."""
    from ganctl.generate import open_trained

    trained = open_trained(path, host, backend)
    session = trained.session
    if session.model.kind != "generator":
        from ganctl.generate import not_a_generator

        raise not_a_generator(path)
    return Subject(
        name=str(path), spec=session.spec, conditional=session.model.conditional,
        data=session.recipe.data.to_dict(), engine=f"keras {session.backend} (step {trained.checkpoint.progress.step})",
        draw=session.engine.generate, latent_dim=session.model.latent_dim,
    )


def subject_from_onnx(path: Path, provider: str = "auto") -> Subject:
    """An ONNX generator, sampled with onnxruntime; the training data comes from its metadata."""
    from ganctl.inference import Generator

    generator = Generator.open(path, provider=provider)
    height, width, channels = generator.data_shape
    spec = api.DataSpec(height=height, width=width, channels=channels, num_classes=generator.num_classes,
                        class_names=tuple(generator.class_names) if len(generator.class_names) == generator.num_classes
                        else ())
    data = generator.metadata.get("ganctl.data")
    return Subject(
        name=str(path), spec=spec, conditional=generator.conditional,
        data=json.loads(data) if data else None, engine=f"onnxruntime ({', '.join(generator.providers)})",
        draw=lambda z, labels: generator.run(z, None if labels is None else labels.astype(np.int64)),
        latent_dim=generator.latent_dim,
    )


# -- features -----------------------------------------------------------------------------------


@dataclass
class Extractor:
    """A prepared feature extractor and its identity."""

    name: str
    plugin: api.FeatureExtractor
    identity: dict[str, str]

    def __call__(self, images: np.ndarray) -> api.Features:
        size = max(1, int(self.plugin.batch_size))
        parts = [self.plugin.extract(images[i : i + size]) for i in range(0, len(images), size)]
        features = np.concatenate([p.features for p in parts]).astype(np.float32, copy=False)
        if features.ndim != 2 or len(features) != len(images):
            raise GanctlError(
                f"feature extractor '{self.name}' returned features of shape {list(features.shape)} for "
                f"{len(images)} images; expected [{len(images)}, D]. This is a bug in the plugin."
            )
        probabilities = None
        if parts[0].probabilities is not None:
            probabilities = np.concatenate([p.probabilities for p in parts]).astype(np.float32, copy=False)
        return api.Features(features, probabilities)


def make_extractor(host: PluginHost, section: str | dict[str, Any], spec: api.DataSpec) -> Extractor:
    """Build, check and prepare the extractor named by ``section`` (a name or ``{plugin: NAME, ...}``)."""
    if isinstance(section, str):
        section = {"plugin": section}
    checked: Section = validate_section(section, "feature_extractors", host, source="features")
    plugin = host.get("feature_extractors", checked.plugin).factory(checked.params)
    if not isinstance(plugin, api.FeatureExtractor):
        raise GanctlError(f"feature extractor plugin '{checked.plugin}' built a {type(plugin).__name__}, not a "
                          "ganctl.api.FeatureExtractor; this is a bug in the plugin.")
    plugin.prepare(spec)
    identity = dict(plugin.identity())
    missing = [k for k in ("name", "sha256") if not identity.get(k)]
    if missing:
        raise GanctlError(f"feature extractor '{checked.plugin}' does not say its {', '.join(missing)}; "
                          "this is a bug in the plugin.")
    identity["params"] = json.dumps(checked.params.model_dump(mode="json"), sort_keys=True)
    return Extractor(checked.plugin, plugin, identity)


def cache_dir() -> Path:
    root = os.environ.get("GANCTL_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "ganctl")
    return Path(root) / "features"


@dataclass
class RealData:
    """``n`` real images chosen from a dataset section with a seed, and where they came from."""

    section: dict[str, Any]
    n: int
    seed: int
    dataset: api.Dataset | None = None
    images: np.ndarray | None = None
    labels: np.ndarray | None = None
    subset: tuple[str, np.ndarray] | None = None
    """``(name, indices)``: draw only from these examples of the dataset (the floor's reference half)."""
    _features: dict[str, api.Features] = field(default_factory=dict)

    @property
    def described(self) -> dict[str, Any]:
        """The data section, and the subset drawn from when there is one (for protocols)."""
        return self.section if self.subset is None else {**self.section, "subset": self.subset[0]}

    def key(self, extractor: Extractor) -> str:
        text = json.dumps({"data": self.described, "n": self.n, "seed": self.seed,
                           "extractor": extractor.identity}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def features(self, extractor: Extractor, host: PluginHost, use_cache: bool = True) -> tuple[api.Features, bool]:
        """The real features through ``extractor``, and whether they came from the cache."""
        key = self.key(extractor)
        if key in self._features:
            return self._features[key], True
        path = cache_dir() / f"{key}.npz"
        if use_cache and path.is_file():
            try:
                with np.load(path) as archive:
                    found = api.Features(archive["features"],
                                         archive["probabilities"] if "probabilities" in archive.files else None)
                self._features[key] = found
                return found, True
            except (OSError, ValueError, KeyError):
                pass  # a damaged cache entry: compute it again
        features = extractor(self.load(host))
        self._features[key] = features
        if use_cache:
            arrays = {"features": features.features}
            if features.probabilities is not None:
                arrays["probabilities"] = features.probabilities
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                atomic_write(path, lambda handle: np.savez(handle, **arrays))
            except OSError:
                pass  # caching is an optimisation; an unwritable cache must not fail an evaluation
        return features, False

    def pool(self, host: PluginHost) -> np.ndarray:
        """The indices of the dataset's examples the images are drawn from (loads the dataset)."""
        if self.dataset is None:
            from ganctl.data import build_dataset

            self.dataset = build_dataset(validate_section(self.section, "datasets", host, source="the real data"),
                                         host)
        return np.arange(len(self.dataset)) if self.subset is None else self.subset[1]

    def load(self, host: PluginHost) -> np.ndarray:
        if self.images is None:
            pool = self.pool(host)
            dataset = self.dataset
            assert dataset is not None
            if self.n > len(pool):
                raise ConfigError(
                    f"--n {self.n} is more than the {len(pool)} real images of {self.section['plugin']} "
                    f"({json.dumps(self.described)}); use --n {len(pool)} or less."
                )
            chosen = np.random.default_rng([self.seed, _REAL_STREAM]).permutation(pool)[: self.n]
            batch = dataset.take(np.sort(chosen))
            self.images, self.labels = batch.images, batch.labels
        return self.images


# -- metrics ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """One metric to compute: the plugin, its parameters, and the extractor it looks through."""

    name: str
    params: api.Params
    features: str | dict[str, Any]


@dataclass
class Result:
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


def request(host: PluginHost, section: str | dict[str, Any], features: str | dict[str, Any] | None = None) -> Request:
    """A request from a metric name or ``{plugin: NAME, features: ..., ...params}``."""
    if isinstance(section, str):
        section = {"plugin": section}
    section = dict(section)
    from_section = section.pop("features", None)
    chosen = features or from_section or DEFAULT_FEATURES  # --features beats the recipe
    section.pop("every", None)
    section.pop("n", None)
    checked = validate_section(section, "metrics", host, source="--metric")
    return Request(checked.plugin, checked.params, chosen)


def _prepare(subject: Subject, requests: Sequence[Request], host: PluginHost
             ) -> tuple[list[tuple[Request, api.Metric]], dict[str, Extractor]]:
    """Build the metrics and their extractors, and check that each can run on ``subject``."""
    metrics: list[tuple[Request, api.Metric]] = []
    for item in requests:
        metric = host.get("metrics", item.name).factory(item.params)
        if not isinstance(metric, api.Metric):
            raise GanctlError(f"metric plugin '{item.name}' built a {type(metric).__name__}, not a ganctl.api.Metric; "
                              "this is a bug in the plugin.")
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
    """Fail before training when a metric of the recipe cannot run on this model and data."""
    if session.recipe.metrics and session.model.kind != "generator":
        raise ConfigError(
            f"{session.recipe.source}: metrics: the {session.recipe.model.plugin} model is a {session.model.kind}, and "
            "metrics compare generated images with real ones. Remove metrics: (a classifier is scored on the held-out "
            "split after every epoch, and with ganctl evaluate RUN_DIR)."
        )
    subject = subject_from_session(session, 0)
    for index, section in enumerate(session.recipe.metrics):
        where = f"{session.recipe.source}: metrics[{index}] ({section.plugin})"
        try:
            _prepare(subject, [request(host, section.to_dict(core=("features",)))], host)
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
        }
        results.append(Result(item.name, values, protocol, time.perf_counter() - began))
    return results


# -- the real-vs-real floor ---------------------------------------------------------------------


def floor_subject(section: dict[str, Any], host: PluginHost, spec: api.DataSpec, conditional: bool, *,
                  trained_on: dict[str, Any] | None) -> tuple[Subject, RealData]:
    """Real held-out images posing as a generator, and the real data to compare them with.

    The held-out part is the dataset's test split, compared with its train split; a dataset
    without such splits is cut in two halves (by a fixed seed), one compared with the other. A
    perfect generator would score about this: it is the floor of each metric at this ``n``.
    ``trained_on``: the model's training data; held-out images it saw are refused.
    """
    from ganctl.data import build_dataset, held_out_sections, saw_held_out

    found = held_out_sections(section, host)
    held_out = found[0] if found is not None else section
    if saw_held_out(trained_on, held_out, host):
        part = (f"its {held_out['split']} split" if found is not None
                else "half of it: without train/test splits, the data is cut in two")
        raise ConfigError(
            f"--floor scores real images the model never saw, but it was trained on {json.dumps(trained_on)}, "
            f"which includes the held-out images ({part}), so the floor would flatter it. Train on the training "
            "split alone (split: train in the recipe's data:) and evaluate that run, or give real data it was not "
            "trained on with --data RECIPE|DATASET."
        )
    if found is not None:
        held_out, reference_section = found
        dataset = build_dataset(validate_section(held_out, "datasets", host, source="the held-out data"), host)
        pool = np.arange(len(dataset))
        reference = RealData(reference_section, 0, 0)
        where = f"held-out {held_out.get('split')} split"
    else:
        dataset = build_dataset(validate_section(section, "datasets", host, source="the real data"), host)
        order = np.random.default_rng([0, _REAL_STREAM, 1]).permutation(len(dataset))
        half = len(order) // 2
        pool = np.sort(order[:half])
        reference = RealData(section, 0, 0, dataset=dataset, subset=("second half", np.sort(order[half:])))
        where = "first half (the reference is the second half)"

    def sampler(n: int, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
        if n > len(pool):
            raise ConfigError(
                f"--n {n} is more than the {len(pool)} images of the {where} of {section['plugin']}, so the floor "
                f"cannot be measured at this n; use --n {len(pool)} or less (FID depends on n: compare a model "
                "with its floor at the same n)."
            )
        chosen = np.sort(np.random.default_rng([seed, _REAL_STREAM, 2]).permutation(pool)[:n])
        batch = dataset.take(chosen)
        return batch.images, batch.labels if conditional else None

    subject = Subject(name=f"real {section['plugin']} data ({where})", spec=spec, conditional=conditional,
                      data=section, engine="real images", draw=lambda z, labels: z, sampler=sampler,
                      holds=len(pool))
    return subject, reference


def subject_from_session(session: Any, step: int) -> Subject:
    """The generator being trained, as it is now."""
    return Subject(
        name=session.recipe.name, spec=session.spec, conditional=session.model.conditional,
        data=session.recipe.data.to_dict(), engine=f"keras {session.backend} (step {step})",
        draw=session.engine.generate, latent_dim=session.model.latent_dim,
    )


# -- classifiers --------------------------------------------------------------------------------


def is_classifier(source: Path) -> bool:
    """Whether ``source`` is a classifier's run directory or ONNX export (not a generator's)."""
    if source.is_dir():
        info = source / "run.json"
        try:
            return info.is_file() and json.loads(info.read_text()).get("kind") == "classifier"
        except (OSError, ValueError):
            return False
    if source.is_file() and source.suffix.lower() == ".onnx":
        try:
            import onnx

            model = onnx.load(str(source), load_external_data=False)
        except Exception:  # not readable as ONNX: the generator path reports it properly
            return False
        return any(p.key == "ganctl.kind" and p.value == "classifier" for p in model.metadata_props)
    return False


def evaluate_classifier(source: Path, host: PluginHost, *, backend: str | None = None,
                        data: dict[str, Any] | None = None) -> Result:
    """A classifier's accuracy, precision, recall, F1 and ROC-AUC on held-out labelled data.

    A run directory runs in Keras (its newest checkpoint), an ONNX file in onnxruntime. The data
    is ``data``, or the held-out test split of the data it was trained on.
    """
    from ganctl.classification import predict, scores
    from ganctl.data import build_dataset, held_out_sections, saw_held_out

    began = time.perf_counter()
    if source.is_dir():
        from ganctl.generate import open_trained

        trained = open_trained(source, host, backend)
        session = trained.session
        trained_on, spec = session.recipe.data.to_dict(), session.spec
        engine = f"keras {session.backend} (step {trained.checkpoint.progress.step})"

        def classify(images: np.ndarray) -> np.ndarray:
            return session.engine.classify(images)[0]
    else:
        import onnx

        from ganctl.inference import _json_field

        meta = {p.key: p.value for p in onnx.load(str(source), load_external_data=False).metadata_props}
        trained_on = _json_field(meta, "ganctl.data", source)
        height, width, channels = _json_field(meta, "ganctl.data_shape", source)
        spec = api.DataSpec(height=height, width=width, channels=channels)
        extractor = make_extractor(host, {"plugin": "classifier", "model": str(source)}, spec)
        engine = "onnxruntime (CPU)"

        def classify(images: np.ndarray) -> np.ndarray:
            found = extractor(images).probabilities
            assert found is not None
            return found
    section = data
    if section is None:
        found = held_out_sections(trained_on, host)
        if found is None or saw_held_out(trained_on, found[0], host):
            raise ConfigError(
                f"{source} was trained on {json.dumps(trained_on)}, which leaves no held-out split it never saw to "
                "score it on; train it on split: train, or give labelled data it was not trained on with "
                "--data RECIPE|DATASET."
            )
        section = found[0]
    dataset = build_dataset(validate_section(section, "datasets", host, source="--data"), host)
    if dataset.labels is None:
        raise ConfigError(f"the data {json.dumps(section)} has no labels, so a classifier cannot be scored on it; "
                          "give labelled data with --data.")
    if dataset.spec.shape != spec.shape:
        raise ConfigError(f"{source} takes {'x'.join(map(str, spec.shape))} images, but {json.dumps(section)} has "
                          f"{'x'.join(map(str, dataset.spec.shape))}; give data of the size it was trained on.")
    probabilities, labels = predict(classify, dataset)
    values = scores(probabilities, labels)
    protocol = {"metric": "classification", "params": {}, "data": section, "n": int(len(labels)),
                "classifier": str(source), "engine": engine, "ganctl": __version__}
    return Result("classification", values, protocol, time.perf_counter() - began)
