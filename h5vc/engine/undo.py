"""A rollback journal for a store open for writing: a kill never leaves HDF5 metadata torn.

HDF5 writes the entries of its metadata cache in the order of their addresses, not in the order
they were changed, so a process killed while HDF5 writes can leave a node that points at another
never written: a chunk index split in two, an object header whose new continuation block is
missing, a group whose name heap went ahead of its symbol table. No order of flushes chosen by
h5vc prevents it. So a store open for writing is read and written through :class:`UndoFile`
(h5py's file-object driver): before any byte the file held at the last checkpoint is
overwritten, its old value is appended to ``<store>.h5vc-undo``. A checkpoint is a completed
full flush (the file on disk is then whole); it empties the journal. The next open of a store
whose journal holds records writes them back and cuts the file to its size at the checkpoint
(:func:`roll_back`): the store is exactly as the last checkpoint left it, and h5vc's own
recovery (intents) takes it from there.

The journal: ``MAGIC2 | size at the checkpoint (u64) | generation (u64) | identity (16 bytes:
xxh3-128 of the file's first 4 KiB at the checkpoint)``, then records
``offset (u64) | length (u32) | xxh3-64 of generation, offset, length and bytes (u64) |
bytes``. A record is written whole before the write it guards, so a torn last record guards a
write never made and is passed over. A checkpoint starts a new generation by rewriting the
header in place (no truncation, which costs the file system more than the write): records of
an older generation left after the new ones fail their check and end the journal. Bytes past
the checkpoint's end of file are never journaled: rolling back cuts them off. Before it
writes anything, a roll-back checks that the file, with the records applied, has the identity
the header records: a journal left by a killed writer is never applied to a file put in the
store's place since (restored from a copy): :class:`ForeignJournalError` names it. A header
of an earlier h5vc (``MAGIC``, no identity) is rolled back unchecked.
"""

from __future__ import annotations

import errno
import fcntl
import os
import secrets
import struct
from pathlib import Path

import h5py
import xxhash

from ..errors import IntegrityError

SUFFIX = ".h5vc-undo"
MAGIC = b"H5VCUNDO"  # a header without the file's identity (written by earlier h5vc; emptied)
HEAD = struct.Struct("<8sQQ")
MAGIC2 = b"H5VCUND2"
HEAD2 = struct.Struct("<8sQQ16s")  # ... and the identity of the file it was written for
REC = struct.Struct("<QIQ")
IDENT_BYTES = 4096  # the file's first bytes (its superblock, which holds its end of file)
KEEP_BYTES = 1 << 20  # a journal left larger than this at close is cut to its header


def undo_path(path: Path | str) -> Path:
    return Path(str(path) + SUFFIX)


def _check(gen: int, offset: int, data: bytes) -> int:
    return xxhash.xxh3_64_intdigest(struct.pack("<QQI", gen, offset, len(data)) + data)


def _identity(first: bytes | bytearray) -> bytes:
    """What identifies the file a journal is for: a hash of its first bytes at the checkpoint
    (the superblock records the end of the file, which every commit moves)."""
    return xxhash.xxh3_128_digest(struct.pack("<Q", len(first)) + bytes(first))


class ForeignJournalError(IntegrityError):
    """The rollback journal beside a store was written for another state of the file: the file
    was replaced (restored from a copy, say) after a write to it was interrupted."""


def settle_undo(path: Path) -> bool:
    """Before a read-only open: roll back what a killed writer left (see :func:`roll_back`),
    when no writer holds the file and it can be written; True when something was undone."""
    if not undo_path(path).exists():
        return False
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return False  # read-only here: the next writing command rolls back
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False  # a writer has it open (and its journal is live)
        try:
            return roll_back(fd, path)
        except ForeignJournalError:
            return False  # not this file's: read it as it is (a writing open says so)
    finally:
        os.close(fd)


