"""What a quantised export costs in image quality: FID and C2ST of the float32 generator and of
the quantised file, on the same latents and against the same real images and features.

The metrics are those whose plugins declare ``checks_exports`` (API 1.7; ganctl's own: FID, then
C2ST; the first is the one ``--max-fid-increase`` limits), looked through the features ``ganctl
evaluate RUN_DIR`` would use: the extractor the run recipe's section of one of them names, else
the data's default features (:mod:`ganctl.evaluation.default_features`, chosen by the command). Both generators draw from the same seed, so the change measures the
quantisation, not the sampling noise of two different sets of latents.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import numpy as np

from ganctl.errors import PluginError
from ganctl.evaluation.metrics import evaluate, request
from ganctl.evaluation.real import RealData
from ganctl.evaluation.subjects import subject_from_session
from ganctl.plugins import PluginHost

DEFAULT_N = 1000
SEED = 0

Draw = Callable[[np.ndarray, np.ndarray | None], np.ndarray]


def metrics_of(host: PluginHost) -> list[str]:
    """The metrics of the check, in registration order; each one's headline value is reported."""
    found = host.declaring("metrics", "checks_exports")
    if not found:
        raise PluginError("no installed metric plugin declares checks_exports = True, so the quality of a quantised "
                          "export cannot be checked; see `ganctl plugins`.")
    return found


def features_of(session: Any, names: list[str]) -> Any:
    """The extractor section the run's own metrics look through, or None (the default)."""
    for name in names:
        for section in session.recipe.metrics:
            if section.plugin == name and section.features:
                return section.features
    return None


def judge(session: Any, host: PluginHost, n: int | None = None, seed: int = SEED,
          default: str | dict[str, Any] | None = None) -> Callable[[Draw], dict]:
    """A function scoring a draw function against ``session``'s float32 generator: ``{metric:
    (float32 value, its value)}``, on ``n`` images (default :data:`DEFAULT_N`, or fewer when the
    real data holds fewer). ``default``: the data's default features, used when the recipe's
    metrics name none (:func:`features_of`)."""
    from ganctl.errors import ConfigError

    if n is not None and n < 2:
        raise ConfigError(f"--quality-n must be at least 2, got {n}.")
    names = metrics_of(host)
    features = features_of(session, names)
    requests = [request(host, name, features, default) for name in names]
    reference = subject_from_session(session, 0)

    def score(draw: Draw) -> dict[str, tuple[float, float]]:
        real = RealData(session.recipe.data.to_dict(), 0, seed, session.dataset)
        holds = len(real.pool(host))
        if n is not None and n > holds:
            raise ConfigError(f"--quality-n {n} is more than the {holds} real images of "
                              f"{json.dumps(real.described)}; use --quality-n {holds} or less.")
        count = n if n is not None else min(DEFAULT_N, holds)
        candidate = dataclasses.replace(reference, name=f"{reference.name} (quantised)", draw=draw,
                                        engine="onnxruntime")
        before = evaluate(reference, requests, host, n=count, seed=seed, real=real)
        after = evaluate(candidate, requests, host, n=count, seed=seed, real=real)
        return {a.metric: (a.headline[1], b.headline[1]) for a, b in zip(before, after, strict=True)}

    return score
