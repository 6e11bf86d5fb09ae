"""The backend engines: input gradients, strict JAX state, and agreement across backends."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from ganctl import api
from ganctl.engine.backends import activate, resolve, resolve_jit

BACKEND = resolve()[0]
activate(BACKEND)

import keras  # noqa: E402
from keras import ops  # noqa: E402

from ganctl.engine import engine_for  # noqa: E402

engine_for(BACKEND)  # loads the engine, which api.input_gradient needs

pytestmark = pytest.mark.backends


def test_input_gradient_matches_the_analytic_one():
    x = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    gradient = api.input_gradient(lambda t: ops.sum(t**3, axis=1), ops.convert_to_tensor(x))
    np.testing.assert_allclose(ops.convert_to_numpy(gradient), 3 * x**2, rtol=1e-5)


class Critic(api.GenerativeModel):
    """A linear critic with a gradient penalty: d/dw (|grad_x D(x)| - 1)^2 is known exactly."""

    players = ("critic",)

    class Params(api.Params):
        batchnorm: bool = False

    def __init__(self, params, spec):
        super().__init__(params, spec)
        layers = [keras.Input((3,))]
        if params.batchnorm:  # BatchNorm inside the input gradient: moving statistics are updated there
            layers += [keras.layers.Dense(4), keras.layers.BatchNormalization(), keras.layers.LeakyReLU(0.2)]
        layers.append(keras.layers.Dense(1, kernel_initializer="ones"))
        self.critic = keras.Sequential(layers)

    def networks(self):
        return {"critic": self.critic}

    @property
    def generator(self):
        return self.critic

    def loss(self, player, images, labels, z):
        x = ops.reshape(ops.convert_to_tensor(images), (-1, 3))
        grad = api.input_gradient(lambda t: self.critic(t, training=True), x)
        squared = ops.sum(grad**2, axis=1)
        norms = ops.sqrt(squared + 1e-12)
        penalty = ops.mean((norms - 1.0) ** 2) if not self.params.batchnorm else ops.mean(squared)
        return penalty, {"loss": penalty}


def _critic_engine(batchnorm: bool):
    spec = api.DataSpec(height=1, width=3, channels=1)
    model = Critic(Critic.Params(batchnorm=batchnorm), spec)
    return model, engine_for(BACKEND).Engine(model, {"critic": keras.optimizers.SGD(0.1)}, jit=resolve_jit("auto", BACKEND))


def test_gradient_penalty_is_differentiated_through_the_input_gradient():
    model, engine = _critic_engine(batchnorm=False)
    images = np.random.default_rng(1).normal(size=(8, 1, 3, 1)).astype(np.float32)
    loss, grads = engine.gradients("critic", images, None, np.zeros((8, 1), np.float32))
    w = np.ones(3, np.float32)  # kernel initialised to ones: grad_x D = w
    norm = np.linalg.norm(w)
    assert loss == pytest.approx((norm - 1) ** 2, rel=1e-5)
    kernel_grad = grads[0].reshape(-1)
    np.testing.assert_allclose(kernel_grad, 2 * (norm - 1) * w / norm, rtol=1e-4)
    np.testing.assert_allclose(grads[1], 0, atol=1e-7)  # the bias does not move the penalty
    engine.step("critic", images, None, np.zeros((8, 1), np.float32))
    engine.sync()
    kernel = ops.convert_to_numpy(model.critic.layers[-1].kernel).reshape(-1)
    np.testing.assert_allclose(kernel, w - 0.1 * kernel_grad, rtol=1e-5)


@pytest.mark.skipif(BACKEND != "torch", reason="torch.compile is the torch engine's jit")
def test_torch_falls_back_to_eager_where_compile_cannot_follow():
    model, _ = _critic_engine(batchnorm=False)
    engine = engine_for("torch").Engine(model, {"critic": keras.optimizers.SGD(0.1)}, jit=True)
    images = np.ones((4, 1, 3, 1), np.float32)
    with pytest.warns(UserWarning, match="running it eagerly"):
        logs = engine.step("critic", images, None, np.zeros((4, 1), np.float32))
    assert np.isfinite(logs["loss"])


@pytest.mark.skipif(BACKEND != "torch", reason="torch.compile is the torch engine's jit")
def test_the_failed_compiled_try_leaves_no_trace_in_the_state():
    """The eager retry starts from the state before the compiled try: a gradient penalty's seed
    generator and BatchNorm statistics advance once, as in a run that never compiled."""
    from ganctl.plugins import get_host

    factory = get_host().get("models", "gan").factory
    spec = api.DataSpec(height=8, width=8, channels=1)
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, size=(8, 8, 8, 1)).astype(np.float32)
    z = rng.standard_normal((8, 4)).astype(np.float32)
    states = []
    for jit in (False, True):
        keras.utils.set_random_seed(3)
        model = factory(factory.Params(latent_dim=4, hidden=[8], loss="wasserstein", gradient_penalty=10.0), spec)
        optimizers = {p: keras.optimizers.SGD(0.01) for p in model.players}
        engine = engine_for("torch").Engine(model, optimizers, jit=jit)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            engine.step("discriminator", images, None, z)
        states.append(engine.state_arrays())
    model_state = [name for name in states[0] if name.startswith("model/")]
    assert any("gradient_penalty_seed" in name for name in model_state)
    for name in model_state:
        np.testing.assert_allclose(states[1][name], states[0][name], atol=1e-6, err_msg=name)


def test_input_gradient_with_batchnorm_updates_statistics_and_stays_finite():
    model, engine = _critic_engine(batchnorm=True)
    images = np.random.default_rng(2).normal(loc=3.0, size=(16, 1, 3, 1)).astype(np.float32)
    for _ in range(3):
        logs = engine.step("critic", images, None, np.zeros((16, 1), np.float32))
        assert np.isfinite(logs["loss"])
    engine.sync()
    moving_mean = ops.convert_to_numpy(model.critic.layers[1].moving_mean)
    assert np.all(moving_mean != 0)  # the updates made inside the input gradient were kept


@pytest.mark.skipif(BACKEND != "jax", reason="the trap it guards against exists only in JAX")
def test_jax_refuses_state_it_was_not_told_about():
    class Sneaky(Critic):
        def __init__(self, params, spec):
            super().__init__(params, spec)
            self.noise = keras.random.SeedGenerator(1)  # used below, not returned by seed_generators()

        def loss(self, player, images, labels, z):
            value = ops.mean(self.critic(ops.reshape(images, (-1, 3)))) + ops.mean(
                keras.random.normal((2,), seed=self.noise))
            return value, {"loss": value}

    spec = api.DataSpec(height=1, width=3, channels=1)
    model = Sneaky(Critic.Params(), spec)
    engine = engine_for("jax").Engine(model, {"critic": keras.optimizers.SGD(0.1)}, jit=True)
    with pytest.raises(api.GanctlError, match="seed_generator_state.*not part of the model's registered state"):
        engine.step("critic", np.zeros((2, 1, 3, 1), np.float32), None, np.zeros((2, 1), np.float32))


# -- the same losses and gradients on every backend ------------------------------------------------

PROBE = Path(__file__).with_name("backend_probe.py")
INSTALLED = [b for b in ("jax", "tensorflow", "torch") if importlib.util.find_spec(b)]


@pytest.mark.slow
@pytest.mark.skipif(len(INSTALLED) < 3 and not os.environ.get("CI"), reason="needs jax, tensorflow and torch")
def test_losses_and_gradients_agree_across_backends(tmp_path):
    results = {}
    for backend in ("jax", "tensorflow", "torch"):
        out = tmp_path / f"{backend}.npz"
        env = {**os.environ, "KERAS_BACKEND": backend, "GANCTL_LOAD_PLUGINS": ""}
        done = subprocess.run([sys.executable, str(PROBE), str(out)], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-3000:]
        with np.load(out) as data:
            results[backend] = {k: data[k] for k in data.files}
    reference = results["jax"]
    report = {}
    for backend in ("tensorflow", "torch"):
        assert results[backend].keys() == reference.keys()
        worst = max(float(np.max(np.abs(results[backend][k] - reference[k]))) for k in reference)
        report[backend] = worst
        for key in reference:
            np.testing.assert_allclose(results[backend][key], reference[key], atol=1e-4, rtol=1e-4,
                                       err_msg=f"{backend} vs jax: {key}")
    print(json.dumps({"max_abs_difference_vs_jax": report}))


def test_the_backend_package_provides_the_engine_interface():
    from ganctl.engine.interface import BackendModule, Engine

    module = engine_for(BACKEND)
    declared = [name for name in vars(BackendModule) if not name.startswith("_")] + ["Engine"]
    missing = [name for name in dict.fromkeys(declared) if not hasattr(module, name)]
    assert missing == [], f"ganctl.engine.{BACKEND}.engine lacks {missing}"
    assert issubclass(module.Engine, Engine) and module.Engine is not Engine
    assert callable(module.input_gradient) and isinstance(module.framework_version(), str)
    assert isinstance(module.accelerated(), bool) and all(isinstance(d, str) for d in module.devices())
