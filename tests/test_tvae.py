"""The ``tvae`` model plugin (plugins/ganctl_models/tvae.py, API 1.7 tables): the data-kind check,
the TVAE loss, training and exact resume, ``ganctl generate RUN --out synthetic.csv``, and what a
table run refuses (exporters of images, image metrics, a resume on another column set)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from ganctl import api
from ganctl.engine import backends as ganctl_backend

ganctl_backend.activate(ganctl_backend.resolve()[0])  # before Keras is first imported

import keras  # noqa: E402

from ganctl.cli import app  # noqa: E402
from ganctl.engine import engine_for  # noqa: E402
from ganctl.runs.tables import decode_rng  # noqa: E402
from ganctl_models import TVAE  # noqa: E402
from tests.conftest import ROOT, assert_same_state, final_checkpoint, trained_in_two_parts  # noqa: E402

pytest.importorskip("pandas")
engine_for(keras.backend.backend())

TABLE = "\n".join(["x,colour,flag,n"] + [
    f"{'' if i % 7 == 3 else round(math.sin(i) * 3 + (i % 3) * 10, 3)},{'rgb'[i % 3] if i % 11 else ''},"
    f"{'yes' if i % 2 else 'no'},{i % 5}" for i in range(120)]) + "\n"

RECIPE = """\
name: tiny-tvae
seed: 3
data: {{plugin: csv, path: {path}, split: train}}
model: {{plugin: tvae, latent_dim: 4, compress: [16], decompress: [16]}}
train:
  epochs: {epochs}
  batch_size: 16
  steps_per_epoch: 3
  log_every: 1
  sample_every: 1
  optimizer: {{type: adam, learning_rate: 3.0e-3}}
