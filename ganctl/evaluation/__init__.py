"""Evaluating models: generators with metrics on real and generated images, classifiers on held-out data.

- ``subjects.py``: what is evaluated (:class:`Subject`): a run's generator, an ONNX export, the
  session being trained, or real held-out images for the real-vs-real floor.
- ``real.py``: the real images (:class:`RealData`) and the cache of their features.
- ``extractors.py``: feature extractors as evaluation runs them, and which one is the default.
- ``metrics.py``: metric requests, the default metrics, ``evaluate`` (values with their
  protocol), ``check_metrics`` (a recipe's metrics, before training) and ``default_n``.
- ``classification.py``: a classifier's scores (accuracy, F1, ROC-AUC...) from its probabilities.
- ``scoring.py``: ``ganctl evaluate`` on a classifier's run directory or ONNX export.
- ``held_out.py``: a generative model's own values on held-out images (a VAE's ELBO) and its
  reconstructions, after each training epoch and in ``ganctl evaluate``.
- ``default_features.py``: what metrics look through when nobody names an extractor (a dataset
  plugin's declaration, the data's cached classifier, or the extractor plugins' default), and
  that classifier's cache key and recipe.
- ``verdict.py``: a value against its floor (real held-out images), in words.
"""
