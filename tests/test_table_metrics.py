"""The metrics of tables that compare joint distributions and learn from rows
(plugins/ganctl_metrics/tables.py, table_learning.py): contingency-difference, table-c2st,
ml-efficacy and dcr on small tables with known answers, missing values and errors; missing values
injected at random given another column (MAR); a table recipe's metrics during training and
``ganctl evaluate RUN -m NAME`` on a tiny tvae run."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from ganctl import api
from ganctl.cli import app
from ganctl_metrics import DCR, ContingencyDifference, MLEfficacy, TableC2ST
from ganctl_metrics.table_learning import design

pytest.importorskip("pandas")

SPEC = api.TableSpec((api.Column("x", "numeric", weights=(1.0,), means=(0.0,), stds=(1.0,)),
                      api.Column("y", "numeric", weights=(1.0,), means=(0.0,), stds=(1.0,), indicator=True),
                      api.Column("c", "categorical", categories=("a", "b"), indicator=True),
                      api.Column("d", "boolean", categories=("False", "True"))), label="c")


def rows(n: int, seed: int, shift: float = 0.0) -> dict[str, np.ndarray]:
    """A table whose columns depend on each other: c follows x, y is 2x plus noise, d follows c;
    10% of y and 5% of c missing."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n) + shift
    c = np.where(x + rng.normal(size=n) * 0.5 > 0, "a", "b").astype(object)
    d = np.where((c == "a") ^ (rng.random(n) < 0.2), "True", "False").astype(object)
    y = np.where(rng.random(n) < 0.1, np.nan, 2 * x + rng.normal(size=n))
    c[rng.random(n) < 0.05] = None
    return {"x": x, "y": y, "c": c, "d": d}


def compare(metric, params=None, real=None, fake=None, **extra):
    return metric(metric.Params(**(params or {}))).compare(real, fake, SPEC, seed=0, **extra)


def test_rows_become_standardised_vectors_with_one_hot_categories_and_missingness_indicators():
    real = {"x": np.array([1.0, 3.0]), "y": np.array([0.0, np.nan]), "c": np.array(["a", None], object),
            "d": np.array(["True", "False"], object)}
    fake = {"x": np.array([5.0]), "y": np.array([4.0]), "c": np.array(["b"], object), "d": np.array(["True"], object)}
    x_real, x_fake = design([real, fake], SPEC, ["x", "y", "c", "d"])
    h = math.sqrt(0.5)  # two different categories are 1 apart
    # x; y and its indicator; c one-hot and its indicator; d one-hot (no holes: no indicator)
    np.testing.assert_allclose(x_real, [[-1, 0, 0, h, 0, 0, 0, h], [1, 0, 1, 0, 0, 1, h, 0]])
    np.testing.assert_allclose(x_fake, [[3, 4, 0, 0, h, 0, 0, h]])  # scaled by the reference (real)


def test_contingency_difference_is_zero_on_the_same_table_and_the_total_variation_of_each_pair():
    real = rows(400, 0)
    same = compare(ContingencyDifference, real=real, fake=real)
    assert same["contingency_difference"] == 0 and same["pairs"] == 6  # four columns, numbers binned
    fake = {**real, "d": np.where(real["d"] == "True", "False", "True").astype(object)}  # d flipped
    only = compare(ContingencyDifference, {"numeric_bins": 0}, real, fake)
    cells = [(c, d) for c in ("a", "b", None) for d in ("False", "True")]
    p = np.array([np.mean([(c == a) and (d == b) for c, d in zip(real["c"], real["d"], strict=True)]) for a, b in cells])
    q = np.array([np.mean([(c == a) and (d == b) for c, d in zip(fake["c"], fake["d"], strict=True)]) for a, b in cells])
    assert only["contingency_difference"] == pytest.approx(0.5 * np.abs(p - q).sum())  # a hole is a cell
    assert only["pairs"] == 1 and only["worst_pair/c~d"] == only["worst_pair_difference"]
    shifted = compare(ContingencyDifference, real=real, fake=rows(400, 1, shift=1.5))
    assert shifted["contingency_difference"] > 4 * compare(ContingencyDifference, real=real,
                                                            fake=rows(400, 1))["contingency_difference"]
    table = api.TableSpec((SPEC.columns[0], SPEC.columns[2]))
    with pytest.raises(api.ConfigError, match="fewer than two"):
        ContingencyDifference(ContingencyDifference.Params(numeric_bins=0)).check(table)


