"""Shared by the bench scripts (they run as ``python bench/NAME.py``, so this imports as ``common``)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any


def machine() -> dict[str, Any]:
    """CPU count and model, platform and Python version."""
    model = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpu_model": model, "platform": platform.platform(),
            "python": platform.python_version()}


def receive(proc: subprocess.Popen, log: Path, who: str) -> dict[str, Any]:
    """The next JSON line a child benchmark process writes; its log's end if it died instead."""
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.wait()
        raise SystemExit(f"the {who} child exited ({proc.returncode}); the end of its log:\n" + log.read_text()[-4000:])
    return json.loads(line)


def stop(proc: subprocess.Popen) -> None:
    """End a child benchmark process: close its input, wait a minute, then kill it."""
    if proc.poll() is None:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
