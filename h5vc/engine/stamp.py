"""The store file's modification time as h5vc's seal: was the file written by anything else?

Rows rewritten in place by another program (plain h5py, a script) change no metadata, so a
metadata scan cannot see them; only rehashing the committed rows can. To keep that cost off
every ``status`` and ``commit``, h5vc seals the file after its own writes: it sets the
file's modification time to a value it derives from the file's size (a moment a second or
two in the past whose nanoseconds are a hash of that moment and the size). Any later write,
by any program, makes the kernel set the modification time to the present, which breaks the
seal; so does a change of size. An intact seal therefore means that nothing but h5vc wrote
the file since h5vc last vouched for it, and its committed rows need no rehash.

A copy that keeps modification times (``cp -p``, ``rsync -t``) keeps the seal, rightly: the
bytes are the same. A file system that does not keep nanoseconds cannot hold a seal; there
every ``status`` rehashes. Nothing is trusted that the seal does not prove: a broken or
missing seal only costs a rehash.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import xxhash

__all__ = ["is_sealed", "seal", "seal_seconds", "sealed_second"]

_NS = 1_000_000_000


def _mark(seconds: int, size: int) -> int:
    return xxhash.xxh3_64_intdigest(b"h5vc-seal %d %d" % (seconds, size)) % _NS


def is_sealed(st: os.stat_result) -> bool:
    """True when ``st`` (a stat of the store file) carries h5vc's seal."""
    seconds, ns = divmod(st.st_mtime_ns, _NS)
    return ns == _mark(seconds, st.st_size)


_keeps_ns: set[int] = set()  # devices seen to keep a sealed time exactly


def seal_seconds() -> int:
    """The second a seal made now would carry: 2 s in the past, so that no write from now on
    can produce the same modification time."""
    return time.time_ns() // _NS - 2


def sealed_second(st: os.stat_result) -> int:
    return st.st_mtime_ns // _NS


def seal(path: Path | str, st: os.stat_result | None = None, seconds: int | None = None,
         avoid: int | None = None) -> bool:
    """Seal the file as it is now (``st``: a stat of it just taken), with ``seconds`` (at
    least a second in the past; default :func:`seal_seconds`) but never ``avoid``; False
    when the file system could not keep the seal."""
    try:
        if st is None:
            st = os.stat(path)
        latest = time.time_ns() // _NS - 1
        if seconds is None or seconds > latest:
            seconds = seal_seconds()
        if seconds == avoid:
            seconds -= 1
        mtime = seconds * _NS + _mark(seconds, st.st_size)
        os.utime(path, ns=(st.st_atime_ns, mtime))
        if st.st_dev in _keeps_ns:
            return True
        if os.stat(path).st_mtime_ns != mtime:
            return False
        _keeps_ns.add(st.st_dev)
        return True
    except OSError:
        return False  # not ours to change (another owner, a read-only mount): no seal
