"""One writer at a time, enforced by h5vc itself: an OS lock on a file beside the store.

HDF5's own file locking is often off (``HDF5_USE_FILE_LOCKING=FALSE`` on NFS and clusters),
and without it two writers corrupt a store. So a writable :class:`~h5vc.Repository` holds an
exclusive ``flock`` on ``<store>.h5vc-lock`` for as long as it is open. The kernel drops the
lock when the process dies, so it never goes stale. The file names its last holder (pid,
host, command, since when) so that a refused writer can say who is writing. The file stays
beside the store (truncating or removing it costs a file-system journal commit, ~1 ms, on
every open); a lock taken on a file someone removed meanwhile is taken again on the new one.
"""

from __future__ import annotations

import errno
import fcntl
import functools
import json
import os
import socket
import sys
import time
from pathlib import Path

from ..errors import LockedError, ReadOnlyError

__all__ = ["LOCK_SUFFIX", "StoreLock", "lock_path", "probe_readers", "writer_elsewhere"]

LOCK_SUFFIX = ".h5vc-lock"
POLL = 0.05
INFO_BYTES = 512  # the holder's description, padded with spaces: rewritten in place


def lock_path(store: Path) -> Path:
    return store.with_name(store.name + LOCK_SUFFIX)


def _command() -> str:
    argv = [Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python", *sys.argv[1:3]]
    return " ".join(a for a in argv if a)[:80]


_HELD: set[str] = set()  # lock files this process holds


def writer_elsewhere(store: Path) -> str | None:
    """The holder of ``store``'s writer lock when another process holds it, else None.

    A writable open holds the store itself with a shared lock only (see h5vc.engine.undo), so
    that readers of this process can open it; h5vc's readers ask here instead, and wait or
    refuse as they did when the writer's lock on the store kept them out."""
    path = lock_path(store)
    if str(path) in _HELD:
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return _describe(fd)
    else:
        return None
    finally:
        os.close(fd)


class StoreLock:
    """The writer lock of one store; :meth:`acquire` waits up to ``wait`` seconds."""

    def __init__(self, store: Path) -> None:
        self.store = store
        self.path = lock_path(store)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, wait: float = 0.0) -> None:
        deadline = time.monotonic() + max(0.0, wait)
        while True:
            holder = self._try()
            if holder is None:
                return
            if time.monotonic() >= deadline:
                raise LockedError(
                    f"{self.store} is being written by another h5vc process ({holder}); wait "
                    "for it to finish, or pass --wait SECONDS to wait for it"
                )
            time.sleep(POLL)

    def _try(self) -> str | None:
        """None when the lock is now ours; else a description of its holder."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        except OSError as e:
            if e.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
                raise ReadOnlyError(
                    f"cannot create the lock file {self.path} ({e.strerror}); h5vc needs to "
                    "write in the store's folder: make it writable"
                ) from None
            raise
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                os.close(fd)
                raise
            holder = _describe(fd)
            os.close(fd)
            return holder
        try:
            same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
        except FileNotFoundError:
            same = False
        if not same:  # the holder removed the file as we opened it: take the new one
            os.close(fd)
            return self._try()
        os.pwrite(fd, _info(), 0)
        self._fd = fd
        _HELD.add(str(self.path))
        return None

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            _HELD.discard(str(self.path))
            os.close(fd)  # the kernel drops the lock


@functools.lru_cache(maxsize=1)
def _static_info() -> tuple[str, str]:
    return socket.gethostname(), _command()


def _info() -> bytes:
    host, cmd = _static_info()
    text = json.dumps({"pid": os.getpid(), "host": host, "command": cmd,
                       "since": time.strftime("%Y-%m-%d %H:%M:%S")}).encode()[:INFO_BYTES]
    return text.ljust(INFO_BYTES)


def _describe(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, INFO_BYTES, 0) or b"{}")
        return (f"`{info['command']}`, pid {info['pid']} on {info['host']}, "
                f"since {info['since']}")
    except (OSError, ValueError, KeyError, TypeError):
        return "its details are unknown"


def probe_readers(store: Path) -> str:
    """Who holds an HDF5 lock on ``store`` that h5vc's lock does not explain.

    HDF5 takes a shared flock to read and an exclusive one to write; a shared probe that
    succeeds means every holder is reading.
    """
    try:
        fd = os.open(store, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return "another process"
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return "another process that is reading it (h5py, HDFView or `h5vc log`, for example)"
    except OSError:
        return "another process that is writing it without h5vc"
    finally:
        os.close(fd)
