"""The CLI as a user runs it: start-up without heavy imports, --version, doctor, data info."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from ganctl import __version__
from ganctl.cli import app

HEAVY = ("keras", "jax", "tensorflow", "torch", "onnxruntime")


def _imported_after(*argv: str) -> set[str]:
    """Run the CLI in a fresh interpreter; return which heavy modules it imported."""
    code = (
        "import sys\n"
        "from ganctl.cli import app\n"
        f"try:\n    app({list(argv)!r})\nexcept SystemExit:\n    pass\n"
        f"print('HEAVY=' + ','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    env = {**os.environ, "GANCTL_LOAD_PLUGINS": ""}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    marker = [line for line in done.stdout.splitlines() if line.startswith("HEAVY=")]
    assert marker, done.stdout + done.stderr
    return set(filter(None, marker[-1].removeprefix("HEAVY=").split(",")))


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["plugins"], ["recipe", "schema"],
                                  ["recipe", "validate", "recipes/quickstart.yaml"]])
def test_light_commands_import_no_backend(argv, monkeypatch):
    from .conftest import ROOT

    monkeypatch.chdir(ROOT)
    assert _imported_after(*argv) == set()


def test_version(runner):
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.strip() == f"ganctl {__version__}"


def test_help_lists_commands(runner):
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("plugins", "doctor", "recipe", "data"):
        assert command in result.stdout


def test_console_script_runs():
    done = subprocess.run(["ganctl", "--version"], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == f"ganctl {__version__}"


def test_doctor_json_reports_versions_devices_and_plugins(runner):
    result = runner.invoke(app, ["doctor", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    import keras

    assert report["ganctl"] == __version__ and report["keras"] == keras.__version__
    assert report["backend"] == keras.backend.backend()
    assert report["devices"] and report["devices"][0].startswith("cpu")
    assert any(p["name"] == "ganctl_datasets" and p["status"] == "loaded" for p in report["plugins"])


def test_doctor_table(runner):
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == 0 and "devices" in result.stdout and "cpu" in result.stdout


def test_doctor_rejects_unknown_backend(runner):
    result = runner.invoke(app, ["doctor", "--backend", "mxnet"])
    assert result.exit_code == 2
    assert "--backend is 'mxnet', which is not a ganctl backend; use one of: jax, tensorflow, torch." in result.stderr


def test_data_info_on_a_plugin_name_and_preview(runner, tmp_path):
    preview = tmp_path / "sub" / "digits.png"
    result = runner.invoke(app, ["data", "info", "digits", "--set", "split=all", "--json", "--preview", str(preview)])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["examples"] == 1797 and info["shape"] == [8, 8, 1] and info["num_classes"] == 10
    assert sum(info["class_counts"].values()) == 1797
    image = np.asarray(Image.open(preview))
    assert image.shape[0] >= 8 * 32 and image.max() == 255  # 64 digits, enlarged to be legible


def test_data_info_on_a_recipe(runner, host, write):
    recipe = write("r.yaml", "name: r\ndata: {plugin: digits, split: test}\nmodel: {plugin: toy}\n")
    result = runner.invoke(app, ["data", "info", str(recipe)])
    assert result.exit_code == 0, result.output
    assert "360" in result.stdout and "8 x 8 x 1" in result.stdout


@pytest.mark.parametrize(
    "args, expected",
    [
        (["data", "info", "digitz"], "unknown dataset plugin 'digitz'. Did you mean 'digits'?"),
        (["data", "info", "digits", "--set", "split=nope"], "split: Input should be 'train', 'test' or 'all'"),
        (["data", "info", "idx", "--set", "path=/nonexistent/folder"], "/nonexistent/folder"),
        (["data", "info", "digits", "--preview", "/proc/forbidden/x.png"], "cannot write /proc/forbidden/x.png"),
        (["data", "info", "digits", "--preview", "out.jpg"], "must end in .png"),
    ],
)
def test_data_info_errors(runner, args, expected):
    result = runner.invoke(app, args)
    assert result.exit_code in (1, 2), result.output
    assert result.stderr.startswith("error: ") and expected in result.stderr
    assert "Traceback" not in result.output


def test_internal_errors_are_one_line_unless_debugging(runner, host, monkeypatch):
    from ganctl.recipe import load as recipe

    def explode(*args, **kwargs):
        raise ZeroDivisionError("bug")

    monkeypatch.setattr(recipe, "load_recipe", explode)
    result = runner.invoke(app, ["recipe", "validate", "x.yaml"])
    assert result.exit_code == 1
    assert "internal error: ZeroDivisionError: bug" in result.stderr and "GANCTL_DEBUG=1" in result.stderr
    monkeypatch.setenv("GANCTL_DEBUG", "1")
    assert isinstance(runner.invoke(app, ["recipe", "validate", "x.yaml"]).exception, ZeroDivisionError)


def test_doctor_reports_onnxruntime_providers_and_exporters(runner):
    result = runner.invoke(app, ["doctor", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    runtime = report["inference"]
    assert len(runtime["packages"]) == 1 and runtime["problem"] is None
    assert runtime["providers"]["cpu"] == {"available": True, "reason": ""}
    assert set(report["exporters"]) >= {"onnx", "keras", "tf_saved_model"}


def test_doctor_flags_both_onnxruntime_packages_installed(runner, monkeypatch):
    from importlib import metadata

    installed = {"onnxruntime": "1.32.0", "onnxruntime-gpu": "1.31.1"}

    def version(name):
        if name in installed:
            return installed[name]
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", version)
    result = runner.invoke(app, ["doctor", "--json"])
    problem = json.loads(result.stdout)["inference"]["problem"]
    assert "onnxruntime and onnxruntime-gpu are installed together" in problem
    assert "pip uninstall -y onnxruntime onnxruntime-gpu && pip install onnxruntime-gpu" in problem


def _hide_tensorflow(monkeypatch):
    """Make TensorFlow look uninstalled, whether it is or not."""
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *args: None if name.split(".")[0] == "tensorflow" else real(name, *args))


def test_doctor_reports_a_backend_that_is_not_installed(runner, monkeypatch):
    _hide_tensorflow(monkeypatch)
    result = runner.invoke(app, ["doctor", "--backend", "tensorflow", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["backend"] == "tensorflow" and report["backend_installed"] is False
    assert report["backend_install"] == "pip install 'ganctl[tensorflow]'"
    assert "the tensorflow backend is not installed" in report["backend_problem"]
    assert report["devices"] == [] and "tensorflow" not in report["installed_backends"]
    assert any(p["name"] == "ganctl_datasets" for p in report["plugins"])
    table = runner.invoke(app, ["doctor", "--backend", "tensorflow"], env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.output
    assert "not installed; install it with: pip install 'ganctl[tensorflow]'" in table.stdout


def test_doctor_json_says_the_backend_is_installed(runner):
    report = json.loads(runner.invoke(app, ["doctor", "--json"]).stdout)
    assert report["backend_installed"] is True and report["backend_problem"] is None


def test_shell_completion(runner, monkeypatch):
    # `--show-completion` detects the shell from the parent processes (shellingham); a test run
    # whose parents include no shell (a CI runner, a daemon) must not depend on that
    shellingham = pytest.importorskip("shellingham")
    monkeypatch.setattr(shellingham, "detect_shell", lambda *args, **kwargs: ("bash", "/bin/bash"))
    assert "--install-completion" in runner.invoke(app, ["--help"]).stdout
    result = runner.invoke(app, ["--show-completion", "bash"])
    assert result.exit_code == 0, result.output
    assert "_GANCTL_COMPLETE=complete_bash" in result.stdout and "complete -o default -F" in result.stdout
    env = {"_GANCTL_COMPLETE": "complete_bash", "COMP_WORDS": "ganctl gen", "COMP_CWORD": "1"}
    assert runner.invoke(app, [], env=env, prog_name="ganctl").stdout.split() == ["generate"]


def test_completion_script_imports_no_backend(monkeypatch):
    from .conftest import ROOT

    monkeypatch.chdir(ROOT)
    assert _imported_after("--show-completion", "bash") == set()


def _commands(group, path=()):
    for name, command in group.commands.items():
        yield (*path, name)
        if hasattr(command, "commands"):  # a group: recipe, data
            yield from _commands(command, (*path, name))


def test_help_shows_readable_metavars(runner):
    """No Python types (<list[str]>) for options, no doubled ellipses ({RUN_DIR...}...), no raw
    parameter names ({file}) in any command's help."""
    import re

    import typer

    commands = list(_commands(typer.main.get_command(app)))
    assert ("recipe", "validate") in commands and ("compare",) in commands
    for command in commands:
        result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        usage = result.stdout.splitlines()[0]
        assert "...}..." not in usage and not re.search(r"[{\[][a-z_]+[}\]]", usage), usage
        options = [line for line in result.stdout.splitlines() if line.lstrip().startswith("-")]
        assert not [line for line in options if "<list[" in line], command


@pytest.mark.parametrize("args", [["train", "recipes/quickstart.yaml", "--out", "{file}/run"],
                                  ["data", "info", "digits", "--preview", "{file}/sub/preview.png"],
                                  ["recipe", "schema", "--out", "{file}/schema.json"]],
                         ids=["train", "data-info", "recipe-schema"])
def test_out_inside_a_file_names_the_file(runner, tmp_path, monkeypatch, args):
    from .conftest import ROOT

    monkeypatch.chdir(ROOT)
    blocker = tmp_path / "notes.txt"
    blocker.write_text("not a folder")
    result = runner.invoke(app, [arg.format(file=blocker) for arg in args])
    assert result.exit_code == 2, result.output
    assert f"{blocker} is a file, not a folder, so nothing can be written inside it" in result.stderr
    assert "File exists" not in result.stderr and "Not a directory" not in result.stderr
