"""Tests of the `pooled` feature extractor, with ganctl's test kit (its fixtures need no import)."""

import pytest

from ganctl import api
from ganctl.testing.extractors import check_extractor


def test_the_plugin_registers_the_extractor(plugin_host):
    assert plugin_host.registered("feature_extractors") == ["pooled"]


def test_the_extractor_keeps_the_contract(ganctl_plugin):
    features = check_extractor(ganctl_plugin, "pooled")
    assert features.features.shape[1] == 16  # 8x8 grey images pooled 2x2


def test_a_pool_that_does_not_divide_the_image_is_refused(plugin_host):
    extractor = plugin_host.build("feature_extractors", "pooled", {"pool": 3})
    with pytest.raises(api.ConfigError, match="pool"):
        extractor.prepare(api.DataSpec(height=8, width=8, channels=1))
