"""`ganctl evaluate`: metrics with their protocol, from a run or its ONNX export; cache; bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from ganctl import api
from ganctl.cli import app
from ganctl.plugins import set_host

from .conftest import make_host

RECIPE = """\
name: tiny
seed: 5
data: {{plugin: digits, limit: 400}}
model: {model}
train: {{epochs: 1, batch_size: 32, steps_per_epoch: 3}}
"""
CONDITIONAL = "{plugin: dcgan, latent_dim: 8, filters: 8, conditional: true}"
UNCONDITIONAL = "{plugin: gan, latent_dim: 6, hidden: [16]}"
_TRAINED: dict[str, Path] = {}


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GANCTL_CACHE_DIR", str(tmp_path / "cache"))


def trained(runner, write, tmp_path: Path, model: str = CONDITIONAL) -> Path:
    if model not in _TRAINED:
        recipe = write("r.yaml", RECIPE.format(model=model))
        original = tmp_path / "original"
        result = runner.invoke(app, ["train", str(recipe), "--out", str(original), "-q"])
        assert result.exit_code == 0, result.output
        _TRAINED[model] = original
    shutil.copytree(_TRAINED[model], tmp_path / "run")
    return tmp_path / "run"


def evaluate(runner, *args: str) -> list[dict]:
    """``ganctl evaluate ARGS --json``, through pixels unless the args name features (the default
    features, a classifier of the data, are tests/test_default_features.py's)."""
    if "--features" not in args:
        args = (*args, "--features", "pixels")
    result = runner.invoke(app, ["evaluate", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_evaluate_reports_values_with_their_protocol_and_logs_them(runner, write, tmp_path):
    run = trained(runner, write, tmp_path)
    results = evaluate(runner, str(run), "-m", "fid", "-m", "kid", "-m", "prdc", "-m", "c2st", "--n", "300")
    assert [r["metric"] for r in results] == ["fid", "kid", "prdc", "c2st"]
    first = results[0]
    assert list(first["values"])[0] == "fid" and first["values"]["fid"] > 0
    protocol = first["protocol"]
    assert (protocol["n_real"], protocol["n_fake"], protocol["seed"]) == (300, 300, 0)
    assert protocol["real"] == {"plugin": "digits", "split": "train", "limit": 400}
    assert protocol["extractor"]["name"] == "pixels" and len(protocol["extractor"]["sha256"]) == 64
    assert protocol["engine"].startswith("keras ") and protocol["ganctl"]
    c2st = results[3]["values"]
    assert 0.5 <= c2st["roc_auc"] <= 1 and c2st["n_test"] == 300
    logged = [json.loads(line) for line in (run / "evaluations.jsonl").read_text().splitlines()]
    assert [r["metric"] for r in logged] == ["fid", "kid", "prdc", "c2st"]
    # the same request again: the real features come from the cache, the numbers are identical
    again = evaluate(runner, str(run), "-m", "fid", "--n", "300")
    assert again[0]["protocol"]["real_features_cached"] is True
    assert again[0]["values"]["fid"] == first["values"]["fid"]


def test_the_onnx_export_evaluates_like_the_run(runner, write, tmp_path):
    run = trained(runner, write, tmp_path)
    assert runner.invoke(app, ["export", str(run), "--onnx"]).exit_code == 0
    keras_fid = evaluate(runner, str(run), "-m", "fid", "--n", "200")[0]
    onnx_fid = evaluate(runner, str(run / "exports" / "generator.onnx"), "-m", "fid", "--n", "200")[0]
    assert onnx_fid["protocol"]["engine"].startswith("onnxruntime")
    assert onnx_fid["protocol"]["real"] == keras_fid["protocol"]["real"]  # read from the ONNX metadata
    assert onnx_fid["values"]["fid"] == pytest.approx(keras_fid["values"]["fid"], rel=1e-3)


def test_a_different_seed_draws_different_images(runner, write, tmp_path):
    run = trained(runner, write, tmp_path)
    a = evaluate(runner, str(run), "-m", "fid", "--n", "100", "--seed", "1")[0]["values"]["fid"]
    b = evaluate(runner, str(run), "-m", "fid", "--n", "100", "--seed", "2")[0]["values"]["fid"]
    assert a != b


@pytest.mark.parametrize(
    ("model", "args", "message"),
    [
        (UNCONDITIONAL, ["-m", "class-accuracy", "--features", "pixels"], "is unconditional"),
        (CONDITIONAL, ["-m", "inception-score"], "needs class probabilities"),
        (CONDITIONAL, ["-m", "fid", "--n", "5000"], "more than the 400 real images"),
        (CONDITIONAL, ["-m", "fdi"], "'fid'"),
        (CONDITIONAL, ["-m", "fid", "--features", "pixles"], "'pixels'"),
        (CONDITIONAL, ["-m", "fid", "--features", "pixels", "--n", "1"], "--n must be at least 2"),
        (CONDITIONAL, ["-m", "fid", "--data", "fashion-mnist-nope"], "dataset"),
    ],
)
def test_bad_requests_are_clear_errors(runner, write, tmp_path, model, args, message):
    run = trained(runner, write, tmp_path, model)
    pixels = [] if "--features" in args else ["--features", "pixels"]
    result = runner.invoke(app, ["evaluate", str(run), *args, *pixels])
    assert result.exit_code != 0
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.output


def test_features_of_mismatched_size_are_refused(runner, write, tmp_path):
    """A generator of 8x8 digits evaluated against 28x28 real images."""
    run = trained(runner, write, tmp_path)
    images = np.zeros((50, 28, 28), np.uint8)
    np.savez(tmp_path / "big.npz", images=images)
    recipe = write("big.yaml", f"name: big\ndata: {{plugin: npz, path: {tmp_path / 'big.npz'}}}\n"
                               "model: {plugin: gan}\n")
    result = runner.invoke(app, ["evaluate", str(run), "-m", "fid", "--n", "20", "--data", str(recipe), "--features", "pixels"])
    assert result.exit_code == 2
    assert "the real features have 784 dimensions and the generated ones 64" in result.stderr


# -- n, the floor and what the table shows ------------------------------------------------------------


def test_without_n_the_default_is_capped_at_what_the_real_data_holds(runner, write, tmp_path):
    run = trained(runner, write, tmp_path)  # digits, train split, limit 400: fewer than the default 2000
    protocol = evaluate(runner, str(run), "-m", "fid", "--no-floor")[0]["protocol"]
    assert (protocol["n_real"], protocol["n_fake"]) == (400, 400)
    assert protocol["n_note"].startswith("n = 400, not the default 2000: the real data {") and "400 images" in \
        protocol["n_note"]
    table = runner.invoke(app, ["evaluate", str(run), "-m", "fid", "--features", "pixels", "--no-floor"])
    assert table.exit_code == 0, table.output
    assert "400 generated vs 400 real images" in table.stdout and "n = 400, not the default 2000" in table.stdout
    # with the floor (the default here) the held-out images bound it too: the digits' test split holds 360
    both = evaluate(runner, str(run), "-m", "fid")[0]
    assert both["protocol"]["n_real"] == both["floor"]["protocol"]["n_real"] == 360
    assert both["protocol"]["n_note"] == ("n = 360, not the default 2000: real digits data (held-out test split) "
                                          "holds only 360 images.")
    # an n the user gives is used as it is, and one too large stays an error
    assert "n_note" not in evaluate(runner, str(run), "-m", "fid", "--n", "300")[0]["protocol"]
    too_many = runner.invoke(app, ["evaluate", str(run), "-m", "fid", "--floor", "--n", "400", "--features", "pixels"])
    assert too_many.exit_code == 2 and "use --n 360 or less" in too_many.stderr
    # without --floor, an n above the held-out images gives the default floor up, with a warning
    larger = runner.invoke(app, ["evaluate", str(run), "-m", "fid", "--n", "400", "--features", "pixels", "--json"])
    assert larger.exit_code == 0 and "floor" not in json.loads(larger.stdout)[0]
    assert "no floor: --n 400 is more than the 360 held-out images" in larger.stderr


def test_evaluate_and_generate_both_take_n_and_its_short_option(runner, write, tmp_path):
    run = trained(runner, write, tmp_path)
    assert evaluate(runner, str(run), "-m", "fid", "-n", "50")[0]["protocol"]["n_real"] == 50
    result = runner.invoke(app, ["generate", str(run), "--n", "5", "--out", str(tmp_path / "s.npz")])
    assert result.exit_code == 0, result.output
    with np.load(tmp_path / "s.npz") as found:
        assert len(found["images"]) == 5


def test_kid_records_the_subset_size_it_used(runner, write, tmp_path):
    """The default subset size (1000) is capped at n: 100 images make subsets of 100, not 1000."""
    run = trained(runner, write, tmp_path)
    kid = evaluate(runner, str(run), "-m", "kid", "--n", "100")[0]
    assert kid["protocol"]["params"] == {"subsets": 100, "subset_size": 100}
    kid_plugin = make_host().get("metrics", "kid")
    asked = kid_plugin.factory(kid_plugin.params_model(subset_size=50))
    assert asked.params_for(100).subset_size == 50 and asked.params_for(20).subset_size == 20


@pytest.mark.parametrize("data", ["{plugin: digits, split: all, limit: 400}", "npz"])
def test_the_floor_refuses_held_out_images_the_model_was_trained_on(runner, write, tmp_path, data):
    np.savez(tmp_path / "d.npz", images=np.random.default_rng(0).integers(0, 17, (200, 8, 8)).astype(np.uint8))
    if data == "npz":
        data = f"{{plugin: npz, path: {tmp_path / 'd.npz'}}}"
    recipe = write("all.yaml", RECIPE.format(model=UNCONDITIONAL).replace("{plugin: digits, limit: 400}", data))
    assert runner.invoke(app, ["train", str(recipe), "--out", str(tmp_path / "run"), "-q"]).exit_code == 0
    result = runner.invoke(app, ["evaluate", str(tmp_path / "run"), "-m", "fid", "--floor", "--n", "50", "--features", "pixels"])
    assert result.exit_code == 2
    assert "--floor scores real images the model never saw, but it was trained on" in result.stderr
    assert "includes the held-out images" in result.stderr and "split: train" in result.stderr
    assert "--data" in result.stderr and "Traceback" not in result.output
    if "digits" in data:  # real data it never saw is fine
        other = write("d.yaml", f"name: d\ndata: {{plugin: npz, path: {tmp_path / 'd.npz'}}}\nmodel: {{plugin: gan}}\n")
        assert evaluate(runner, str(tmp_path / "run"), "-m", "fid", "--floor", "--n", "50", "--data", str(other))


def test_the_floor_knows_trained_on_data_however_its_path_is_spelled(runner, write, tmp_path, monkeypatch):
    np.savez(tmp_path / "d.npz", images=np.random.default_rng(0).integers(0, 17, (200, 8, 8)).astype(np.uint8))
    monkeypatch.chdir(tmp_path)
    recipe = write("rel.yaml", RECIPE.format(model=UNCONDITIONAL).replace("{plugin: digits, limit: 400}",
                                                                          "{plugin: npz, path: d.npz}"))
    assert runner.invoke(app, ["train", str(recipe), "--out", str(tmp_path / "run"), "-q"]).exit_code == 0
    same = write("same.yaml", "name: d\ndata: {plugin: npz, path: ./d.npz}\nmodel: {plugin: gan}\n")
    result = runner.invoke(app, ["evaluate", str(tmp_path / "run"), "-m", "fid", "--floor", "--n", "50",
                                 "--data", str(same), "--features", "pixels"])
    assert result.exit_code == 2 and "includes the held-out images" in result.stderr


class ToyDistance:
    """A distance metric whose estimate is below 0, as KID's can be for indistinguishable sets."""

    class Metric(api.Metric):
        """Always -0.5."""

        distance = True

        class Params(api.Params):
            pass

        def compute(self, real, fake, *, fake_labels, seed):
            return {"toy": -0.5}

    @staticmethod
    @api.hookimpl
    def register_metrics(register):
        register("toy-distance", ToyDistance.Metric)


def test_the_floor_ratio_is_shown_for_positive_distances_only(runner, write, tmp_path):
    run = trained(runner, write, tmp_path)
    set_host(make_host((ToyDistance, "toy-distance")))
    found = {r["metric"]: r for r in evaluate(runner, str(run), "-m", "fid", "-m", "c2st", "-m", "toy-distance",
                                               "--floor")}
    result = runner.invoke(app, ["evaluate", str(run), "-m", "fid", "-m", "c2st", "-m", "toy-distance", "--floor", "--features", "pixels"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    header = next(line for line in lines if "x floor" in line)
    assert [c.strip() for c in header.split("┃")[1:-1]] == ["metric", "value", "floor", "x floor", "details",
                                                             "features"]
    rows = {cells[0]: cells for cells in ([c.strip() for c in line.split("│")[1:-1]]
                                          for line in lines if line.startswith("│"))}
    fid, floor_fid = found["fid"]["values"]["fid"], found["fid"]["floor"]["values"]["fid"]
    assert rows["fid"][3] == f"{fid / floor_fid:.3g}"  # a distance above 0: its ratio to the floor
    assert rows["c2st"][3] == "-"  # an ROC-AUC is not a distance
    assert rows["toy-distance"][3] == "-"  # a distance estimated below 0: no ratio, and a word on why below 0
    assert ("toy value and floor below 0: an unbiased estimate of a distance that is 0 when the two sets are "
            "indistinguishable") in rows["toy-distance"][4]
    assert "below 0" not in rows["fid"][4]


# -- the metric plugins themselves ----------------------------------------------------------------


def test_metric_plugins_agree_with_the_functions_they_wrap():
    from ganctl_metrics import stats

    host = make_host()
    rng = np.random.default_rng(0)
    real = api.Features(rng.standard_normal((400, 6)).astype(np.float32))
    fake = api.Features((rng.standard_normal((400, 6)) + 0.5).astype(np.float32))
    fid = host.get("metrics", "fid").factory(host.get("metrics", "fid").params_model())
    mu1, s1 = stats.feature_statistics(real.features)
    mu2, s2 = stats.feature_statistics(fake.features)
    assert fid.compute(real, fake, fake_labels=None, seed=0)["fid"] == pytest.approx(
        stats.frechet_distance(mu1, s1, mu2, s2), rel=1e-12)
    c2st = host.get("metrics", "c2st").factory(host.get("metrics", "c2st").params_model())
    assert list(c2st.compute(real, fake, fake_labels=None, seed=0))[0] == "roc_auc"
    probabilities = np.eye(3, dtype=np.float32)[np.arange(30) % 3]
    accuracy = host.get("metrics", "class-accuracy").factory(host.get("metrics", "class-accuracy").params_model())
    values = accuracy.compute(api.Features(real.features[:30], probabilities),
                              api.Features(fake.features[:30], probabilities),
                              fake_labels=np.arange(30) % 3, seed=0)
    assert values["class_accuracy"] == 1.0


class Broken:
    """A feature extractor that returns one feature row too few."""

    class Extractor(api.FeatureExtractor):
        """Drops a row."""

        class Params(api.Params):
            pass

        def identity(self):
            return {"name": "broken", "sha256": "0" * 64}

        def extract(self, images):
            return api.Features(images.reshape(len(images), -1)[1:])

    @staticmethod
    @api.hookimpl
    def register_feature_extractors(register):
        register("broken", Broken.Extractor)


def test_a_broken_extractor_is_reported_as_a_plugin_bug(runner, write, tmp_path):
    run = trained(runner, write, tmp_path)
    set_host(make_host((Broken, "broken")))
    result = runner.invoke(app, ["evaluate", str(run), "-m", "fid", "--features", "broken", "--n", "10"])
    assert result.exit_code == 1
    assert "feature extractor 'broken' returned features of shape" in result.stderr


# -- during training --------------------------------------------------------------------------------


def test_recipe_metrics_are_computed_during_training_and_logged(runner, write, tmp_path):
    recipe = write("m.yaml", RECIPE.format(model=UNCONDITIONAL).replace(
        "epochs: 1", "epochs: 3") + "metrics:\n  - {plugin: fid, every: 2, n: 100, features: pixels}\n  - {plugin: c2st, n: 100, features: pixels}\n")
    result = runner.invoke(app, ["train", str(recipe), "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert "epoch 2 metrics: fid " in result.stdout and "epoch 3 metrics: fid " in result.stdout
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in records if r.get("type") == "eval"]
    assert [r["epoch"] for r in evals] == [2, 3]
    assert "c2st/roc_auc" not in evals[0] and {"fid/fid", "c2st/roc_auc"} <= set(evals[1])
    # and `ganctl evaluate RUN` without --metric uses the recipe's list and its n
    results = evaluate(runner, str(tmp_path / "run"))
    assert [r["metric"] for r in results] == ["fid", "c2st"] and results[0]["protocol"]["n_real"] == 100


def test_recipe_metrics_without_n_use_what_the_data_holds(runner, write, tmp_path):
    """The default n (2000) is capped at the 400 training images, in training and in ganctl evaluate."""
    recipe = write("m.yaml", RECIPE.format(model=UNCONDITIONAL) + "metrics: [{plugin: fid, features: pixels}]\n")
    result = runner.invoke(app, ["train", str(recipe), "--out", str(tmp_path / "run"), "-q"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["fid/fid"] > 0 for r in records if r.get("type") == "eval"] == [True]
    protocol = evaluate(runner, str(tmp_path / "run"), "--no-floor")[0]["protocol"]  # the floor would cap it at 360
    assert protocol["n_real"] == 400 and "not the default 2000" in protocol["n_note"]


def test_a_metric_that_cannot_run_stops_training_before_it_starts(runner, write, tmp_path):
    recipe = write("m.yaml", RECIPE.format(model=UNCONDITIONAL) + "metrics: [{plugin: class-accuracy, features: pixels}]\n")
    result = runner.invoke(app, ["train", str(recipe), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert "metrics[0] (class-accuracy)" in result.stderr and "unconditional" in result.stderr
    assert not (tmp_path / "run").exists()
    recipe = write("n.yaml", RECIPE.format(model=UNCONDITIONAL) + "metrics: [{plugin: fid, n: 100000, features: pixels}]\n")
    result = runner.invoke(app, ["train", str(recipe), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2 and "more than the 400 images" in result.stderr


def test_keep_best_keeps_the_best_checkpoint_and_export_uses_it(runner, write, tmp_path):
    import onnx

    recipe = write("b.yaml", RECIPE.format(model=UNCONDITIONAL).replace("epochs: 1", "epochs: 4").replace(
        "train: {", "train: {keep_best: {metric: fid, mode: min}, ")
        + "metrics: [{plugin: fid, every: 1, n: 100, features: pixels}]\nexport: [onnx]\n")
    result = runner.invoke(app, ["train", str(recipe), "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    run = tmp_path / "run"
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    fids = {r["step"]: r["fid/fid"] for r in records if r.get("type") == "eval"}
    assert len(fids) == 4
    best_step = min(fids, key=fids.get)
    best = json.loads((run / "run.json").read_text())["best"]
    assert (best["metric"], best["step"], best["mode"]) == ("fid", best_step, "min")
    assert best["value"] == pytest.approx(fids[best_step])
    assert [p.name for p in (run / "checkpoints" / "best").iterdir()] == [f"ckpt-{best_step:08d}.npz"]
    meta = {p.key: p.value for p in onnx.load(str(run / "exports" / "generator.onnx")).metadata_props}
    assert meta["ganctl.step"] == str(best_step)
    # ganctl export picks the best checkpoint too, unless told otherwise
    out = runner.invoke(app, ["export", str(run), "--onnx", "--checkpoint", "latest", "--out", str(tmp_path / "l.onnx")])
    assert out.exit_code == 0, out.output
    latest = {p.key: p.value for p in onnx.load(str(tmp_path / "l.onnx")).metadata_props}
    assert latest["ganctl.step"] == str(max(fids))


def test_keep_best_must_name_a_metric_of_the_recipe(runner, write, tmp_path):
    recipe = write("b.yaml", RECIPE.format(model=UNCONDITIONAL).replace(
        "train: {", "train: {keep_best: {metric: fdi}, ") + "metrics: [{plugin: fid, every: 1, features: pixels}]\n")
    result = runner.invoke(app, ["recipe", "validate", str(recipe)])
    assert result.exit_code == 2
    assert "train.keep_best.metric: 'fdi' is not one of the recipe's metrics (fid). Did you mean 'fid'?" in result.stderr


def test_export_best_without_one_is_a_clear_error(runner, write, tmp_path):
    run = trained(runner, write, tmp_path)
    result = runner.invoke(app, ["export", str(run), "--onnx", "--checkpoint", "best"])
    assert result.exit_code == 2 and "has no best checkpoint" in result.stderr


# -- the collapse alarm -----------------------------------------------------------------------------


def test_sample_diversity_is_logged_every_epoch(runner, write, tmp_path):
    recipe = write("d.yaml", RECIPE.format(model=UNCONDITIONAL).replace("epochs: 1", "epochs: 2"))
    result = runner.invoke(app, ["train", str(recipe), "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    diversity = [r for r in records if r.get("type") == "diversity"]
    assert [r["epoch"] for r in diversity] == [1, 2]
    assert all(0 < r["diversity"] < 3 for r in diversity)


def test_the_collapse_alarm_warns_on_a_sharp_drop(runner, write, tmp_path, monkeypatch):
    from ganctl.training import samples

    assert samples.collapsed(0.3, 0.8) and not samples.collapsed(0.5, 0.8) and not samples.collapsed(0.1, 0.0)
    values = iter([0.9, 0.8, 0.2])
    monkeypatch.setattr(samples.CollapseAlarm, "diversity", lambda self: next(values))
    recipe = write("d.yaml", RECIPE.format(model=UNCONDITIONAL).replace("epochs: 1", "epochs: 3"))
    result = runner.invoke(app, ["train", str(recipe), "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert "possible mode collapse at epoch 3: sample diversity 0.20 of the real data's, down from 0.90" in result.stdout
    assert result.stdout.count("possible mode collapse") == 1


def test_a_collapsed_generator_has_near_zero_diversity(runner, write, tmp_path):
    """The measure itself: identical images give 0, real data against itself gives 1."""
    from ganctl.training.samples import spread as _spread

    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (64, 8, 8, 1)).astype(np.float32)
    assert _spread(np.repeat(images[:1], 64, axis=0)) == pytest.approx(0.0, abs=1e-6)
    assert _spread(images) > 1.0


def test_compare_shows_the_latest_evaluation_of_each_run_and_marks_differing_protocols(runner, write, tmp_path):
    run = trained(runner, write, tmp_path)
    other = tmp_path / "other"
    shutil.copytree(run, other)
    evaluate(runner, str(run), "-m", "fid", "--n", "100")
    evaluate(runner, str(other), "-m", "fid", "--n", "100", "--seed", "3")
    result = runner.invoke(app, ["compare", str(run), str(other), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [list(r["evaluations"]) for r in report["runs"]] == [["fid"], ["fid"]]
    assert report["protocols_differ"] == ["fid"]  # different seeds
    table = runner.invoke(app, ["compare", str(run), str(other)])
    assert table.exit_code == 0 and "fid *" in table.stdout and "different protocols" in table.stdout
    fresh = tmp_path / "fresh"
    shutil.copytree(_TRAINED[CONDITIONAL], fresh)
    result = runner.invoke(app, ["compare", str(fresh)])
    assert result.exit_code == 2 and "has been evaluated yet" in result.stderr


def test_report_is_one_self_contained_html_page(runner, write, tmp_path):
    recipe = write("r2.yaml", RECIPE.format(model=UNCONDITIONAL).replace("epochs: 1", "epochs: 2")
                   + "metrics: [{plugin: fid, every: 1, n: 100, features: pixels}]\n")
    assert runner.invoke(app, ["train", str(recipe), "--out", str(tmp_path / "run"), "-q"]).exit_code == 0
    run = tmp_path / "run"
    evaluate(runner, str(run), "-m", "kid", "--n", "100")
    result = runner.invoke(app, ["report", str(run)])
    assert result.exit_code == 0, result.output
    page = (run / "report.html").read_text()
    for title in ("Losses (epoch means)", "Metrics during training", "Sample diversity", "Samples over time",
                  "Evaluations (latest of each metric)", "Recipe", "run.json"):
        assert title in page, title
    assert page.count("data:image/png;base64,") == 3 + 3  # three plots, grids of epochs 1, 2 and final
    assert "src='http" not in page and "src=\"http" not in page  # nothing to fetch
    assert "&quot;n_real&quot;: 100" in page  # the protocol, escaped
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2 and "not a ganctl run directory" in result.stderr


def test_an_unwritable_feature_cache_does_not_fail_the_evaluation(runner, write, tmp_path, monkeypatch):
    from ganctl.errors import ConfigError
    from ganctl.evaluation import real

    def refuse(path, write):  # what atomic_write says for a folder it may not write in
        raise ConfigError(f"cannot write {path}: permission denied; choose a writable location.")

    monkeypatch.setattr(real, "atomic_write", refuse)
    run = trained(runner, write, tmp_path)
    results = evaluate(runner, str(run), "-m", "fid", "--n", "200", "--no-floor")  # the floor would share them
    assert results[0]["values"]["fid"] > 0 and results[0]["protocol"]["real_features_cached"] is False
    assert not (tmp_path / "cache" / "features").exists() or not any((tmp_path / "cache" / "features").iterdir())
