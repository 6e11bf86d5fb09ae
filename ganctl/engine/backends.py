"""Choosing the Keras backend, before Keras is first imported.

Precedence: the ``--backend`` option, then the recipe's ``backend:``, then ``KERAS_BACKEND``,
then ``jax``. Keras reads ``KERAS_BACKEND`` once, at import, so the choice must be applied
before anything imports keras; switching later in the same process is an error.

Also the per-backend policies that do not need the backend imported: ``train.jit: auto``
(:func:`resolve_jit`).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import tempfile
from collections.abc import Iterator, Mapping

from ganctl.errors import ConfigError

BACKENDS = ("jax", "tensorflow", "torch")
"""The Keras backends ganctl runs on: the one list (recipes, ``--backend`` and ``doctor`` use it)."""
DEFAULT = "jax"
_INSTALL = {
    "jax": "pip install ganctl  (jax is a core dependency)",
    "tensorflow": "pip install 'ganctl[tensorflow]'",
    "torch": "pip install 'ganctl[torch]'",
}


def resolve(option: str | None = None, recipe: str | None = None, env: Mapping[str, str] | None = None) -> tuple[str, str]:
    """The backend to use and where the choice came from (for messages and run.json)."""
    env = os.environ if env is None else env
    for value, origin in ((option, "--backend"), (recipe, "recipe backend:"), (env.get("KERAS_BACKEND"), "KERAS_BACKEND")):
        if value:
            name = value.strip().lower()
            if name not in BACKENDS:
                raise ConfigError(
                    f"{origin} is '{value}', which is not a ganctl backend; use one of: {', '.join(BACKENDS)}."
                )
            return name, origin
    return DEFAULT, "default"


def resolve_jit(setting: str | bool, backend: str) -> bool:
    """``train.jit: auto`` per backend, as measured (docs/performance.md).

    JAX: always jit (un-jitted JAX dispatches op by op). TensorFlow: graph mode (the engine adds
    XLA only on GPUs; on CPUs XLA made a transposed-convolution DCGAN 3-4x slower). PyTorch:
    eager (``torch.compile`` gained 4 % after a minute of compiling); ``true`` asks for
    ``torch.compile``.
    """
    if setting != "auto":
        return bool(setting)
    return backend in ("jax", "tensorflow")


def placement(devices: int | str | None, batch_size: int, backend: str, source: str) -> object | None:
    """The JAX engine's placement for ``train.distribution.devices`` (None: one device), with
    Keras's distribution set for the model about to be built (and cleared when there is none).
    ConfigError, naming ``source``, for a distribution on another backend, more devices than
    exist, or a batch that does not split evenly over them."""
    if backend != "jax":
        if devices is not None:
            raise ConfigError(
                f"{source}: train.distribution splits the batch over several devices on the JAX backend only "
                f"(keras.distribution), and this run uses {backend}. Train with the JAX backend (--backend jax), "
                "or remove train.distribution to train on one device."
            )
        return None
    from ganctl.engine.jax.distribution import placement_for

    try:
        found = placement_for(devices)
    except ConfigError as exc:
        placement_for(None)  # no earlier session's distribution stays set
        raise ConfigError(f"{source}: {exc}") from None
    if found is not None and batch_size % found.devices:
        placement_for(None)
        raise ConfigError(
            f"{source}: train.batch_size {batch_size} does not split evenly over the {found.devices} devices of "
            f"train.distribution (devices: {devices}); set batch_size to a multiple of {found.devices}, or set "
            "train.distribution.devices to a number that divides it."
        )
    return found


def install_command(backend: str) -> str:
    """The command that installs ``backend`` for ganctl."""
    return _INSTALL[backend]


def missing(backend: str) -> str | None:
    """None when ``backend``'s framework is installed, else a message that says how to install it."""
    if importlib.util.find_spec(backend) is None:
        return f"the {backend} backend is not installed. Install it with: {install_command(backend)}"
    return None


def activate(backend: str) -> None:
    """Make ``backend`` the Keras backend of this process. Must run before keras is imported."""
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend '{backend}'; use one of: {', '.join(BACKENDS)}.")
    problem = missing(backend)
    if problem:
        raise ConfigError(problem)
    if "keras" in sys.modules:
        current = sys.modules["keras"].backend.backend()
        if current != backend:
            raise ConfigError(
                f"Keras was already imported with the {current} backend in this process; "
                f"the {backend} backend must be chosen before Keras is imported."
            )
    os.environ["KERAS_BACKEND"] = backend
    # TensorFlow's C++ start-up chatter (CPU feature notes) on every import, also when JAX
    # exports through it; a user's own setting wins.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    quiet_tensorflow_import()


# What TensorFlow's C++ prints while it is imported, before its logging is set up: absl logs it
# at INFO straight to stderr, past TF_CPP_MIN_LOG_LEVEL (tensorflow/tensorflow#100442). TensorFlow
# is imported on every backend once it is installed (keras.utils.set_random_seed seeds it too).
_IMPORT_CHATTER = (
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "oneDNN custom operations are on.",
)


def quiet_tensorflow_import() -> None:
    """Drop TensorFlow's import-time INFO lines from stderr when ``TF_CPP_MIN_LOG_LEVEL`` hides INFO.

    Only those lines go: everything else TensorFlow prints while it is imported is passed on, and
    nothing changes how it computes (oneDNN stays as TensorFlow chose). Wraps the first import of
    ``tensorflow``, wherever it happens; a no-op once it is imported, or when it is not installed.
    """
    if "tensorflow" in sys.modules or any(isinstance(f, _QuietTensorFlow) for f in sys.meta_path):
        return
    if importlib.util.find_spec("tensorflow") is not None:
        sys.meta_path.insert(0, _QuietTensorFlow())


class _QuietTensorFlow:
    """A meta path finder: the real finders find ``tensorflow``, and its import runs with stderr
    filtered. It leaves ``sys.meta_path`` once the import ran (a ``find_spec`` alone changes nothing)."""

    finding = False

    def find_spec(self, name: str, path: object = None, target: object = None) -> object:
        if name != "tensorflow" or self.finding:
            return None
        self.finding = True
        try:
            spec = importlib.util.find_spec(name)
        finally:
            self.finding = False
        if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
            execute = spec.loader.exec_module

            def exec_module(module: object) -> None:
                if self in sys.meta_path:
                    sys.meta_path.remove(self)
                with _filtered_stderr():
                    execute(module)

            spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


@contextlib.contextmanager
def _filtered_stderr() -> Iterator[None]:
    """Collect what is written to file descriptor 2; then write it back without the import chatter."""
    try:
        hides_info = int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0")) >= 1
    except ValueError:
        hides_info = False
    if not hides_info:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines = captured.read().decode(errors="replace").splitlines(keepends=True)
            kept = "".join(line for line in lines if not any(noise in line for noise in _IMPORT_CHATTER))
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()
