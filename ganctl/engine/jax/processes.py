"""Many processes on JAX: the process group, started before anything uses a device.

``ganctl train`` runs as one of N cooperating processes when it is given a coordinator, a process
count and its process id (flags, or ``GANCTL_COORDINATOR`` / ``GANCTL_NUM_PROCESSES`` /
``GANCTL_PROCESS_ID``, or Keras's ``KERAS_DISTRIBUTION_JOB_ADDRESSES`` /
``KERAS_DISTRIBUTION_NUM_PROCESSES`` / ``KERAS_DISTRIBUTION_PROCESS_ID``), or when it runs as one
task of a SLURM or Open MPI job of several tasks (JAX finds the rest itself). :func:`requested`
reads the settings without importing JAX; :func:`start` joins the group
(``jax.distributed.initialize``, with gloo collectives on CPUs) before any device is used, within
``GANCTL_COORDINATOR_TIMEOUT`` seconds (a clear error instead of JAX's abort); :func:`agree`
checks, through the coordinator's key-value store, that every process resolved the same recipe.

A process that dies is noticed by the others within ``GANCTL_HEARTBEAT_TIMEOUT`` seconds at most
(JAX's heartbeat; a collective in progress fails at once when its peer's connection closes).
Once the group is started, a process that stops on an error leaves with :func:`leave`: JAX's
shutdown barrier at exit would otherwise wait for the processes that are gone, then abort.

Only the standard library is imported here until :func:`start`: the command line reads the
settings before the backend is chosen.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

from ganctl.errors import ConfigError, GanctlError

TIMEOUT_ENV = "GANCTL_COORDINATOR_TIMEOUT"
HEARTBEAT_ENV = "GANCTL_HEARTBEAT_TIMEOUT"
START_TIMEOUT = 300
"""Seconds to wait for every process to join the group (``GANCTL_COORDINATOR_TIMEOUT``)."""
HEARTBEAT_TIMEOUT = 30
"""Seconds without a heartbeat before a process counts as dead (``GANCTL_HEARTBEAT_TIMEOUT``)."""
SETTINGS_HELP = ("--coordinator HOST:PORT --num-processes N --process-id I (or GANCTL_COORDINATOR, "
                 "GANCTL_NUM_PROCESSES, GANCTL_PROCESS_ID)")
# What a collective or the coordination service says when another process of the group is gone.
_LOST_MARKERS = ("gloo", "connection closed", "connection reset", "unavailable", "heartbeat", "coordination service",
                 "socket closed", "nccl", "barrier")


@dataclass(frozen=True)
class Group:
    """The process group this process belongs to (one process: ``Group()``)."""

    count: int = 1
    index: int = 0
    coordinator: str | None = None
    """``HOST:PORT`` of process 0's coordination service; None: found by JAX (SLURM, Open MPI)."""
    origin: str = ""
    """Where the settings came from (for messages): flags, an environment variable, a cluster manager."""

    @property
    def many(self) -> bool:
        return self.count > 1 or self.coordinator is None and bool(self.origin)

    @property
    def writer(self) -> bool:
        """Whether this process writes the run directory (process 0 does; the others write nothing)."""
        return self.index == 0

    def rows(self, size: int) -> slice:
        """This process's rows of a global batch of ``size`` rows: the processes' rows, in process
        order, make the global batch."""
        return slice(size * self.index // self.count, size * (self.index + 1) // self.count)


_group = Group()
_joining = False  # start() began: from here on an exit goes through leave()
_on_leave: list[Callable[[], None]] = []


def current() -> Group:
    """The group started in this process (``Group()`` when none was)."""
    return _group


def joined() -> bool:
    """Whether this process began joining a group of several (then it exits through :func:`leave`)."""
    return _joining


def _integer(value: str | int | None, name: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} is '{value}', not a whole number. Give {SETTINGS_HELP}.") from None


def _cluster(env: Mapping[str, str]) -> str | None:
    """The cluster manager whose job runs several tasks here (JAX reads the rest from it)."""
    def tasks(*names: str) -> int:
        for name in names:
            try:
                return int(env.get(name, ""))
            except ValueError:
                continue
        return 0

    if env.get("SLURM_JOB_ID") and tasks("SLURM_STEP_NUM_TASKS") > 1:  # a job step (srun), not salloc's shell
        return "SLURM"
    if tasks("OMPI_COMM_WORLD_SIZE") > 1:
        return "Open MPI"
    return None


def requested(coordinator: str | None = None, num_processes: int | None = None, process_id: int | None = None,
              env: Mapping[str, str] | None = None) -> Group:
    """The group that the flags, then ``GANCTL_*``, then ``KERAS_DISTRIBUTION_*`` ask for, or a
    cluster manager's job of several tasks; ``Group()`` (one process) when nothing asks.
    ConfigError for settings that cannot describe a group."""
    env = os.environ if env is None else env
    origin = "flags"
    if coordinator is None and num_processes is None and process_id is None:
        origin = "GANCTL_* variables"
        coordinator = env.get("GANCTL_COORDINATOR") or None
        num_processes = _integer(env.get("GANCTL_NUM_PROCESSES"), "GANCTL_NUM_PROCESSES")
        process_id = _integer(env.get("GANCTL_PROCESS_ID"), "GANCTL_PROCESS_ID")
    if coordinator is None and num_processes is None and process_id is None:
        origin = "KERAS_DISTRIBUTION_* variables"
        addresses = env.get("KERAS_DISTRIBUTION_JOB_ADDRESSES") or ""
        coordinator = addresses.split(",")[0].strip() or None
        num_processes = _integer(env.get("KERAS_DISTRIBUTION_NUM_PROCESSES"), "KERAS_DISTRIBUTION_NUM_PROCESSES")
        process_id = _integer(env.get("KERAS_DISTRIBUTION_PROCESS_ID"), "KERAS_DISTRIBUTION_PROCESS_ID")
    if coordinator is None and num_processes is None and process_id is None:
        manager = _cluster(env)
        return Group(origin=f"the {manager} job") if manager else Group()
    if num_processes is None or num_processes < 1:
        raise ConfigError(f"the number of processes ({origin}) is {num_processes}; give it as a whole number, "
                          f"1 or more, together with the coordinator and this process's id: {SETTINGS_HELP}.")
    if num_processes == 1 and process_id in (None, 0):
        return Group()
    if process_id is None or not 0 <= process_id < num_processes:
        raise ConfigError(f"the process id ({origin}) is {process_id}, but with {num_processes} processes each one "
                          f"needs its own id from 0 to {num_processes - 1} (0 is the coordinator and the one that "
                          f"writes the run directory): {SETTINGS_HELP}.")
    host, _, port = (coordinator or "").rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"the coordinator ({origin}) is '{coordinator}'; give process 0's address as HOST:PORT "
                          "(e.g. 10.0.0.1:1234, a port free on that host), the same on every process.")
    return Group(num_processes, process_id, coordinator, origin)


