"""Tests of the first-party model plugins (plugins/ganctl_models): gan and dcgan.

Models are built directly from their Params and a DataSpec, on the backend that ganctl would
pick (KERAS_BACKEND, else jax), and kept small so the whole file runs in well under a minute.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pydantic
import pytest

from ganctl import api
from ganctl.engine import backends as ganctl_backend

ganctl_backend.activate(ganctl_backend.resolve()[0])  # before Keras is first imported

import keras  # noqa: E402

import ganctl_models  # noqa: E402
from ganctl.cli import app  # noqa: E402
from ganctl.engine import engine_for  # noqa: E402
from ganctl_models import DCGAN, GAN, LOSSES  # noqa: E402
from ganctl_models.dcgan import upsampling_plan  # noqa: E402
from ganctl_models.losses import smoothed_bce_discriminator_loss  # noqa: E402

from .conftest import assert_same_state, final_checkpoint, trained_in_two_parts  # noqa: E402

engine_for(keras.backend.backend())  # the engine configures its backend (JAX: quick initialisers)
pytestmark = pytest.mark.backends

DIGITS = api.DataSpec(height=8, width=8, channels=1, num_classes=10)
UNLABELLED = api.DataSpec(height=8, width=8, channels=1)
LOSS_NAMES = ["bce", "minimax", "hinge", "least-squares", "wasserstein"]
SMALL = {GAN: {"hidden": (16, 8), "latent_dim": 8}, DCGAN: {"filters": 8, "latent_dim": 8}}
"""Parameters of small, quick models of each class."""


@pytest.fixture(autouse=True)
def _seed() -> None:
    keras.utils.set_random_seed(0)


def batch(spec: api.DataSpec, size: int = 4, latent_dim: int = 8, seed: int = 0):
    """Images in [-1, 1], labels (int64, like the datasets give) and z for one batch."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(-1, 1, size=(size, *spec.shape)).astype(np.float32)
    labels = rng.integers(0, max(spec.num_classes, 1), size=size).astype(np.int64)
    z = rng.standard_normal((size, latent_dim)).astype(np.float32)
    return images, labels, z


def scalar(value) -> float:
    array = keras.ops.convert_to_numpy(value)
    assert array.shape == (), f"expected a scalar, got shape {array.shape}"
    return float(array)


# --------------------------------------------------------------------------------------------
# Registration and import cost
# --------------------------------------------------------------------------------------------


def test_hook_registers_the_models():
    registered = {}
    ganctl_models.register_models(lambda name, factory: registered.setdefault(name, factory))
    assert registered == {"gan": GAN, "dcgan": DCGAN, "vae": ganctl_models.VAE, "classifier": ganctl_models.Classifier,
                          "tvae": ganctl_models.TVAE, "ctgan": ganctl_models.CTGAN}
    players = {"classifier": ("classifier",), "vae": ("vae",), "tvae": ("tvae",),
               "ctgan": ("discriminator", "generator")}
    for name, factory in registered.items():
        # players are a class attribute
        assert factory.players == players.get(name, ("generator", "discriminator"))
        assert issubclass(factory.Params, api.Params)
        assert issubclass(factory, api.ClassifierModel if name == "classifier" else api.GenerativeModel)
        assert factory.__doc__.strip().splitlines()[0]


def test_models_load_through_the_entry_point():
    from ganctl.plugins import PluginHost

    host = PluginHost()
    host.load_entry_points(env={"GANCTL_LOAD_PLUGINS": ""})
    assert host.get("models", "dcgan").factory is DCGAN
    assert host.get("models", "gan").factory is GAN
    assert "convolutional" in host.get("models", "dcgan").description


