"""One writer: the run directory of a process other than process 0 in a group of several.

Every process of a group runs the same steps, callbacks and exports in the same order (some of
them are computations over every process's devices, which all processes must join), but only
process 0 writes the run directory. The others write into a scratch copy of it, private to the
process and removed when it ends: a new run's is empty; a resumed run's holds the run's recipe,
run.json, metrics and checkpoints, so every process loads the same checkpoint. A checkpoint is
only ever written after a step, which needs every process, so copying before the first step
sees the checkpoints process 0 resumes from.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ganctl.runs.rundir import RUN_JSON, RunDir


def _scratch(index: int, on_leave: Callable[[Callable[[], None]], None]) -> Path:
    folder = Path(tempfile.mkdtemp(prefix=f"ganctl-process-{index}-"))

    def remove() -> None:
        shutil.rmtree(folder, ignore_errors=True)

    atexit.register(remove)
    on_leave(remove)  # an exit through os._exit skips atexit
    return folder


def new_run(index: int, name: str, resolved: dict[str, Any], on_leave: Callable[[Callable[[], None]], None]) -> RunDir:
    """Process ``index``'s (not 0) scratch run directory for a new run."""
    return RunDir.create(_scratch(index, on_leave), name, resolved, None)


def resumed_run(index: int, run: RunDir, on_leave: Callable[[Callable[[], None]], None]) -> RunDir:
    """Process ``index``'s (not 0) scratch copy of ``run``, to resume: its recipe, run.json, metrics and
    checkpoints (sample grids and exports are left behind)."""
    copy = _scratch(index, on_leave) / run.path.name
    copy.mkdir()
    for name in (RUN_JSON, run.recipe_path.name, run.metrics_path.name):
        if (run.path / name).is_file():
            shutil.copy2(run.path / name, copy / name)
    if run.checkpoints.is_dir():
        shutil.copytree(run.checkpoints, copy / run.checkpoints.name)
    (copy / run.samples.name).mkdir(exist_ok=True)
    return RunDir.open(copy)
