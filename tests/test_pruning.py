"""`train.prune`: gradual magnitude pruning (Zhu and Gupta 2017) of Dense and Conv kernels during
training: the cubic schedule, masks kept as optimizer state (exact resume), the zeros in exports,
the sparsity in run.json and `ganctl export`, fine-tuning a trained run into a pruned one, and
one clear error for each bad recipe."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import numpy as np
import pytest

from ganctl.cli import app

from .test_interrupts import Spawned, step_at_least
from .test_train import assert_same_state, backend, final_state

RECIPE = """\
name: tiny
seed: 7
data: {plugin: digits, limit: 256}
model: {plugin: gan, latent_dim: 8, hidden: [32]}
train:
  epochs: 4
  batch_size: 32
  steps_per_epoch: 4
  log_every: 4
  prune: {sparsity: 0.8, players: [generator], begin_epoch: 1, end_epoch: 3, every: 2}
"""
KERNELS = ("g_dense_0/kernel", "g_out/kernel")


def train(runner, recipe: Path, out: Path, *extra: str):
    return runner.invoke(app, ["train", str(recipe), "--out", str(out), "-q", *extra])


def cubic(sparsity: float, first: int, last: int, update: int) -> float:
    """Zhu and Gupta's schedule from 0: s_f (1 - (1 - p)^3), p the window's fraction passed."""
    p = min(max((update - first) / (last - first), 0.0), 1.0)
    return sparsity * (1.0 - (1.0 - p) ** 3)


@pytest.mark.backends
def test_the_masks_follow_the_cubic_schedule_and_pruned_weights_stay_zero(write):
    from ganctl.console import load_plugins
    from ganctl.recipe.load import load_recipe
    from ganctl.session.assemble import open_session

    host = load_plugins()
    session = open_session(load_recipe(write("prune.yaml", RECIPE), host), host, backend())
    engine = session.engine
    names = {name.split("/", 2)[2]: name for name in engine.state_variables() if name.startswith("model/")}
    masks = {k: next(n for n in engine.state_variables() if n.endswith(k.replace("/", "_") + "_prune_mask"))
             for k in KERNELS}
    assert not any("prune" in n for n in engine.state_variables() if n.startswith("optimizer/discriminator/"))
    batch = session.dataset.take(np.arange(32)).images
    first, last, every = 4, 11, 2  # epochs 1 to 3 of 4 steps, one generator update per step
    due = [u for u in range(first, last + 1) if (u - first) % every == 0 or u == last]
    before: dict[str, np.ndarray] = {}
    for update in range(16):
        z = np.random.default_rng(update).standard_normal((32, 8)).astype(np.float32)
        engine.step("discriminator", batch, None, z)
        engine.step("generator", batch, None, z)
        arrays = engine.state_arrays()
        assert int(arrays[next(n for n in arrays if n.endswith("/prune_updates"))]) == update + 1
        done = [u for u in due if u <= update]
        wanted = cubic(0.8, first, last, done[-1]) if done else 0.0
        for kernel in KERNELS:
            weights, mask = arrays[names[kernel]], arrays[masks[kernel]]
            assert set(np.unique(mask)) <= {0.0, 1.0}
            assert np.all(weights[mask == 0] == 0), (kernel, update)  # exactly zero after every update
            assert abs(int(np.sum(weights == 0)) - wanted * weights.size) <= 1, (kernel, update)
            if kernel in before:  # a weight once pruned stays pruned
                assert np.all(mask[before[kernel] == 0] == 0)
            before[kernel] = mask
    for kernel in KERNELS:  # the target at the end, and the discriminator untouched
        assert abs(np.mean(arrays[names[kernel]] == 0) - 0.8) <= 1 / arrays[names[kernel]].size
    assert not any(np.any(arrays[n] == 0) for k, n in names.items() if k.startswith("d_") and k.endswith("kernel"))


def test_a_new_mask_keeps_the_largest_weights_and_what_was_pruned_stays_pruned():
    from ganctl.engine.backends import activate

    activate(backend())
    from keras import ops

    from ganctl.session.pruning import Plan, new_mask, target_sparsity

    kernel = np.array([[0.5, -0.1, 0.3], [-0.9, 0.2, 0.05]], np.float32)
    mask = np.ones_like(kernel)
    got = np.asarray(ops.convert_to_numpy(new_mask(ops.convert_to_tensor(kernel), ops.convert_to_tensor(mask), 0.5)))
    np.testing.assert_array_equal(got, [[1, 0, 1], [1, 0, 0]])  # the three smallest in magnitude
    mask[0, 0] = 0  # pruned before, although large now: it stays pruned and counts toward the target
    got = np.asarray(ops.convert_to_numpy(new_mask(ops.convert_to_tensor(kernel), ops.convert_to_tensor(mask), 0.5)))
    np.testing.assert_array_equal(got, [[0, 0, 1], [1, 1, 0]])
    plan = Plan(first=10, last=30, every=5, sparsity=0.9, kernels=frozenset())
    for update in (0, 10, 15, 20, 30, 50):
        np.testing.assert_allclose(float(ops.convert_to_numpy(target_sparsity(plan, update))),
                                   cubic(0.9, 10, 30, update), rtol=1e-6, atol=1e-7)


@pytest.mark.slow
@pytest.mark.backends
def test_interrupted_in_the_pruning_window_a_run_resumes_exactly_and_exports_its_zeros(runner, write, tmp_path):
    epochs, steps = 12, 16  # as tests/test_interrupts.py: more progress than the pipe holds
    text = (RECIPE.replace("epochs: 4", f"epochs: {epochs}").replace("steps_per_epoch: 4", "log_every: 1")
            .replace("  log_every: 4\n", "").replace("data: {plugin: digits, limit: 256}", "data: {plugin: digits, limit: 512}")
            .replace("end_epoch: 3, every: 2", "end_epoch: 11, every: 5"))
    recipe = write("prune.yaml", text)
    assert train(runner, recipe, tmp_path / "whole").exit_code == 0
    run = tmp_path / "run"
    child = Spawned(tmp_path, "train", str(recipe), "--out", str(run))
    child.read_until(step_at_least(2 * steps + 5))  # in the window (epochs 2 to 11)
    child.proc.send_signal(signal.SIGINT)
    code, _, stderr = child.finish()
    assert code == 130, stderr
    stopped = json.loads((run / "run.json").read_text())["step"]
    assert steps < stopped < 11 * steps, stopped
    state = final_state(run)
    mask = next(k for k in state if k.endswith("g_out_kernel_prune_mask"))
    assert 0 < np.mean(state[mask] == 0) < 0.8, stopped  # stopped with the pruning under way
    result = runner.invoke(app, ["train", "--resume", str(run), "-q"])
    assert result.exit_code == 0, result.output
    whole = final_state(tmp_path / "whole")
    assert_same_state(whole, final_state(run))  # masks, update count and weights: bit-identical

    info = json.loads((run / "run.json").read_text())
    for kernel, size in zip(KERNELS, (8 * 32, 32 * 64), strict=True):  # within one weight of the target
        assert abs(info["sparsity"]["generator"][kernel] - 0.8) * size <= 1
    assert set(info["sparsity"]) == {"generator"}

    result = runner.invoke(app, ["export", str(run), "--onnx"])
    assert result.exit_code == 0, result.output
    assert "sparsity  80.0%  g_out/kernel" in result.stdout and "compressed (zlib level 9" in result.stdout
    import onnx
    from onnx import numpy_helper

    initializers = [numpy_helper.to_array(t) for t in onnx.load(str(run / "exports" / "generator.onnx")).graph.initializer]
    model = {k.split("/", 2)[2]: v for k, v in whole.items() if k.startswith("model/")}
    for kernel in KERNELS:  # the exported kernels are the pruned ones, zeros included
        expected = model[kernel]
        found = [a for a in initializers if a.shape == expected.shape and np.array_equal(a, expected)]
        assert found and np.mean(found[0] == 0) == pytest.approx(np.mean(expected == 0)), kernel


@pytest.mark.slow
def test_a_trained_run_is_pruned_by_fine_tuning_with_its_average(runner, write, tmp_path):
    plain = RECIPE.replace("  prune: {sparsity: 0.8, players: [generator], begin_epoch: 1, end_epoch: 3, every: 2}\n",
                           "  ema: 0.9\n")
    assert train(runner, write("plain.yaml", plain), tmp_path / "source").exit_code == 0
    stored = (tmp_path / "source" / "recipe.yaml").read_text()
    assert "prune" not in stored  # runs without pruning keep their resolved recipe
    assert "sparsity" not in json.loads((tmp_path / "source" / "run.json").read_text())
    tuned = (RECIPE.replace("begin_epoch: 1, end_epoch: 3, every: 2", "begin_epoch: 0, end_epoch: 2")
             .replace("  log_every: 4\n", "  log_every: 4\n  ema: 0.9\n  steps_per_execution: 3\n")
             + f"init: {{from: {tmp_path / 'source'}, optimizer: true}}\n")
    assert train(runner, write("tuned.yaml", tuned), tmp_path / "tuned").exit_code == 0
    state = final_state(tmp_path / "tuned")
    source = final_state(tmp_path / "source")
    count = next(k for k in state if k.endswith("/prune_updates"))
    assert int(state[count]) == 16  # its own schedule, although the update count came from the source
    iterations = next(k for k in state if k.startswith("optimizer/generator/") and k.endswith("/iteration"))
    assert int(state[iterations]) == int(source[iterations]) + 16
    for kernel in KERNELS:
        raw = next(v for k, v in state.items() if k.startswith("model/") and k.endswith(kernel))
        average = next(v for k, v in state.items() if k.endswith(kernel.replace("/", "_") + "_average"))
        assert abs(np.mean(raw == 0) - 0.8) <= 1 / raw.size
        np.testing.assert_array_equal(average == 0, raw == 0)  # the average is pruned too
    result = runner.invoke(app, ["export", str(tmp_path / "tuned"), "--onnx"])
    assert result.exit_code == 0, result.output
    assert "ema weights" in result.stdout and "sparsity  80.0%  g_out/kernel" in result.stdout


BAD = {
    "sparsity 1": ("sparsity: 0.8", "sparsity: 1.0", "train.prune.sparsity", "below 1, got 1.0"),
    "sparsity < 0": ("sparsity: 0.8", "sparsity: -0.1", "train.prune.sparsity", "at least 0"),
    "no such player": ("players: [generator]", "players: [generatr]", "train.prune.players[0]",
                       "has no player 'generatr'. Did you mean 'generator'?"),
    "empty window": ("begin_epoch: 1, end_epoch: 3", "begin_epoch: 3, end_epoch: 3", "train.prune",
                     "begin_epoch (3) must be before end_epoch (3)"),
    "past the run": ("end_epoch: 3", "end_epoch: 5", "train.prune.end_epoch", "end_epoch (5) is past train.epochs (4)"),
    "every 0": ("every: 2", "every: 0", "train.prune.every", "1 or more, got 0"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_prune_section_is_one_clear_error_before_anything_is_written(runner, write, tmp_path, case):
    old, new, key, words = BAD[case]
    assert old in RECIPE
    result = train(runner, write("bad.yaml", RECIPE.replace(old, new)), tmp_path / "bad")
    assert result.exit_code == 2, result.output
    assert "bad.yaml:" in result.stderr and f": {key}: " in result.stderr and words in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert not (tmp_path / "bad").exists()


def test_a_player_with_nothing_to_prune_is_refused_before_the_run_exists(runner, write, tmp_path):
    frozen = (RECIPE.replace("hidden: [32]}", "hidden: [32], conditional: true}")  # its label embedding trains
              + "freeze:\n  generator: ['g_dense*', g_out]\n")
    result = train(runner, write("frozen.yaml", frozen), tmp_path / "frozen")
    assert result.exit_code == 2, result.output
    assert "player 'generator' has no Dense, Conv or ConvTranspose layer with trainable weights" in result.stderr
    assert "Remove 'generator' from train.prune.players" in result.stderr
    assert not (tmp_path / "frozen").exists()
