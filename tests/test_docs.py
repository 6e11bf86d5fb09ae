"""The docs keep up with the code: every hook and every recipe key is documented."""

from __future__ import annotations

import inspect
import re

import pytest
from pydantic import BaseModel

from ganctl import api, hookspecs
from ganctl.recipe.schema import MetricRef, OptimizerConfig, RecipeModel, TrainConfig

from .conftest import ROOT, make_host


def _doc(name: str) -> str:
    return (ROOT / "docs" / name).read_text()


def test_every_hook_is_documented():
    hooks = [name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("register_")]
    assert len(hooks) == len(api.KINDS) + 1  # one per kind, and register_commands (API 1.7)
    doc = _doc("plugins.md")
    for hook in hooks:
        argument = "cli" if hook == "register_commands" else "register"
        assert re.search(rf"^### `{hook}\({argument}\)`$", doc, re.M), f"{hook} is not documented in docs/plugins.md"
        assert getattr(hookspecs, hook).__doc__, f"{hook} has no docstring"


def _keys(model: type[BaseModel]) -> list[str]:
    return list(model.model_fields)


def test_every_core_recipe_key_is_documented():
    doc = _doc("recipes.md")
    for model in (RecipeModel, TrainConfig, OptimizerConfig, MetricRef):
        for key in _keys(model):
            assert f"| `{key}` |" in doc, f"{model.__name__}.{key} is missing from docs/recipes.md"


@pytest.mark.parametrize("kind", ["datasets", "models"])
def test_every_builtin_plugin_parameter_is_documented(kind):
    doc = _doc("recipes.md")
    host = make_host()
    for name in host.names(kind):
        section = doc.split(f"### `{name}`", 1)
        assert len(section) == 2, f"{kind} {name} has no section in docs/recipes.md"
        body = section[1].split("\n### ", 1)[0]
        if kind == "models":  # the shared parameters are listed once, above the models
            body += doc.split("## Models (first-party)", 1)[1].split("\n### ", 1)[0]
        for key in _keys(host.get(kind, name).params_model):
            assert f"| `{key}` |" in body, f"{name}.{key} is missing from its section of docs/recipes.md"


JAX2ONNX = "pip install --no-deps 'jax2onnx==0.17.1'"


def test_readme_test_command_is_what_ci_runs():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    expected = f"pip install -e '.[test]' && {JAX2ONNX} && python -m pytest"
    command = re.search(f"^{re.escape(expected)}$", readme, re.M)
    assert command, "the README must show the test command"
    assert command.group(0) in ci


def test_jax2onnx_is_installed_the_same_way_everywhere():
    """jax2onnx goes in with --no-deps (its onnxruntime requirement would clobber onnxruntime-gpu)."""
    from ganctl_export.onnx import CONVERTER_INSTALL

    assert CONVERTER_INSTALL["jax2onnx"] == JAX2ONNX
    readme = (ROOT / "README.md").read_text()
    assert f"pip install -e . && {JAX2ONNX} && ganctl train recipes/quickstart.yaml" in readme
    assert JAX2ONNX in _doc("export.md")


def test_summaries_claim_only_models_that_exist(runner):
    """The one-line descriptions (README, pyproject, `ganctl --help`) name no model family that no
    built-in model plugin provides."""
    import tomllib

    from ganctl.cli import SUMMARY, app

    readme = (ROOT / "README.md").read_text().split("\n## ", 1)[0]
    description = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["description"]
    help_text = runner.invoke(app, ["--help"]).stdout
    assert description == SUMMARY and " ".join(SUMMARY.split()[:3]) in " ".join(help_text.split())
    models = set(make_host().names("models"))
    assert {"gan", "dcgan", "classifier"} <= models
    for family, plugin in {"VAE": "vae", "diffusion": "diffusion", "autoencoder": "autoencoder"}.items():
        for where, text in {"README.md": readme, "pyproject.toml": description, "ganctl --help": help_text}.items():
            assert plugin in models or family.lower() not in text.lower(), f"{where} claims {family}s"


def _requirement(line: str) -> str:
    """The requirement a `pip check` line is about."""
    found = re.search(r" requires ([A-Za-z0-9_.-]+),| has requirement ([A-Za-z0-9_.-]+)", line)
    assert found, line
    return (found.group(1) or found.group(2)).lower()


def test_readme_says_what_pip_check_reports():
    """The README quotes pip check's complaints about jax2onnx (installed with --no-deps): the same
    requirements, no more, no fewer."""
    import subprocess
    import sys
    from importlib import metadata

    try:
        version = metadata.version("jax2onnx")
    except metadata.PackageNotFoundError:
        pytest.skip("jax2onnx is not installed")
    done = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True)
    reported = {_requirement(line) for line in done.stdout.splitlines() if line.startswith(f"jax2onnx {version} ")}
    readme = (ROOT / "README.md").read_text()
    quoted = {_requirement(line) for line in readme.splitlines() if line.startswith("jax2onnx ")}
    assert reported == quoted
    assert f"`pip check` then reports {['no', 'one', 'two', 'three', 'four', 'five', 'six'][len(quoted)]}" in readme


def test_every_logged_value_is_documented():
    """Each key the built-in models log ("<player>/<value>") is in docs/training.md's table."""
    import numpy as np

    from ganctl.api import DataSpec
    from ganctl.engine import backends as backend

    backend.activate(backend.resolve()[0])  # before keras is imported: KERAS_BACKEND or jax
    doc = _doc("training.md").split("### What `metrics.jsonl` holds", 1)[1].split("\n## ", 1)[0]
    host = make_host()
    spec = DataSpec(height=8, width=8, channels=1, num_classes=3)
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (4, 8, 8, 1)).astype("float32")
    labels = np.array([0, 1, 2, 0], "int32")
    from ganctl.api import Column, TableSpec

    table = TableSpec((Column("x", "numeric", weights=(1.0,), means=(0.0,), stds=(1.0,), indicator=True),
                       Column("c", "categorical", categories=("a", "b", "c"))), label="c")
    # Ten rows: a PacGAN critic (ctgan) packs ten rows into one input by default.
    table_labels = np.arange(10, dtype="int32") % 3
    rows = table.encode({"x": rng.standard_normal(10), "c": table_labels}, {"x": np.arange(10) % 4 == 1})
    from ganctl.engine import engine_for

    engine_for(backend.resolve()[0])  # api.input_gradient (ctgan's gradient penalty) needs the engine
    for name in host.names("models"):
        plugin = host.get("models", name)
        tables = "table" in getattr(plugin.factory, "data_kinds", ("image",))  # a model of tables (API 1.7)
        model = plugin.factory(plugin.params_model(), table if tables else spec)
        for player in model.players:
            z = rng.standard_normal((10 if tables else 4, max(getattr(model, "latent_dim", 0), 1))).astype("float32")
            _, values = model.loss(player, rows if tables else images, table_labels if tables else labels, z)
            for key in values:
                assert f"| `{player}/{key}` |" in doc, f"{name} logs {player}/{key}, undocumented in docs/training.md"
    for kind in ("epoch", "diversity", "validation", "eval"):
        assert f"| `{kind}` |" in doc
