"""A new run's run.json: what it was trained with (versions, backend, devices, plugins, seed, data)."""

from __future__ import annotations

import platform
import time
from typing import Any

from ganctl import __version__
from ganctl.runs.rundir import recipe_hash
from ganctl.session.assemble import Session
from ganctl.training.fused import steps_for


def run_info(session: Session, host_plugins: dict[str, str]) -> dict[str, Any]:
    """The initial run.json: versions, backend, devices, seed, data shape."""
    import keras

    from ganctl.engine import engine_for

    engine = engine_for(session.backend)
    placement = getattr(session.engine, "placement", None)  # train.distribution (JAX)
    split = {} if placement is None else {"distribution": {
        "devices": placement.names(), "processes": placement.processes,
        "global_batch": session.recipe.train.batch_size,
        "per_device_batch": session.recipe.train.batch_size // placement.devices,
    }}
    return {
        "ganctl": __version__,
        "python": platform.python_version(),
        "keras": keras.__version__,
        "backend": session.backend,
        "backend_version": engine.framework_version(),
        "devices": engine.devices(),
        **split,
        "jit": session.jit,
        "steps_per_execution": steps_for(session.recipe.train.steps_per_execution, session.engine),
        **({} if session.precision == "float32" else {"precision": session.precision}),  # train.precision
        "plugins": host_plugins,
        "seed": session.recipe.seed,
        "recipe_hash": recipe_hash(session.recipe.to_dict()),
        "model": session.recipe.model.plugin,
        "kind": session.model.kind,
        "data": session.recipe.data.plugin,
        "data_spec": session.spec.to_dict(),
        "latent_dim": session.model.latent_dim,
        "conditional": session.model.conditional,
        "status": "created",
        "step": 0,
        "epoch": 0,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
