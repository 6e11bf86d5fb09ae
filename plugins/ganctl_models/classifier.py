"""The ``classifier`` model: a small CNN that labels images, trained with cross-entropy.

It is what the ``classifier`` feature extractor runs: a network trained by ganctl on the user's
own labelled data, so that metrics compare generated and real images through features that
mean something for *that* data (InceptionV3's ImageNet features say little about 8x8 digits).

The network sizes itself to the data: ``blocks`` convolution blocks (each ``convs`` 3x3
convolutions with batch normalisation and ReLU, the last of them with stride 2, which halves the
image; the filters double per block), then a fully-connected layer of ``features`` units (ReLU) — the features metrics compare
— dropout, and the class logits. The exported extractor returns the softmax probabilities and
those features.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ganctl import api

from ._blocks import dropout

if TYPE_CHECKING:
    import keras

MAX_BLOCKS = 3
"""``blocks: null`` uses as many blocks as halving allows, up to this many."""


def halve(side: int) -> int:
    """A side after one stride-2 convolution with 'same' padding."""
    return (side + 1) // 2


def auto_blocks(height: int, width: int) -> int:
    """How many halvings fit while the smaller side stays at least 2 pixels (at most MAX_BLOCKS)."""
    blocks, side = 0, min(height, width)
    while blocks < MAX_BLOCKS and halve(side) >= 2:
        side = halve(side)
        blocks += 1
    return blocks


class Classifier(api.ClassifierModel):
    """A small CNN that labels images (cross-entropy); the `classifier` feature extractor runs it."""

    trains_default_features = True  # ganctl evaluate's default features: this model, trained on the data

    class Params(api.Params):
        filters: int = api.Field(32, ge=1, le=1024, description="Filters of the first block; each block doubles them.")
        blocks: int | None = api.Field(
            None, ge=0, le=8,
            description=f"Convolution blocks, each halving the image; null: as many as the image size "
                        f"allows (down to 2 pixels), at most {MAX_BLOCKS}.",
        )
        convs: int = api.Field(1, ge=1, le=4, description="3x3 convolutions per block (the last one has stride 2).")
        features: int = api.Field(
            64, ge=2, le=4096,
            description="Width of the penultimate layer: the features that metrics compare.",
        )
        dropout: float = api.Field(0.3, ge=0, lt=1, description="Dropout before the class logits.")
        label_smoothing: float = api.Field(0.0, ge=0, lt=1, description="Label smoothing of the cross-entropy.")
        l2: float = api.Field(0.0, ge=0, description="L2 penalty (l2 * sum(w^2)) on every kernel.")

    params: Params

    def __init__(self, params: Params, spec: api.DataSpec) -> None:
        super().__init__(params, spec)
        if spec.num_classes < 2:
            found = "no labels" if spec.num_classes == 0 else "a single class"
            raise api.ConfigError(
                f"the classifier model learns to tell classes apart, but the data has {found}. Train it on "
                "labelled data with at least two classes (e.g. an image-folder with one sub-folder per class, "
                "or the digits or idx datasets)."
            )
        self.blocks = auto_blocks(spec.height, spec.width) if params.blocks is None else params.blocks
        self._network, self._extractor = self._build()

    def _build(self) -> tuple[keras.Model, keras.Model]:
        import keras

        p, spec = self.params, self.spec
        reg = keras.regularizers.L2(p.l2) if p.l2 > 0 else None
        images = keras.Input(shape=spec.shape, name="images")
        x = images
        for block in range(self.blocks):
            for conv in range(p.convs):
                name = f"c_block_{block + 1}_conv_{conv + 1}"
                stride = 2 if conv == p.convs - 1 else 1
                x = keras.layers.Conv2D(p.filters << block, 3, strides=stride, padding="same", use_bias=False,
                                        kernel_regularizer=reg, name=name)(x)
                x = keras.layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)
                x = keras.layers.ReLU(name=f"{name}_relu")(x)
        x = keras.layers.Flatten(name="c_flatten")(x)
        x = keras.layers.Dense(p.features, kernel_regularizer=reg, name="c_features_dense")(x)
        features = keras.layers.ReLU(dtype="float32", name="c_features")(x)
        x = dropout(p.dropout, "c_dropout")(features) if p.dropout > 0 else features
        logits = keras.layers.Dense(spec.num_classes, kernel_regularizer=reg, dtype="float32", name="c_logits")(x)
        probabilities = keras.layers.Softmax(dtype="float32", name="c_probabilities")(logits)
        network = keras.Model(images, [logits, features], name="classifier")
        extractor = keras.Model(images, [probabilities, features], name="classifier_extractor")
        return network, extractor

    def networks(self) -> dict[str, Any]:
        return {"classifier": self._network}

    @property
    def extractor(self) -> keras.Model:
        return self._extractor

    def loss(self, player: str, images: Any, labels: Any, z: Any) -> tuple[Any, dict[str, Any]]:
        """The cross-entropy, and what is logged (as ``classifier/<key>``, see docs/training.md):
        ``loss`` (with the L2 penalty) and ``accuracy`` on the training batch."""
        import keras
        from keras import ops

        if player != "classifier":
            raise ValueError(f"unknown player '{player}': the classifier model has one player, 'classifier'.")
        if labels is None:
            raise api.ConfigError("the classifier model needs labels, but the batch has none.")
        labels = ops.convert_to_tensor(labels, dtype="int32")
        logits, _ = self._network(ops.convert_to_tensor(images), training=True)
        targets = ops.one_hot(labels, self.spec.num_classes)
        loss = ops.mean(keras.losses.categorical_crossentropy(
            targets, logits, from_logits=True, label_smoothing=self.params.label_smoothing))
        if self.params.l2 > 0:
            for extra in self._network.losses:
                loss = loss + extra
        accuracy = ops.mean(ops.cast(ops.equal(ops.argmax(logits, axis=-1), labels), "float32"))
        return loss, {"loss": loss, "accuracy": accuracy}