def check(group: Group, backend: str, batch_size: int, source: str) -> None:
    """What can be refused before any process joins: another backend, a batch that does not divide."""
    if not group.many:
        return
    if backend != "jax":
        raise ConfigError(f"training as several cooperating processes ({group.origin}) runs on the JAX backend "
                          f"only (jax.distributed with keras.distribution), and this run uses {backend}. Train with "
                          "--backend jax, or as one process (leave out --coordinator, --num-processes, --process-id).")
    if group.count > 1 and batch_size % group.count:
        raise ConfigError(f"{source}: train.batch_size {batch_size} does not divide across {group.count} processes "
                          f"(each takes an equal share of every global batch); set it to a multiple of "
                          f"{group.count}, or use a number of processes that divides it.")


def _seconds(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    try:
        return max(1, int(value)) if value else default
    except ValueError:
        raise ConfigError(f"{name} is '{value}'; give a whole number of seconds.") from None


def start(group: Group) -> Group:
    """Join ``group`` (a no-op for one process); the group as JAX sees it (a cluster manager's
    job says its count and index only now). Must run before anything uses a JAX device."""
    global _group, _joining
    if not group.many:
        return group
    timeout, heartbeat = _seconds(TIMEOUT_ENV, START_TIMEOUT), _seconds(HEARTBEAT_ENV, HEARTBEAT_TIMEOUT)
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")  # cross-process reductions on CPUs
    failure: list[BaseException] = []
    done = threading.Event()

    def join() -> None:
        try:
            jax.distributed.initialize(
                coordinator_address=group.coordinator,
                num_processes=group.count if group.coordinator else None,
                process_id=group.index if group.coordinator else None,
                initialization_timeout=timeout + 60,  # ours (below) says what went wrong first
                heartbeat_timeout_seconds=heartbeat, shutdown_timeout_seconds=max(heartbeat, 60),  # at exit
            )
        except BaseException as exc:  # noqa: BLE001 - reported in the main thread
            failure.append(exc)
        finally:
            done.set()

    _joining = True
    threading.Thread(target=join, name="ganctl-join", daemon=True).start()
    if not done.wait(timeout):  # JAX would abort the process after its own timeout
        if group.index == 0:
            why = (f"process 0 waited {timeout} s at {group.coordinator} for the other {group.count - 1} "
                   "process(es) to join, and not all did")
        else:
            why = (f"process {group.index} could not join the group at {group.coordinator} within {timeout} s: "
                   "process 0 must be running there (started with --process-id 0) and the address must be "
                   "reachable from this host")
        fail(f"{why}. Start every process with the same --coordinator and --num-processes {group.count} and its "
             f"own --process-id (0 to {group.count - 1}), or give them longer with {TIMEOUT_ENV}=SECONDS. "
             "Nothing was written.", 2)
    if failure:
        fail(f"could not join the process group ({group.origin}): {failure[0]}. Nothing was written.", 2)
    _group = Group(jax.process_count(), jax.process_index(), group.coordinator or "auto", group.origin)
    return _group


def agree(what: str, value: str) -> None:
    """ConfigError on every process unless every process gives the same ``value`` for ``what``
    (e.g. the resolved recipe's hash): process 0 compares, then tells the others. On a difference
    every process leaves the group together (a clean shutdown), before anything is written."""
    global _joining
    if not _group.many:
        return
    import jax
    from jax._src.distributed import global_state

    client, timeout_ms = global_state.client, _seconds(TIMEOUT_ENV, START_TIMEOUT) * 1000
    try:
        client.key_value_set(f"ganctl/{what}/{_group.index}", value)
        if _group.writer:
            differ = [str(i) for i in range(1, _group.count)
                      if client.blocking_key_value_get(f"ganctl/{what}/{i}", timeout_ms) != value]
            verdict = "same" if not differ else (
                f"the {what} differs between processes: process(es) {', '.join(differ)} resolved another one than "
                f"process 0. Every process must run the same {what} (same file, same --set, same --resume run "
                "and backend); nothing was written.")
            client.key_value_set(f"ganctl/{what}/verdict", verdict)
        else:
            verdict = client.blocking_key_value_get(f"ganctl/{what}/verdict", timeout_ms)
    except Exception as exc:  # noqa: BLE001 - a process stopped before it compared
        raise error_of(exc) from None
    if verdict != "same":
        jax.distributed.shutdown()  # every process is here: they leave together, none waits for another
        _joining = False
        raise ConfigError(verdict)


def describe() -> dict[str, Any]:
    """The group for run.json: the count, the coordinator, and each process's devices."""
    import jax

    devices: dict[str, list[str]] = {}
    for device in jax.devices():
        devices.setdefault(str(device.process_index), []).append(f"{device.platform}:{device.id}")
    return {"count": _group.count, "coordinator": _group.coordinator, "devices": devices}


def lost(exc: BaseException) -> bool:
    """Whether ``exc`` says that another process of the group is gone (a collective failed)."""
    text = f"{type(exc).__name__} {exc}".lower()
    return _group.many and any(marker in text for marker in _LOST_MARKERS)


def on_leave(action: Callable[[], None]) -> None:
    """Run ``action`` (a clean-up) before :func:`leave` ends the process."""
    _on_leave.append(action)


def fail(message: str, code: int) -> NoReturn:
    """Print ``message`` as an error and leave (used where JAX may hold the process in native code)."""
    for line in message.splitlines() or [message]:
        print(f"error: {line}", file=sys.stderr)
    leave(code)


def leave(code: int) -> NoReturn:
    """End this process now with ``code``, after its clean-ups: JAX's shutdown barrier at exit would
    wait for processes that stopped, then abort."""
    for action in _on_leave:
        try:
            action()
        except Exception:  # noqa: BLE001, S110 - leaving anyway
            pass
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def error_of(exc: BaseException) -> GanctlError:
    """The error a process reports when another process of its group is gone."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return GanctlError(f"process {_group.index} of {_group.count} stopped: another process of the group is gone "
                       f"or unreachable ({first[:200]}).")