def test_importing_the_package_does_not_import_keras():
    code = (
        "import sys, ganctl_models\n"
        "ganctl_models.register_models(lambda name, factory: factory.Params())\n"
        "assert 'keras' not in sys.modules, 'ganctl_models imported keras'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# --------------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------------


def test_defaults():
    gan, dcgan = GAN.Params(), DCGAN.Params()
    assert (gan.latent_dim, gan.hidden, gan.loss, gan.dropout, gan.conditional) == (64, (256, 256), "bce", 0, False)
    assert (dcgan.latent_dim, dcgan.filters, dcgan.batchnorm, dcgan.l1, dcgan.l2) == (64, 64, True, 0, 0)
    assert GAN.Params(hidden=[32]).hidden == (32,)  # YAML lists are accepted


@pytest.mark.parametrize(
    ("factory", "values"),
    [
        (GAN, {"loss": "wgan"}),
        (DCGAN, {"loss": "BCE"}),
        (GAN, {"dropout": -0.1}),
        (DCGAN, {"dropout": 1.0}),
        (GAN, {"latent_dim": 0}),
        (DCGAN, {"latent_dim": 5000}),
        (GAN, {"l1": -1e-4}),
        (DCGAN, {"l2": -1e-4}),
        (GAN, {"hidden": []}),
        (GAN, {"hidden": [64, 0]}),
        (DCGAN, {"filters": 0}),
        (DCGAN, {"hidden": [64]}),  # a gan parameter
        (GAN, {"filters": 64}),  # a dcgan parameter
        (GAN, {"latnet_dim": 16}),
    ],
)
def test_invalid_params_are_refused(factory, values):
    with pytest.raises(pydantic.ValidationError):
        factory.Params(**values)


def test_params_are_frozen():
    params = DCGAN.Params()
    with pytest.raises(pydantic.ValidationError):
        params.filters = 8


# --------------------------------------------------------------------------------------------
# Shapes
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "plan"),
    [
        ((8, 8), (2, 2, 2)),
        ((28, 28), (2, 7, 7)),
        ((32, 32), (3, 4, 4)),
        ((64, 64), (4, 4, 4)),
        ((128, 128), (4, 8, 8)),  # at most 4 steps
        ((16, 16), (2, 4, 4)),
        ((4, 4), (1, 2, 2)),
        ((12, 12), (2, 3, 3)),
        ((16, 8), (2, 4, 2)),  # non-square: both sides doubled the same number of times
    ],
)
def test_upsampling_plan(shape, plan):
    assert upsampling_plan(*shape) == plan


@pytest.mark.parametrize("shape", [(13, 13), (9, 9), (2, 2), (8, 13), (7, 28)])
def test_upsampling_plan_refuses_odd_shapes(shape):
    with pytest.raises(api.ConfigError, match=f"{shape[0]}x{shape[1]}"):
        upsampling_plan(*shape)


@pytest.mark.parametrize("upsampling", ["resize", "transpose"])
@pytest.mark.parametrize("shape", [(8, 8, 1), (28, 28, 1), (32, 32, 3), (64, 64, 3)])
def test_dcgan_adapts_to_the_data_shape(shape, upsampling):
    spec = api.DataSpec(*shape)
    model = DCGAN(DCGAN.Params(latent_dim=16, filters=16, upsampling=upsampling), spec)
    kinds = {type(layer).__name__ for layer in model.generator.layers}
    assert ("Conv2DTranspose" in kinds) == (upsampling == "transpose")
    assert ("UpSampling2D" in kinds) == (upsampling == "resize")
    images, _, z = batch(spec, size=3, latent_dim=16)
    fake = keras.ops.convert_to_numpy(model.generate(z))
    assert fake.shape == (3, *shape)
    assert np.all(np.abs(fake) <= 1.0)
    assert fake.std() > 0
    logits = keras.ops.convert_to_numpy(model.discriminator(images, training=False))
    assert logits.shape == (3, 1)
    assert np.all(np.isfinite(logits))


def test_default_dcgan_is_small():
    model = DCGAN(DCGAN.Params(), DIGITS)
    total = sum(network.count_params() for network in model.networks().values())
    assert total < 200_000  # the quickstart trains it on 2 CPU cores in well under a minute


def test_dcgan_refuses_an_odd_shape_with_the_fixes():
    with pytest.raises(api.ConfigError) as error:
        DCGAN(DCGAN.Params(), api.DataSpec(13, 13, 1))
    message = error.value.message
    assert "13x13" in message and "size:" in message and "plugin: gan" in message


def test_gan_takes_any_shape():
    spec = api.DataSpec(13, 13, 1)
    model = GAN(GAN.Params(**SMALL[GAN]), spec)
    images, labels, z = batch(spec)
    fake = keras.ops.convert_to_numpy(model.generate(z))
    assert fake.shape == (4, 13, 13, 1) and np.all(np.abs(fake) <= 1.0)
    assert keras.ops.convert_to_numpy(model.discriminator(images)).shape == (4, 1)
    loss, _ = model.loss("generator", images, labels, z)
    assert np.isfinite(scalar(loss))


@pytest.mark.parametrize("factory", [GAN, DCGAN])
def test_conditional_needs_labelled_data(factory):
    with pytest.raises(api.ConfigError, match="model.conditional") as error:
        factory(factory.Params(conditional=True), UNLABELLED)
    assert "model.conditional: false" in error.value.message


@pytest.mark.parametrize("factory", [GAN, DCGAN])
def test_model_contract(factory):
    model = factory(factory.Params(**SMALL[factory]), DIGITS)
    networks = model.networks()
    assert tuple(networks) == factory.players
    assert networks["generator"] is model.generator
    assert networks["discriminator"] is model.discriminator
    assert {network.name for network in networks.values()} == {"generator", "discriminator"}
    assert all(network.built and network.trainable_weights for network in networks.values())
    assert model.latent_dim == 8
    assert model.conditional is False
    assert model.schedule() == {"generator": 1, "discriminator": 1}


