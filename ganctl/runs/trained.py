"""Sampling a trained run: load its generator from the newest checkpoint and draw images."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ganctl.console import warn
from ganctl.engine import backends
from ganctl.errors import ConfigError
from ganctl.fsutil import atomic_write
from ganctl.plugins import PluginHost
from ganctl.recipe.load import load_recipe
from ganctl.runs import checkpoint
from ganctl.runs.images import grid, save_png
from ganctl.runs.rundir import RunDir
from ganctl.sampling import BATCH, inputs
from ganctl.session.assemble import Session

MAX_NAMES_SHOWN = 20  # class names listed in an error about --label


def check_label(label: int | str | None, conditional: bool, num_classes: int,
                class_names: Sequence[str] = ()) -> int | None:
    """The class index ``--label`` asks for: a whole number is a class index, anything else a class name."""
    if label is None:
        return None
    if not conditional:
        raise ConfigError("--label is only for conditional models; this generator takes no label. Leave it out.")
    text = str(label).strip()
    names = [str(name) for name in class_names] if len(class_names) == num_classes else []
    listed = ", ".join(names[:MAX_NAMES_SHOWN]) + (f" (and {len(names) - MAX_NAMES_SHOWN} more)"
                                                   if len(names) > MAX_NAMES_SHOWN else "")
    try:
        index = int(text)
    except ValueError:
        if text in names:
            return names.index(text)
        if not names:
            raise ConfigError(f"--label '{text}' is not a class index, and this model records no class "
                              f"names: use 0 to {num_classes - 1}.") from None
        raise ConfigError(f"--label '{text}' is not a class of this model: use a class index from 0 to "
                          f"{num_classes - 1} or one of its class names: {listed}.") from None
    if not 0 <= index < num_classes:
        raise ConfigError(f"--label {index} is outside the classes of this model: use 0 to {num_classes - 1}."
                          + (f" Class names work too: {listed}." if names else ""))
    return index


@dataclass
class Trained:
    """A run's generator on an active backend, with the weights of one of its checkpoints."""

    run: RunDir
    session: Session
    checkpoint: checkpoint.Checkpoint

    @property
    def weights(self) -> str | None:
        """The generator weights loaded: ``ema`` (the average) or ``raw``; None when the run keeps no average."""
        return self.session.engine.weights


CHECKPOINTS = ("auto", "best", "latest")
WEIGHTS = ("auto", "ema", "raw")


def check_weights(weights: str) -> str:
    """``--weights``, checked (before a model is built)."""
    if weights not in WEIGHTS:
        raise ConfigError(f"--weights must be one of {', '.join(WEIGHTS)}, got '{weights}'.")
    return weights


