"""The architecture holds: the import contracts of pyproject.toml (layers, where jax/tensorflow/torch
may be imported, plugins importing only ganctl.api, no cycles), every part of the core placed in a
layer, and modules small enough to read (docs/architecture.md)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 400
LONGER_ALLOWED = {"ganctl/api.py"}  # mostly the plugin contract's documentation


def _contracts() -> list[dict]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]


def test_the_import_contracts_are_kept():
    code = ("from importlinter.cli import lint_imports; "
            "raise SystemExit(lint_imports(config_filename='pyproject.toml', no_cache=True, no_logo=True))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "BROKEN" not in done.stdout and done.stdout.count("KEPT") == len(_contracts())


def test_every_part_of_the_core_sits_in_a_layer():
    layers = next(c for c in _contracts() if c["type"] == "layers")["layers"]
    placed = {name.strip() for layer in layers for name in layer.replace(":", "|").split("|")}
    parts = {f"ganctl.{p.stem}" for p in (ROOT / "ganctl").glob("*.py") if p.stem != "__init__"}
    parts |= {f"ganctl.{p.parent.name}" for p in (ROOT / "ganctl").glob("*/__init__.py")}
    assert parts - placed == set(), "add these to a layer of the contract in pyproject.toml"
    assert placed - parts == set(), "the contract names modules that no longer exist"


def test_no_module_of_the_core_is_too_long_to_read():
    long = {str(p.relative_to(ROOT)): n for p in (ROOT / "ganctl").rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert set(long) <= LONGER_ALLOWED, f"split these modules (over {MAX_LINES} lines): {long}"


def test_packages_say_what_they_hold_and_re_export_nothing():
    for init in (ROOT / "ganctl").glob("*/__init__.py"):
        text = init.read_text()
        assert text.lstrip().startswith('"""'), f"{init.relative_to(ROOT)} needs a docstring: what the package is for"
        if init.parent.parent.name == "ganctl" and init.parent.name != "engine":
            imports = [line for line in text.splitlines() if line.startswith(("import ", "from "))
                       and "__future__" not in line]
            assert imports == [], f"{init.relative_to(ROOT)} re-exports names; import them from their modules"
