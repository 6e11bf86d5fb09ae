"""`train.steps_per_execution: k`: k steps per call into the engine give what k = 1 gives (weights,
metrics.jsonl, a NaN's step), resume exactly in the middle of an epoch, and refuse bad values."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import yaml

from ganctl.cli import app
from ganctl.plugins import set_host
from ganctl.runs.checkpoint import Progress
from ganctl.training.callbacks import Callback
from ganctl.training.fused import chunk_end, plan_of

from .conftest import make_host
from .test_train import TINY, ExplodingPlugin, assert_same_state, final_state

pytestmark = pytest.mark.backends

RECIPE = """\
name: fused
seed: 7
data: {{plugin: digits, limit: 256}}
model: {model}
train:
  epochs: 2
  batch_size: 32
  steps_per_epoch: {steps}
  log_every: 1
  sample_every: 2
{extra}"""

MODELS = {
    # dense, conditional (labels), five updates per step (d_steps), a seed generator (the gradient
    # penalty's), the generator's moving average; k = 3 over epochs of 4 steps: chunks of 3 and 1
    "gan-d_steps-ema": ("{plugin: gan, latent_dim: 8, hidden: [32], conditional: true, loss: wasserstein, "
                        "gradient_penalty: 1.0, d_steps: 2}", 4, 3, "  ema: 0.9\n"),
    # convolutions and batch normalisation; k = 8 is more than an epoch's 4 steps: one call per epoch
    "dcgan": ("{plugin: dcgan, latent_dim: 8, filters: 8}", 4, 8, ""),
}


def backend() -> str:
    return os.environ.get("KERAS_BACKEND", "jax")


def records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def train(runner, recipe: Path, out: Path, *extra: str):
    return runner.invoke(app, ["train", str(recipe), "--out", str(out), "-q", *extra])


def assert_close(found, expected, what: str) -> None:
    """JAX and TensorFlow compile the k steps as one program, whose floating-point operations the
    compiler may fuse or order differently from the single step's: last-bit differences, which a
    few steps of training leave far below these bounds. PyTorch runs the single step k times: exact."""
    if backend() == "torch":
        np.testing.assert_array_equal(found, expected, err_msg=what)
    else:
        np.testing.assert_allclose(found, expected, rtol=1e-5, atol=1e-6, err_msg=what)


@pytest.mark.parametrize("name", list(MODELS))
def test_k_steps_per_call_equal_one_step_per_call(runner, write, tmp_path, name):
    model, steps, k, extra = MODELS[name]
    recipe = write("fused.yaml", RECIPE.format(model=model, steps=steps, extra=extra))
    # the fused run's inputs also come through the feeding thread (staged by the engine, then stacked)
    fused = ("--set", f"train.steps_per_execution={k}", "--set", "train.prefetch=2")
    for out, more in (("single", ("--set", "train.steps_per_execution=1")), ("fused", fused)):
        result = train(runner, recipe, tmp_path / out, *more)
        assert result.exit_code == 0, result.output
    single, fused = final_state(tmp_path / "single"), final_state(tmp_path / "fused")
    assert single.keys() == fused.keys()
    if extra:
        assert any(key.endswith("_average") for key in fused)  # the moving average is in the comparison
    for key in single:
        assert_close(fused[key], single[key], key)
    # every step is logged as with k = 1: same records, same keys, same values
    logged, expected = records(tmp_path / "fused"), records(tmp_path / "single")
    assert [sorted(r) for r in logged] == [sorted(r) for r in expected]
    assert [r["step"] for r in logged if "type" not in r] == list(range(1, 2 * steps + 1))
    for found, wanted in zip(logged, expected, strict=True):
        numbers = sorted(key for key, value in wanted.items() if isinstance(value, float))
        assert {k: v for k, v in found.items() if k not in numbers} == {k: v for k, v in wanted.items() if k not in numbers}
        assert_close([found[key] for key in numbers], [wanted[key] for key in numbers], str(wanted))
    assert yaml.safe_load((tmp_path / "fused" / "recipe.yaml").read_text())["train"]["steps_per_execution"] == k
    assert yaml.safe_load((tmp_path / "single" / "recipe.yaml").read_text())["train"]["steps_per_execution"] == 1


def test_auto_fuses_four_steps_where_the_engine_compiles_them(runner, write, tmp_path):
    """The default (auto) is k = 4 on JAX and TensorFlow, whose engines run the k steps as one compiled
    call, and 1 on PyTorch; run.json records what was used, and the resolved recipe leaves the key out
    (runs that do not set it keep their recipe and its hash)."""
    recipe = write("fused.yaml", RECIPE.format(model="{plugin: gan, latent_dim: 8, hidden: [32]}", steps=6, extra=""))
    result = train(runner, recipe, tmp_path / "auto")
    assert result.exit_code == 0, result.output
    info = json.loads((tmp_path / "auto" / "run.json").read_text())
    assert info["steps_per_execution"] == (1 if backend() == "torch" else 4)
    assert "steps_per_execution" not in yaml.safe_load((tmp_path / "auto" / "recipe.yaml").read_text())["train"]
    # every step is logged, the last chunk of each epoch of 6 taking the 2 steps left
    assert [r["step"] for r in records(tmp_path / "auto") if "type" not in r] == list(range(1, 13))


class StopAt(Callback):
    """Asks to stop after global step ``step``; records every step it was told about."""

    def __init__(self, step: int) -> None:
        self.step, self.seen = step, []

    def on_step_end(self, progress: Progress, logs: dict[str, float]) -> bool:
        self.seen.append(progress.step)
        return progress.step == self.step


def test_a_run_stopped_mid_epoch_resumes_exactly(runner, write, tmp_path):
    from ganctl.console import load_plugins
    from ganctl.recipe.load import load_recipe
    from ganctl.runs.rundir import RunDir
    from ganctl.session.assemble import open_session
    from ganctl.training.loop import Trainer
    from ganctl.training.progress import Reporter
    from ganctl.training.run_info import run_info

    # epochs of 7 steps in chunks of 3: [0, 3), [3, 6), [6, 7)
    text = RECIPE.format(model="{plugin: gan, latent_dim: 8, hidden: [32]}", steps=7,
                         extra="  ema: 0.9\n  steps_per_execution: 3\n")
    recipe_file = write("fused.yaml", text)
    assert train(runner, recipe_file, tmp_path / "whole").exit_code == 0

    host = load_plugins()
    recipe = load_recipe(recipe_file, host)
    session = open_session(recipe, host, backend())
    run = RunDir.create(recipe.output, recipe.name, recipe.to_dict(), tmp_path / "resumed")
    run.write_info(run_info(session, {}))
    stopper = StopAt(2)  # asks in the middle of the first chunk: the stop comes after the chunk
    outcome = Trainer(session, Reporter(), host).use(run).fit(Progress(), [stopper])
    assert stopper.seen == [1, 2, 3]
    assert (outcome.progress.step, outcome.progress.epoch, outcome.progress.step_in_epoch) == (3, 0, 3)
    assert [p.name for p in (tmp_path / "resumed" / "checkpoints").glob("*.npz")] == ["ckpt-00000003.npz"]

    result = runner.invoke(app, ["train", "--resume", str(tmp_path / "resumed"), "-q"])
    assert result.exit_code == 0, result.output
    assert_same_state(final_state(tmp_path / "resumed"), final_state(tmp_path / "whole"))  # bit-identical
    assert records(tmp_path / "resumed") == records(tmp_path / "whole")  # the epoch means too


def test_a_nan_inside_a_chunk_stops_at_its_step_as_with_one_step_per_call(runner, write, tmp_path):
    set_host(make_host((ExplodingPlugin, "exploding")))  # its loss turns NaN at step 11
    text = TINY.replace("plugin: gan, latent_dim: 8, hidden: [32]", "plugin: exploding")
    lines = {}
    for out, k in (("single", 1), ("fused", 3)):  # epochs of 8 steps: step 11 is the 3rd of a chunk
        result = train(runner, write("nan.yaml", text), tmp_path / out, "--set", f"train.steps_per_execution={k}")
        assert result.exit_code == 1
        (lines[out],) = [x for x in result.stderr.splitlines() if x.startswith("error:")]
        assert [p.name for p in (tmp_path / out / "checkpoints").glob("*.npz")] == ["ckpt-00000008.npz"]
    assert "the net loss became nan at step 11" in lines["fused"]
    assert lines["fused"].replace(str(tmp_path / "fused"), "RUN") == lines["single"].replace(str(tmp_path / "single"),
                                                                                              "RUN")
    assert records(tmp_path / "fused") == records(tmp_path / "single")


@pytest.mark.parametrize(("value", "expected"), [
    ("0", "steps_per_execution is the number of steps run per call, 1 or more, got 0"),
    ("-2", "got -2"),
    ("1.5", "steps_per_execution"),
    ("many", "steps_per_execution"),
])
def test_bad_steps_per_execution_fails_before_anything_is_written(runner, write, tmp_path, value, expected):
    recipe = write("fused.yaml", RECIPE.format(model=MODELS["dcgan"][0], steps=4, extra="")
                   + f"  steps_per_execution: {value}\n")
    result = train(runner, recipe, tmp_path / "run")
    assert result.exit_code == 2
    assert "fused.yaml:" in result.stderr and "train.steps_per_execution" in result.stderr
    assert expected in result.stderr
    assert not (tmp_path / "run").exists()


def test_chunks_are_cut_from_each_epochs_start_and_never_cross_its_end():
    def chunks(start: int, steps: int, k: int) -> list[tuple[int, int]]:
        out = []
        while start < steps:
            out.append((start, chunk_end(start, steps, k)))
            start = out[-1][1]
        return out

    assert chunks(0, 7, 3) == [(0, 3), (3, 6), (6, 7)]
    assert chunks(3, 7, 3) == [(3, 6), (6, 7)]  # a resume at a boundary cuts as the whole run did
    assert chunks(4, 7, 3) == [(4, 6), (6, 7)]  # elsewhere: up to the next boundary first
    assert chunks(0, 4, 8) == [(0, 4)]  # k beyond an epoch: the whole epoch
    assert chunks(0, 5, 1) == [(i, i + 1) for i in range(5)]
    assert plan_of(("generator", "discriminator"), {"discriminator": 3}) == (
        "generator", "discriminator", "discriminator", "discriminator")


def test_an_engine_and_its_fused_programs_are_freed_with_it(write):
    """The compiled k-step function lives on its engine: once a session is dropped, its engine (and
    the compiled programs, which on JAX hold memory mappings of their own) can be collected. A global
    cache keyed by engine once kept every engine alive, and a long test session ran out of mappings."""
    import gc
    import weakref

    from ganctl.console import load_plugins
    from ganctl.recipe.load import load_recipe
    from ganctl.session.assemble import open_session
    from ganctl.training.loop import Trainer
    from ganctl.training.progress import Reporter

    host = load_plugins()
    text = RECIPE.format(model="{plugin: gan, latent_dim: 8, hidden: [32]}", steps=3,
                         extra="  steps_per_execution: 3\n")
    recipe = load_recipe(write("fused.yaml", text), host)
    session = open_session(recipe, host, backend())
    trainer = Trainer(session, Reporter(), host)
    batches = session.dataset.batches(32, seed=0, epoch=0)
    assert len(list(trainer.train_steps(0, [(next(batches), None) for _ in range(3)], session.model.schedule()))) == 3
    engine = weakref.ref(session.engine)
    del session, trainer, batches
    gc.collect()
    assert engine() is None, "the engine outlived its session: something still holds it"
