"""``ganctl plugins new``: write a complete plugin distribution, ``ganctl-NAME``, from templates.

The templates are package data (``ganctl/templates/scaffold/``): ``common/`` for every kind
(pyproject.toml, README.md, .gitignore) and one folder per kind (the plugin module, its tests
with the test kit, and the README's "Use" section). Everything is written into a scratch folder
beside the destination and renamed into place, so a failure leaves nothing behind.
"""

from __future__ import annotations

import importlib.metadata as metadata
import importlib.util
import keyword
import os
import re
import shutil
import tempfile
from pathlib import Path
from string import Template

import typer

from ganctl import __version__
from ganctl.console import guarded, load_plugins, stdout
from ganctl.errors import ConfigError

TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "scaffold"
KINDS = {  # --kind: (the ganctl.api kind, how the README says it, the default description, the check)
    "model": ("models", "model", "A small fully-connected GAN.", "check_model"),
    "dataset": ("datasets", "dataset", "White squares of random size on black, labelled small or large.",
                "check_dataset"),
    "metric": ("metrics", "metric", "Distance between the means of real and generated features.", "check_metric"),
    "extractor": ("feature_extractors", "feature extractor", "Average-pooled pixels as features.",
                  "check_extractor"),
    "exporter": ("exporters", "exporter", "The generator's architecture and weights in one NumPy .npz file.",
                 "check_exporter"),
    # a ganctl subcommand (register_commands, API 1.7): no component, so no contract check; its tests run it
    "command": ("commands", "command", "Summarise generated samples: count, shape, value range, per label.", ""),
}
_NAME = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$")  # what a registered name may be (ganctl.plugins)


def register(app: typer.Typer) -> None:
    app.command("new")(new)


@guarded
def new(
    name: str = typer.Argument(..., metavar="NAME", help="The component's name (lowercase, e.g. squares)."),
    kind: str = typer.Option(..., "--kind", metavar="|".join(KINDS), help="What the plugin provides."),
    directory: Path = typer.Option(Path("."), "--dir", help="Where to write the ganctl-NAME folder."),
) -> None:
    """Write a new plugin distribution, ganctl-NAME: a working component, its tests and a README."""
    if kind not in KINDS:
        raise ConfigError(f"--kind {kind!r} is not a kind of plugin; use one of: {', '.join(KINDS)}.")
    module = check_name(name, kind, directory)
    destination = directory / f"ganctl-{name}"
    written = write(destination, template_values(name, kind, module), kind)
    stdout().print(f"wrote {destination} ({kind} '{name}', module {module}):")
    for path in written:
        stdout().print(f"  {path.relative_to(destination)}")
    stdout().print(f"next: pip install -e {destination} && pytest {destination}")


def check_name(name: str, kind: str, directory: Path) -> str:
    """The plugin's module name for ``name``, or a ConfigError saying why ``name`` cannot be used."""
    module = f"ganctl_{name.replace('-', '_')}"
    if not _NAME.match(name) or not module.isidentifier() or keyword.iskeyword(name):
        raise ConfigError(f"plugin name {name!r} is invalid: use lowercase letters and digits, with single '-' or "
                          "'_' between them, starting with a letter (e.g. squares, my-gan); it becomes the "
                          f"distribution ganctl-NAME and the Python package ganctl_NAME.")
    destination = directory / f"ganctl-{name}"
    if destination.exists():
        raise ConfigError(f"{destination} already exists; choose another NAME, another --dir, or remove it.")
    if not directory.is_dir():
        raise ConfigError(f"--dir {directory} is not a folder; create it first or choose another.")
    taken = {_normal(d.metadata["Name"] or "") for d in metadata.distributions()}
    if _normal(f"ganctl-{name}") in taken or importlib.util.find_spec(module) is not None:
        raise ConfigError(f"ganctl-{name} (module {module}) is already installed; choose another NAME, or "
                          f"`pip uninstall ganctl-{name}` first.")
    host = load_plugins()
    api_kind = KINDS[kind][0]
    if api_kind == "commands":
        from ganctl.plugin_index import RESERVED_COMMANDS

        if name in RESERVED_COMMANDS:
            raise ConfigError(f"{name!r} is one of ganctl's own commands; give the plugin's command another name "
                              f"(e.g. {name}-plus).")
        owner = host.commands[name][1] if name in host.commands else None
    else:
        owner = host.components[api_kind].get(name)
    if owner is not None or name in {p.name for p in host.plugins}:
        by = getattr(owner, "plugin", owner).label if owner is not None else "an installed plugin"
        raise ConfigError(f"the name {name!r} is already taken by {by} (see `ganctl plugins`); recipes could not tell "
                          "the two apart. Choose another NAME.")
    return module


def template_values(name: str, kind: str, module: str) -> dict[str, str]:
    """What the templates' ``$placeholders`` become."""
    _, kind_text, description, check = KINDS[kind]
    return {"name": name, "module": module, "kind_text": kind_text, "description": description,
            "cls": "".join(part.capitalize() for part in re.split(r"[-_]", name)),
            "key": name.replace("-", "_"), "check": f"ganctl.testing.{kind}s.{check}",
            "check_note": (f"`ganctl.testing.{kind}s.{check}` is the contract check of ganctl's test kit: run it "
                           "before every release (see ganctl's docs/plugins.md, \"Testing a plugin\")." if check else
                           "The tests run the command as a user does (Typer's CliRunner on `ganctl.cli.app`), with "
                           "the plugin loaded by the test kit's `plugin_host` fixture."),
            "ganctl_version": __version__}


def render(path: Path, values: dict[str, str]) -> str:
    try:
        return Template(path.read_text()).substitute(values)
    except (KeyError, ValueError) as exc:  # a broken template is a bug in ganctl, not the user's input
        raise RuntimeError(f"template {path} is broken: {exc}") from None


def write(destination: Path, values: dict[str, str], kind: str) -> list[Path]:
    """Render the templates of ``kind`` into ``destination`` (which must not exist), all or nothing."""
    values = {**values, "usage": render(TEMPLATES / kind / "usage.md.tmpl", values).strip()}
    files = {
        "pyproject.toml": TEMPLATES / "common" / "pyproject.toml.tmpl",
        "README.md": TEMPLATES / "common" / "README.md.tmpl",
        ".gitignore": TEMPLATES / "common" / "gitignore.tmpl",
        f"{values['module']}/__init__.py": TEMPLATES / kind / "__init__.py.tmpl",
        f"tests/test_{values['key']}.py": TEMPLATES / kind / "test.py.tmpl",
    }
    scratch = Path(tempfile.mkdtemp(prefix=f".{destination.name}-", dir=destination.parent))
    mask = os.umask(0)
    os.umask(mask)
    try:
        scratch.chmod(0o777 & ~mask)  # mkdtemp's folder is private; the distribution is not
        for relative, template in files.items():
            target = scratch / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(render(template, values))
        scratch.rename(destination)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return [destination / relative for relative in files]


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()
