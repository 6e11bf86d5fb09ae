"""ONNX inference: ``ganctl.inference.Generator`` and ``ganctl generate MODEL.onnx``, on small
models built with ``onnx.helper`` (see onnx_models.py), so no training or export is needed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ganctl.cli import app
from ganctl.errors import ConfigError
from ganctl.inference import elf, nvidia, providers, runtime
from ganctl.inference.generator import Generator
from ganctl.inference.providers import probe_provider
from ganctl.inference.topology import physical_cores
from ganctl.sampling import latents

from . import onnx_models
from .conftest import ROOT

CUDA = probe_provider("cuda").available
TENSORRT = probe_provider("tensorrt").available


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("onnx")
    return {
        "conditional": onnx_models.generator(folder / "cond.onnx", latent_dim=4, num_classes=3, shape=(2, 3, 1)),
        "plain": onnx_models.generator(folder / "plain.onnx", latent_dim=5, shape=(4, 4, 3), seed=1),
        "foreign": onnx_models.generator(folder / "foreign.onnx", latent_dim=6, metadata=False, z_name="noise",
                                         seed=2),
        "foreign_batch1": onnx_models.generator(folder / "foreign1.onnx", latent_dim=6, metadata=False,
                                                z_name="noise", seed=2, batch=1),
        "two_inputs": onnx_models.two_float_inputs(folder / "two.onnx"),
        "flat": onnx_models.flat_output(folder / "flat.onnx"),
    }


@pytest.fixture(scope="module")
def cond(models) -> Generator:
    return Generator.open(models["conditional"], provider="cpu")


@pytest.fixture(scope="module")
def plain(models) -> Generator:
    return Generator.open(models["plain"], provider="cpu")


# -- opening and metadata --------------------------------------------------------------------------


def test_reads_ganctl_metadata(cond, models):
    assert cond.path == models["conditional"] and not cond.foreign
    assert (cond.latent_dim, cond.num_classes, cond.conditional) == (4, 3, True)
    assert cond.class_names == ["class0", "class1", "class2"]
    assert cond.value_range == (-1.0, 1.0) and cond.data_shape == (2, 3, 1)
    assert cond.metadata["ganctl.model"] == "toy" and cond.metadata["ganctl.step"] == "10"
    assert cond.providers == ["CPUExecutionProvider"]
    assert cond.signature() == "z: float32 [batch, 4], label: int64 [batch] -> images: float32 [batch, 2, 3, 1]"


def test_a_run_directory_opens_its_export(tmp_path, models):
    run = tmp_path / "run"
    (run / "exports").mkdir(parents=True)
    (run / "run.json").write_text("{}")
    (run / "exports" / "generator.onnx").write_bytes(models["plain"].read_bytes())
    generator = Generator.open(run)
    assert generator.path == run / "exports" / "generator.onnx" and generator.latent_dim == 5


def test_a_run_directory_without_export_says_how_to_export(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text("{}")
    with pytest.raises(ConfigError, match=r"without an ONNX export .*run `ganctl export .*run --onnx` first"):
        Generator.open(run)


def test_foreign_model_with_one_float_input(models):
    foreign = Generator.open(models["foreign"])
    assert foreign.foreign and foreign.metadata == {}
    assert (foreign.latent_dim, foreign.num_classes, foreign.data_shape) == (6, 0, (2, 3, 1))
    images, labels = foreign.sample(5, seed=3)
    assert images.shape == (5, 2, 3, 1) and labels is None


def test_foreign_model_with_a_fixed_batch_is_fed_padded_batches(models):
    dynamic = Generator.open(models["foreign"]).sample(5, seed=3)[0]
    fixed = Generator.open(models["foreign_batch1"])
    np.testing.assert_allclose(fixed.sample(5, seed=3)[0], dynamic, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(fixed.run(latents(3, 5, 6)), dynamic, rtol=1e-6, atol=1e-6)


def _bad(tmp_path: Path, kind: str, models: dict[str, Path]) -> Path:
    path = tmp_path / f"{kind}.onnx"
    if kind == "missing":
        return path
    if kind == "folder":
        path.mkdir()
        return path
    if kind == "truncated":
        data = models["conditional"].read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "text":
        path.write_text("version https://git-lfs.github.com/spec/v1\n")
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "ir14":
        import onnx

        model = onnx.load(str(models["conditional"]))
        model.ir_version = 14
        onnx.save(model, str(path))
    elif kind == "npz":
        np.savez(path.with_suffix(".npz"), a=np.zeros(3))
        path.with_suffix(".npz").rename(path)
    return path


@pytest.mark.parametrize("kind, expected", [
    ("missing", "does not exist; give an ONNX model file"),
    ("folder", "is a folder, not an ONNX model or a ganctl run directory"),
    ("truncated", "is not an ONNX model onnxruntime can load: Protobuf parsing failed"),
    ("text", "is not an ONNX model onnxruntime can load"),
    ("empty", "is not an ONNX model onnxruntime can load"),
    ("npz", "is not an ONNX model onnxruntime can load"),
    ("ir14", "Unsupported model IR version: 14, max supported IR version"),
])
def test_bad_files_are_config_errors(tmp_path, models, kind, expected):
    path = _bad(tmp_path, kind, models)
    with pytest.raises(ConfigError) as caught:
        Generator.open(path)
    assert str(path) in str(caught.value) and expected in str(caught.value)


@pytest.mark.parametrize("kind, problem, signature", [
    ("two_inputs", "no ganctl metadata and 2 inputs (2 of them float)",
     "a: float32 [batch, 4], b: float32 [batch, 4] -> out: float32 [batch, 2, 2, 1]"),
    ("flat", "its output y is not a float [batch, H, W, C] image batch", "x: float32 [batch, 4] -> y: float32 [batch, 4]"),
])
def test_foreign_models_ganctl_cannot_drive_show_their_signature(models, kind, problem, signature):
    with pytest.raises(ConfigError) as caught:
        Generator.open(models[kind])
    message = str(caught.value)
    assert problem in message and f"its signature: {signature}" in message
    assert "ganctl expects a ganctl export (input z: float32 [batch, latent_dim]" in message


@pytest.mark.parametrize("metadata, num_classes, expected", [
    ({"ganctl.format": "3"}, 0, "ganctl ONNX format 3, which this ganctl does not read (it reads formats 1 and 2)"),
    ({"ganctl.format": "2"}, 0, "the ganctl metadata lacks ganctl.table"),  # format 2: a table's generator
    ({"ganctl.layout": "NCHW"}, 0, "NCHW layout; ganctl reads NHWC"),
    ({"ganctl.latent_dim": "7"}, 0, "its metadata says latent_dim 7, but it has no input z: float32 [batch, 7]"),
    ({"ganctl.num_classes": "3"}, 0, "it is conditional (3 classes), so it must take z and label: int64 [batch]"),
    ({"ganctl.num_classes": "0"}, 3, "it is unconditional, so it must take only z"),
    ({"ganctl.data_shape": "[2, 3"}, 0, "ganctl.data_shape is not valid JSON"),
    ({"ganctl.latent_dim": "four"}, 0, "the ganctl metadata is malformed"),
    ({"ganctl.value_range": "[1, -1]"}, 0, "the ganctl metadata is inconsistent"),
    ({"ganctl.data_shape": "[3, 2, 1]"}, 0, "says the images are [3, 2, 1] (H, W, C), but its output is images: float32 "
                                            "[batch, 2, 3, 1]"),
])
def test_ganctl_metadata_that_does_not_match_the_graph(tmp_path, metadata, num_classes, expected):
    path = onnx_models.generator(tmp_path / "m.onnx", latent_dim=4, num_classes=num_classes, metadata=metadata)
    with pytest.raises(ConfigError) as caught:
        Generator.open(path)
    assert expected in str(caught.value)


# -- sampling --------------------------------------------------------------------------------------


def test_sample_is_deterministic_per_seed(cond):
    a, la = cond.sample(20, seed=7)
    b, lb = cond.sample(20, seed=7)
    c, _ = cond.sample(20, seed=8)
    assert a.shape == (20, 2, 3, 1) and a.dtype == np.float32 and la.dtype == np.int64
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(la, lb)
    assert not np.allclose(a, c)
    assert a.min() > -1 and a.max() < 1


def test_sample_uses_ganctl_sampling(cond):
    images, labels = cond.sample(10, seed=4)
    assert list(labels) == [0, 1, 2, 0, 1, 2, 0, 1, 2, 0]
    np.testing.assert_array_equal(cond.run(latents(4, 10, 4), labels), images)


def test_batching_does_not_change_the_images(cond, plain):
    for generator in (cond, plain):
        whole, labels = generator.sample(23, seed=1, batch_size=256)
        batched, again = generator.sample(23, seed=1, batch_size=4)
        np.testing.assert_allclose(batched, whole, rtol=1e-6, atol=1e-6)
        assert (labels is None and again is None) or list(labels) == list(again)


def test_labels(cond, plain):
    images, labels = cond.sample(6, seed=0, label=2)
    assert list(labels) == [2] * 6
    others = cond.sample(6, seed=0, label=1)[0]
    assert not np.allclose(images, others)  # the label changes the image
    with pytest.raises(ConfigError, match=r"label 3 is outside the classes of this model: use 0 to 2"):
        cond.sample(2, label=3)
    with pytest.raises(ConfigError, match=r"label -1 is outside"):
        cond.sample(2, label=-1)
    with pytest.raises(ConfigError, match=r"is unconditional: it takes no label"):
        plain.sample(2, label=0)
    assert plain.sample(3)[1] is None


@pytest.mark.parametrize("kwargs, expected", [
    ({"n": 0}, "n must be a whole number of at least 1"),
    ({"n": 2, "seed": -1}, "seed must be a whole number of at least 0"),
    ({"n": 2, "batch_size": 0}, "batch_size must be a whole number of at least 1"),
])
def test_sample_arguments(cond, kwargs, expected):
    with pytest.raises(ConfigError, match=expected):
        cond.sample(**kwargs)


COND_EXPECTED = "takes z: float32 [n, 4] and labels: int64 [n] with values 0 to 2"
PLAIN_EXPECTED = "takes z: float32 [n, 5] and no labels (the model is unconditional)"


@pytest.mark.parametrize("which, z, labels, expected", [
    ("cond", np.zeros(4, np.float32), [0], "z has shape [4] and type float32"),
    ("cond", np.zeros((2, 4), np.int64), [0, 1], "z has shape [2, 4] and type int64"),
    ("cond", np.zeros((2, 5), np.float32), [0, 1], "z has shape [2, 5]"),
    ("cond", np.zeros((0, 4), np.float32), [], "z has shape [0, 4]"),
    ("cond", np.zeros((2, 4), np.float32), None, "is conditional and needs labels"),
    ("cond", np.zeros((2, 4), np.float32), [[0, 1]], "labels have shape [1, 2] and type int64 for 2 latents"),
    ("cond", np.zeros((2, 4), np.float32), [0.0, 1.0], "labels have shape [2] and type float64"),
    ("cond", np.zeros((2, 4), np.float32), [0, 1, 2], "labels have shape [3]"),
    ("cond", np.zeros((2, 4), np.float32), [0, 3], "label 3 is outside the classes"),
    ("cond", np.zeros((2, 4), np.float32), [-1, 0], "label -1 is outside the classes"),
    ("plain", np.zeros((2, 5), np.float32), [0, 1], "labels were given, but"),
    ("plain", np.zeros((2, 4), np.float32), None, "z has shape [2, 4]"),
])
def test_run_validates_its_inputs(cond, plain, which, z, labels, expected):
    generator = cond if which == "cond" else plain
    with pytest.raises(ConfigError) as caught:
        generator.run(z, labels)
    message = str(caught.value)
    assert expected in message and (COND_EXPECTED if which == "cond" else PLAIN_EXPECTED) in message


def test_run_accepts_other_float_and_integer_types(cond):
    z = latents(0, 3, 4)
    reference = cond.run(z, np.array([0, 1, 2], np.int64))
    np.testing.assert_allclose(cond.run(z.astype(np.float64), np.array([0, 1, 2], np.uint8)), reference)
    np.testing.assert_allclose(cond.run(z.tolist(), [0, 1, 2]), reference)


# -- providers and threads -------------------------------------------------------------------------


def test_auto_picks_the_cpu_without_a_gpu(models):
    generator = Generator.open(models["plain"])
    expected = "TensorrtExecutionProvider" if TENSORRT else "CUDAExecutionProvider" if CUDA else "CPUExecutionProvider"
    assert generator.providers[0] == expected and generator.providers[-1] == "CPUExecutionProvider"


@pytest.mark.skipif(CUDA, reason="this machine can run the CUDA provider")
def test_asking_for_cuda_without_it_is_a_clear_error(models):
    with pytest.raises(ConfigError) as caught:
        Generator.open(models["plain"], provider="cuda")
    message = str(caught.value)
    assert message.startswith("the cuda execution provider is not available: ")
    assert "libcuda.so.1" in message or "cannot load" in message
    assert "--provider cpu" in message


def test_unknown_provider_and_bad_threads(models):
    with pytest.raises(ConfigError, match="unknown execution provider 'rocm'; use one of: auto, cpu, cuda, tensorrt"):
        Generator.open(models["plain"], provider="rocm")
    with pytest.raises(ConfigError, match="threads must be a whole number of at least 1"):
        Generator.open(models["plain"], threads=0)


def test_threads(models):
    assert Generator.open(models["plain"]).threads == physical_cores()
    assert Generator.open(models["plain"], threads=1).threads == 1


def test_missing_libraries_are_named_with_their_product():
    describe = nvidia.what_is_missing
    cuda = runtime.ort_build()[2].split(".")[0]
    assert describe("libcublasLt.so.13: cannot open shared object file: No such file or directory") == \
        "libcublasLt.so.13 (CUDA 13)"
    assert describe("libcudnn.so.9: cannot open shared object file: No such file or directory") == \
        "libcudnn.so.9 (cuDNN 9)"
    assert describe("libnvinfer.so.10: cannot open shared object file: No such file or directory") == \
        "libnvinfer.so.10 (TensorRT 10)"
    assert describe("libcurand.so.10: cannot open shared object file: x").startswith(f"libcurand.so.10 (CUDA {cuda}".strip())
    assert describe("/x/liby.so: undefined symbol: z") == "/x/liby.so: undefined symbol: z"


def test_provider_chains(monkeypatch):
    def fake(available):
        return lambda name: providers.ProviderStatus(name, name in available, "" if name in available else "absent")

    monkeypatch.setattr(providers, "probe_provider", fake({"cpu", "cuda", "tensorrt"}))
    assert providers.providers_for("auto") == ["TensorrtExecutionProvider", "CUDAExecutionProvider",
                                               "CPUExecutionProvider"]
    assert providers.providers_for("cuda") == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    monkeypatch.setattr(providers, "probe_provider", fake({"cpu", "tensorrt"}))
    assert providers.providers_for("auto") == ["TensorrtExecutionProvider", "CPUExecutionProvider"]
    assert providers.providers_for("tensorrt") == ["TensorrtExecutionProvider", "CPUExecutionProvider"]
    monkeypatch.setattr(providers, "probe_provider", fake({"cpu"}))
    assert providers.providers_for("auto") == ["CPUExecutionProvider"]
    assert providers.providers_for("cpu") == ["CPUExecutionProvider"]
    with pytest.raises(ConfigError, match="the tensorrt execution provider is not available: absent"):
        providers.providers_for("tensorrt")


@pytest.mark.skipif(CUDA, reason="this machine can run the CUDA provider")
def test_a_provider_onnxruntime_cannot_start_is_an_error(monkeypatch, models):
    # the probe wrongly says yes; onnxruntime then falls back to the CPU, which a forced provider refuses
    monkeypatch.setattr(providers, "probe_provider", lambda name: providers.ProviderStatus(name, True))
    with pytest.raises(ConfigError, match="onnxruntime could not start the cuda execution provider"):
        Generator.open(models["plain"], provider="cuda")


def test_wheel_library_folders(tmp_path, monkeypatch):
    site = tmp_path / "site"
    for folder in ("nvidia/cu13/lib", "nvidia/cudnn/lib", "tensorrt_libs", "nvidia/empty"):
        (site / folder).mkdir(parents=True)
    monkeypatch.setattr(sys, "path", [str(tmp_path / "elsewhere"), str(site)])
    assert nvidia.library_folders() == [site / "nvidia/cu13/lib", site / "nvidia/cudnn/lib", site / "tensorrt_libs"]


@pytest.mark.skipif(not shutil.which("cc"), reason="needs a C compiler")
def test_dependencies_are_found_in_wheel_folders(tmp_path):
    """A library whose dependency the system loader cannot find loads once the dependency is found
    in a wheel's folder, as CUDA's libraries are in nvidia-* wheels."""
    tag = f"{os.getpid()}_{tmp_path.name}".replace("-", "_")
    dep, top = f"libganctl_dep_{tag}.so.1", f"libganctl_top_{tag}.so"
    (tmp_path / "wheel").mkdir()
    (tmp_path / "dep.c").write_text("int dep(void) { return 1; }\n")
    (tmp_path / "top.c").write_text("int dep(void);\nint top(void) { return dep(); }\n")
    subprocess.run(["cc", "-shared", "-fPIC", f"-Wl,-soname,{dep}", "-o", str(tmp_path / "wheel" / dep),
                    str(tmp_path / "dep.c")], check=True)
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(tmp_path / top), str(tmp_path / "top.c"),
                    str(tmp_path / "wheel" / dep)], check=True)
    error = nvidia.load(str(tmp_path / top), [])
    assert error.startswith(f"{dep}: cannot open shared object file")
    assert nvidia.what_is_missing(error) == dep
    assert nvidia.load(f"libganctl_absent_{tag}.so.1", [tmp_path / "wheel"]).startswith("libganctl_absent")
    assert nvidia.load(str(tmp_path / top), [tmp_path / "wheel"]) == ""
    other = f"libganctl_other_{tag}.so.2"  # a bare soname, as libcudnn.so.9 is loaded
    subprocess.run(["cc", "-shared", "-fPIC", f"-Wl,-soname,{other}", "-o", str(tmp_path / "wheel" / other),
                    str(tmp_path / "dep.c")], check=True)
    assert nvidia.load(other, []).startswith(f"{other}: cannot open shared object file")
    assert nvidia.load(other, [tmp_path / "wheel"]) == ""


DRIVER_STUB = r"""
#include <stdlib.h>
static int env(const char *name, int fallback) { const char *v = getenv(name); return v ? atoi(v) : fallback; }
int cuInit(unsigned flags) { return env("STUB_CUINIT", 0); }
int cuDeviceGetCount(int *count) { *count = env("STUB_GPUS", 1); return 0; }
int cuDriverGetVersion(int *version) { *version = env("STUB_DRIVER", 13000); return 0; }
int cuGetErrorName(int code, const char **name) { *name = "CUDA_ERROR_NO_DEVICE"; return 0; }
"""

PROBE = ("import json; from ganctl.inference.providers import probe_provider; "
         "print(json.dumps(probe_provider('cuda').__dict__))")


@pytest.mark.skipif(not shutil.which("cc"), reason="needs a C compiler")
@pytest.mark.skipif(CUDA, reason="this machine has a real CUDA stack")
def test_probe_with_a_stub_driver_and_stub_libraries(tmp_path):
    """A fake NVIDIA stack: a driver stub on LD_LIBRARY_PATH, empty libraries with the sonames the
    provider needs in a pip-wheel-like folder. The probe must say yes without loading the provider
    library (whose static initialisers would crash the process), and name what is missing."""
    capi = runtime.ort_folder() / "capi"
    needed = elf.needed(capi / "libonnxruntime_providers_cuda.so")
    assert needed and any(n.startswith("libcudart.so.") for n in needed)
    driver, wheel = tmp_path / "driver", tmp_path / "site" / "nvidia" / "cu13" / "lib"
    driver.mkdir()
    wheel.mkdir(parents=True)
    (tmp_path / "driver.c").write_text(DRIVER_STUB)
    (tmp_path / "empty.c").write_text("int ganctl_stub(void) { return 0; }\n")
    subprocess.run(["cc", "-shared", "-fPIC", "-Wl,-soname,libcuda.so.1", "-o", str(driver / "libcuda.so.1"),
                    str(tmp_path / "driver.c")], check=True)
    for soname in [n for n in needed if nvidia.product(n)]:
        subprocess.run(["cc", "-shared", "-fPIC", f"-Wl,-soname,{soname}", "-o", str(wheel / soname),
                        str(tmp_path / "empty.c")], check=True)

    def probe(**env: str) -> dict:
        code = f"import sys; sys.path.insert(0, {str(tmp_path / 'site')!r}); {PROBE}"
        full = {**os.environ, "LD_LIBRARY_PATH": str(driver), "PYTHONPATH": str(ROOT), **env}
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full)
        assert done.returncode == 0, done.stderr  # -11 would be the crash the probe must avoid
        return json.loads(done.stdout)

    missing = probe()
    assert not missing["available"] and "cannot load libcudnn.so.9 (cuDNN 9)" in missing["reason"]
    subprocess.run(["cc", "-shared", "-fPIC", "-Wl,-soname,libcudnn.so.9", "-o", str(wheel.parent.parent / "cudnn.so"),
                    str(tmp_path / "empty.c")], check=True)
    (wheel.parent.parent / "cudnn" / "lib").mkdir(parents=True)
    (wheel.parent.parent / "cudnn.so").rename(wheel.parent.parent / "cudnn" / "lib" / "libcudnn.so.9")
    assert probe() == {"name": "cuda", "available": True, "reason": ""}
    old = probe(STUB_DRIVER="12040")
    assert not old["available"] and "the NVIDIA driver supports CUDA up to 12.4" in old["reason"]
    assert "update the NVIDIA driver" in old["reason"]
    no_gpu = probe(STUB_CUINIT="100")
    assert "found no usable GPU (cuInit: CUDA_ERROR_NO_DEVICE (100))" in no_gpu["reason"]
    assert "sees no GPU" in probe(STUB_GPUS="0")["reason"]


def _fake_sysfs(root: Path, siblings: dict[int, str], name: str = "core_cpus_list") -> Path:
    for cpu, text in siblings.items():
        folder = root / f"cpu{cpu}" / "topology"
        folder.mkdir(parents=True)
        (folder / name).write_text(text + "\n")
    return root


def test_physical_cores_groups_hyperthreads(tmp_path):
    # 8 logical CPUs: 4 cores, each with two threads (n and n+4), as on most x86 machines
    sysfs = _fake_sysfs(tmp_path / "a", {cpu: f"{cpu % 4},{cpu % 4 + 4}" for cpu in range(8)})
    assert physical_cores(sysfs, range(8)) == 4
    assert physical_cores(sysfs, [0, 4]) == 1  # both threads of one core
    assert physical_cores(sysfs, [0, 1, 5]) == 2
    ranges = _fake_sysfs(tmp_path / "b", {cpu: f"{cpu - cpu % 2}-{cpu - cpu % 2 + 1}" for cpu in range(6)},
                         name="thread_siblings_list")  # older kernels; siblings adjacent
    assert physical_cores(ranges, range(6)) == 3
    no_smt = _fake_sysfs(tmp_path / "c", {cpu: str(cpu) for cpu in range(3)})
    assert physical_cores(no_smt, range(3)) == 3
    assert physical_cores(tmp_path / "absent", [0, 1, 2]) == 3  # no topology: the usable logical CPUs


def test_physical_cores_here_respects_the_affinity():
    assert 1 <= physical_cores() <= len(os.sched_getaffinity(0))


# -- the command line ------------------------------------------------------------------------------


def test_generate_onnx_npz_and_png(runner, models, cond, tmp_path):
    result = runner.invoke(app, ["generate", str(models["conditional"]), "-n", "7", "--seed", "2",
                                 "--out", str(tmp_path / "a.npz")])
    assert result.exit_code == 0, result.output
    assert "wrote 7 images to" in result.stdout and "CPUExecutionProvider" in result.stdout
    images, labels = cond.sample(7, seed=2)
    with np.load(tmp_path / "a.npz") as data:
        np.testing.assert_array_equal(data["images"], images)
        assert data["labels"].dtype == np.int64 and list(data["labels"]) == list(labels)
    result = runner.invoke(app, ["generate", str(models["conditional"]), "-n", "4", "--label", "1",
                                 "--provider", "cpu", "--out", str(tmp_path / "one.npz")])
    assert result.exit_code == 0, result.output
    with np.load(tmp_path / "one.npz") as data:
        assert list(data["labels"]) == [1] * 4
    result = runner.invoke(app, ["generate", str(models["plain"]), "-n", "9", "--out", str(tmp_path / "sub" / "g.png")])
    assert result.exit_code == 0, result.output
    from PIL import Image

    with Image.open(tmp_path / "sub" / "g.png") as image:
        assert image.mode == "RGB" and image.size[0] > 32
    with np.load(_npz(runner, models["plain"], tmp_path)) as data:
        assert "labels" not in data and data["images"].shape == (3, 4, 4, 3)


def _npz(runner, model: Path, tmp_path: Path) -> Path:
    out = tmp_path / "plain.npz"
    result = runner.invoke(app, ["generate", str(model), "-n", "3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_generate_rescales_other_value_ranges_to_minus_one_one(runner, tmp_path):
    # tanh is in (-1, 1); declared as (0, 1), the files must hold 2 * x - 1
    model = onnx_models.generator(tmp_path / "m.onnx", metadata={"ganctl.value_range": json.dumps([0.0, 1.0])})
    raw = Generator.open(model).sample(3)[0]
    assert runner.invoke(app, ["generate", str(model), "-n", "3", "--out", str(tmp_path / "o.npz")]).exit_code == 0
    with np.load(tmp_path / "o.npz") as data:
        np.testing.assert_allclose(data["images"], 2 * raw - 1, rtol=1e-6, atol=1e-6)


def _bad_cli_cases(models: dict[str, Path], tmp_path: Path) -> list[tuple[list[str], str]]:
    cond, plain = str(models["conditional"]), str(models["plain"])
    out = str(tmp_path / "o.npz")
    (tmp_path / "file").write_text("x")
    return [
        ([cond, "-n", "0", "--out", out], "-n must be at least 1, got 0."),
        ([cond, "--seed", "-2", "--out", out], "--seed must be 0 or more, got -2."),
        ([cond, "--out", str(tmp_path / "o.jpg")], "must end in .png (a grid), .npz (arrays)"),
        ([cond, "--label", "3", "--out", out], "--label 3 is outside the classes of this model: use 0 to 2."),
        ([plain, "--label", "0", "--out", out], "--label is only for conditional models"),
        ([cond, "--backend", "jax", "--out", out], "--backend is for run directories"),
        ([str(tmp_path), "--provider", "cpu", "--out", out], "--provider is for ONNX models"),
        ([cond, "--provider", "rocm", "--out", out], "unknown execution provider 'rocm'"),
        ([str(models["two_inputs"]), "--out", out], "is not a generator ganctl can run"),
        ([str(tmp_path / "missing.onnx"), "--out", out], "missing.onnx does not exist"),
        ([str(tmp_path / "file"), "--out", out], "is not an ONNX model onnxruntime can load"),
        ([cond, "--out", "/proc/nope/x.npz"], "cannot write /proc/nope/x.npz"),
        ([cond, "--out", str(tmp_path / "file" / "x.npz")], "is not a writable folder"),
        ([cond, "--out", str(tmp_path / "adir.npz")], "is a folder; give a file name in it"),
    ]


def test_generate_onnx_errors(runner, models, tmp_path):
    (tmp_path / "adir.npz").mkdir()
    for args, expected in _bad_cli_cases(models, tmp_path):
        result = runner.invoke(app, ["generate", *args])
        assert result.exit_code == 2, (args, result.output)
        assert f"error: {expected}" in result.stderr or expected in result.stderr, (args, result.stderr)
        assert result.stderr.startswith("error: ") and "Traceback" not in result.output, (args, result.output)
        assert not (tmp_path / "o.npz").exists()


def test_generate_onnx_unwritable_out_is_one_line(runner, models):
    result = runner.invoke(app, ["generate", str(models["plain"]), "--out", "/proc/nope/x.png"])
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr


@pytest.mark.skipif(CUDA, reason="this machine can run the CUDA provider")
def test_generate_provider_cuda_without_a_gpu(runner, models, tmp_path):
    result = runner.invoke(app, ["generate", str(models["plain"]), "--provider", "cuda",
                                 "--out", str(tmp_path / "o.png")])
    assert result.exit_code == 2 and "error: the cuda execution provider is not available" in result.stderr
    assert "Traceback" not in result.output and not (tmp_path / "o.png").exists()


# -- a clean stderr, and no Keras --------------------------------------------------------------------


HEAVY = ("keras", "jax", "tensorflow", "torch")


def _python(code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "GANCTL_LOAD_PLUGINS": ""}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)


def test_the_python_api_leaves_stderr_clean_and_imports_no_backend(models):
    done = _python(
        "import sys\n"
        "import ganctl.inference.generator\n"
        f"print('BEFORE=' + ','.join(m for m in {HEAVY + ('onnxruntime',)!r} if m in sys.modules))\n"
        "from ganctl.inference.generator import Generator\n"
        f"images, _ = Generator.open({str(models['conditional'])!r}).sample(4)\n"
        "print('SHAPE', images.shape)\n"
        f"print('AFTER=' + ','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    assert done.returncode == 0, done.stderr
    assert "BEFORE=\n" in done.stdout and "SHAPE (4, 2, 3, 1)" in done.stdout and "AFTER=\n" in done.stdout
    assert "[E:onnxruntime" not in done.stderr and "Failed to load library" not in done.stderr
    assert done.stderr.strip() == "", done.stderr


def test_the_command_leaves_stderr_clean(models, tmp_path):
    done = subprocess.run(["ganctl", "generate", str(models["conditional"]), "-n", "4", "--out", str(tmp_path / "o.png")],
                          capture_output=True, text=True, env={**os.environ, "GANCTL_LOAD_PLUGINS": ""})
    assert done.returncode == 0, done.stderr
    assert "[E:onnxruntime" not in done.stderr and "Failed to load library" not in done.stderr
    assert done.stderr.strip() == "", done.stderr
    assert (tmp_path / "o.png").is_file()


def test_the_command_on_onnx_imports_no_backend(models, tmp_path):
    argv = ["generate", str(models["plain"]), "-n", "2", "--out", str(tmp_path / "o.npz")]
    done = _python(
        "import sys\n"
        "from ganctl.cli import app\n"
        f"try:\n    app({argv!r})\nexcept SystemExit as exc:\n    print('EXIT', exc.code)\n"
        f"print('HEAVY=' + ','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    assert "EXIT 0" in done.stdout and "HEAVY=\n" in done.stdout, done.stdout + done.stderr
