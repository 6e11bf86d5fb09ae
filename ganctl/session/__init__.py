"""What one process builds from a validated recipe, before training, sampling or exporting.

- ``assemble.py``: ``open_session`` (backend, data, model, optimizers, engine) and ``build_model``.
- ``data.py``: building a dataset from a recipe or a plugin name; held-out and training splits.
- ``optimizers.py``: Keras optimizers from the recipe's optimizer settings.
- ``provenance.py``: where a run's data lives (absolute locations) and what it is (a fingerprint).
- ``pruning.py``: ``train.prune``: which kernels are pruned, the schedule, and the optimizer that keeps
  and applies the masks.
- ``precision.py``: ``train.precision``: the dtype policy while the model is built, and the check that
  the backend and device can compute in it.
"""
