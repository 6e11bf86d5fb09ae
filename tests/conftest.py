"""Shared fixtures. The suite is hermetic: only ganctl's own plugins load, unless a test
installs or registers more."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pytest
from typer.testing import CliRunner

from ganctl import api
from ganctl.plugins import PluginHost, PluginInfo, set_host

ROOT = Path(__file__).resolve().parent.parent
FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def require_fashion_mnist() -> Path:
    """The Debian package's Fashion-MNIST folder. Absent: a skip locally, a failure in CI
    (.ci/run installs it, so a missing copy there means the install step broke)."""
    if not FASHION_MNIST.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"{FASHION_MNIST} is missing: CI must `apt-get install dataset-fashion-mnist`")
        pytest.skip(f"{FASHION_MNIST} is absent (apt-get install dataset-fashion-mnist)")
    return FASHION_MNIST


@pytest.fixture(autouse=True)
def _hermetic(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("GANCTL_LOAD_PLUGINS", "")
    monkeypatch.delenv("GANCTL_STRICT_PLUGINS", raising=False)
    set_host(None)
    yield
    set_host(None)


class ToyModel:
    """A toy model for recipe tests: two players and a few typed parameters."""

    players = ("generator", "discriminator")

    class Params(api.Params):
        latent_dim: int = api.Field(16, ge=1, le=4096, description="Size of z.")
        loss: Literal["bce", "hinge"] = api.Field("bce", description="Loss.")
        dropout: float = api.Field(0.0, ge=0, lt=1, description="Dropout rate.")

    def __init__(self, params: Params) -> None:
        self.params = params


class ToyExporter:
    """A toy exporter."""

    class Params(api.Params):
        opset: int = api.Field(17, ge=7)

    def __init__(self, params: Params) -> None:
        self.params = params


class ToyMetric:
    """A toy metric."""

    class Params(api.Params):
        window: int = api.Field(100, ge=2)

    def __init__(self, params: Params) -> None:
        self.params = params


class ToyFeatures:
    """A toy feature extractor."""

    class Params(api.Params):
        dim: int = api.Field(8, ge=1)

    def __init__(self, params: Params) -> None:
        self.params = params


class ToyPlugin:
    @staticmethod
    @api.hookimpl
    def register_models(register: api.Register) -> None:
        register("toy", ToyModel)

    @staticmethod
    @api.hookimpl
    def register_exporters(register: api.Register) -> None:
        register("toy-export", ToyExporter)

    @staticmethod
    @api.hookimpl
    def register_metrics(register: api.Register) -> None:
        register("toy-metric", ToyMetric)

    @staticmethod
    @api.hookimpl
    def register_feature_extractors(register: api.Register) -> None:
        register("toy-features", ToyFeatures)


def make_host(*plugins: tuple[object, str]) -> PluginHost:
    """A host with the built-in plugins plus the given ``(plugin object, name)`` pairs."""
    host = PluginHost()
    host.load_entry_points(env={"GANCTL_LOAD_PLUGINS": ""})
    for plugin, name in plugins:
        host.add(plugin, PluginInfo(name, f"ganctl-{name}", "1.0"))
    return host


@pytest.fixture
def host() -> PluginHost:
    """Built-ins plus the toy plugin, installed as the process-wide host (the CLI uses it)."""
    h = make_host((ToyPlugin, "toy"))
    set_host(h)
    return h


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def write(tmp_path: Path):
    """Write a text file under tmp_path and return its path."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    return _write


def final_checkpoint(run: Path) -> dict:
    """The arrays of a run's newest checkpoint, by state name."""
    import numpy as np

    newest = sorted((run / "checkpoints").glob("ckpt-*.npz"))[-1]
    with np.load(newest) as archive:
        return {k: archive[k] for k in archive.files if k != "__meta__"}


def trained_in_two_parts(runner: CliRunner, recipe: Path, out: Path, first: int, total: int) -> dict:
    """Train ``recipe`` into ``out`` for ``first`` epochs, then resume it to ``total``: the arrays
    of its final checkpoint (to compare with a run that went straight through)."""
    from ganctl.cli import app

    result = runner.invoke(app, ["train", str(recipe), "--out", str(out), "-q", "--set", f"train.epochs={first}"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["train", "--resume", str(out), "-q", "--set", f"train.epochs={total}"])
    assert result.exit_code == 0, result.output
    return final_checkpoint(out)


def assert_same_state(found: dict, expected: dict) -> None:
    """Two checkpoints' arrays are the same names with bit-identical values."""
    import numpy as np

    assert found.keys() == expected.keys()
    for key in expected:
        np.testing.assert_array_equal(found[key], expected[key], err_msg=key)
