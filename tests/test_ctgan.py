"""The ``ctgan`` model plugin (plugins/ganctl_models/ctgan.py) and training-by-sampling
(``api.TableDataset.sampled_batches``): the condition sampler's draws, the one-input generator and
its conditions, the losses, training, exact resume and generation from the CLI, and bad input."""

from __future__ import annotations

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
from ganctl_models import CTGAN  # noqa: E402
from tests.conftest import ROOT, assert_same_state, final_checkpoint, trained_in_two_parts  # noqa: E402
from tests.test_tvae import TABLE, generated_csv, records  # noqa: E402

pytest.importorskip("pandas")
engine_for(keras.backend.backend())

RECIPE = """\
name: tiny-ctgan
seed: 3
data: {{plugin: csv, path: {path}, split: train}}
model: {{plugin: ctgan, embedding_dim: 4, generator_dim: [16], discriminator_dim: [16], pac: 4}}
train:
  epochs: {epochs}
  batch_size: 16
  steps_per_epoch: 3
  log_every: 1
  sample_every: 1
  optimizer: {{type: adam, learning_rate: 2.0e-4, beta_1: 0.5, beta_2: 0.9, weight_decay: 1.0e-6}}
"""


def recipe(tmp_path: Path, epochs: int = 2, table: str = TABLE, name: str = "t") -> Path:
    (tmp_path / f"{name}.csv").write_text(table)
    path = tmp_path / f"{name}.yaml"
    path.write_text(RECIPE.format(path=tmp_path / f"{name}.csv", epochs=epochs))
    return path


def skewed() -> tuple[api.TableDataset, list[api.Segment]]:
    """300 rows: colour 270/27/3 (a, b, c), flag 150/150, and a number."""
    spec = api.TableSpec((
        api.Column("x", "numeric", weights=(1.0,), means=(0.0,), stds=(1.0,), low=-3, high=3),
        api.Column("colour", "categorical", categories=("a", "b", "c"), frequencies=(0.9, 0.09, 0.01)),
        api.Column("flag", "boolean", categories=("False", "True"), frequencies=(0.5, 0.5))))
    colour = np.repeat([0, 1, 2], [270, 27, 3])
    flag = np.arange(300) % 2
    rows = spec.encode({"x": np.linspace(-2, 2, 300), "colour": colour, "flag": flag})
    return api.TableDataset(rows, spec), [s for s in spec.segments() if s.role == "category"]


# -- training-by-sampling ------------------------------------------------------------------------


def test_the_sampler_draws_columns_uniformly_categories_by_log_frequency_and_rows_that_carry_them():
    dataset, blocks = skewed()
    assert dataset.condition_counts(blocks).tolist() == [270, 27, 3, 150, 150]
    batches = list(dataset.sampled_batches(blocks, 100, seed=5, epoch=0))
    assert len(batches) == dataset.steps_per_epoch(100) == 3
    drawn = [b for epoch in range(40) for b in dataset.sampled_batches(blocks, 100, seed=5, epoch=epoch)]
    conditions = np.concatenate([b.labels for b in drawn])
    rows = np.concatenate([b.images for b in drawn])
    slots = np.array([1, 2, 3, 4, 5])  # the conditions' slots in the row: colour a, b, c, then flag
    assert np.all(rows[np.arange(len(rows)), slots[conditions]] == 1.0)  # every row has its condition
    share = np.bincount(conditions, minlength=5) / len(conditions)
    assert abs(share[:3].sum() - 0.5) < 0.03  # a column uniformly
    log = np.log1p([270, 27, 3])
    np.testing.assert_allclose(share[:3] / share[:3].sum(), log / log.sum(), atol=0.03)  # by log-frequency
    np.testing.assert_allclose(share[3:] / share[3:].sum(), [0.5, 0.5], atol=0.03)
    # Deterministic from (seed, epoch, batch); start skips batches; another epoch, other batches.
    again = list(dataset.sampled_batches(blocks, 100, seed=5, epoch=0))
    assert all(np.array_equal(a.images, b.images) and np.array_equal(a.labels, b.labels) for a, b in zip(batches, again, strict=True))
    later = list(dataset.sampled_batches(blocks, 100, seed=5, epoch=0, start=2))
    assert len(later) == 1 and np.array_equal(later[0].labels, batches[2].labels)
    assert not np.array_equal(next(dataset.sampled_batches(blocks, 100, seed=5, epoch=1)).labels, batches[0].labels)


# -- the model -----------------------------------------------------------------------------------


