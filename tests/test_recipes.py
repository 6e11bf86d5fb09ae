"""Every shipped recipe validates and trains; the quickstart makes recognisable digits."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import yaml

from ganctl.cli import app
from ganctl.engine.backends import resolve

from .conftest import ROOT, require_fashion_mnist

RECIPES = sorted((ROOT / "recipes").glob("*.yaml"))
HEAVY = {"diabetes-tvae.yaml"}
"""Recipes whose few steps still cost most of a minute (ten mixture-encoded columns, read twice, and
four metrics of tables after training): trained in the slow step."""
TRAINED = [pytest.param(p, marks=pytest.mark.slow) if p.name in HEAVY else p for p in RECIPES]


def test_there_are_recipes():
    assert {p.name for p in RECIPES} >= {"quickstart.yaml", "fashion-mnist-dcgan.yaml", "digits-classifier.yaml",
                                         "fashion-mnist-classifier.yaml"}


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_recipe_validates(runner, recipe):
    result = runner.invoke(app, ["recipe", "validate", str(recipe)])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_recipe_trains_on_the_train_split(runner, recipe):
    """So that the test split stays unseen: it is the held-out data of --floor and of a classifier's scores."""
    result = runner.invoke(app, ["recipe", "show", str(recipe), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["data"]["split"] == "train"


@pytest.mark.parametrize("recipe", TRAINED, ids=lambda p: p.name)
def test_recipe_trains_a_few_steps(runner, recipe, tmp_path):
    if "fashion-mnist" in recipe.name:
        require_fashion_mnist()
    # on the backend under test, also for a recipe that names its own (its backend: is a default)
    short = ["--set", "train.epochs=1", "--set", "train.steps_per_epoch=3", "--backend", resolve()[0]]
    source = (yaml.safe_load(recipe.read_text()).get("init") or {}).get("from")
    if source:  # a fine-tuning recipe: first a few steps of the run it starts from, runs/NAME of recipes/NAME.yaml
        pre = ROOT / "recipes" / f"{source.rstrip('/').rsplit('/', 1)[-1]}.yaml"
        made = runner.invoke(app, ["train", str(pre), "--out", str(tmp_path / "pre"), "-q", *short])
        assert made.exit_code == 0, made.output
        short += ["--set", f"init.from={tmp_path / 'pre'}"]
    result = runner.invoke(app, ["train", str(recipe), "--out", str(tmp_path / "run"), "-q", *short])
    assert result.exit_code == 0, result.output
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    kind, table = info["kind"], info["data_spec"].get("kind") == "table"
    final = tmp_path / "run" / "samples" / ("final.csv" if table else "final.png")  # a table's samples are rows
    assert final.exists() == (kind == "generator")
    exports = yaml.safe_load(recipe.read_text()).get("export") or []
    written = sorted(p.name for p in (tmp_path / "run" / "exports").glob(f"{kind}*")) if exports else []
    assert len(written) == len(exports), written


def _ganctl(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "GANCTL_LOAD_PLUGINS": ""}
    return subprocess.run([sys.executable, "-m", "ganctl", *args], capture_output=True, text=True, env=env, cwd=ROOT)


def test_quickstart_makes_digits_a_classifier_recognises(tmp_path):
    """The README's first command, checked objectively: a logistic-regression digit classifier
    trained on the real digits must find all ten digits among the samples (none under 3 %) and
    be confident about them (mean top probability >= 0.75; uniform noise scores 0.62)."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    run = tmp_path / "quickstart"
    trained = _ganctl("train", "recipes/quickstart.yaml", "--out", str(run), "-q")
    assert trained.returncode == 0, trained.stderr
    assert (run / "samples" / "final.png").exists()
    sampled = _ganctl("generate", str(run), "-n", "1000", "--seed", "1", "--out", str(tmp_path / "s.npz"))
    assert sampled.returncode == 0, sampled.stderr
    with np.load(tmp_path / "s.npz") as data:
        images = data["images"].reshape(1000, -1)
        labels = data["labels"]  # the quickstart is class-conditional: the classes in turn

    digits = load_digits()
    classifier = LogisticRegression(max_iter=2000).fit(digits.images.reshape(len(digits.images), -1) / 8.0 - 1.0,
                                                      digits.target)
    probabilities = classifier.predict_proba(images)
    shares = np.bincount(probabilities.argmax(axis=1), minlength=10) / len(images)
    confidence = probabilities.max(axis=1).mean()
    agreement = (probabilities.argmax(axis=1) == labels).mean()
    print(f"quickstart: confidence {confidence:.3f}, agreement with the asked label {agreement:.3f}, "
          f"class shares {np.round(shares, 3).tolist()}")
    assert shares.min() >= 0.03, shares
    assert confidence >= 0.75, confidence
    assert agreement >= 0.6, agreement  # the generator draws the digit it is asked for
