"""The `classifier` model, its ONNX export, and the `classifier` feature extractor built on it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from ganctl import api
from ganctl.cli import app
from ganctl.engine import backends as ganctl_backend

from .conftest import ROOT, require_fashion_mnist

ganctl_backend.activate(ganctl_backend.resolve()[0])  # before Keras is first imported

CLASSIFIER = """\
name: tiny-classifier
seed: 3
data: {plugin: digits, split: train}
model: {plugin: classifier, filters: 8, features: 16, dropout: 0.1}
train: {epochs: 2, batch_size: 64, optimizer: {learning_rate: 3.0e-3, beta_1: 0.9}}
export: [onnx]
"""
GENERATOR = """\
name: tiny-generator
seed: 5
data: {plugin: digits, split: train}
model: {plugin: dcgan, latent_dim: 8, filters: 8, conditional: true}
train: {epochs: 1, batch_size: 32, steps_per_epoch: 3}
"""
_TRAINED: dict[str, Path] = {}


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GANCTL_CACHE_DIR", str(tmp_path / "cache"))


def trained(runner, write, tmp_path: Path, recipe: str = CLASSIFIER) -> Path:
    """A fresh copy of a run trained once per session for ``recipe``."""
    if recipe not in _TRAINED:
        name = recipe.split()[1]  # the recipe's name: one folder per recipe
        original = tmp_path / f"original-{name}"
        result = runner.invoke(app, ["train", str(write(f"{name}.yaml", recipe)), "--out", str(original), "-q"])
        assert result.exit_code == 0, result.output
        _TRAINED[recipe] = original
    copy = tmp_path / f"run-{len(list(tmp_path.glob('run-*')))}"
    shutil.copytree(_TRAINED[recipe], copy)
    return copy


def invoke_json(runner, *args: str) -> list[dict]:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# -- the model ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("shape", "blocks"), [((8, 8, 1), 2), ((28, 28, 1), 3), ((32, 32, 3), 3),
                                               ((5, 7, 1), 2), ((3, 3, 2), 1), ((1, 40, 1), 0)])
def test_the_network_sizes_itself_to_any_image(shape, blocks):
    from plugins.ganctl_models.classifier import Classifier

    spec = api.DataSpec(*shape, num_classes=4)
    model = Classifier(Classifier.Params(filters=4, features=6), spec)
    assert model.blocks == blocks
    images = np.random.default_rng(0).uniform(-1, 1, (3, *shape)).astype(np.float32)
    probabilities, features = (np.asarray(x) for x in model.classify(images))
    assert probabilities.shape == (3, 4) and features.shape == (3, 6)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert model.players == ("classifier",) and model.kind == "classifier"


@pytest.mark.parametrize("classes", [0, 1])
def test_data_without_two_classes_is_refused(classes):
    from plugins.ganctl_models.classifier import Classifier

    with pytest.raises(api.ConfigError, match="at least two classes"):
        Classifier(Classifier.Params(), api.DataSpec(8, 8, 1, num_classes=classes))


@pytest.mark.backends
def test_training_lowers_the_loss_on_every_backend(runner, write, tmp_path):
    """Two epochs on the digits' train split: the held-out accuracy is far above chance (10 %)."""
    run = trained(runner, write, tmp_path)
    info = json.loads((run / "run.json").read_text())
    assert info["kind"] == "classifier" and info["status"] == "completed"
    validation = info["validation"]
    assert validation["data"] == {"plugin": "digits", "split": "test", "limit": None} and validation["n"] == 360
    assert validation["accuracy"] > 0.6, validation
    assert set(validation) >= {"precision", "recall", "f1", "roc_auc", "cross_entropy"}
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    held_out = [r for r in records if r.get("type") == "validation"]
    assert [r["epoch"] for r in held_out] == [1, 2]
    epochs = [r for r in records if r.get("type") == "epoch"]
    assert epochs[-1]["classifier/loss"] < epochs[0]["classifier/loss"]
    assert not list((run / "samples").glob("*.png"))  # a classifier draws no samples


def test_the_report_of_a_classifier_shows_its_held_out_scores(runner, write, tmp_path):
    run = trained(runner, write, tmp_path)
    result = runner.invoke(app, ["report", str(run)])
    assert result.exit_code == 0, result.output
    page = (run / "report.html").read_text()
    assert "Held-out scores (classifiers)" in page and "Samples over time" not in page


# -- export and scoring ---------------------------------------------------------------------------


