"""The installed onnxruntime, read from its files without importing it.

Importing onnxruntime is slow, and asking it about GPU providers can print errors on stderr;
its package folder and build information answer what ganctl needs to know beforehand.
"""

from __future__ import annotations

import functools
import importlib.util
import re
from pathlib import Path


def ort_folder() -> Path | None:
    """onnxruntime's package folder, found without importing it."""
    try:
        spec = importlib.util.find_spec("onnxruntime")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


@functools.cache
def ort_build() -> tuple[str, str, str]:
    """(package name, version, CUDA version it was built for, or "") of the installed onnxruntime."""
    folder = ort_folder()
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
