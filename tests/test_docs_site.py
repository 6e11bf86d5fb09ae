"""The documentation site (mkdocs.yml) builds in strict mode: every page in the nav, no broken
link or anchor, the API reference generated from ganctl.api's docstrings and the CLI reference
from the Typer app. Needs the `docs` extra (`pip install -e '.[docs]'`)."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT

NEEDED = ("mkdocs", "material", "mkdocstrings_handlers.python", "mkdocs_typer2")


def _text(page: Path) -> str:
    return re.sub(r"<[^>]+>", "", page.read_text())


@pytest.mark.slow
def test_the_docs_site_builds_in_strict_mode(tmp_path):
    missing = [name for name in NEEDED if importlib.util.find_spec(name.split(".")[0]) is None]
    if missing:
        pytest.skip(f"the docs extra is not installed ({', '.join(missing)} missing): pip install -e '.[docs]'")
    bin_dir = str(Path(sys.executable).parent)
    path = bin_dir + os.pathsep + os.environ.get("PATH", "")
    assert shutil.which("typer", path=path), "mkdocs-typer2 runs the `typer` script; install typer's script too"
    env = {**os.environ, "PATH": path, "GANCTL_LOAD_PLUGINS": "", "GANCTL_CACHE_DIR": str(tmp_path / "cache"),
           "NO_MKDOCS_2_WARNING": "1"}
    site = tmp_path / "site"
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    cli = _text(site / "reference" / "cli" / "index.html")
    for usage in ("ganctl train [OPTIONS]", "ganctl plugins install [OPTIONS]", "ganctl recipe validate"):
        assert usage in cli, f"the CLI reference lacks {usage!r}"
    api = _text(site / "reference" / "api" / "index.html")
    for name in ("API_VERSION", "API_ATTRIBUTE", "ArrayDataset", "GenerativeModel", "register_commands"):
        assert name in api, f"the API reference lacks {name}"
    assert (site / "plugins" / "index.html").is_file() and (site / "index.html").is_file()
