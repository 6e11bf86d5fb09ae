"""The CPU topology this process runs on: how many physical cores, for onnxruntime's threads.

onnxruntime runs fastest with one thread per physical core: hyperthreads of one core share its
execution units, so counting them as cores oversubscribes it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path


def parse_cpu_list(text: str) -> frozenset[int]:
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
                cores.add(parse_cpu_list((topology / name).read_text()) or frozenset([cpu]))
                break
            except (OSError, ValueError):
                continue
        else:
            return len(cpus)
    return max(1, len(cores))
