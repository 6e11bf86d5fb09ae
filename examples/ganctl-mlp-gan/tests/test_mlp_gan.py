"""Tests of the `mlp-gan` model, with ganctl's test kit (its fixtures need no import)."""

import math

from ganctl.testing.models import check_model
from ganctl.testing.runs import recipe

SMALL = {"latent_dim": 8, "hidden": 16}


def test_the_plugin_registers_the_model(plugin_host):
    assert plugin_host.registered("models") == ["mlp-gan"]


def test_the_model_keeps_the_contract(ganctl_plugin, tmp_path):
    # On every installed backend (GANCTL_TEST_BACKENDS=jax,torch narrows it): losses agree across
    # backends, state is registered, a resume is exact, the ONNX export matches Keras.
    check_model(ganctl_plugin, "mlp-gan", SMALL, workdir=tmp_path)


def test_a_recipe_trains_it(train_recipe):
    run = train_recipe(recipe("mlp-gan", SMALL, steps=3))
    assert run.info["model"] == "mlp-gan" and run.info["status"] == "completed"
    losses = [record["generator/loss"] for record in run.metrics if "type" not in record]  # one per step
    assert len(losses) == 3 and all(math.isfinite(loss) for loss in losses)
