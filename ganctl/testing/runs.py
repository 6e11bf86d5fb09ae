"""Train a recipe for a few steps through ``ganctl train``, as a user would, and read the run back."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ganctl.runs.rundir import RunDir
from ganctl.testing.data import KIT_DATASET
from ganctl.testing.host import KitHost

DATA = {"plugin": KIT_DATASET, "n": 64}
"""The data of :func:`recipe` unless told otherwise: the kit's 64 labelled 8x8 digits (no download)."""


@dataclass
class Run:
    """A finished run directory and what it recorded."""

    path: Path
    output: str
    """What ``ganctl train`` printed."""

    @property
    def info(self) -> dict[str, Any]:
        """Its run.json."""
        return RunDir.open(self.path).read_info()

    @property
    def metrics(self) -> list[dict[str, Any]]:
        """Every record of its metrics.jsonl, in order."""
        return RunDir.open(self.path).read_metrics()

    def checkpoint(self) -> dict[str, np.ndarray]:
        """The arrays of its newest checkpoint, by state name."""
        newest = sorted((self.path / "checkpoints").glob("ckpt-*.npz"))[-1]
        with np.load(newest) as archive:
            return {k: archive[k] for k in archive.files if k != "__meta__"}

    def exports(self) -> list[Path]:
        """The files and folders under its exports/."""
        folder = self.path / "exports"
        return sorted(folder.iterdir()) if folder.is_dir() else []


class TrainingFailed(AssertionError):
    """``ganctl train`` (or ``ganctl export``) exited with an error; the message is its output."""


def recipe(model: str, params: dict[str, Any] | None = None, *, data: dict[str, Any] | None = None,
           batch_size: int = 16, steps: int = 3, epochs: int = 1, seed: int = 0, **extra: Any) -> dict[str, Any]:
    """A small recipe for ``model``: ``steps`` steps per epoch, no sample grids, a checkpoint every epoch."""
    return {
        "name": f"test-{model}", "seed": seed,
        "data": dict(DATA if data is None else data),
        "model": {"plugin": model, **(params or {})},
        "train": {"epochs": epochs, "batch_size": batch_size, "steps_per_epoch": steps, "log_every": 1,
                  "sample_every": 1000, "checkpoint_every": 1, "keep_checkpoints": 1000},
        **extra,
    }


def write_recipe(content: dict[str, Any], path: Path) -> Path:
    """Write ``content`` as a YAML recipe at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(content, sort_keys=False))
    return path


def invoke(args: list[str], host: KitHost | None = None) -> str:
    """Run ``ganctl ARGS`` in this process (with ``host``'s plugins); its output, or TrainingFailed."""
    from typer.testing import CliRunner

    from ganctl.cli import app

    host = host or KitHost()
    with host.installed():
        result = CliRunner().invoke(app, args)
    if result.exit_code != 0:
        raise TrainingFailed(f"`ganctl {' '.join(args)}` exited with {result.exit_code}:\n{result.output}")
    return result.output


def train(recipe_or_path: dict[str, Any] | str | Path, out: Path, *, host: KitHost | None = None,
          epochs: int | None = None, backend: str | None = None, overrides: list[str] | tuple[str, ...] = (),
          resume: bool = False) -> Run:
    """``ganctl train`` a recipe (a dict or a file) into the run directory ``out``, or with
    ``resume`` continue ``out``; ``epochs`` overrides ``train.epochs``."""
    out = Path(out)
    sets = [*overrides, *([f"train.epochs={epochs}"] if epochs is not None else [])]
    args = ["train", "-q", *(arg for value in sets for arg in ("--set", value))]
    if backend:
        args += ["--backend", backend]
    if resume:
        args += ["--resume", str(out)]
    else:
        path = recipe_or_path
        if isinstance(path, dict):
            path = write_recipe(path, out.parent / f"{out.name}.yaml")
        args += [str(path), "--out", str(out)]
    return Run(out, invoke(args, host))
