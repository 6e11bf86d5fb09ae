"""TensorFlow's import-time INFO lines (oneDNN) stay off stderr, on every backend, without changing
how TensorFlow computes."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT

ONEDNN = "oneDNN custom operations are on"

# A stand-in for TensorFlow: its import writes absl's pre-initialisation chatter and a real
# problem straight to file descriptor 2, as TensorFlow's C++ does.
FAKE_TENSORFLOW = f"""
import os
os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\\n")
os.write(2, b"I0000 00:00:1.0 1 port.cc:153] {ONEDNN}. You may see slightly different numerical results\\n")
os.write(2, b"E0000 00:00:1.0 1 something.cc:1] a real problem\\n")
"""


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS")}
    return {**env, "GANCTL_LOAD_PLUGINS": "", **extra}


@pytest.mark.parametrize("level, dropped", [(None, True), ("0", False)], ids=["default", "user-asks-for-info"])
def test_import_chatter_is_dropped_and_the_rest_kept(tmp_path, level, dropped):
    (tmp_path / "tensorflow").mkdir()
    (tmp_path / "tensorflow" / "__init__.py").write_text(FAKE_TENSORFLOW)
    code = ("import importlib.util\nfrom ganctl.engine.backends import activate\nactivate('jax')\n"
            "assert importlib.util.find_spec('tensorflow')\n"  # as doctor and the exporters ask, before importing
            "import tensorflow\nprint('imported')")
    env = _clean_env(PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)]))
    if level is not None:
        env["TF_CPP_MIN_LOG_LEVEL"] = level
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0 and done.stdout.strip() == "imported", done.stderr
    assert "a real problem" in done.stderr
    assert (ONEDNN in done.stderr) is not dropped
    assert ("absl::InitializeLog" in done.stderr) is not dropped


@pytest.mark.backends
@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="TensorFlow is not installed")
def test_quiet_training_on_tensorflow_prints_no_onednn_line(tmp_path: Path):
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text("name: tiny\nseed: 1\ndata: {plugin: digits, limit: 64}\n"
                      "model: {plugin: gan, latent_dim: 4, hidden: [8]}\ntrain: {epochs: 1, batch_size: 32}\n")
    done = subprocess.run([sys.executable, "-m", "ganctl", "train", str(recipe), "--out", str(tmp_path / "run"), "-q"],
                          capture_output=True, text=True, env=_clean_env(KERAS_BACKEND="tensorflow"),
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(tmp_path / "run")
    assert ONEDNN not in done.stderr and "absl::InitializeLog" not in done.stderr, done.stderr