# --------------------------------------------------------------------------------------------
# Loss functions
# --------------------------------------------------------------------------------------------

REAL = np.array([-100.0, -30.0, -2.0, -0.5, 0.0, 0.5, 2.0, 30.0, 100.0], dtype=np.float32)
FAKE = np.array([100.0, 30.0, 3.0, 0.25, 0.0, -1.0, -2.5, -30.0, -100.0], dtype=np.float32)


def softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x.astype(np.float64))


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x.astype(np.float64), 0.0)


REFERENCE = {
    "bce": (
        lambda r, f: softplus(-r).mean() + softplus(f).mean(),
        lambda f: softplus(-f).mean(),
    ),
    "minimax": (
        lambda r, f: softplus(-r).mean() + softplus(f).mean(),
        lambda f: -softplus(f).mean(),
    ),
    "hinge": (
        lambda r, f: relu(1 - r).mean() + relu(1 + f).mean(),
        lambda f: -f.astype(np.float64).mean(),
    ),
    "least-squares": (
        lambda r, f: 0.5 * (((r - 1.0) ** 2).mean() + (f**2).mean()),
        lambda f: 0.5 * ((f - 1.0) ** 2).mean(),
    ),
    "wasserstein": (
        lambda r, f: f.astype(np.float64).mean() - r.astype(np.float64).mean(),
        lambda f: -f.astype(np.float64).mean(),
    ),
}


def test_every_loss_name_is_implemented():
    assert sorted(LOSSES) == sorted(LOSS_NAMES) == sorted(REFERENCE)


@pytest.mark.parametrize("name", LOSS_NAMES)
@pytest.mark.parametrize("shape", [(9,), (9, 1)])
def test_loss_functions_match_numpy(name, shape):
    real, fake = REAL.reshape(shape), FAKE.reshape(shape)
    d_ref, g_ref = REFERENCE[name]
    d_loss = scalar(LOSSES[name].discriminator(keras.ops.convert_to_tensor(real), keras.ops.convert_to_tensor(fake)))
    g_loss = scalar(LOSSES[name].generator(keras.ops.convert_to_tensor(fake)))
    assert np.isfinite(d_loss) and np.isfinite(g_loss)  # |logit| = 100 neither overflows nor NaNs
    np.testing.assert_allclose(d_loss, d_ref(real, fake), rtol=1e-5)
    np.testing.assert_allclose(g_loss, g_ref(fake), rtol=1e-5)


@pytest.mark.parametrize("name", ["bce", "minimax"])
def test_cross_entropy_losses_are_stable_at_saturation(name):
    # log(sigmoid(-100)) underflows to log(0) = -inf in float32; softplus does not.
    confident = keras.ops.convert_to_tensor(np.array([100.0, -100.0], dtype=np.float32))
    assert scalar(LOSSES[name].discriminator(-confident, confident)) == pytest.approx(100.0, rel=1e-6)
    assert np.isfinite(scalar(LOSSES[name].generator(confident)))


def test_bce_at_chance():
    zeros = keras.ops.zeros((4, 1))
    assert scalar(LOSSES["bce"].discriminator(zeros, zeros)) == pytest.approx(2 * np.log(2), rel=1e-6)
    assert scalar(LOSSES["minimax"].generator(zeros)) == pytest.approx(-np.log(2), rel=1e-6)


# --------------------------------------------------------------------------------------------
# The players' losses
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", LOSS_NAMES)
@pytest.mark.parametrize("factory", [GAN, DCGAN])
def test_player_losses(factory, name):
    model = factory(factory.Params(**SMALL[factory], loss=name), DIGITS)
    images, labels, z = batch(DIGITS)

    d_loss, d_logs = model.loss("discriminator", images, labels, z)
    g_loss, g_logs = model.loss("generator", images, labels, z)
    assert set(d_logs) == {"loss", "real", "fake"} and set(g_logs) == {"loss"}
    assert np.isfinite(scalar(d_loss)) and np.isfinite(scalar(g_loss))
    assert scalar(d_logs["loss"]) == scalar(d_loss)

    # The wiring: the same numbers as the loss functions on the networks' logits.
    fake = model.generator(z, training=True)
    real_logits = model.discriminator(images, training=True)
    fake_logits = model.discriminator(fake, training=True)
    expected_d = scalar(LOSSES[name].discriminator(real_logits, fake_logits))
    expected_g = scalar(LOSSES[name].generator(fake_logits))
    assert scalar(d_loss) == pytest.approx(expected_d, rel=1e-5, abs=1e-6)
    assert scalar(g_loss) == pytest.approx(expected_g, rel=1e-5, abs=1e-6)
    assert scalar(d_logs["real"]) == pytest.approx(float(np.mean(keras.ops.convert_to_numpy(real_logits))), abs=1e-6)
    assert scalar(d_logs["fake"]) == pytest.approx(float(np.mean(keras.ops.convert_to_numpy(fake_logits))), abs=1e-6)


