"""Running an exported generator with onnxruntime, without Keras.

``Generator.open(path)`` loads a ``.onnx`` file written by ``ganctl export`` (or a run
directory's ``exports/generator.onnx``), reads its ``ganctl.*`` metadata and samples it with the
same latents and labels as the Keras path (``ganctl.sampling``), so a run directory and its
export give the same images for the same seed.

GPU execution providers are used only when they can really run: before asking onnxruntime for
one, this module probes the NVIDIA driver and the provider's shared libraries itself, with
``ctypes``. Asking onnxruntime for the CUDA provider on a machine without the CUDA libraries
makes it print a red ``Failed to load library`` error on stderr and fall back to the CPU, which
ganctl must never show on a CPU-only machine.

Importing this module imports only NumPy; onnxruntime is imported when a model is opened.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import json
import os
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ganctl.errors import ConfigError, GanctlError
from ganctl.sampling import latents, sample_labels

EXPORT_PATH = Path("exports") / "generator.onnx"
"""Where ``ganctl export RUN_DIR --onnx`` writes the generator, relative to the run directory."""

PROVIDERS = ("auto", "cpu", "cuda", "tensorrt")
"""Accepted values of ``provider``: ``auto`` takes TensorRT, then CUDA, when they load; else CPU."""

ORT_PROVIDERS = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": "CPUExecutionProvider",
}

FORMAT = "1"
BATCH = 256
_WHOLE = (int, np.integer)
_PYTHON_CHECK = 256  # Generator.run checks up to this many labels with Python's min and max

EXPECTED = (
    "ganctl expects a ganctl export (input z: float32 [batch, latent_dim], plus label: int64 [batch] "
    "for conditional models; output images: float32 [batch, H, W, C], NHWC; ganctl.* metadata), or a "
    "model with exactly one float input [batch, k] and one NHWC image output [batch, H, W, C]."
)

_FLOATS = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64}
_TYPE_NAMES = {"float": "float32", "double": "float64"}

# The CUDA provider dlopens cuDNN at run time (it is not among its DT_NEEDED entries); the TensorRT
# provider links it. onnxruntime-gpu 1.2x-1.3x are built against cuDNN 9.
_CUDNN = "libcudnn.so.9"


# -- the model's signature -------------------------------------------------------------------------


@dataclass(frozen=True)
class TensorInfo:
    """One input or output of an ONNX model: its name, element type and shape."""

    name: str
    type: str  # onnxruntime's spelling, e.g. "tensor(float)"
    shape: tuple[int | str | None, ...]

    @property
    def dtype(self) -> str:
        """The element type in NumPy's words (``float32``, ``int64``, ...)."""
        inner = self.type.removeprefix("tensor(").removesuffix(")")
        return _TYPE_NAMES.get(inner, inner)

    def __str__(self) -> str:
        dims = ", ".join("?" if d is None else str(d) for d in self.shape)
        return f"{self.name}: {self.dtype} [{dims}]"


def _signature(inputs: Sequence[TensorInfo], outputs: Sequence[TensorInfo]) -> str:
    return f"{', '.join(map(str, inputs)) or '(no inputs)'} -> {', '.join(map(str, outputs)) or '(no outputs)'}"


# -- CPU threads ----------------------------------------------------------------------------------


def _parse_cpu_list(text: str) -> frozenset[int]:
    """``"0-3,8"`` to ``{0, 1, 2, 3, 8}`` (the kernel's cpulist format)."""
    cpus: set[int] = set()
    for part in filter(None, text.strip().split(",")):
        first, _, last = part.partition("-")
        cpus.update(range(int(first), int(last or first) + 1))
    return frozenset(cpus)


