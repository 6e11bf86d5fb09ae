"""DiffAugment (Zhao et al. 2020) with ADA's adaptive probability (Karras et al. 2020), for the
discriminators of gan and dcgan (``model.augment``).

The augmentation is a Keras layer at the front of the discriminator: with ``training=True``
every image the discriminator sees (real and generated, in both players' losses and in the
penalties) is augmented, differentiably, so the generator learns through it; with
``training=False`` it is the identity. Each policy entry is applied to each example with
probability ``p``, drawn from the layer's own seed generator. ``p`` is a non-trainable
variable of the layer; with ``adaptive`` the discriminator's loss moves it after each update.
Both are discriminator state, so checkpoints carry them and a resumed run is exact.

The augmentations, on images in ``[-1, 1]`` (as in the paper's code):

* ``color``: brightness ``x + b``, ``b ~ U[-0.5, 0.5)``; saturation ``(x - m_c) s + m_c`` with
  ``m_c`` the mean over channels and ``s ~ U[0, 2)`` (the identity on one channel, where there
  is no colour: skipped); contrast ``(x - m) c + m`` with ``m`` the image's mean and
  ``c ~ U[0.5, 1.5)``. One coin per example decides the three together.
* ``translation``: a shift by whole pixels, up to 1/8 of the side (rounded) each way,
  independently along height and width; pixels shifted in are 0.
* ``cutout``: a square of half the side (rounded) set to 0, centred at a uniformly random
  pixel (it may be cut by the image's border).

Keras is imported inside functions, so importing this module stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from ganctl import api

if TYPE_CHECKING:
    import keras

PolicyName = Literal["color", "translation", "cutout"]
"""The augmentations a policy may list."""

TRANSLATION_RATIO = 0.125
"""Largest shift, as a share of the image's side."""

CUTOUT_RATIO = 0.5
"""Side of the cut-out square, as a share of the image's side."""

DEFAULT_TARGET = 0.6
DEFAULT_SPEED = 20_000
"""Images for the adaptive ``p`` to move by 1 (the ADA paper: 500k, for runs of tens of
millions of images; 20k suits ganctl's small runs of 10^5 to 10^6 images)."""


class AdaptiveParams(api.Params):
    """ADA's adjustment of ``p``: ``model.augment.adaptive: {target: 0.6, speed: 20000, start: 0}``."""

    target: float = api.Field(
        DEFAULT_TARGET,
        gt=0,
        lt=1,
        description=(
            "The overfitting heuristic r_t = mean(sign(D(real))) aimed at: p grows while r_t is "
            "above it (the discriminator is too sure of the real images) and shrinks while below."
        ),
    )
    speed: int = api.Field(
        DEFAULT_SPEED,
        ge=1,
        description=(
            "Images for p to move by 1: after each discriminator update p changes by "
            "batch_size / speed (the ADA paper: 500000, for very long runs)."
        ),
    )
    start: float = api.Field(0.0, ge=0, le=1, description="The value p starts at.")


class AugmentParams(api.Params):
    """DiffAugment: ``model.augment: {policy: [color, translation, cutout], p: 1.0}``, or with
    ``adaptive: {...}`` instead of ``p``."""

    policy: tuple[PolicyName, ...] = api.Field(
        ("color", "translation", "cutout"),
        min_length=1,
        description=(
            "The augmentations, applied in this order: 'color' (brightness, saturation, contrast), "
            "'translation' (shift by up to 1/8 of the image, zero padding), 'cutout' (a square of "
            "half the image's side set to 0)."
        ),
    )
    p: float | None = api.Field(
        None,
        ge=0,
        le=1,
        description=(
            "The probability that each augmentation is applied to each example (1.0 when absent). "
            "Not with `adaptive`, which moves it (its start is `adaptive.start`)."
        ),
    )
    adaptive: AdaptiveParams | None = api.Field(
        None,
        description=(
            "Adjust p during training from the discriminator's outputs on real images (ADA), "
            "e.g. {target: 0.6, speed: 20000, start: 0}; off when absent."
        ),
    )

    @api.model_validator(mode="after")
    def _check(self) -> AugmentParams:
        repeated = sorted({name for name in self.policy if self.policy.count(name) > 1})
        if repeated:
            raise ValueError(
                f"policy lists {', '.join(repeated)} more than once; each augmentation is applied "
                f"once per discriminator call. List each name once, e.g. `policy: [{', '.join(dict.fromkeys(self.policy))}]`."
            )
        if self.adaptive is not None and self.p is not None:
            raise ValueError(
                f"p is fixed at {self.p}, but `adaptive` moves p during training. Remove `p` (and give "
                f"the starting value as `adaptive: {{start: {self.p}}}`), or remove `adaptive` to keep p fixed."
            )
        return self

    @property
    def initial_p(self) -> float:
        """The probability training starts with."""
        if self.adaptive is not None:
            return self.adaptive.start
        return 1.0 if self.p is None else self.p


