"""Evaluation that means something by default (issue 17): the data's classifier, trained once and
cached; each value next to its floor with a verdict; the same defaults for a recipe's metrics."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ganctl.cli import app
from ganctl.evaluation import default_features
from ganctl.evaluation.verdict import judge

RECIPE = """\
name: tiny
seed: 5
data: {plugin: digits, limit: 400}
model: {plugin: dcgan, latent_dim: 8, filters: 8, conditional: true}
train: {epochs: 1, batch_size: 32, steps_per_epoch: 3}
"""
_TRAINED: dict[str, Path] = {}


@pytest.fixture(autouse=True)
def _tiny_classifier(tmp_path, monkeypatch):
    """A private cache, and default classifiers of a couple of dozen steps (the real ones take ~1,350)."""
    monkeypatch.setenv("GANCTL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(default_features, "STEPS", 12)


def trained(runner, write, tmp_path: Path) -> Path:
    if "run" not in _TRAINED:
        original = tmp_path / "original"
        result = runner.invoke(app, ["train", str(write("r.yaml", RECIPE)), "--out", str(original), "-q"])
        assert result.exit_code == 0, result.output
        _TRAINED["run"] = original
    shutil.copytree(_TRAINED["run"], tmp_path / "run")
    return tmp_path / "run"


def classifiers(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "cache" / "classifiers"
    return sorted(folder.iterdir()) if folder.is_dir() else []


@pytest.mark.backends
def test_evaluate_with_no_options_trains_the_data_classifier_once_then_reads_it_from_the_cache(
        runner, write, tmp_path):
    run = trained(runner, write, tmp_path)
    first = runner.invoke(app, ["evaluate", str(run), "-m", "fid", "-m", "c2st", "--json"])
    assert first.exit_code == 0, first.output
    assert "training the default classifier of this data" in first.stderr  # visible progress, not on stdout
    assert "epoch 2/2 done" in first.stderr and "held-out accuracy" in first.stderr
    results = json.loads(first.stdout)
    [cached] = classifiers(tmp_path)
    assert (cached / "exports" / "classifier.onnx").is_file() and (cached / "run.json").is_file()
    assert not [p for p in cached.parent.iterdir() if p.name.startswith(".")]  # no scratch folder left
    for result in results:
        protocol = result["protocol"]
        assert protocol["extractor"]["name"] == "classifier"
        assert protocol["extractor"]["file"] == str(cached / "exports" / "classifier.onnx")
        assert protocol["features_source"]["source"] == "trained"
        assert str(cached) in protocol["features_source"]["detail"]
        # the floor without asking: the digits have a held-out test split the model never saw
        floor = result["floor"]
        assert floor["protocol"]["generator"] == "real digits data (held-out test split)"
        assert floor["protocol"]["extractor"] == protocol["extractor"]
        assert protocol["n_real"] == floor["protocol"]["n_real"] == 360
        assert result["verdict"]["verdict"] in ("at the floor", "very close", "close", "far", "very far")
    fid = results[0]
    assert fid["verdict"]["x_floor"] == pytest.approx(fid["values"]["fid"] / fid["floor"]["values"]["fid"])
    assert fid["verdict"]["line"].startswith(f"fid {fid['values']['fid']:.4g}: ")
    assert "x the floor of real images" in fid["verdict"]["line"]

    again = runner.invoke(app, ["evaluate", str(run), "-m", "fid", "-m", "c2st"], env={"COLUMNS": "200"})
    assert again.exit_code == 0, again.output
    assert "training the default classifier" not in again.stderr
    assert classifiers(tmp_path) == [cached]
    assert f"features: the default classifier of this data, cached at {cached}" in again.stdout
    assert "x the floor of real images" in again.stdout and "floor of real images (" in again.stdout
    logged = [json.loads(line) for line in (run / "evaluations.jsonl").read_text().splitlines()]
    assert [r["protocol"]["features_source"]["source"] for r in logged] == ["trained", "trained", "cached", "cached"]
    assert logged[2]["values"] == results[0]["values"]  # the cached classifier gives the same numbers


def test_features_asked_for_are_used_and_no_classifier_is_trained(runner, write, tmp_path):
    run = trained(runner, write, tmp_path)
    result = runner.invoke(app, ["evaluate", str(run), "-m", "fid", "--features", "pixels", "--no-floor", "--json"])
    assert result.exit_code == 0, result.output
    [fid] = json.loads(result.stdout)
    assert fid["protocol"]["extractor"]["name"] == "pixels" and "floor" not in fid and "verdict" not in fid
    assert fid["protocol"]["features_source"] == {"source": "asked",
                                                  "detail": "features: asked for with --features"}
    assert classifiers(tmp_path) == []


def test_a_dataset_plugin_may_declare_its_default_features(runner, write, tmp_path, monkeypatch):
    from ganctl_datasets.digits import Digits

    monkeypatch.setattr(Digits, "default_features", {"plugin": "pixels", "pool": 2}, raising=False)
    run = trained(runner, write, tmp_path)
    result = runner.invoke(app, ["evaluate", str(run), "-m", "fid", "--json"])
    assert result.exit_code == 0, result.output
    [fid] = json.loads(result.stdout)
    assert fid["protocol"]["extractor"]["name"] == "pixels" and '"pool": 2' in fid["protocol"]["extractor"]["params"]
    assert fid["protocol"]["features_source"]["source"] == "declared"
    assert "which the digits dataset plugin declares" in fid["protocol"]["features_source"]["detail"]
    assert classifiers(tmp_path) == []


def test_without_a_cache_the_default_falls_back_to_pixels_and_says_why(runner, write, tmp_path, monkeypatch):
    run = trained(runner, write, tmp_path)
    monkeypatch.setenv("GANCTL_CACHE_DIR", "")
    result = runner.invoke(app, ["evaluate", str(run), "-m", "fid", "--no-floor"])
    assert result.exit_code == 0, result.output
    assert "features: pixels, because ganctl's cache is off (GANCTL_CACHE_DIR is empty)" in result.stdout


def test_the_classifier_cache_is_keyed_by_the_data_and_its_fingerprint(monkeypatch):
    monkeypatch.setattr(default_features, "STEPS", 1350)  # the shipped setting, not the tests' tiny one
    section = {"plugin": "digits", "split": "train", "limit": 400}
    fingerprint = {"examples": 400, "shape": [8, 8, 1], "classes": 10, "sha256": "ab"}
    key = default_features.cache_key(section, fingerprint, "classifier")
    assert key == default_features.cache_key(dict(reversed(section.items())), fingerprint, "classifier")
    assert key != default_features.cache_key({**section, "limit": 300}, fingerprint, "classifier")
    assert key != default_features.cache_key(section, {**fingerprint, "sha256": "cd"}, "classifier")
    recipe = default_features.classifier_recipe(section, "classifier", 1437, ["onnx"])
    assert recipe["train"]["epochs"] == 30 and recipe["train"]["batch_size"] == 32  # the digits recipe's
    assert default_features.classifier_recipe(section, "classifier", 60000, ["onnx"])["train"]["epochs"] == 3


def test_recipe_metrics_without_features_use_the_default_and_the_run_records_it(runner, write, tmp_path):
    recipe = write("m.yaml", RECIPE + "metrics: [{plugin: fid, n: 50}]\n")
    result = runner.invoke(app, ["train", str(recipe), "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert "metrics: features: the default classifier of this data, trained now" in result.stdout
    run = tmp_path / "run"
    info = json.loads((run / "run.json").read_text())
    [cached] = classifiers(tmp_path)
    assert info["default_features"]["features"] == {"plugin": "classifier", "model": str(cached)}
    resolved = (run / "recipe.yaml").read_text()
    assert "features: null" in resolved  # the resolved recipe (and its hash) is what it was
    evals = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [e["fid/fid"] > 0 for e in evals if e.get("type") == "eval"] == [True]
    # the same data, the same identity: ganctl evaluate finds the classifier training made
    result = runner.invoke(app, ["evaluate", str(run), "-m", "fid", "--no-floor", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["protocol"]["features_source"]["source"] == "cached"
    assert classifiers(tmp_path) == [cached]


@pytest.mark.parametrize(
    ("value", "floor", "distance", "lower", "word"),
    [
        (5.1, 0.91, True, True, "close"),  # 5.6x
        (1.2, 1.0, True, True, "at the floor"),
        (2.5, 1.0, True, True, "very close"),
        (25.0, 1.0, True, True, "far"),
        (400.0, 1.0, True, True, "very far"),
        (-0.01, 0.02, True, True, "at the floor"),  # an unbiased estimate below 0 reads as 0
        (0.2, -0.4, True, True, "at the floor"),  # within the floor's own scatter
        (0.63, 0.5, False, True, "close"),  # C2ST ROC-AUC
        (0.56, 0.5, False, True, "very close"),
        (0.99, 0.5, False, True, "very far"),
        (0.76, 0.96, False, False, "close"),  # coverage, higher is better
        (0.97, 0.96, False, False, "at the floor"),
        (8.0, 10.0, False, False, "close"),  # a score outside [0, 1]: relative to the floor
    ],
)
def test_verdicts_follow_the_documented_thresholds(value, floor, distance, lower, word):
    found = judge("x", value, floor, distance=distance, lower_is_better=lower)
    assert found.word == word, found.line
    assert found.line.startswith(f"x {value:.4g}: ") and found.line.endswith(f": {word}")


@pytest.mark.slow
def test_a_default_quickstart_run_meets_the_target_with_no_options(runner, tmp_path, monkeypatch):
    """Issue 17's target: `ganctl train recipes/quickstart.yaml`, then `ganctl evaluate RUN --json`
    with no options: C2ST ROC-AUC <= 0.85 and FID within 10x its floor, extractor and floor in
    the protocol (the default classifier trained as shipped)."""
    monkeypatch.setattr(default_features, "STEPS", 1350)
    root = Path(__file__).resolve().parent.parent
    run = tmp_path / "quickstart"
    trained_run = runner.invoke(app, ["train", str(root / "recipes" / "quickstart.yaml"), "--out", str(run), "-q"])
    assert trained_run.exit_code == 0, trained_run.output
    result = runner.invoke(app, ["evaluate", str(run), "--json"])
    assert result.exit_code == 0, result.output
    found = {r["metric"]: r for r in json.loads(result.stdout)}
    assert list(found) == ["fid", "kid", "prdc", "c2st"]
    for record in found.values():
        assert record["protocol"]["extractor"]["name"] == "classifier"
        assert record["protocol"]["features_source"]["source"] == "trained"
        assert record["floor"]["protocol"]["extractor"] == record["protocol"]["extractor"]
    assert found["c2st"]["values"]["roc_auc"] <= 0.85
    assert found["fid"]["values"]["fid"] <= 10 * found["fid"]["floor"]["values"]["fid"]
    assert found["fid"]["verdict"]["verdict"] in ("at the floor", "very close", "close")
