"""The plugin API version, enforced (API 1.7): what a plugin declares with ``GANCTL_API``, the
refusal of one that needs a newer API, what `ganctl plugins` shows, and deprecated names."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings

import pytest

from ganctl import __version__, api
from ganctl.cli import app
from ganctl.plugins import set_host

from .conftest import ROOT, ToyPlugin, make_host


def needing(version: object) -> type:
    """A plugin (one dataset) that declares ``GANCTL_API = version``."""

    class Plugin:
        GANCTL_API = version

        @staticmethod
        @api.hookimpl
        def register_datasets(register):
            register("versioned", Versioned)

    return Plugin


class Versioned(api.ArrayDataset):
    """Four tiny images."""

    class Params(api.Params):
        pass

    def __init__(self, params):
        import numpy as np

        super().__init__(np.zeros((4, 2, 2, 1), np.uint8))


def _major_minor() -> tuple[int, int]:
    major, minor = api.API_VERSION.split(".")
    return int(major), int(minor)


def test_a_plugin_needing_this_or_an_older_minor_version_loads():
    major, minor = _major_minor()
    for version in (f"{major}.0", f"{major}.3", api.API_VERSION):
        host = make_host((needing(version), "ok"))
        info = host.plugins[-1]
        assert info.status == "loaded", info.error
        assert info.api == version and "versioned" in host.names("datasets")


def test_a_plugin_that_declares_nothing_loads_as_before():
    host = make_host((ToyPlugin, "toy"))
    info = host.plugins[-1]
    assert info.status == "loaded" and info.api is None


@pytest.mark.parametrize("offset", [(0, 1), (1, 0)], ids=["newer-minor", "newer-major"])
def test_a_plugin_needing_a_newer_api_is_refused_with_both_versions_and_the_upgrade(offset):
    major, minor = _major_minor()
    needed = f"{major + offset[0]}.{minor + offset[1]}"
    host = make_host((needing(needed), "future"), (ToyPlugin, "toy"))
    future = next(p for p in host.plugins if p.name == "future")
    assert future.status == "failed"
    assert f"needs ganctl API {needed}" in future.error
    assert f"provides API {api.API_VERSION}" in future.error
    assert "`ganctl plugins install --upgrade ganctl`" in future.error
    assert "versioned" not in host.names("datasets")  # nothing of a refused plugin is kept
    assert "toy" in host.names("models")  # the others load


def test_a_plugin_for_an_older_major_version_is_told_to_upgrade_itself():
    major, _ = _major_minor()
    host = make_host((needing(f"{major - 1}.9"), "old"))
    old = host.plugins[-1]
    assert old.status == "failed"
    assert f"was written for ganctl API {major - 1}.9" in old.error
    assert "`ganctl plugins install --upgrade ganctl-old`" in old.error


@pytest.mark.parametrize("declared", [1.7, "1", "1.x", "v1.7"])
def test_a_malformed_declaration_says_how_to_write_it(declared):
    host = make_host((needing(declared), "odd"))
    odd = host.plugins[-1]
    assert odd.status == "failed"
    assert 'as "MAJOR.MINOR"' in odd.error and f'GANCTL_API = "{api.API_VERSION}"' in odd.error


def test_first_party_plugins_declare_the_current_api():
    host = make_host()
    builtin = [p for p in host.plugins if p.builtin]
    assert builtin and all(p.api == api.API_VERSION for p in builtin)


def test_plugins_command_shows_what_each_needs_and_the_refusal(runner, monkeypatch):
    major, minor = _major_minor()
    set_host(make_host((needing(f"{major}.{minor + 1}"), "future"), (needing(f"{major}.3"), "old-enough")))
    result = runner.invoke(app, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["old-enough"]["api"] == f"{major}.3" and rows["old-enough"]["status"] == "loaded"
    assert rows["future"]["status"] == "failed" and "needs ganctl API" in rows["future"]["error"]
    assert rows["ganctl_datasets"]["api"] == api.API_VERSION
    assert "plugin 'future'" in result.stderr  # the one warning line of a failed plugin

    monkeypatch.setenv("COLUMNS", "250")
    table = runner.invoke(app, ["plugins"])
    assert table.exit_code == 0
    assert "API" in table.stdout and f"{major}.3" in table.stdout and "failed: needs ganctl API" in table.stdout
    assert runner.invoke(app, ["recipe", "schema"]).exit_code == 0  # the CLI keeps working


def test_a_deprecated_name_still_works_and_says_what_to_write_instead(monkeypatch):
    monkeypatch.setattr(api, "_DEPRECATED", {"OldParams": ("Params", "1.7")})
    with pytest.warns(DeprecationWarning) as caught:
        assert api.OldParams is api.Params
    message = str(caught[0].message)
    major, _ = _major_minor()
    assert "ganctl.api.OldParams is deprecated since API 1.7" in message
    assert f"removed in API {major + 1}.0" in message and "use ganctl.api.Params instead" in message
    assert caught[0].filename == __file__  # the warning points at the plugin's line, not at ganctl
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert api.Params is not None  # a current name does not warn
    with pytest.raises(AttributeError, match="has no attribute 'NoSuchName'"):
        api.NoSuchName  # noqa: B018


# -- the other declaration: a distribution's dependency on ganctl ----------------------------------


def test_a_plugin_whose_dependency_excludes_this_ganctl_is_refused_before_import(tmp_path):
    """ganctl-later depends on ganctl>=99 and was installed with --no-deps (pip would have refused
    it otherwise): it is refused, without importing it, and the rest works."""
    sources, site = tmp_path / "sources", tmp_path / "site"
    shutil.copytree(ROOT / "tests" / "plugin_dists" / "ganctl-later", sources)
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
           "--target", str(site), str(sources)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    environ = {k: v for k, v in os.environ.items() if not k.startswith("GANCTL_")}
    environ.update(PYTHONPATH=str(site), GANCTL_CACHE_DIR=str(tmp_path / "cache"))
    result = subprocess.run([sys.executable, "-m", "ganctl", "plugins", "--json"], capture_output=True, text=True,
                            env=environ)
    assert result.returncode == 0, result.stderr
    later = next(row for row in json.loads(result.stdout) if row["name"] == "later")
    assert later["status"] == "failed"
    assert later["error"].startswith(f"requires ganctl>=99 (its dependency on the ganctl distribution), but ganctl "
                                     f"{__version__} (API {api.API_VERSION}) is installed")
    assert "`ganctl plugins install --upgrade ganctl`" in later["error"]
    assert "was imported" not in result.stderr + later["error"]
