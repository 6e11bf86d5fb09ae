"""Crash-safe file writing: a reader sees the old file or the new one, never a partial one."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from ganctl.errors import ConfigError


@contextlib.contextmanager
def atomic_writer(path: str | Path) -> Iterator[BinaryIO]:
    """Open a temporary file beside ``path``; on success fsync it and rename it over ``path``.

    A crash (or kill -9) at any instant leaves either the previous file or the complete new
    one; an exception removes the temporary file. Unwritable locations raise ConfigError.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = _create_temp(path)
    except OSError as exc:
        raise ConfigError(
            f"cannot write {path}: {why_unwritable(path, exc)}; choose a writable location.") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise ConfigError(
            f"cannot write {path}: {why_unwritable(path, exc)}; choose a writable location.") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def why_unwritable(path: str | Path, exc: OSError) -> str:
    """Why ``path`` could not be written, for an error message: the file that stands where one of
    its folders should be (the OS would say "File exists" or "Not a directory"), else the OS's reason."""
    for folder in Path(path).parents:
        if folder.exists():
            if not folder.is_dir():
                return f"{folder} is a file, not a folder, so nothing can be written inside it"
            break
    return exc.strerror or str(exc)


def atomic_write(path: str | Path, data: bytes | Callable[[BinaryIO], None]) -> Path:
    """Write ``data`` (bytes, or a function that writes to a binary handle) atomically."""
    with atomic_writer(path) as handle:
        if callable(data):
            data(handle)
        else:
            handle.write(data)
    return Path(path)


def _create_temp(path: Path) -> tuple[int, str]:
    """A new, empty file beside ``path`` to write into: its descriptor and its name.

    It is created with mode 0o666, as ``open(path, "w")`` creates a file, so the kernel applies
    the process's umask (and a folder's default ACL): the renamed file gets the permissions any
    new file of the user gets, 0o644 under umask 022. (``tempfile.mkstemp`` makes it 0o600, and
    reading the umask means setting it, which races with other threads creating files.)
    """
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            return os.open(tmp, flags, 0o666), str(tmp)
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary file name", str(path.parent))


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def cache_dir(name: str) -> Path | None:
    """``name``'s folder in ganctl's cache (not created here), or None when caching is off.

    ``$GANCTL_CACHE_DIR/<name>``; without that variable ``$XDG_CACHE_HOME/ganctl/<name>``
    (default ``~/.cache/ganctl/<name>``). ``GANCTL_CACHE_DIR`` set to an empty string turns
    every cache of ganctl off: compiled JAX steps, real features, TensorRT engines.
    """
    root = os.environ.get("GANCTL_CACHE_DIR")
    if root is None:
        root = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
                            "ganctl")
    return Path(root) / name if root else None


def replace_path(written: Path, destination: Path) -> None:
    """Move ``written`` to ``destination`` in one rename; a folder replaces a folder via a swap."""
    if written.is_file():
        os.replace(written, destination)
        return
    if destination.exists() and not destination.is_dir():
        raise ConfigError(f"--out {destination} is a file; this format writes a folder.")
    old = destination.with_name(f".{destination.name}.old-{os.getpid()}")
    if destination.exists():
        os.replace(destination, old)
    os.replace(written, destination)
    shutil.rmtree(old, ignore_errors=True)


def sha256(path: Path) -> str:
    """The sha256 of a file, or of a folder's files in sorted order."""
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for item in files:
        with item.open("rb") as handle:
            for block in iter(lambda h=handle: h.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()
