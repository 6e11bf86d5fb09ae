"""Data parallelism on JAX (``train.distribution``): one global batch split over many devices.

:func:`placement_for` sets Keras's global distribution (a ``keras.distribution.DataParallel``
over a one-axis ``DeviceMesh``) and returns the :class:`Placement` the JAX engine puts its
arrays with: every variable, and the optimizers' state, replicated on every device; each
step's images, labels and latents split on their first axis (rows) over the devices. The
compiled step is then one SPMD program: XLA partitions it over the mesh, and the gradients, the
batch statistics and the logged means are over the global batch, exactly as on one device.

It must run before the model's variables exist (Keras gives a variable its layout when it is
created), and again with ``None`` for a session without a distribution: the setting is
process-wide and tests open many sessions in one process.

Many processes (``jax.distributed`` initialised before this module is used): the mesh holds,
for each process in turn, the same number of its own devices; :attr:`Placement.devices` counts
them all. :meth:`Placement.batch` takes *this process's* rows and builds the global array
(``jax.make_array_from_process_local_data``); :meth:`Placement.state` and
:meth:`Placement.host` work on any process. Every process must call them in the same order
with the same shapes (they may be collectives); :meth:`Placement.host` of a sharded array
gathers it from all processes.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ganctl.errors import ConfigError, GanctlError

AXIS = "batch"
"""The name of the mesh's one axis, the one rows are split over."""


class Placement:
    """Where the JAX engine's arrays live when a batch is split over devices.

    Args:
        mesh_devices: the devices of the mesh, every process's, in the same order on every process.
    """

    def __init__(self, mesh_devices: list[Any]) -> None:
        self.mesh_devices = list(mesh_devices)
        self.devices: int = len(self.mesh_devices)
        """The global number of devices the batch is split over."""
        self.local_devices: int = sum(d.process_index == jax.process_index() for d in self.mesh_devices)
        """How many of them belong to this process (its rows are split over these)."""
        self.processes: int = len({d.process_index for d in self.mesh_devices})
        self.mesh = Mesh(np.array(self.mesh_devices, dtype=object), (AXIS,))
        self.replicated = NamedSharding(self.mesh, PartitionSpec())
        """Every device holds the whole array (variables, optimizer state, logged values)."""
        self.rows = NamedSharding(self.mesh, PartitionSpec(AXIS))
        """The first axis split over the devices (a batch)."""

    def names(self) -> list[str]:
        """The mesh's devices in words, e.g. ``['cpu:0', 'cpu:1']`` (run.json)."""
        return [f"{d.platform}:{d.id}" for d in self.mesh_devices]

    def state(self, values: list[Any]) -> list[Any]:
        """``values`` (jax.Arrays or NumPy) as global arrays replicated on every device of every process."""
        return [self._replicate(value) for value in values]

    def batch(self, *arrays: Any) -> tuple[Any, ...]:
        """This process's rows of each array (host NumPy; None passes through) as global
        jax.Arrays split on axis 0 over the devices. With one process its rows are the whole
        batch; with several, the global batch is the processes' rows in process order."""
        return tuple(None if array is None else self._split(array) for array in arrays)

    def host(self, value: Any) -> np.ndarray:
        """A global array (replicated, or split over the devices) as host NumPy, on any process."""
        if not isinstance(value, jax.Array):
            return np.asarray(value)
        if value.is_fully_addressable:
            return np.asarray(value)
        if value.is_fully_replicated:
            return np.asarray(value.addressable_data(0))
        from jax.experimental import multihost_utils

        return np.asarray(multihost_utils.process_allgather(value, tiled=True))

    def _replicate(self, value: Any) -> Any:
        if isinstance(value, jax.Array) and value.sharding.is_equivalent_to(self.replicated, value.ndim):
            return value
        array = self.host(value)
        return jax.make_array_from_callback(array.shape, self.replicated, lambda index: array[index])

    def _split(self, array: Any) -> Any:
        if isinstance(array, jax.Array) and array.sharding.is_equivalent_to(self.rows, array.ndim):
            return array
        rows = np.asarray(array)
        if rows.ndim == 0 or rows.shape[0] % self.local_devices:
            raise GanctlError(
                f"a batch of {rows.shape[0] if rows.ndim else 0} rows cannot be split evenly over this "
                f"process's {self.local_devices} devices (train.distribution); the batch size must be a "
                "multiple of the number of devices."
            )
        return jax.make_array_from_process_local_data(self.rows, rows)


def mesh_devices(devices: int | str) -> list[Any]:
    """The devices of the mesh for ``devices`` (``auto``: all of each process's; N: the first N
    of each process's), every process's in process order; ConfigError when there are fewer."""
    processes = jax.process_count()
    own = [[d for d in jax.devices() if d.process_index == p] for p in range(processes)]
    available = min(len(found) for found in own)
    if devices == "auto":
        count = available
    elif isinstance(devices, int) and not isinstance(devices, bool) and devices >= 1:
        count = devices
    else:
        raise ConfigError(f"train.distribution.devices is '{devices}'; use 'auto' or a whole number of devices, 1 or more.")
    if count > available:
        found = ", ".join(f"{d.platform}:{d.id}" for d in jax.local_devices())
        raise ConfigError(
            f"train.distribution.devices is {count}, but this process has only {available} "
            f"device{'s' if available != 1 else ''} ({found}). Set it to {available} or less, or to 'auto'."
        )
    return [device for found in own for device in found[:count]]


def placement_for(devices: int | str | None) -> Placement | None:
    """Set Keras's distribution for ``train.distribution.devices`` (None: no distribution, and
    any earlier one is cleared) and return the engine's :class:`Placement` (None without one).
    Call it before the model's variables exist."""
    import keras

    if devices is None:
        keras.distribution.set_distribution(None)
        return None
    chosen = mesh_devices(devices)
    mesh = keras.distribution.DeviceMesh(shape=(len(chosen),), axis_names=[AXIS], devices=chosen)
    keras.distribution.set_distribution(keras.distribution.DataParallel(device_mesh=mesh, auto_shard_dataset=False))
    return Placement(chosen)
