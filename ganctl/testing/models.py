"""``check_model``: a model plugin trained the way ganctl trains it, on every installed backend.

Keras fixes its backend once per process, so each backend runs in a child process
(``python -m ganctl.testing.child`` with ``KERAS_BACKEND`` set); the child goes through ganctl's
own code paths (the recipe loader, ``open_session``, ``ganctl train``, ``ganctl export``).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from ganctl.engine.backends import BACKENDS, missing
from ganctl.testing.host import CheckFailed, KitHost, PluginRef, fail, module_name
from ganctl.testing.runs import recipe, write_recipe

UNREGISTERED = "not part of the model's registered state"


def installed_backends() -> list[str]:
    """The Keras backends whose framework is installed here, JAX first."""
    return [backend for backend in BACKENDS if missing(backend) is None]


def check_model(plugin: PluginRef | None, name: str, params: dict[str, Any] | None = None, *, workdir: Path,
                data: dict[str, Any] | None = None, backends: list[str] | None = None, steps: int = 3,
                batch_size: int = 16, rtol: float = 1e-3, atol: float = 1e-4, export: bool = True,
                timeout: float = 900) -> dict[str, dict[str, float]]:
    """Check the model ``name`` (registered by ``plugin``, a module or its import name; None: a
    built-in) with recipe ``params`` on ``data`` (a recipe's data section; default 64 digits).

    On each of ``backends`` (default: those listed in ``GANCTL_TEST_BACKENDS``, e.g. ``jax,torch``,
    else every installed one), in its own process: each player's loss
    for weights set from their names must agree with the first backend's within ``rtol``/``atol``;
    it trains 2 epochs of ``steps`` steps (on JAX, state the model does not register is an error);
    training 1 epoch and resuming to 2 must give a bit-identical checkpoint; the trained generator is
    exported to ONNX and checked against Keras. Returns each backend's losses."""
    host = KitHost(*([plugin] if plugin is not None else []))
    host.check_loaded()
    host.params("models", name, params)  # a bad parameter is a ConfigError naming the key, here
    chosen = os.environ.get("GANCTL_TEST_BACKENDS", "")
    backends = backends or [b.strip() for b in chosen.split(",") if b.strip()] or installed_backends()
    workdir = Path(workdir)
    path = write_recipe(recipe(name, params, data=data, steps=steps, batch_size=batch_size), workdir / "recipe.yaml")
    job = {"plugin": module_name(plugin), "recipe": str(path), "workdir": str(workdir), "export": export}
    found: dict[str, dict[str, float]] = {}
    for backend in backends:
        report = _child(job, backend, workdir, timeout)
        _explain(name, backend, report)
        found[backend] = report["losses"]
    reference = backends[0]
    for backend in backends[1:]:
        for player, loss in found[reference].items():
            other = found[backend].get(player, math.nan)
            if not math.isclose(other, loss, rel_tol=rtol, abs_tol=atol):
                raise fail("model", name, f"{player}'s loss is {loss:.6g} on {reference} and {other:.6g} on {backend} "
                           "for the same weights, data and noise.",
                           "write the loss with keras.ops only (no NumPy or backend calls on tensors, no Python "
                           "branches on tensor values), and draw noise with keras.random and a SeedGenerator.")
    return found


def _child(job: dict[str, Any], backend: str, workdir: Path, timeout: float) -> dict[str, Any]:
    job_path, report_path = workdir / f"job-{backend}.json", workdir / f"report-{backend}.json"
    job_path.write_text(json.dumps(job))
    env = {**os.environ, "KERAS_BACKEND": backend, "GANCTL_LOAD_PLUGINS": "",
           "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}  # an uninstalled plugin imports there too
    done = subprocess.run([sys.executable, "-m", "ganctl.testing.child", str(job_path), str(report_path)],
                          env=env, capture_output=True, text=True, timeout=timeout)
    if not report_path.is_file():
        raise CheckFailed(f"the check's process on {backend} ended with {done.returncode} and no report:\n"
                          f"{done.stderr[-3000:]}")
    return json.loads(report_path.read_text())


def _explain(name: str, backend: str, report: dict[str, Any]) -> None:
    """Raise CheckFailed for a backend's report that is not a success, saying what to change."""
    stage, error = report.get("stage"), report.get("error")
    if error and UNREGISTERED in error:
        raise fail("model", name, f"on {backend}: {error}",
                   "return every network from networks() (a non-trainable variable of one of them holds any "
                   "state you update, such as a counter or an augmentation probability), and every "
                   "keras.random.SeedGenerator your losses use from seed_generators().")
    if error:
        fix = {
            "build": "make the plugin load (see its error) and its factory build from these parameters.",
            "losses": "build every network in the constructor and return each player's loss as a scalar "
                      "computed with keras.ops.",
            "train": "make each player's loss finite and differentiable with respect to that player's weights.",
            "resume": "keep all state in the networks' variables and seed_generators(), so a checkpoint holds it.",
            "export": "make the generator a functional keras.Model of keras layers (no Python-side state), so "
                      "it converts to ONNX and gives Keras's images.",
        }.get(stage, "see the error.")
        raise fail("model", name, f"on {backend}, at the {stage} stage: {error}", fix)
    if report.get("resume_differs"):
        names = ", ".join(report["resume_differs"][:5])
        raise fail("model", name, f"on {backend}, 1 epoch then a resume to 2 ended with state different from "
                   f"2 epochs straight ({names}).",
                   "keep every value that changes while training in a variable of a network or a SeedGenerator "
                   "returned by seed_generators(), convert epochs to updates in begin_training(), which ganctl "
                   "calls again on resume, and give random layers a seed (keras.layers.Dropout(rate, seed=...)): "
                   "without one, PyTorch's draws come from its global generator, which no checkpoint holds.")
