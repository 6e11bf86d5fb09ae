"""How far a metric's value is from its floor (real held-out images scored the same way), in words.

A distance (FID, KID: the metric declares ``distance``) is judged by its ratio to the floor (a
KID floor below 0 reads as 0, and the value is judged by its ratio to how far below 0 it fell,
the estimate's scatter); any
other headline value (C2ST's ROC-AUC, PRDC's coverage, a class accuracy) by how much worse than
the floor it is, in the metric's direction (``lower_is_better``): absolutely for values in
[0, 1], else relative to the floor. The thresholds are documented in docs/evaluation.md
("Floors and verdicts"); change them there too.
"""

from __future__ import annotations

from dataclasses import dataclass

WORDS = ("at the floor", "very close", "close", "far", "very far")
"""The verdicts, best first."""
RATIO_LIMITS = (1.5, 3.0, 10.0, 30.0)
"""A distance at or below ``k`` times its floor gets ``WORDS[i]`` for the first such limit ``k``."""
GAP_LIMITS = (0.02, 0.1, 0.25, 0.4)
"""A score at most this much worse than its floor gets ``WORDS[i]`` (relative to the floor's
size when the values are not within [0, 1])."""


@dataclass(frozen=True)
class Verdict:
    """A value against its floor: the words, and the one line that says them."""

    word: str
    line: str
    ratio: float | None = None
    """value / floor, for a distance when both are above 0; else None."""

    def to_dict(self) -> dict[str, object]:
        return {"verdict": self.word, "line": self.line, **({"x_floor": self.ratio} if self.ratio is not None else {})}


def _word(amount: float, limits: tuple[float, ...]) -> str:
    for word, limit in zip(WORDS, limits, strict=False):
        if amount <= limit:
            return word
    return WORDS[-1]


def judge(key: str, value: float, floor: float, *, distance: bool, lower_is_better: bool) -> Verdict:
    """The verdict on ``value`` (the headline ``key`` of a metric) against its ``floor``."""
    if distance:
        if value <= 0:  # an unbiased estimate (KID) can fall below 0: read as 0, which is the floor
            return Verdict(WORDS[0], f"{key} {value:.4g}: at or below 0, which reads as 0: {WORDS[0]}")
        if floor < 0:  # the floor reads as 0; how far below 0 it fell is the estimate's scatter
            scatter = value / -floor
            word = _word(scatter, RATIO_LIMITS)
            return Verdict(word, f"{key} {value:.4g}: the floor of real images is {floor:.4g} (reads as 0; so "
                                 f"estimates scatter by about {-floor:.3g}), {scatter:.2g}x that scatter: {word}")
        if floor == 0:
            word = _word(value, GAP_LIMITS)
            return Verdict(word, f"{key} {value:.4g}: the floor of real images is 0, {value:.3g} above it: {word}")
        ratio = value / floor
        word = _word(ratio, RATIO_LIMITS)
        return Verdict(word, f"{key} {value:.4g}: {ratio:.2g}x the floor of real images ({floor:.4g}): {word}", ratio)
    worse = value - floor if lower_is_better else floor - value
    bounded = 0.0 <= value <= 1.0 and 0.0 <= floor <= 1.0
    amount = worse if bounded or floor == 0 else worse / abs(floor)
    word = _word(max(amount, 0.0), GAP_LIMITS)
    if worse <= 0:
        how = "as good as"
    else:
        how = f"{worse:.3g} {'above' if lower_is_better else 'below'}" if bounded else f"{amount:.0%} worse than"
    return Verdict(word, f"{key} {value:.4g}: {how} the floor of real images ({floor:.4g}): {word}")


def of_record(host: object, record: dict) -> Verdict | None:
    """The verdict on an evaluation record (``ganctl evaluate``'s, with its ``floor``); None
    without a floor or when the metric's plugin is no longer installed."""
    from ganctl.errors import PluginError

    floor = record.get("floor")
    if not floor or not record.get("values") or not floor.get("values"):
        return None
    try:
        factory = host.get("metrics", record["metric"]).factory  # type: ignore[attr-defined]
    except PluginError:
        return None
    key, value = next(iter(record["values"].items()))
    low = next(iter(floor["values"].values()))
    return judge(key, float(value), float(low), distance=bool(getattr(factory, "distance", False)),
                 lower_is_better=bool(getattr(factory, "lower_is_better", True)))
