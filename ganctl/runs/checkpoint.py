"""Checkpoints: every variable of a run (weights, optimizer state, random state) plus progress.

One checkpoint is one ``.npz`` file (``checkpoints/ckpt-<step>.npz``) written atomically, so a
crash at any instant leaves the previous checkpoints intact. It holds one array per state
variable and a ``__meta__`` entry (JSON: format, step, epoch, step within the epoch, backend,
recipe hash). Loading verifies it: the zip's CRCs catch corruption and truncation, and every
expected variable must be present with the right shape. Pickles are never loaded.
"""

from __future__ import annotations

import json
import re
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ganctl.engine.interface import canonical_name
from ganctl.errors import GanctlError
from ganctl.fsutil import atomic_write

FORMAT = 1
_META = "__meta__"
_NAME = re.compile(r"^ckpt-(\d{8,})\.npz$")


class CheckpointError(GanctlError):
    """A checkpoint that cannot be used."""


@dataclass(frozen=True)
class Progress:
    """Where training stands: global step, epoch, and batches done within that epoch."""

    step: int = 0
    epoch: int = 0
    step_in_epoch: int = 0


@dataclass(frozen=True)
class Checkpoint:
    path: Path
    progress: Progress
    meta: dict[str, Any]
    arrays: dict[str, np.ndarray]


def path_for(folder: Path, step: int) -> Path:
    return folder / f"ckpt-{step:08d}.npz"


def listing(folder: Path) -> list[Path]:
    """Checkpoint files in ``folder``, oldest first (temporary files are ignored)."""
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def save(folder: Path, arrays: Mapping[str, np.ndarray], progress: Progress, meta: Mapping[str, Any], keep: int) -> Path:
    """Write a checkpoint atomically, then delete all but the newest ``keep``."""
    info = {"format": FORMAT, "step": progress.step, "epoch": progress.epoch,
            "step_in_epoch": progress.step_in_epoch, **meta}
    payload = {name: np.asarray(value) for name, value in arrays.items()}
    payload[_META] = np.frombuffer(json.dumps(info).encode(), dtype=np.uint8)
    path = atomic_write(path_for(folder, progress.step), lambda handle: np.savez(handle, **payload))
    for old in listing(folder)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def load(path: Path, expected: Mapping[str, tuple[int, ...]] | None = None) -> Checkpoint:
    """Read and verify one checkpoint; ``expected`` maps variable names to shapes."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {canonical_name(name) if name != _META else name: archive[name] for name in archive.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated ({type(exc).__name__}: {exc})") from None
    try:
        meta = json.loads(arrays.pop(_META).tobytes().decode())
    except (KeyError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {path} has no valid metadata ({exc})") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path} has format {meta.get('format')!r}; this ganctl reads {FORMAT}")
    if expected is not None:
        missing = [name for name in expected if name not in arrays]
        extra = [name for name in arrays if name not in expected]
        wrong = [f"{name} {list(arrays[name].shape)} != {list(shape)}" for name, shape in expected.items()
                 if name in arrays and tuple(arrays[name].shape) != tuple(shape)]
        if missing or extra or wrong:
            detail = "; ".join(filter(None, [
                f"missing {', '.join(missing[:3])}" if missing else "",
                f"unexpected {', '.join(extra[:3])}" if extra else "",
                f"shapes differ: {', '.join(wrong[:3])}" if wrong else "",
            ]))
            raise CheckpointError(f"checkpoint {path} does not match the model built from the recipe ({detail})")
    progress = Progress(int(meta["step"]), int(meta["epoch"]), int(meta["step_in_epoch"]))
    return Checkpoint(path, progress, meta, arrays)


def latest(folder: Path, expected: Mapping[str, tuple[int, ...]] | None = None) -> tuple[Checkpoint | None, list[str]]:
    """The newest checkpoint that verifies, and a note for each newer one that did not."""
    skipped: list[str] = []
    for path in reversed(listing(folder)):
        try:
            return load(path, expected), skipped
        except CheckpointError as exc:
            skipped.append(str(exc))
    return None, skipped


def skipped_note(skipped: list[str], used: Checkpoint, doing: str = "using") -> str:
    """One line for a warning: the newer checkpoints :func:`latest` skipped, and the one used instead."""
    plural = "s" if len(skipped) > 1 else ""
    return (f"skipped {len(skipped)} newer checkpoint{plural} ({'; '.join(skipped)}); "
            f"{doing} {used.path} (step {used.progress.step}) instead.")
