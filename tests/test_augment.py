"""DiffAugment, adaptive augmentation (ADA) and feature matching in gan/dcgan
(plugins/ganctl_models/augment.py, ``model.augment`` and ``model.feature_matching``)."""

from __future__ import annotations

import json

import numpy as np
import pydantic
import pytest

from ganctl import api
from ganctl.engine import backends as ganctl_backend

ganctl_backend.activate(ganctl_backend.resolve()[0])  # before Keras is first imported

import keras  # noqa: E402

from ganctl.cli import app  # noqa: E402
from ganctl.engine import engine_for  # noqa: E402
from ganctl_models import DCGAN, GAN  # noqa: E402
from ganctl_models.augment import (  # noqa: E402
    AugmentParams,
    cutout,
    cutout_size,
    layer_class,
    max_shift,
    saturation,
    translate,
)

from .conftest import assert_same_state, final_checkpoint, trained_in_two_parts  # noqa: E402

engine_for(keras.backend.backend())
pytestmark = pytest.mark.backends

ops = keras.ops
DIGITS = api.DataSpec(height=8, width=8, channels=1, num_classes=10)
UNLABELLED = api.DataSpec(height=8, width=8, channels=1)


@pytest.fixture(autouse=True)
def _seed() -> None:
    keras.utils.set_random_seed(0)


def numpy(x) -> np.ndarray:
    return np.asarray(ops.convert_to_numpy(x))


def images(n: int = 6, size: int = 16, channels: int = 1, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.1, 1.0, (n, size, size, channels)).astype("float32")


