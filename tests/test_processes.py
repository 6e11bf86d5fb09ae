"""Training as several cooperating processes (JAX): settings, start-up, one writer, failures.

The group's tests run real processes on loopback (``ganctl launch``, or ``ganctl train`` with the
coordinator flags), each with one CPU device and gloo collectives. They synchronise on what a
process wrote (a progress line through a one-page pipe, a checkpoint), never on time; a generous
timeout only guards against a hang.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ganctl.cli import app
from ganctl.engine.jax.processes import Group, requested

from .test_train import TINY, final_state

GUARD = 600  # seconds: only a guard against a hang
PIPE_SIZE = 4096
QUICKSTART = Path(__file__).resolve().parent.parent / "recipes" / "quickstart.yaml"
FEW_STEPS = ["--set", "train.steps_per_epoch=3", "--set", "train.checkpoint_every=1", "--set", "train.sample_every=1"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def ganctl(*args: str, tmp: Path, **popen) -> subprocess.Popen:
    """``python -m ganctl ARGS`` on JAX, with its own temporary folder (to see what it leaves there)."""
    env = {**os.environ, "GANCTL_LOAD_PLUGINS": "", "KERAS_BACKEND": "jax", "TMPDIR": str(tmp)}
    for name in ("GANCTL_COORDINATOR", "GANCTL_NUM_PROCESSES", "GANCTL_PROCESS_ID", "SLURM_JOB_ID"):
        env.pop(name, None)
    env.update(popen.pop("env", {}))
    return subprocess.Popen([sys.executable, "-m", "ganctl", *args], env=env, text=True, **popen)


def finished(proc: subprocess.Popen) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=GUARD)
    return proc.returncode, out or "", err or ""


def states_close(a: dict[str, np.ndarray], b: dict[str, np.ndarray], atol: float = 1e-5) -> None:
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_allclose(a[key], b[key], atol=atol, rtol=0, err_msg=key)


def records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def checkpoint(run: Path, step: int) -> dict[str, np.ndarray]:
    with np.load(run / "checkpoints" / f"ckpt-{step:08d}.npz") as archive:
        return {k: archive[k] for k in archive.files if k != "__meta__"}


# -- the settings (no process group) ---------------------------------------------------------------


def test_settings_come_from_flags_then_ganctl_then_keras_variables_then_a_cluster_manager():
    assert requested(env={}) == Group()
    assert requested("h:1", 2, 1, env={"GANCTL_NUM_PROCESSES": "4"}) == Group(2, 1, "h:1", "flags")
    env = {"GANCTL_COORDINATOR": "h:2", "GANCTL_NUM_PROCESSES": "3", "GANCTL_PROCESS_ID": "2",
           "KERAS_DISTRIBUTION_NUM_PROCESSES": "9"}
    assert requested(env=env) == Group(3, 2, "h:2", "GANCTL_* variables")
    keras_env = {"KERAS_DISTRIBUTION_JOB_ADDRESSES": "10.0.0.1:1234,10.0.0.2:2345",
                 "KERAS_DISTRIBUTION_NUM_PROCESSES": "2", "KERAS_DISTRIBUTION_PROCESS_ID": "1"}
    assert requested(env=keras_env) == Group(2, 1, "10.0.0.1:1234", "KERAS_DISTRIBUTION_* variables")
    assert requested("h:1", 1, 0, env={}) == Group()  # one process: no group
    slurm = requested(env={"SLURM_JOB_ID": "7", "SLURM_NTASKS": "4", "SLURM_STEP_NUM_TASKS": "4"})
    assert slurm.many and slurm.coordinator is None and "SLURM" in slurm.origin
    assert not requested(env={"SLURM_JOB_ID": "7", "SLURM_STEP_NUM_TASKS": "1"}).many  # one task: an ordinary run
    assert not requested(env={"SLURM_JOB_ID": "7", "SLURM_NTASKS": "4"}).many  # salloc's shell, not a job step
    assert requested(env={"OMPI_COMM_WORLD_SIZE": "2"}).many
    assert [Group(4, i).rows(32) for i in range(4)] == [slice(0, 8), slice(8, 16), slice(16, 24), slice(24, 32)]


@pytest.mark.parametrize(("flags", "says"), [
    (["--num-processes", "2", "--process-id", "0"], "the coordinator (flags) is 'None'"),
    (["--coordinator", "127.0.0.1:1", "--num-processes", "2"], "the process id (flags) is None"),
    (["--coordinator", "127.0.0.1:1", "--num-processes", "2", "--process-id", "2"], "from 0 to 1"),
    (["--coordinator", "localhost", "--num-processes", "2", "--process-id", "1"], "HOST:PORT"),
    (["--coordinator", "127.0.0.1:1", "--num-processes", "3", "--process-id", "0", "--backend", "jax"],
     "does not divide across 3"),
    (["--coordinator", "127.0.0.1:1", "--num-processes", "2", "--process-id", "0", "--backend", "tensorflow"],
     "JAX backend only"),
])
def test_bad_group_settings_are_one_clear_error_and_nothing_is_written(runner, write, tmp_path, flags, says):
    recipe = write("tiny.yaml", TINY)  # batch_size 32
    result = runner.invoke(app, ["train", str(recipe), "--out", str(tmp_path / "run"), *flags])
    assert result.exit_code == 2, result.output
    assert says in result.output and result.output.count("error:") == 1
    assert not (tmp_path / "run").exists()


def test_launch_sets_the_group_itself(runner, write, tmp_path):
    recipe = write("tiny.yaml", TINY)
    result = runner.invoke(app, ["launch", "-n", "2", str(recipe), "--process-id", "1"])
    assert result.exit_code == 2 and "leave out --process-id" in result.output


@pytest.mark.backends
def test_a_process_trains_on_its_rows_of_the_global_batch_and_latents(write):
    from ganctl.console import load_plugins
    from ganctl.recipe.load import load_recipe
    from ganctl.session.assemble import open_session
    from ganctl.training.loop import Trainer
    from ganctl.training.progress import Reporter

    from .test_train import backend

    host = load_plugins()
    recipe = load_recipe(write("tiny.yaml", TINY), host)
    trainer = Trainer(open_session(recipe, host, backend()), Reporter(), host)
    batch = next(trainer.dataset.batches(32, seed=recipe.seed, epoch=0))
    whole = trainer.step_inputs(5, batch)
    parts = []
    for index in range(2):
        trainer.share = (index, 2)
        parts.append(trainer.step_inputs(5, batch))
    np.testing.assert_array_equal(np.concatenate([p[0] for p in parts]), whole[0])
    np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), whole[1])
    for update, latents in enumerate(whole[2]):
        np.testing.assert_array_equal(np.concatenate([p[2][update] for p in parts]), latents)


def test_an_unreachable_coordinator_is_a_clear_error_within_the_timeout(write, tmp_path):
    recipe = write("tiny.yaml", TINY)
    proc = ganctl("train", str(recipe), "--out", str(tmp_path / "run"), "--coordinator", f"127.0.0.1:{free_port()}",
                  "--num-processes", "2", "--process-id", "1", tmp=tmp_path, env={"GANCTL_COORDINATOR_TIMEOUT": "2"},
                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    code, out, err = finished(proc)
    assert code == 2, err
    assert "process 1 could not join the group at 127.0.0.1:" in err and "within 2 s" in err
    assert "GANCTL_COORDINATOR_TIMEOUT" in err and "Nothing was written" in err
    assert not (tmp_path / "run").exists()


# -- a group of processes on loopback --------------------------------------------------------------


@pytest.mark.slow
def test_two_processes_match_one_and_resume_as_one(tmp_path):
    """The quickstart for a few steps: ganctl launch -n 2 equals one process on the same global batch,
    writes one normal run directory, and resumes as one process where the single run went on."""
    one, two = tmp_path / "one", tmp_path / "two"
    single = ganctl("train", str(QUICKSTART), "--out", str(one), "-q", *FEW_STEPS, "--set", "train.epochs=2",
                    tmp=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    code, _, err = finished(single)
    assert code == 0, err
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    launched = ganctl("launch", "-n", "2", str(QUICKSTART), "--out", str(two), *FEW_STEPS, "--set", "train.epochs=1",
                      tmp=scratch, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    code, out, err = finished(launched)
    assert code == 0, err
    assert out.count(f"run {two}:") == 1 and out.count("done: 3 steps") == 1  # process 0's output only
    assert list(scratch.iterdir()) == []  # the other process's scratch run directory is gone
    states_close(checkpoint(two, 3), checkpoint(one, 3))
    info = json.loads((two / "run.json").read_text())
    assert info["status"] == "completed" and info["processes"]["count"] == 2
    assert sorted(info["processes"]["devices"]) == ["0", "1"]
    assert sorted(p.name for p in two.iterdir()) == sorted(p.name for p in one.iterdir())
    written = [(r["step"], r.get("type")) for r in records(two)]  # each record once
    assert written == [(r["step"], r.get("type")) for r in records(one) if r["epoch"] == 1]

    resumed = ganctl("train", "--resume", str(two), "-q", "--set", "train.epochs=2", tmp=tmp_path,
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    code, _, err = finished(resumed)
    assert code == 0, err
    states_close(final_state(two), final_state(one))
    assert json.loads((two / "run.json").read_text())["processes"] is None  # resumed as one process


@pytest.mark.slow
def test_mismatched_recipes_stop_every_process_before_anything_is_written(write, tmp_path):
    recipe = write("tiny.yaml", TINY)
    address = f"127.0.0.1:{free_port()}"
    procs = [ganctl("train", str(recipe), "--out", str(tmp_path / "run"), "--set", f"seed={index}",
                    "--coordinator", address, "--num-processes", "2", "--process-id", str(index), tmp=tmp_path,
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE) for index in range(2)]
    for proc in procs:
        code, _, err = finished(proc)
        assert code == 2, err
        assert "error: the recipe differs between processes: process(es) 1" in err
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
@pytest.mark.parametrize("killed", [1, 0, "ctrl-c"])
def test_killing_one_process_ends_both_with_a_clear_message_and_the_run_resumes(write, tmp_path, killed):
    """kill -9 of either process, or Ctrl-C to ganctl launch (process 0 checkpoints and stops)."""
    recipe = write("tiny.yaml", TINY.replace("epochs: 3", "epochs: 12").replace("log_every: 4", "log_every: 1"))
    run = tmp_path / "run"
    stderr = tmp_path / "launch.err"
    with stderr.open("w") as err_file:
        launched = ganctl("launch", "-n", "2", str(recipe), "--out", str(run), tmp=tmp_path, stdout=subprocess.PIPE,
                          stderr=err_file, pipesize=PIPE_SIZE)
    pattern = re.compile(r"epoch (\d+)/12 done")
    for line in launched.stdout:  # process 0's progress, at most one page ahead of this reader
        if (m := pattern.search(line)) and int(m.group(1)) >= 2:
            break  # epoch 1's checkpoint is written
    else:
        raise AssertionError(stderr.read_text())
    pids = [int(p) for p in re.search(r"pids (\d+), (\d+)", stderr.read_text()).groups()]
    if killed == "ctrl-c":
        os.kill(launched.pid, signal.SIGINT)
    else:
        os.kill(pids[killed], signal.SIGKILL)
    launched.stdout.read()
    assert launched.wait(timeout=GUARD) != 0
    err = stderr.read_text()
    if killed == 1:
        assert "error: ganctl launch: process 1 of 2 was killed by SIGKILL; the others were stopped." in err
        assert "error: process 0 of 2 stopped: another process of the group is gone" in err
        assert f"continue with: ganctl train --resume {run}" in err
        assert json.loads((run / "run.json").read_text())["status"] == "failed"
    elif killed == 0:
        assert "error: ganctl launch: process 0 of 2 was killed by SIGKILL; the others were stopped." in err
    else:
        assert launched.returncode == 130
        assert re.search(r"error: SIGINT received: stopped at step \d+ and saved a checkpoint", err)
        assert "error: ganctl launch: stopped as asked: process 0 of 2 exited with code 130" in err
        assert json.loads((run / "run.json").read_text())["status"] == "interrupted"
    for pid in pids:  # both ended
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
    resumed = ganctl("train", "--resume", str(run), "-q", tmp=tmp_path,
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    code, _, err = finished(resumed)
    assert code == 0, err
    assert json.loads((run / "run.json").read_text())["status"] == "completed"
