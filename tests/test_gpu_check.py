"""bench/gpu_check.py: on this CPU machine it says so and exits 0 (CI runs it so); what it would
run on a GPU machine, and its table."""

from __future__ import annotations

import importlib
import subprocess
import sys
from typing import Any

import pytest

from .conftest import ROOT


@pytest.fixture
def gpu_check(monkeypatch) -> Any:
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    return importlib.import_module("gpu_check")


def test_on_a_machine_without_an_nvidia_gpu_it_says_so_and_exits_0():
    from ganctl.inference.nvidia import gpus

    if gpus():
        pytest.skip("this machine has an NVIDIA GPU")
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_check.py")], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("gpu_check: no NVIDIA GPU on this machine") and "nothing to check" in done.stdout


def test_the_plan_runs_what_exists_and_says_why_not_for_the_rest(gpu_check):
    have = {"precision": True, "distribution": True}
    checks = gpu_check.plan(["jax", "torch"], 2, have, fashion=False)
    runs = [(c.recipe, c.backend, c.column) for c in checks if not c.skip]
    assert runs == [("quickstart", b, p) for b in ("jax", "torch") for p in gpu_check.PRECISIONS] \
        + [("quickstart", "jax", "float32, 2 devices")]
    assert {c.skip for c in checks if c.recipe == "fashion-mnist"} == {"no data (apt-get install dataset-fashion-mnist)"}
    older = gpu_check.plan(["jax"], 1, {"precision": False, "distribution": False}, fashion=True)
    assert [c.skip for c in older if c.recipe == "quickstart"] == [
        "", "not available (no train.precision in this ganctl)", "not available (no train.precision in this ganctl)",
        "not available (no train.distribution in this ganctl)"]
    one = gpu_check.plan(["jax"], 1, have, fashion=True)
    assert one[-1].skip == "not run: JAX sees 1 GPU"
    assert set(gpu_check.settings()) == {"precision", "distribution"}


def test_the_table_has_a_row_per_recipe_and_backend(gpu_check):
    checks = gpu_check.plan(["jax"], 2, {"precision": True, "distribution": True}, fashion=True)[:4]
    text = gpu_check.table([(c, f"ok ({i} s)") for i, c in enumerate(checks)])
    assert text.splitlines() == [
        "| recipe | backend | float32 | mixed_bfloat16 | mixed_float16 | float32, 2 devices |",
        "| --- | --- | --- | --- | --- | --- |",
        "| quickstart | jax | ok (0 s) | ok (1 s) | ok (2 s) | ok (3 s) |"]
