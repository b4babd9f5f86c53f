"""Free space: refuse a large write the disk cannot hold, before any of it is written.

A disk that fills up in the middle of an HDF5 write leaves the library in a state where even
closing the file may fail. So h5vc checks the free space of the store's file system before it
writes rows (appends, preserved ranges, restored ranges) and refuses, changing nothing, when
the rows (counted uncompressed) plus a margin for HDF5's metadata do not fit.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
from pathlib import Path
from typing import Any

from ..errors import DiskFullError

__all__ = ["MARGIN", "disk_full", "ensure_space"]

MARGIN = 1 << 20  # room kept for HDF5's own metadata and h5vc's records
AHEAD = 4 << 20  # reserved beyond that when the disk has room, so most writes skip the check
ROOMY = 64 << 20  # free space above which AHEAD is reserved too

# a store open in this process -> the end of the blocks reserved past it; forgotten at each
# open (the file may have been replaced since), trusted while the file stays open
_reserved: dict[str, int] = {}


def forget(path: Path | str) -> None:
    """A store is being opened: what was reserved past an earlier copy of it no longer counts."""
    _reserved.pop(str(path), None)


def ensure_space(path: Path | str, nbytes: int, what: str, size: int | None = None) -> None:
    """DiskFullError unless ``nbytes`` (plus MARGIN) fit on the file system of ``path``.

    The space is also reserved: blocks are allocated past the end of the store file (without
    changing its size), so that HDF5's writes land in them, and a disk that another program
    fills meanwhile cannot make HDF5 fail halfway through writing its metadata.
    ``size``: the file's current size, when the caller holds it open (saves a stat).
    """
    key = str(path)
    try:
        if size is None:
            size = os.stat(path).st_size
        if size + nbytes + MARGIN <= _reserved.get(key, -1):
            return  # those blocks are already ours
        st = os.statvfs(path)
    except OSError:
        return  # no way to know (e.g. the path is gone): let the write say what it finds
    free = st.f_bavail * st.f_frsize
    if nbytes + MARGIN <= free:
        want = nbytes + MARGIN + (AHEAD if free > nbytes + MARGIN + ROOMY else 0)
        done = _reserve(path, want)
        if done is not False:
            if done is not None:
                _reserved[key] = done
            return
    free = os.statvfs(path).f_bavail * st.f_frsize
    raise DiskFullError(
        f"not enough space for {what}: it needs about {_size(nbytes + MARGIN)}, the disk "
        f"holding {path} has {_size(free)} free; free some space and try again (nothing "
        "was changed)"
    )


_FALLOC_FL_KEEP_SIZE = 1


@functools.lru_cache(maxsize=1)
def _fallocate() -> Any:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        f = libc.fallocate
    except (OSError, AttributeError):
        return None
    f.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    f.restype = ctypes.c_int
    return f


def _reserve(path: Path | str, nbytes: int) -> int | bool | None:
    """Allocate ``nbytes`` past the end of ``path``, keeping its size: the end of what is
    now reserved; False when the disk has not the room; None when the file system cannot
    reserve (nothing more to do)."""
    fall = _fallocate()
    if fall is None:
        return None
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        size = os.fstat(fd).st_size
        if fall(fd, _FALLOC_FL_KEEP_SIZE, size, nbytes) == 0:
            return size + nbytes
        return None if ctypes.get_errno() != errno.ENOSPC else False
    finally:
        os.close(fd)


def disk_full(e: BaseException) -> bool:
    """True when ``e`` (an OSError from HDF5 or the OS) says the disk is full."""
    if isinstance(e, DiskFullError):
        return True
    text = str(e)
    return (isinstance(e, OSError) and e.errno == errno.ENOSPC) or (
        isinstance(e, (OSError, RuntimeError))
        and ("No space left" in text or "errno = 28" in text or "file write failed" in text))


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)