def physical_cores(sysfs: str | Path = "/sys/devices/system/cpu", cpus: Iterable[int] | None = None) -> int:
    """How many physical cores the CPUs this process may run on (``os.sched_getaffinity``) span.

    Hyperthreads of one core are grouped by the kernel's ``topology/core_cpus_list`` (or the
    older ``thread_siblings_list``) under ``sysfs``. Where the affinity is unknown this is
    ``os.cpu_count()``; where the topology cannot be read, the number of usable logical CPUs.
    """
    if cpus is None:
        try:
            cpus = os.sched_getaffinity(0)
        except (AttributeError, OSError):
            return os.cpu_count() or 1
    cpus = sorted(set(cpus))
    if not cpus:
        return os.cpu_count() or 1
    cores: set[frozenset[int]] = set()
    for cpu in cpus:
        topology = Path(sysfs) / f"cpu{cpu}" / "topology"
        for name in ("core_cpus_list", "thread_siblings_list"):
            try:
                cores.add(_parse_cpu_list((topology / name).read_text()) or frozenset([cpu]))
                break
            except (OSError, ValueError):
                continue
        else:
            return len(cpus)
    return max(1, len(cores))


# -- probing the GPU providers ----------------------------------------------------------------------


@dataclass(frozen=True)
class ProviderStatus:
    """Whether an execution provider can run here, and if not, why and what it needs."""

    name: str  # cpu, cuda or tensorrt
    available: bool
    reason: str = ""


def _ort_folder() -> Path | None:
    """onnxruntime's package folder, found without importing it."""
    try:
        spec = importlib.util.find_spec("onnxruntime")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


@functools.cache
def _ort_build() -> tuple[str, str, str]:
    """(package name, version, CUDA version it was built for, or "") of the installed onnxruntime."""
    folder = _ort_folder()
    text = ""
    if folder is not None:
        try:
            text = (folder / "capi" / "build_and_package_info.py").read_text()
        except OSError:
            pass

    def field(name: str) -> str:
        found = re.search(rf"^{name}\s*=\s*['\"]([^'\"]*)['\"]", text, re.M)
        return found.group(1) if found else ""

    return field("package_name") or "onnxruntime", field("__version__"), field("cuda_version")


def _cuda_error(driver: Any, code: int) -> str:
    name = ctypes.c_char_p()
    try:
        if driver.cuGetErrorName(code, ctypes.byref(name)) == 0 and name.value:
            return f"{name.value.decode()} ({code})"
    except (AttributeError, OSError):
        pass
    return str(code)


@functools.cache
def _driver() -> str:
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
    package, release, built = _ort_build()
    needed = int(built.split(".")[0]) if built[:1].isdigit() else 0
    have = version.value // 1000
    if needed and have < needed:
        return (f"the NVIDIA driver supports CUDA up to {have}.{version.value % 1000 // 10}, but {package} "
                f"{release} is built for CUDA {built}: update the NVIDIA driver")
    return ""


def _library_folders() -> list[Path]:
    """Where pip-installed NVIDIA libraries live (nvidia-* and tensorrt wheels), in sys.path order."""
    folders: list[Path] = []
    for entry in sys.path:
        root = Path(entry or ".")
        if not (root / "nvidia").is_dir() and not (root / "tensorrt_libs").is_dir():
            continue
        folders += sorted(root.glob("nvidia/*/lib")) + [root / "tensorrt_libs"]
    return [f for f in folders if f.is_dir()]


def _needed(library: Path) -> list[str] | None:
    """The DT_NEEDED entries (sonames) of a 64-bit little-endian ELF shared library; None if unreadable.

    Read from the section headers: the SHT_DYNAMIC section and the string table it links to.
    """
    import struct

    try:
        with open(library, "rb") as handle:
            header = handle.read(64)
            if header[:4] != b"\x7fELF" or header[4] != 2 or header[5] != 1:
                return None
            shoff, = struct.unpack_from("<Q", header, 0x28)
            shentsize, shnum = struct.unpack_from("<HH", header, 0x3A)
            handle.seek(shoff)
            table = handle.read(shentsize * shnum)
            sections = [struct.unpack_from("<IIQQQQII", table, i * shentsize) for i in range(shnum)]
            dynamic = next((sec for sec in sections if sec[1] == 6), None)  # SHT_DYNAMIC
            if dynamic is None:
                return []
            handle.seek(dynamic[4])
            entries = handle.read(dynamic[5])
            strtab = sections[dynamic[6]]
            handle.seek(strtab[4])
            strings = handle.read(strtab[5])
    except (OSError, struct.error, IndexError):
        return None
    needed = []
    for offset in range(0, len(entries) - 15, 16):
        tag, value = struct.unpack_from("<qQ", entries, offset)
        if tag == 0:  # DT_NULL
            break
        if tag == 1:  # DT_NEEDED
            needed.append(strings[value : strings.index(b"\0", value)].decode())
    return needed


