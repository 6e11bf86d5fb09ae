"""``check_exporter``: an exporter's contract, through ganctl's own export path (``ganctl export``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ganctl.engine.backends import resolve
from ganctl.sampling import inputs
from ganctl.testing.host import KitHost, PluginRef, fail
from ganctl.testing.runs import TrainingFailed, recipe, train

MODEL = ("gan", {"latent_dim": 8, "hidden": [16, 16]})
"""The generator exported by default: a small fully-connected GAN."""


def check_exporter(plugin: PluginRef | None, name: str, params: dict[str, Any] | None = None, *, workdir: Path,
                   model: tuple[str, dict[str, Any]] = MODEL, backend: str | None = None) -> Path:
    """Check the exporter ``name``: a generator trained for a few steps (in ``workdir``) is exported
    by the recipe's ``export:`` list, which ganctl writes in a scratch folder, loads it back with
    the exporter's ``load`` and compares it with Keras at batch sizes 1, 7 and 64 before moving it
    into place; then the written file is loaded again and run. Returns the written path.
    An exporter that says it cannot run on this backend here (``unavailable``) skips the test."""
    host = KitHost(*([plugin] if plugin is not None else []))
    host.check_loaded()
    backend = resolve(backend)[0]
    exporter = host.build("exporters", name, params)
    why = exporter.unavailable(backend)
    if why is not None:
        if not isinstance(why, str):
            raise fail("exporter", name, f"unavailable() returned {why!r}.", "return None or a message with the fix.")
        import pytest

        pytest.skip(f"exporter '{name}' cannot run on {backend} here: {why}")
    if not isinstance(getattr(exporter, "suffix", None), str):
        raise fail("exporter", name, "it has no suffix.", 'set suffix = ".ext" for a file, or "" for a folder.')
    section = {"plugin": name, **(params or {})}
    try:  # the recipe's export: list is written after training, through ganctl's export path
        run = train(recipe(*model, export=[section]), Path(workdir) / f"export-{name}", host=host, backend=backend)
    except TrainingFailed as exc:
        raise fail("exporter", name, f"exporting a trained generator failed: {exc}",
                   "write the network to the path given to export() and make load() run it as Keras does "
                   "(same inputs, same outputs, within 1e-4).") from None
    written = [p for p in run.exports() if p.name.endswith(exporter.suffix) or p.is_dir()]
    if not written:
        raise fail("exporter", name, "ganctl export reported success but wrote nothing under exports/.",
                   "write the file (or folder) at the path export() is given.")
    info = run.info
    z, labels = inputs(0, 3, model[1].get("latent_dim", 8), info["data_spec"].get("num_classes", 0)
                       if model[1].get("conditional") else 0)
    produced = np.asarray(exporter.load(written[0])(z, labels))
    if produced.shape != (3, *info["data_spec"]["shape"]):
        raise fail("exporter", name, f"the loaded file gave images of shape {list(produced.shape)}.",
                   "return images [B, H, W, C] from the runner load() returns.")
    return written[0]

