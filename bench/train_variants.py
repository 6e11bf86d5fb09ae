"""The variants bench/train_throughput.py times: ganctl's own training step (``ganctl_variant``),
the same Keras networks trained by a minimal step written for each backend with no ganctl code
(``hand_jax``, ``hand_tensorflow``, ``hand_torch``), and a plain PyTorch DCGAN with the same
layer shapes (``plain_torch``), written like the PyTorch DCGAN tutorial.

Each takes the benchmark's validated recipe and data spec (and the plugin host), so that every
variant builds the model the ``ganctl`` variant trains (same seed: same initial weights).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any


def fixed_batch(recipe: Any, spec: Any) -> tuple[Any, Any]:
    """Random uint8 images of the case's shape, as a dataset, and one fixed batch from it (data
    loading is not part of what is timed)."""
    import numpy as np

    from ganctl.api import ArrayDataset

    rng = np.random.default_rng(12345)
    raw = rng.integers(0, 256, size=(4 * recipe.train.batch_size, *spec.shape), dtype=np.uint8)
    dataset = ArrayDataset(raw, raw_range=(0, 255))
    return dataset, next(dataset.batches(recipe.train.batch_size, seed=0))


def ganctl_variant(backend: str, setup: Callable[[], tuple[Any, Any, Any]], k: int = 1) -> tuple[
        Callable[[int], list[float]], dict[str, Any]]:
    """An iteration of ganctl's own training loop (Trainer.train_step) on the recipe's dcgan, built
    as ``open_session`` builds it; ``setup()`` gives the recipe, data spec and plugin host once the
    backend's engine is imported. Also what the other variants must match (``info``). With ``k`` > 1
    (the recipe's ``train.steps_per_execution`` must say k), an iteration is k steps in one call
    into the engine (Trainer.train_steps, the loop's path for fused steps)."""
    from ganctl.engine import engine_for
    from ganctl.engine.backends import resolve_jit
    from ganctl.session.assemble import Session, build_model
    from ganctl.session.optimizers import make_optimizer
    from ganctl.training.loop import Trainer
    from ganctl.training.progress import Reporter

    engine_module = engine_for(backend)  # first, as open_session does: it may configure the backend
    recipe, spec, host = setup()
    dataset, batch = fixed_batch(recipe, spec)
    model = build_model(recipe, spec, host)
    optimizers = {p: make_optimizer(recipe.train.optimizer_for(p), f"{p}_optimizer") for p in model.players}
    jit = resolve_jit(recipe.train.jit, backend)
    engine = engine_module.Engine(model, optimizers, jit)
    session = Session(recipe, backend, spec, dataset, model, engine, jit)
    trainer = Trainer(session, Reporter(), host)
    schedule = model.schedule()
    if trainer.steps_per_execution != k:
        raise SystemExit(f"the recipe runs {trainer.steps_per_execution} steps per call, not {k}")

    def iteration(step: int) -> list[float]:
        if k == 1:
            logs = trainer.train_step(step, batch, schedule)
        else:
            *_, logs = trainer.train_steps(step, [(batch, None)] * k, schedule)
        return [logs[f"{p}/loss"] for p in model.players]

    info = {"jit": jit, "players": list(model.players), "batch": recipe.train.batch_size,
            "latent_dim": model.latent_dim, "seed": recipe.seed, "images": batch.images,
            "parameters": sum(int(math.prod(v.shape)) for n in model.networks().values()
                              for v in n.trainable_variables)}
    return iteration, info


def hand_networks(recipe: Any, spec: Any, host: Any) -> tuple[Any, Any, Any, Any]:
    """A second, independent copy of the dcgan's Keras networks (same seed: same weights), and an
    Adam optimizer for each with the recipe's settings."""
    import keras

    from ganctl.session.assemble import build_model

    model = build_model(recipe, spec, host)  # only to build the architecture; not used to train
    opt = recipe.train.optimizer_for("generator")

    def adam(name: str) -> Any:
        return keras.optimizers.Adam(learning_rate=opt.learning_rate, beta_1=opt.beta_1, beta_2=opt.beta_2, name=name)

    return model.generator, model.discriminator, adam("g_adam"), adam("d_adam")


def hand_jax(recipe: Any, spec: Any, host: Any) -> Callable[[Any, Any, Any], list[float]]:
    """JAX: ``value_and_grad`` over ``stateless_call`` + ``stateless_apply``, under ``jax.jit``;
    ``iteration(images, z_g, z_d)`` updates each player once and returns their losses."""
    import jax
    import jax.numpy as jnp

    gen, disc, g_opt, d_opt = hand_networks(recipe, spec, host)
    g_opt.build(gen.trainable_variables)
    d_opt.build(disc.trainable_variables)

    def g_loss(g_tv, g_ntv, d_tv, d_ntv, z):
        fake, g_ntv = gen.stateless_call(g_tv, g_ntv, z, training=True)
        logits, d_ntv = disc.stateless_call(d_tv, d_ntv, fake, training=True)
        return jnp.mean(jax.nn.softplus(-logits)), (g_ntv, d_ntv)

    def d_loss(d_tv, d_ntv, g_tv, g_ntv, images, z):
        fake, g_ntv = gen.stateless_call(g_tv, g_ntv, z, training=True)
        fake_logits, d_ntv = disc.stateless_call(d_tv, d_ntv, fake, training=True)
        real_logits, d_ntv = disc.stateless_call(d_tv, d_ntv, images, training=True)
        loss = jnp.mean(jax.nn.softplus(-real_logits)) + jnp.mean(jax.nn.softplus(fake_logits))
        return loss, (g_ntv, d_ntv)

    g_grad, d_grad = jax.value_and_grad(g_loss, has_aux=True), jax.value_and_grad(d_loss, has_aux=True)

    @jax.jit
    def g_step(g_tv, g_ntv, d_tv, d_ntv, g_ov, z):
        (loss, (g_ntv, d_ntv)), grads = g_grad(g_tv, g_ntv, d_tv, d_ntv, z)
        g_tv, g_ov = g_opt.stateless_apply(g_ov, grads, g_tv)
        return loss, g_tv, g_ntv, d_ntv, g_ov

    @jax.jit
    def d_step(d_tv, d_ntv, g_tv, g_ntv, d_ov, images, z):
        (loss, (g_ntv, d_ntv)), grads = d_grad(d_tv, d_ntv, g_tv, g_ntv, images, z)
        d_tv, d_ov = d_opt.stateless_apply(d_ov, grads, d_tv)
        return loss, d_tv, d_ntv, g_ntv, d_ov

    s = {
        "g_tv": [v.value for v in gen.trainable_variables], "g_ntv": [v.value for v in gen.non_trainable_variables],
        "d_tv": [v.value for v in disc.trainable_variables], "d_ntv": [v.value for v in disc.non_trainable_variables],
        "g_ov": [v.value for v in g_opt.variables], "d_ov": [v.value for v in d_opt.variables],
    }

    def iteration(images: Any, z_g: Any, z_d: Any) -> list[float]:
        g, s["g_tv"], s["g_ntv"], s["d_ntv"], s["g_ov"] = g_step(s["g_tv"], s["g_ntv"], s["d_tv"], s["d_ntv"], s["g_ov"], z_g)
        d, s["d_tv"], s["d_ntv"], s["g_ntv"], s["d_ov"] = d_step(s["d_tv"], s["d_ntv"], s["g_tv"], s["g_ntv"], s["d_ov"], images, z_d)
        return [float(g), float(d)]

    return iteration


def hand_tensorflow(recipe: Any, spec: Any, host: Any) -> Callable[[Any, Any, Any], list[float]]:
    """TensorFlow: ``GradientTape`` in ``tf.function`` (no XLA, as ganctl on CPUs)."""
    import tensorflow as tf

    gen, disc, g_opt, d_opt = hand_networks(recipe, spec, host)

    @tf.function
    def g_step(z):
        with tf.GradientTape() as tape:
            logits = disc(gen(z, training=True), training=True)
            loss = tf.reduce_mean(tf.nn.softplus(-logits))
        g_opt.apply(tape.gradient(loss, gen.trainable_variables), gen.trainable_variables)
        return loss

    @tf.function
    def d_step(images, z):
        with tf.GradientTape() as tape:
            fake_logits = disc(gen(z, training=True), training=True)
            real_logits = disc(images, training=True)
            loss = tf.reduce_mean(tf.nn.softplus(-real_logits)) + tf.reduce_mean(tf.nn.softplus(fake_logits))
        d_opt.apply(tape.gradient(loss, disc.trainable_variables), disc.trainable_variables)
        return loss

    def iteration(images: Any, z_g: Any, z_d: Any) -> list[float]:
        return [float(g_step(z_g)), float(d_step(images, z_d))]

    return iteration


def hand_torch(recipe: Any, spec: Any, host: Any) -> Callable[[Any, Any, Any], list[float]]:
    """PyTorch: ``loss.backward()`` + ``optimizer.apply``, the other network frozen (eager, as ganctl)."""
    import torch
    import torch.nn.functional as F

    gen, disc, g_opt, d_opt = hand_networks(recipe, spec, host)
    g_opt.build(gen.trainable_variables)
    d_opt.build(disc.trainable_variables)
    g_params = [v.value for v in gen.trainable_variables]
    d_params = [v.value for v in disc.trainable_variables]

    def train_only(own: list[Any], other: list[Any]) -> None:
        for p in other:
            p.requires_grad_(False)
        for p in own:
            p.requires_grad_(True)
            p.grad = None

    def iteration(images: Any, z_g: Any, z_d: Any) -> list[float]:
        images, z_g, z_d = torch.from_numpy(images), torch.from_numpy(z_g), torch.from_numpy(z_d)
        train_only(g_params, d_params)
        g_loss = F.softplus(-disc(gen(z_g, training=True), training=True)).mean()
        g_loss.backward()
        with torch.no_grad():
            g_opt.apply([p.grad for p in g_params], gen.trainable_variables)
        train_only(d_params, g_params)
        fake_logits = disc(gen(z_d, training=True), training=True)
        real_logits = disc(images, training=True)
        d_loss = F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
        d_loss.backward()
        with torch.no_grad():
            d_opt.apply([p.grad for p in d_params], disc.trainable_variables)
        return [g_loss.item(), d_loss.item()]

    return iteration


HAND_STEPS = {"jax": hand_jax, "tensorflow": hand_tensorflow, "torch": hand_torch}


def dcgan_layout(recipe: Any, spec: Any) -> dict[str, Any]:
    """Channel and size plan of ganctl's dcgan for the recipe, read from the plugin itself."""
    from ganctl_models.dcgan import channels, upsampling_plan

    p = recipe.model.params
    k, bh, bw = upsampling_plan(spec.height, spec.width)
    return {
        "k": k, "base": (bh, bw), "latent": p.latent_dim, "image_channels": spec.channels,
        "g_channels": [channels(p.filters, s) for s in range(k + 1)],  # base, then each up-step
        "d_channels": [channels(p.filters, k - s) for s in range(1, k + 1)],  # each down-step
        "upsampling": getattr(p, "upsampling", "transpose"), "batchnorm": getattr(p, "batchnorm", True),
        "size": (spec.height, spec.width), "batch": recipe.train.batch_size, "seed": recipe.seed,
        "lr": recipe.train.optimizer_for("generator").learning_rate,
        "betas": (recipe.train.optimizer_for("generator").beta_1, recipe.train.optimizer_for("generator").beta_2),
    }


def plain_torch(recipe: Any, spec: Any, fresh_z: bool, images_nhwc: Any) -> tuple[Callable[[int], list[float]], int]:
    """One iteration of the PyTorch DCGAN tutorial's loop (with ``fresh_z``, a new ``z`` and generator
    pass for each player, as ganctl does); and the trainable parameter count."""
    import torch
    from torch import nn

    L = dcgan_layout(recipe, spec)
    gc, dc, (bh, bw), bn = L["g_channels"], L["d_channels"], L["base"], L["batchnorm"]

    def norm(kind: Any, channels: int) -> list[nn.Module]:  # Keras BatchNormalization(momentum=0.9)
        return [kind(channels, eps=1e-3, momentum=0.1)] if bn else []

    class Generator(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            width = bh * bw * gc[0]
            self.project = nn.Sequential(nn.Linear(L["latent"], width, bias=not bn), *norm(nn.BatchNorm1d, width),
                                         nn.ReLU())
            layers: list[nn.Module] = []
            for c_in, c_out in zip(gc[:-1], gc[1:], strict=True):
                if L["upsampling"] == "transpose":  # Conv2DTranspose(4, strides=2, padding="same")
                    layers.append(nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=not bn))
                else:  # UpSampling2D(2) + Conv2D(3, padding="same")
                    layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_in, c_out, 3, 1, 1, bias=not bn)]
                layers += [*norm(nn.BatchNorm2d, c_out), nn.ReLU()]
            layers += [nn.Conv2d(gc[-1], L["image_channels"], 3, 1, 1), nn.Tanh()]
            self.up = nn.Sequential(*layers)

        def forward(self, z: torch.Tensor) -> torch.Tensor:
            return self.up(self.project(z).view(-1, gc[0], bh, bw))

    class Discriminator(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            layers: list[nn.Module] = []
            c_in = L["image_channels"]
            for c_out in dc:
                layers += [nn.Conv2d(c_in, c_out, 4, 2, 1), nn.LeakyReLU(0.2)]
                c_in = c_out
            self.down = nn.Sequential(*layers, nn.Flatten())
            self.logit = nn.Linear(bh * bw * dc[-1], 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.logit(self.down(x))

    torch.manual_seed(L["seed"])
    device = "cuda" if torch.cuda.is_available() else "cpu"  # on a GPU machine: the eager loop on the GPU
    net_g, net_d = Generator().to(device), Discriminator().to(device)
    opt_g = torch.optim.Adam(net_g.parameters(), lr=L["lr"], betas=L["betas"])
    opt_d = torch.optim.Adam(net_d.parameters(), lr=L["lr"], betas=L["betas"])
    criterion = nn.BCEWithLogitsLoss()
    batch = L["batch"]
    real = torch.from_numpy(images_nhwc).permute(0, 3, 1, 2).contiguous().to(device)  # the loader's NCHW batch
    ones, zeros = torch.ones(batch, 1, device=device), torch.zeros(batch, 1, device=device)

    def iteration(step: int) -> list[float]:
        # D step: real -> 1, fake (detached) -> 0
        net_d.zero_grad(set_to_none=True)
        fake = net_g(torch.randn(batch, L["latent"], device=device))
        err_d = criterion(net_d(real), ones) + criterion(net_d(fake.detach()), zeros)
        err_d.backward()
        opt_d.step()
        # G step: non-saturating, fake -> 1
        net_g.zero_grad(set_to_none=True)
        if fresh_z:
            fake = net_g(torch.randn(batch, L["latent"], device=device))
        err_g = criterion(net_d(fake), ones)
        err_g.backward()
        opt_g.step()
        return [err_g.item(), err_d.item()]

    return iteration, sum(p.numel() for net in (net_g, net_d) for p in net.parameters())