@pytest.mark.backends
def test_the_onnx_export_follows_the_classifier_contract_and_scores_like_keras(runner, write, tmp_path):
    import onnx

    run = trained(runner, write, tmp_path)
    path = run / "exports" / "classifier.onnx"
    model = onnx.load(str(path))
    assert [i.name for i in model.graph.input] == ["images"]
    assert [o.name for o in model.graph.output] == ["probabilities", "features"]
    dims = [[d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim] for o in model.graph.output]
    assert dims == [["batch", 10], ["batch", 16]]
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["ganctl.kind"] == "classifier" and meta["ganctl.num_classes"] == "10"
    exported = json.loads((run / "run.json").read_text())["exports"]["onnx"]
    assert exported["max_abs_diff"] <= 1e-4

    keras_scores = invoke_json(runner, "evaluate", str(run))[0]
    onnx_scores = invoke_json(runner, "evaluate", str(path))[0]
    assert keras_scores["protocol"]["engine"].startswith("keras")
    assert onnx_scores["protocol"]["engine"].startswith("onnxruntime")
    assert keras_scores["values"]["accuracy"] == pytest.approx(
        json.loads((run / "run.json").read_text())["validation"]["accuracy"])
    for key, value in keras_scores["values"].items():
        assert onnx_scores["values"][key] == pytest.approx(value, abs=1e-3), key
    logged = [json.loads(line) for line in (run / "evaluations.jsonl").read_text().splitlines()]
    assert logged[-1]["metric"] == "classification"


def test_a_classifier_trained_on_its_held_out_split_is_not_scored_on_it(runner, write, tmp_path):
    recipe = write("all.yaml", CLASSIFIER.replace("split: train", "split: all").replace(
        "epochs: 2,", "epochs: 1, steps_per_epoch: 2,").replace("export: [onnx]\n", ""))
    assert runner.invoke(app, ["train", str(recipe), "--out", str(tmp_path / "c"), "-q"]).exit_code == 0
    result = runner.invoke(app, ["evaluate", str(tmp_path / "c")])
    assert result.exit_code == 2
    assert "which leaves no held-out split it never saw" in result.stderr and "split: train" in result.stderr


def test_the_keras_exporter_writes_classifiers_too(runner, write, tmp_path):
    run = trained(runner, write, tmp_path)
    result = runner.invoke(app, ["export", str(run), "--format", "keras"])
    assert result.exit_code == 0, result.output
    assert (run / "exports" / "classifier.keras").is_file()
    listed = runner.invoke(app, ["export", "--list"])
    assert "classifiers)" in listed.stdout  # the table wraps the column


def test_scores_agree_with_scikit_learn():
    from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score

    from ganctl.evaluation.classification import scores

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 300)
    logits = rng.normal(size=(300, 4)) + 2.0 * np.eye(4)[labels]
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    found = scores(probabilities, labels)
    assert list(found)[0] == "accuracy"
    assert found["accuracy"] == pytest.approx(accuracy_score(labels, probabilities.argmax(1)))
    assert found["f1"] == pytest.approx(f1_score(labels, probabilities.argmax(1), average="macro"))
    assert found["roc_auc"] == pytest.approx(roc_auc_score(labels, probabilities, multi_class="ovr"))
    assert found["cross_entropy"] == pytest.approx(log_loss(labels, probabilities))


# -- the feature extractor ------------------------------------------------------------------------


def test_the_classifier_features_score_a_generator_with_a_floor(runner, write, tmp_path):
    classifier = trained(runner, write, tmp_path)
    generator = trained(runner, write, tmp_path, GENERATOR)
    features = f"{{plugin: classifier, model: {classifier}}}"
    results = invoke_json(runner, "evaluate", str(generator), "-m", "fid", "-m", "class-accuracy",
                          "-m", "inception-score", "--features", features, "--n", "200", "--floor")
    fid, accuracy, inception = results
    extractor = fid["protocol"]["extractor"]
    onnx_file = classifier / "exports" / "classifier.onnx"
    import hashlib

    assert extractor["name"] == "classifier"
    assert extractor["sha256"] == hashlib.sha256(onnx_file.read_bytes()).hexdigest()
    # an untrained generator is far from the data; real held-out images are close to it
    floor = fid["floor"]
    assert floor["protocol"]["real"] == {"plugin": "digits", "split": "train", "limit": None}
    assert fid["protocol"]["real"] == floor["protocol"]["real"]  # both against the same real images
    assert floor["protocol"]["generator"].startswith("real digits data (held-out test split)")
    assert 0 < floor["values"]["fid"] < fid["values"]["fid"]
    # real images with their true labels: the class accuracy of the floor is the classifier's accuracy
    trained_accuracy = json.loads((classifier / "run.json").read_text())["validation"]["accuracy"]
    assert accuracy["floor"]["values"]["class_accuracy"] == pytest.approx(trained_accuracy, abs=0.08)
    assert inception["values"]["inception_score"] >= 1.0
    # the table shows the same, with the ratio to the floor
    table = runner.invoke(app, ["evaluate", str(generator), "-m", "fid", "--features", features, "--n", "200",
                                "--floor"])
    assert table.exit_code == 0, table.output
    assert "x floor" in table.stdout and "held-out test split" in table.stdout


