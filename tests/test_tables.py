"""Tables (API 1.7, issue 16): TableSpec's encoding, the csv and parquet datasets (types, missing
markers, imputation strategies, indicators, splits, bad input) and ``ganctl data info`` on a table.
The tvae model that trains on them is tested in test_tvae.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ganctl import api
from ganctl.cli import app
from ganctl_datasets.table import CSV, Parquet

pytest.importorskip("pandas")  # the tables extra (pip install 'ganctl[tables]'); CI installs it with the test extra

CSV_TEXT = """\
id,size,colour,ok,count
1,1.5,red,yes,3
2,,blue,no,4
3,2.5,NA,yes,?
4,NaN,red,no,5
5,3.5,red,yes,6
6,4.0,green,no,7
"""


def table(tmp_path: Path, text: str = CSV_TEXT, name: str = "t.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def build(path: Path, **params) -> CSV:
    return CSV(CSV.Params(path=str(path), **params))


def decoded(dataset: api.TableDataset) -> dict[str, np.ndarray]:
    return dataset.spec.decode(dataset.take(np.arange(len(dataset))).images)


# -- the spec ------------------------------------------------------------------------------------


def test_a_spec_encodes_and_decodes_rows_and_round_trips_through_its_dict():
    number = api.Column("x", "numeric", weights=(0.5, 0.5), means=(0.0, 10.0), stds=(1.0, 2.0), low=-3.0,
                        high=16.0, indicator=True)
    colour = api.Column("c", "categorical", categories=("blue", "red"))
    spec = api.TableSpec((number, colour), label="c")
    assert [(s.role, s.size) for s in spec.segments()] == [("value", 1), ("mode", 2), ("missing", 2), ("category", 2)]
    assert spec.width == 7 and spec.shape == (7,) and spec.num_classes == 2 and spec.class_names == ("blue", "red")
    rows = spec.encode({"x": np.array([0.5, 9.0, 12.0]), "c": np.array([1, 0, 1])},
                       {"x": np.array([False, True, False])})
    assert rows.shape == (3, 7) and rows.dtype == np.float32
    assert rows[0, 0] == pytest.approx(0.5 / 4) and rows[2, 0] == pytest.approx(2.0 / 8)  # offset in its mode
    out = spec.decode(rows)
    assert out["x"][0] == pytest.approx(0.5) and np.isnan(out["x"][1]) and out["x"][2] == pytest.approx(12.0)
    assert list(out["c"]) == ["red", "blue", "red"]
    assert api.TableSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    assert api.DataSpec(8, 8, 1).kind == "image" and spec.kind == "table"
    assert "kind" not in api.DataSpec(8, 8, 1).to_dict()  # image runs' run.json stays as it was
    with pytest.raises(ValueError, match="label column 'nope'"):
        api.TableSpec((number,), label="nope")


def test_decoding_with_a_generator_draws_each_block_in_proportion_to_its_slots():
    spec = api.TableSpec((api.Column("c", "categorical", categories=("a", "b", "c"), indicator=True),))
    rows = np.tile(np.array([[0.6, 0.3, 0.1, 0.95, 0.05]], np.float32), (20000, 1))
    assert set(spec.decode(rows)["c"]) == {"a"}  # the largest slot: never b, c or missing
    out = spec.decode(rows, np.random.default_rng(0))["c"]
    shares = {v: np.mean([x == v for x in out]) for v in ("a", "b", "c", None)}
    assert shares == pytest.approx({"a": 0.6 * 0.95, "b": 0.3 * 0.95, "c": 0.1 * 0.95, None: 0.05}, abs=0.01)
    again = spec.decode(rows, np.random.default_rng(0))["c"]
    assert list(again) == list(out)


# -- reading, types, missing values -------------------------------------------------------------


def test_csv_infers_types_and_reads_the_usual_and_the_given_missing_markers(tmp_path):
    data = build(table(tmp_path), missing_values=("?",), exclude=("id",))
    spec = data.spec
    types = {c.name: c.type for c in spec.columns}
    assert types == {"size": "numeric", "colour": "categorical", "ok": "boolean", "count": "numeric"}
    rates = {c.name: c.missing_rate for c in spec.columns}
    assert rates == pytest.approx({"size": 2 / 6, "colour": 1 / 6, "ok": 0.0, "count": 1 / 6})
    assert spec.column("ok").categories == ("False", "True") and spec.column("colour").categories == (
        "blue", "green", "red")
    count = spec.column("count")
    assert count.integer and (count.low, count.high) == (3.0, 7.0)
    assert [c.name for c in spec.columns if c.indicator] == ["size", "colour", "count"]
    out = decoded(data)
    assert list(out["ok"]) == ["True", "False", "True", "False", "True", "False"]
    assert np.isnan(out["size"][[1, 3]]).all() and out["colour"][2] is None and np.isnan(out["count"][2])
    np.testing.assert_allclose(out["size"][[0, 2, 4, 5]], [1.5, 2.5, 3.5, 4.0], atol=1e-5)


def test_declared_types_win_over_inferred_ones(tmp_path):
    data = build(table(tmp_path), missing_values=("?",), columns={"count": "categorical", "id": "categorical"})
    assert data.spec.column("count").type == "categorical" and data.spec.column("count").categories == (
        "3", "4", "5", "6", "7")
    assert data.spec.column("id").categories == tuple("123456")


@pytest.mark.parametrize(("strategy", "filled"), [
    ("mean", (1.5 + 2.5 + 3.5 + 4.0) / 4),
    ("median", 3.0),
    ("constant", -1.0),
    ("most_frequent", 1.5),  # ties: the smallest
])
def test_simple_strategies_fill_numbers_with_the_fitted_value(tmp_path, strategy, filled):
    data = build(table(tmp_path), missing_values=("?",), impute={"size": strategy}, fill_values={"size": -1},
                 indicators=False)
    assert not any(c.indicator for c in data.spec.columns)
    size = decoded(data)["size"]
    filled = round(filled, 1)  # decoded to the one decimal place the real sizes have
    assert size[1] == pytest.approx(filled, abs=1e-4) and size[3] == pytest.approx(filled, abs=1e-4)


@pytest.mark.parametrize("strategy", ["knn", "iterative"])
def test_knn_and_iterative_fill_numbers_from_the_other_numeric_columns(tmp_path, strategy):
    from sklearn.experimental import enable_iterative_imputer  # noqa: F401
    from sklearn.impute import IterativeImputer, KNNImputer

    data = build(table(tmp_path), missing_values=("?",), exclude=("id",), impute={"size": strategy, "count": strategy},
                 knn_neighbors=2, indicators=False)
    matrix = np.array([[1.5, 3], [np.nan, 4], [2.5, np.nan], [np.nan, 5], [3.5, 6], [4.0, 7]])
    imputer = KNNImputer(n_neighbors=2) if strategy == "knn" else IterativeImputer(random_state=0, max_iter=10)
    expected = imputer.fit_transform(matrix)
    out = decoded(data)
    np.testing.assert_allclose(out["size"], expected[:, 0], atol=0.05 + 1e-3)  # rounded to the real sizes' one place
    np.testing.assert_allclose(out["count"], expected[:, 1], atol=0.5 + 1e-3)  # a whole-number column: rounded
    assert np.all(np.equal(np.mod(out["count"], 1), 0))


def test_drop_removes_the_rows_and_categorical_strategies_fill_categories(tmp_path):
    data = build(table(tmp_path), missing_values=("?",), impute={"size": "drop", "colour": "constant"})
    out = decoded(data)
    assert len(data) == 4 and list(out["id"]) == [1.0, 3.0, 5.0, 6.0]
    assert data.spec.column("colour").categories == ("green", "missing", "red")
    assert data.spec.column("size").missing_rate == pytest.approx(2 / 6) and not data.spec.column("size").indicator


def test_inject_missing_removes_values_at_random_by_its_seed(tmp_path):
    params = {"name": "wine", "label": "target", "inject_missing": {"rate": 0.2, "seed": 3}, "max_modes": 2}
    first, again = CSV(CSV.Params(**params)), CSV(CSV.Params(**params))
    np.testing.assert_array_equal(first.take(np.arange(len(first))).images, again.take(np.arange(len(again))).images)
    rates = [c.missing_rate for c in first.spec.columns if c.name != "target"]
    assert 0.15 < np.mean(rates) < 0.25 and first.spec.column("target").missing_rate == 0
    other = CSV(CSV.Params(**{**params, "inject_missing": {"rate": 0.2, "seed": 4}}))
    assert [c.missing_rate for c in other.spec.columns] != [c.missing_rate for c in first.spec.columns]
    assert first.spec.num_classes == 3 and set(np.unique(first.labels)) == {0, 1, 2}


def test_splits_are_disjoint_fixed_and_share_one_encoding(tmp_path):
    rows = "\n".join(f"{i},{i * 0.5},{'ab'[i % 2]}" for i in range(50))
    path = table(tmp_path, "n,x,c\n" + rows + "\n")
    train, test, every = (build(path, split=s) for s in ("train", "test", "all"))
    assert (len(train), len(test), len(every)) == (40, 10, 50)
    assert train.spec == test.spec
    got = np.concatenate([decoded(train)["n"], decoded(test)["n"]])
    assert sorted(np.round(got).astype(int)) == list(range(50))
    first = [b.images for b in train.batches(8, seed=1, epoch=2)]
    again = [b.images for b in build(path, split="train").batches(8, seed=1, epoch=2)]
    np.testing.assert_array_equal(np.stack(first), np.stack(again))
    assert len(build(path, split="train", limit=5)) == 5


def test_parquet_reads_the_same_table_as_csv(tmp_path):
    import pandas as pd

    path = table(tmp_path)
    pd.read_csv(path, na_values=["?"]).to_parquet(tmp_path / "t.parquet")
    from_csv = build(path, missing_values=("?",))
    from_parquet = Parquet(Parquet.Params(path=str(tmp_path / "t.parquet")))
    assert from_parquet.spec == from_csv.spec
    np.testing.assert_array_equal(from_parquet.take(np.arange(6)).images, from_csv.take(np.arange(6)).images)


def test_penguins_are_read_with_their_real_missing_values():
    data = CSV(CSV.Params(name="penguins", label="species"))
    assert len(data) == 344 and data.spec.num_classes == 3
    assert data.spec.column("sex").missing_rate == pytest.approx(11 / 344)
    assert data.spec.column("body_mass_g").missing_rate == pytest.approx(2 / 344)


def test_generated_numbers_keep_the_decimal_places_of_the_real_ones():
    """Penguins' bill lengths are recorded to 0.1 mm and their masses in whole grams: generated rows
    say the same, and a column of computed values (more than six places) is left unrounded."""
    data = CSV(CSV.Params(name="penguins"))
    spec = data.spec
    assert (spec.column("bill_length_mm").decimals, spec.column("body_mass_g").decimals) == (1, 0)
    assert api.TableSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    rows = np.random.default_rng(0).uniform(-1, 1, (200, spec.width)).astype(np.float32)
    out = spec.decode(rows, np.random.default_rng(1))
    bills = out["bill_length_mm"][~np.isnan(out["bill_length_mm"])]
    assert len(bills) > 100 and np.allclose(bills * 10, np.round(bills * 10), rtol=0, atol=1e-6)
    assert len(set(np.round(bills, 1))) > 20  # rounded, not collapsed
    computed = np.sqrt(np.arange(2.0, 40.0))  # no finite decimal writing
    from ganctl_datasets._table_prepare import decimal_places

    assert (decimal_places(computed), decimal_places(np.array([1.5, 2.25, 3.0])), decimal_places(np.array([2.0, 3.0]))) \
        == (None, 2, 0)


# -- bad input: one clear message naming the file, the column and the fix ---------------------------


@pytest.mark.parametrize(("text", "sets", "code", "expected"), [
    (CSV_TEXT.replace("5,3.5,red,yes,6", "5,3.5,red,yes,6,9"), [], 1, ["t.csv:6", "6 fields", "5 columns"]),
    (CSV_TEXT, ["columns={size: numeric, weight: numeric}"], 2, ["data.columns", "no column 'weight'", "id, size"]),
    (CSV_TEXT, ["label=kind"], 2, ["data.label", "no column 'kind'"]),
    (CSV_TEXT, ["label=size"], 2, ["data.label", "'size' holds numbers", "{size: categorical}"]),
    (CSV_TEXT, ["exclude=[id, size, colour, ok, count]"], 2, ["data.exclude", "no columns are left"]),
    (CSV_TEXT.replace("id,", "id,empty,").replace("\n1,", "\n1,,").replace("\n2,", "\n2,,").replace(
        "\n3,", "\n3,NA,").replace("\n4,", "\n4,,").replace("\n5,", "\n5,,").replace("\n6,", "\n6,,"),
     [], 1, ["column 'empty' has no values", "data.exclude"]),
    (CSV_TEXT, ["impute={colour: median}"], 2, ["'median' does not fit the categorical column 'colour'",
                                               "most_frequent, constant or drop"]),
    (CSV_TEXT, ["columns={colour: numeric}"], 1, ["'colour' is declared numeric but holds 'red'"]),
    (CSV_TEXT, ["max_categories=2"], 1, ["'colour' has 3 distinct values", "max_categories"]),
    ("", [], 1, ["is empty"]),
    (CSV_TEXT.replace("3.5", "inf"), [], 1, ["column 'size' holds an infinite value"]),
])
def test_bad_tables_are_one_clear_error(runner, tmp_path, text, sets, code, expected):
    path = table(tmp_path, text)
    args = ["data", "info", "csv", "--set", f"path={path}", "--set", "missing_values=['?']"]
    for item in sets:
        args += ["--set", item]
    result = runner.invoke(app, args)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    message = " ".join(result.stderr.split())
    assert str(path) in message
    for part in expected:
        assert part in message


def test_unreadable_files_are_named(runner, tmp_path):
    (tmp_path / "latin.csv").write_bytes("a,b\n\xe9t\xe9,1\n".encode("latin-1"))
    (tmp_path / "bad.parquet").write_text("not parquet")
    for plugin, path, part in (("csv", tmp_path / "nope.csv", "does not exist"),
                               ("csv", tmp_path / "latin.csv", "not UTF-8"),
                               ("parquet", tmp_path / "bad.parquet", "not a readable Parquet file"),
                               ("csv", tmp_path, "is a folder")):
        result = runner.invoke(app, ["data", "info", plugin, "--set", f"path={path}"])
        assert result.exit_code == 1, result.output
        assert str(path) in result.stderr and part in result.stderr


# -- ganctl data info -----------------------------------------------------------------------------


def test_data_info_on_a_table_shows_types_ranges_categories_and_missing_rates(runner, tmp_path):
    path = table(tmp_path)
    result = runner.invoke(app, ["data", "info", "csv", "--set", f"path={path}", "--set", "missing_values=['?']",
                                 "--set", "label=colour", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["kind"] == "table" and report["examples"] == 5 and report["label"] == "colour"  # no-label row dropped
    columns = {c["name"]: c for c in report["columns"]}
    assert columns["size"]["type"] == "numeric" and (columns["size"]["low"], columns["size"]["high"]) == (1.5, 4.0)
    assert columns["size"]["missing_rate"] == pytest.approx(2 / 6) and columns["size"]["imputation"] == "mean"
    assert columns["colour"]["categories"] == ["blue", "green", "red"] and columns["ok"]["type"] == "boolean"
    assert report["class_counts"] == {"blue": 1, "green": 1, "red": 3}
    result = runner.invoke(app, ["data", "info", "csv", "--set", f"path={path}", "--set", "missing_values=['?']"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    for part in ("size", "numeric", "1.5 .. 4", "33.3%", "mean + indicator", "blue, green, red", "boolean"):
        assert part in text
    result = runner.invoke(app, ["data", "info", "csv", "--set", f"path={path}", "--preview", str(tmp_path / "p.png")])
    assert result.exit_code == 2 and "table" in result.stderr


# -- metrics of tables ----------------------------------------------------------------------------


def test_table_metrics_are_perfect_on_the_same_table_and_follow_their_formulas():
    from scipy.stats import ks_2samp

    from ganctl.errors import ConfigError
    from ganctl.evaluation.metrics import request
    from ganctl_metrics.tables import ColumnSimilarity, CorrelationDifference, Missingness, ks_statistic
    from tests.conftest import make_host

    rng = np.random.default_rng(0)
    x = rng.normal(size=500)
    y = np.where(rng.random(500) < 0.1, np.nan, x * 2 + rng.normal(size=500))
    c = np.array([None if i % 10 == 0 else "ab"[i % 2] for i in range(500)], object)
    spec = api.TableSpec((api.Column("x", "numeric", weights=(1.0,), means=(0.0,), stds=(1.0,)),
                          api.Column("y", "numeric", weights=(1.0,), means=(0.0,), stds=(1.0,), indicator=True),
                          api.Column("c", "categorical", categories=("a", "b"), indicator=True)))
    real = {"x": x, "y": y, "c": c}
    same = [m(m.Params()).compare(real, real, spec, seed=0) for m in (ColumnSimilarity, CorrelationDifference,
                                                                       Missingness)]
    assert same[0]["column_similarity"] == pytest.approx(1.0)
    assert same[1]["correlation_difference"] == pytest.approx(0.0)
    assert same[2]["missing_rate_difference"] == 0 and same[2]["missing_pattern_difference"] == pytest.approx(0)
    assert ks_statistic(x, x + 0.3) == pytest.approx(ks_2samp(x, x + 0.3).statistic)
    fake = {"x": x + 0.3, "y": np.where(np.isnan(y), 0.0, y), "c": np.array(["a"] * 500, object)}
    values = ColumnSimilarity(ColumnSimilarity.Params()).compare(real, fake, spec, seed=0)
    assert values["column/x"] == pytest.approx(1 - ks_2samp(x, x + 0.3).statistic)
    assert values["column/c"] == pytest.approx(200 / 450)  # present values: 200 a and 250 b, against all a
    holes = Missingness(Missingness.Params()).compare(real, fake, spec, seed=0)
    assert holes["real_rate/y"] == pytest.approx(np.isnan(y).mean()) and holes["fake_rate/y"] == 0
    assert holes["missing_rate_difference"] == pytest.approx((np.isnan(y).mean() + 0.1) / 3)
    with pytest.raises(ConfigError, match="compares tables"):
        request(make_host(), "missingness")  # an image run's metrics