_MISSING = re.compile(r"^(?P<name>[^\s:]+): cannot open shared object file")


def _find(name: str, folders: Sequence[Path]) -> Path | None:
    return next((f / name for f in folders if (f / name).is_file()), None)


def _load(target: str, folders: Sequence[Path], depth: int = 0) -> str:
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
            return _load(str(found), folders, depth + 1) if "/" not in target else error
        problem = _load(str(found), folders, depth + 1)
        if problem:
            return problem
    return error


def _product(soname: str) -> str | None:
    """Which NVIDIA product and major version provides a library, from its soname."""
    stem, _, major = Path(soname).name.partition(".so.")
    major = major.split(".")[0]
    built = _ort_build()[2].split(".")[0]
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


def _what_is_missing(error: str) -> str:
    """A loader error in words: which library, and which product and version provides it."""
    missing = _MISSING.match(error)
    if not missing:
        return error
    name = missing.group("name")
    product = _product(name)
    return f"{name} ({product})" if product else name


def _needs(sonames: Sequence[str]) -> str:
    """``CUDA 13 (libcublasLt.so.13, ...) and cuDNN 9 (libcudnn.so.9)``: the NVIDIA libraries in ``sonames``."""
    products: dict[str, list[str]] = {}
    for soname in sonames:
        product = _product(soname)
        if product:
            products.setdefault(product, []).append(soname)
    parts = [f"{product} ({', '.join(names)})" for product, names in products.items()]
    return ", ".join(parts[:-1]) + f" and {parts[-1]}" if len(parts) > 1 else "".join(parts) or "its libraries"


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
    package, release, _ = _ort_build()
    label = "CUDA" if name == "cuda" else "TensorRT"
    folder = _ort_folder()
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
    needed = _needed(library)
    if needed is None:
        return ProviderStatus(name, False, f"cannot read the libraries {library} needs; reinstall {package}")
    wanted = [*needed, _CUDNN] if name == "cuda" and _CUDNN not in needed else needed
    needs = _needs(wanted)
    problem = _driver()
    if problem:
        return ProviderStatus(name, False, f"{problem}. The {label} provider of {package} {release} needs an "
                                           f"NVIDIA GPU and its driver, and {needs}")
    folders = _library_folders()
    error = next(filter(None, (_load(soname, folders) for soname in wanted)), "")
    if error:
        return ProviderStatus(
            name, False,
            f"the {label} provider of {package} {release} cannot load {_what_is_missing(error)}: it needs {needs} "
            "where the loader finds them (the CUDA toolkit, cuDNN and TensorRT on LD_LIBRARY_PATH, or NVIDIA's "
            f"pip wheels, e.g. `pip install '{package}[cuda,cudnn]'`)",
        )
    return ProviderStatus(name, True)


def _providers_for(choice: str) -> list[str]:
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


def _tensorrt_options() -> dict[str, Any]:
    """Cache built TensorRT engines: building one takes long, and is the same for the same model."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ganctl" / "tensorrt"
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError:
        return {}
    return {"trt_engine_cache_enable": True, "trt_engine_cache_path": str(cache)}


# -- opening a model ------------------------------------------------------------------------------


def _ort_reason(exc: BaseException) -> str:
    """onnxruntime's message without its status prefix, source location and C++ signature."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    text = re.sub(r"^\[ONNXRuntimeError\]\s*:\s*\d+\s*:\s*\w+\s*:\s*", "", text)
    text = re.sub(r"^Load model from .*? failed:", "", text)
    text = re.sub(r"^\S+\.(?:cc|cpp|h):\d+ .*?\) (?=[A-Z])", "", text)
    return text.strip().rstrip(".") or type(exc).__name__


def _resolve(path: str | Path) -> Path:
    path = Path(path)
    hint = "ganctl export RUN_DIR --onnx writes RUN_DIR/exports/generator.onnx"
    if path.is_dir():
        export = path / EXPORT_PATH
        if export.is_file():
            return export
        if (path / "run.json").is_file():
            raise ConfigError(f"{path} is a run directory without an ONNX export ({export} is missing): "
                              f"run `ganctl export {path} --onnx` first.")
        raise ConfigError(f"{path} is a folder, not an ONNX model or a ganctl run directory with an export; "
                          f"give a .onnx file ({hint}).")
    if not path.exists():
        raise ConfigError(f"{path} does not exist; give an ONNX model file or a run directory ({hint}).")
    return path