def test_dropout_model_trains_in_training_mode():
    model = DCGAN(DCGAN.Params(**SMALL[DCGAN], dropout=0.5), DIGITS)
    images, labels, z = batch(DIGITS)
    assert any(isinstance(layer, keras.layers.Dropout) for layer in model.discriminator.layers)
    first, _ = model.loss("discriminator", images, labels, z)
    second, _ = model.loss("discriminator", images, labels, z)
    assert np.isfinite(scalar(first)) and scalar(first) != scalar(second)  # fresh dropout masks


@pytest.mark.parametrize("factory", [GAN, DCGAN])
def test_dropout_layers_are_seeded_from_the_recipe_seed(factory):
    """Unseeded, Keras's PyTorch backend draws dropout masks from torch's global generator, which
    no checkpoint holds: a resumed run would drop other units than a straight one."""
    def seeds() -> list[int]:
        np.random.seed(3)  # what ganctl does with the recipe's seed before building a model
        model = factory(factory.Params(**SMALL[factory], dropout=0.5), DIGITS)
        return [layer.seed for layer in model.discriminator.layers if isinstance(layer, keras.layers.Dropout)]

    first = seeds()
    assert first and all(seed is not None for seed in first) and seeds() == first


def test_unknown_player_is_an_error():
    model = GAN(GAN.Params(**SMALL[GAN]), DIGITS)
    with pytest.raises(ValueError, match="critic"):
        model.loss("critic", *batch(DIGITS))


def kernels(network) -> list[np.ndarray]:
    return [keras.ops.convert_to_numpy(w.value) for w in network.trainable_weights if w.path.endswith("/kernel")]


@pytest.mark.parametrize("factory", [GAN, DCGAN])
def test_regularisation_is_added_to_each_players_loss(factory):
    l1, l2 = 1e-3, 1e-2
    plain = factory(factory.Params(**SMALL[factory], conditional=True), DIGITS)
    regular = factory(factory.Params(**SMALL[factory], conditional=True, l1=l1, l2=l2), DIGITS)
    for player, network in regular.networks().items():
        network.set_weights(plain.networks()[player].get_weights())
    images, labels, z = batch(DIGITS)

    for player in factory.players:
        network = regular.networks()[player]
        found = kernels(network)
        # Every Dense/Conv kernel is regularised, and nothing else (no biases, no embeddings).
        assert len(network.losses) == len(found) > 0
        penalty = sum(l1 * np.abs(k).sum() + l2 * np.square(k).sum() for k in found)
        before, _ = plain.loss(player, images, labels, z)
        after, logs = regular.loss(player, images, labels, z)
        assert scalar(after) - scalar(before) == pytest.approx(penalty, rel=1e-4)
        assert scalar(logs["loss"]) == scalar(after)
    assert plain.generator.losses == [] and plain.discriminator.losses == []


# --------------------------------------------------------------------------------------------
# Conditional models
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("factory", [GAN, DCGAN])
def test_conditional_model_uses_the_labels(factory):
    model = factory(factory.Params(**SMALL[factory], conditional=True), DIGITS)
    assert model.conditional is True
    assert [tuple(i.shape) for i in model.generator.inputs] == [(None, 8), (None,)]
    assert [tuple(i.shape) for i in model.discriminator.inputs] == [(None, 8, 8, 1), (None,)]

    z = np.repeat(batch(DIGITS, size=1)[2], 10, axis=0)  # one z, every label
    fake = keras.ops.convert_to_numpy(model.generate(z, np.arange(10, dtype=np.int64)))
    assert fake.shape == (10, 8, 8, 1) and np.all(np.abs(fake) <= 1.0)
    distinct = {fake[i].tobytes() for i in range(10)}
    assert len(distinct) == 10
    assert np.abs(fake[0] - fake[1]).max() > 1e-4

    images, labels, z = batch(DIGITS)
    logits = model.discriminator([keras.ops.convert_to_tensor(images), keras.ops.convert_to_tensor(labels)])
    assert tuple(logits.shape) == (4, 1)
    other = model.discriminator([keras.ops.convert_to_tensor(images), keras.ops.convert_to_tensor(9 - labels)])
    assert not np.allclose(keras.ops.convert_to_numpy(logits), keras.ops.convert_to_numpy(other))
    for player in factory.players:
        loss, logs = model.loss(player, images, labels, z)
        assert np.isfinite(scalar(loss)) and "loss" in logs