def test_the_floor_of_data_without_splits_compares_two_halves(runner, write, tmp_path):
    generator = trained(runner, write, tmp_path, GENERATOR)
    images = np.random.default_rng(0).integers(0, 17, (300, 8, 8)).astype(np.uint8)
    np.savez(tmp_path / "d.npz", images=images)
    data = write("d.yaml", f"name: d\ndata: {{plugin: npz, path: {tmp_path / 'd.npz'}}}\nmodel: {{plugin: gan}}\n")
    results = invoke_json(runner, "evaluate", str(generator), "-m", "fid", "--n", "150", "--floor",
                          "--data", str(data))
    floor = results[0]["floor"]["protocol"]
    assert floor["real"]["subset"] == "second half" and "first half" in floor["generator"]
    too_many = runner.invoke(app, ["evaluate", str(generator), "-m", "fid", "--n", "151", "--floor", "--data",
                                   str(data)])
    assert too_many.exit_code == 2 and "the floor cannot be measured at this n" in too_many.stderr


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing", "does not exist"),
        ("not exported", "without a classifier export"),
        ("a generator", "is not a classifier exported by ganctl"),
        ("bad yaml", "is not a valid YAML mapping"),
        ("no model", "model"),
    ],
)
def test_bad_classifier_features_are_clear_errors(runner, write, tmp_path, case, message):
    generator = trained(runner, write, tmp_path, GENERATOR)
    if case == "not exported":
        classifier = trained(runner, write, tmp_path)
        shutil.rmtree(classifier / "exports")
        features = f"{{plugin: classifier, model: {classifier}}}"
    elif case == "a generator":
        assert runner.invoke(app, ["export", str(generator), "--onnx"]).exit_code == 0
        features = f"{{plugin: classifier, model: {generator / 'exports' / 'generator.onnx'}}}"
    else:
        features = {"missing": f"{{plugin: classifier, model: {tmp_path / 'nope'}}}",
                    "bad yaml": "{plugin: classifier, model: [}", "no model": "classifier"}[case]
    result = runner.invoke(app, ["evaluate", str(generator), "-m", "fid", "--n", "50", "--features", features])
    assert result.exit_code == 2, result.output
    assert message in result.stderr and "Traceback" not in result.output


def test_a_classifier_of_other_images_is_refused(runner, write, tmp_path):
    classifier = trained(runner, write, tmp_path)
    images = np.zeros((60, 12, 12), np.uint8)
    np.savez(tmp_path / "big.npz", images=images)
    recipe = write("g.yaml", f"name: g\ndata: {{plugin: npz, path: {tmp_path / 'big.npz'}}}\n"
                             "model: {plugin: gan, latent_dim: 4, hidden: [8]}\n"
                             "train: {epochs: 1, batch_size: 20, steps_per_epoch: 1}\n")
    assert runner.invoke(app, ["train", str(recipe), "--out", str(tmp_path / "g"), "-q"]).exit_code == 0
    result = runner.invoke(app, ["evaluate", str(tmp_path / "g"), "-m", "fid", "--n", "20", "--features",
                                 f"{{plugin: classifier, model: {classifier}}}"])
    assert result.exit_code == 2
    assert "was trained on 8x8x1 images, but these are 12x12x1" in result.stderr


