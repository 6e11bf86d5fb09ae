"""The docs keep up with the code: every hook and every recipe key is documented."""

from __future__ import annotations

import inspect
import re

import pytest
from pydantic import BaseModel

from ganctl import api, hookspecs
from ganctl.recipe import MetricRef, OptimizerConfig, RecipeModel, TrainConfig

from .conftest import ROOT, make_host


def _doc(name: str) -> str:
    return (ROOT / "docs" / name).read_text()


def test_every_hook_is_documented():
    hooks = [name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("register_")]
    assert len(hooks) == len(api.KINDS)
    doc = _doc("plugins.md")
    for hook in hooks:
        assert re.search(rf"^### `{hook}\(register\)`$", doc, re.M), f"{hook} is not documented in docs/plugins.md"
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
