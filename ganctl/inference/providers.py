"""Which onnxruntime execution provider runs a model: the choice, and probing whether a GPU one can run.

GPU execution providers are used only when they can really run: before asking onnxruntime for
one, ganctl probes the NVIDIA driver and the provider's shared libraries itself, with ``ctypes``
(``ganctl.inference.nvidia``). Asking onnxruntime for the CUDA provider on a machine without the
CUDA libraries makes it print a red ``Failed to load library`` error on stderr and fall back to
the CPU, which ganctl must never show on a CPU-only machine.
"""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass
from typing import Any

from ganctl.errors import ConfigError
from ganctl.fsutil import cache_dir
from ganctl.inference import elf, nvidia
from ganctl.inference.runtime import ort_build, ort_folder

PROVIDERS = ("auto", "cpu", "cuda", "tensorrt")
"""Accepted values of ``provider``: ``auto`` takes TensorRT, then CUDA, when they load; else CPU."""

ORT_PROVIDERS = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": "CPUExecutionProvider",
}
"""onnxruntime's name of each provider ganctl can ask for."""


@dataclass(frozen=True)
class ProviderStatus:
    """Whether an execution provider can run here, and if not, why and what it needs."""

    name: str  # cpu, cuda or tensorrt
    available: bool
    reason: str = ""


@functools.cache
def probe_provider(name: str) -> ProviderStatus:
    """Whether onnxruntime's ``name`` provider (``cpu``, ``cuda`` or ``tensorrt``) can run here.

    Probed silently with ``ctypes``: the NVIDIA driver must load and see a GPU, and every library
    the provider links against (read from its ELF DT_NEEDED entries: CUDA, cuDNN, TensorRT) must
    load; the CUDA provider also needs cuDNN, which it loads at run time. Libraries installed as
    pip wheels (``nvidia-*``, ``tensorrt_libs``) are found and loaded first. The result is cached
    for the process.
    """
    if name == "cpu":
        return ProviderStatus("cpu", True)
    if name not in ORT_PROVIDERS:
        raise ConfigError(f"unknown execution provider '{name}'; use one of: {', '.join(PROVIDERS)}.")
    package, release, _ = ort_build()
    label = "CUDA" if name == "cuda" else "TensorRT"
    folder = ort_folder()
    library = folder / "capi" / f"libonnxruntime_providers_{name}.so" if folder else None
    if library is None or not library.is_file():
        return ProviderStatus(name, False, f"{package} {release} has no {label} provider; install onnxruntime-gpu "
                                           "(it replaces onnxruntime, and runs on CPUs too)")
    if not sys.platform.startswith("linux"):
        return ProviderStatus(name, False, "ganctl probes GPU providers on Linux only")
    # The provider library itself must not be loaded here: its static initialisers dereference the
    # host pointer that onnxruntime sets only when it loads the library itself, so a successful
    # ctypes.CDLL of it crashes the process (SIGSEGV) on exactly the machines that have a GPU.
    # Loading what it links against answers the same question safely.
    needed = elf.needed(library)
    if needed is None:
        return ProviderStatus(name, False, f"cannot read the libraries {library} needs; reinstall {package}")
    wanted = [*needed, nvidia.CUDNN] if name == "cuda" and nvidia.CUDNN not in needed else needed
    needs = nvidia.needs(wanted)
    problem = nvidia.driver_problem()
    if problem:
        return ProviderStatus(name, False, f"{problem}. The {label} provider of {package} {release} needs an "
                                           f"NVIDIA GPU and its driver, and {needs}")
    folders = nvidia.library_folders()
    error = next(filter(None, (nvidia.load(soname, folders) for soname in wanted)), "")
    if error:
        return ProviderStatus(
            name, False,
            f"the {label} provider of {package} {release} cannot load {nvidia.what_is_missing(error)}: it needs "
            f"{needs} where the loader finds them (the CUDA toolkit, cuDNN and TensorRT on LD_LIBRARY_PATH, or "
            f"NVIDIA's pip wheels, e.g. `pip install '{package}[cuda,cudnn]'`)",
        )
    return ProviderStatus(name, True)


def providers_for(choice: str) -> list[str]:
    """onnxruntime provider names for ``choice``, best first, CPU last (raises if a forced one can't run)."""
    if choice not in PROVIDERS:
        raise ConfigError(f"unknown execution provider '{choice}'; use one of: {', '.join(PROVIDERS)}.")
    if choice == "auto":
        usable = [n for n in ("tensorrt", "cuda") if probe_provider(n).available]
        return [ORT_PROVIDERS[n] for n in [*usable, "cpu"]]
    status = probe_provider(choice)
    if not status.available:
        raise ConfigError(f"the {choice} execution provider is not available: {status.reason}. "
                          "Use --provider cpu (or auto) to run on the CPU.")
    chain = {"tensorrt": ["tensorrt", "cuda", "cpu"], "cuda": ["cuda", "cpu"], "cpu": ["cpu"]}[choice]
    return [ORT_PROVIDERS[n] for n in chain if n == choice or n == "cpu" or probe_provider(n).available]


def provider_options(providers: list[str]) -> list[dict[str, Any]]:
    """onnxruntime's ``provider_options`` for ``providers`` (from :func:`providers_for`), in order."""
    return [tensorrt_options() if p == ORT_PROVIDERS["tensorrt"] else {} for p in providers]


def tensorrt_options() -> dict[str, Any]:
    """Cache built TensorRT engines: building one takes long, and is the same for the same model.

    The cache is ganctl's ``tensorrt`` cache folder (``ganctl.fsutil.cache_dir``); none when caching
    is off or the folder cannot be made.
    """
    cache = cache_dir("tensorrt")
    if cache is None:
        return {}
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError:
        return {}
    return {"trt_engine_cache_enable": True, "trt_engine_cache_path": str(cache)}
