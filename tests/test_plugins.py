"""Plugin discovery, isolation of broken plugins, and `ganctl plugins`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ganctl import api
from ganctl.cli import app
from ganctl.errors import PluginError
from ganctl.plugins import PluginHost, PluginInfo, set_host

from .conftest import ROOT, ToyPlugin, make_host

BUILTIN_DATASETS = ["csv", "digits", "idx", "image-folder", "npz", "parquet"]


def test_builtins_register_through_entry_points():
    host = make_host()
    builtin = [p for p in host.plugins if p.builtin]
    assert builtin and all(p.distribution == "ganctl" and p.status == "loaded" for p in builtin)
    assert host.names("datasets") == BUILTIN_DATASETS
    assert host.get("datasets", "digits").plugin.name == "ganctl_datasets"


def test_fake_plugin_registers_every_kind(host):
    info = next(p for p in host.plugins if p.name == "toy")
    assert info.status == "loaded"
    assert info.registered == {"models": ["toy"], "datasets": [], "metrics": ["toy-metric"],
                               "exporters": ["toy-export"], "feature_extractors": ["toy-features"]}
    assert host.get("models", "toy").description.startswith("A toy model")


def test_unknown_name_suggests_the_closest():
    host = make_host()
    with pytest.raises(PluginError) as err:
        host.get("datasets", "digit")
    assert "Did you mean 'digits'?" in str(err.value)
    assert "idx" in str(err.value)


class Raising:
    @staticmethod
    @api.hookimpl
    def register_datasets(register):
        raise RuntimeError("boom in registration")


class BadFactory:
    @staticmethod
    @api.hookimpl
    def register_datasets(register):
        register("fine", ToyDataset)
        register("nope", object())  # no Params: the whole plugin is refused


class UnknownHook:
    @staticmethod
    @api.hookimpl
    def register_widgets(register):
        register("w", object)


class BadName:
    @staticmethod
    @api.hookimpl
    def register_models(register):
        register("Bad Name", ToyPlugin)


class ToyDataset(api.ArrayDataset):
    """Four tiny images."""

    class Params(api.Params):
        pass

    def __init__(self, params):
        import numpy as np

        super().__init__(np.zeros((4, 2, 2, 1), np.uint8))


@pytest.mark.parametrize(
    "plugin, expected",
    [
        (Raising, "register_datasets failed: RuntimeError: boom in registration"),
        (BadFactory, "`Params` attribute"),
        (UnknownHook, "unknown hook(s) register_widgets"),
        (BadName, "'Bad Name' is invalid"),
    ],
)
def test_broken_plugin_is_isolated(plugin, expected):
    host = make_host((plugin, "bad"), (ToyPlugin, "toy"))
    bad = next(p for p in host.plugins if p.name == "bad")
    assert bad.status == "failed" and expected in bad.error
    assert all(not names for names in bad.registered.values())
    assert "fine" not in host.names("datasets")  # nothing of a failed plugin is kept
    assert "toy" in host.names("models")  # the others still load
    assert host.names("datasets") == BUILTIN_DATASETS


class Duplicate:
    @staticmethod
    @api.hookimpl
    def register_datasets(register):
        register("digits", ToyDataset)


def test_duplicate_name_names_both_distributions():
    host = make_host((Duplicate, "dup"))
    dup = next(p for p in host.plugins if p.name == "dup")
    assert dup.status == "failed"
    assert "'digits' is already registered by plugin 'ganctl_datasets' (ganctl 0.1.0)" in dup.error
    assert "ganctl-dup 1.0 registers it too" in dup.error
    assert host.get("datasets", "digits").plugin.name == "ganctl_datasets"


def test_strict_mode_makes_failures_fatal():
    host = make_host((Raising, "bad"))
    host.check_strict(env={})
    with pytest.raises(PluginError, match="GANCTL_STRICT_PLUGINS"):
        host.check_strict(env={"GANCTL_STRICT_PLUGINS": "1"})


def test_cli_warns_once_and_keeps_working(runner):
    set_host(make_host((Raising, "bad")))
    result = runner.invoke(app, ["plugins"])
    assert result.exit_code == 0
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "plugin 'bad'" in warnings[0]
    assert "failed" in result.stdout and "digits" in result.stdout


def test_cli_strict_exits_1(runner, monkeypatch):
    set_host(make_host((Raising, "bad")))
    monkeypatch.setenv("GANCTL_STRICT_PLUGINS", "1")
    result = runner.invoke(app, ["plugins"])
    assert result.exit_code == 1
    assert "error: GANCTL_STRICT_PLUGINS is set" in result.stderr
    assert "Traceback" not in result.output


def test_plugins_json_schema(runner, host):
    result = runner.invoke(app, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    for row in rows:
        assert {"name", "distribution", "version", "models", "datasets", "metrics", "exporters", "error"} <= set(row)
    toy = next(r for r in rows if r["name"] == "toy")
    assert toy["models"] == ["toy"] and toy["error"] is None


def test_plugins_table_lists_names(runner, host, monkeypatch):
    monkeypatch.setenv("COLUMNS", "160")
    result = runner.invoke(app, ["plugins"])
    assert result.exit_code == 0
    for text in ("ganctl_datasets", "digits", "toy", "ganctl-toy", "loaded"):
        assert text in result.stdout


def test_same_plugin_name_twice_is_refused():
    host = PluginHost()
    host.add(ToyPlugin, PluginInfo("toy", "ganctl-toy", "1.0"))
    second = host.add(Duplicate, PluginInfo("toy", "ganctl-other", "2.0"))
    assert second.status == "failed" and "already loaded under the name 'toy'" in second.error


# -- a real, separately installed distribution ---------------------------------------------------


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """ganctl-hello and ganctl-broken, built and installed with pip into a private folder."""
    target = tmp_path_factory.mktemp("site")
    sources = tmp_path_factory.mktemp("sources")  # build from a copy: keep the tree clean
    shutil.copytree(ROOT / "tests" / "plugin_dists", sources, dirs_exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
           "--no-index", "--target", str(target), str(sources / "ganctl-hello"), str(sources / "ganctl-broken")]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=target)
    assert done.returncode == 0, done.stderr[-2000:]
    return target


def _ganctl(site: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("GANCTL_")}
    environ.update(PYTHONPATH=str(site), **env)
    return subprocess.run([sys.executable, "-m", "ganctl", *args], capture_output=True, text=True,
                          env=environ)


def test_installed_distribution_is_discovered(site):
    result = _ganctl(site, "plugins", "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    hello = rows["hello"]
    assert (hello["distribution"], hello["version"], hello["status"]) == ("ganctl-hello", "0.3.1", "loaded")
    assert hello["datasets"] == ["hello-squares"]
    broken = rows["broken"]
    assert broken["status"] == "failed" and "ganctl_dependency_that_does_not_exist" in broken["error"]
    assert result.stderr.count("warning:") == 1 and "plugin 'broken'" in result.stderr


def test_installed_plugin_is_usable(site, tmp_path):
    result = _ganctl(site, "data", "info", "hello-squares", "--set", "count=5", "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["examples"] == 5 and info["shape"] == [16, 16, 1]


def test_load_plugins_filter(site):
    only_hello = json.loads(_ganctl(site, "plugins", "--json", GANCTL_LOAD_PLUGINS="hello").stdout)
    status = {row["name"]: row["status"] for row in only_hello}
    assert status["hello"] == "loaded" and status["broken"] == "skipped"
    assert status["ganctl_datasets"] == "loaded"  # built-ins always load
    none = _ganctl(site, "plugins", "--json", GANCTL_LOAD_PLUGINS="")
    status = {row["name"]: row["status"] for row in json.loads(none.stdout)}
    assert status["hello"] == status["broken"] == "skipped" and "warning" not in none.stderr


def test_strict_env_with_real_broken_plugin(site):
    result = _ganctl(site, "recipe", "schema", GANCTL_STRICT_PLUGINS="1")
    assert result.returncode == 1
    assert "ganctl-broken" in result.stderr and "Traceback" not in result.stderr
    assert _ganctl(site, "--help", GANCTL_STRICT_PLUGINS="1").returncode == 0


# -- defaults that plugins declare (API 1.5) ------------------------------------------------------


class Spread(api.Metric):
    """How spread out the generated features are: a third party's metric that declares itself a default."""

    default = True

    class Params(api.Params):
        pass

    def compute(self, real, fake, *, fake_labels, seed):
        return {"spread": float(fake.features.std())}


