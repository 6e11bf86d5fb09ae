"""`ganctl plugins new`: the distribution it writes, for every kind, and its checks of the name."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

from ganctl.cli import app
from ganctl.commands.scaffold import KINDS
from ganctl.testing.datasets import check_dataset
from ganctl.testing.extractors import check_extractor
from ganctl.testing.host import KitHost
from ganctl.testing.metrics import check_metric

ROOT = Path(__file__).resolve().parent.parent

CHEAP_CHECKS = {"dataset": check_dataset, "metric": check_metric, "extractor": check_extractor}


def scaffold(runner, folder: Path, name: str, kind: str) -> Path:
    result = runner.invoke(app, ["plugins", "new", name, "--kind", kind, "--dir", str(folder)])
    assert result.exit_code == 0, result.output
    return folder / f"ganctl-{name}"


@pytest.mark.parametrize("kind", list(KINDS))
def test_each_kind_is_a_complete_distribution_whose_component_loads(runner, tmp_path, monkeypatch, kind):
    name = f"kit-{kind}"
    dist = scaffold(runner, tmp_path, name, kind)
    module = f"ganctl_kit_{kind}"
    assert sorted(p.relative_to(dist).as_posix() for p in dist.rglob("*") if p.is_file()) == sorted(
        [".gitignore", "README.md", "pyproject.toml", f"{module}/__init__.py", f"tests/test_kit_{kind}.py"])
    project = tomllib.loads((dist / "pyproject.toml").read_text())
    assert project["project"]["name"] == f"ganctl-{name}"
    assert project["project"]["entry-points"]["ganctl"] == {name: module}
    assert project["tool"]["pytest"]["ini_options"]["ganctl_plugin"] == module
    readme = (dist / "README.md").read_text()
    assert "$" not in readme and (f"ganctl {name} " if kind == "command" else f"plugin: {name}") in readme
    compile((dist / f"tests/test_kit_{kind}.py").read_text(), "test", "exec")  # the tests at least parse
    monkeypatch.syspath_prepend(str(dist))
    monkeypatch.delitem(sys.modules, module, raising=False)
    try:
        host = KitHost(importlib.import_module(module))
        host.check_loaded()
        assert host.registered(KINDS[kind][0]) == [name]
        if kind in CHEAP_CHECKS:
            CHEAP_CHECKS[kind](module, name)
    finally:
        sys.modules.pop(module, None)


@pytest.mark.parametrize("name, message", [
    ("Squares", "invalid"), ("my--gan", "invalid"), ("1st", "invalid"), ("digits", "already taken by ganctl"),
    ("pixels", None),  # a feature extractor's name, free for a dataset
])
def test_names_are_checked_before_anything_is_written(runner, tmp_path, name, message):
    result = runner.invoke(app, ["plugins", "new", name, "--kind", "dataset", "--dir", str(tmp_path)])
    if message is None:
        assert result.exit_code == 0, result.output
        return
    assert result.exit_code == 2 and message in result.output
    assert list(tmp_path.iterdir()) == []


def test_a_command_may_not_take_the_name_of_one_of_ganctl_s_own(runner, tmp_path):
    result = runner.invoke(app, ["plugins", "new", "train", "--kind", "command", "--dir", str(tmp_path)])
    assert result.exit_code == 2 and "one of ganctl's own commands" in result.output
    assert list(tmp_path.iterdir()) == []


def test_an_existing_folder_or_an_unknown_kind_is_refused(runner, tmp_path):
    (tmp_path / "ganctl-mine").mkdir()
    (tmp_path / "ganctl-mine" / "keep.txt").write_text("mine")
    result = runner.invoke(app, ["plugins", "new", "mine", "--kind", "metric", "--dir", str(tmp_path)])
    assert result.exit_code == 2 and "already exists" in result.output
    assert [p.name for p in (tmp_path / "ganctl-mine").iterdir()] == ["keep.txt"]
    result = runner.invoke(app, ["plugins", "new", "other", "--kind", "widget", "--dir", str(tmp_path)])
    assert result.exit_code == 2 and "model, dataset, metric, extractor, exporter" in result.output


def test_bare_plugins_still_lists_the_plugins(runner):
    listed = runner.invoke(app, ["plugins", "--json"])
    assert listed.exit_code == 0 and json.loads(listed.output)[0]["builtin"] is True
    table = runner.invoke(app, ["plugins"])
    assert table.exit_code == 0 and "ganctl_models" in table.output


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    """A throwaway virtual environment that sees this interpreter's packages (ganctl among them)."""
    where = tmp_path_factory.mktemp("venv") / "env"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(where)], check=True)
    (purelib,) = (where / "lib").glob("python*/site-packages")
    (purelib / "_ganctl_under_test.pth").write_text(
        f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})\n")
    return where


EXAMPLES = {"model": "mlp-gan", "dataset": "squares", "metric": "mean-gap", "extractor": "pooled",
            "exporter": "npz-weights", "command": "sample-info"}
"""examples/: one distribution per kind, exactly what `ganctl plugins new NAME --kind KIND` writes."""


def _files(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): p.read_text() for p in sorted(folder.rglob("*"))
            if p.is_file() and "egg-info" not in str(p) and "__pycache__" not in str(p)}


@pytest.mark.parametrize("kind", list(KINDS))
def test_each_example_is_what_the_scaffold_writes_today(runner, tmp_path, kind):
    """So the examples never drift from the templates: regenerate them with
    `ganctl plugins new NAME --kind KIND --dir examples` after changing a template."""
    assert set(EXAMPLES) == set(KINDS)
    name = EXAMPLES[kind]
    written = scaffold(runner, tmp_path, name, kind)
    assert _files(ROOT / "examples" / f"ganctl-{name}") == _files(written), (
        f"examples/ganctl-{name} differs from what the scaffold writes: regenerate it")


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(KINDS))
def test_each_example_installs_passes_its_tests_and_is_listed(runner, tmp_path, venv, kind):
    """examples/ (the scaffold's output, checked above) installed offline into a throwaway environment:
    its own tests pass and `ganctl plugins` lists it."""
    name = EXAMPLES[kind]
    dist = tmp_path / f"ganctl-{name}"
    shutil.copytree(ROOT / "examples" / f"ganctl-{name}", dist)  # the install writes into it
    python = str(venv / "bin" / "python")
    env = {k: v for k, v in os.environ.items() if k not in ("GANCTL_LOAD_PLUGINS", "PYTHONPATH")}
    env["GANCTL_TEST_BACKENDS"] = env.get("KERAS_BACKEND", "jax")  # check_model on this run's backend
    install = subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "-e",
                              str(dist)], env=env, capture_output=True, text=True)
    assert install.returncode == 0, install.stderr[-3000:]
    tested = subprocess.run([python, "-m", "pytest", str(dist), "-q", "-p", "no:cacheprovider"], env=env,
                            cwd=tmp_path, capture_output=True, text=True)
    assert tested.returncode == 0, tested.stdout[-5000:] + tested.stderr[-2000:]
    assert " passed" in tested.stdout
    listed = subprocess.run([python, "-m", "ganctl", "plugins", "--json"], env=env, capture_output=True, text=True)
    assert listed.returncode == 0, listed.stderr[-2000:]
    ours = [p for p in json.loads(listed.stdout) if p["distribution"] == f"ganctl-{name}"]
    assert len(ours) == 1 and ours[0]["status"] == "loaded" and ours[0][KINDS[kind][0]] == [name]