def test_conditional_model_needs_labels_in_the_batch():
    model = DCGAN(DCGAN.Params(**SMALL[DCGAN], conditional=True), DIGITS)
    images, _, z = batch(DIGITS)
    with pytest.raises(api.ConfigError, match="labels"):
        model.loss("generator", images, None, z)


def test_unconditional_model_ignores_labels():
    model = DCGAN(DCGAN.Params(**SMALL[DCGAN]), DIGITS)
    images, labels, z = batch(DIGITS)
    with_labels, _ = model.loss("discriminator", images, labels, z)
    without, _ = model.loss("discriminator", images, None, z)
    assert scalar(with_labels) == pytest.approx(scalar(without), rel=1e-6)


# --------------------------------------------------------------------------------------------
# Spectral normalisation of the discriminator
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("factory", [GAN, DCGAN])
def test_spectral_norm_wraps_every_dense_and_conv_of_the_discriminator(factory):
    model = factory(factory.Params(**SMALL[factory], conditional=True, spectral_norm=True), DIGITS)
    layers = model.discriminator.layers
    wrapped = [layer.layer for layer in layers if isinstance(layer, keras.layers.SpectralNormalization)]
    bare = [layer.name for layer in layers if isinstance(layer, keras.layers.Dense | keras.layers.Conv2D)]
    assert wrapped and bare == (["d_label_plane"] if factory is DCGAN else [])  # the class's input projection
    assert {layer.name for layer in wrapped} >= {"d_logit"}
    assert all(isinstance(layer, keras.layers.Dense | keras.layers.Conv2D) for layer in wrapped)
    vectors = [v for v in model.discriminator.non_trainable_variables if v.path.endswith("vector_u")]
    assert len(vectors) == len(wrapped)
    assert not any(isinstance(layer, keras.layers.SpectralNormalization) for layer in model.generator.layers)
    plain = factory(factory.Params(**SMALL[factory], conditional=True), DIGITS)
    assert not any(isinstance(layer, keras.layers.SpectralNormalization) for layer in plain.discriminator.layers)
    images, labels, z = batch(DIGITS)
    for player in factory.players:
        loss, _ = model.loss(player, images, labels, z)
        assert np.isfinite(scalar(loss))


@pytest.mark.parametrize("factory", [GAN, DCGAN])
def test_projection_discriminator_adds_the_class_embeddings_inner_product(factory):
    model = factory(factory.Params(**SMALL[factory], conditional=True, conditioning="projection",
                                   spectral_norm=True, feature_matching=1.0), DIGITS)
    d = model.discriminator
    names = {layer.name for layer in d.layers}
    assert {"d_projection", "d_logit_and_projection", "d_projection_label_embedding"} <= names
    assert not names & {"d_label_plane", "d_image_and_label"}  # the class no longer joins the input
    images, labels, _ = batch(DIGITS)
    x, y = keras.ops.convert_to_tensor(images), keras.ops.convert_to_tensor(labels)
    logits = keras.ops.convert_to_numpy(d([x, y]))
    # logit(x, y) = psi(phi(x)) + <e_y, phi(x)>: rebuilt from the layers' own outputs
    features_and_logit = keras.Model(d.inputs, [d.get_layer("d_logit_sn").input, d.get_layer("d_logit_sn").output])
    features, unconditional = (keras.ops.convert_to_numpy(t) for t in features_and_logit([x, y]))
    table = keras.ops.convert_to_numpy(d.get_layer("d_projection_label_embedding").embeddings)
    expected = unconditional[:, 0] + np.sum(table[labels] * features, axis=1)
    np.testing.assert_allclose(logits[:, 0], expected, rtol=1e-4, atol=1e-5)
    for player in factory.players:  # feature matching finds the features through the projection
        loss, logs = model.loss(player, images, labels, batch(DIGITS)[2])
        assert np.isfinite(scalar(loss))
    assert logs and "feature_matching" in model.loss("generator", images, labels, batch(DIGITS)[2])[1]


def test_projection_needs_a_conditional_model():
    with pytest.raises(pydantic.ValidationError, match="conditional: true"):
        DCGAN.Params(conditioning="projection")
    with pytest.raises(pydantic.ValidationError, match="conditioning"):
        DCGAN.Params(conditional=True, conditioning="dot")


SPECTRAL = """\
name: spectral
seed: 5
data: {plugin: digits, limit: 64}
model: {plugin: dcgan, filters: 8, latent_dim: 8, spectral_norm: true}
train: {epochs: 2, batch_size: 32, log_every: 1, keep_checkpoints: 5}
"""


