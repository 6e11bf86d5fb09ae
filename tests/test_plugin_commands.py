"""Commands from plugins (``register_commands``, API 1.7): isolated like every hook, listed by
``ganctl --help`` without loading plugins, run on demand; and ``ganctl plugins install`` /
``uninstall`` in the environment ganctl runs in."""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from ganctl import api
from ganctl.cli import app
from ganctl.plugins import set_host

from .conftest import ROOT, ToyModel, make_host


class Hello:
    @staticmethod
    @api.hookimpl
    def register_commands(cli):
        @cli.command("hello")
        def hello(name: str = typer.Option("world", help="Whom to greet.")) -> None:
            """Greet someone."""
            if name == "nobody":
                raise api.ConfigError("--name nobody: nobody to greet. Fix: give a name.")
            typer.echo(f"hello, {name}")

        tools = typer.Typer(help="Tools of the plugin.")

        @tools.command("count")
        def count(n: int = 3) -> None:
            """Count to N."""
            typer.echo(" ".join(str(i) for i in range(1, n + 1)))

        cli.add_typer(tools, name="hello-tools")


class RaisingCommands:
    @staticmethod
    @api.hookimpl
    def register_commands(cli):
        raise RuntimeError("boom in register_commands")

    @staticmethod
    @api.hookimpl
    def register_models(register):
        register("kept-out", ToyModel)


def _naming(command_name: str) -> type:
    class Plugin:
        @staticmethod
        @api.hookimpl
        def register_commands(cli):
            cli.command(command_name)(lambda: None)

    return Plugin


def test_a_plugin_command_runs_with_its_options_and_groups(runner):
    host = make_host((Hello, "hello"))
    info = host.plugins[-1]
    assert info.status == "loaded" and info.commands == ["hello", "hello-tools"]
    set_host(host)
    assert runner.invoke(app, ["hello", "--name", "Ada"]).stdout == "hello, Ada\n"
    assert runner.invoke(app, ["hello-tools", "count", "--n", "4"]).stdout == "1 2 3 4\n"
    assert "Whom to greet." in runner.invoke(app, ["hello", "--help"]).stdout


def test_a_plugin_command_s_errors_are_one_clean_paragraph(runner):
    set_host(make_host((Hello, "hello")))
    result = runner.invoke(app, ["hello", "--name", "nobody"])
    assert result.exit_code == 2
    assert result.stderr == "error: --name nobody: nobody to greet. Fix: give a name.\n"


@pytest.mark.parametrize("plugin, expected", [
    (RaisingCommands, "register_commands failed: RuntimeError: boom in register_commands"),
    (_naming("train"), "command 'train' is one of ganctl's own commands"),
    (_naming("plugins"), "command 'plugins' is one of ganctl's own commands"),
    (_naming("Bad Name"), "command name 'Bad Name' is invalid"),
])
def test_a_broken_command_plugin_is_isolated(runner, plugin, expected):
    set_host(make_host((plugin, "bad"), (Hello, "hello")))
    listing = runner.invoke(app, ["plugins", "--json"])
    assert listing.exit_code == 0, listing.output
    bad = next(row for row in json.loads(listing.stdout) if row["name"] == "bad")
    assert bad["status"] == "failed" and expected in bad["error"]
    assert bad["models"] == bad["commands"] == []  # all or nothing: its other registrations are dropped too
    assert "plugin 'bad'" in listing.stderr  # the one warning line
    assert runner.invoke(app, ["hello"]).stdout == "hello, world\n"  # the others' commands work
    assert runner.invoke(app, ["train", "--help"]).exit_code == 0  # and so do ganctl's


def test_two_plugins_may_not_register_the_same_command():
    host = make_host((Hello, "hello"), (_naming("hello"), "other"))
    other = host.plugins[-1]
    assert other.status == "failed"
    assert "command 'hello' is already registered by plugin 'hello' (ganctl-hello 1.0)" in other.error
    assert host.commands["hello"][1].name == "hello"


def test_plugins_json_lists_commands(runner):
    set_host(make_host((Hello, "hello")))
    rows = {row["name"]: row for row in json.loads(runner.invoke(app, ["plugins", "--json"]).stdout)}
    assert rows["hello"]["commands"] == ["hello", "hello-tools"]
    assert rows["ganctl_models"]["commands"] == []


def test_an_unknown_command_is_still_clicks_usage_error(runner):
    set_host(make_host((Hello, "hello")))
    result = runner.invoke(app, ["helo"])
    assert result.exit_code == 2 and "No such command 'helo'" in result.output


# -- a real distribution with a command: listed from a cache, loaded only when run ------------------