def roll_back(fd: int, path: Path) -> bool:
    """Undo the writes an interrupted session made to ``path`` (open as ``fd``, locked) since
    its last checkpoint; True when there were any. Idempotent: a kill while rolling back is
    rolled back again by the next open."""
    up = undo_path(path)
    try:
        with open(up, "rb") as j:
            raw = j.read()
    except FileNotFoundError:
        return False
    ident = None
    if raw[:8] == MAGIC2 and len(raw) >= HEAD2.size:
        _, size, gen, ident = HEAD2.unpack_from(raw)
        at = HEAD2.size
    elif raw[:8] == MAGIC and len(raw) >= HEAD.size:
        _, size, gen = HEAD.unpack_from(raw)
        at = HEAD.size
    else:
        return False  # made, killed before its first record: nothing to undo
    if gen == 0:
        return False  # emptied at a checkpoint (see UndoFile.checkpoint)
    records = []
    while at + REC.size <= len(raw):
        offset, length, check = REC.unpack_from(raw, at)
        data = raw[at + REC.size:at + REC.size + length]
        if len(data) != length or _check(gen, offset, data) != check:
            break  # torn (the write it guarded was never made), or of an older generation
        records.append((offset, data))
        at += REC.size + length
    if ident is not None:  # the file as the records would leave it must be the one they are of
        n = min(size, IDENT_BYTES)
        first = bytearray(os.pread(fd, n, 0).ljust(n, b"\0"))
        for offset, data in records:
            if offset < n:
                first[offset:min(n, offset + len(data))] = data[:n - offset]
        if _identity(first) != ident:
            raise ForeignJournalError(
                f"{path} is not the file its rollback journal {up.name} was written for (it was "
                "replaced after a write to it was interrupted); if this file is the one to keep, "
                f"delete {up.name}, then run the command again")
    changed = bool(records) or os.fstat(fd).st_size != size
    for offset, data in records:  # each byte is journaled once between checkpoints
        os.pwrite(fd, data, offset)
    os.ftruncate(fd, size)
    os.fsync(fd)
    with open(up, "r+b") as j:  # undone: the journal now undoes nothing
        j.write(HEAD.pack(MAGIC, 0, 0))
        j.truncate(HEAD.size)
    return changed


def _locking() -> bool:
    return os.environ.get("HDF5_USE_FILE_LOCKING", "").strip().upper() != "FALSE"