def test_table_c2st_cannot_tell_draws_of_one_table_apart_and_tells_shifted_rows_and_holes():
    real = rows(200, 0)
    alike = compare(TableC2ST, real=real, fake=rows(200, 1))
    assert 0.4 < alike["roc_auc"] < 0.6 and alike["n_real"] == alike["n_fake"] == 200
    shifted = compare(TableC2ST, {"classifier": "logistic"}, real, rows(200, 1, shift=2.0))
    assert shifted["roc_auc"] > 0.85  # at best 0.92 for a shift of two standard deviations
    holes = {**rows(200, 1), "x": np.where(np.arange(200) % 2, np.nan, rows(200, 1)["x"])}  # half of x missing
    assert compare(TableC2ST, {"classifier": "logistic"}, real, holes)["roc_auc"] > 0.7  # its indicator tells
    with pytest.raises(api.ConfigError, match="at least 5 real"):
        compare(TableC2ST, real={k: v[:3] for k, v in real.items()}, fake=real)


def test_ml_efficacy_is_near_one_for_rows_like_the_real_ones_and_low_for_rows_that_break_the_target():
    train, test = rows(400, 0), rows(200, 1)
    alike = compare(MLEfficacy, real=test, fake=rows(400, 2), train=train)
    assert 0.85 < alike["efficacy"] < 1.15
    assert set(alike) >= {f"{w}/{k}" for w in ("synthetic", "real") for k in ("accuracy", "precision", "recall",
                                                                                "f1", "roc_auc")}
    assert alike["n_test"] == np.sum([v is not None for v in test["c"]])  # rows without a target are left out
    broken = rows(400, 2)
    broken["c"] = np.random.default_rng(3).permutation(broken["c"])  # the target no longer follows x
    assert compare(MLEfficacy, real=test, fake=broken, train=train)["efficacy"] < 0.8
    one_class = {**rows(400, 2), "c": np.array(["a"] * 400, object)}  # nothing to learn: one class predicted
    assert compare(MLEfficacy, real=test, fake=one_class, train=train)["synthetic/roc_auc"] == 0.5
    regression = compare(MLEfficacy, {"target": "y", "model": "logistic"}, test, rows(400, 2), train=train)
    assert 0.85 < regression["efficacy"] < 1.15 and regression["real/r2"] > 0.5 and "real/mae" in regression
    with pytest.raises(api.ConfigError, match="no column 'z' to predict"):
        MLEfficacy(MLEfficacy.Params(target="z")).check(SPEC)
    with pytest.raises(api.ConfigError, match="has no label"):
        MLEfficacy(MLEfficacy.Params()).check(api.TableSpec(SPEC.columns))


def test_dcr_fails_a_copy_of_the_training_rows_and_passes_fresh_rows():
    train, held = rows(400, 0), rows(200, 1)
    copy = compare(DCR, real=held, fake={k: v[:200] for k, v in train.items()}, train=train)
    assert copy["share_closer"] == 1 and copy["passes"] == 0 and copy["exact_copies"] == 1
    fresh = compare(DCR, real=held, fake=rows(200, 2), train=train)
    assert fresh["share_closer"] < 0.1 and fresh["passes"] == 1 and fresh["exact_copies"] == 0
    assert fresh["synthetic_median"] == pytest.approx(fresh["held_out_median"], rel=0.3)
    assert fresh["held_out_q0.05"] < fresh["held_out_median"]


# -- missing values at random given another column (MAR) -------------------------------------------


def test_mar_removes_values_more_often_where_the_given_column_is_high_at_the_rate_asked():
    from ganctl_datasets._table_prepare import inject
    from ganctl_datasets._table_read import read_bundled
    from ganctl_datasets.table import CSV

    frame, _ = read_bundled("diabetes", ())
    params = CSV.Params(name="diabetes", inject_missing={"rate": 0.2, "seed": 0, "mechanism": "mar", "given": "age"})
    holes = inject(frame, params).drop(columns=["age"]).isna().to_numpy()
    assert inject(frame, params).equals(inject(frame, params))  # seeded
    old = (frame["age"] > frame["age"].median()).to_numpy()
    assert holes.mean() == pytest.approx(0.2, abs=0.02) and not inject(frame, params)["age"].isna().any()
    assert holes[old].mean() > 4 * holes[~old].mean()  # 0.38 against 0.04 at strength 2
    mcar = inject(frame, CSV.Params(name="diabetes", inject_missing={"rate": 0.2, "seed": 0}))
    high = mcar.drop(columns=["age"]).isna().to_numpy()
    assert abs(high[old].mean() - high[~old].mean()) < 0.03
    wine, _ = read_bundled("wine", ())  # by default given the label, by category
    by_class = inject(wine, CSV.Params(name="wine", label="target", inject_missing={"rate": 0.1, "mechanism": "mar"}))
    rates = by_class.drop(columns=["target"]).isna().groupby(by_class["target"]).mean().mean(axis=1)
    assert list(rates.index) == ["class_0", "class_1", "class_2"] and rates.is_monotonic_increasing