def open_trained(path: Path, host: PluginHost, backend: str | None = None, which: str = "latest",
                 weights: str = "auto") -> Trained:
    """Build the run's model on ``backend`` (default: the run's) and load one of its checkpoints.

    ``which``: ``latest`` (the newest usable one), ``best`` (the one ``train.keep_best`` kept), or
    ``auto`` (best when the run has one, else latest). ``weights``: the generator's moving average
    (``ema``, when ``train.ema`` kept one), its raw weights (``raw``), or ``auto`` (ema when there is one).
    """
    if which not in CHECKPOINTS:
        raise ConfigError(f"--checkpoint must be one of {', '.join(CHECKPOINTS)}, got '{which}'.")
    check_weights(weights)
    from ganctl.session.assemble import open_session, spec_from_dict

    run = RunDir.open(path)
    info = run.read_info()
    recipe = load_recipe(run.recipe_path, host)
    chosen, _ = backends.resolve(backend or info["backend"])
    # float32 whatever train.precision trained it: samples, evaluations and exports at full precision
    session = open_session(recipe, host, chosen, spec=spec_from_dict(info["data_spec"]), precision="float32")
    engine = session.engine
    expected = engine.model_shapes()
    best_folder = run.best_checkpoints
    if which == "best" and not checkpoint.listing(best_folder):
        raise ConfigError(f"{run.path} has no best checkpoint: its recipe has no train.keep_best, or no "
                          "evaluation has run yet. Use --checkpoint latest.")
    use_best = which == "best" or (which == "auto" and checkpoint.listing(best_folder))
    found, skipped = checkpoint.latest(best_folder if use_best else run.checkpoints)
    if found is None:
        reason = f": {'; '.join(skipped)}" if skipped else " yet"
        raise ConfigError(f"{run.path} has no usable checkpoint{reason}. Train it first (ganctl train).")
    _warn_skipped(skipped, found)
    wrong = [k for k, shape in expected.items() if k not in found.arrays or found.arrays[k].shape != shape]
    if wrong:
        raise ConfigError(f"{found.path} does not match the model built from {run.recipe_path} ({wrong[0]}).")
    if recipe.train.ema is None and weights == "ema":
        raise ConfigError(f"--weights ema: {run.path} keeps no moving average of its generator's weights (its "
                          "recipe has no train.ema). Leave --weights out, or use --weights raw.")
    arrays = found.arrays
    if recipe.train.ema is not None and weights != "raw":
        try:
            arrays = engine.with_average(arrays)
        except KeyError as exc:
            raise ConfigError(f"{found.path} has no moving average of the generator ({exc.args[0]}). "
                              "Use --weights raw.") from None
    engine.load_model_state(arrays)
    if recipe.train.ema is not None:
        engine.weights = "raw" if weights == "raw" else "ema"
    return Trained(run, session, found)


_warned: set[str] = set()


def _warn_skipped(skipped: Sequence[str], used: checkpoint.Checkpoint) -> None:
    """Say once per process that newer checkpoints were unusable, and which one is used instead."""
    if not skipped or str(used.path) in _warned:
        return
    _warned.add(str(used.path))
    warn(checkpoint.skipped_note(skipped, used))


def not_a_generator(path: Path | str) -> ConfigError:
    """The error for a classifier given where a generator is expected."""
    return ConfigError(
        f"{path} is a classifier: it labels images and makes none, so it cannot be sampled, benchmarked as a "
        f"generator or scored with generator metrics. Score it with `ganctl evaluate {path}`; use it to compare "
        f"a generator's images with real ones via --features '{{plugin: classifier, model: {path}}}'."
    )


def sample_run(path: Path, host: PluginHost, *, n: int, seed: int, label: int | str | None = None,
               backend: str | None = None, weights: str = "auto") -> tuple[np.ndarray, np.ndarray | None]:
    """``n`` images (float32 ``[n, H, W, C]`` in ``[-1, 1]``) and their labels from a run's newest checkpoint.

    ``label``: a class index or name (see ``check_label``); None for all classes in turn. ``weights``: as
    for :func:`open_trained`.
    """
    session = open_trained(path, host, backend, weights=weights).session
    if session.model.kind != "generator":
        raise not_a_generator(path)
    model, engine = session.model, session.engine
    label = check_label(label, model.conditional, session.spec.num_classes, session.spec.class_names)
    z, labels = inputs(seed, n, model.latent_dim, session.spec.num_classes if model.conditional else 0, label)
    parts = [engine.generate(z[i : i + BATCH], None if labels is None else labels[i : i + BATCH])
             for i in range(0, n, BATCH)]
    return np.concatenate(parts).astype(np.float32), labels


def write_samples(path: Path, images: np.ndarray, labels: np.ndarray | None) -> None:
    """A PNG grid, or an .npz with ``images`` (and ``labels`` as int64)."""
    if path.suffix.lower() == ".png":
        save_png(grid(images, labels), path)
        return
    arrays = {"images": images.astype(np.float32)}
    if labels is not None:
        arrays["labels"] = labels.astype(np.int64)
    atomic_write(path, lambda handle: np.savez(handle, **arrays))
