"""Training a recipe's model into a run directory (``ganctl train``).

- ``loop.py``: the :class:`Trainer`: epochs, batches, steps, the NaN check, safe points for signals and
  stops, the run's status; an epoch's running means (kept in mid-epoch checkpoints).
- ``callbacks.py``: the :class:`Callback` protocol the loop calls around its steps, and :class:`CallbackList`.
- ``progress.py``: the reporters (Rich live display, plain lines, nothing): training's one channel to
  the user; ``ShowProgress``, the callback that drives them.
- ``samples.py``: a generator's sample grids, and its sample diversity with the mode-collapse alarm.
- ``metrics.py``: a generator's metrics during training, and ``train.keep_best``.
- ``validation.py``: a classifier's scores on the dataset's held-out split.
- ``checkpoints.py``: periodic checkpoints, the one at a stop, keep-best's, resuming from the newest.
- ``run_info.py``: a new run's run.json.
"""
