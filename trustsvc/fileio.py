"""Atomic file writes: a temporary name in the same directory, fsync, rename, then fsync of the directory.

Readers see the old content or the new, never a torn file; after a crash no half-written target remains.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


def _umask() -> int:
    """The process umask, read without changing it (Linux /proc; elsewhere the usual 022)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str], *, mode: int | None = None,
                  sync_dir: bool = True) -> Iterator[BinaryIO]:
    """A binary file to write; on normal exit it replaces ``path`` atomically, on error it is removed.

    ``mode`` is the new file's permission bits (default 0o666 minus the umask, as ``open`` would give).
    """
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w+b") as fh:
            os.fchmod(fh.fileno(), mode if mode is not None else 0o666 & ~_umask())
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if sync_dir:
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def write_atomic(path: str | os.PathLike[str], data: bytes, *, mode: int | None = None,
                 sync_dir: bool = True) -> None:
    """Write ``data`` to ``path`` atomically (see ``atomic_output``)."""
    with atomic_output(path, mode=mode, sync_dir=sync_dir) as fh:
        fh.write(data)


__all__ = ["atomic_output", "write_atomic"]
