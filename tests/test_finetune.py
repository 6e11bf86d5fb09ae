"""Fine-tuning: `init:` starts a run from another run's weights, `freeze:` keeps layers fixed."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from ganctl.cli import app
from ganctl.plugins import set_host

from .conftest import ROOT

SOURCE = """\
name: source
seed: 3
data: {plugin: digits, limit: 64}
model: {plugin: dcgan, latent_dim: 8, filters: 8, conditional: true}
train: {epochs: 1, batch_size: 32, log_every: 10}
"""
"""The pre-trained run: a tiny conditional DCGAN (BatchNorm in its generator), 2 steps."""


def backend() -> str:
    return os.environ.get("KERAS_BACKEND", "jax")


def recipe_text(init: str | None = None, *, seed: int = 5, extra: str = "", model: str | None = None) -> str:
    text = SOURCE.replace("name: source", "name: tuned").replace("seed: 3", f"seed: {seed}")
    if model is not None:
        text = text.replace("{plugin: dcgan, latent_dim: 8, filters: 8, conditional: true}", model)
    if init is not None:
        text += f"init: {init}\n"
    return text + extra


def arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as archive:
        return {k: archive[k] for k in archive.files if k != "__meta__"}


def newest(run: Path) -> Path:
    return sorted((run / "checkpoints").glob("ckpt-*.npz"))[-1]


def weights(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The model's weights by layer path (``g_up_1/kernel``), seed generators' states left out."""
    return {k.split("/", 2)[2]: v for k, v in state.items() if k.startswith("model/") and "seed_generator" not in k}


def train(runner: CliRunner, recipe: Path, out: Path, *extra: str):
    return runner.invoke(app, ["train", str(recipe), "--out", str(out), *extra])


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """A trained source run (one epoch, 2 steps) on this process's backend."""
    folder = tmp_path_factory.mktemp("source")
    (folder / "source.yaml").write_text(SOURCE)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GANCTL_LOAD_PLUGINS", "")
        set_host(None)
        result = train(CliRunner(), folder / "source.yaml", folder / "run")
        set_host(None)
    assert result.exit_code == 0, result.output
    return folder / "run"


def session_for(text: str, path: Path):
    """A session of the recipe ``text`` on this backend, and what init recorded (no run made)."""
    from ganctl.console import load_plugins
    from ganctl.recipe.load import load_recipe
    from ganctl.session.assemble import open_session
    from ganctl.training.finetune import init_weights

    path.write_text(text)
    host = load_plugins()
    session = open_session(load_recipe(path, host), host, backend())
    return session, init_weights(session)


@pytest.mark.backends
def test_init_copies_the_weights_and_keeps_the_optimizer_fresh_unless_asked(source, tmp_path):
    copied = arrays(newest(source))
    session, record = session_for(recipe_text(f"{{from: {source}}}"), tmp_path / "a.yaml")
    state = session.engine.state_arrays()
    assert weights(state).keys() == weights(copied).keys()
    for key, value in weights(copied).items():
        np.testing.assert_array_equal(weights(state)[key], value, err_msg=key)
    optimizer = {k: v for k, v in state.items() if k.startswith("optimizer/")}
    assert all(not np.any(v) for k, v in optimizer.items() if "learning_rate" not in k)  # fresh: zeros
    assert record == {"from": str(source), "checkpoint": "latest", "file": str(newest(source)), "step": 2,
                      "epoch": 1, "backend": backend(), "players": ["generator", "discriminator"],
                      "optimizer": False}

    # optimizer: true copies its state, but the learning rate stays the recipe's
    text = recipe_text(f"{{from: {source}, optimizer: true}}").replace("log_every: 10", "log_every: 10, optimizer: {learning_rate: 0.001}")
    session, record = session_for(text, tmp_path / "b.yaml")
    state = session.engine.state_arrays()
    for key, value in copied.items():
        if key.startswith("optimizer/") and not key.endswith("learning_rate"):
            np.testing.assert_array_equal(state[key], value, err_msg=key)
    assert float(state["optimizer/generator/0001/generator_optimizer/learning_rate"]) == pytest.approx(1e-3)
    assert int(state["optimizer/generator/0000/generator_optimizer/iteration"]) == 2

    # a subset of the players: the generator copied, the discriminator as this recipe's seed made it
    fresh, _ = session_for(recipe_text(), tmp_path / "c.yaml")
    session, record = session_for(recipe_text(f"{{from: {source}, players: [generator]}}"), tmp_path / "d.yaml")
    assert record["players"] == ["generator"]
    state, unchanged = weights(session.engine.state_arrays()), weights(fresh.engine.state_arrays())
    for key in state:
        expected = weights(copied)[key] if key.startswith("g_") else unchanged[key]
        np.testing.assert_array_equal(state[key], expected, err_msg=key)
    assert not np.array_equal(unchanged["g_project/kernel"], weights(copied)["g_project/kernel"])