@pytest.mark.parametrize(("inject", "says"), [
    ("{rate: 0.1, mechanism: mar, given: height}", "data.inject_missing.given: the table has no column 'height'"),
    ("{rate: 0.1, mechanism: mar, given: age, columns: [age, bmi]}", "'age' is also a column to remove values"),
    ("{rate: 0.1, mechanism: mar}", "none is given (and the table has no data.label): add given: COLUMN"),
    ("{rate: 0.1, given: age}", "given is for mechanism: mar"),
    ("{rate: 1.0, mechanism: mar, given: age}", "inject_missing.rate: Input should be less than 1"),
])
def test_bad_mar_settings_are_one_clear_error(runner, tmp_path, inject, says):
    result = runner.invoke(app, ["data", "info", "csv", "--set", "name=diabetes", "--set", f"inject_missing={inject}"])
    assert result.exit_code == 2, result.output
    assert says in " ".join(result.stderr.split())


# -- during training and from the CLI ------------------------------------------------------------


@pytest.mark.slow  # two epochs and two evaluations (test_recipes trains diabetes-tvae with its metrics by default)
def test_a_table_recipe_s_metrics_run_during_training_and_ganctl_evaluate_computes_each(runner, tmp_path):
    from tests.test_tvae import recipe

    path = recipe(tmp_path, epochs=2)
    text = path.read_text().replace("split: train}", "split: train, label: colour}")
    path.write_text(text + "  keep_best: {metric: dcr, mode: min}\nmetrics:\n"
                           "  - {plugin: contingency-difference, every: 1}\n  - {plugin: dcr, n: 40}\n")
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", str(path), "--out", str(run)])
    assert result.exit_code == 0, result.output
    assert "epoch 1 metrics: contingency-difference" in result.output and "dcr" in result.output
    evals = [r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if r.get("type") == "eval"]
    assert [r["epoch"] for r in evals] == [1, 2] and "dcr/share_closer" in evals[1] and "dcr/share_closer" not in evals[0]
    assert json.loads((run / "run.json").read_text())["best"]["metric"] == "dcr"
    result = runner.invoke(app, ["evaluate", str(run), "--json"])  # the recipe's metrics, n from it
    assert result.exit_code == 0, result.output
    assert [(r["metric"], r["protocol"]["n_fake"]) for r in json.loads(result.stdout)] == [
        ("contingency-difference", 40), ("dcr", 40)]
    result = runner.invoke(app, ["evaluate", str(run), "-m", "table-c2st", "-m", "ml-efficacy", "-m", "dcr", "--json",
                                 "-n", "30"])
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert len((run / "evaluations.jsonl").read_text().splitlines()) == 5
    for record, name, key in zip(found, ("table-c2st", "ml-efficacy", "dcr"), ("roc_auc", "efficacy", "share_closer"),
                                 strict=True):
        assert record["metric"] == name and math.isfinite(record["values"][key])
        protocol = record["protocol"]  # 109 rows with a colour (the label): 22 held out, 87 trained on
        assert (protocol["n_real"], protocol["n_fake"], protocol["data"]["split"]) == (22, 30, "test")
        assert protocol.get("n_train") == (87 if name != "table-c2st" else None)
    for args, says in ((["-m", "c2st"], "table-c2st is its counterpart for tables"),
                       (["-m", "{plugin: ml-efficacy, target: shade}"], "no column 'shade' to predict")):
        result = runner.invoke(app, ["evaluate", str(run), *args])
        assert result.exit_code == 2 and says in " ".join(result.stderr.split()), result.output


@pytest.mark.parametrize(("split", "change", "says"), [
    ("train", "metrics: [fid]", "metrics[0] (fid): metric fid compares images"),
    ("train", "metrics: [ml-efficacy]", "metrics[0] (ml-efficacy): ml-efficacy predicts a column, and the table has "
                                        "no label"),
    ("train", "metrics: [{plugin: missingness, features: pixels}]", "features: is for metrics of images"),
    ("all", "metrics: [dcr]", "and this run trained on all its rows: train on data.split: train"),
])
def test_a_table_metric_that_cannot_run_stops_training_before_it_starts(runner, tmp_path, split, change, says):
    from tests.test_tvae import recipe

    path = recipe(tmp_path)
    path.write_text(path.read_text().replace("split: train", f"split: {split}") + change + "\n")
    result = runner.invoke(app, ["train", str(path), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    assert says in " ".join(result.stderr.split()) and not (tmp_path / "run").exists()
