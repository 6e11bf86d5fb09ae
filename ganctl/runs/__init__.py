"""What a run leaves on disk, and opening it again.

- ``rundir.py``: the run directory: its recipe, ``run.json``, ``metrics.jsonl`` and
  ``evaluations.jsonl`` (written and read), where exports go, and whether a path is a run
  directory or an exported model file.
- ``checkpoint.py``: checkpoint files: atomic save, verified load, fallback to the newest good one.
- ``images.py``: sample grids (one column per class) and atomic PNG writing.
- ``trained.py``: a trained run's model rebuilt on a backend with one of its checkpoints loaded,
  and sampled with Keras.
- ``report.py``: the HTML page of a run (``ganctl report``).
"""