# --- the augmentations, written with keras.ops ------------------------------------------------


def brightness(x: Any, shift: Any) -> Any:
    """``x + shift``; ``shift`` is ``[B, 1, 1, 1]``."""
    return x + shift


def saturation(x: Any, factor: Any) -> Any:
    """``(x - m) * factor + m``, ``m`` the mean over channels (the identity on one channel)."""
    from keras import ops

    mean = ops.mean(x, axis=-1, keepdims=True)
    return (x - mean) * factor + mean


def contrast(x: Any, factor: Any) -> Any:
    """``(x - m) * factor + m``, ``m`` each image's mean over pixels and channels."""
    from keras import ops

    mean = ops.mean(x, axis=(1, 2, 3), keepdims=True)
    return (x - mean) * factor + mean


def _shift_matrix(size: int, shift: Any, dtype: str) -> Any:
    """``[B, size, size]``: row ``i`` of example ``b`` is one-hot at ``i - shift[b]`` (a zero row when
    that is outside the image), so multiplying by it moves content by ``+shift``."""
    from keras import ops

    rows = ops.arange(size, dtype="int32")
    source = ops.expand_dims(rows, 0) - ops.expand_dims(ops.cast(shift, "int32"), 1)  # [B, size]
    hits = ops.equal(ops.expand_dims(source, 2), ops.reshape(rows, (1, 1, size)))
    return ops.cast(hits, dtype)


def translate(x: Any, dy: Any, dx: Any) -> Any:
    """Each image ``b`` moved down by ``dy[b]`` and right by ``dx[b]`` whole pixels (negative: up,
    left), zeros shifted in: ``out[b, i, j] = x[b, i - dy, j - dx]``. Linear in ``x``."""
    from keras import ops

    height, width = int(x.shape[1]), int(x.shape[2])
    x = ops.einsum("bij,bjwc->biwc", _shift_matrix(height, dy, x.dtype), x)
    return ops.einsum("bkl,bilc->bikc", _shift_matrix(width, dx, x.dtype), x)


