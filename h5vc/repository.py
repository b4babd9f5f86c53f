"""Repository: open, init, status, commit, log, show, checkout, branches and tags."""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import functools
import getpass
import json
import mmap
import os
import re
import time
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import xxhash

from .crashpoints import crash_point
from .diff import Diff, diff_states
from .engine import snapshot as snapshot_pages
from .engine.chunks import blob_hash, load_plugins, stored_blob
from .engine.footprint import Footprints, Table, Unknown
from .engine.format import META, TRAILER, Frame, Layout, canonical_json
from .engine.hashing import decode_dtype, dtype_holds_refs, dtype_key, plain_value, rows_hash
from .engine.hdf5lib import extend_to_eof
from .engine.lock import StoreLock, probe_readers, writer_elsewhere
from .engine.objects import RestoreReport, preserve_rows, preserved_blob, restore
from .engine.provenance import Provenance, legacy_sources
from .engine.rows import live_hash, read_rows
from .engine.scan import materialize, object_filters, read_attrs, scan, scan_suspects
from .engine.snapshot import PagedState, Pages, changed_paths
from .engine.snapshot import encode as encode_pages
from .engine.space import disk_full, ensure_space
from .engine.space import forget as forget_reserved
from .engine.stamp import is_sealed, seal, seal_seconds, sealed_second
from .engine.state import (
    State,
    apply_changes,
    block_rows,
    empty_state,
    format_needed,
    is_below,
    selected,
    summary_line,
    utc_now,
    within,
)
from .engine.undo import JournaledFile, settle_undo, write_out
from .errors import (
    DataLossError,
    DirtyStoreError,
    DiskFullError,
    H5vcError,
    IntegrityError,
    InvalidInputError,
    LockedError,
    NotARepositoryError,
    NotFoundError,
    ReadOnlyError,
)
from .export import ExportReport
from .export import export as _export
from .git.env import git_identity, git_or_none, ignore_store, is_ignored, is_tracked
from .paths import check_text, normalize_path, shown
from .pointer import pointer_path, read_pointer, write_pointer
from .refs import check_ref_name, parse_rev, resolve_base
from .verify import Loss, RepairReport, VerifyReport, find_losses
from .verify import repair as _repair
from .verify import verify as _verify
from .version import __version__
from .view import View, ViewDataset

__all__ = ["CheckoutResult", "Commit", "Repository", "Status"]

# the snapshot is rewritten once the frames after it exceed this or a quarter of its size: an
# open decodes those frames (each ~25 µs) to reach HEAD, a rewrite costs about one write
SNAPSHOT_MIN_BYTES = 2 * 1024
# a paged snapshot is read a page at a time, so its size does not slow an open: it is rewritten
# once this much follows it, which bounds what an open replays
SNAPSHOT_MAX_TAIL = 64 * 1024


@dataclass(frozen=True)
class Commit:
    """One commit: its id, parents, author, UTC time, message and changes."""

    id: str
    parents: tuple[str, ...]
    author: str
    time: str
    message: str
    changes: list[dict[str, Any]] = field(repr=False, compare=False)

    @property
    def short_id(self) -> str:
        return self.id[:10]

    @property
    def summary(self) -> str:
        return summary_line(self.changes)

    @property
    def datetime(self) -> _dt.datetime:
        return _dt.datetime.fromisoformat(self.time.replace("Z", "+00:00"))

    def to_json(self, *, changes: bool = False) -> dict[str, Any]:
        d: dict[str, Any] = {"id": self.id, "parents": list(self.parents), "author": self.author,
                             "time": self.time, "message": self.message, "summary": self.summary}
        if changes:
            d["changes"] = self.changes
        return d

    @classmethod
    def _from_record(cls, id_: str, rec: dict[str, Any]) -> Commit:
        return cls(id_, tuple(rec["parents"]), rec["author"], rec["time"], rec["message"],
                   rec["changes"])


@dataclass(frozen=True)
class Status:
    """What differs between the store and HEAD."""

    head: str | None
    branch: str | None
    changes: list[dict[str, Any]]
    pointer: str | None = None  # the commit the pointer file names, when there is one
    interrupted: str | None = None  # an h5vc operation a killed process left unfinished
    lost: list[Loss] = field(default_factory=list)  # committed rows others destroyed

    @property
    def clean(self) -> bool:
        return not self.changes and self.interrupted is None

    @property
    def pointer_stale(self) -> bool:
        """True when a pointer file exists and names another commit than HEAD."""
        return self.pointer is not None and self.pointer != self.head


@dataclass(frozen=True)
class CheckoutResult:
    commit: Commit
    branch: str | None
    discarded: list[dict[str, Any]]
    report: RestoreReport


def _is_id(v: Any) -> bool:
    return isinstance(v, str) and len(v) == 32 and all(c in "0123456789abcdef" for c in v)


def _check_refs(refs: Any, journal_len: int) -> None:
    """IntegrityError unless ``refs`` has the shape h5vc writes and fits the journal."""
    ok = (isinstance(refs, dict) and isinstance(refs.get("head"), dict)
          and isinstance(refs.get("branches"), dict) and isinstance(refs.get("tags"), dict)
          and isinstance(refs.get("journal_len"), int) and 0 <= refs["journal_len"] <= journal_len
          and isinstance(refs.get("pos", {}), dict))
    if ok:
        head = refs["head"]
        ok = (set(head) == {"branch"} and isinstance(head["branch"], str)) or \
             (set(head) == {"commit"} and _is_id(head["commit"]))
        ok = ok and all(isinstance(k, str) and _is_id(v) for kind in ("branches", "tags")
                        for k, v in refs[kind].items())
        ok = ok and all(_is_id(k) and isinstance(v, int) for k, v in refs.get("pos", {}).items())
    if not ok:
        raise IntegrityError(f"/{META}/refs does not hold valid refs")


def _check_snapshot(snap: Any, journal_len: int) -> None:
    ok = (isinstance(snap, dict) and _is_id(snap.get("commit"))
          and isinstance(snap.get("journal_len"), int) and 0 < snap["journal_len"] <= journal_len)
    if ok and "pages" in snap:  # paged (engine/snapshot.py): the header, its pages apart
        pages = snap["pages"]
        ok = (isinstance(pages, list) and bool(pages) and "state" not in snap
              and all(isinstance(e, list) and len(e) == 5 and isinstance(e[0], str)
                      and all(isinstance(v, int) and v >= 0 for v in (e[1], e[2], e[4]))
                      and isinstance(e[3], str) for e in pages)
              and [e[0] for e in pages] == sorted(e[0] for e in pages))
    elif ok:
        ok = isinstance(snap.get("state"), dict) and "/" in snap["state"]
    if not ok:
        raise IntegrityError(f"/{META}/state does not hold a valid snapshot")


class _ViewSource:
    """What a view of this repository reads through (see :class:`h5vc.view.ReadSource`)."""

    def __init__(self, repo: Repository) -> None:
        self._r = repo
        self.path = repo.path
        self.file = repo._f
        self.layout = repo._layout

    @property
    def rows_trusted(self) -> bool:
        return self._r._seal.still_trusted(self._r._f)

    def head_state(self) -> tuple[str | None, State]:
        return self._r._head_state()

    def reopen(self) -> Any:
        return Repository.open_view

    def backup_rows(self, wanted: dict[str, tuple[dict[str, Any], int, int]]) -> dict[str, np.ndarray]:
        return self._r.backup_rows(wanted)

    @property
    def has_remote(self) -> bool:
        return self._r.default_remote is not None


class _Seal:
    """Whether a session can vouch for the store's committed rows (see :mod:`h5vc.engine.stamp`).

    ``trusted``: every committed row in the file is as HEAD records it, apart from changes a
    metadata scan sees (the seal was intact at open, or this session rehashed or rewrote
    them). A writable session that still vouches at close seals the file. ``clean``: the
    store equals HEAD, known without a scan (the file was sealed by a session that knew it
    clean, or this session scanned, committed or checked out); a writable session records it
    in the file before it closes, so that the next ``status`` of a sealed file needs no scan.
    ``reseal``: a read-only session that rehashed and found the rows intact seals the file at
    close if its modification time is still this one.
    """

    __slots__ = ("clean", "layout", "modified", "mtime", "path", "prints", "reseal", "second",
                 "suspects", "trusted")

    def __init__(self, path: Path, trusted: bool, second: int | None = None,
                 mtime: int | None = None) -> None:
        self.path = path
        self.trusted = trusted
        self.second = second  # the second of the seal found at open
        self.mtime = mtime  # the file's modification time after h5vc's own last write
        self.modified = False  # this session wrote the file (a refused command writes nothing)
        self.clean = False
        self.layout: Layout | None = None
        self.reseal: int | None = None
        self.suspects: set[str] = set()  # paths whose footprints this session found changed
        self.prints: Any = None  # weak method: refresh the footprints table before closing

    @classmethod
    def at_open(cls, path: Path) -> _Seal:
        try:
            st = os.stat(path)
        except OSError:
            return cls(path, False)
        sealed = is_sealed(st)
        return cls(path, sealed, sealed_second(st) if sealed else None, st.st_mtime_ns)

    def wrote(self, modified: bool = True) -> None:
        """h5vc has just finished writing (and flushing): note the file's time."""
        self.modified = self.modified or modified
        try:
            self.mtime = os.stat(self.path).st_mtime_ns
        except OSError:
            self.mtime = None

    def still_trusted(self, f: h5py.File | None = None) -> bool:
        """Trust holds while nothing else wrote the file since h5vc last did. ``f``: this
        session's open file, flushed first, so that writes made through it (``repo.file``)
        or through another handle of this process reach the disk and show in its time."""
        if self.trusted:
            if f is not None and f.id.valid and f.mode == "r+":
                try:
                    f.flush()
                except (OSError, RuntimeError):
                    self.trusted = self.clean = False
                    return False
            try:
                same = os.stat(self.path).st_mtime_ns == self.mtime
            except OSError:
                same = False
            if not same:
                self.trusted = self.clean = False
        return self.trusted

    def known_clean(self) -> bool:
        """At open: the seal is the one a session that knew the store clean set."""
        return (self.trusted and self.layout is not None and self.second is not None
                and self.layout.clean_seal == self.second)

    def before_close(self, writable: bool) -> None:
        """A writable session records the second of the seal it is about to set when the
        store equals HEAD (inside the file, so the seal covers it). A second already recorded
        is kept (any second in the past makes a valid seal), so that sessions do not rewrite
        the record, and a refused command leaves the file's bytes as they were."""
        if not writable or self.layout is None or not (self.trusted and self.clean):
            return  # nothing to record
        refresh = self.prints() if self.prints is not None else None
        if refresh is not None:
            try:
                refresh()
            except (OSError, RuntimeError, ValueError, KeyError, H5vcError):
                pass  # only a cache: the next check reads more
        if not self.modified and self.layout.clean_seal is None:
            return  # a session that wrote nothing leaves the bytes as they were
        try:
            kept = self.layout.clean_seal
            self.second = kept if kept is not None else seal_seconds()
            self.layout.set_clean_seal(self.second)
        except (OSError, RuntimeError, ValueError, KeyError):
            self.trusted = False  # not recorded: no seal, the next status scans

    def close(self, writable: bool, lock: StoreLock | None) -> None:
        try:
            st = os.stat(self.path)
        except OSError:
            return
        if is_sealed(st):
            return
        if writable:
            if self.trusted and self.clean:
                seal(self.path, st, seconds=self.second)
            elif self.trusted:  # rows vouched for, uncommitted changes known: not "clean"
                seal(self.path, st, avoid=self.layout.clean_seal if self.layout else None)
            return
        if self.reseal is None or st.st_mtime_ns != self.reseal:
            return
        # read-only: seal only while no h5vc writer can be writing; never with the second
        # the file names as known clean (it may not be: this session cannot record it)
        other = StoreLock(self.path)
        try:
            other.acquire(0)
        except H5vcError:
            return
        try:
            if os.stat(self.path).st_mtime_ns == self.reseal:
                seal(self.path, avoid=self.layout.clean_seal if self.layout else None)
        except OSError:
            pass
        finally:
            other.release()


