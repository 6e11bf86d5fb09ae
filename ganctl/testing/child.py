"""One backend's part of ``check_model``, in its own process (Keras fixes the backend per process).

Usage: ``KERAS_BACKEND=B python -m ganctl.testing.child JOB.json REPORT.json``. The job names the
plugin module (or none: built-ins only), the recipe and a folder to work in. The report says,
for each stage (``build``, ``losses``, ``train``, ``resume``, ``export``), what happened: each
player's loss for weights set from their names (the same on every backend), then training,
exact resume and ONNX export through ``ganctl train`` and ``ganctl export``.
"""

from __future__ import annotations

import json
import os
import sys
import zlib
from pathlib import Path
from typing import Any

import numpy as np


class HostRandom:
    """``keras.random``'s draws and dropout masks taken from NumPy, by shape and call rank: the same
    on every backend, so the losses of models that draw noise (dropout, augmentation) can be compared."""

    def __init__(self, keras: Any) -> None:
        from keras.src import backend  # what keras.layers.Dropout calls; no public name reaches it

        self.keras, self.backend, self.calls = keras, backend.random, 0
        self.saved = {name: getattr(keras.random, name) for name in ("uniform", "normal", "randint")}
        self.saved_dropout = backend.random.dropout

    def _rng(self, seed: Any) -> np.random.Generator:
        if seed is not None and hasattr(seed, "next"):
            seed.next()  # advance the generator, as the real draw does
        self.calls += 1
        return np.random.default_rng(self.calls)

    def __enter__(self) -> HostRandom:
        ops = self.keras.ops

        def uniform(shape, minval=0.0, maxval=1.0, dtype=None, seed=None):
            values = self._rng(seed).uniform(minval, maxval, size=tuple(int(s) for s in shape))
            return ops.convert_to_tensor(values.astype(np.float32), dtype=dtype or "float32")

        def normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
            values = self._rng(seed).normal(mean, stddev, size=tuple(int(s) for s in shape))
            return ops.convert_to_tensor(values.astype(np.float32), dtype=dtype or "float32")

        def randint(shape, minval, maxval, dtype="int32", seed=None):
            values = self._rng(seed).integers(minval, maxval, size=tuple(int(s) for s in shape))
            return ops.convert_to_tensor(values, dtype=dtype)

        def dropout(inputs, rate, noise_shape=None, seed=None):
            shape = tuple(int(d) if d is not None else int(ops.shape(inputs)[i])
                          for i, d in enumerate(noise_shape or ops.shape(inputs)))
            keep = self._rng(seed).uniform(size=shape) >= rate
            scaled = ops.convert_to_tensor((keep / (1.0 - rate)).astype(np.float32))
            return ops.multiply(inputs, ops.cast(scaled, inputs.dtype))

        self.keras.random.uniform, self.keras.random.normal, self.keras.random.randint = uniform, normal, randint
        self.backend.dropout = dropout
        return self

    def __exit__(self, *exc: object) -> None:
        for name, function in self.saved.items():
            setattr(self.keras.random, name, function)
        self.backend.dropout = self.saved_dropout


def losses(recipe_path: Path, host: Any, backend: str) -> dict[str, float]:
    """Each player's loss on the recipe's first batch, with every trainable weight set from its path."""
    import keras

    from ganctl.recipe.load import load_recipe
    from ganctl.sampling import latents
    from ganctl.session.assemble import open_session

    recipe = load_recipe(recipe_path, host.host)
    session = open_session(recipe, host.host, backend)
    engine, model = session.engine, session.model
    state = engine.state_arrays()
    for name, variable in engine.state_variables().items():
        if name.startswith("model/") and (variable.trainable or variable.path.endswith("vector_u")):
            draw = np.random.default_rng(zlib.crc32(variable.path.encode()))
            state[name] = draw.normal(scale=0.2, size=variable.shape).astype(np.float32)
    batch = session.dataset.take(np.arange(recipe.train.batch_size, dtype=np.int64))
    labels = None if batch.labels is None else batch.labels.astype(np.int32)  # as the trainer passes them
    z = latents(recipe.seed, len(batch.images), getattr(model, "latent_dim", 0) or 1)
    found = {}
    with HostRandom(keras):
        for player in model.players:
            engine.load_state(state)
            loss, _ = engine.gradients(player, batch.images, labels, z)
            found[player] = float(loss)
    return found


def differing(straight: dict[str, np.ndarray], resumed: dict[str, np.ndarray]) -> list[str]:
    """The state names whose arrays differ between two checkpoints (or exist in one only): random
    state first (the likely cause; the weights then differ as a consequence), then the rest."""
    names = sorted(set(straight) ^ set(resumed))
    names += [k for k in sorted(set(straight) & set(resumed)) if not np.array_equal(straight[k], resumed[k])]
    return sorted(names, key=lambda name: "seed_generator" not in name)


def run(job: dict[str, Any], report: dict[str, Any]) -> None:
    from ganctl.engine.backends import resolve
    from ganctl.exporting import onnx_exporter
    from ganctl.testing.host import KitHost
    from ganctl.testing.runs import invoke, train

    backend = resolve(None)[0]
    report["backend"] = backend
    work = Path(job["workdir"]) / backend
    report["stage"] = "build"
    host = KitHost(*([job["plugin"]] if job.get("plugin") else []))
    host.check_loaded()
    report["stage"] = "losses"
    report["losses"] = losses(Path(job["recipe"]), host, backend)
    report["stage"] = "train"
    straight = train(Path(job["recipe"]), work / "straight", host=host, backend=backend, epochs=2)
    report["stage"] = "resume"
    train(Path(job["recipe"]), work / "resumed", host=host, backend=backend, epochs=1)
    resumed = train(Path(job["recipe"]), work / "resumed", host=host, backend=backend, epochs=2, resume=True)
    report["resume_differs"] = differing(straight.checkpoint(), resumed.checkpoint())
    if report["resume_differs"] or not job.get("export", True):
        return
    report["stage"] = "export"
    exporter = onnx_exporter(host.host)
    why = host.build("exporters", exporter).unavailable(backend)
    if why:
        report["export_skipped"] = why
    else:
        invoke(["export", str(straight.path), "--format", exporter], host)
    report["stage"] = "done"


def main(job_path: str, report_path: str) -> None:
    job = json.loads(Path(job_path).read_text())
    os.environ["GANCTL_LOAD_PLUGINS"] = ""  # only the built-ins and the plugin under test
    report: dict[str, Any] = {}
    try:
        run(job, report)
    except BaseException as exc:  # noqa: BLE001 - everything goes to the parent, which explains it
        report["error"] = f"{type(exc).__name__}: {exc}"
    Path(report_path).write_text(json.dumps(report))


if __name__ == "__main__":
    main(*sys.argv[1:3])
