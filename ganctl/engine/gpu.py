"""Whether each installed backend can use an NVIDIA GPU, and the one command that makes it so
(``ganctl doctor``; README "On a GPU").

Two questions, asked without importing a framework into this process: is the installed build a
CUDA build (:func:`cpu_only`: package metadata and the framework's own build files), and does it
then see the GPU (:func:`probe`: a child process imports the backend and lists its devices, so a
framework that grabs GPU memory or fails to load CUDA does not do it here).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

CUDA_INSTALL = {
    "jax": "pip install 'ganctl[cuda]'",  # jax[cuda13]: JAX's CUDA plugin, CUDA and cuDNN as pip wheels
    "tensorflow": "pip uninstall -y tensorflow-cpu && pip install 'ganctl[tensorflow-cuda]'",
    # PyPI's Linux torch wheels are CUDA builds; ganctl pins the release it is tested with
    "torch": "pip install --force-reinstall torch==2.13.0 --index-url https://pypi.org/simple",
}
"""The command that gives each backend a framework that runs on NVIDIA GPUs."""

ORT_GPU_INSTALL = "pip uninstall -y onnxruntime && pip install onnxruntime-gpu"


def _installed(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _package_file(package: str, *parts: str) -> str:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        return ""
    try:
        return Path(spec.origin).parent.joinpath(*parts).read_text()
    except OSError:
        return ""


def cpu_only(backend: str) -> str | None:
    """Why the installed build of ``backend``'s framework cannot run on an NVIDIA GPU; None when it is
    a CUDA build (whether it then works is :func:`probe`'s question)."""
    if backend == "jax":
        plugins = [d for d in ("jax-cuda12-plugin", "jax-cuda13-plugin") if _installed(d)]
        return None if plugins else f"jax {_installed('jax')} is installed without a CUDA plugin (jax-cuda13-plugin)"
    if backend == "tensorflow":
        if _installed("tensorflow-cpu"):
            return f"tensorflow-cpu {_installed('tensorflow-cpu')} is TensorFlow's CPU-only build"
        info = _package_file("tensorflow", "python", "platform", "build_info.py")
        if "'is_cuda_build', False" in info:
            return "the installed TensorFlow is not a CUDA build"
        return None
    if backend == "torch":
        found = re.search(r"^cuda(?:: [^=]+)? = (.+)$", _package_file("torch", "version.py"), re.MULTILINE)
        if found and found.group(1).strip() == "None":
            return f"torch {_installed('torch')} is PyTorch's CPU-only build"
        return None
    raise ValueError(backend)


_PROBE = """
import json, sys
from ganctl.engine import backends, engine_for
backends.activate(sys.argv[1])
print(json.dumps(engine_for(sys.argv[1]).devices()))
"""


def probe(backend: str, timeout: float = 180) -> tuple[list[str], str]:
    """The devices ``backend`` sees, listed by a child process, and "" ; or [] and why it failed."""
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2",
           "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}
    try:
        done = subprocess.run([sys.executable, "-c", _PROBE, backend], capture_output=True, text=True,
                              timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return [], f"listing its devices took more than {timeout:.0f} s"
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        return [], lines[-1] if lines else f"exit status {done.returncode}"
    try:
        return list(json.loads(done.stdout.strip().splitlines()[-1])), ""
    except (ValueError, IndexError):
        return [], "it printed no device list"


def on_gpu(devices: list[str]) -> bool:
    """Whether a device list (``BackendModule.devices``) has an NVIDIA GPU in it."""
    return any(d.split(":")[0] in ("gpu", "cuda") for d in devices)


def check(backend: str) -> dict[str, object]:
    """Whether ``backend`` can use this machine's NVIDIA GPU: ``usable``, ``problem`` (why not) and
    ``fix`` (the one command), for a machine that has one."""
    problem = cpu_only(backend)
    if problem is None:
        devices, error = probe(backend)
        if on_gpu(devices):
            return {"usable": True, "problem": None, "fix": None, "devices": devices}
        problem = (f"it is a CUDA build but sees no GPU ({error or 'devices: ' + ', '.join(devices)}); "
                   "reinstall it to get matching CUDA libraries")
    return {"usable": False, "problem": problem, "fix": CUDA_INSTALL[backend], "devices": []}
