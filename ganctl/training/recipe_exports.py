"""The exports a recipe's ``export:`` list asks for, made at the end of training (and checked
before it starts): each through :func:`ganctl.exporting.export`, from the best checkpoint when
``train.keep_best`` kept one, with the moving average when ``train.ema`` keeps one, and from a
float32 twin of a model trained in lower precision."""

from __future__ import annotations

from collections.abc import Callable

from ganctl.errors import ConfigError, GanctlError
from ganctl.exporting import (
    Exported,
    Judge,
    cannot_quantize,
    export,
    make_exporter,
    unavailable,
)
from ganctl.plugins import PluginHost
from ganctl.runs.rundir import RunDir
from ganctl.session.assemble import Session


def export_after_training(session: Session, host: PluginHost, run: RunDir, step: int,
                          judge: Callable[[Session], Judge] | None = None) -> list[Exported]:
    """The recipe's ``export:`` list, run at the end of training, from the best checkpoint if
    ``train.keep_best`` kept one (the session's weights are then replaced by it), with the
    generator's moving average when ``train.ema`` keeps one. ``judge(session)``: the quality
    check of quantised exports."""
    from ganctl.runs import checkpoint

    engine = session.engine
    if session.recipe.export and session.recipe.train.keep_best is not None:
        best, _ = checkpoint.latest(run.best_checkpoints)
        if best is not None:
            if engine.weights is None:
                engine.load_model_state(best.arrays)
            else:  # the best checkpoint's average: the session's is the last step's
                engine.load_model_state(engine.with_average(best.arrays))
                engine.weights = "ema"
            step = best.progress.step
    results = []
    with engine.averaged():
        exported = float32_twin(session, host) if session.recipe.export else session
        for index, section in enumerate(session.recipe.export):
            name, exporter = make_exporter(host, section, source=f"{run.recipe_path}: export[{index}]")
            try:
                results.append(export(exported, run, step, name, exporter,
                                      judge=judge(exported) if judge and exporter.quantization else None))
            except GanctlError as exc:
                exc.message = (f"training finished and saved its checkpoint, but export[{index}] ({name}) failed: "
                               f"{exc.message} Retry with: ganctl export {run.path} --format {name}"
                               + (f" --quantize {exporter.quantization}" if exporter.quantization else ""))
                raise
    return results


def float32_twin(session: Session, host: PluginHost) -> Session:
    """``session`` itself when its model is float32; else the model rebuilt in float32 (a session
    for sampling, on the same backend) with the weights ``session``'s holds now (the moving average
    inside ``engine.averaged()``), cast to float32: exports are float32 whatever ``train.precision``."""
    if session.precision == "float32":
        return session
    from ganctl.session.assemble import open_session

    twin = open_session(session.recipe, host, session.backend, spec=session.spec, precision="float32")
    twin.engine.load_model_state(session.engine.state_arrays())
    twin.engine.weights = session.engine.weights
    return twin


def check_exporters(session: Session, host: PluginHost) -> None:
    """Fail before training when an exporter in the recipe's ``export:`` list cannot run here."""
    for index, section in enumerate(session.recipe.export):
        name, exporter = make_exporter(host, section, source=f"export[{index}]")
        reason = unavailable(session, exporter) or cannot_quantize(session, name, exporter)
        if reason:
            raise ConfigError(
                f"{session.recipe.source}: export[{index}]: the {name} exporter cannot run on the "
                f"{session.backend} backend here: {reason}. Fix that, or remove it from export: and "
                "export later with ganctl export."
            )