def test_the_generator_takes_one_normal_input_and_draws_conditions_by_the_original_frequencies():
    dataset, blocks = skewed()
    keras.utils.set_random_seed(0)
    model = CTGAN(CTGAN.Params(embedding_dim=3, generator_dim=(8,), discriminator_dim=(8,), pac=2), dataset.spec)
    assert model.training_by_sampling == tuple(blocks) and model.latent_dim == 4
    assert len(model.generator.inputs) == 1 and tuple(model.generator.inputs[0].shape) == (None, 4)
    z = np.random.default_rng(0).standard_normal((20000, 4)).astype(np.float32)
    _, condition = (np.asarray(keras.ops.convert_to_numpy(v)) for v in model.generator.get_layer("g_condition")(z))
    assert np.all(condition.sum(axis=1) == 1)  # one condition per row
    np.testing.assert_allclose(condition.mean(axis=0), [0.45, 0.045, 0.005, 0.25, 0.25], atol=0.01)
    rows = np.asarray(keras.ops.convert_to_numpy(model.generate(z[:64])))
    assert rows.shape == (64, dataset.spec.width) and np.all(np.abs(rows[:, 0]) <= 1)
    np.testing.assert_allclose(rows[:, 1:4].sum(axis=1), 1, rtol=1e-5)  # blocks as probabilities
    # The condition's cross-entropy: the conditioned block's logits against the conditioned category only.
    logits = np.random.default_rng(1).normal(size=(3, dataset.spec.width)).astype(np.float32)
    chosen = np.eye(5, dtype=np.float32)[[0, 2, 4]]
    found = float(keras.ops.convert_to_numpy(model._condition_loss(logits, chosen)))
    colour = logits[:, 1:4] - np.log(np.exp(logits[:, 1:4]).sum(axis=1, keepdims=True))
    flag = logits[:, 4:6] - np.log(np.exp(logits[:, 4:6]).sum(axis=1, keepdims=True))
    assert found == pytest.approx(-(colour[0, 0] + colour[1, 2] + flag[2, 1]) / 3, rel=1e-5)


# -- through the CLI -----------------------------------------------------------------------------


@pytest.mark.backends
def test_trains_by_sampling_resumes_exactly_and_generates_a_csv(runner, tmp_path):
    path = recipe(tmp_path, epochs=2)
    whole = tmp_path / "whole"
    result = runner.invoke(app, ["train", str(path), "--out", str(whole), "-q"])
    assert result.exit_code == 0, result.output
    steps = records(whole)
    assert len(steps) == 6 and all(math.isfinite(r[k]) for r in steps for k in
                                   ("discriminator/loss", "discriminator/gp", "generator/loss", "generator/condition"))
    resumed = trained_in_two_parts(runner, path, tmp_path / "resumed", 1, 2)
    assert_same_state(resumed, final_checkpoint(whole))
    assert records(tmp_path / "resumed") == steps
    generated_csv(runner, whole, tmp_path / "synthetic.csv")


def test_a_batch_size_that_is_not_a_multiple_of_pac_and_images_are_one_clear_error(runner, tmp_path):
    path = recipe(tmp_path, epochs=1)
    text = path.read_text()
    for name, changed, code, says in (
            ("pac", text.replace("batch_size: 16", "batch_size: 18"), 2,
             ["train.batch_size is 18", "model.pac = 4", "multiple of 4 (e.g. 16)"]),
            ("digits", text.replace(f"{{plugin: csv, path: {tmp_path / 't.csv'}, split: train}}", "{plugin: digits}"),
             2, ["model 'ctgan' takes tables, but dataset 'digits' gives images", "data.plugin"])):
        bad = tmp_path / f"{name}.yaml"
        bad.write_text(changed)
        result = runner.invoke(app, ["train", str(bad), "--out", str(tmp_path / name / "run")])
        assert result.exit_code == code, result.output
        message = " ".join(result.stderr.split())
        assert str(bad) in message and all(part in message for part in says), message
        assert "Traceback" not in result.output and not (tmp_path / name).exists()


@pytest.mark.slow
def test_a_table_of_numbers_trains_without_conditions(runner, tmp_path):
    numbers = "\n".join(["a,b"] + [f"{math.sin(i):.3f},{'' if i % 9 == 0 else i % 7 + 0.5}" for i in range(60)]) + "\n"
    plain = recipe(tmp_path, epochs=1, table=numbers, name="numbers")
    run = tmp_path / "numbers-run"
    result = runner.invoke(app, ["train", str(plain), "--out", str(run), "-q"])
    assert result.exit_code == 0, result.output
    assert "generator/condition" in records(run)[0] and records(run)[0]["generator/condition"] == 0.0
    assert json.loads((run / "run.json").read_text())["latent_dim"] == 4  # z is the noise alone: no condition


@pytest.mark.slow
def test_the_shipped_recipe_trains_a_few_steps(runner, tmp_path):
    run = tmp_path / "penguins-ctgan"
    result = runner.invoke(app, ["train", str(ROOT / "recipes" / "penguins-ctgan.yaml"), "--out", str(run), "-q",
                                 "--set", "train.epochs=1", "--set", "train.steps_per_epoch=2",
                                 "--set", "model.generator_dim=[8]", "--set", "model.discriminator_dim=[8]",
                                 "--set", "model.embedding_dim=2"])
    assert result.exit_code == 0, result.output
    lines = (run / "samples" / "final.csv").read_text().splitlines()
    assert len(lines) == 65 and lines[0] == "species,island,bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g,sex,year"