"""


def recipe(tmp_path: Path, epochs: int = 2, table: str = TABLE, name: str = "t") -> Path:
    (tmp_path / f"{name}.csv").write_text(table)
    path = tmp_path / f"{name}.yaml"
    path.write_text(RECIPE.format(path=tmp_path / f"{name}.csv", epochs=epochs))
    return path


def records(run: Path) -> list[dict]:
    return [r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if r.get("type") is None]


# -- the kind of data ----------------------------------------------------------------------------


def generated_csv(runner, run: Path, out: Path) -> list[dict[str, str]]:
    """``ganctl generate RUN -n 300 --out FILE`` on a run of TABLE, its rows read back and checked
    for the original columns and types: booleans, categories (or holes), whole numbers in range."""
    result = runner.invoke(app, ["generate", str(run), "-n", "300", "--seed", "2", "--out", str(out)])
    assert result.exit_code == 0 and "wrote 300 rows" in result.stdout, result.output
    with out.open() as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == 300 and list(table[0]) == ["x", "colour", "flag", "n"]
    assert {row["flag"] for row in table} <= {"True", "False"} and {row["colour"] for row in table} <= set("rgb") | {""}
    assert all(row["n"].isdigit() and 0 <= int(row["n"]) <= 4 for row in table)  # whole numbers, within range
    return table


def test_an_image_model_on_a_table_and_a_table_model_on_images_are_one_clear_error(runner, tmp_path):
    text = recipe(tmp_path).read_text()
    for name, changed, says in (
            ("vae", text.replace("{plugin: tvae, latent_dim: 4, compress: [16], decompress: [16]}",
                                 "{plugin: vae, architecture: mlp}"),
             ["model 'vae' takes images, but dataset 'csv' gives tables", "model.plugin (ctgan, tvae)"]),
            ("digits", text.replace(f"{{plugin: csv, path: {tmp_path / 't.csv'}, split: train}}", "{plugin: digits}"),
             ["model 'tvae' takes tables, but dataset 'digits' gives images", "data.plugin"])):
        path = tmp_path / f"{name}.yaml"
        path.write_text(changed)
        result = runner.invoke(app, ["train", str(path), "--out", str(tmp_path / name / "run")])
        assert result.exit_code == 2, result.output
        message = " ".join(result.stderr.split())
        assert str(path) in message and all(part in message for part in says), message
        assert "Traceback" not in result.output and not (tmp_path / name).exists()


# -- the loss ------------------------------------------------------------------------------------


def test_the_loss_is_tvaes_gaussian_offsets_plus_cross_entropies_plus_kl():
    spec = api.TableSpec((
        api.Column("x", "numeric", weights=(0.5, 0.5), means=(0.0, 5.0), stds=(1.0, 1.0), low=-2, high=7,
                   indicator=True),
        api.Column("c", "categorical", categories=("a", "b", "c"))))
    keras.utils.set_random_seed(0)
    model = TVAE(TVAE.Params(latent_dim=3, compress=(8,), decompress=(8,), sigma=0.2), spec)
    rows = spec.encode({"x": np.array([0.3, 5.5, 4.0, -1.0]), "c": np.array([0, 2, 1, 1])},
                       {"x": np.array([False, True, False, False])})
    mean, log_variance = (np.asarray(keras.ops.convert_to_numpy(v)) for v in model._encoder(rows))
    noise = np.random.default_rng(1).normal(size=mean.shape).astype(np.float32)
    reconstruction, kl = (np.asarray(keras.ops.convert_to_numpy(v))
                          for v in model._terms(rows, mean, log_variance, noise, training=False))
    out = np.asarray(keras.ops.convert_to_numpy(model._decoder(mean + np.exp(0.5 * log_variance) * noise)), np.float64)

    def cross_entropy(start: int, stop: int) -> np.ndarray:
        logits = out[:, start:stop]
        log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        return -(rows[:, start:stop] * log_p).sum(axis=1)

    sigma = 0.2
    expected = ((rows[:, 0] - np.tanh(out[:, 0])) ** 2 / (2 * sigma**2) + np.log(sigma) + 0.5 * np.log(2 * np.pi)
                + cross_entropy(1, 3) + cross_entropy(3, 5) + cross_entropy(5, 8))
    np.testing.assert_allclose(reconstruction, expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(kl, 0.5 * (np.exp(log_variance) + mean**2 - 1 - log_variance).sum(axis=1), rtol=1e-5)
    rows_out = np.asarray(keras.ops.convert_to_numpy(model.generate(noise[:, :3])))
    assert rows_out.shape == (4, 8) and np.all(np.abs(rows_out[:, 0]) <= 1)
    np.testing.assert_allclose(rows_out[:, 1:3].sum(axis=1), 1, rtol=1e-5)  # each one-hot block: probabilities


# -- through the CLI -----------------------------------------------------------------------------


@pytest.mark.backends
def test_trains_resumes_exactly_and_generates_a_csv_of_the_original_columns(runner, tmp_path):
    path = recipe(tmp_path, epochs=2)
    whole = tmp_path / "whole"
    result = runner.invoke(app, ["train", str(path), "--out", str(whole), "-q"])
    assert result.exit_code == 0, result.output
    steps = records(whole)
    assert len(steps) == 6 and all(math.isfinite(r["tvae/loss"]) for r in steps)
    assert (whole / "samples" / "final.csv").read_text().splitlines()[0] == "x,colour,flag,n"
    resumed = trained_in_two_parts(runner, path, tmp_path / "resumed", 1, 2)
    assert_same_state(resumed, final_checkpoint(whole))
    assert records(tmp_path / "resumed") == steps

    out = tmp_path / "synthetic.csv"
    table = generated_csv(runner, whole, out)
    assert all(row["x"] == "" or -3.1 <= float(row["x"]) <= 23.1 for row in table)
    rows = tmp_path / "rows.npz"
    assert runner.invoke(app, ["generate", str(whole), "-n", "300", "--seed", "2", "--out", str(rows)]).exit_code == 0
    spec = api.TableSpec.from_dict(json.loads((whole / "run.json").read_text())["data_spec"])
    with np.load(rows) as archive:
        decoded = spec.decode(archive["images"], decode_rng(2))
    # Values are missing exactly where the model's indicators put them.
    assert [row["x"] == "" for row in table] == list(np.isnan(decoded["x"]))
    assert [row["colour"] == "" for row in table] == [v is None for v in decoded["colour"]]
    again = tmp_path / "again.csv"
    assert runner.invoke(app, ["generate", str(whole), "-n", "300", "--seed", "2", "--out", str(again)]).exit_code == 0
    assert again.read_text() == out.read_text()


def test_a_table_run_is_evaluated_with_table_metrics_and_refuses_image_exports_png_and_another_column_set(
        runner, tmp_path):
    path = recipe(tmp_path, epochs=1)
    run = tmp_path / "run"
    assert runner.invoke(app, ["train", str(path), "--out", str(run), "-q"]).exit_code == 0
    result = runner.invoke(app, ["evaluate", str(run), "--json", "--n", "200", "--seed", "1"])
    assert result.exit_code == 0, result.output
    found = {r["metric"]: r for r in json.loads(result.stdout)}
    assert list(found) == ["column-similarity", "correlation-difference", "missingness", "contingency-difference",
                           "table-c2st", "dcr"]  # every metric of tables that can run on it
    assert "ml-efficacy left out: ml-efficacy predicts a column, and the table has no label" in result.stderr
    similarity = found["column-similarity"]["values"]
    assert 0 <= similarity["column_similarity"] <= 1 and set(similarity) >= {f"column/{c}" for c in "x colour flag n".split()}
    protocol = found["missingness"]["protocol"]
    assert (protocol["n_real"], protocol["n_fake"], protocol["seed"]) == (24, 200, 1)  # the held-out split
    assert protocol["data"]["split"] == "test" and "real_rate/x" in found["missingness"]["values"]
    result = runner.invoke(app, ["evaluate", str(run), "--json", "-m", "{plugin: ml-efficacy, target: colour}"])
    assert result.exit_code == 0, result.output  # a table without a label: the target named
    efficacy = json.loads(result.stdout)[0]
    assert efficacy["protocol"]["n_train"] == 96 and "synthetic/f1" in efficacy["values"]
    assert len((run / "evaluations.jsonl").read_text().splitlines()) == 7
    for args, says in ((["export", str(run), "--format", "keras"], "it exports models of images"),
                       (["evaluate", str(run), "-m", "fid"], "--metric fid compares images"),
                       (["evaluate", str(run), "--floor"], "--floor are for models of images"),
                       (["generate", str(run), "--out", str(tmp_path / "x.png")], "write its rows to a .csv file"),
                       (["train", str(path), "--out", str(tmp_path / "m"), "--set", "export=[keras]"],
                        "export[0]: the keras exporter cannot run")):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert says in " ".join(result.stderr.split()), result.stderr
    assert not (tmp_path / "m").exists() and not (tmp_path / "x.png").exists()
    (tmp_path / "t.csv").write_text(TABLE.replace("x,colour,flag,n", "x,color,flag,n"))
    result = runner.invoke(app, ["train", "--resume", str(run), "--set", "train.epochs=2"])
    assert result.exit_code == 2, result.output
    message = " ".join(result.stderr.split())
    assert "column 'color' is new" in message and "column 'colour' is gone" in message
    assert f"data.path={tmp_path / 't.csv'}" in message


# -- the shipped recipes ---------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "header"), [
    ("penguins-tvae", "species,island,bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g,sex,year"),
    ("wine-tvae", "alcohol,malic_acid,ash,alcalinity_of_ash,magnesium,total_phenols,flavanoids,nonflavanoid_phenols,"
                  "proanthocyanins,color_intensity,hue,od280/od315_of_diluted_wines,proline,target"),
])
def test_the_shipped_table_recipes_train_a_few_steps(runner, tmp_path, name, header):
    run = tmp_path / name
    # The recipe's data section as it is, its model made tiny: a few steps, not a training.
    result = runner.invoke(app, ["train", str(ROOT / "recipes" / f"{name}.yaml"), "--out", str(run), "-q",
                                 "--set", "train.epochs=1", "--set", "train.steps_per_epoch=2",
                                 "--set", "model.compress=[8]", "--set", "model.decompress=[8]",
                                 "--set", "model.latent_dim=2"])
    assert result.exit_code == 0, result.output
    assert "held_out/elbo" in (run / "metrics.jsonl").read_text()  # split: train; the rest is held out
    lines = (run / "samples" / "final.csv").read_text().splitlines()
    assert len(lines) == 65 and lines[0] == header
    spec = json.loads((run / "run.json").read_text())["data_spec"]
    missing = {c["name"] for c in spec["columns"] if c["indicator"]}
    assert missing == ({"bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "sex"}
                       if name == "penguins-tvae" else set(header.split(",")[:-1]))