def _json_field(meta: dict[str, str], key: str, path: Path, default: Any = None) -> Any:
    if key not in meta:
        if default is None:
            raise ConfigError(f"{path}: the ganctl metadata lacks {key}; the file is damaged or was edited. "
                              "Export the run again (ganctl export RUN_DIR --onnx).")
        return default
    try:
        return json.loads(meta[key])
    except ValueError:
        raise ConfigError(f"{path}: the metadata {key} is not valid JSON ({meta[key]!r}); export the run again "
                          "(ganctl export RUN_DIR --onnx).") from None


class Generator:
    """A generator exported to ONNX, run with onnxruntime.

    Open one with :meth:`Generator.open`; draw images with :meth:`sample` (latents and labels from
    a seed, exactly as ``ganctl generate`` on the run directory) or :meth:`run` (your own ``z``).

    Attributes:
        path: the ``.onnx`` file.
        metadata: every ``metadata_props`` entry of the model (``{}`` for a foreign model).
        latent_dim: the width of ``z``.
        num_classes: the number of classes of a conditional model; 0 for an unconditional one.
        class_names: the class names (``[]`` when unknown).
        value_range: ``(low, high)`` of the pixel values (``(-1.0, 1.0)`` for ganctl models, and
            assumed for foreign ones).
        data_shape: ``(H, W, C)`` of one image, or None when a foreign model leaves it open.
        providers: the onnxruntime execution providers the session uses, best first.
        threads: the CPU threads onnxruntime uses within an operator.
        inputs, outputs: the model's signature, as :class:`TensorInfo`.
        foreign: True for a model without ganctl metadata.
    """

    def __init__(self, session: Any, path: Path, threads: int) -> None:
        self._session = session
        self.path = path
        self.threads = threads
        self.providers: list[str] = list(session.get_providers())
        self.inputs = [TensorInfo(i.name, i.type, tuple(i.shape)) for i in session.get_inputs()]
        self.outputs = [TensorInfo(o.name, o.type, tuple(o.shape)) for o in session.get_outputs()]
        self.metadata: dict[str, str] = dict(session.get_modelmeta().custom_metadata_map or {})
        self.foreign = "ganctl.format" not in self.metadata
        if self.foreign:
            self._read_foreign()
        else:
            self._read_ganctl()
        z = self._inputs["z"]
        self._z_dtype = _FLOATS[z.type]
        # what every call needs, looked up once
        self._z_name, self._output_names = z.name, [self._output.name]
        label = self._inputs.get("label")
        self._label_name = label.name if label is not None else ""
        self._label_dtype = np.int32 if label is not None and label.type == "tensor(int32)" else np.int64
        first = z.shape[0]
        self._fixed_batch = first if isinstance(first, int) and first > 0 else None

    # -- construction

    @classmethod
    def open(cls, path: str | Path, *, provider: str = "auto", threads: int | None = None) -> Generator:
        """Load an ONNX generator.

        Args:
            path: a ``.onnx`` file, or a run directory (its ``exports/generator.onnx``).
            provider: ``auto`` (TensorRT, then CUDA, when their libraries load, else the CPU),
                ``cpu``, ``cuda`` or ``tensorrt``. A provider asked for by name that cannot run
                here is a ConfigError saying what failed to load.
            threads: CPU threads per operator; default: the physical cores this process may use.

        Raises:
            ConfigError: a missing, damaged or non-ONNX file, a model ganctl cannot drive (the
                message shows its signature and what ganctl expects), or an unusable provider.
        """
        source = _resolve(path)
        if threads is None:
            threads = physical_cores()
        elif isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ConfigError(f"threads must be a whole number of at least 1, got {threads!r}.")
        providers = _providers_for(provider)
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise ConfigError(f"onnxruntime is not installed ({exc}); pip install onnxruntime-gpu "
                              "(Linux x86-64) or onnxruntime.") from None
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only: no warnings about node placement on stderr
        provider_options = [_tensorrt_options() if p == ORT_PROVIDERS["tensorrt"] else {} for p in providers]
        try:
            session = ort.InferenceSession(str(source), sess_options=options, providers=providers,
                                           provider_options=provider_options)
        except Exception as exc:  # onnxruntime raises a different type per cause
            reason = _ort_reason(exc)
            if re.search(r"IR version|opset", reason, re.I):
                fix = (f"it needs a newer onnxruntime than {ort.__version__} (pip install -U onnxruntime-gpu, "
                       "or onnxruntime off Linux x86-64), or an export with an older opset")
            else:
                fix = ("give the file `ganctl export RUN_DIR --onnx` wrote (RUN_DIR/exports/generator.onnx), "
                       "or export the run again")
            raise ConfigError(f"{source} is not an ONNX model onnxruntime can load: {reason}; {fix}.") from None
        if provider != "auto" and ORT_PROVIDERS[provider] not in session.get_providers():
            raise ConfigError(f"onnxruntime could not start the {provider} execution provider for {source} "
                              f"(it runs on {', '.join(session.get_providers())}); use --provider auto or cpu.")
        return cls(session, source, threads)

    def _fail(self, problem: str) -> ConfigError:
        return ConfigError(
            f"{self.path} is not a generator ganctl can run: {problem}.\n"
            f"  its signature: {_signature(self.inputs, self.outputs)}\n"
            f"  {EXPECTED}"
        )

    def _read_foreign(self) -> None:
        floats = [i for i in self.inputs if i.type in _FLOATS]
        if len(self.inputs) != 1 or len(floats) != 1:
            raise self._fail(f"it has no ganctl metadata and {len(self.inputs)} inputs "
                             f"({len(floats)} of them float)")
        (z,) = floats
        if len(z.shape) != 2 or not isinstance(z.shape[1], int) or z.shape[1] < 1:
            raise self._fail(f"it has no ganctl metadata and its input {z.name} is not [batch, k] with a fixed k")
        if len(self.outputs) != 1:
            raise self._fail(f"it has {len(self.outputs)} outputs; ganctl needs one image output")
        out = self.outputs[0]
        if out.type not in _FLOATS or len(out.shape) != 4:
            raise self._fail(f"its output {out.name} is not a float [batch, H, W, C] image batch")
        channels = out.shape[1:]
        if channels[0] in (1, 3) and isinstance(channels[2], int) and channels[2] not in (1, 3, 4):
            raise self._fail(f"its output {out.name} looks like NCHW; ganctl needs NHWC (add a Transpose "
                             "with perm [0, 2, 3, 1])")
        self.latent_dim = z.shape[1]
        self.num_classes = 0
        self.class_names: list[str] = []
        self.value_range = (-1.0, 1.0)
        self.data_shape = tuple(channels) if all(isinstance(d, int) for d in channels) else None
        self._inputs = {"z": z}
        self._output = out

    def _read_ganctl(self) -> None:
        meta, path = self.metadata, self.path
        if meta.get("ganctl.kind", "generator") != "generator":
            from ganctl.generate import not_a_generator

            raise not_a_generator(path)
        if meta["ganctl.format"] != FORMAT:
            raise ConfigError(f"{path} is in ganctl ONNX format {meta['ganctl.format']}, which this ganctl does not "
                              f"read (it reads format {FORMAT}); upgrade ganctl (written by ganctl "
                              f"{meta.get('ganctl.version', '?')}).")
        layout = meta.get("ganctl.layout", "NHWC")
        if layout != "NHWC":
            raise ConfigError(f"{path} has images in {layout} layout; ganctl reads NHWC. Export the run again.")
        try:
            self.latent_dim = int(meta.get("ganctl.latent_dim", ""))
            self.num_classes = int(meta.get("ganctl.num_classes", "0"))
            self.class_names = [str(c) for c in _json_field(meta, "ganctl.class_names", path, [])]
            low, high = (float(v) for v in _json_field(meta, "ganctl.value_range", path, [-1.0, 1.0]))
            self.value_range = (low, high)
            self.data_shape = tuple(int(d) for d in _json_field(meta, "ganctl.data_shape", path))
        except (TypeError, ValueError):
            fields = ", ".join(f"{k}={v}" for k, v in meta.items() if k.startswith("ganctl."))
            raise ConfigError(f"{path}: the ganctl metadata is malformed ({fields}); export the run again "
                              "(ganctl export RUN_DIR --onnx).") from None
        if self.latent_dim < 1 or self.num_classes < 0 or len(self.data_shape) != 3 or min(self.data_shape) < 1 \
                or not low < high:
            raise ConfigError(f"{path}: the ganctl metadata is inconsistent (latent_dim {self.latent_dim}, "
                              f"num_classes {self.num_classes}, data_shape {list(self.data_shape)}, value_range "
                              f"{list(self.value_range)}); export the run again (ganctl export RUN_DIR --onnx).")
        by_name = {i.name: i for i in self.inputs}
        z, label = by_name.get("z"), by_name.get("label")
        width = z.shape[1] if z is not None and len(z.shape) == 2 else None
        if z is None or z.type not in _FLOATS or len(z.shape) != 2 or isinstance(width, int) and width != self.latent_dim:
            raise self._fail(f"its metadata says latent_dim {self.latent_dim}, but it has no input "
                             f"z: float32 [batch, {self.latent_dim}]")
        wanted = {"z", "label"} if self.num_classes else {"z"}
        if set(by_name) != wanted or (label is not None and (label.type not in ("tensor(int64)", "tensor(int32)")
                                                             or len(label.shape) != 1)):
            kind = f"conditional ({self.num_classes} classes)" if self.num_classes else "unconditional"
            need = "z and label: int64 [batch]" if self.num_classes else "only z"
            raise self._fail(f"its metadata says it is {kind}, so it must take {need}")
        outputs = {o.name: o for o in self.outputs}
        out = outputs.get("images") or (self.outputs[0] if len(self.outputs) == 1 else None)
        if out is None or len(out.shape) != 4:
            raise self._fail("it has no images output [batch, H, W, C]")
        if any(isinstance(d, int) and d != want for d, want in zip(out.shape[1:], self.data_shape, strict=True)):
            raise self._fail(f"its metadata says the images are {list(self.data_shape)} (H, W, C), but its output "
                             f"is {out}")
        self._inputs = {"z": z} if label is None else {"z": z, "label": label}
        self._output = out

    # -- information

    @property
    def conditional(self) -> bool:
        """Whether the model takes a class label."""
        return self.num_classes > 0

    def signature(self) -> str:
        """The model's inputs and outputs, e.g. ``z: float32 [batch, 8] -> images: float32 [batch, 8, 8, 1]``."""
        return _signature(self.inputs, self.outputs)

    def expected(self) -> str:
        """What :meth:`run` takes, in words."""
        z = f"z: float32 [n, {self.latent_dim}]"
        if self.conditional:
            return f"{z} and labels: int64 [n] with values 0 to {self.num_classes - 1}"
        return f"{z} and no labels (the model is unconditional)"

    def __repr__(self) -> str:
        return f"Generator({str(self.path)!r}, {self.signature()}, providers={self.providers})"

    # -- running

    def sample(self, n: int, seed: int = 0, label: int | None = None,
               batch_size: int = BATCH) -> tuple[np.ndarray, np.ndarray | None]:
        """``n`` images from the latents of ``seed``, with ``ganctl.sampling``'s rules.

        Args:
            n: how many images (at least 1).
            seed: the seed of the latents; the same seed gives the same images, as the Keras path.
            label: for a conditional model, the class of every image; default: the classes in turn.
            batch_size: images per onnxruntime call (the result does not depend on it).

        Returns:
            ``(images, labels)``: float32 ``[n, H, W, C]`` in ``value_range``, and int64 ``[n]``
            labels, or None for an unconditional model.
        """
        for name, value, least in (("n", n, 1), ("seed", seed, 0), ("batch_size", batch_size, 1)):
            if isinstance(value, bool) or not isinstance(value, _WHOLE) or value < least:
                raise ConfigError(f"{name} must be a whole number of at least {least}, got {value!r}.")
        if label is not None:
            if not self.conditional:
                raise ConfigError(f"{self.path} is unconditional: it takes no label. Leave the label out.")
            if isinstance(label, bool) or not isinstance(label, _WHOLE) or not 0 <= label < self.num_classes:
                raise ConfigError(f"label {label!r} is outside the classes of this model: use 0 to "
                                  f"{self.num_classes - 1}.")
        z = latents(seed, n, self.latent_dim)
        labels = sample_labels(n, self.num_classes, label, np.int64)
        if n <= batch_size:  # one call: no slicing, no concatenation (a copy of every image)
            return self._forward(z, labels), labels
        parts = [self._forward(z[i : i + batch_size], None if labels is None else labels[i : i + batch_size])
                 for i in range(0, n, batch_size)]
        return np.concatenate(parts), labels

    def run(self, z: Any, labels: Any = None) -> np.ndarray:
        """Images for your own latents: ``z`` float ``[n, latent_dim]``, and for a conditional model
        ``labels`` integer ``[n]`` in ``[0, num_classes)``. Returns float32 ``[n, H, W, C]``.

        Raises:
            ConfigError: wrong shapes, types or label values; the message gives what is expected.
        """
        z = np.asarray(z)
        if z.ndim != 2 or z.dtype.kind != "f" or z.shape[1] != self.latent_dim or z.shape[0] < 1:
            raise ConfigError(f"z has shape {list(z.shape)} and type {z.dtype}; {self.path} takes {self.expected()}.")
        if labels is None:
            if self.conditional:
                raise ConfigError(f"{self.path} is conditional and needs labels; it takes {self.expected()}.")
            return self._forward(z, None)
        if not self.conditional:
            raise ConfigError(f"labels were given, but {self.path} is unconditional; it takes {self.expected()}.")
        labels = np.asarray(labels)
        if labels.ndim != 1 or labels.dtype.kind not in "iu" or len(labels) != len(z):
            raise ConfigError(f"labels have shape {list(labels.shape)} and type {labels.dtype} for {len(z)} "
                              f"latents; {self.path} takes {self.expected()}.")
        # Small batches are checked in Python: a NumPy reduction costs little itself, but slows the
        # onnxruntime call after it by several times its own time (docs/performance.md, Inference).
        values = labels.tolist() if len(labels) <= _PYTHON_CHECK else None
        low, high = (min(values), max(values)) if values is not None else (labels.min(), labels.max())
        if low < 0 or high >= self.num_classes:
            bad = labels[(labels < 0) | (labels >= self.num_classes)][0]
            raise ConfigError(f"label {bad} is outside the classes of {self.path}; it takes {self.expected()}.")
        return self._forward(z, labels.astype(np.int64, copy=False))

    def _forward(self, z: np.ndarray, labels: np.ndarray | None) -> np.ndarray:
        """One or more onnxruntime calls (a model with a fixed batch size gets padded batches)."""
        rows = len(z)
        if self._fixed_batch is None or self._fixed_batch == rows:
            return self._call(z, labels)
        step = self._fixed_batch
        parts = []
        for start in range(0, rows, step):
            zb = z[start : start + step]
            lb = None if labels is None else labels[start : start + step]
            short = step - len(zb)
            if short:
                zb = np.concatenate([zb, np.zeros((short, zb.shape[1]), zb.dtype)])
                lb = None if lb is None else np.concatenate([lb, np.zeros(short, lb.dtype)])
            parts.append(self._call(zb, lb)[: len(zb) - short])
        return np.concatenate(parts) if len(parts) > 1 else parts[0]

    def _call(self, z: np.ndarray, labels: np.ndarray | None) -> np.ndarray:
        feed = {self._z_name: np.ascontiguousarray(z, dtype=self._z_dtype)}
        if labels is not None:
            feed[self._label_name] = np.ascontiguousarray(labels, self._label_dtype)
        try:
            (images,) = self._session.run(self._output_names, feed)
        except Exception as exc:  # onnxruntime raises a different type per cause
            raise GanctlError(f"onnxruntime failed to run {self.path}: {_ort_reason(exc)}") from None
        if images.ndim != 4 or images.shape[0] != len(z):
            raise GanctlError(f"{self.path} returned {self._output.name} of shape {list(images.shape)} for "
                              f"{len(z)} latents; expected [{len(z)}, H, W, C].")
        return images.astype(np.float32, copy=False)