def _release(f: h5py.File, lock: StoreLock | None, sealing: _Seal | None = None) -> None:
    """Close the file, seal it when this session vouches for it, let the next writer in."""
    try:
        writable = f.id.valid and f.mode == "r+"
        if f.id.valid:
            if sealing is not None:
                if writable:
                    sealing.still_trusted(f)  # writes made through repo.file end the trust
                sealing.before_close(writable)
            f.close()
        if sealing is not None:
            sealing.close(writable, lock)
    finally:
        if lock is not None:
            lock.release()


@functools.lru_cache(maxsize=1)
def _login_name() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name on this system
        return "unknown"


_now = utc_now

# A store tracking fewer paths than this keeps no footprints table (see _refresh_prints):
# its full scan costs a few milliseconds, less than rewriting the table at every commit.
PRINTS_MIN_PATHS = 256


class _History:
    """The history interface a transaction writes through (``h5vc.transaction.History``):
    a view of one open repository."""

    __slots__ = ("_r",)

    def __init__(self, repo: Repository) -> None:
        self._r = repo

    path = property(lambda self: self._r.path)
    file = property(lambda self: self._r._f)
    layout = property(lambda self: self._r._layout)
    seal = property(lambda self: self._r._seal)
    objcache = property(lambda self: self._r._objcache)

    @property
    def active(self) -> Any:
        return self._r._active

    @active.setter
    def active(self, tx: Any) -> None:
        self._r._active = tx

    def head_state(self) -> tuple[str | None, State]:
        return self._r._head_state()

    def record(self, changes: list[dict[str, Any]], message: str, author: str | None) -> Commit:
        return self._r._record(changes, message, author)

    def begin(self, intent: dict[str, Any]) -> None:
        self._r._begin(intent)

    def end(self) -> None:
        self._r._end()


@functools.lru_cache(maxsize=1)
def _transaction_class() -> Any:
    from .transaction import Transaction  # imported on first use: it is not needed by the CLI

    return Transaction