def _checkpoints(run) -> list[dict[str, np.ndarray]]:
    out = []
    for path in sorted((run / "checkpoints").glob("ckpt-*.npz")):
        with np.load(path) as archive:
            out.append({k: archive[k] for k in archive.files if k != "__meta__"})
    return out


def test_spectral_norm_power_vectors_train_resume_and_export(runner, write, tmp_path):
    from ganctl.cli import app

    recipe = write("spectral.yaml", SPECTRAL)
    assert runner.invoke(app, ["train", str(recipe), "--out", str(tmp_path / "whole"), "-q"]).exit_code == 0
    first, last = _checkpoints(tmp_path / "whole")
    vectors = [k for k in first if k.endswith("vector_u")]
    assert len(vectors) == 3  # two strided convolutions and the logit
    for key in vectors:  # checkpoints carry the power-iteration vectors, and training updates them
        if first[key].size > 1:  # the logit's is 1x1: a unit vector, always 1
            assert not np.array_equal(first[key], last[key]), key

    resumed = tmp_path / "resumed"
    assert runner.invoke(app, ["train", str(recipe), "--out", str(resumed), "-q", "--set", "train.epochs=1"]).exit_code == 0
    result = runner.invoke(app, ["train", "--resume", str(resumed), "-q", "--set", "train.epochs=2"])
    assert result.exit_code == 0, result.output
    again = _checkpoints(resumed)[-1]
    assert again.keys() == last.keys()
    for key in last:
        np.testing.assert_array_equal(again[key], last[key], err_msg=key)

    result = runner.invoke(app, ["export", str(tmp_path / "whole"), "--onnx"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "whole" / "exports" / "generator.onnx").is_file()


@pytest.mark.parametrize("make", [lambda: keras.layers.Dense(5, name="d"), lambda: keras.layers.Conv2D(3, 2, name="c")])
def test_spectral_norm_divides_the_kernel_by_its_largest_singular_value(make):
    from ganctl_models._blocks import spectral

    layer = spectral(make(), True)
    x = np.random.default_rng(0).normal(size=(2, 4, 4, 3)).astype("float32")
    layer(x)
    before = keras.ops.convert_to_numpy(layer.vector_u.value)
    layer(x, training=False)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer.vector_u.value), before)  # inference: no update
    for _ in range(30):
        layer(x, training=True)
    assert not np.array_equal(keras.ops.convert_to_numpy(layer.vector_u.value), before)
    kernel = keras.ops.convert_to_numpy(layer.layer.kernel.value)
    sigma = np.linalg.svd(kernel.reshape(-1, kernel.shape[-1]), compute_uv=False)[0]
    assert sigma != pytest.approx(1, abs=0.05)  # the stored kernel stays the raw weight
    out = keras.ops.convert_to_numpy(layer(x))
    inner = layer.layer
    inner.kernel.assign(kernel / sigma)
    np.testing.assert_allclose(out, keras.ops.convert_to_numpy(inner(x)), rtol=1e-3, atol=1e-4)


# --------------------------------------------------------------------------------------------
# Training techniques: wasserstein, WGAN-GP, R1, d_steps, one-sided label smoothing
# --------------------------------------------------------------------------------------------


