"""``ganctl train``."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from ganctl.console import guarded, load_plugins, stdout
from ganctl.recipe.overrides import SET_HELP

BACKEND_HELP = "Keras backend: jax, tensorflow or torch (beats the recipe's backend: and KERAS_BACKEND)."


def register(app: typer.Typer) -> None:
    app.command("train")(_leaving(train))


def _leaving(command: Callable[..., Any]) -> Callable[..., Any]:
    """A process of a group that stops on an error leaves at once (its message is printed): JAX's
    shutdown barrier at exit would wait for the processes that are gone."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except typer.Exit as exc:
            from ganctl.engine.jax.processes import joined, leave

            if exc.exit_code and joined():
                leave(exc.exit_code)
            raise

    return wrapper


def _differences(a: Any, b: Any, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two resolved recipes."""
    if isinstance(a, dict) and isinstance(b, dict):
        keys = list(dict.fromkeys([*a, *b]))
        return [d for k in keys for d in _differences(a.get(k), b.get(k), f"{prefix}{k}.")]
    return [] if a == b else [prefix.rstrip(".")]


def _resumable(run: Any, host: Any, recipe_file: Path | None, overrides: list[str], backend: str | None):
    """The recipe and backend to resume ``run`` with: its own recipe, where only ``train.epochs``
    (to train longer) and the data's location (data that moved) may be changed with ``--set``."""
    from ganctl.errors import ConfigError
    from ganctl.recipe.load import load_recipe
    from ganctl.session.provenance import relocatable_keys

    if recipe_file is not None and recipe_file.resolve() != run.recipe_path.resolve():
        raise ConfigError(
            f"--resume continues {run.path} with the recipe it was started with ({run.recipe_path}), so the recipe "
            f"{recipe_file} would be ignored: leave it out (to train longer: ganctl train --resume {run.path} "
            "--set train.epochs=N), or train a new run from it without --resume."
        )
    stored = load_recipe(run.recipe_path, host)
    recipe = load_recipe(run.recipe_path, host, overrides)
    allowed = {"train.epochs", *relocatable_keys(stored, host)}
    changed = [k for k in _differences(stored.to_dict(), recipe.to_dict()) if k not in allowed]
    if changed:
        raise ConfigError(
            f"the recipe differs from the one {run.path} was started with, at: {', '.join(changed)}. "
            "A resumed run must keep its recipe (only train.epochs may change, to train longer, and the data's "
            "location, for data that moved); start a new run for a different recipe."
        )
    chosen = run.read_info()["backend"]
    if backend and backend != chosen:
        raise ConfigError(f"{run.path} was trained on the {chosen} backend; resume it on {chosen} (leave out --backend).")
    return recipe, chosen


def _moved(recorded: dict[str, dict[str, str]], now: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """run.json's ``data_locations`` after a resume: what the first recipe said is kept; a location
    that moved gets its new path and the one it had before."""
    out = dict(recorded)
    for key, entry in now.items():
        before = recorded.get(key)
        if before is None:
            out[key] = entry
        elif before["path"] != entry["path"]:
            out[key] = {**before, "path": entry["path"], "moved_from": before["path"]}
    return out


def _stopped(stop: Any, run: Any) -> Any:
    """The error for a signal that hit outside the training loop (start-up or the exports after it)."""
    from ganctl.errors import GanctlError

    if run is None:
        error = GanctlError(f"{stop.name} received before training began: stopped; no run directory was made.")
    elif run.read_info().get("status") == "completed":
        error = GanctlError(f"{stop.name} received: {run.path} is complete and its checkpoints are saved, but the "
                            "recipe's exports did not finish; run them with: ganctl export " + str(run.path))
    else:
        run.update_info(status="interrupted")
        error = GanctlError(f"{stop.name} received before training began: stopped. Continue with: "
                            f"ganctl train --resume {run.path}")
    error.exit_code = stop.exit_code
    return error


def _join(group: Any, recipe: Any, backend: str, resume: Path | None) -> Any:
    """Start the process group (a no-op for one process): checked first, then joined, then every
    process must have resolved the same recipe (and run to resume) on the same backend."""
    from ganctl.engine.jax import processes
    from ganctl.runs.rundir import recipe_hash

    processes.check(group, backend, recipe.train.batch_size, str(recipe.source))
    if not group.many:
        return group
    group = processes.start(group)
    processes.check(group, backend, recipe.train.batch_size, str(recipe.source))  # a cluster's count is known now
    processes.agree("recipe", f"{recipe_hash(recipe.to_dict())} {backend} {resume.resolve() if resume else 'new'}")
    return group


def _processes_info(group: Any, run: Any) -> dict[str, Any]:
    """run.json's ``processes`` (the group and every process's devices): only for a run trained as
    several processes, and cleared when such a run is resumed as one."""
    from ganctl.engine.jax import processes

    if group.many:
        return {"processes": processes.describe()}
    return {"processes": None} if run.path.joinpath("run.json").is_file() and "processes" in run.read_info() else {}


@guarded
def train(
    recipe_file: Path = typer.Argument(None, metavar="RECIPE", help="The recipe (YAML).", show_default=False),
    resume: Path = typer.Option(None, "--resume", help="Continue this run directory from its last checkpoint."),
    set_: list[str] = typer.Option([], "--set", metavar="KEY=VALUE", help=SET_HELP),
    backend: str = typer.Option(None, "--backend", help=BACKEND_HELP),
    out_dir: Path = typer.Option(None, "--out", help="Run directory to create (default: OUTPUT/NAME-TIMESTAMP)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress display; print only the run directory."),
    coordinator: str = typer.Option(None, "--coordinator", metavar="HOST:PORT",
                                    help="Train as one of several processes (JAX; docs/training.md): process 0's address "
                                         "(env GANCTL_COORDINATOR)."),
    num_processes: int = typer.Option(None, "--num-processes", metavar="N",
                                      help="With --coordinator: how many processes (env GANCTL_NUM_PROCESSES)."),
    process_id: int = typer.Option(None, "--process-id", metavar="I",
                                   help="With --coordinator: this one's id, 0 to N-1; 0 writes the run "
                                        "(env GANCTL_PROCESS_ID)."),
) -> None:
    """Train a recipe's model, writing checkpoints, sample grids and metrics to a run directory."""
    from ganctl import interrupts
    from ganctl.engine.jax.processes import requested
    from ganctl.errors import ConfigError

    if resume is not None and out_dir is not None:
        raise ConfigError("--out makes a new run; with --resume the run directory is the one resumed.")
    if resume is None and recipe_file is None:
        raise ConfigError("give a recipe to train (ganctl train RECIPE), or a run to continue (--resume RUN_DIR).")
    state: dict[str, Any] = {"group": requested(coordinator, num_processes, process_id)}  # and the run directory
    try:
        _train(recipe_file, resume, set_, backend, out_dir, quiet, state)
    except interrupts.Interrupt as stop:
        interrupts.caught()
        raise _stopped(stop, state.get("run")) from None


def _train(recipe_file: Path | None, resume: Path | None, set_: list[str], backend: str | None,
           out_dir: Path | None, quiet: bool, state: dict[str, Any]) -> None:
    from ganctl import interrupts
    from ganctl.engine import backends
    from ganctl.engine.jax import processes
    from ganctl.errors import ConfigError, DataError
    from ganctl.evaluation.metrics import check_metrics
    from ganctl.evaluation.quantised import judge
    from ganctl.recipe.load import load_recipe
    from ganctl.runs.checkpoint import Progress
    from ganctl.runs.rundir import RunDir
    from ganctl.session.assemble import open_session
    from ganctl.session.provenance import check_same_data, fingerprint, resolve_locations
    from ganctl.training import followers
    from ganctl.training.default_classifier import for_quality_check
    from ganctl.training.finetune import init_weights, reapply
    from ganctl.training.loop import Trainer
    from ganctl.training.progress import reporter
    from ganctl.training.recipe_exports import check_exporters, export_after_training
    from ganctl.training.run_info import run_info

    host = load_plugins()
    if resume is not None:
        run = RunDir.open(resume)
        recipe, chosen = _resumable(run, host, recipe_file, set_, backend)
    else:
        recipe = load_recipe(recipe_file, host, set_)
        chosen, _ = backends.resolve(backend, recipe.backend)
    recipe, locations = resolve_locations(recipe, host)  # a run resumes from any directory
    group = state["group"] = _join(state["group"], recipe, chosen, resume)  # before anything uses a device

    try:
        session = open_session(recipe, host, chosen)
    except DataError as exc:
        if resume is not None and locations:
            key = next(iter(locations))
            exc.message += (f" If {run.path}'s data moved, give its new location: ganctl train --resume {run.path} "
                            f"--set {key}=NEW_PATH")
        raise
    check_exporters(session, host)  # an export that cannot run should stop us before training, not after
    check_metrics(session, host)  # a metric that cannot run should stop us before training, not after
    if session.spec.kind == "table":
        from ganctl.evaluation.tables import check_table_metrics

        check_table_metrics(session, host)
    quiet = quiet or not group.writer  # process 0 speaks for the group
    trainer = Trainer(session, reporter(quiet, recipe.train.log_every, stdout()), host)
    trainer.share = (group.index, group.count)
    if resume is not None:
        run = run if group.writer else followers.resumed_run(group.index, run, processes.on_leave)
        state["run"] = run
        run.update_info(**{k: v for k, v in run_info(session, {}).items() if k in ("ganctl", "keras", "devices")},
                        **_processes_info(group, run))
        info = run.read_info()
        check_same_data(info.get("data_fingerprint"), session.dataset, str(run.path), locations)
        trainer.use(run)
        start = trainer.restore()
        if start == Progress() and info.get("init"):  # stopped before its first checkpoint: init again
            reapply(session, info["init"])
        if start.epoch > recipe.train.epochs or (start.epoch == recipe.train.epochs and start.step_in_epoch):
            trained = f"{start.epoch} epochs" + (" and part of the next" if start.step_in_epoch else "")
            raise ConfigError(
                f"{run.path} has already trained {trained}, more than train.epochs={recipe.train.epochs}: "
                f"a run cannot be shortened. To train longer: ganctl train --resume {run.path} "
                f"--set train.epochs={start.epoch * 2}"
            )
        if start.epoch == recipe.train.epochs and info.get("status") == "completed":
            interrupts.finished()
            typer.echo(
                f"{run.path} already finished its {start.epoch} epochs. To train longer: "
                f"ganctl train --resume {run.path} --set train.epochs={start.epoch * 2}"
            )
            return
        run.update_info(epochs=recipe.train.epochs, data_locations=_moved(info.get("data_locations") or {}, locations))
        run.write_recipe(recipe.to_dict())  # train.epochs may have grown, the data may have moved
    else:
        initialised = init_weights(session)  # checked before the run directory exists
        run = (RunDir.create(recipe.output, recipe.name, recipe.to_dict(), out_dir) if group.writer
               else followers.new_run(group.index, recipe.name, recipe.to_dict(), processes.on_leave))
        state["run"] = run
        plugins = {p.name: f"{p.distribution} {p.version}" for p in host.plugins if p.status == "loaded"}
        run.write_info({**run_info(session, plugins), **_processes_info(group, run),
                        "epochs": recipe.train.epochs, "data_locations": locations,
                        "data_fingerprint": fingerprint(session.dataset),
                        **({"init": initialised} if initialised else {})})
        trainer.use(run)
        start = Progress()
    if not quiet:
        typer.echo(f"run {run.path}: {recipe.model.plugin} on {recipe.data.plugin}, backend {chosen}, "
                   f"{'jit' if session.jit else 'eager'}")
        if resume is None and recipe.init is not None:
            source = run.read_info()["init"]
            typer.echo(f"init: {', '.join(source['players'])} from {source['from']} (step {source['step']}, "
                       f"{source['checkpoint']} checkpoint{', with optimizer state' if source['optimizer'] else ''})")
    try:
        outcome = trainer.fit(start)
        late = interrupts.requested()  # a signal during the last epoch's work: the run completed anyway
        if late is not None and recipe.export:  # stop before the exports, as a signal during them would
            raise _stopped(interrupts.Interrupt(late), run)
        for result in export_after_training(session, host, run, outcome.progress.step,
                                            judge=lambda exported: judge(
                                                exported, host, default=for_quality_check(exported, host, Trainer))):
            if not quiet and result.quality is not None:
                quality = result.quality
                typer.echo(f"exported {result.key}: {result.path} (images within {quality.max_abs_diff:.2g} of "
                           f"float32, {quality.mean_abs_diff:.2g} on average; " + ", ".join(
                               f"{k} {a:.4g} -> {b:.4g}" for k, (a, b) in quality.metrics.items()) + ")")
            elif not quiet:
                typer.echo(f"exported {result.format}: {result.path} (max abs difference from Keras "
                           f"{result.max_abs_diff:.2g})")
    except Exception as exc:  # in a group: another process stopped, so a collective failed
        if not processes.lost(exc):
            raise
        error = processes.error_of(exc)
        if group.writer:
            error.message += (f" {run.path} keeps its checkpoints ({trainer.checkpoints.kept()}); continue with: "
                              f"ganctl train --resume {run.path} (as one process or several)")
        raise error from None
    interrupts.finished()  # nothing is left but printing and exiting: a late signal changes nothing
    if not group.writer:
        return
    if quiet:
        typer.echo(str(run.path))
    elif session.model.kind == "generator":
        typer.echo(f"done: {outcome.progress.step} steps in {outcome.seconds:.1f} s; samples in "
                   f"{run.samples}; run directory {run.path}")
    else:
        validation = run.read_info().get("validation")
        scored = (f"held-out accuracy {validation['accuracy']:.4f} on {validation['n']} images; "
                  if validation else "")
        typer.echo(f"done: {outcome.progress.step} steps in {outcome.seconds:.1f} s; {scored}run directory {run.path}")
