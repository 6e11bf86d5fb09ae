"""The NVIDIA stack as this process sees it: the driver, and the CUDA, cuDNN and TensorRT libraries.

Everything here is probed with ``ctypes``, silently: a driver that cannot run CUDA, or a library
the loader cannot find, is returned as a sentence for the user, never printed. Libraries
installed as pip wheels (``nvidia-*``, ``tensorrt_libs``) are found in ``sys.path`` and loaded
before what needs them, as onnxruntime's own preloading does.
"""

from __future__ import annotations

import ctypes
import functools
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ganctl.inference.runtime import ort_build

CUDNN = "libcudnn.so.9"
"""The CUDA provider dlopens cuDNN at run time (it is not among its DT_NEEDED entries); the TensorRT
provider links it. onnxruntime-gpu 1.2x-1.3x are built against cuDNN 9."""

_MISSING = re.compile(r"^(?P<name>[^\s:]+): cannot open shared object file")


# -- the driver -----------------------------------------------------------------------------------


def _cuda_error(driver: Any, code: int) -> str:
    name = ctypes.c_char_p()
    try:
        if driver.cuGetErrorName(code, ctypes.byref(name)) == 0 and name.value:
            return f"{name.value.decode()} ({code})"
    except (AttributeError, OSError):
        pass
    return str(code)


@functools.cache
def driver_problem() -> str:
    """Why the NVIDIA driver cannot run CUDA here; "" when it can."""
    try:
        driver = ctypes.CDLL("libcuda.so.1")
    except OSError as exc:
        return f"no NVIDIA driver ({exc})"
    try:
        code = driver.cuInit(0)
        if code != 0:
            return f"the NVIDIA driver found no usable GPU (cuInit: {_cuda_error(driver, code)})"
        count = ctypes.c_int(0)
        code = driver.cuDeviceGetCount(ctypes.byref(count))
        if code != 0 or count.value < 1:
            return "the NVIDIA driver sees no GPU" + (f" (cuDeviceGetCount: {_cuda_error(driver, code)})" if code else "")
        version = ctypes.c_int(0)
        if driver.cuDriverGetVersion(ctypes.byref(version)) != 0:
            return ""
    except (AttributeError, OSError) as exc:
        return f"the NVIDIA driver library is unusable ({exc})"
    package, release, built = ort_build()
    needed = int(built.split(".")[0]) if built[:1].isdigit() else 0
    have = version.value // 1000
    if needed and have < needed:
        return (f"the NVIDIA driver supports CUDA up to {have}.{version.value % 1000 // 10}, but {package} "
                f"{release} is built for CUDA {built}: update the NVIDIA driver")
    return ""


# -- the libraries --------------------------------------------------------------------------------


def library_folders() -> list[Path]:
    """Where pip-installed NVIDIA libraries live (nvidia-* and tensorrt wheels), in sys.path order."""
    folders: list[Path] = []
    for entry in sys.path:
        root = Path(entry or ".")
        if not (root / "nvidia").is_dir() and not (root / "tensorrt_libs").is_dir():
            continue
        folders += sorted(root.glob("nvidia/*/lib")) + [root / "tensorrt_libs"]
    return [f for f in folders if f.is_dir()]


def _find(name: str, folders: Sequence[Path]) -> Path | None:
    return next((f / name for f in folders if (f / name).is_file()), None)


def load(target: str, folders: Sequence[Path], depth: int = 0) -> str:
    """dlopen ``target`` (a path or a soname); a library the system loader cannot find is looked up
    in ``folders`` and loaded first. Returns the loader's error, or "" on success."""
    error = ""
    for _ in range(24):
        try:
            ctypes.CDLL(target)
            return ""
        except OSError as exc:
            error = str(exc)
        missing = _MISSING.match(error)
        found = _find(Path(missing.group("name")).name, folders) if missing and depth < 8 else None
        if found is None:
            return error
        if found.name == Path(target).name:  # a bare soname the system does not have: load the wheel's copy
            return load(str(found), folders, depth + 1) if "/" not in target else error
        problem = load(str(found), folders, depth + 1)
        if problem:
            return problem
    return error


def product(soname: str) -> str | None:
    """Which NVIDIA product and major version provides a library, from its soname."""
    stem, _, major = Path(soname).name.partition(".so.")
    major = major.split(".")[0]
    built = ort_build()[2].split(".")[0]
    return {
        "libcudart": f"CUDA {major}",
        "libcublas": f"CUDA {major}",
        "libcublasLt": f"CUDA {major}",
        "libnvrtc": f"CUDA {major}",
        "libcurand": f"CUDA {built}" if built else "CUDA",  # curand and cufft have their own numbering
        "libcufft": f"CUDA {built}" if built else "CUDA",
        "libcudnn": f"cuDNN {major}",
        "libnvinfer": f"TensorRT {major}",
        "libnvonnxparser": f"TensorRT {major}",
    }.get(stem)


def what_is_missing(error: str) -> str:
    """A loader error in words: which library, and which product and version provides it."""
    missing = _MISSING.match(error)
    if not missing:
        return error
    name = missing.group("name")
    owner = product(name)
    return f"{name} ({owner})" if owner else name


def needs(sonames: Sequence[str]) -> str:
    """``CUDA 13 (libcublasLt.so.13, ...) and cuDNN 9 (libcudnn.so.9)``: the NVIDIA libraries in ``sonames``."""
    products: dict[str, list[str]] = {}
    for soname in sonames:
        owner = product(soname)
        if owner:
            products.setdefault(owner, []).append(soname)
    parts = [f"{owner} ({', '.join(names)})" for owner, names in products.items()]
    return ", ".join(parts[:-1]) + f" and {parts[-1]}" if len(parts) > 1 else "".join(parts) or "its libraries"


# -- the GPUs, without CUDA -----------------------------------------------------------------------


def gpus() -> list[str]:
    """The NVIDIA GPUs of this machine by name, found without loading CUDA or any framework: the
    driver's /proc/driver/nvidia/gpus, else ``nvidia-smi -L``, else the /dev/nvidia* device files;
    [] when there is none."""
    import subprocess

    found = []
    for info in sorted(Path("/proc/driver/nvidia/gpus").glob("*/information")):
        try:
            model = next((line.split(":", 1)[1].strip() for line in info.read_text().splitlines()
                          if line.startswith("Model:")), "")
        except OSError:
            model = ""
        found.append(model or f"an NVIDIA GPU ({info.parent.name})")
    if found:
        return found
    try:
        listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
        names = [m.group(1) for m in re.finditer(r"^GPU \d+: (.+?)(?: \(UUID|$)", listed.stdout, re.MULTILINE)]
        if listed.returncode == 0 and names:
            return names
    except (OSError, subprocess.SubprocessError):
        pass
    return [f"an NVIDIA GPU ({device.name})" for device in sorted(Path("/dev").glob("nvidia[0-9]*"))]