class PlainSpread(Spread):
    """The same metric, not a default."""

    default = False


class DefaultMetric:
    @staticmethod
    @api.hookimpl
    def register_metrics(register):
        register("spread", Spread)


def _generator(tmp_path: Path) -> Path:
    from . import onnx_models

    return onnx_models.generator(tmp_path / "g.onnx", shape=(8, 8, 1))  # the size of the digits


def _host_without_defaults() -> PluginHost:
    """Datasets, one metric and one extractor, none of them declared a default."""
    import ganctl_datasets
    from ganctl_features.pixels import Pixels

    class PlainPixels(Pixels):
        """Raw pixels, not a default."""

        default = False

    class Plain:
        @staticmethod
        @api.hookimpl
        def register_metrics(register):
            register("spread", PlainSpread)

        @staticmethod
        @api.hookimpl
        def register_feature_extractors(register):
            register("plain-pixels", PlainPixels)

    host = PluginHost()
    host.add(ganctl_datasets, PluginInfo("ganctl_datasets", "ganctl", "0"))
    host.add(Plain, PluginInfo("plain", "ganctl-plain", "1.0"))
    return host


def test_the_defaults_are_what_plugins_declare_in_registration_order():
    host = make_host((DefaultMetric, "spread"))
    assert host.defaults("metrics", "name one") == ["fid", "kid", "prdc", "c2st", "spread"]
    assert host.defaults("feature_extractors", "name one") == ["pixels"]
    assert host.defaults("exporters", "name one") == ["onnx"]
    assert host.declaring("feature_extractors", "reads_classifier_exports") == ["classifier"]
    with pytest.raises(PluginError, match="no metric plugin declares itself the default .*; name one with --metric"):
        _host_without_defaults().defaults("metrics", "name one with --metric")