def shifted(x: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``x`` ([H, W, C]) moved down by ``dy`` and right by ``dx``, zeros shifted in."""
    out = np.zeros_like(x)
    h, w = x.shape[:2]
    out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = x[max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)]
    return out


def layer(policy, p: float = 1.0, seed: int = 3):
    return layer_class()(policy=tuple(policy), p=p, seed=seed)


def fresh(augment, x, **kwargs):
    """The layer's output without changing its state (so the next call draws the same numbers)."""
    with keras.StatelessScope():
        return augment(x, **kwargs)


# -- the augmentations, numerically --------------------------------------------------------------


def test_translation_shifts_content_and_pads_with_zeros():
    x = images(3, 8)
    out = numpy(translate(ops.convert_to_tensor(x), np.array([1, -2, 0], "int32"), np.array([0, 3, -1], "int32")))
    expected = np.zeros_like(x)
    expected[0, 1:, :] = x[0, :-1, :]  # down 1
    expected[1, :-2, 3:] = x[1, 2:, :-3]  # up 2, right 3
    expected[2, :, :-1] = x[2, :, 1:]  # left 1
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(expected, [shifted(x[0], 1, 0), shifted(x[1], -2, 3), shifted(x[2], 0, -1)])


def test_cutout_zeroes_a_square_of_half_the_side():
    x = images(3, 8)
    out = numpy(cutout(ops.convert_to_tensor(x), np.array([4, 0, 7], "int32"), np.array([4, 2, 8], "int32")))
    expected = x.copy()
    expected[0, 2:6, 2:6] = 0  # a 4x4 square from centre - 2
    expected[1, 0:2, 0:4] = 0  # cut by the top border
    expected[2, 5:8, 6:8] = 0  # by the bottom and right borders
    np.testing.assert_array_equal(out, expected)
    assert (max_shift(8), max_shift(28), max_shift(32), cutout_size(28), cutout_size(7)) == (1, 4, 4, 14, 4)


def test_saturation_scales_colour_around_the_channel_mean_and_is_the_identity_on_one_channel():
    x = images(2, 4, channels=3)
    factor = ops.convert_to_tensor(np.array([0.0, 2.0], "float32").reshape(2, 1, 1, 1))
    out = numpy(saturation(ops.convert_to_tensor(x), factor))
    mean = x.mean(axis=-1, keepdims=True)
    np.testing.assert_allclose(out, np.concatenate([np.broadcast_to(mean[:1], x[:1].shape), 2 * x[1:] - mean[1:]]),
                               rtol=1e-6, atol=1e-6)
    grey = images(2, 4)
    np.testing.assert_array_equal(numpy(saturation(ops.convert_to_tensor(grey), 1.7)), grey)


def test_the_layer_translates_by_at_most_an_eighth_and_cuts_out_half_the_side():
    x = images(16, 16)
    moved = numpy(layer(["translation"])(x, training=True))
    most = max_shift(16)
    shifts = set()
    for original, out in zip(x, moved, strict=True):
        matches = [(dy, dx) for dy in range(-most, most + 1) for dx in range(-most, most + 1)
                   if np.array_equal(out, shifted(original, dy, dx))]
        assert len(matches) == 1
        shifts.add(matches[0])
    assert len(shifts) > 3  # per example, not one shift for the batch

    cut = numpy(layer(["cutout"])(np.ones((16, 16, 16, 1), "float32"), training=True))[..., 0]
    for mask in cut:
        rows, cols = np.nonzero(mask == 0)
        assert 0 < rows.size <= 8 * 8
        assert rows.max() - rows.min() < 8 and cols.max() - cols.min() < 8
        assert rows.size == (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)  # one rectangle
    assert (cut == 0).sum() > 16 * 8 * 8 // 2  # most squares lie well inside


def test_color_is_an_affine_change_of_each_grey_image():
    x = images(8, 8)
    out = numpy(layer(["color"])(x, training=True))
    for original, new in zip(x, out, strict=True):
        slope, intercept = np.polyfit(original.ravel(), new.ravel(), 1)
        np.testing.assert_allclose(new, slope * original + intercept, atol=1e-5)
        assert 0.5 <= slope < 1.5  # the contrast factor
    assert not np.allclose(out, x)


def test_identity_at_inference_and_at_p_zero():
    x = images(4, 8, channels=3)
    augment = layer(["color", "translation", "cutout"])
    np.testing.assert_array_equal(numpy(augment(x)), x)
    np.testing.assert_array_equal(numpy(augment(x, training=False)), x)
    assert not np.array_equal(numpy(augment(x, training=True)), x)
    np.testing.assert_array_equal(numpy(layer(["color", "translation", "cutout"], p=0.0)(x, training=True)), x)


def test_each_augmentation_applies_to_each_example_with_probability_p():
    x = images(400, 4)
    out = numpy(layer(["color"], p=0.3)(x, training=True))
    changed = np.array([not np.array_equal(a, b) for a, b in zip(x, out, strict=True)])
    assert 0.2 < changed.mean() < 0.4


def test_gradient_flows_through_the_augmentation_to_the_input():
    """translation and cutout are linear: the input gradient of <w, A x> is A^T w (an adjoint check)."""
    augment = layer(["translation", "cutout"])
    x, other = images(4, 8, seed=1), images(4, 8, seed=2)
    w = np.random.default_rng(3).normal(size=x.shape).astype("float32")
    weights = ops.convert_to_tensor(w)
    with keras.StatelessScope():
        gradient = numpy(api.input_gradient(lambda v: augment(v, training=True) * weights, ops.convert_to_tensor(x)))
    assert np.count_nonzero(gradient) > 0 and np.count_nonzero(gradient == 0) > 0  # the cut-out gets none
    out = numpy(fresh(augment, other, training=True))
    assert float(np.sum(gradient * other)) == pytest.approx(float(np.sum(w * out)), rel=1e-4)


def test_seeded_draws_are_deterministic():
    x = images(4, 8, channels=3)
    policy = ["color", "translation", "cutout"]
    first, again, other = layer(policy, seed=1), layer(policy, seed=1), layer(policy, seed=2)
    a = [numpy(first(x, training=True)) for _ in range(2)]
    b = [numpy(again(x, training=True)) for _ in range(2)]
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], a[1])  # the state advances
    assert not np.array_equal(a[0], numpy(other(x, training=True)))


# -- adaptive p ----------------------------------------------------------------------------------


def p_of(model) -> float:
    return float(numpy(model.discriminator.get_layer("diff_augment").p.value))


def sure_discriminator(model, logit: float) -> None:
    """Make the discriminator output ``logit`` on every image."""
    head = model.discriminator.get_layer("d_logit")
    head.kernel.assign(np.zeros(head.kernel.shape, "float32"))
    head.bias.assign(np.full(head.bias.shape, logit, "float32"))


@pytest.mark.parametrize(("logit", "start", "moves"), [(5.0, 0.0, [0.25, 0.5, 0.75, 1.0, 1.0]),
                                                        (-5.0, 0.6, [0.35, 0.1, 0.0, 0.0])])
