"""Tests of the `npz-weights` exporter, with ganctl's test kit (its fixtures need no import)."""

import json

import numpy as np

from ganctl.testing.exporters import check_exporter


def test_the_plugin_registers_the_exporter(plugin_host):
    assert plugin_host.registered("exporters") == ["npz-weights"]


def test_the_exporter_keeps_the_contract(ganctl_plugin, tmp_path):
    written = check_exporter(ganctl_plugin, "npz-weights", workdir=tmp_path)
    with np.load(written) as archive:
        assert json.loads(str(archive["metadata"]))["ganctl.model"] == "gan"
