"""The recipe's ``init:``: a new run starts from another run's weights (fine-tuning).

The source run's checkpoint (its newest, or the one ``train.keep_best`` kept) is read and its
arrays assigned to the new session's engine before the run directory exists, so every problem
stops the command before anything is written. Checkpoints are NumPy arrays under names that do
not depend on the backend (:func:`ganctl.engine.interface.canonical_name`), so a run trained on
one backend initialises a run on another.

Names are matched without their position in the state (``model/0012/g_up_1/kernel`` is
``g_up_1/kernel``; names that repeat pair up in order), so a player's weights line up even when
another player of the source had more or fewer variables. Seed generators' states are not copied:
the new run draws its own random numbers from its seed. State of the training procedure that one
of the two runs lacks (the adaptive augmentation's probability, when only one recipe augments) is
not a mismatch: a non-trainable variable missing from the source starts as this recipe makes it,
and a scalar of the source that this model lacks is left behind. Present in both, it is copied. Optimizer state (``init.optimizer``)
includes each optimizer's update count, so a learning-rate schedule continues where the source's
stood; the learning rate itself is always the recipe's. Pruning's masks and update count
(``train.prune``) are never copied: a run prunes on its own schedule, from the weights it starts with.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ganctl.console import warn
from ganctl.engine.interface import MODEL_PREFIX
from ganctl.errors import ConfigError
from ganctl.runs import checkpoint
from ganctl.runs.rundir import RunDir, is_run_dir
from ganctl.session.assemble import Session
from ganctl.session.provenance import absolute
from ganctl.session.pruning import STATE_SUFFIXES as PRUNING_STATE

_POSITION = re.compile(r"^(model|optimizer/[^/]+)/(\d+)/(.*)$")
_SEED_STATE = "seed_generator_state"
_RATE = "/learning_rate"  # an optimizer's rate is the recipe's, never copied


def _key(name: str) -> tuple[str, int] | None:
    """``(name without its position, position)``; None for a name not of the model or an optimizer."""
    match = _POSITION.match(name)
    return (f"{match.group(1)}/{match.group(3)}", int(match.group(2))) if match else None


def _pairs(names: Iterable[str]) -> dict[tuple[str, int], str]:
    """Each name under ``(name without position, k)``: its k-th occurrence; in state order."""
    keyed = sorted(((key, name) for name in names if (key := _key(name)) is not None), key=lambda kn: kn[0][1])
    seen: dict[str, int] = defaultdict(int)
    out: dict[tuple[str, int], str] = {}
    for (bare, _), name in keyed:
        out[(bare, seen[bare])] = name
        seen[bare] += 1
    return out


def _shown(bare: str) -> str:
    """A weight as the user reads it: ``g_up_1/kernel``, ``generator optimizer: g_up_1_kernel_momentum``."""
    if bare.startswith(MODEL_PREFIX):
        return bare[len(MODEL_PREFIX):]
    _, player, rest = bare.split("/", 2)
    return f"{player} optimizer: {rest.split('/', 1)[-1]}"


def _targets(session: Session, players: list[str], optimizer: bool) -> list[str]:
    """The state names ``init`` assigns: the players' network variables (seed states left out) and,
    with ``optimizer``, their optimizers' variables."""
    state = session.engine.state_variables()
    by_id = {id(v): name for name, v in state.items()}
    networks = session.engine.networks
    names: list[str] = []
    for player in players:
        for variable in networks[player].variables:
            name = by_id.get(id(variable))
            if name and name not in names and not name.endswith(_SEED_STATE):
                names.append(name)
    if optimizer:
        names += [n for n in state if any(n.startswith(f"optimizer/{p}/") for p in players)
                  and not n.endswith((_RATE, *PRUNING_STATE))]
    return names


def _source(where: str, given: str, wanted: str, model: str) -> tuple[RunDir, checkpoint.Checkpoint]:
    """The source run and its checkpoint, checked."""
    path = Path(absolute(given))
    fix = "Give the folder that `ganctl train` printed at the end of the pre-training run (a relative path is read from the current directory)."
    if not path.exists():
        raise ConfigError(f"{where}: {path} does not exist. {fix}")
    if not is_run_dir(path):
        raise ConfigError(f"{where}: {path} is not a ganctl run directory (it has no run.json). {fix}")
    run = RunDir(path)
    trained = run.read_info().get("model")
    if trained != model:
        raise ConfigError(
            f"{where}: {path} trained the '{trained}' model, but this recipe builds '{model}': weights are copied "
            f"only between runs of the same model plugin. Set model.plugin: {trained} (with the sizes of that run's "
            f"recipe, {run.recipe_path}), or start from a run of '{model}'."
        )
    folder = run.best_checkpoints if wanted == "best" else run.checkpoints
    found, skipped = checkpoint.latest(folder)
    if found is None:
        if skipped:
            raise ConfigError(f"{where}: no usable checkpoint in {folder}: {'; '.join(skipped)}. Start from another run.")
        if wanted == "best":
            raise ConfigError(
                f"{where}: {path} has no best checkpoint ({folder} is empty): it was trained without "
                "train.keep_best, or its metric was never computed. Set init.checkpoint: latest to start from its "
                "newest checkpoint."
            )
        raise ConfigError(
            f"{where}: {path} has no checkpoint yet ({folder} is empty): train it for at least one epoch "
            f"(ganctl train --resume {path}), or start from another run."
        )
    if skipped:
        warn(checkpoint.skipped_note(skipped, found, "initialising from"))
    return run, found