@pytest.mark.backends
def test_finetune_run_records_where_its_weights_came_from_and_frozen_layers_stay(runner, write, source, tmp_path):
    freeze = "freeze:\n  generator: [g_project*]\n  discriminator: [d_down_1]\n"
    recipe = write("tuned.yaml", recipe_text(f"{{from: {source}}}", extra=freeze))
    result = train(runner, recipe, tmp_path / "run")
    assert result.exit_code == 0, result.output
    assert f"init: generator, discriminator from {source} (step 2, latest checkpoint)" in result.stdout
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["init"]["file"] == str(newest(source)) and info["init"]["players"] == ["generator", "discriminator"]
    resolved = yaml.safe_load((tmp_path / "run" / "recipe.yaml").read_text())
    assert resolved["init"]["from"] == str(source) and resolved["freeze"]["discriminator"] == ["d_down_1"]

    before, after = weights(arrays(newest(source))), weights(arrays(newest(tmp_path / "run")))
    frozen = [k for k in before if k.startswith(("g_project/", "g_project_bn/", "d_down_1/"))]
    # the BatchNorm's moving statistics too: a frozen BatchNormalization runs in inference mode
    assert {"g_project_bn/moving_mean", "g_project_bn/moving_variance", "d_down_1/kernel"} <= set(frozen)
    for key in before:
        assert np.array_equal(before[key], after[key]) == (key in frozen), key
    slots = [k for k in arrays(newest(tmp_path / "run")) if k.startswith("optimizer/")]
    assert not [k for k in slots if "g_project_" in k or "d_down_1_" in k]  # no optimizer state for them


@pytest.mark.backends
def test_resume_wins_over_init_and_a_restart_before_any_checkpoint_starts_from_init(runner, write, source, tmp_path):
    copy = tmp_path / "source-copy"
    shutil.copytree(source, copy)
    recipe = write("tuned.yaml", recipe_text(f"{{from: {copy}}}").replace("epochs: 1", "epochs: 2"))
    assert train(runner, recipe, tmp_path / "straight").exit_code == 0
    straight = arrays(newest(tmp_path / "straight"))

    # stopped before its first checkpoint: the resume starts from the init weights again
    shutil.copytree(tmp_path / "straight", tmp_path / "early")
    for path in (tmp_path / "early" / "checkpoints").glob("ckpt-*.npz"):
        path.unlink()
    result = runner.invoke(app, ["train", "--resume", str(tmp_path / "early")])
    assert result.exit_code == 0, result.output
    for key, value in arrays(newest(tmp_path / "early")).items():
        np.testing.assert_array_equal(value, straight[key], err_msg=key)

    # with a checkpoint of its own, the run resumes from it: the init source is not read again
    shutil.copytree(tmp_path / "straight", tmp_path / "late")
    newest(tmp_path / "late").unlink()
    shutil.rmtree(copy)
    result = runner.invoke(app, ["train", "--resume", str(tmp_path / "late")])
    assert result.exit_code == 0, result.output
    for key, value in arrays(newest(tmp_path / "late")).items():
        np.testing.assert_array_equal(value, straight[key], err_msg=key)


def _no_checkpoint(source: Path, tmp: Path) -> str:
    target = tmp / "empty-run"
    target.mkdir()
    shutil.copy(source / "run.json", target / "run.json")
    (target / "checkpoints").mkdir()
    return str(target)


ERRORS = {
    "missing": (lambda s, t: f"{{from: {t / 'nowhere'}}}", None,
                ["init.from", "nowhere does not exist", "ganctl train"]),
    "not-a-run": (lambda s, t: f"{{from: {t}}}", None, ["init.from", "not a ganctl run directory", "run.json"]),
    "no-checkpoint": (lambda s, t: f"{{from: {_no_checkpoint(s, t)}}}", None,
                      ["init.from", "has no checkpoint yet", "--resume"]),
    "no-best": (lambda s, t: f"{{from: {s}, checkpoint: best}}", None,
                ["init.from", "no best checkpoint", "train.keep_best", "init.checkpoint: latest"]),
    "other-model": (lambda s, t: f"{{from: {s}}}", "{plugin: gan, latent_dim: 8, hidden: [16]}",
                    ["init.from", "trained the 'dcgan' model", "builds 'gan'", "model.plugin: dcgan"]),
    "shapes": (lambda s, t: f"{{from: {s}}}", "{plugin: dcgan, latent_dim: 8, filters: 4, conditional: true}",
               ["init.from", "do not fit", "g_up_1/kernel: expected [3, 3, 4, 4], found [3, 3, 8, 8]",
                "mismatches", "g_out/kernel: expected [3, 3, 4, 1], found [3, 3, 8, 1]"]),
    "shapes-one-player": (lambda s, t: f"{{from: {s}, players: [discriminator]}}",
                          "{plugin: dcgan, latent_dim: 8, filters: 8, conditional: false}",
                          ["init.from", "1 mismatch:", "d_down_1/kernel: expected [4, 4, 1, 8], found [4, 4, 2, 8]"]),
    "freeze-pattern": (lambda s, t: f"{{from: {s}}}", None, ["freeze.generator", "'g_nothing*'", "g_project_bn",
                                                             "g_out"]),
    "init-player": (lambda s, t: f"{{from: {s}, players: [generater]}}", None,
                    ["init.players[0]", "no player 'generater'", "Did you mean 'generator'",
                     "generator, discriminator"]),
    "init-key": (lambda s, t: f"{{form: {s}}}", None, ["init", "unknown key 'form'", "from"]),
}


