"""What is evaluated: a generator (a run's checkpoint, an ONNX export, the session being trained)
or real held-out images posing as one (the real-vs-real floor), each able to draw ``n`` images."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ganctl import api
from ganctl.errors import ConfigError
from ganctl.evaluation.real import REAL_STREAM, RealData
from ganctl.plugins import PluginHost
from ganctl.recipe.load import validate_section
from ganctl.sampling import BATCH, inputs


@dataclass
class Subject:
    """What is evaluated: something that draws ``n`` images for a seed, and what it was trained on."""

    name: str
    spec: api.DataSpec
    conditional: bool
    data: dict[str, Any] | None
    engine: str
    draw: Callable[[np.ndarray, np.ndarray | None], np.ndarray]
    latent_dim: int = 0
    sampler: Callable[[int, int], tuple[np.ndarray, np.ndarray | None]] | None = None
    """Draws ``(images, labels)`` itself, instead of ``draw`` on latents (real data, for the floor)."""
    holds: int | None = None
    """How many images it can draw at most (real data); None: any number (a generator)."""
    weights: str | None = None
    """Which generator weights draw (``ema`` or ``raw``) when the run keeps a moving average (``train.ema``)."""
    session: Any = None
    """A run's session (Keras model and engine) behind it, for what only the model measures
    (held-out values, :mod:`ganctl.evaluation.held_out`); None for an ONNX file or real data."""

    def sample(self, n: int, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
        """``n`` images and their requested labels (classes in turn), with ganctl's latents for ``seed``."""
        if self.sampler is not None:
            return self.sampler(n, seed)
        z, labels = inputs(seed, n, self.latent_dim, self.spec.num_classes if self.conditional else 0)
        parts = [self.draw(z[i : i + BATCH], None if labels is None else labels[i : i + BATCH])
                 for i in range(0, n, BATCH)]
        return np.concatenate(parts).astype(np.float32), labels


def subject_from_run(path: Path, host: PluginHost, backend: str | None = None, weights: str = "auto") -> Subject:
    """A run directory's generator (newest checkpoint), sampled with Keras; ``weights`` as for
    :func:`ganctl.runs.trained.open_trained`."""
    from ganctl.runs.trained import open_trained

    trained = open_trained(path, host, backend, weights=weights)
    session = trained.session
    if session.spec.kind == "table":
        raise ConfigError(f"{path} models a table: its metrics are the metrics of tables (ganctl evaluate {path}), "
                          "which compare columns, not image features.")
    if session.model.kind != "generator":
        from ganctl.runs.trained import not_a_generator

        raise not_a_generator(path)
    return Subject(
        name=str(path), spec=session.spec, conditional=session.model.conditional,
        data=session.recipe.data.to_dict(),
        engine=f"keras {session.backend} (step {trained.checkpoint.progress.step}{_weights(trained.weights)})",
        draw=session.engine.generate, latent_dim=session.model.latent_dim, weights=trained.weights,
        session=session,
    )


def _weights(weights: str | None) -> str:
    return f", {weights} weights" if weights else ""


def subject_from_onnx(path: Path, provider: str = "auto") -> Subject:
    """An ONNX generator, sampled with onnxruntime; the training data comes from its metadata."""
    from ganctl.inference.generator import Generator

    generator = Generator.open(path, provider=provider)
    if generator.table is not None:
        raise ConfigError(f"{path} is the generator of a table: ganctl evaluates models of tables from their run "
                          "directory (ganctl evaluate RUN_DIR), with the metrics of tables. From this file alone, "
                          f"ganctl generate {path} --out synthetic.csv writes its rows.")
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


def subject_from_session(session: Any, step: int) -> Subject:
    """The generator being trained, as it is now (with the weights its engine holds: see ``Engine.averaged``)."""
    weights = session.engine.weights
    return Subject(
        name=session.recipe.name, spec=session.spec, conditional=session.model.conditional,
        data=session.recipe.data.to_dict(), engine=f"keras {session.backend} (step {step}{_weights(weights)})",
        draw=session.engine.generate, latent_dim=session.model.latent_dim, weights=weights,
    )


def floor_subject(section: dict[str, Any], host: PluginHost, spec: api.DataSpec, conditional: bool, *,
                  trained_on: dict[str, Any] | None) -> tuple[Subject, RealData]:
    """Real held-out images posing as a generator, and the real data to compare them with.

    The held-out part is the dataset's test split, compared with its train split; a dataset
    without such splits is cut in two halves (by a fixed seed), one compared with the other. A
    perfect generator would score about this: it is the floor of each metric at this ``n``.
    ``trained_on``: the model's training data; held-out images it saw are refused.
    """
    from ganctl.session.data import build_dataset, held_out_sections, saw_held_out

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
        order = np.random.default_rng([0, REAL_STREAM, 1]).permutation(len(dataset))
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
        chosen = np.sort(np.random.default_rng([seed, REAL_STREAM, 2]).permutation(pool)[:n])
        batch = dataset.take(chosen)
        return batch.images, batch.labels if conditional else None

    subject = Subject(name=f"real {section['plugin']} data ({where})", spec=spec, conditional=conditional,
                      data=section, engine="real images", draw=lambda z, labels: z, sampler=sampler,
                      holds=len(pool))
    return subject, reference
