"""Tests of the `ganctl sample-info` command, with ganctl's test kit (its fixtures need no import)."""

import ast

import numpy as np
from typer.testing import CliRunner

from ganctl.cli import app
from ganctl.testing.runs import recipe


def test_the_plugin_registers_the_command(plugin_host):
    assert plugin_host.registered("commands") == ["sample-info"]


def test_it_summarises_what_ganctl_generate_wrote(plugin_host, train_recipe, tmp_path):
    run = train_recipe(recipe("gan", {"latent_dim": 8, "hidden": [16], "conditional": True}))
    runner = CliRunner()
    made = runner.invoke(app, ["generate", str(run.path), "-n", "20", "--seed", "1", "--out", str(tmp_path / "s.npz")])
    assert made.exit_code == 0, made.output
    result = runner.invoke(app, ["sample-info", str(tmp_path / "s.npz")])
    assert result.exit_code == 0, result.output
    assert "samples: 20" in result.output and "shape: [8, 8, 1]" in result.output
    counts = ast.literal_eval(result.output.split("per_label: ")[1].splitlines()[0])  # the printed dict
    assert sum(counts.values()) == 20


def test_a_file_that_is_not_samples_is_one_clear_error(plugin_host, tmp_path):
    np.savez(tmp_path / "other.npz", weights=np.zeros(3))
    result = CliRunner().invoke(app, ["sample-info", str(tmp_path / "other.npz")])
    assert result.exit_code != 0
    assert "is not an .npz of samples" in result.output and "Traceback" not in result.output