@pytest.mark.backends
@pytest.mark.parametrize("case", list(ERRORS))
def test_init_and_freeze_errors_name_the_key_and_the_fix_before_anything_is_written(
        runner, write, source, tmp_path, case):
    init, model, needles = ERRORS[case]
    extra = "freeze: {generator: [g_project, 'g_nothing*']}\n" if case == "freeze-pattern" else ""
    recipe = write("bad.yaml", recipe_text(init(source, tmp_path), model=model, extra=extra))
    result = train(runner, recipe, tmp_path / "run")
    assert result.exit_code == 2, result.output
    message = result.stderr
    for needle in [str(recipe), *needles]:
        assert needle in " ".join(message.split()), f"{needle!r} not in {message!r}"
    assert not (tmp_path / "run").exists()


def test_unknown_freeze_player_and_an_all_frozen_player(runner, write, source, tmp_path):
    recipe = write("bad.yaml", recipe_text(extra="freeze: {critic: [d_*]}\n"))
    result = train(runner, recipe, tmp_path / "run")
    assert result.exit_code == 2 and "freeze.critic" in result.stderr and "Its players are" in result.stderr
    recipe = write("bad.yaml", recipe_text(extra="freeze: {discriminator: ['d_*']}\n"))
    result = train(runner, recipe, tmp_path / "run")
    assert result.exit_code == 2, result.output
    assert "nothing to train" in " ".join(result.stderr.split())
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(not (importlib.util.find_spec("torch") and importlib.util.find_spec("jax")),
                    reason="needs both torch and jax installed")
@pytest.mark.skipif(backend() != "jax", reason="initialises a run in this process: JAX's")
def test_augmentation_state_that_one_run_lacks_is_not_a_mismatch(runner, write, source, tmp_path):
    """A source trained without augmentation starts an adaptively augmented run (its p starts from
    the recipe), and an augmented run starts a plain one (its p is left behind)."""
    adaptive = "{plugin: dcgan, latent_dim: 8, filters: 8, conditional: true, augment: {adaptive: {start: 0.25}}}"
    augmented = write("augmented.yaml", recipe_text(f"{{from: {source}}}", model=adaptive))
    result = train(runner, augmented, tmp_path / "augmented")
    assert result.exit_code == 0, result.output
    state = arrays(newest(tmp_path / "augmented"))
    assert any(k.endswith("augment_p") for k in state)
    plain = write("plain.yaml", recipe_text(f"{{from: {tmp_path / 'augmented'}}}"))
    result = train(runner, plain, tmp_path / "plain")
    assert result.exit_code == 0, result.output
    assert not any(k.endswith("augment_p") for k in arrays(newest(tmp_path / "plain")))


def test_a_run_trained_on_torch_initialises_a_jax_run(tmp_path):
    """The source is trained in a PyTorch process; this (JAX) process starts from its weights."""
    (tmp_path / "source.yaml").write_text(SOURCE.replace("epochs: 1", "epochs: 1, steps_per_epoch: 1"))
    env = {**os.environ, "GANCTL_LOAD_PLUGINS": "", "KERAS_BACKEND": "torch"}
    trained = subprocess.run([sys.executable, "-m", "ganctl", "train", str(tmp_path / "source.yaml"), "--out",
                              str(tmp_path / "torch-run"), "-q", "--backend", "torch"],
                             capture_output=True, text=True, env=env, cwd=ROOT)
    assert trained.returncode == 0, trained.stderr
    recipe = tmp_path / "tuned.yaml"
    recipe.write_text(recipe_text(f"{{from: {tmp_path / 'torch-run'}}}"))
    session, record = session_for(recipe.read_text(), tmp_path / "copy.yaml")
    copied, state = weights(arrays(newest(tmp_path / "torch-run"))), weights(session.engine.state_arrays())
    assert state.keys() == copied.keys()
    for key in copied:
        np.testing.assert_array_equal(state[key], copied[key], err_msg=key)
    assert record["backend"] == "torch" and record["step"] == 1
