"""Sampling a trained run: load its generator from the newest checkpoint and draw images."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ganctl import backend as backends
from ganctl import checkpoint
from ganctl.errors import ConfigError
from ganctl.fsutil import atomic_write
from ganctl.images import grid, save_png
from ganctl.plugins import PluginHost
from ganctl.recipe import load_recipe
from ganctl.rundir import RunDir
from ganctl.sampling import latents, sample_labels
from ganctl.session import Session

BATCH = 256


def check_label(label: int | None, conditional: bool, num_classes: int) -> None:
    if label is None:
        return
    if not conditional:
        raise ConfigError("--label is only for conditional models; this generator takes no label. Leave it out.")
    if not 0 <= label < num_classes:
        raise ConfigError(f"--label {label} is outside the classes of this model: use 0 to {num_classes - 1}.")


@dataclass
class Trained:
    """A run's generator on an active backend, with the weights of one of its checkpoints."""

    run: RunDir
    session: Session
    checkpoint: checkpoint.Checkpoint


CHECKPOINTS = ("auto", "best", "latest")


def open_trained(path: Path, host: PluginHost, backend: str | None = None, which: str = "latest") -> Trained:
    """Build the run's model on ``backend`` (default: the run's) and load one of its checkpoints.

    ``which``: ``latest`` (the newest usable one), ``best`` (the one ``train.keep_best`` kept), or
    ``auto`` (best when the run has one, else latest).
    """
    if which not in CHECKPOINTS:
        raise ConfigError(f"--checkpoint must be one of {', '.join(CHECKPOINTS)}, got '{which}'.")
    from ganctl.session import open_session, spec_from_dict

    run = RunDir.open(path)
    info = run.read_info()
    recipe = load_recipe(run.recipe_path, host)
    chosen, _ = backends.resolve(backend or info["backend"])
    session = open_session(recipe, host, chosen, spec=spec_from_dict(info["data_spec"]))
    engine = session.engine
    names = [name for name in engine.state_variables() if name.startswith("model/")]
    expected = {name: tuple(engine.state_variables()[name].shape) for name in names}
    best_folder = run.checkpoints / "best"
    if which == "best" and not checkpoint.listing(best_folder):
        raise ConfigError(f"{run.path} has no best checkpoint: its recipe has no train.keep_best, or no "
                          "evaluation has run yet. Use --checkpoint latest.")
    use_best = which == "best" or (which == "auto" and checkpoint.listing(best_folder))
    found, skipped = checkpoint.latest(best_folder if use_best else run.checkpoints)
    if found is None:
        reason = f": {'; '.join(skipped)}" if skipped else " yet"
        raise ConfigError(f"{run.path} has no usable checkpoint{reason}. Train it first (ganctl train).")
    wrong = [k for k, shape in expected.items() if k not in found.arrays or found.arrays[k].shape != shape]
    if wrong:
        raise ConfigError(f"{found.path} does not match the model built from {run.recipe_path} ({wrong[0]}).")
    engine.load_state({k: found.arrays[k] for k in names}, only=names)
    return Trained(run, session, found)


def not_a_generator(path: Path | str) -> ConfigError:
    """The error for a classifier given where a generator is expected."""
    return ConfigError(
        f"{path} is a classifier: it labels images and makes none, so it cannot be sampled, benchmarked as a "
        f"generator or scored with generator metrics. Score it with `ganctl evaluate {path}`; use it to compare "
        f"a generator's images with real ones via --features '{{plugin: classifier, model: {path}}}'."
    )


def sample_run(path: Path, host: PluginHost, *, n: int, seed: int, label: int | None = None,
               backend: str | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """``n`` images (float32 ``[n, H, W, C]`` in ``[-1, 1]``) and their labels from a run's newest checkpoint."""
    session = open_trained(path, host, backend).session
    if session.model.kind != "generator":
        raise not_a_generator(path)
    model, engine = session.model, session.engine
    check_label(label, model.conditional, session.spec.num_classes)
    z = latents(seed, n, model.latent_dim)
    labels = sample_labels(n, session.spec.num_classes, label) if model.conditional else None
    parts = [engine.generate(z[i : i + BATCH], None if labels is None else labels[i : i + BATCH])
             for i in range(0, n, BATCH)]
    return np.concatenate(parts).astype(np.float32), labels


def write_samples(path: Path, images: np.ndarray, labels: np.ndarray | None) -> None:
    """A PNG grid, or an .npz with ``images`` (and ``labels`` as int64)."""
    if path.suffix.lower() == ".png":
        save_png(grid(images), path)
        return
    arrays = {"images": images.astype(np.float32)}
    if labels is not None:
        arrays["labels"] = labels.astype(np.int64)
    atomic_write(path, lambda handle: np.savez(handle, **arrays))