def _sources(tmp_path_factory) -> Path:
    sources = tmp_path_factory.mktemp("sources")  # build from a copy: keep the tree clean
    shutil.copytree(ROOT / "tests" / "plugin_dists", sources, dirs_exist_ok=True)
    return sources


@pytest.fixture(scope="module")
def site_dir(tmp_path_factory) -> Path:
    """ganctl-greet (a command) and ganctl-broken, installed with pip into a private folder."""
    sources, target = _sources(tmp_path_factory), tmp_path_factory.mktemp("site")
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
           "--target", str(target), str(sources / "ganctl-greet"), str(sources / "ganctl-broken")]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=target)
    assert done.returncode == 0, done.stderr[-2000:]
    return target


def _environ(**env: str) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("GANCTL_")}
    environ.update(PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1", **env)
    return environ


def _run(python: str | Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(python), *args], capture_output=True, text=True, env=_environ(**env))


def test_help_lists_a_plugin_command_and_runs_it(site_dir, tmp_path):
    env = {"PYTHONPATH": str(site_dir), "GANCTL_CACHE_DIR": str(tmp_path / "cache")}
    first = _run(sys.executable, "-m", "ganctl", "--help", **env)  # no cache yet: plugins load once
    assert first.returncode == 0, first.stderr
    assert "greet" in first.stdout and "Print a greeting (a plugin's command)." in first.stdout
    assert first.stderr == ""  # --help does not warn about the broken plugin
    assert _run(sys.executable, "-m", "ganctl", "greet", "--name", "Ada", "--shout", **env).stdout == "HELLO, ADA\n"
    refused = _run(sys.executable, "-m", "ganctl", "greet", "--name", "nobody", **env)
    assert refused.returncode == 2 and "error: --name nobody: there is nobody to greet" in refused.stderr
    assert "Traceback" not in refused.stderr
    strict = _run(sys.executable, "-m", "ganctl", "greet", GANCTL_STRICT_PLUGINS="1", **env)
    assert strict.returncode == 1 and "error: GANCTL_STRICT_PLUGINS is set" in strict.stderr
    assert "ganctl-broken" in strict.stderr and "Traceback" not in strict.stderr
    only_broken = _run(sys.executable, "-m", "ganctl", "--help", GANCTL_LOAD_PLUGINS="broken", **env)
    assert "greet" not in only_broken.stdout
    absent = _run(sys.executable, "-m", "ganctl", "greet", GANCTL_LOAD_PLUGINS="", **env)
    assert absent.returncode == 2 and "No such command 'greet'" in absent.stderr


def test_help_with_a_warm_cache_imports_no_plugin(site_dir, tmp_path):
    env = {"PYTHONPATH": str(site_dir), "GANCTL_CACHE_DIR": str(tmp_path / "cache")}
    assert _run(sys.executable, "-m", "ganctl", "plugins", "--json", **env).returncode == 0  # fills the cache
    code = ("import sys\nfrom ganctl.cli import app\ntry:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
            "print('LOADED=' + ','.join(m for m in ('ganctl_greet', 'ganctl_datasets', 'ganctl.api', 'numpy') "
            "if m in sys.modules))")
    done = _run(sys.executable, "-c", code, **env)
    assert "greet" in done.stdout, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "LOADED="


def test_a_stale_cache_does_not_hide_or_invent_commands(site_dir, tmp_path):
    cache = tmp_path / "cache"
    env = {"PYTHONPATH": str(site_dir), "GANCTL_CACHE_DIR": str(cache)}
    assert _run(sys.executable, "-m", "ganctl", "--help", **env).returncode == 0
    file = cache / "plugin-commands" / "commands.json"
    data = json.loads(file.read_text())
    key = next(k for k in data["plugins"] if k.startswith("ganctl-greet=="))
    data["plugins"][key] = {"vanished": "A command the plugin no longer has."}
    file.write_text(json.dumps(data))
    gone = _run(sys.executable, "-m", "ganctl", "vanished", **env)
    assert gone.returncode == 2 and "No such command 'vanished'" in gone.stderr
    assert _run(sys.executable, "-m", "ganctl", "greet", **env).stdout == "hello, world\n"  # found anyway
    assert "vanished" not in _run(sys.executable, "-m", "ganctl", "--help", **env).stdout  # refreshed
    file.write_text("{not json")
    assert "greet" in _run(sys.executable, "-m", "ganctl", "--help", **env).stdout  # a damaged cache is rebuilt
    uncached = _run(sys.executable, "-m", "ganctl", "--help", PYTHONPATH=str(site_dir), GANCTL_CACHE_DIR="")
    assert "greet" in uncached.stdout  # caching off: the plugins are loaded each time


