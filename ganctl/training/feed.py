"""Feeding the engine: each step's inputs prepared ahead of the step (``train.prefetch``).

A step's inputs are a deterministic function of ``(seed, epoch, step)``: the dataset's batch
(its order is a permutation drawn from ``(seed, epoch)``) and the latents of every player update
(drawn from ``(seed, step)``, :func:`ganctl.sampling.step_latents`). So they can be prepared
before the step that uses them without changing what is trained on: a :class:`Feed` with a
depth of N prepares up to N steps ahead in one background thread (a bounded queue: double
buffering at N = 2), and hands them to the engine's :meth:`~ganctl.engine.interface.Engine.stage`
there, which starts the host-to-device copy (JAX: ``jax.device_put``; TensorFlow and PyTorch on a
GPU), so that the copy overlaps the step in progress. Depth 0 prepares each step's inputs in the
loop's own thread, just before the step, and leaves the copy to the step, as ganctl always did.

The order, the values and a resume's inputs are the same at every depth. The thread is started
for one epoch's steps and stops at the epoch's end, at :meth:`Feed.close` (the trainer calls it
when training ends, however it ends: completed, interrupted by a signal, or failed), or when the
next epoch starts; an error raised while preparing is raised in the loop's thread, at the step
that needed those inputs.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from itertools import islice
from typing import Any

Prepare = Callable[[int, Any], Any]
"""``prepare(step, batch) -> inputs``: what a step needs, from its global step number and its batch."""

_END = object()


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class Feed:
    """Prepares the next ``depth`` steps' inputs in a background thread (``depth`` 0: none).

    ``prepare(step, batch)`` makes a step's inputs on the host; ``stage(inputs)`` (the engine's
    :meth:`~ganctl.engine.interface.Engine.stage`) starts their copy to the device. Both run in
    the background thread when ``depth`` > 0; at depth 0 only ``prepare`` runs, in the caller's thread.
    """

    def __init__(self, prepare: Prepare, stage: Callable[[Any], Any], depth: int) -> None:
        if depth < 0:
            raise ValueError(f"the prefetch depth must be 0 or more, got {depth}")
        self.prepare, self.stage, self.depth = prepare, stage, depth
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def epoch(self, batches: Iterator[Any], first_step: int, count: int) -> Iterator[tuple[Any, Any]]:
        """``(batch, inputs)`` for ``count`` steps from global step ``first_step``, taking one batch
        of ``batches`` per step. A previous epoch's thread is stopped first."""
        self.close()
        if self.depth == 0:
            return self._inline(batches, first_step, count)
        self._stop = threading.Event()
        ready: queue.Queue[Any] = queue.Queue(maxsize=self.depth)
        self._thread = threading.Thread(target=self._work, args=(batches, first_step, count, ready, self._stop),
                                        name="ganctl-feed", daemon=True)
        self._thread.start()
        return self._take(ready, count)

    def close(self) -> None:
        """Stop the background thread (if any) and wait for it; what it prepared is dropped."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stop.set()
        thread.join()

    def __enter__(self) -> Feed:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- inside ---------------------------------------------------------------------------------

    def _inline(self, batches: Iterator[Any], first_step: int, count: int) -> Iterator[tuple[Any, Any]]:
        for offset, batch in enumerate(islice(batches, count)):  # nothing to overlap: no staging either
            yield batch, self.prepare(first_step + offset, batch)

    def _work(self, batches: Iterator[Any], first_step: int, count: int, ready: queue.Queue[Any],
              stop: threading.Event) -> None:
        try:
            for offset, batch in enumerate(islice(batches, count)):
                item: Any = (batch, self.stage(self.prepare(first_step + offset, batch)))
                if not self._put(ready, item, stop):
                    return
            item = _END
        except BaseException as exc:  # handed to the loop's thread, raised there
            item = _Failed(exc)
        self._put(ready, item, stop)

    @staticmethod
    def _put(ready: queue.Queue[Any], item: Any, stop: threading.Event) -> bool:
        """Queue ``item`` once there is room; False when told to stop first."""
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _take(self, ready: queue.Queue[Any], count: int) -> Iterator[tuple[Any, Any]]:
        for _ in range(count):
            item = ready.get()
            if item is _END:
                return
            if isinstance(item, _Failed):
                self.close()
                raise item.error
            yield item
        self.close()


def depth_for(setting: str | int, backend: str) -> int:
    """``train.prefetch`` resolved: ``auto`` is 2 (double buffering) when the backend computes on an
    accelerator, 0 on CPUs, where the step and the feeding thread would share the same cores."""
    if setting != "auto":
        return int(setting)
    from ganctl.engine import engine_for

    return 2 if engine_for(backend).accelerated() else 0
