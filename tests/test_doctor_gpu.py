"""``ganctl doctor`` on a machine with an NVIDIA GPU, faked: whether each installed backend and
onnxruntime can use it, and the one command that fixes each that cannot."""

from __future__ import annotations

import json

import pytest

from ganctl.cli import app
from ganctl.engine import gpu
from ganctl.inference import nvidia


@pytest.fixture
def a_gpu(monkeypatch):
    monkeypatch.setattr(nvidia, "gpus", lambda: ["NVIDIA H200"])
    probed: list[str] = []

    def probe(backend, timeout=180):
        probed.append(backend)
        return ["cpu:0", "cuda:0 (NVIDIA H200)"] if backend == "jax" else ["cpu:0"], ""

    monkeypatch.setattr(gpu, "probe", probe)
    return probed


def test_no_gpu_no_checks_and_no_child_process(runner, monkeypatch):
    monkeypatch.setattr(nvidia, "gpus", lambda: [])
    monkeypatch.setattr(gpu, "probe", lambda *a, **k: pytest.fail("probed without a GPU"))
    report = json.loads(runner.invoke(app, ["doctor", "--json"]).stdout)
    assert report["accelerator"] == {"gpus": [], "checks": {}}
    table = runner.invoke(app, ["doctor"], env={"COLUMNS": "200"})
    assert "none found: training runs on the CPU" in table.stdout


def test_cpu_only_builds_are_named_with_the_command_that_fixes_each(runner, monkeypatch, a_gpu):
    builds = {"jax": "jax 0.10.2 is installed without a CUDA plugin (jax-cuda13-plugin)",
              "tensorflow": "tensorflow-cpu 2.21.0 is TensorFlow's CPU-only build",
              "torch": "torch 2.13.0+cpu is PyTorch's CPU-only build"}
    monkeypatch.setattr(gpu, "cpu_only", builds.get)
    result = runner.invoke(app, ["doctor", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    checks = report["accelerator"]["checks"]
    assert report["accelerator"]["gpus"] == ["NVIDIA H200"]
    for backend in report["installed_backends"]:
        assert checks[backend] == {"usable": False, "problem": builds[backend], "fix": gpu.CUDA_INSTALL[backend],
                                   "devices": []}
    assert a_gpu == []  # a CPU-only build is not started to ask
    assert gpu.CUDA_INSTALL["jax"] == "pip install 'ganctl[cuda]'"
    assert gpu.CUDA_INSTALL["tensorflow"].startswith("pip uninstall -y tensorflow-cpu && ")
    assert "torch==2.13.0" in gpu.CUDA_INSTALL["torch"]
    table = runner.invoke(app, ["doctor"], env={"COLUMNS": "250"})
    assert "NVIDIA H200" in table.stdout
    assert "no: jax 0.10.2 is installed without a CUDA plugin (jax-cuda13-plugin). Fix: pip install " \
           "'ganctl[cuda]'" in table.stdout


def test_a_cuda_build_that_sees_the_gpu_is_usable_and_one_that_does_not_is_told_to_reinstall(
        runner, monkeypatch, a_gpu):
    monkeypatch.setattr(gpu, "cpu_only", lambda backend: None)  # every backend a CUDA build
    report = json.loads(runner.invoke(app, ["doctor", "--json"]).stdout)
    checks = report["accelerator"]["checks"]
    assert checks["jax"] == {"usable": True, "problem": None, "fix": None, "devices": ["cpu:0", "cuda:0 (NVIDIA H200)"]}
    for backend in set(report["installed_backends"]) - {"jax"}:
        assert checks[backend]["usable"] is False and "sees no GPU" in checks[backend]["problem"]
        assert checks[backend]["fix"] == gpu.CUDA_INSTALL[backend]
    assert sorted(a_gpu) == sorted(report["installed_backends"])


def test_onnxruntime_cpu_build_or_a_cuda_provider_that_cannot_load(runner, monkeypatch, a_gpu):
    from importlib import metadata

    monkeypatch.setattr(gpu, "cpu_only", lambda backend: "CPU-only")
    report = json.loads(runner.invoke(app, ["doctor", "--json"]).stdout)
    onnx = report["accelerator"]["checks"]["onnxruntime"]  # onnxruntime-gpu here, without a driver
    assert onnx["usable"] is False and "driver" in onnx["problem"]
    real = metadata.version

    def version(name):
        if name == "onnxruntime-gpu":
            raise metadata.PackageNotFoundError(name)
        return "1.31.1" if name == "onnxruntime" else real(name)

    monkeypatch.setattr(metadata, "version", version)
    report = json.loads(runner.invoke(app, ["doctor", "--json"]).stdout)
    assert report["accelerator"]["checks"]["onnxruntime"] == {
        "usable": False, "problem": "onnxruntime is the CPU-only build",
        "fix": "pip uninstall -y onnxruntime && pip install onnxruntime-gpu"}


def test_the_builds_here_are_read_from_their_files():
    # CI installs CPU-only builds: each is recognised without importing the framework
    from ganctl.engine import backends

    for backend in backends.BACKENDS:
        if backends.missing(backend) is None:
            assert gpu.cpu_only(backend), backend
    assert gpu.on_gpu(["cpu:0", "gpu:0"]) and gpu.on_gpu(["cuda:0 (NVIDIA H200)"]) and not gpu.on_gpu(["cpu:0"])
