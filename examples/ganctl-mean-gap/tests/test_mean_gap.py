"""Tests of the `mean-gap` metric, with ganctl's test kit (its fixtures need no import)."""

from ganctl.testing.metrics import check_metric


def test_the_plugin_registers_the_metric(plugin_host):
    assert plugin_host.registered("metrics") == ["mean-gap"]


def test_the_metric_keeps_the_contract(ganctl_plugin):
    values = check_metric(ganctl_plugin, "mean-gap")
    assert values["mean_gap"] > 0


def test_without_normalising_it_is_the_plain_distance(ganctl_plugin):
    check_metric(ganctl_plugin, "mean-gap", {"normalise": False})