def test_a_recipe_tracks_fid_on_classifier_features_and_keeps_the_best(runner, write, tmp_path):
    classifier = trained(runner, write, tmp_path)
    recipe = write("g.yaml", f"""\
name: tracked
seed: 5
data: {{plugin: digits, split: all}}
model: {{plugin: dcgan, latent_dim: 8, filters: 8, conditional: true}}
train: {{epochs: 2, batch_size: 32, steps_per_epoch: 3, keep_best: {{metric: fid, mode: min}}}}
metrics: [{{plugin: fid, every: 1, n: 100, features: {{plugin: classifier, model: {classifier}}}}}]
""")
    result = runner.invoke(app, ["train", str(recipe), "--out", str(tmp_path / "g"), "-q"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (tmp_path / "g" / "metrics.jsonl").read_text().splitlines()]
    evaluations = [r for r in records if r.get("type") == "eval"]
    assert [r["epoch"] for r in evaluations] == [1, 2] and all(r["fid/fid"] > 0 for r in evaluations)
    best = json.loads((tmp_path / "g" / "run.json").read_text())["best"]
    assert best["value"] == min(r["fid/fid"] for r in evaluations)


def test_a_classifier_run_resumes_to_train_longer(runner, write, tmp_path):
    recipe = write("c.yaml", CLASSIFIER.replace("epochs: 2", "epochs: 1"))
    run = tmp_path / "c"
    assert runner.invoke(app, ["train", str(recipe), "--out", str(run), "-q"]).exit_code == 0
    result = runner.invoke(app, ["train", "--resume", str(run), "--set", "train.epochs=2", "-q"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records if r.get("type") == "validation"] == [1, 2]
    assert json.loads((run / "run.json").read_text())["epoch"] == 2


# -- what a classifier is not --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (["generate", "{run}", "--out", "{tmp}/s.png"], "is a classifier: it labels images and makes none"),
        (["generate", "{run}/exports/classifier.onnx", "--out", "{tmp}/s.png"], "is a classifier"),
        (["evaluate", "{run}", "-m", "fid"], "--metric, --features, --floor and --n do not apply"),
        (["export", "{run}", "--format", "tf_saved_model"], "this model is a classifier"),
        (["bench", "{run}"], "is a classifier"),
    ],
)
def test_generator_commands_refuse_a_classifier_clearly(runner, write, tmp_path, command, message):
    run = trained(runner, write, tmp_path)
    args = [part.format(run=run, tmp=tmp_path) for part in command]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and "Traceback" not in result.output


def test_metrics_in_a_classifier_recipe_are_refused_before_training(runner, write, tmp_path):
    recipe = write("c.yaml", CLASSIFIER + "metrics: [fid]\n")
    result = runner.invoke(app, ["train", str(recipe), "--out", str(tmp_path / "c")])
    assert result.exit_code == 2
    assert "metrics compare generated images with real ones" in result.stderr
    assert not (tmp_path / "c").exists()


def test_unlabelled_data_is_refused_before_training(runner, write, tmp_path):
    np.savez(tmp_path / "u.npz", images=np.zeros((40, 8, 8), np.uint8))
    recipe = write("u.yaml", f"name: u\ndata: {{plugin: npz, path: {tmp_path / 'u.npz'}}}\n"
                             "model: {plugin: classifier}\n")
    result = runner.invoke(app, ["train", str(recipe), "--out", str(tmp_path / "u")])
    assert result.exit_code == 2
    assert "the data has no labels" in result.stderr and not (tmp_path / "u").exists()


@pytest.mark.slow
@pytest.mark.timeout(1800)  # about 8 minutes of training on 2 cores, over the suite's 10-minute limit when busy
def test_the_fashion_mnist_classifier_recipe_reaches_90_percent(tmp_path):
    """The shipped recipe, trained in full: >= 90 % accuracy on Fashion-MNIST's 10,000 test images."""
    import os
    import subprocess
    import sys

    require_fashion_mnist()
    run = tmp_path / "fashion"
    env = {**os.environ, "GANCTL_LOAD_PLUGINS": "", "GANCTL_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-m", "ganctl", "train", "recipes/fashion-mnist-classifier.yaml",
                           "--out", str(run), "-q"], capture_output=True, text=True, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    validation = json.loads((run / "run.json").read_text())["validation"]
    assert validation["n"] == 10_000 and validation["data"]["split"] == "test"
    assert validation["accuracy"] >= 0.90, validation
    scored = subprocess.run([sys.executable, "-m", "ganctl", "evaluate", str(run / "exports" / "classifier.onnx"),
                             "--json"], capture_output=True, text=True, env=env, cwd=ROOT)
    assert scored.returncode == 0, scored.stderr
    assert json.loads(scored.stdout)[0]["values"]["accuracy"] == pytest.approx(validation["accuracy"], abs=1e-3)