_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _looks_like_hdf5(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            if fh.read(8) == _SIGNATURE:
                return True
    except OSError:
        return False
    return bool(h5py.is_hdf5(str(path)))  # the signature may follow a user block


def _open_h5(path: Path, mode: str, wait: float = 0.0) -> h5py.File:
    if not path.exists():
        raise NotFoundError(f"no store at {path}; create one with `h5vc init {path}`")
    if path.is_dir():
        raise NotARepositoryError(f"{path} is a folder, not an HDF5 file")
    if not _looks_like_hdf5(path):
        raise NotARepositoryError(f"{path} is not an HDF5 file; give the path of an .h5 store")
    if mode != "r":
        _check_writable(path)
    if os.environ.get("HDF5_PLUGIN_PATH"):
        load_plugins()  # before HDF5 searches that path for a filter (see chunks.load_plugins)
    deadline = time.monotonic() + max(0.0, wait)
    extended = False
    writer: str | None = None
    while True:
        try:
            if mode == "r":
                writer = writer_elsewhere(path)
                if writer is not None:  # as HDF5's lock said when writers held it exclusively
                    raise OSError(errno.EWOULDBLOCK, "unable to lock file: h5vc is writing it")
                settle_undo(path)  # a writer killed earlier: its torn writes are undone first
                return _configure(h5py.File(str(path), mode))
            return _configure(JournaledFile(path))
        except OSError as e:
            text = str(e)
            short = _TRUNCATED.search(text)
            if short and int(short.group(2)) > int(short.group(1)) and not extended:
                # a kill after HDF5 recorded a larger end than it had written: the bytes
                # never written read as zeros; recovery then checks what they belonged to
                if mode == "r":
                    raise TruncatedStoreError(
                        f"{path} ends before its recorded end (a write was interrupted); any "
                        "writing command (or `h5vc repair`) extends it and recovers") from None
                os.truncate(path, int(short.group(2)))
                extended = True
                continue
            if not _LOCKED.search(text):
                break
            if time.monotonic() < deadline:
                time.sleep(0.05)
                continue
            who = (probe_readers(path) if mode != "r" else
                   f"h5vc, which is writing it ({writer})" if writer is not None else
                   "another process that is writing it without h5vc")
            raise LockedError(
                f"{path} is open in {who}; close it there, or pass --wait SECONDS to wait"
            ) from None
    if "ermission" in text:
        raise ReadOnlyError(f"{path} cannot be opened for writing: {text}") from None
    raise NotARepositoryError(
        f"{path} cannot be opened as HDF5 ({text.splitlines()[0] if text else 'unreadable'});"
        " it may be damaged: restore it from a backup") from None


_TRUNCATED = re.compile(r"truncated file: eof = (\d+),.*stored_eof = (\d+)")
_LOCKED = re.compile(r"\block|locking", re.IGNORECASE)  # "unable to lock file", not "sblock"


class TruncatedStoreError(IntegrityError):
    """The store file is shorter than HDF5's recorded end: a writing open repairs it."""


MDC_BYTES = 32 << 20


def _check_writable(path: Path) -> None:
    # root may write anything: the permission bits still say what the owner wants
    if not os.access(path, os.W_OK) or not path.stat().st_mode & 0o222:
        raise ReadOnlyError(
            f"{path} is read-only; make it writable (chmod u+w) or use a read-only command"
        )


def _file_stamp(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns, st.st_ino


def _adoption(path: Path) -> tuple[list[dict[str, Any]], tuple[int, int, int]]:
    """The first commit's changes for an existing HDF5 file, read with the file opened
    read-only (so that a refusal leaves every byte as it was), and the file's stamp then."""
    f = _open_h5(path, "r")
    try:
        if META in f:
            raise InvalidInputError(
                f"{path} is already an h5vc store; see its history with `h5vc log`")
        stamp = _file_stamp(path)
        return materialize(f, scan(f, empty_state())), stamp
    finally:
        f.close()


def _configure(f: h5py.File) -> h5py.File:
    """A metadata cache large enough that HDF5 writes metadata at h5vc's flushes only.

    HDF5 may write a dirty metadata entry whenever it evicts one; with room for everything an
    operation touches, entries reach the file at the flushes h5vc orders (rows, then the
    records that point at them), not in the middle of an operation.
    """
    if f.mode == "r+":
        try:
            cfg = f.id.get_mdc_config()
            cfg.max_size = max(cfg.max_size, MDC_BYTES)
            cfg.set_initial_size = True
            cfg.initial_size = MDC_BYTES
            f.id.set_mdc_config(cfg)
        except (AttributeError, ValueError, RuntimeError):
            pass  # an older h5py: keep HDF5's defaults
    return f


def _attrs_json(encoded: dict[str, Any]) -> dict[str, Any]:
    """Encoded attributes (as the state records them) as plain JSON values."""
    return {k: plain_value(enc) for k, enc in encoded.items()}


def _dataset_node(name: str, ds: Any, attrs: dict[str, Any]) -> dict[str, Any]:
    """One dataset of :meth:`Repository.tree` (an h5py dataset or a view's)."""
    return {"kind": "dataset", "name": name, "path": ds.name,
            "shape": None if ds.shape is None else list(ds.shape),
            "dtype": _dtype_name(ds.dtype), "chunks": list(ds.chunks) if ds.chunks else None,
            "compression": ds.compression, "attrs": attrs}


def _group_node(name: str, path: str, attrs: dict[str, Any],
                children: list[dict[str, Any]]) -> dict[str, Any]:
    groups = sum(1 for c in children if c["kind"] == "group")
    return {"kind": "group", "name": name, "path": path, "attrs": attrs, "children": children,
            "groups": groups + sum(c.get("groups", 0) for c in children),
            "datasets": (len(children) - groups) + sum(c.get("datasets", 0) for c in children)}


def _dtype_name(dt: Any) -> str:
    """A short, readable name: ``str``, ``vlen uint8``, ``compound(a, b)``, ``float32``."""
    s = h5py.check_string_dtype(dt)
    if s is not None:
        return "str" if s.length is None else f"str[{s.length}]"
    v = h5py.check_vlen_dtype(dt)
    if v is not None:
        return f"vlen {_dtype_name(v)}"
    if dt.names:
        return f"compound({', '.join(dt.names)})"
    return str(dt)


class Repository:
    """An h5vc store: one HDF5 file whose history lives in its ``/.h5vc`` group.

    Open with :meth:`open` or :meth:`init`; use as a context manager, or call :meth:`close`.
    """

    def __init__(self, f: h5py.File, path: Path, lock: StoreLock | None = None,
                 sealing: _Seal | None = None) -> None:
        self._f = f
        self.path = path
        self._lock = lock
        self._seal = sealing if sealing is not None else _Seal(path, False)
        # a Repository dropped without close() still releases the file and the lock
        self._finalizer = weakref.finalize(self, _release, f, lock, self._seal)
        self._layout = Layout(f)
        self._seal.layout = self._layout
        self._writable = f.mode == "r+"
        self._active: Any = None  # the open transaction, if any
        self._head_cache: tuple[str | None, State] | None = None
        self._places: tuple[str | None, dict[str, tuple[str, int, int]]] | None = None
        self._index: dict[str, Frame] | None = None
        self._journal: bytes | None = None
        self._snapshot_len = 0
        self._snap_pos: int | None = None
        self._paged = False  # the snapshot is paged
        self._pages: Pages | None = None  # the pages of the snapshot read last
        self._all_pages: weakref.WeakSet[Pages] = weakref.WeakSet()  # every Pages still in use
        # The file is held open, and HDF5's lock keeps other writers out, so what this object
        # read from /.h5vc stays true until it writes it itself.
        self._stored_refs: dict[str, Any] | None = None
        self._tip: str | None = None  # newest commit appended after refs were written
        self._objcache: dict[str, tuple[Any, ...]] = {}  # path -> (h5py object, address, layout)
        self._prints: Table | None | bool = False  # the footprints table, once read
        self._prints_base: tuple[str, State] | None = None  # the state the table was checked on
        self._committed = False  # this session recorded a commit
        self._seal.prints = weakref.WeakMethod(self._refresh_prints)
        self._ends: dict[str, int] = {}  # commit id -> where its frame ends in the journal
        # the pointer file, kept naming HEAD when it exists (checked once: a stat per open)
        ptr = pointer_path(path)
        self._pointer: Path | None = ptr if ptr.exists() else None
        self._author: str | None = None
        self.git_notes: list[str] = []  # what init did in a git work tree (pointer, .gitignore)
        self.in_git = False  # init found the store in a git work tree
        self.recovered: list[str] = []  # what opening it finished or undid (an interrupted op)
        self.interrupted: dict[str, Any] | None = None  # read-only: an op left unfinished
        self.pending: list[str] = []  # read-only: what the next writable open will repair
        self.backup_fetched = 0  # committed ranges this session fetched from the default remote

    def _check_open_state(self, *, recover: bool) -> None:
        """At open: drop a torn commit record, finish or undo an interrupted operation."""
        lay = self._layout
        if not lay.tail_is_sound():
            end = lay.sound_end()
            if self._writable:
                lay.truncate_journal(end)
                self._f.flush()
                self.recovered.append("dropped an unfinished commit record (a commit that was "
                                      "interrupted before it completed)")
            else:
                lay._jlen = end  # read the sound prefix
                self.pending.append("the history ends with an unfinished commit record (an "
                                    "interrupted commit, never reported): it is ignored")
        if self._writable and lay.ensure_containers():
            self._f.flush()  # on their own, before anything is written into them
        if self._writable and lay.version < 2:
            self._upgrade()
        intent = lay.read_intent()
        if intent is not None:
            if self._writable and recover:
                self._recover(intent)
            else:
                self.interrupted = intent
                self.pending.append(f"an interrupted {intent.get('op', 'operation')} is not yet "
                                    "finished or undone")

    def _upgrade(self) -> None:
        """Format 1 -> 2: refs and state move into two-slot records, in one flushed step."""
        lay = self._layout
        refs, _ = lay.read_record("refs")
        snap, _ = lay.read_record("state")
        if refs is not None:
            lay.write_record("refs", refs)
        if snap is not None:
            lay.write_record("state", snap)
        self._f.flush()
        lay.drop_legacy()
        self._f.flush()

    # -- opening -------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, mode: str = "r+", wait: float = 0.0,
             recover: bool = True) -> Repository:
        """Open an existing store; ``mode`` is ``"r"`` (read only) or ``"r+"``.

        A writable open takes h5vc's writer lock (waiting up to ``wait`` seconds for another
        writer) and finishes or undoes an operation a killed process left unfinished.
        """
        if mode not in ("r", "r+"):
            raise InvalidInputError(f"mode must be 'r' or 'r+', not {mode!r}")
        p = Path(path)
        lock = None
        if mode == "r+":
            forget_reserved(p)
            if not p.is_file():
                _open_h5(p, mode)  # the error for a missing file, a folder, ...
            lock = StoreLock(p)
            lock.acquire(wait)
        sealing = _Seal.at_open(p)  # before anything of this session can write
        try:
            f = _open_h5(p, mode, wait)
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        try:
            # a flush cut short by a kill (see h5vc/engine/hdf5lib.py; a writable open fixes it
            # in the file's bytes as it opens, h5vc/engine/undo.py)
            short = f._undo.extended if isinstance(f, JournaledFile) else extend_to_eof(f)
            repo = cls(f, p, lock, sealing)
            if short:
                if repo._writable:
                    repo.recovered.append("extended the file's recorded end over data that an "
                                          "interrupted write left past it")
                else:
                    repo.pending.append("the file's recorded end is short of data an "
                                        "interrupted write left past it (read as it is; the "
                                        "next writing command records it)")
            repo._check_open_state(recover=recover)
            sealing.clean = (sealing.known_clean() and not short and not repo.recovered
                             and not repo.pending)
            if repo._writable:
                sealing.wrote(modified=bool(repo.recovered))  # HDF5 writes as it opens
            return repo
        except BaseException:
            _release(f, lock)
            raise

    @classmethod
    def init(cls, path: str | os.PathLike[str], *, message: str = "init",
             author: str | None = None, pointer: bool | None = None) -> Repository:
        """Create a new store, or adopt an existing HDF5 file: its content becomes commit 1.

        ``pointer``: write the pointer file ``<store>.h5vc`` (and ignore the store in git):
        None does so when the store lies in a git work tree, True always, False never.
        """
        if not isinstance(message, str) or not message.strip():
            raise InvalidInputError("the first commit needs a message; pass -m 'what this is'")
        if author is not None:
            check_text(author, "--author")
        p = Path(path)
        forget_reserved(p)
        created = not p.exists()
        lock = None
        changes: list[dict[str, Any]] | None = None
        if not created:
            if p.is_file():
                _check_writable(p)
            # read everything first, read-only and before the lock file is made: a file h5vc
            # cannot adopt is refused with its bytes as they were (HDF5 rewrites a superblock or
            # the end of a file it opens to write) and nothing beside it
            changes, seen = _adoption(p)
            lock = StoreLock(p)
            lock.acquire()
            if _file_stamp(p) != seen:  # written by another program in between: read again
                changes = None
            try:
                f = _open_h5(p, "r+")  # (HDF5 may write the superblock as it opens)
            except BaseException:
                lock.release()
                raise
        else:
            if not p.parent.exists():
                raise NotFoundError(f"folder {p.parent} does not exist; create it first")
            lock = StoreLock(p)
            lock.acquire()
            try:
                f = _configure(h5py.File(str(p), "w-"))
            except OSError as e:
                lock.release()
                raise ReadOnlyError(f"cannot create {p}: {e}") from None
        try:
            if changes is None:  # a new file, or one another program wrote as h5vc read it
                changes = materialize(f, scan(f, empty_state()))
            Layout.create(f, f"h5vc {__version__}")
            sealing = _Seal(p, True)  # every row was just read, hashed and committed
            sealing.clean = True
            repo = cls(f, p, lock, sealing)
            if pointer is False:
                repo._pointer = None
            repo._write_refs({"head": {"branch": "main"}, "branches": {}, "tags": {}})
            repo._record(changes, message, author)
        except BaseException:
            # leave the file as it was: no half-made /.h5vc, no new empty file
            if f.id.valid and META in f:
                del f[META]
            _release(f, lock)
            if created:
                p.unlink(missing_ok=True)
            raise
        if pointer is not False:
            try:
                repo._link_git(always=bool(pointer))
            except BaseException:
                repo.close()
                raise
        return repo

    def _link_git(self, *, always: bool) -> None:
        """After init: write the pointer file; in a git work tree, keep the store out of git."""
        store = self.path.absolute()
        with git_or_none(store.parent) as g:
            self.in_git = g is not None
            if g is None and not always:
                return
            if g is not None and not always and is_ignored(g, pointer_path(store)):
                return  # git would not track the pointer (an ignored folder): none is written
            ptr = self.write_pointer()
            self.git_notes.append(f"wrote pointer {shown(ptr)}")
            if g is None:
                return
            gi = ignore_store(g, store)
            if gi is not None:
                self.git_notes.append(f"ignored {self.path.name} in {shown(gi)}")
            if is_tracked(g, store):
                self.git_notes.append(
                    f"{self.path} is tracked by git; stop tracking it with "
                    f"`git rm --cached {self.path}` (the pointer file stands in for it)")

    def close(self) -> None:
        """Close the file and release the writer lock (also done when garbage-collected)."""
        self._finalizer()

    def __enter__(self) -> Repository:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc is not None and getattr(exc, "hdf5_failed", False):
            self.abandon()
            return
        self.close()

    def abandon(self) -> None:
        """Let go of the lock but not the file, after HDF5 failed to write (a full disk):
        closing could crash the library, and committed history never depends on the close.
        The process should end soon; the next open recovers as after a kill."""
        self._finalizer.detach()
        if self._lock is not None:
            self._lock.release()

    @property
    def file(self) -> h5py.File:
        """The open h5py file (read it freely; write through a transaction).

        Writes made through it directly (rows rewritten in place, which no metadata shows)
        are still found: a writable repository that hands out its file no longer vouches
        for its rows, and the next ``status``, ``commit`` or ``checkout`` rehashes them. (The
        file's modification time cannot tell: a write in the same clock tick as h5vc's own
        leaves it unchanged.) To read without that cost, open the store read-only."""
        if self._writable:
            self._seal.trusted = self._seal.clean = False
        return self._f

    def _require_writable(self) -> None:
        if not self._writable:
            raise ReadOnlyError(f"{self.path} was opened read-only; open it with mode='r+'")
        if self._active is not None and self._active._open:
            raise InvalidInputError(
                "a transaction is open on this repository; finish it (leave its `with` block) "
                "before committing, checking out or starting another"
            )

    # -- refs ----------------------------------------------------------------------------

    def _raw_refs(self) -> dict[str, Any]:
        try:
            refs, _ = self._layout.read_record("refs")
            if refs is None:
                raise IntegrityError(f"/{META}/refs is missing")
            _check_refs(refs, self._layout.journal_len)
        except IntegrityError:
            if not self._writable:
                raise IntegrityError(
                    f"the refs (branches, tags, HEAD) of {self.path} are damaged; rebuild them "
                    "from the history with `h5vc repair`") from None
            refs = self._rebuild_refs()
        return refs

    def _rebuild_refs(self) -> dict[str, Any]:
        """Refs made again from the journal: HEAD on main at the newest commit, every other
        tip of history on a branch ``recovered-<id>``."""
        index = self._load_index()
        parents = {fr.parent for fr in index.values()}
        tips = sorted((fr for fr in index.values() if fr.id not in parents), key=lambda fr: -fr.end)
        branches = {}
        if tips:
            branches["main"] = tips[0].id
            for fr in tips[1:]:
                branches[f"recovered-{fr.id[:10]}"] = fr.id
        refs = {"head": {"branch": "main"}, "branches": branches, "tags": {}}
        self._stored_refs = None
        self._write_refs(refs)
        self._f.flush()
        self.recovered.append("rebuilt the damaged refs from the history: HEAD is main at the "
                              "newest commit" + (f", {len(tips) - 1} other tip(s) kept as "
                                                 "recovered-* branches" if len(tips) > 1 else "")
                              + "; tags are lost, set them again with `h5vc tag`")
        return self._stored_refs  # type: ignore[return-value]

    def _refs(self) -> dict[str, Any]:
        """Refs with HEAD (and its branch) advanced over commits appended since last written."""
        if self._stored_refs is None:
            self._stored_refs = self._raw_refs()
            self._ends.update(self._stored_refs.get("pos", {}))
            if self._layout.journal_len > self._stored_refs["journal_len"]:
                last = self._layout.last_frame()
                assert last is not None
                self._tip = last.id
                self._ends[last.id] = last.end
        stored = self._stored_refs
        refs = {"head": dict(stored["head"]), "branches": dict(stored["branches"]),
                "tags": dict(stored["tags"])}
        if self._tip is not None:
            if "branch" in refs["head"]:
                refs["branches"][refs["head"]["branch"]] = self._tip
            else:
                refs["head"] = {"commit": self._tip}
        return refs

    def _write_refs(self, refs: dict[str, Any]) -> None:
        ids = [*refs["branches"].values(), *refs["tags"].values()]
        if "commit" in refs["head"]:
            ids.append(refs["head"]["commit"])
        pos = {i: self._frame(i).end for i in sorted(set(ids))}
        refs = dict(refs, journal_len=self._layout.journal_len, pos=pos)
        self._layout.write_record("refs", refs)
        self._stored_refs, self._tip = refs, None
        self._f.flush()
        self._seal.wrote()

    def _head_from(self, refs: dict[str, Any]) -> str | None:
        head = refs["head"]
        if "branch" in head:
            return refs["branches"].get(head["branch"])
        return head["commit"]

    @property
    def head(self) -> Commit | None:
        """The checked-out commit (None only before the first commit)."""
        h = self._head_from(self._refs())
        return None if h is None else self.get_commit(h)

    @property
    def branch(self) -> str | None:
        """The checked-out branch, or None when HEAD is detached."""
        return self._refs()["head"].get("branch")

    def branches(self) -> dict[str, str]:
        return dict(sorted(self._refs()["branches"].items()))

    def tags(self) -> dict[str, str]:
        return dict(sorted(self._refs()["tags"].items()))

    def create_branch(self, name: str, rev: str = "HEAD") -> str:
        return self._set_ref("branches", name, rev, "branch")

    def create_tag(self, name: str, rev: str = "HEAD") -> str:
        return self._set_ref("tags", name, rev, "tag")

    def _set_ref(self, kind: str, name: str, rev: str, what: str) -> str:
        self._require_writable()
        check_ref_name(name, what)
        refs = self._refs()
        if name in refs[kind]:
            raise InvalidInputError(f"{what} {name!r} already exists; pick another name")
        target = self.resolve(rev)
        refs[kind][name] = target
        self._write_refs(refs)
        self._f.flush()
        return target

    def delete_branch(self, name: str) -> None:
        self._require_writable()
        refs = self._refs()
        if name not in refs["branches"]:
            raise NotFoundError(f"no branch {name!r}; see `h5vc branch`")
        if refs["head"].get("branch") == name:
            raise InvalidInputError(f"branch {name!r} is checked out; check out another first")
        del refs["branches"][name]
        self._write_refs(refs)

    def delete_tag(self, name: str) -> None:
        self._require_writable()
        refs = self._refs()
        if name not in refs["tags"]:
            raise NotFoundError(f"no tag {name!r}; see `h5vc tag`")
        del refs["tags"][name]
        self._write_refs(refs)

    # -- journal index -------------------------------------------------------------------

    def _load_index(self) -> dict[str, Frame]:
        if self._index is None:
            data = self._layout.read_journal()
            self._journal = data
            self._index = {fr.id: fr for fr in Layout.frames_backward(data)}
        return self._index

    def _frame(self, cid: str) -> Frame:
        """The journal frame of commit ``cid``: from a known position, else from the index."""
        if self._index is not None and cid in self._index:
            return self._index[cid]
        end = self._ends.get(cid)
        if end is not None:
            try:
                fr = self._layout.frame_at(end)
            except IntegrityError:
                fr = None  # a stale position: look the commit up in the index
            if fr is not None and fr.id == cid:
                return fr
        try:
            fr = self._load_index()[cid]
        except KeyError:
            raise NotFoundError(f"commit {cid[:10]} is not in this store") from None
        self._ends[cid] = fr.end
        return fr

    def _parent_frame(self, fr: Frame) -> Frame | None:
        if fr.parent is None:
            return None
        self._ends.setdefault(fr.parent, fr.parent_end)
        return self._frame(fr.parent)

    def _record_of(self, cid: str) -> dict[str, Any]:
        fr = self._frame(cid)
        if self._journal is not None and fr.end <= len(self._journal):
            return self._layout.read_payload(fr, self._journal, 0)
        return self._layout.read_payload(fr)

    @property
    def remotes(self) -> dict[str, dict[str, Any]]:
        """Remote name -> {"url", "options"} (see :mod:`h5vc.remote`)."""
        return dict(self._layout.remotes()["remotes"])

    @property
    def default_remote(self) -> str | None:
        rec = self._layout.remotes()
        if rec.get("default") in rec["remotes"]:
            return rec["default"]
        return next(iter(rec["remotes"])) if len(rec["remotes"]) == 1 else None

    def set_remote(self, name: str, url: str, *, options: dict[str, str] | None = None,
                   default: bool = False) -> None:
        """Add or change remote ``name``. ``options`` go to fsspec (endpoint, profile, region);
        credentials are refused: they come from the environment or AWS/fsspec config files."""
        self._require_writable()
        check_text(name, "the remote's name")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
            raise InvalidInputError(f"bad remote name {name!r}: use letters, digits, '.', '_', '-'")
        check_text(url, "the remote's URL")
        opts = dict(options or {})
        secret = sorted(k for k in opts if re.search(r"secret|password|token|key|credential", k, re.I))
        if secret or re.match(r"^[a-z0-9+]+://[^/@]*:[^/@]*@", url):
            raise InvalidInputError(
                "credentials are not stored with a remote (" + (", ".join(secret) or "in the URL")
                + "); set them in the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) or "
                "in ~/.aws/credentials")
        rec = self._layout.remotes()
        rec["remotes"][name] = {"url": url, "options": opts}
        if default or rec.get("default") not in rec["remotes"]:
            rec["default"] = name
        self._save_remotes(rec)
        self._remote_changed()

    def _save_remotes(self, rec: dict[str, Any]) -> None:
        self._layout.set_remotes(rec)
        self._f.flush()
        self._seal.wrote()

    def remove_remote(self, name: str) -> None:
        self._require_writable()
        rec = self._layout.remotes()
        if name not in rec["remotes"]:
            raise NotFoundError(f"no remote named {name!r}; see `h5vc remote list`")
        del rec["remotes"][name]
        if rec.get("default") == name:
            rec["default"] = None
        self._save_remotes(rec)
        self._remote_changed()

    def commit_ids(self) -> set[str]:
        """The ids of every commit in the store's journal (on a branch or not)."""
        return set(self._load_index())

    def ancestors(self, rev: str) -> set[str]:
        """``rev``'s commit and every commit below it, from the journal's frame trailers (no
        record is read)."""
        index = self._load_index()
        out: set[str] = set()
        cur: str | None = self.resolve(rev)
        while cur is not None and cur not in out:
            out.add(cur)
            fr = index.get(cur)
            cur = fr.parent if fr is not None else None
        return out

    def set_remote_refs(self, name: str, branches: dict[str, str], tags: dict[str, str]) -> None:
        """Record what remote ``name``'s branches and tags named when last fetched."""
        self._require_writable()
        rec = self._layout.remotes()
        if name not in rec["remotes"]:
            raise NotFoundError(f"no remote named {name!r}; see `h5vc remote list`")
        rec["remotes"][name]["seen"] = {"branches": dict(branches), "tags": dict(tags)}
        self._save_remotes(rec)

    def widen(self, paths: list[str]) -> RestoreReport:
        """Make a partial store hold ``paths`` too, from its preserved objects (a pull with
        ``--select`` fetches them first): HEAD's content at those paths is written into the
        file and the selection grows. Refused with uncommitted changes. Crash-safe as a
        checkout: a kill is finished by the next writable open."""
        self._require_writable()
        sel = self._layout.selection()
        if sel is None:
            raise InvalidInputError(f"{self.path} holds every path already (it is not partial)")
        new = sorted({*sel, *paths})
        head, state = self._head_state()
        changes = self._scan(state, False, prints=False)
        if changes:
            raise DirtyStoreError(
                f"the store has {len(changes)} uncommitted change(s) ({summary_line(changes)}); "
                "commit them first (h5vc commit -m ...)")
        refs = self._refs()

        def mark(changing: list[str]) -> None:
            self._begin({"op": "checkout", "from": head, "goal": head, "head": refs["head"],
                         "paths": changing, "select": new})

        report = restore(self._f, self._layout, within(state, sel), within(state, new),
                         force=False, before_mutate=mark, fill=self._fill)
        self._layout.set_selection(new)
        self._places = None  # HEAD's rows in the file now include the new paths
        self._end()
        self._seal.wrote()
        return report

    def backup_rows(self, wanted: dict[str, tuple[dict[str, Any], int, int]]
                    ) -> dict[str, np.ndarray]:
        """Committed ranges this store no longer holds (hash -> (dataset meta, start, stop)),
        fetched from its default remote and checked against their hashes: the remote as a
        backup, for checkouts and views. Those the remote lacks too are left out; no remote,
        nothing. IntegrityError when the remote cannot be read or holds a damaged copy."""
        name = self.default_remote
        if name is None or not wanted:
            return {}
        from .remote.payload import backup_rows  # loaded only when content must be fetched
        from .remote.storage import RemoteStorage

        conf = self.remotes[name]
        try:
            rs = RemoteStorage(conf["url"], conf.get("options") or {}, name=name)
            got = backup_rows(rs, wanted)
        except H5vcError as e:
            raise IntegrityError(
                f"{len(wanted)} committed range(s) are no longer in {self.path}, and fetching "
                f"them from remote {name} failed: {e.message}") from None
        self.backup_fetched += len(got)
        return got

    def _fill(self, wanted: dict[str, tuple[dict[str, Any], int, int]]) -> None:
        """Preserve ``wanted`` ranges from the default remote (see :meth:`backup_rows`)."""
        for h, arr in self.backup_rows(wanted).items():
            preserve_rows(self._layout, h, arr, wanted[h][0])

    def has_content(self, h: str) -> bool:
        """True when committed range ``h`` is in the store: preserved, or among HEAD's rows."""
        return self._layout.has_object(h) or self.content_place(h) is not None

    def content_place(self, h: str) -> tuple[str, int, int] | None:
        """(path, start, stop) of range ``h`` among HEAD's rows in the file, or None."""
        head, state = self._head_state()
        if self._places is None or self._places[0] != head:
            places: dict[str, tuple[str, int, int]] = {}
            for p, node in within(state, self._layout.selection()).items():
                if node["k"] == "d":
                    for s0, e0, h0 in node["ranges"]:
                        places.setdefault(h0, (p, s0, e0))
            self._places = (head, places)
        return self._places[1].get(h)

    def receive(self, records: list[tuple[str, bytes]],
                objects: Iterator[tuple[str, np.ndarray, dict[str, Any]]]) -> int:
        """Take in commits made elsewhere (a fetch): ``objects`` (hash, rows, dataset meta),
        already checked against their hashes, are preserved first; then ``records`` (id, the
        record's bytes; parents first, each parent here or earlier in the list) are appended
        to the journal, checked against their ids. No branch moves and the live file is not
        touched. A kill midway is undone at the next open. Returns the commits added."""
        self._require_writable()
        index = self._load_index()
        todo = [(cid, raw) for cid, raw in records if cid not in index]
        for cid, raw in todo:
            if xxhash.xxh3_128(raw).hexdigest() != cid:
                raise IntegrityError(f"commit {cid[:10]} does not match its id; nothing was fetched")
        for h, arr, meta in objects:
            if not self.has_content(h):
                preserve_rows(self._layout, h, arr, meta)
        self._layout.sync()
        if not todo:
            return 0
        refs = self._refs()
        self._write_refs(refs)  # the journal length they know is the length before the fetch
        n0 = self._layout.journal_len
        self._begin({"op": "fetch", "journal_len": n0})
        ends: dict[str, int] = {}
        for cid, raw in todo:
            record = json.loads(raw)
            parents = record["parents"]
            self._layout.require_version(format_needed(record["changes"]))
            parent = parents[0] if parents else None
            if parent is not None and parent not in ends:
                ends[parent] = self._frame(parent).end
            ends[cid] = self._layout.append_frame(raw, cid, parent, ends[parent] if parent else 0)
            crash_point("fetch.frame-written")
        self._f.flush()
        self._write_refs(refs)  # now covering the fetched frames: HEAD does not move
        self._index = self._journal = None
        self._end()
        return len(todo)

    def fast_forward(self, branch: str, rev: str) -> bool:
        """Move ``branch`` forward to ``rev`` (a descendant of its tip); when it is checked out,
        the store is brought to ``rev`` as a checkout would (refused with uncommitted
        changes). False when ``rev`` is the tip already; InvalidInputError when it is not a
        descendant."""
        self._require_writable()
        refs = self._refs()
        if branch not in refs["branches"]:
            raise NotFoundError(f"no branch {branch!r}; see `h5vc branch`")
        target, tip = self.resolve(rev), refs["branches"][branch]
        if target == tip:
            return False
        if tip not in self.ancestors(target):
            raise InvalidInputError(f"{target[:10]} does not descend from {branch}'s tip "
                                    f"{tip[:10]}: the histories have diverged")
        if refs["head"].get("branch") == branch:
            self._checkout(target, advance=branch)  # data, branch and HEAD in one step
            return True
        refs["branches"][branch] = target
        self._write_refs(refs)
        if self._pointer is not None:
            self._update_pointer(self._head_from(refs) or target)
        return True

    def commit_record(self, cid: str) -> bytes:
        """The record of commit ``cid`` as the journal holds it: canonical JSON whose xxh3-128
        is the id (what a remote stores). IntegrityError when it does not check."""
        fr = self._frame(self.resolve(cid))
        raw = self._layout.read_journal(fr.start, fr.start + fr.length)
        if xxhash.xxh3_128(raw).hexdigest() != fr.id:
            raise IntegrityError(f"commit {fr.id[:10]} of {self.path} is damaged; see `h5vc verify`")
        return raw

    def content(self, h: str, meta: dict[str, Any]) -> np.ndarray:
        """The rows of committed range ``h`` of a dataset whose recorded meta is ``meta``,
        checked against ``h``: from the live file where HEAD's state places them and they still
        match, else from the preserved objects. IntegrityError when neither holds them."""
        if meta.get("stored"):
            return self._stored_content(h)
        dkey = dtype_key(decode_dtype(meta["dtype"]))
        where = self.content_place(h)
        if where is not None:
            p, s0, e0 = where
            ds = self._f.get(p)
            try:
                if isinstance(ds, h5py.Dataset):
                    arr = np.asarray(read_rows(ds, s0, e0))
                    if rows_hash(arr, dkey) == h:
                        return arr
            except (OSError, ValueError, RuntimeError):
                pass
        if self._layout.has_object(h):
            arr = np.asarray(self._layout.read_object(h))
            if rows_hash(arr, dkey) != h:
                raise IntegrityError(f"preserved content {h[:10]} does not match its hash; "
                                     "the store is damaged: see `h5vc verify`")
            return arr
        raise IntegrityError(f"the content of range {h[:10]} is no longer in {self.path} (changed "
                             "or deleted outside h5vc since it was committed); see `h5vc verify`")

    def _stored_content(self, h: str) -> np.ndarray:
        """The stored bytes of a block of a dataset versioned as stored, checked against ``h``."""
        where = self.content_place(h)
        if where is not None:
            ds = self._f.get(where[0])
            try:
                if isinstance(ds, h5py.Dataset):
                    blob = stored_blob(ds, where[1], where[2])
                    if blob_hash(blob) == h:
                        return blob
            except (OSError, ValueError, RuntimeError):
                pass
        if self._layout.has_object(h):
            return preserved_blob(self._layout, h)
        raise IntegrityError(f"the content of range {h[:10]} is no longer in {self.path}; see "
                             "`h5vc verify`")

    def get_commit(self, rev: str) -> Commit:
        cid = self.resolve(rev)
        return Commit._from_record(cid, self._record_of(cid))

    def resolve(self, rev: str) -> str:
        """The full commit id that ``rev`` names."""
        base, depth = parse_rev(rev)
        refs = self._refs()
        cid = resolve_base(base, head=self._head_from(refs), branches=refs["branches"],
                           tags=refs["tags"], ids=lambda: self._load_index().keys())
        fr = self._frame(cid)
        for i in range(depth):
            parent = self._parent_frame(fr)
            if parent is None:
                raise NotFoundError(f"{rev!r} goes back {depth} commits, but history has {i + 1}")
            fr = parent
        return fr.id

    def log(self, rev: str = "HEAD", *, limit: int | None = None) -> Iterator[Commit]:
        """Commits reachable from ``rev``, newest first (first parents)."""
        if limit is not None and limit < 0:
            raise InvalidInputError("limit must be 0 or more")
        fr: Frame | None = self._frame(self.resolve(rev))
        count = 0
        while fr is not None and (limit is None or count < limit):
            yield Commit._from_record(fr.id, self._layout.read_payload(fr))
            count += 1
            fr = self._parent_frame(fr)

    # -- states --------------------------------------------------------------------------

    def _head_state(self) -> tuple[str | None, State]:
        head = self._head_from(self._refs())
        if self._head_cache is not None and self._head_cache[0] == head:
            return self._head_cache
        state = self._state_fast(head) if head else empty_state()
        if state is None:
            state = self.state_of(head)  # type: ignore[arg-type]
        self._head_cache = (head, state)
        return self._head_cache

    def _state_fast(self, head: str) -> State | None:
        """HEAD's state from the cached snapshot and the frames appended after it."""
        snap, size = self._read_snapshot()
        if snap is None:
            return None
        self._snap_pos, self._snapshot_len = snap["journal_len"], size
        if snap["commit"] == head:
            return snap["state"]
        pos = snap["journal_len"]
        tail = self._layout.read_journal(pos)
        chain: dict[str, Frame] = {fr.id: fr for fr in Layout.frames_backward(tail, pos)}
        path: list[Frame] = []
        cid: str | None = head
        while cid != snap["commit"]:
            if cid is None or cid not in chain:
                return None
            path.append(chain[cid])
            cid = chain[cid].parent
        # one application of all the changes in order: one copy of the state, not one per commit
        changes = [ch for fr in reversed(path)
                   for ch in self._layout.read_payload(fr, tail, pos)["changes"]]
        return apply_changes(snap["state"], changes)

    def state_of(self, rev: str, *, base: tuple[str, State] | None = None) -> State:
        """The tracked state of any commit: a map of paths to groups and datasets.
        ``base``: a commit id and its state already known, to start from when it is an
        ancestor (it saves replaying the history below it)."""
        cid = self.resolve(rev)
        bases: dict[str, State] = dict([base]) if base is not None else {}
        snap, _ = self._read_snapshot()
        if snap is not None:
            bases[snap["commit"]] = snap["state"]
        if self._head_cache is not None and self._head_cache[0]:
            bases[self._head_cache[0]] = self._head_cache[1]
        # a long walk: one read of the whole journal beats a small read per commit
        index = self._load_index()
        chain: list[str] = []
        cur: str | None = cid
        while cur is not None and cur not in bases:
            if cur not in index:
                raise IntegrityError(f"commit {cur[:10]} is missing from the journal")
            chain.append(cur)
            cur = index[cur].parent
        state = bases[cur] if cur is not None else empty_state()
        return apply_changes(state, [ch for c in reversed(chain) for ch in self._record_of(c)["changes"]])

    def _read_snapshot(self) -> tuple[dict[str, Any] | None, int]:
        """The state snapshot, or (None, 0) when it is missing or damaged (then the state is
        rebuilt from the journal, and a writable store gets a new snapshot at its next commit).
        A paged snapshot's state is a PagedState: its pages are read when they are needed."""
        try:
            snap, size = self._layout.read_record("state")
            if snap is not None:
                _check_snapshot(snap, self._layout.journal_len)
        except IntegrityError:
            self._snap_pos = 0  # rewrite it at the next commit
            return None, 0
        if snap is not None and "pages" in snap:
            self._paged = True
            seq = self._layout.record_seq("state") or 0
            pages = self._pages
            if pages is None or pages.seq != seq or pages.entries != snap["pages"]:
                pages = self._pages = self._pages_of(snap["pages"], seq, snap["commit"])
            snap = {**snap, "state": PagedState(pages)}
            size = self._layout.snapshot_bytes or size
        return snap, size

    def _pages_of(self, entries: list[list[Any]], seq: int, cid: str) -> Pages:
        lay = self._layout
        pages = Pages(entries, lambda start, n: lay.read_side("state", seq, start, n),
                      lambda: self._rescue_snapshot(cid), seq)
        self._all_pages.add(pages)
        return pages

    def _rescue_snapshot(self, cid: str) -> State:
        """A page of the snapshot is damaged: its commit's state from the journal alone (the
        snapshot is rewritten at the next commit, `h5vc repair` rewrites it now)."""
        self._snap_pos = 0
        index = self._load_index()
        chain: list[str] = []
        cur: str | None = cid
        while cur is not None:
            if cur not in index:
                raise IntegrityError(f"commit {cur[:10]} is missing from the journal")
            chain.append(cur)
            cur = index[cur].parent
        return apply_changes(empty_state(), [ch for c in reversed(chain)
                                             for ch in self._record_of(c)["changes"]])

    def _write_snapshot(self, cid: str, state: State) -> None:
        pos = self._layout.journal_len
        paged = encode_pages(state)
        if paged is not None:
            entries, side = paged
            for pages in list(self._all_pages):
                pages.load_all()  # states still in use keep their pages as the slot is rewritten
            head = {"commit": cid, "journal_len": pos, "paths": len(state), "pages": entries}
            try:
                self._snapshot_len = self._layout.write_record("state", head, side)
            except IntegrityError:  # its side dataset is damaged: one record, as small ones
                paged = None
            else:
                seq = self._layout.record_seq("state") or 0
                self._pages = self._pages_of(entries, seq, cid)
                if self._head_cache is not None and self._head_cache[0] == cid:
                    self._head_cache = (cid, PagedState(self._pages))
        if paged is None:
            blob = {"commit": cid, "journal_len": pos, "state": dict(state)}
            self._snapshot_len = self._layout.write_record("state", blob)
        self._paged = paged is not None
        self._snap_pos = pos

    # -- status / commit ----------------------------------------------------------------

    def status(self, *, verify: bool = False) -> Status:
        """What differs from HEAD; ``verify`` also rehashes committed rows."""
        if not verify and self._seal.still_trusted(self._f) and self._seal.clean:
            # sealed by a session that knew the store equal to HEAD: no state, no scan
            head, state = self._head_from(self._refs()), None
        else:
            head, state = self._head_state()
        pointed = None
        if self._pointer is not None:
            try:
                pointed = read_pointer(self._pointer).commit
            except H5vcError:
                pointed = ""  # unreadable (e.g. conflict markers): stale until rewritten
        interrupted = None
        if self.interrupted is not None:
            interrupted = (f"an interrupted {self.interrupted.get('op', 'operation')}: the store "
                           "may differ from HEAD in ways a metadata scan cannot see; any writing "
                           "command (or `h5vc repair`) finishes or undoes it")
        changes = self._scan(state, verify) if state is not None else []
        lost = find_losses(self, head, state, changes) if changes and state is not None else []
        return Status(head, self.branch, changes, pointed, interrupted, lost)

    @property
    def rows_trusted(self) -> bool:
        """True when the committed rows need no rehash to be believed: the file carries the
        seal h5vc set after its own last write (nothing else wrote it since), or this session
        rehashed or wrote them itself. When False, ``status``, ``commit`` and ``checkout``
        rehash every committed row, so that rows rewritten in place are never missed."""
        return self._seal.trusted

    @property
    def selection(self) -> list[str] | None:
        """The paths a partial store holds (``clone --select``), with the groups on the way to
        them; None when it holds everything. The rest is on its default remote: reads fetch it,
        checkouts and commits leave it alone, ``pull --select`` brings it in."""
        return self._layout.selection()

    def _scan(self, state: State, verify: bool, prints: bool = True) -> list[dict[str, Any]]:
        """The changes since ``state``: by metadata while the rows are trusted, else rehashing
        every committed row; a rehash that finds them intact makes them trusted. Either reads
        only the objects whose footprints changed when a table of them vouches for the rest.
        A partial store compares only what it holds."""
        sel = self._layout.selection()
        if sel is not None:
            state = within(state, sel)
        if not verify and self._seal.still_trusted(self._f):
            if self._seal.clean:
                return []  # sealed by a session that knew the store equal to HEAD
            changes = self._scan_prints(state, False, flushed=True) if prints else None
            if changes is None:
                changes = scan(self._f, state)
            self._seal.clean = not changes
            return changes
        try:
            m0 = os.stat(self.path).st_mtime_ns
        except OSError:
            m0 = None
        t0 = time.time_ns()
        changes = self._scan_prints(state, True) if prints and not verify else None
        if changes is None:
            changes = scan(self._f, state, verify=True)
        if not any(r[0] < min(ch["from"], ch["to"]) for ch in changes if ch["op"] == "rows"
                   for r in ch["ranges"]):
            if self._writable:
                self._seal.trusted = True
            elif m0 is not None and m0 < t0 - 1_000_000_000:
                # a write during or after this rehash would move the time past m0
                self._seal.trusted = True
                self._seal.reseal = m0
        self._seal.clean = self._seal.trusted and not changes
        return changes

    # -- footprints (see h5vc.engine.footprint) --------------------------------------------

    def _load_prints(self) -> Table | None:
        if self._prints is False:
            try:
                raw, _ = self._layout.read_record("prints")
            except H5vcError:
                raw = None
            self._prints = Table.load(raw) if isinstance(raw, bytes) else None
        return self._prints  # type: ignore[return-value]

    @contextlib.contextmanager
    def _mapped(self, flush: bool = True) -> Iterator[mmap.mmap | None]:
        """The file's bytes as a read-only map (None when it cannot be mapped), with this
        session's writes flushed first (``flush=False``: they just were)."""
        try:
            if flush and self._writable:
                self._f.flush()
            fh = open(self.path, "rb")  # noqa: SIM115 - closed below, with the map
        except (OSError, RuntimeError):
            yield None
            return
        with fh:
            try:
                buf = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
            except (OSError, ValueError):
                yield None
                return
            with buf:
                yield buf

    def _scan_prints(self, state: State, rehash: bool,
                     flushed: bool = False) -> list[dict[str, Any]] | None:
        """The changes since HEAD's ``state``, reading through HDF5 only the objects whose
        footprints differ from the table's (``rehash``: and rehashing their committed rows);
        None when no table vouches for HEAD."""
        cached = self._head_cache
        if cached is None or cached[1] is not state or cached[0] is None:
            return None
        table = self._load_prints()
        if table is None or table.commit != cached[0]:
            return None
        with self._mapped(flush=not flushed) as buf:
            if buf is None:
                return None
            try:
                if Footprints(buf).root != table.root:
                    return None
            except Unknown:
                return None
            suspects = table.changed(buf)
        known = table.paths()
        suspects.update(p for p in state if p not in known)
        self._seal.suspects |= suspects
        self._prints_base = (cached[0], state)
        addresses = table.addresses()
        return scan_suspects(self._f, state, suspects, addresses, verify=rehash)

    def _refresh_prints(self) -> None:
        """Before a session that knows the store equal to HEAD closes: bring the footprints
        table to HEAD, taking again those of the objects this session found or made changed."""
        if not self._committed or not self._writable or not self._f.id.valid:
            return  # taken after commits only: a checkout leaves the table to the next commit
        head, state = self._head_state()
        if head is None:
            return
        table = self._load_prints()
        if table is None and len(state) < PRINTS_MIN_PATHS:
            return  # a small store scans in milliseconds: no table to rewrite at each commit
        if table is not None and table.commit == head and not self._seal.suspects:
            return  # already true
        with self._mapped() as buf:
            if buf is None:
                return
            try:
                table = self._retake_prints(buf, table, head, state)
            except Unknown:
                return
        payload = table.dump()
        # only a cache: never written into the last free space (DiskFullError: not written)
        ensure_space(self.path, 2 * len(payload), "the footprints table")
        self._layout.write_record("prints", payload)
        self._prints = table
        self._seal.suspects = set()
        self._seal.modified = True

    def _retake_prints(self, buf: mmap.mmap, table: Table | None, head: str,
                       state: State) -> Table:
        """The footprints table brought to HEAD: updated for the paths that changed since
        the commit it vouches for, or taken whole when that cannot be told."""
        fp = Footprints(buf)
        old: State | None = None
        if table is not None and table.root == fp.root and table.commit != head:
            base = self._prints_base
            try:
                old = base[1] if base and base[0] == table.commit else self.state_of(table.commit)
            except H5vcError:
                old = None
        if table is None or table.root != fp.root or (table.commit != head and old is None):
            table = Table(head, fp.root)
            table.take(fp, None, self._vlen_attr, self._links, holds_refs=self._holds_refs)
            return table
        dirty = {p for p in self._seal.suspects if p in state}
        quick = changed_paths(old, state) if old is not None else None
        if quick is not None:  # two paged states: their overlays tell what changed
            dirty |= {p for p in quick if p in state}
            for p in quick:
                if p not in state and p in old:  # type: ignore[operator]
                    table.set(p, None)
        else:
            if old is not None:
                dirty |= {p for p in state
                          if old.get(p) is not state[p] and old.get(p) != state[p]}
            table.keep_only(state)
        table.take(fp, sorted(dirty), self._vlen_attr, self._links, self._locate,
                   self._holds_refs)
        table.commit = head
        return table

    def _links(self, path: str) -> dict[str, int] | None:
        try:
            g = self._f[path]
            if not isinstance(g, h5py.Group):
                return None
            return {k: h5py.h5o.get_info(g[k].id).addr for k in g
                    if not (path == "/" and k == META)
                    and isinstance(g.get(k, getlink=True), h5py.HardLink)}
        except (KeyError, OSError, RuntimeError, ValueError):
            return None

    def _locate(self, path: str) -> int | None:
        try:
            if not isinstance(self._f.get(path, getlink=True), h5py.HardLink):
                return None
            return int(h5py.h5o.get_info(self._f[path].id).addr)
        except (KeyError, OSError, RuntimeError, ValueError):
            return None

    def _holds_refs(self, path: str) -> bool:
        try:
            return dtype_holds_refs(self._f[path].dtype)
        except (KeyError, OSError, RuntimeError, ValueError, TypeError):
            return True

    def _vlen_attr(self, path: str, name: str) -> bool:
        try:
            return bool(self._f[path].attrs.get_id(name).dtype.hasobject)
        except (KeyError, OSError, RuntimeError, ValueError, TypeError):  # TypeError: no numpy type
            return True

    def commit(self, message: str, *, verify: bool = False, author: str | None = None,
               allow_empty: bool = False, accept_loss: bool = False) -> Commit:
        """Record every change since HEAD (made by any tool) as a new commit.

        Refuses (DataLossError) when another tool destroyed committed rows that h5vc never
        preserved (deleted, re-created, cut or, with ``verify``, rewritten in place), since
        older commits could then no longer be checked out; ``accept_loss`` commits anyway.
        """
        self._require_writable()
        if not message.strip():
            raise InvalidInputError("a commit needs a message; pass -m 'what changed'")
        if not verify and not allow_empty and self._seal.still_trusted(self._f) and self._seal.clean:
            raise InvalidInputError("nothing to commit: the store equals HEAD")
        head, state = self._head_state()
        changes = self._scan(state, verify)
        if not changes and not allow_empty:
            raise InvalidInputError("nothing to commit: the store equals HEAD")
        sel = self._layout.selection()
        outside = sorted({ch["path"] for ch in changes if not selected(ch["path"], sel)})
        if outside:
            raise InvalidInputError(
                f"{outside[0]} is not in this partial store (it holds {', '.join(sel or [])}); "
                f"bring it in first (h5vc pull --select {outside[0]}), or remove what you made "
                "there")
        if changes and not accept_loss:
            lost = find_losses(self, head, state, changes)
            if lost:
                more = f" (and {len(lost) - 1} more dataset(s))" if len(lost) > 1 else ""
                raise DataLossError(
                    f"committing would lose committed rows: {lost[0]}{more}; commit anyway with "
                    "--accept-loss, or restore the file from a backup")
        commit = self._record(materialize(self._f, changes), message, author)
        self._seal.trusted = self._seal.clean = True  # whatever differed is now HEAD
        return commit

    def _record(self, changes: list[dict[str, Any]], message: str,
                author: str | None) -> Commit:
        head, state = self._head_state()
        if not message.strip():
            raise InvalidInputError("a commit needs a message; pass -m 'what changed'")
        if author is not None:
            check_text(author, "--author")
        pending = self._layout.pending_sources()  # provenance of imports made without a commit
        if pending:
            changes = [*changes, *pending]
        rec = {"v": 1, "parents": [head] if head else [], "author": author or self._default_author(),
               "time": _now(), "message": message, "changes": changes}
        payload = canonical_json(rec)
        cid = xxhash.xxh3_128(payload).hexdigest()
        parent_end = 0
        if head:
            parent_end = self._ends.get(head) or self._frame(head).end
        ensure_space(self.path, len(payload) + 2 * self._snapshot_len, "the commit record",
                     size=self._f.id.get_filesize())
        try:
            # the rows reach the file before the record that commits them; no checkpoint: a
            # kill before the record is written rolls the rows back too
            write_out(self._f)
        except OSError as e:
            if disk_full(e):
                raise DiskFullError(f"the disk holding {self.path} is full: the rows of this "
                                    "commit could not be written, nothing was committed; free "
                                    "some space and commit again", hdf5_failed=True) from None
            raise
        crash_point("commit.before-frame")
        self._layout.require_version(format_needed(changes))
        end = self._layout.append_frame(payload, cid, head, parent_end)
        crash_point("commit.frame-written")
        self._ends[cid] = end
        if self._stored_refs is not None:
            self._tip = cid
        new_state = apply_changes(state, changes)
        self._head_cache = (cid, new_state)
        if self._index is not None:
            self._index[cid] = Frame(cid, head, parent_end, end - TRAILER.size - len(payload),
                                     len(payload))
        snap_pos = self._snapshot_pos()
        due = self._snapshot_len // 4
        if self._paged:
            due = min(due, SNAPSHOT_MAX_TAIL)
        due = max(SNAPSHOT_MIN_BYTES, due)
        if not self._paged and self._snapshot_len > 2 * snapshot_pages.PAGE_BYTES:
            due = 0  # written before snapshots were paged: paged at this commit
        if end - snap_pos > due or snap_pos == 0:
            self._write_snapshot(cid, new_state)
        if pending:
            self._layout.set_pending_sources([])
        self._layout.sync()
        crash_point("commit.flushed")
        self._seal.wrote()
        if self._pointer is not None:
            self._update_pointer(cid)
        self._committed = True  # the footprints table follows at close
        return Commit._from_record(cid, rec)

    def _default_author(self) -> str:
        """$H5VC_AUTHOR; else git's identity when the store is in a git work tree; else login."""
        if self._author is None:
            env = os.environ.get("H5VC_AUTHOR")
            if env:
                return env
            self._author = git_identity(self.path.parent) or _login_name()
        return self._author

    # -- pointer file --------------------------------------------------------------------

    @property
    def pointer(self) -> Path | None:
        """The pointer file ``<store>.h5vc`` when it exists: kept naming HEAD."""
        return self._pointer

    def write_pointer(self) -> Path:
        """Create or refresh the pointer file ``<store>.h5vc`` naming HEAD; returns its path."""
        head = self._head_from(self._refs())
        if head is None:
            raise InvalidInputError(f"{self.path} has no commits yet; commit first")
        self._pointer = pointer_path(self.path)
        self._update_pointer(head)
        return self._pointer

    def _pointer_remote(self) -> str | None:
        """The URL the pointer file carries: the default remote's (options stay here)."""
        name = self.default_remote
        return None if name is None else self.remotes[name]["url"]

    def _remote_changed(self) -> None:
        """Keep the pointer's remote the default remote's URL (its commit as it is)."""
        if self._pointer is None:
            return
        try:
            cid = read_pointer(self._pointer).commit
        except H5vcError:
            return  # unreadable: rewritten whole by the next commit or `h5vc pointer`
        self._update_pointer(cid)

    def _update_pointer(self, cid: str) -> None:
        assert self._pointer is not None
        try:
            write_pointer(self.path, cid, path=self._pointer, remote=self._pointer_remote())
        except OSError as e:
            raise ReadOnlyError(
                f"{self.path} is at commit {cid[:10]}, but its pointer file {self._pointer} cannot "
                f"be written ({e.strerror}); make it writable and run `h5vc pointer`"
            ) from None

    def _snapshot_pos(self) -> int:
        """Where the snapshot's commit ends in the journal (0: no snapshot), without reading it."""
        if self._snap_pos is None:
            pos = self._layout.snapshot_end
            if pos is None:
                return 0
            self._snap_pos = pos
            self._snapshot_len = self._layout.snapshot_bytes
            self._paged = self._layout.snapshot_paged
        return self._snap_pos

    # -- checkout ------------------------------------------------------------------------

    def checkout(self, rev: str, *, force: bool = False) -> CheckoutResult:
        """Make the store equal to ``rev`` in place, preserving whatever it removes.

        Crash-safe: once everything that leaves is preserved, an intent naming the target is
        recorded; a kill after that point is finished by the next writable open.
        """
        return self._checkout(rev, force=force)

    def _checkout(self, rev: str, *, force: bool = False,
                  advance: str | None = None) -> CheckoutResult:
        """:meth:`checkout`; with ``advance``, that branch is moved to the target and checked
        out in the same refs write (a fast-forward: a kill leaves the old state or the new)."""
        self._require_writable()
        refs = self._refs()
        target = self.resolve(rev)
        head, state = self._head_state()
        changes = self._scan(state, False, prints=False)
        if changes and not force:
            raise DirtyStoreError(
                f"the store has {len(changes)} uncommitted change(s) ({summary_line(changes)}); "
                "commit them (h5vc commit -m ...) or discard them with --force"
            )
        live = apply_changes(state, changes) if changes else state
        goal = self.state_of(target)
        self._objcache.clear()
        new_head = {"branch": rev} if rev in refs["branches"] else {"commit": target}
        if advance is not None:
            new_head = {"branch": advance}

        def mark(paths: list[str]) -> None:
            self._begin({"op": "checkout", "from": head, "goal": target, "head": new_head,
                         "paths": paths, **({"advance": advance} if advance else {})})

        sel = self._layout.selection()
        report = restore(self._f, self._layout, within(live, sel), within(goal, sel),
                         force=force, before_mutate=mark, fill=self._fill)
        crash_point("checkout.restored")
        self._layout.set_pending_sources([])  # the uncommitted imports it named are gone
        refs["head"] = new_head
        if advance is not None:
            refs["branches"][advance] = target
        self._write_refs(refs)
        self._head_cache = (target, goal)
        self._write_snapshot(target, goal)
        self._end()
        self._seal.trusted = self._seal.clean = True  # every row now is the target's
        self._seal.wrote()
        if self._pointer is not None:
            self._update_pointer(target)
        return CheckoutResult(self.get_commit(target), refs["head"].get("branch"), changes,
                              report)

    def at(self, rev: str = "HEAD") -> View:
        """A read-only, h5py-like view of revision ``rev`` (commit id or prefix, branch, tag,
        ``HEAD~n``), read without a checkout: the file is not changed. See :mod:`h5vc.view`."""
        cid = self.resolve(rev)
        return View(_ViewSource(self), cid, self.state_of(cid))

    def diff(self, a: str | None = None, b: str | None = None, *,
             paths: list[str] | None = None) -> Diff:
        """What differs, per path, like ``git diff``: no revision, the live store's
        uncommitted changes against HEAD; ``a`` alone, revision ``a`` against the live store;
        both, ``a`` against ``b``. Reads recorded metadata and hashes only (the live store is
        scanned as ``status`` does); ``paths`` limits it to those paths and what lies below."""
        want = None
        if paths:
            want = []
            for q in paths:
                try:
                    want.append(normalize_path(q))
                except InvalidInputError:
                    raise InvalidInputError(f"{q!r} is not a path in the store; give paths "
                                            "from the root, like /group/dataset") from None
        if b is not None and a is None:
            raise InvalidInputError("give the first revision too: diff A B")
        if a is None:
            head, state = self._head_state()
            old, a_id = state, head
        else:
            a_id = self.resolve(a)
            old = self.state_of(a_id)
        if b is None:
            head, state = self._head_state()
            new = apply_changes(state, self._scan(state, False)) if head else state
            b_id = None
        else:
            b_id = self.resolve(b)
            new = self.state_of(b_id, base=(a_id, old) if a_id else None)
        return diff_states(old, new, want, a_id, b_id)

    def export(self, rev: str, out: str | os.PathLike[str], *, select: list[str] | None = None,
               where: list[str] | None = None, format: str = "h5",
               force: bool = False) -> ExportReport:
        """Write the groups and datasets ``select``-ed (paths; default everything) whose
        attributes meet every ``where`` condition (``"ATTR=VALUE"``: such an object and all
        below it), as of ``rev``, to ``out``: a plain HDF5 file (``format="h5"``, chunking,
        compression and attributes kept, the source recorded in the root's ``h5vc_export``
        attribute), a folder of .npy files (``"npy"``) or of image files (``"images"``, for
        groups made by the images importer). ``force`` replaces an existing ``out``."""
        return _export(self.at(rev), Path(out), store=self.path, select=select, where=where,
                       format=format, force=force)

    @staticmethod
    def open_view(path: str, commit: str, name: str | None = None) -> Any:
        """Open ``path`` read-only and return the view of ``commit`` (or its object ``name``):
        how a pickled view is unpickled, e.g. in a Dask worker process."""
        view = Repository.open(path, mode="r").at(commit)
        return view if name is None else view[name]

    def sources(self, group: str = "/", rev: str | None = None) -> dict[str, dict[str, Provenance]]:
        """Provenance: the files imported (``h5vc add``) into ``group`` and the groups below
        it, as of ``rev`` (default HEAD, with imports not yet committed): ``{group: {file:
        Provenance}}``. A store written before provenance moved into /.h5vc also has it in
        ``_h5vc_sources`` datasets; at HEAD those are read as they are."""
        top = normalize_path(group, "group")
        state = self.state_of(self.resolve(rev)) if rev is not None else self._head_state()[1]
        out: dict[str, dict[str, Provenance]] = {}
        for p, node in sorted(state.items()):
            if node["k"] == "g" and is_below(p, top):
                legacy = legacy_sources(self._f, p) if rev is None else {}
                src = {**legacy, **{k: Provenance(k, v[0], v[1], v[2])
                                    for k, v in (node.get("src") or {}).items()}}
                if src:
                    out[p] = src
        if rev is None:
            for ch in self._layout.pending_sources():
                if is_below(ch["path"], top):
                    for k, size, h in ch["files"]:
                        out.setdefault(ch["path"], {})[k] = Provenance(k, size, h, ch.get("time"))
        return out

    # -- integrity -----------------------------------------------------------------------

    def verify(self, rev: str | None = None) -> VerifyReport:
        """Check the whole store against its history (or what commit ``rev`` needs).

        Rehashes every journal frame, the refs and snapshot, every preserved object and
        HEAD's live rows; ``report.ok`` is False when anything committed is damaged or lost.
        """
        return _verify(self, rev)

    def repair(self) -> RepairReport:
        """Rebuild refs and snapshot from the journal, finish or undo an interrupted
        operation, and say what could not be saved. Open the store with ``recover=False``
        to see the interrupted operation here rather than have the open finish it."""
        self._require_writable()
        return _repair(self)

    # -- crash safety --------------------------------------------------------------------

    def _begin(self, intent: dict[str, Any]) -> None:
        """Record what is about to change, and make it reach the file before any change."""
        self._layout.write_intent(intent)
        crash_point("intent.written")
        self._layout.sync()
        crash_point("intent.flushed")
        self._seal.wrote()  # h5vc's own write: the file's new time is still vouched for

    def _end(self) -> None:
        """The operation is complete in the file: flush it, then drop the intent."""
        self._layout.sync()
        crash_point("op.flushed")
        self._layout.clear_intent()
        self._f.flush()
        self._seal.wrote()

    def _recover(self, intent: dict[str, Any]) -> None:
        """Finish (checkout) or undo (transaction, rollback, fetch) what a killed process began."""
        op = intent.get("op", "damaged")
        if op == "fetch" and isinstance(intent.get("journal_len"), int) and \
                0 <= intent["journal_len"] <= self._layout.journal_len:
            try:
                done = self._raw_refs()["journal_len"] > intent["journal_len"]
            except IntegrityError:
                done = False
            if not done:
                # the fetched commits were appended after the refs' journal length: dropped,
                # so that they cannot pass for commits of HEAD's branch (their rows stay)
                self._layout.truncate_journal(intent["journal_len"])
            self._index = self._journal = None
            self._stored_refs = None
            self._end()
            self.recovered.append("finished an interrupted fetch" if done else
                                  "undone an interrupted fetch: the store is as it was")
            return
        goal = intent.get("goal")
        select = intent.get("select")
        if isinstance(select, list) and all(isinstance(p, str) for p in select):
            self._layout.set_selection(select)  # a widening: the paths it brings in count
        refs = self._refs()
        head = self._head_from(refs)
        index = self._load_index()
        targets: list[tuple[str | None, dict[str, Any] | None]] = []
        if op == "checkout" and goal in index:
            targets.append((goal, intent.get("head")))
            if intent.get("from") in index:
                targets.append((intent["from"], None))  # could not finish: undo instead
        else:
            targets.append((head, None))
        paths = intent.get("paths") if op != "damaged" else None
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            paths = None
        last: Exception | None = None
        for cid, new_head in targets:
            try:
                self._bring_to(cid, paths)
            except (H5vcError, OSError, RuntimeError, KeyError, ValueError) as e:
                last = e  # type: ignore[assignment]
                continue
            if new_head is not None:
                b = intent.get("advance")
                if isinstance(b, str) and b in refs["branches"] and cid is not None:
                    refs["branches"][b] = cid  # the fast-forward it was part of
                refs["head"] = new_head if "commit" in new_head or \
                    new_head.get("branch") in refs["branches"] else {"commit": cid}
                self._write_refs(refs)
            if cid is not None:
                self._write_snapshot(cid, self.state_of(cid))
            self._end()
            what = {"checkout": "an interrupted checkout", "transaction":
                    "an interrupted transaction", "rollback": "an interrupted rollback"}.get(
                        op, "an interrupted operation")
            done = "finished" if op == "checkout" and cid == goal else "undone"
            self.recovered.append(f"{done} {what}: the store equals "
                                  + (f"commit {cid[:10]}" if cid else "the empty store"))
            self._head_cache = None
            return
        raise IntegrityError(
            f"{self.path}: an interrupted {op} could not be finished or undone ({last}); "
            "run `h5vc repair`")

    def _bring_to(self, cid: str | None, paths: list[str] | None) -> None:
        """Make ``paths`` (None: everything) of the store equal to commit ``cid``, reading the
        live rows to know exactly what they hold: what a killed operation left is unknown."""
        goal = within(self.state_of(cid) if cid else empty_state(), self._layout.selection())
        tops = None
        if paths is not None:
            tops = sorted({p for p in paths if not any(
                p != q and p.startswith(q.rstrip("/") + "/") for q in paths)})
        self._objcache.clear()
        self._rebuild_broken(goal, tops or ["/"], None if paths is None else set(paths))
        # rows that differ from the commit, or cannot be read (HDF5 may have written a
        # dataset's rows but not the heap its strings live in), get hash None: never kept,
        # never preserved (what they held is preserved already), written again from the commit
        changes = scan(self._f, goal, verify=True, paths=tops, unreadable_differ=True)
        live = apply_changes(goal, changes)
        restore(self._f, self._layout, live, goal, force=True)

    def _rebuild_broken(self, goal: State, tops: list[str], touched: set[str] | None) -> None:
        """Datasets a killed operation may have left broken are made anew: variable-length
        ones it wrote to, and any whose rows cannot be read.

        Variable-length rows hold references into HDF5's global heap, and the kill can leave
        rows whose heap objects never reached the file: inside the extent (they cannot be read,
        nor overwritten: HDF5 frees the old values first), or past it, in the last chunk, where
        the next resize would bring them back and writing over them crashes HDF5 itself. Rows
        of any type can be unreadable when a chunk index or chunk points at space HDF5 had
        freed and given to something else. Each such dataset of ``tops`` (variable-length: the
        ones the operation touched, ``touched``; None: any) has its rows that still match the
        commit preserved and is deleted; restore makes it again from preserved rows, in fresh
        chunks."""
        for p, node in goal.items():
            if node["k"] != "d" or not any(is_below(p, t) for t in tops) or p not in self._f:
                continue
            ds = self._f[p]
            if not isinstance(ds, h5py.Dataset) or not ds.shape:
                continue
            dkey = dtype_key(ds.dtype)
            good, broken = [], ds.dtype.hasobject and (touched is None or p in touched)
            for s, e, h in node["ranges"]:
                try:
                    if e <= ds.shape[0] and live_hash(ds, s, e, dkey) == h:
                        good.append((s, e, h))
                except (OSError, RuntimeError, ValueError):
                    broken = True
            if not broken:
                continue
            for s, e, h in good:
                self._layout.put_run(read_rows(ds, s, e), ds.dtype, object_filters(node["meta"]),
                                     block_rows(node["meta"], node["n"]), [(h, 0, e - s)])
            self._layout.sync()
            del self._f[p]

    # -- browsing ------------------------------------------------------------------------

    @staticmethod
    def is_store(path: str | os.PathLike[str]) -> bool:
        """True when ``path`` is an HDF5 file holding an h5vc history (nothing is locked or
        written; False for anything that cannot be read as one)."""
        p = Path(path)
        if not p.is_file() or not _looks_like_hdf5(p):
            return False
        try:
            with h5py.File(p, "r") as f:
                return f.id.links.exists(META.encode())
        except (OSError, ValueError):
            return False

    def tree(self, path: str = "/", rev: str | None = None) -> dict[str, Any]:
        """The groups and datasets under ``path``: names, shapes, dtypes, attributes; of the
        live file, or as of revision ``rev`` (read without a checkout)."""
        try:
            p = normalize_path(path)
        except InvalidInputError:
            raise NotFoundError(f"{path} does not exist in {self.path}; see `h5vc ls /`") from None
        if rev is not None:
            view = self.at(rev)
            if p not in view.state:
                raise NotFoundError(f"{p} does not exist at {rev} ({view.commit[:10]}); see "
                                    f"`h5vc ls --rev {rev} /`")

            def vnode(name: str, obj: Any) -> dict[str, Any]:
                attrs = _attrs_json(view.state[obj.name]["attrs"])
                if isinstance(obj, ViewDataset):
                    return _dataset_node(name, obj, attrs)
                return _group_node(name, obj.name, attrs, [vnode(k, obj[k]) for k in obj.keys()])

            return vnode(p if p == "/" else p.rsplit("/", 1)[1], view[p])
        f = self._f
        if p == f"/{META}" or p.startswith(f"/{META}/") or p not in f:
            raise NotFoundError(f"{p} does not exist in {self.path}; see `h5vc ls /`")

        def node(name: str, obj: Any) -> dict[str, Any]:
            attrs = _attrs_json(read_attrs(obj))
            if isinstance(obj, h5py.Dataset):
                return _dataset_node(name, obj, attrs)
            children = [node(k, obj[k]) for k in obj.keys()
                        if not (obj.name == "/" and k == META)
                        and isinstance(obj.get(k, getlink=True), h5py.HardLink)]
            return _group_node(name, obj.name, attrs, children)

        return node(p if p == "/" else p.rsplit("/", 1)[1], f[p])

    # -- transactions --------------------------------------------------------------------

    def transaction(self, message: str, *, author: str | None = None, commit: bool = True) -> Any:
        """An h5py-like writable view; commits on exit, rolls back on an exception.

        With ``commit=False`` the writes stay as uncommitted changes (still rolled back on an
        exception).
        """
        self._require_writable()
        if commit and not message.strip():
            raise InvalidInputError("a transaction needs a message")
        return _transaction_class()(_History(self), message, author, record=commit)

    def add(self, paths: list[str | os.PathLike[str]], *, to: str = "/", message: str | None = None,
            importer: str | None = None, attrs: dict[str, Any] | None = None,
            compression: str = "gzip", force: bool = False, commit: bool = True,
            dry_run: bool = False, skip_bad: bool = False, options: dict[str, Any] | None = None,
            progress: bool = False, follow_symlinks: bool = False) -> Any:
        """Import files (images, CSV, npy, ... through importer plugins) as one commit.

        Returns an :class:`h5vc.importing.AddResult`. See ``h5vc add --help`` for the options.
        """
        from .importing.pipeline import run_import

        if not dry_run:
            self._require_writable()
        return run_import(self, paths, to=to, message=message, importer=importer, attrs=attrs,
                          compression=compression, force=force, commit=commit, dry_run=dry_run,
                          skip_bad=skip_bad, options=options, progress=progress,
                          follow_symlinks=follow_symlinks)