def _lock(fd: int, how: int, busy: str) -> None:
    """``flock`` as HDF5 takes it, unless ``HDF5_USE_FILE_LOCKING=FALSE``; an OSError that
    says ``busy`` when another program holds it; passed over where the file system has no
    locks (HDF5's best effort)."""
    if not _locking():
        return
    try:
        fcntl.flock(fd, how | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise OSError(e.errno, f"unable to lock file ({busy})") from None
        if e.errno not in (errno.ENOSYS, errno.ENOLCK, errno.EOPNOTSUPP):
            raise


class UndoFile:
    """The store's bytes for h5py's file-object driver, with every overwrite journaled first.

    Locks the store as HDF5 would (``flock``, unless ``HDF5_USE_FILE_LOCKING=FALSE``): the
    open is refused while any other program has the file open, and after the roll-back the
    lock is held shared: no other program can open the file for writing (HDF5 asks for an
    exclusive lock to write), while plain h5py can still read it, in this process as before
    (where HDF5 shared one open file between handles) and in others. h5vc's own readers wait
    for a writer through h5vc's writer lock (:func:`h5vc.engine.lock.writer_elsewhere`).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        try:
            _lock(self.fd, fcntl.LOCK_EX, "it is open in another program")
            self.rolled_back = roll_back(self.fd, path)
            self.pos = 0
            self.ufd: int | None = None
            self.upath = str(undo_path(path))
            self.uend = 0  # where its next record goes: 0 when none since the last checkpoint
            # generations are unique across sessions too: the journal file is kept, and the
            # records of an earlier session can follow this one's (see roll_back)
            self.gen = secrets.randbits(62)
            self.size = self.base = os.fstat(self.fd).st_size  # (the file's size, as written)
            self.saved: list[tuple[int, int]] = []  # disjoint, sorted ranges journaled already
            self.extended = self._extend_end()
            _lock(self.fd, fcntl.LOCK_SH, "it was opened by another program meanwhile")
        except BaseException:
            os.close(self.fd)
            raise

    def _extend_end(self) -> bool:
        """Move the superblock's end of allocation to the end of the file when a kill in an
        older h5vc's flush left it short (objects written past it, and links to them); True
        when it did. Versions 0 and 1 of the superblock, with 8-byte addresses (what h5vc and
        most tools write); HDF5 cannot be asked through the file-object driver."""
        at = 0
        while at < self.size:
            head = os.pread(self.fd, 64, at)
            if head[:8] == b"\x89HDF\r\n\x1a\n":
                break
            at = 512 if at == 0 else at * 2
        else:
            return False
        if len(head) < 52 or head[8] not in (0, 1) or head[13] != 8:
            return False
        base_at = at + (24 if head[8] == 0 else 28)
        base, _free, eoa = struct.unpack_from("<QQQ", head, base_at - at)
        if base + eoa >= self.size or base > self.size:
            return False
        self.pos = base_at + 16
        self.write(struct.pack("<Q", self.size - base))
        self.pos = 0
        return True

    def __repr__(self) -> str:  # h5py names the file by it
        return str(self.path)

    # -- the driver's calls ----------------------------------------------------------------

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence == 0:
            self.pos = offset
        elif whence == 1:
            self.pos += offset
        else:
            self.pos = os.fstat(self.fd).st_size + offset
        return self.pos

    def tell(self) -> int:
        return self.pos

    def readinto(self, buf: bytearray | memoryview) -> int:
        n = os.preadv(self.fd, [buf], self.pos)
        self.pos += n
        return n

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            size = max(0, os.fstat(self.fd).st_size - self.pos)
        data = os.pread(self.fd, size, self.pos)
        self.pos += len(data)
        return data

    def write(self, data: bytes | bytearray | memoryview) -> int:
        view = memoryview(data).cast("B")
        n = len(view)
        if self.pos < self.base:
            self._save(self.pos, min(self.pos + n, self.base))
        done = 0
        while done < n:
            done += os.pwrite(self.fd, view[done:], self.pos + done)
        self.pos += n
        self.size = max(self.size, self.pos)
        return n

    def truncate(self, size: int | None = None) -> int:
        size = self.pos if size is None else size
        if size == self.size:
            return size  # HDF5 asks at every flush; the file system charges even for no change
        if size < self.base:
            self._save(size, self.base)
        os.ftruncate(self.fd, size)
        self.size = size
        return size

    def flush(self) -> None:
        pass  # writes go straight to the file; checkpoints are h5vc's (see checkpoint)

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    # -- the journal -----------------------------------------------------------------------

    def _save(self, a: int, b: int) -> None:
        """Journal the bytes [a, b) not journaled yet, before they are overwritten."""
        todo = []
        for s, e in self.saved:
            if e <= a or s >= b:
                continue
            if s > a:
                todo.append((a, s))
            a = max(a, e)
        if a < b:
            todo.append((a, b))
        if not todo:
            return
        parts = []
        if self.ufd is None:  # (kept beside the store: made or removed, it costs a journal
            # commit of the file system at every open, as the writer lock does)
            self.ufd = os.open(self.upath, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        if self.uend == 0:
            self.gen = self.gen + 1 if self.gen + 1 < 1 << 63 else 1  # (never 0: "empty")
            # nothing below the checkpoint's end was written since it: these are its bytes
            first = os.pread(self.fd, min(self.base, IDENT_BYTES), 0)
            parts.append(HEAD2.pack(MAGIC2, self.base, self.gen, _identity(first)))
        for s, e in todo:
            old = os.pread(self.fd, e - s, s)
            parts.append(REC.pack(s, len(old), _check(self.gen, s, old)) + old)
        blob = b"".join(parts)
        done = 0
        while done < len(blob):
            done += os.pwrite(self.ufd, blob[done:], self.uend + done)
        self.uend += len(blob)
        if len(todo) == 1 and (not self.saved or self.saved[-1][1] < todo[0][0]):
            self.saved.append(todo[0])  # the common case: past every range journaled so far
            return
        merged = sorted(self.saved + todo)
        self.saved = []
        for s, e in merged:
            if self.saved and s <= self.saved[-1][1]:
                self.saved[-1] = (self.saved[-1][0], max(self.saved[-1][1], e))
            else:
                self.saved.append((s, e))

    def checkpoint(self) -> None:
        """The file on disk is whole (a full flush has completed): forget the old bytes. The
        journal is emptied, not removed (an empty journal undoes nothing)."""
        if self.uend:
            # generation 0: undoes nothing, whatever records follow the header
            os.pwrite(self.ufd, HEAD.pack(MAGIC, 0, 0), 0)  # type: ignore[arg-type]
            self.uend = 0
            self.saved = []
        self.base = self.size

    def close(self) -> None:
        """After HDF5 closed the file (which flushes it whole)."""
        if self.fd < 0:
            return
        self.checkpoint()
        if self.ufd is not None:
            if os.fstat(self.ufd).st_size > KEEP_BYTES:  # old records are not kept long
                os.ftruncate(self.ufd, HEAD.size)
            os.close(self.ufd)
            self.ufd = None
        os.close(self.fd)
        self.fd = -1


class JournaledFile(h5py.File):
    """A store open for writing through a rollback journal (:mod:`h5vc.engine.undo`): each
    completed flush is a checkpoint, and a kill between two leaves the store as the first left
    it once the next open has rolled back."""

    def __init__(self, path: Path) -> None:
        self._undo = UndoFile(path)
        try:
            super().__init__(self._undo, "r+")
        except BaseException:
            self._undo.close()
            raise

    def flush(self) -> None:
        super().flush()
        self._undo.checkpoint()

    def write_out(self) -> None:
        """Flush without a checkpoint: what is written stays undoable until the next flush."""
        super().flush()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._undo.close()


def write_out(f: h5py.File) -> None:
    """Write everything HDF5 holds to the file, as a step inside an operation: for a journaled
    store, not a checkpoint (a kill before the operation's next flush undoes it)."""
    if isinstance(f, JournaledFile):
        f.write_out()
    else:
        f.flush()