def cutout_mask(height: int, width: int, cy: Any, cx: Any, dtype: str) -> Any:
    """``[B, height, width, 1]``: 0 on the square of half the side centred at ``(cy[b], cx[b])``
    (rows ``cy - h // 2`` to ``cy - h // 2 + h - 1``, likewise columns), 1 elsewhere."""
    from keras import ops

    size_h, size_w = cutout_size(height), cutout_size(width)

    def inside(size: int, side: int, centre: Any) -> Any:
        first = ops.expand_dims(ops.cast(centre, "int32") - size // 2, 1)  # [B, 1]
        index = ops.expand_dims(ops.arange(side, dtype="int32"), 0)  # [1, side]
        return ops.logical_and(ops.greater_equal(index, first), ops.less(index, first + size))

    rows, cols = inside(size_h, height, cy), inside(size_w, width, cx)
    square = ops.logical_and(ops.expand_dims(rows, 2), ops.expand_dims(cols, 1))
    return ops.expand_dims(1.0 - ops.cast(square, dtype), -1)


def cutout(x: Any, cy: Any, cx: Any) -> Any:
    """``x`` with the square of :func:`cutout_mask` set to 0."""
    return x * cutout_mask(int(x.shape[1]), int(x.shape[2]), cy, cx, x.dtype)


def max_shift(side: int) -> int:
    """The largest translation along a side of ``side`` pixels: 1/8 of it, rounded."""
    return int(side * TRANSLATION_RATIO + 0.5)


def cutout_size(side: int) -> int:
    """The cut-out square's extent along a side of ``side`` pixels: half of it, rounded."""
    return int(side * CUTOUT_RATIO + 0.5)


# --- the layer --------------------------------------------------------------------------------

_LAYER: type | None = None


def layer_class() -> type:
    """The ``DiffAugment`` Keras layer class (made on first use: Keras is imported only with a backend)."""
    global _LAYER
    if _LAYER is not None:
        return _LAYER
    import keras

    ops = keras.ops

    @keras.saving.register_keras_serializable(package="ganctl_models")
    class DiffAugment(keras.layers.Layer):
        """Augments ``[B, H, W, C]`` images at training calls; the identity otherwise.

        ``p`` (the non-trainable variable ``augment_p``) is each augmentation's probability per
        example; random numbers come from the layer's seed generator. Computes in float32.
        """

        def __init__(self, policy: tuple[str, ...] = ("color", "translation", "cutout"), p: float = 1.0,
                     seed: int | None = None, **kwargs: Any) -> None:
            kwargs.setdefault("dtype", "float32")
            super().__init__(**kwargs)
            self.policy = tuple(policy)
            self.initial_p = float(p)
            self.seed = seed
            self.seed_generator = keras.random.SeedGenerator(seed, name="augment_seed")
            self.p = self.add_weight(
                shape=(), initializer=keras.initializers.Constant(self.initial_p), trainable=False,
                dtype="float32", name="augment_p",
            )

        def build(self, input_shape: Any) -> None:
            self.built = True

        def compute_output_shape(self, input_shape: Any) -> Any:
            return input_shape

        def _uniform(self, batch: Any, low: float = 0.0, high: float = 1.0) -> Any:
            return keras.random.uniform((batch, 1, 1, 1), low, high, dtype="float32", seed=self.seed_generator)

        def _shifts(self, batch: Any, most: int) -> Any:
            """``[B]`` whole numbers, uniform in ``-most .. most``."""
            u = keras.random.uniform((batch,), dtype="float32", seed=self.seed_generator)
            return ops.cast(ops.floor(u * (2 * most + 1)), "int32") - most

        def _positions(self, batch: Any, side: int) -> Any:
            """``[B]`` cut-out centres, uniform in ``0 .. side - 1`` (``.. side`` for an even square, as in
            the paper's code)."""
            count = side + (1 - cutout_size(side) % 2)
            u = keras.random.uniform((batch,), dtype="float32", seed=self.seed_generator)
            return ops.minimum(ops.cast(ops.floor(u * count), "int32"), count - 1)

        def augment(self, x: Any, name: str) -> Any:
            """``x`` with the augmentation ``name`` applied to every example (fresh random numbers)."""
            batch = ops.shape(x)[0]
            if name == "color":
                x = brightness(x, self._uniform(batch, -0.5, 0.5))
                if int(x.shape[-1]) > 1:
                    x = saturation(x, self._uniform(batch, 0.0, 2.0))
                return contrast(x, self._uniform(batch, 0.5, 1.5))
            if name == "translation":
                dy = self._shifts(batch, max_shift(int(x.shape[1])))
                dx = self._shifts(batch, max_shift(int(x.shape[2])))
                return translate(x, dy, dx)
            cy = self._positions(batch, int(x.shape[1]))
            cx = self._positions(batch, int(x.shape[2]))
            return cutout(x, cy, cx)

        def call(self, inputs: Any, training: bool | None = None) -> Any:
            if not training:
                return inputs
            x = ops.cast(inputs, "float32")
            p = ops.cast(self.p, "float32")
            for name in self.policy:
                applied = ops.less(self._uniform(ops.shape(x)[0]), p)
                x = ops.where(applied, self.augment(x, name), x)
            return x

        def adjust(self, real_logits: Any, target: float, speed: int) -> tuple[Any, Any]:
            """ADA's step: ``r_t = mean(sign(real_logits))``; ``p += sign(r_t - target) * B / speed``,
            clipped to [0, 1] and assigned. Returns ``(r_t, new p)``."""
            logits = ops.cast(real_logits, "float32")
            rt = ops.mean(ops.sign(logits))
            batch = ops.cast(ops.shape(logits)[0], "float32")
            p = ops.clip(ops.cast(self.p, "float32") + ops.sign(rt - target) * batch / float(speed), 0.0, 1.0)
            self.p.assign(p)
            return rt, p

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "policy": list(self.policy), "p": self.initial_p, "seed": self.seed}

    _LAYER = DiffAugment
    return _LAYER


def augment_layer(params: AugmentParams | None) -> keras.layers.Layer | None:
    """The discriminator's augmentation layer for ``model.augment``, or None when it is off."""
    if params is None:
        return None
    return layer_class()(policy=params.policy, p=params.initial_p, name="diff_augment")
