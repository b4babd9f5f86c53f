"""Free space: refuse a large write the disk cannot hold, before any of it is written.

A disk that fills up in the middle of an HDF5 write leaves the library in a state where even
closing the file may fail. So h5vc checks the free space of the store's file system before it
writes rows (appends, preserved ranges, restored ranges) and refuses, changing nothing, when
the rows (counted uncompressed) plus a margin for HDF5's metadata do not fit.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from .errors import DiskFullError

__all__ = ["MARGIN", "disk_full", "ensure_space"]

MARGIN = 1 << 20  # room kept for HDF5's own metadata and h5vc's records


def ensure_space(path: Path | str, nbytes: int, what: str) -> None:
    """DiskFullError unless ``nbytes`` (plus MARGIN) fit on the file system of ``path``."""
    try:
        st = os.statvfs(path)
    except OSError:
        return  # no way to know (e.g. the path is gone): let the write say what it finds
    free = st.f_bavail * st.f_frsize
    if nbytes + MARGIN > free:
        raise DiskFullError(
            f"not enough space for {what}: it needs about {_size(nbytes + MARGIN)}, the disk "
            f"holding {path} has {_size(free)} free; free some space and try again (nothing "
            "was changed)"
        )


def disk_full(e: BaseException) -> bool:
    """True when ``e`` (an OSError from HDF5 or the OS) says the disk is full."""
    return isinstance(e, OSError) and (e.errno == errno.ENOSPC or "No space left" in str(e)
                                       or "errno = 28" in str(e))


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)