def test_adaptive_p_follows_the_overfitting_heuristic(logit, start, moves):
    """A discriminator that always says real (r_t = 1 > target) raises p by batch/speed per update,
    up to 1; one that always says fake lowers it, down to 0."""
    model = GAN(GAN.Params(hidden=(8,), latent_dim=8, augment={"adaptive": {"speed": 16, "start": start}}),
                UNLABELLED)
    assert p_of(model) == pytest.approx(start)
    sure_discriminator(model, logit)
    x = images(4, 8)
    z = np.random.default_rng(0).standard_normal((4, 8)).astype("float32")
    seen = []
    for _ in moves:
        _, logs = model.loss("discriminator", x, None, z)
        assert float(numpy(logs["rt"])) == np.sign(logit)
        assert float(numpy(logs["augment_p"])) == pytest.approx(p_of(model))
        seen.append(p_of(model))
    assert seen == pytest.approx(moves)
    before = p_of(model)
    model.loss("generator", x, None, z)
    assert p_of(model) == before  # only discriminator updates move it


# -- feature matching ----------------------------------------------------------------------------


def numpy_features(weights: list[np.ndarray], x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The gan discriminator in float64 NumPy: its last hidden layer and its logits."""
    h = x.reshape(len(x), -1).astype(np.float64)
    for i in range(0, len(weights) - 2, 2):
        a = h @ weights[i] + weights[i + 1]
        h = np.where(a > 0, a, 0.2 * a)
    return h, h @ weights[-2] + weights[-1]


def test_feature_matching_matches_numpy():
    model = GAN(GAN.Params(hidden=(16, 8), latent_dim=8, feature_matching=2.5), UNLABELLED)
    x = images(4, 8)
    z = np.random.default_rng(0).standard_normal((4, 8)).astype("float32")
    loss, logs = model.loss("generator", x, None, z)
    assert set(logs) == {"loss", "feature_matching"}
    weights = [np.float64(w) for w in model.discriminator.get_weights()]
    fake = numpy(model.generator(z, training=True))
    real_features, _ = numpy_features(weights, x)
    fake_features, fake_logits = numpy_features(weights, fake)
    matching = 2.5 * np.sum((real_features.mean(0) - fake_features.mean(0)) ** 2)
    assert float(numpy(logs["feature_matching"])) == pytest.approx(matching, rel=1e-4)
    adversarial = np.mean(np.logaddexp(0, -fake_logits))  # bce: softplus(-fake)
    assert float(numpy(loss)) == pytest.approx(adversarial + matching, rel=1e-4)
    assert GAN.Params(feature_matching=True).feature_matching == 1.0


# -- recipe values -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ({"augment": {"policy": ["colour"]}}, "'color', 'translation' or 'cutout'"),
        ({"augment": {"policy": []}}, "at least 1"),
        ({"augment": {"policy": ["cutout", "cutout"]}}, "cutout more than once.*policy: \\[cutout\\]"),
        ({"augment": {"p": 1.5}}, "less than or equal to 1"),
        ({"augment": {"p": -0.1}}, "greater than or equal to 0"),
        ({"augment": {"p": 0.5, "adaptive": {}}}, "p is fixed at 0.5.*adaptive: \\{start: 0.5\\}"),
        ({"augment": {"adaptive": {"target": 1.0}}}, "less than 1"),
        ({"augment": {"adaptive": {"speed": 0}}}, "greater than or equal to 1"),
        ({"augment": {"adaptive": {"start": 2}}}, "less than or equal to 1"),
        ({"augment": {"probability": 1}}, "probability"),
        ({"feature_matching": -1}, "feature_matching"),
    ],
)
def test_bad_values_are_refused(values, match):
    with pytest.raises(pydantic.ValidationError, match=match):
        DCGAN.Params(**values)


def test_defaults():
    params = AugmentParams()
    assert (params.policy, params.initial_p, params.adaptive) == (("color", "translation", "cutout"), 1.0, None)
    adaptive = AugmentParams(adaptive={})
    assert (adaptive.initial_p, adaptive.adaptive.target, adaptive.adaptive.speed) == (0.0, 0.6, 20_000)
    assert DCGAN.Params().augment is None and DCGAN.Params().feature_matching == 0


class PlainCritic(GAN):
    """A gan whose discriminator skips ``self.augmented``."""

    def build_discriminator(self):
        images = keras.Input(self.spec.shape)
        return keras.Model(images, keras.layers.Dense(1)(keras.layers.Flatten()(images)), name="discriminator")


def test_a_discriminator_without_the_augmentation_layer_is_refused():
    with pytest.raises(api.ConfigError, match="model.augment.*self.augmented"):
        PlainCritic(GAN.Params(hidden=(8,), latent_dim=8, augment={}), UNLABELLED)


def test_a_conditional_dcgan_augments_only_the_image():
    model = DCGAN(DCGAN.Params(filters=8, latent_dim=8, conditional=True, augment={}), DIGITS)
    joined = model.discriminator.get_layer("d_image_and_label")
    image, plane = joined.input
    assert image._keras_history.operation.name == "diff_augment"
    assert plane._keras_history.operation.name == "d_label_image"


# -- through the CLI -----------------------------------------------------------------------------

RECIPE = """\
name: augmented
seed: 4
data: {plugin: digits, limit: 64}
model:
  plugin: dcgan
  filters: 8
  latent_dim: 8
  conditional: true
  feature_matching: true
  d_steps: 2
  augment:
    policy: [color, translation, cutout]
    adaptive: {target: 0.6, speed: 320, start: 0.5}
train:
  epochs: 2
  batch_size: 32
  log_every: 1
  checkpoint_every: 1
"""


def test_adaptive_augmentation_and_feature_matching_train_resume_exactly_and_export(runner, write, tmp_path):
    recipe = write("augmented.yaml", RECIPE)
    result = runner.invoke(app, ["train", str(recipe), "--out", str(tmp_path / "straight"), "-q"])
    assert result.exit_code == 0, result.output
    lines = (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()
    records = [r for r in map(json.loads, lines) if "type" not in r]
    assert len(records) == 4
    for record in records:
        assert 0 <= record["discriminator/augment_p"] <= 1 and -1 <= record["discriminator/rt"] <= 1
        assert record["generator/feature_matching"] >= 0 and np.isfinite(record["generator/loss"])
    ps = [r["discriminator/augment_p"] for r in records]
    assert len(set(ps)) > 1  # p moved: 32/320 per discriminator update (two per step)
    state = final_checkpoint(tmp_path / "straight")
    (p_key,) = [k for k in state if k.endswith("augment_p")]
    assert float(state[p_key]) == pytest.approx(ps[-1])
    assert any(k.endswith("augment_seed/seed_generator_state") for k in state)

    assert_same_state(trained_in_two_parts(runner, recipe, tmp_path / "resumed", 1, 2), state)

    result = runner.invoke(app, ["export", str(tmp_path / "straight"), "--onnx"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "straight" / "exports" / "generator.onnx").is_file()


def test_a_fixed_policy_trains_a_gan_through_the_cli(runner, write, tmp_path):
    recipe = write("fixed.yaml", RECIPE.replace("plugin: dcgan", "plugin: gan").replace("filters: 8", "hidden: [16]")
                   .replace("feature_matching: true", "r1: {gamma: 1.0}")
                   .replace("adaptive: {target: 0.6, speed: 320, start: 0.5}", "p: 0.5").replace("epochs: 2", "epochs: 1"))
    result = runner.invoke(app, ["train", str(recipe), "--out", str(tmp_path / "run"), "-q"])
    assert result.exit_code == 0, result.output
    records = [r for r in map(json.loads, (tmp_path / "run" / "metrics.jsonl").read_text().splitlines())
               if "type" not in r]
    assert len(records) == 2 and all(r["discriminator/r1"] > 0 for r in records)
    assert "discriminator/augment_p" not in records[0]  # a fixed p is not logged


def test_a_bad_augmentation_in_a_recipe_names_the_line_and_the_fix(runner, write):
    recipe = write("bad.yaml", RECIPE.replace("adaptive: {target: 0.6, speed: 320, start: 0.5}",
                                              "p: 0.8\n    adaptive: {target: 0.6}"))
    result = runner.invoke(app, ["train", str(recipe)])
    assert result.exit_code != 0
    assert "bad.yaml:" in result.output and "augment" in result.output and "start: 0.8" in result.output
