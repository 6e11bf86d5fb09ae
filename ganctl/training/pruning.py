"""``train.prune``'s report: the sparsity each pruned kernel ended with, in the run's run.json.

The masks themselves live in the pruned players' optimizers (:mod:`ganctl.session.pruning`).
"""

from __future__ import annotations

from ganctl.runs.checkpoint import Progress
from ganctl.runs.rundir import RunDir
from ganctl.session.assemble import Session
from ganctl.session.pruning import kernel_sparsity
from ganctl.training.callbacks import Callback


class PruningReport(Callback):
    """At the end of a completed run, ``sparsity`` in run.json: per pruned player, the fraction of
    exact zeros in each Dense and Conv kernel, by the kernel's path."""

    def __init__(self, session: Session, run: RunDir) -> None:
        self.session, self.run = session, run

    def on_train_end(self, progress: Progress, completed: bool) -> None:
        prune = self.session.recipe.train.prune
        if not completed or prune is None:
            return
        engine = self.session.engine
        engine.sync()  # JAX keeps the weights apart between steps
        self.run.update_info(sparsity={player: kernel_sparsity(engine.networks[player]) for player in prune.players})