# -- ganctl plugins install / uninstall, into a throwaway environment ------------------------------


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> tuple[Path, Path, Path]:
    """A throwaway venv that sees this environment's packages (ganctl included, through a .pth
    file) but installs into its own site-packages; and wheels of ganctl-greet and ganctl-broken,
    built offline."""
    sources, wheels, root = _sources(tmp_path_factory), tmp_path_factory.mktemp("wheels"), tmp_path_factory.mktemp("venv")
    for name in ("ganctl-greet", "ganctl-broken"):
        done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                               "--no-index", "-w", str(wheels), str(sources / name)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(root)], check=True)
    python = root / "bin" / "python"
    purelib = Path(_run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip())
    ours = [p for p in site.getsitepackages() if Path(p) != purelib]
    (purelib / "_ganctl_test_parent.pth").write_text(
        "".join(f"import site; site.addsitedir({p!r})\n" for p in ours))
    return python, next(wheels.glob("ganctl_greet-*.whl")), next(wheels.glob("ganctl_broken-*.whl"))


@pytest.mark.slow  # a venv and pip: ~15 s each
def test_install_shows_what_the_plugin_registered_and_uninstall_removes_it(venv, tmp_path):
    python, greet_wheel, _ = venv
    env = {"GANCTL_CACHE_DIR": str(tmp_path / "cache")}
    done = _run(python, "-m", "ganctl", "plugins", "install", str(greet_wheel), **env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ganctl-greet" in done.stdout and "commands: greet" in done.stdout and "loaded" in done.stdout
    assert "ganctl_datasets" not in done.stdout  # only what was installed
    assert _run(python, "-m", "ganctl", "greet", **env).stdout == "hello, world\n"
    assert "greet" in _run(python, "-m", "ganctl", "--help", **env).stdout
    assert "greet" not in _run(sys.executable, "-m", "ganctl", "--help", **env).stdout  # that venv only

    again = _run(python, "-m", "ganctl", "plugins", "install", "--upgrade", str(greet_wheel), "--", "--no-deps",
                 **env)  # pip's own options after --
    assert again.returncode == 0, again.stderr
    assert "ganctl-greet" in again.stdout  # already there: still shown

    done = _run(python, "-m", "ganctl", "plugins", "uninstall", "-y", "ganctl-greet", **env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "uninstalled the plugins of: ganctl-greet" in done.stdout
    gone = _run(python, "-m", "ganctl", "greet", **env)
    assert gone.returncode == 2 and "No such command 'greet'" in gone.stderr
    assert "greet" not in _run(python, "-m", "ganctl", "--help", **env).stdout


@pytest.mark.slow  # a venv and pip: ~15 s each
def test_install_reports_a_plugin_that_fails_to_load(venv, tmp_path):
    python, _, broken_wheel = venv
    env = {"GANCTL_CACHE_DIR": str(tmp_path / "cache")}
    done = _run(python, "-m", "ganctl", "plugins", "install", str(broken_wheel), **env)
    assert done.returncode == 1
    assert "failed" in done.stdout and "ganctl_dependency_that_does_not_exist" in done.stdout
    assert "error: installed, but plugin 'broken' (ganctl-broken 9.9) failed to load" in done.stderr
    assert "`ganctl plugins uninstall ganctl-broken`" in done.stderr
    assert _run(python, "-m", "ganctl", "plugins", "uninstall", "-y", "ganctl-broken", **env).returncode == 0


def test_uninstall_refuses_ganctl_itself_and_install_needs_a_name(runner):
    for spelling in ("ganctl", "Ganctl", "ganctl==0.1.0"):
        result = runner.invoke(app, ["plugins", "uninstall", "-y", "ganctl-hello", spelling])
        assert result.exit_code == 2 and "refusing to uninstall ganctl itself" in result.stderr
    result = runner.invoke(app, ["plugins", "install"])
    assert result.exit_code == 2 and "name at least one package" in result.stderr


@pytest.mark.slow  # a venv and pip: ~15 s each
def test_a_failed_pip_is_one_error_line(venv, tmp_path):
    python, _, _ = venv
    done = _run(python, "-m", "ganctl", "plugins", "install", str(tmp_path / "no-such-folder"))
    assert done.returncode == 1
    assert "-m pip install" in done.stderr and "failed (exit 1); pip's output above says why." in done.stderr
    assert "Traceback" not in done.stderr


def test_bare_plugins_behaves_as_before(runner, host):
    listing = runner.invoke(app, ["plugins"])
    assert listing.exit_code == 0 and "ganctl_datasets" in listing.stdout
    assert "install" in runner.invoke(app, ["plugins", "--help"]).stdout