def _assign(session: Session, found: checkpoint.Checkpoint, players: list[str], optimizer: bool,
            every_player: bool, where: str) -> None:
    """Assign ``found``'s arrays to the players' state, or raise one error listing each mismatch."""
    engine = session.engine
    state = engine.state_variables()
    shapes = {name: tuple(v.shape) for name, v in state.items()}
    targets = _pairs(_targets(session, players, optimizer))
    sources = _pairs(n for n in found.arrays if not n.endswith((_SEED_STATE, _RATE, *PRUNING_STATE)))
    problems: list[str] = []
    arrays: dict[str, np.ndarray] = {}
    for key, name in targets.items():
        source = sources.get(key)
        if source is None and name.startswith(MODEL_PREFIX) and not state[name].trainable:
            continue  # procedure state the source did not have: this recipe's starting value
        if source is None and shapes[name] == () and "_loss_scale/" in name:
            continue  # mixed_float16's loss scale, from a source without one: it starts afresh
        if source is None:
            problems.append(f"{_shown(key[0])}: expected {list(shapes[name])}, found no such weight")
        elif tuple(found.arrays[source].shape) != shapes[name]:
            problems.append(f"{_shown(key[0])}: expected {list(shapes[name])}, found {list(found.arrays[source].shape)}")
        else:
            arrays[name] = found.arrays[source]
    if every_player:  # weights of the source that nothing here takes: the model is built otherwise
        used = set(targets)
        problems += [f"{_shown(key[0])}: found {list(found.arrays[name].shape)}, not in this model"
                     for key, name in sources.items()
                     if key not in used and (optimizer or key[0].startswith(MODEL_PREFIX))
                     and found.arrays[name].shape != ()]
    if problems:
        raise ConfigError(
            f"{where}: the weights of {found.path} do not fit the model this recipe builds "
            f"({len(problems)} mismatch{'es' if len(problems) > 1 else ''}: {'; '.join(problems)}). "
            "Build the same model as the source run (its model: section and data shape), choose the players that "
            "match with init.players, or set init.optimizer: false when only the optimizers differ (say, a freeze:)."
        )
    engine.load_state(arrays, only=list(arrays))


def init_weights(session: Session) -> dict[str, Any] | None:
    """Apply the recipe's ``init:`` to the session's engine; what run.json records (None: no init).

    Raises ConfigError, before anything is written, for a source that is missing, not a run, of
    another model plugin, without the checkpoint asked for, or whose weights do not fit.
    """
    recipe = session.recipe
    init = recipe.init
    if init is None:
        return None
    where = f"{recipe.source}: init.from"
    run, found = _source(where, init.from_, init.checkpoint, recipe.model.plugin)
    players = list(dict.fromkeys(init.players)) if init.players else list(session.model.players)
    _assign(session, found, players, init.optimizer, set(players) == set(session.model.players), where)
    return {"from": str(run.path), "checkpoint": init.checkpoint, "file": str(found.path),
            "step": found.progress.step, "epoch": found.progress.epoch, "backend": found.meta.get("backend"),
            "players": players, "optimizer": init.optimizer}


def reapply(session: Session, recorded: dict[str, Any]) -> None:
    """Assign again the weights a run was initialised with (run.json's ``init``): a resume of a
    run that stopped before its first checkpoint starts from them, not from random weights."""
    where = f"{session.recipe.source}: init.from"
    path = Path(recorded["file"])
    try:
        found = checkpoint.load(path)
    except checkpoint.CheckpointError as exc:
        raise ConfigError(
            f"{where}: this run stopped before its first checkpoint, so it starts again from the weights it was "
            f"initialised with, but {exc}. Start a new run instead."
        ) from None
    players = list(recorded["players"])
    _assign(session, found, players, bool(recorded["optimizer"]), set(players) == set(session.model.players), where)
