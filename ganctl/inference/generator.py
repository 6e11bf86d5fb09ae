"""Running an exported generator with onnxruntime, without Keras.

``Generator.open(path)`` loads a ``.onnx`` file written by ``ganctl export`` (or a run
directory's ``exports/generator.onnx``), reads its ``ganctl.*`` metadata
(``ganctl.inference.contract``) and samples it with the same latents and labels as the Keras path
(``ganctl.sampling``), so a run directory and its export give the same images for the same seed. A generator of a
table (``Generator.table``) gives encoded rows, which ``table.decode`` (or ``ganctl generate
--out FILE.csv``) turns into the table's columns.
The execution provider is chosen by ``ganctl.inference.providers``, the CPU threads by
``ganctl.inference.topology``.

Importing this module imports only NumPy; onnxruntime is imported when a model is opened.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from ganctl import sampling
from ganctl.errors import ConfigError, GanctlError
from ganctl.inference.contract import FLOATS, TensorInfo, model_path, read_model, signature
from ganctl.inference.providers import ORT_PROVIDERS, provider_options, providers_for
from ganctl.inference.topology import physical_cores

_WHOLE = (int, np.integer)
_PYTHON_CHECK = 256  # Generator.run checks up to this many labels with Python's min and max


def _ort_reason(exc: BaseException) -> str:
    """onnxruntime's message without its status prefix, source location and C++ signature."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    text = re.sub(r"^\[ONNXRuntimeError\]\s*:\s*\d+\s*:\s*\w+\s*:\s*", "", text)
    text = re.sub(r"^Load model from .*? failed:", "", text)
    text = re.sub(r"^\S+\.(?:cc|cpp|h):\d+ .*?\) (?=[A-Z])", "", text)
    return text.strip().rstrip(".") or type(exc).__name__


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
        data_shape: ``(H, W, C)`` of one image, or None when a foreign model leaves it open; for
            a generator of a table, ``(width,)`` of one encoded row.
        table: for a generator of a table, the :class:`ganctl.api.TableSpec` that decodes its
            rows (from its ``ganctl.table`` metadata); None for images.
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
        contract = read_model(path, self.metadata, self.inputs, self.outputs)
        self.foreign = contract.foreign
        self.latent_dim = contract.latent_dim
        self.num_classes = contract.num_classes
        self.class_names: list[str] = contract.class_names
        self.value_range = contract.value_range
        self.data_shape = contract.data_shape
        self.table = contract.table
        z, label, self._output = contract.z, contract.label, contract.output
        self._z_dtype = FLOATS[z.type]
        # what every call needs, looked up once
        self._z_name, self._output_names = z.name, [self._output.name]
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
        source = model_path(path)
        if threads is None:
            threads = physical_cores()
        elif isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ConfigError(f"threads must be a whole number of at least 1, got {threads!r}.")
        providers = providers_for(provider)
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
        try:
            session = ort.InferenceSession(str(source), sess_options=options, providers=providers,
                                           provider_options=provider_options(providers))
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

    # -- information

    @property
    def conditional(self) -> bool:
        """Whether the model takes a class label."""
        return self.num_classes > 0

    @property
    def session(self) -> Any:
        """The ``onnxruntime.InferenceSession`` that runs the model (:meth:`run` and :meth:`sample`
        add ganctl's checks around it; bench/inference.py times it alone)."""
        return self._session

    def signature(self) -> str:
        """The model's inputs and outputs, e.g. ``z: float32 [batch, 8] -> images: float32 [batch, 8, 8, 1]``."""
        return signature(self.inputs, self.outputs)

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
               batch_size: int = sampling.BATCH) -> tuple[np.ndarray, np.ndarray | None]:
        """``n`` images from the latents of ``seed``, with ``ganctl.sampling``'s rules.

        Args:
            n: how many images (at least 1).
            seed: the seed of the latents; the same seed gives the same images, as the Keras path.
            label: for a conditional model, the class of every image; default: the classes in turn.
            batch_size: images per onnxruntime call (the result does not depend on it).

        Returns:
            ``(images, labels)``: float32 ``[n, H, W, C]`` in ``value_range`` (a table's generator:
            encoded rows ``[n, width]``), and int64 ``[n]`` labels, or None for an unconditional model.
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
        z, labels = sampling.inputs(seed, n, self.latent_dim, self.num_classes, label, label_dtype=np.int64)
        if n <= batch_size:  # one call: no slicing, no concatenation (a copy of every image)
            return self._forward(z, labels), labels
        parts = [self._forward(z[i : i + batch_size], None if labels is None else labels[i : i + batch_size])
                 for i in range(0, n, batch_size)]
        return np.concatenate(parts), labels

    def run(self, z: Any, labels: Any = None) -> np.ndarray:
        """Images for your own latents: ``z`` float ``[n, latent_dim]``, and for a conditional model
        ``labels`` integer ``[n]`` in ``[0, num_classes)``. Returns float32 ``[n, H, W, C]``
        (a table's generator: ``[n, width]``).

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
        if images.ndim != (2 if self.table else 4) or images.shape[0] != len(z):
            expected = f"[{len(z)}, {self.table.width}]" if self.table else f"[{len(z)}, H, W, C]"
            raise GanctlError(f"{self.path} returned {self._output.name} of shape {list(images.shape)} for "
                              f"{len(z)} latents; expected {expected}.")
        return images.astype(np.float32, copy=False)