def test_a_third_party_default_metric_is_computed_when_none_is_named(runner, tmp_path, monkeypatch):
    monkeypatch.setenv("GANCTL_CACHE_DIR", "")  # no cache, so no default classifier: the declared default extractor
    set_host(make_host((DefaultMetric, "spread")))
    result = runner.invoke(app, ["evaluate", str(_generator(tmp_path)), "--data", "digits", "--n", "100", "--json"])
    assert result.exit_code == 0, result.output
    results = json.loads(result.stdout)
    assert [r["metric"] for r in results] == ["fid", "kid", "prdc", "c2st", "spread"]
    assert results[-1]["protocol"]["extractor"]["name"] == "pixels"  # the declared default extractor


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "no metric plugin declares itself the default (default = True; installed: spread)"),
        (["-m", "spread"], "no feature extractor plugin declares itself the default"),
    ],
)
def test_without_a_declared_default_the_error_says_how_to_name_one(runner, tmp_path, monkeypatch, args, message):
    monkeypatch.setenv("GANCTL_CACHE_DIR", "")  # no cache, so no default classifier: the declared default extractor
    set_host(_host_without_defaults())
    source = str(_generator(tmp_path))
    result = runner.invoke(app, ["evaluate", source, "--data", "digits", "--n", "50", *args])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert message in result.stderr and ("--metric" if not args else "--features") in result.stderr
    named = runner.invoke(app, ["evaluate", source, "--data", "digits", "--n", "50", "-m", "spread",
                                "--features", "plain-pixels", "--json"])
    assert named.exit_code == 0, named.output


def test_the_onnx_exporter_is_the_one_that_writes_onnx_files_a_default_first():
    from ganctl.exporting import onnx_exporter

    class OtherOnnx(api.Exporter):
        """Another ONNX writer, registered after ganctl's."""

        suffix = ".onnx"

        class Params(api.Params):
            pass

        def export(self, source, path):
            raise NotImplementedError

        def load(self, path):
            raise NotImplementedError

    class Other:
        @staticmethod
        @api.hookimpl
        def register_exporters(register):
            register("other-onnx", OtherOnnx)

    assert onnx_exporter(make_host((Other, "other"))) == "onnx"
    alone = PluginHost()
    alone.add(Other, PluginInfo("other", "ganctl-other", "1.0"))
    assert onnx_exporter(alone) == "other-onnx"
    with pytest.raises(PluginError, match="no installed exporter plugin writes ONNX files"):
        onnx_exporter(PluginHost())


def test_the_core_names_no_first_party_plugin():
    """Plugins declare the defaults (API 1.5), so no name that ganctl's own metric, feature-extractor
    or exporter plugins register appears in the core's code (docstrings and prose in messages
    aside), and no ``{"plugin": NAME}`` is written there. "classifier" and "keras" are skipped as
    bare strings: they are also a model kind and a library."""
    import ast

    host = make_host()
    names = {name for kind in ("metrics", "feature_extractors", "exporters")
             for name, component in host.components[kind].items() if component.plugin.builtin}
    assert {"fid", "kid", "prdc", "c2st", "pixels", "classifier", "onnx"} <= names
    found = []
    for path in sorted((ROOT / "ganctl").rglob("*.py")):
        tree = ast.parse(path.read_text())
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                      and node.body and isinstance(node.body[0], ast.Expr)}
        where = path.relative_to(ROOT)
        for node in ast.walk(tree):
            if isinstance(node, ast.Dict):
                found += [f"{where}:{node.lineno}: {{'plugin': {value.value!r}}}"
                          for key, value in zip(node.keys, node.values, strict=True)
                          if isinstance(key, ast.Constant) and key.value == "plugin" and isinstance(value, ast.Constant)]
            elif (isinstance(node, ast.Constant) and node.value in names - {"classifier", "keras"}
                  and id(node) not in docstrings):
                found.append(f"{where}:{node.lineno}: {node.value!r}")
    assert found == [], "read these from the plugins' declarations (PluginHost.defaults, .declaring)"
