"""Tests of the `squares` dataset, with ganctl's test kit (its fixtures need no import)."""

from ganctl.testing.datasets import check_dataset
from ganctl.testing.runs import recipe


def test_the_plugin_registers_the_dataset(plugin_host):
    assert plugin_host.registered("datasets") == ["squares"]


def test_the_dataset_keeps_the_contract(ganctl_plugin):
    check_dataset(ganctl_plugin, "squares", {"count": 64})


def test_a_recipe_trains_on_it(train_recipe):
    run = train_recipe(recipe("gan", {"latent_dim": 8, "hidden": [16]}, data={"plugin": "squares", "count": 64}))
    assert run.info["data_spec"]["shape"] == [8, 8, 1]
    assert run.info["data"] == "squares" and run.info["status"] == "completed"
