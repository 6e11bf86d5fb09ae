"""Training a recipe's model into a run directory (``ganctl train``).

- ``loop.py``: the :class:`Trainer`: epochs, batches, steps, the NaN check, safe points for signals and
  stops, the run's status; an epoch's running means (kept in mid-epoch checkpoints).
- ``feed.py``: each step's batch and latents prepared ahead in a background thread and staged on the device
  (``train.prefetch``).
- ``fused.py``: an epoch's steps cut into chunks of ``train.steps_per_execution``, each run in one call
  into the engine, and each step's logged values given back in turn.
- ``callbacks.py``: the :class:`Callback` protocol the loop calls around its steps, and :class:`CallbackList`.
- ``progress.py``: the reporters (Rich live display, plain lines, nothing): training's one channel to
  the user; ``ShowProgress``, the callback that drives them.
- ``samples.py``: a generator's sample grids, and its sample diversity with the mode-collapse alarm.
- ``metrics.py``: a generator's metrics during training, and ``train.keep_best``.
- ``validation.py``: a classifier's scores on the dataset's held-out split.
- ``checkpoints.py``: periodic checkpoints, the one at a stop, keep-best's, resuming from the newest.
- ``pruning.py``: ``train.prune``'s report, each pruned kernel's sparsity in run.json at the end.
- ``run_info.py``: a new run's run.json.
- ``default_classifier.py``: the default features of a dataset, its classifier trained on first use (through
  this package's trainer) into ganctl's cache.
- ``followers.py``: the scratch run directory of a process other than process 0 when training as several
  processes (only process 0 writes the run).
"""