def numpy_critic(weights: list[np.ndarray], x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The gan discriminator (Dense + LeakyReLU layers, then a Dense logit) in float64 NumPy:
    its outputs ``[N]`` and their gradients with respect to ``x``."""
    h = x.reshape(len(x), -1).astype(np.float64)
    pairs = [(np.float64(weights[i]), np.float64(weights[i + 1])) for i in range(0, len(weights), 2)]
    slopes = []
    for kernel, bias in pairs[:-1]:
        a = h @ kernel + bias
        slopes.append(np.where(a > 0, 1.0, 0.2))
        h = a * slopes[-1]
    kernel, bias = pairs[-1]
    out = (h @ kernel + bias)[:, 0]
    grad = np.broadcast_to(kernel[:, 0], h.shape)
    for (kernel, _), slope in zip(reversed(pairs[:-1]), reversed(slopes), strict=True):
        grad = (grad * slope) @ kernel.T
    return out, grad.reshape(x.shape)


def test_wgan_gp_and_r1_match_numpy():
    model = GAN(GAN.Params(hidden=(8, 4), latent_dim=8, loss="wasserstein", gradient_penalty=10.0,
                           r1={"gamma": 2.0}), UNLABELLED)
    images, _, z = batch(UNLABELLED)
    (gp_seed,) = model.seed_generators()  # every: 1 needs no update counter
    twin = keras.random.SeedGenerator(0)
    twin.state.assign(gp_seed.state.value)
    eps = keras.ops.convert_to_numpy(keras.random.uniform((4, 1, 1, 1), seed=twin)).astype(np.float64)

    loss, logs = model.loss("discriminator", images, None, z)
    assert set(logs) == {"loss", "real", "fake", "gp", "r1"}
    fake = keras.ops.convert_to_numpy(model.generator(z, training=True)).astype(np.float64)
    weights = model.discriminator.get_weights()
    real_out, real_grad = numpy_critic(weights, images)
    fake_out, _ = numpy_critic(weights, fake)
    _, mixed_grad = numpy_critic(weights, eps * images + (1 - eps) * fake)
    gp = 10.0 * np.mean((np.linalg.norm(mixed_grad.reshape(4, -1), axis=1) - 1.0) ** 2)
    r1 = 2.0 / 2 * np.mean(np.sum(real_grad.reshape(4, -1) ** 2, axis=1))
    assert scalar(logs["gp"]) == pytest.approx(gp, rel=1e-4)
    assert scalar(logs["r1"]) == pytest.approx(r1, rel=1e-4)
    assert scalar(loss) == pytest.approx(fake_out.mean() - real_out.mean() + gp + r1, rel=1e-4, abs=1e-5)
    g_loss, _ = model.loss("generator", images, None, z)
    assert scalar(g_loss) == pytest.approx(-fake_out.mean(), rel=1e-4, abs=1e-5)
    counts = [int(keras.ops.convert_to_numpy(gp_seed.state.value)[1])]
    model.loss("discriminator", images, None, z)
    counts.append(int(keras.ops.convert_to_numpy(gp_seed.state.value)[1]))
    assert counts[1] == counts[0] + 1  # fresh interpolation weights on each update


@pytest.mark.parametrize("factory", [GAN, DCGAN])
def test_gradient_penalty_takes_the_label_through(factory):
    model = factory(factory.Params(**SMALL[factory], conditional=True, gradient_penalty=1.0, r1={"gamma": 1.0}),
                    DIGITS)
    images, labels, z = batch(DIGITS)
    loss, logs = model.loss("discriminator", images, labels, z)
    assert np.isfinite(scalar(loss)) and scalar(logs["gp"]) > 0 and scalar(logs["r1"]) > 0


def test_lazy_r1_applies_every_kth_update_scaled_by_k():
    params = {**SMALL[GAN], "loss": "wasserstein"}
    lazy = GAN(GAN.Params(**params, r1={"gamma": 1.0, "every": 3}), UNLABELLED)
    eager = GAN(GAN.Params(**params, r1={"gamma": 1.0}), UNLABELLED)
    eager.discriminator.set_weights(lazy.discriminator.get_weights())
    images, _, z = batch(UNLABELLED)
    base = scalar(eager.loss("discriminator", images, None, z)[1]["r1"])
    values = [scalar(lazy.loss("discriminator", images, None, z)[1]["r1"]) for _ in range(7)]
    assert base > 0
    assert values == pytest.approx([3 * base, 0, 0, 3 * base, 0, 0, 3 * base], rel=1e-5)


def test_d_steps_is_the_schedule():
    assert GAN(GAN.Params(**SMALL[GAN], d_steps=5), UNLABELLED).schedule() == {"generator": 1, "discriminator": 5}


def test_one_sided_label_smoothing_matches_numpy():
    s = 0.1
    d_loss = scalar(smoothed_bce_discriminator_loss(s)(keras.ops.convert_to_tensor(REAL),
                                                       keras.ops.convert_to_tensor(FAKE)))
    expected = ((1 - s) * softplus(-REAL) + s * softplus(REAL)).mean() + softplus(FAKE).mean()
    np.testing.assert_allclose(d_loss, expected, rtol=1e-5)

    model = GAN(GAN.Params(**SMALL[GAN], label_smoothing=s), UNLABELLED)
    images, _, z = batch(UNLABELLED)
    loss, _ = model.loss("discriminator", images, None, z)
    g_loss, _ = model.loss("generator", images, None, z)
    fake = model.generator(z, training=True)
    real_logits = keras.ops.convert_to_numpy(model.discriminator(images)).reshape(-1)
    fake_logits = keras.ops.convert_to_numpy(model.discriminator(fake)).reshape(-1)
    expected = ((1 - s) * softplus(-real_logits) + s * softplus(real_logits)).mean() + softplus(fake_logits).mean()
    assert scalar(loss) == pytest.approx(expected, rel=1e-5)
    assert scalar(g_loss) == pytest.approx(softplus(-fake_logits).mean(), rel=1e-5)  # the generator's is unchanged


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ({"gradient_penalty": -1.0}, "gradient_penalty"),
        ({"r1": {"gamma": -1.0}}, "gamma"),
        ({"r1": {"every": 0}}, "every"),
        ({"r1": {"gama": 1.0}}, "gama"),
        ({"d_steps": 0}, "d_steps"),
        ({"label_smoothing": -0.1}, "label_smoothing"),
        ({"label_smoothing": 0.5}, "label_smoothing"),
        ({"loss": "hinge", "label_smoothing": 0.1}, "loss 'hinge' has no cross-entropy targets.*loss: bce"),
        ({"loss": "wasserstein", "label_smoothing": 0.1}, "label_smoothing: 0"),
    ],
)
def test_bad_technique_values_are_refused(values, match):
    with pytest.raises(pydantic.ValidationError, match=match):
        GAN.Params(**values)


class NormalisedCritic(GAN):
    """A gan whose discriminator has BatchNormalization (the first-party ones have none)."""

    def build_discriminator(self):
        images = keras.Input(self.spec.shape)
        x = keras.layers.Dense(4)(keras.layers.Flatten()(images))
        x = keras.layers.BatchNormalization(name="d_bn")(x)
        return keras.Model(images, keras.layers.Dense(1)(x), name="discriminator")


@pytest.mark.parametrize(("values", "key"), [({"gradient_penalty": 10.0}, "gradient_penalty"), ({"r1": {}}, "r1")])
def test_input_gradient_penalties_refuse_batchnorm_in_the_discriminator(values, key):
    with pytest.raises(api.ConfigError) as error:
        NormalisedCritic(GAN.Params(**SMALL[GAN], **values), UNLABELLED)
    message = error.value.message
    assert f"model.{key}" in message and "d_bn" in message and "LayerNormalization" in message
    NormalisedCritic(GAN.Params(**SMALL[GAN]), UNLABELLED)  # without a penalty it is allowed


TECHNIQUES = """\
name: techniques
seed: 3
data: {plugin: digits, limit: 96}
model:
  plugin: gan
  latent_dim: 8
  hidden: [16]
  conditional: true
  loss: wasserstein
  gradient_penalty: 10.0
  r1: {gamma: 1.0, every: 3}
  d_steps: 2
train:
  epochs: 2
  batch_size: 32
  log_every: 1
  checkpoint_every: 1
"""


def step_records(run) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if "type" not in r]


def test_wgan_gp_r1_and_d_steps_train_through_the_cli_and_resume_exactly(runner, write, tmp_path):
    recipe = write("techniques.yaml", TECHNIQUES)
    result = runner.invoke(app, ["train", str(recipe), "--out", str(tmp_path / "straight"), "-q"])
    assert result.exit_code == 0, result.output
    records = step_records(tmp_path / "straight")
    assert [r["step"] for r in records] == [1, 2, 3, 4, 5, 6]
    assert all(r["discriminator/gp"] > 0 for r in records)
    # Two critic updates per step, R1 on every third (updates 0, 3, 6, 9): the logged (last) update
    # of steps 2 and 5 is due, scaled by 3.
    assert [r["discriminator/r1"] > 0 for r in records] == [False, True, False, False, True, False]
    state = final_checkpoint(tmp_path / "straight")
    iterations = {k.split("/")[1]: int(v) for k, v in state.items() if k.startswith("optimizer/") and k.endswith("/iteration")}
    assert iterations == {"generator": 6, "discriminator": 12}

    # Stopped after the first epoch (3 steps, counter at 6) and resumed: the same final state.
    assert_same_state(trained_in_two_parts(runner, recipe, tmp_path / "resumed", 1, 2), state)


def test_dcgan_with_label_smoothing_and_penalties_trains_through_the_cli(runner, write, tmp_path):
    recipe = write("smooth.yaml", TECHNIQUES.replace("plugin: gan", "plugin: dcgan").replace("hidden: [16]", "filters: 8")
                   .replace("loss: wasserstein", "loss: bce\n  label_smoothing: 0.1\n  conditioning: projection")
                   .replace("every: 3", "every: 1").replace("epochs: 2", "epochs: 1"))
    result = runner.invoke(app, ["train", str(recipe), "--out", str(tmp_path / "run"), "-q"])
    assert result.exit_code == 0, result.output
    records = step_records(tmp_path / "run")
    assert len(records) == 3
    assert all(r["discriminator/gp"] > 0 and r["discriminator/r1"] > 0 and np.isfinite(r["discriminator/loss"])
               for r in records)


def test_a_bad_technique_in_a_recipe_names_the_line_and_the_fix(runner, write):
    recipe = write("bad.yaml", TECHNIQUES.replace("loss: wasserstein", "loss: hinge\n  label_smoothing: 0.1"))
    result = runner.invoke(app, ["train", str(recipe)])
    assert result.exit_code != 0
    assert "bad.yaml:" in result.output and "label_smoothing" in result.output and "loss: bce" in result.output
