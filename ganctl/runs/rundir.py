"""The run directory: everything needed to resume, evaluate and export a run.

    runs/<name>-<YYYYmmdd-HHMMSS>/
        recipe.yaml      the fully resolved recipe
        run.json         versions, backend, devices, seed, status, progress
        checkpoints/     ckpt-<step>.npz (see ganctl.checkpoint)
        samples/         epoch-<N>.png and final.png: a fixed latent batch through the generator
        metrics.jsonl    one JSON object per logged step and per epoch
        exports/         what ganctl export wrote (generator.onnx, ...)
        evaluations.jsonl  one JSON object per ganctl evaluate result, with its protocol
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import yaml

from ganctl.errors import ConfigError
from ganctl.fsutil import atomic_write, why_unwritable

RECIPE = "recipe.yaml"
RUN_JSON = "run.json"
EXPORTS = "exports"


def recipe_hash(resolved: dict[str, Any]) -> str:
    """A stable hash of a resolved recipe (sorted JSON)."""
    return hashlib.sha256(json.dumps(resolved, sort_keys=True).encode()).hexdigest()[:16]


def is_run_dir(path: str | Path) -> bool:
    """Whether ``path`` is a folder that ``ganctl train`` made (it holds a run.json)."""
    return (Path(path) / RUN_JSON).is_file()


def export_path(run: str | Path, kind: str = "generator", suffix: str = ".onnx") -> Path:
    """Where ``ganctl export`` writes a run's ``kind`` (generator or classifier) in a format whose
    file ends in ``suffix``: ``RUN/exports/<kind><suffix>``; by default ``RUN/exports/generator.onnx``."""
    return Path(run) / EXPORTS / f"{kind}{suffix}"


def is_model_file(path: str | Path) -> bool:
    """Whether a command's ``RUN_DIR|MODEL.onnx`` argument names an exported model file rather
    than a run directory: anything that is not a folder and is a file or ends in ``.onnx``."""
    path = Path(path)
    return not path.is_dir() and (path.suffix.lower() == ".onnx" or path.is_file())


class RunDir:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    # -- layout ---------------------------------------------------------------------------------

    @property
    def recipe_path(self) -> Path:
        return self.path / RECIPE

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def best_checkpoints(self) -> Path:
        """Where ``train.keep_best`` keeps the checkpoint its metric chose."""
        return self.checkpoints / "best"

    @property
    def samples(self) -> Path:
        return self.path / "samples"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    # -- creation and opening -------------------------------------------------------------------

    @classmethod
    def create(cls, output: str | Path, name: str, resolved: dict[str, Any], out: str | Path | None = None) -> RunDir:
        """Make a new run directory (``out``, or ``output/<name>-<timestamp>``) and write the recipe."""
        if out is not None:
            path = Path(out)
            if path.exists() and (not path.is_dir() or any(path.iterdir())):
                raise ConfigError(
                    f"--out {path} already exists and is not an empty folder; choose a new path, "
                    f"or continue that run with `ganctl train --resume {path}`."
                )
        else:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            path = Path(output) / f"{name}-{stamp}"
            suffix = 1
            while path.exists():
                suffix += 1
                path = Path(output) / f"{name}-{stamp}-{suffix}"
        run = cls(path)
        try:
            path.mkdir(parents=True, exist_ok=True)
            run.checkpoints.mkdir(exist_ok=True)
            run.samples.mkdir(exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"cannot create the run directory {path}: {why_unwritable(path, exc)}. Set `output:` in the "
                "recipe (or --out) to a writable folder."
            ) from None
        run.write_recipe(resolved)
        return run

    def write_recipe(self, resolved: dict[str, Any]) -> None:
        atomic_write(self.recipe_path, yaml.safe_dump(resolved, sort_keys=False).encode())

    @classmethod
    def open(cls, path: str | Path) -> RunDir:
        """An existing run directory, checked to hold a recipe and run.json."""
        run = cls(path)
        if not run.path.is_dir():
            raise ConfigError(f"{run.path} is not a run directory (it does not exist or is not a folder).")
        for needed in (RECIPE, RUN_JSON):
            if not (run.path / needed).is_file():
                raise ConfigError(
                    f"{run.path} is not a ganctl run directory: {needed} is missing. Give the folder that "
                    "`ganctl train` printed at the end of a run."
                )
        return run

    # -- run.json -------------------------------------------------------------------------------

    def read_info(self) -> dict[str, Any]:
        try:
            return json.loads((self.path / RUN_JSON).read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{self.path / RUN_JSON} cannot be read ({exc}); the run directory is damaged.") from None

    def write_info(self, info: dict[str, Any]) -> None:
        info = {**info, "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        atomic_write(self.path / RUN_JSON, (json.dumps(info, indent=2) + "\n").encode())

    def update_info(self, **changes: Any) -> dict[str, Any]:
        info = {**self.read_info(), **changes}
        self.write_info(info)
        return info

    # -- metrics --------------------------------------------------------------------------------

    def log(self, record: dict[str, Any]) -> None:
        """Append one JSON line to metrics.jsonl (flushed, so a crash loses at most this line)."""
        with self.metrics_path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
            handle.flush()

    def read_metrics(self) -> list[dict[str, Any]]:
        """Every record of metrics.jsonl, in order."""
        return _read_jsonl(self.metrics_path)

    @property
    def evaluations_path(self) -> Path:
        return self.path / "evaluations.jsonl"

    def log_evaluation(self, record: dict[str, Any]) -> None:
        """Append one ``ganctl evaluate`` result (values and protocol) to evaluations.jsonl."""
        record = {**record, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        with self.evaluations_path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")

    def latest_evaluations(self) -> dict[str, dict[str, Any]]:
        """Per metric, the newest ``ganctl evaluate`` record (values and protocol)."""
        return {record["metric"]: record for record in _read_jsonl(self.evaluations_path)}

    def truncate_metrics(self, step: int) -> None:
        """Drop records past ``step`` (work after the checkpoint a resume restarts from)."""
        if not self.metrics_path.exists():
            return
        kept = [r for r in self.read_metrics() if r.get("step", 0) <= step]
        atomic_write(self.metrics_path, "".join(json.dumps(r) + "\n" for r in kept).encode())


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The records of a JSON-lines file; none when it does not exist, and a line cut short by a
    crash is skipped."""
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records
