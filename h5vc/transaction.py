"""Transactions: an h5py-like writable view of a store that commits on exit.

Every write goes through the transaction, which knows what it changed: appends are hashed
from memory, so committing them needs no read-back and no scan of the store. Committed rows
that a write would overwrite, shrink or delete are preserved first, so an exception inside
the ``with`` block rolls the store back to HEAD exactly.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import h5py
import numpy as np

from .crashpoints import crash_point
from .engine.chunks import missing_filter
from .engine.format import Layout
from .engine.hashing import dtype_key, encode_value, rows_hash, text_rows_hash
from .engine.objects import make_group, preserve_ranges, restore, set_attrs
from .engine.rows import own_type, row_slices, write_exact, write_rows
from .engine.scan import (
    dataset_meta,
    materialize,
    object_attr_changes,
    read_attrs,
    referrers,
    same_attrs,
    scan,
    scan_objects,
)
from .engine.space import disk_full, ensure_space
from .engine.state import (
    ROOT,
    State,
    apply_changes,
    block_rows,
    is_below,
    parent_of,
    row_bytes,
    split_blocks,
    utc_now,
)
from .errors import DirtyStoreError, DiskFullError, InvalidInputError, NotFoundError
from .paths import check_text

__all__ = ["ConversionWarning", "Transaction", "TxAttrs", "TxDataset", "TxGroup"]


class ConversionWarning(UserWarning):
    """A dataset was converted to chunked and resizable so that rows could be appended."""


def _norm(path: str) -> str:
    if type(path) is str and path in _NORMAL:
        return path
    from .paths import normalize_path  # imported once, then found in sys.modules

    p = normalize_path(path)
    if p == path and len(_NORMAL) < 4096:
        _NORMAL.add(p)
    return p


SPACE_CHECK_BYTES = 1 << 20  # free space is checked once per this many bytes appended

_NORMAL: set[str] = set()  # paths already in normal form (the hot path looks them up once)


def _foreign(path: str) -> DirtyStoreError:
    return DirtyStoreError(f"{path} has uncommitted changes made outside this transaction; "
                           "commit them first (h5vc commit -m ...)")


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


class Seal(Protocol):
    """Whether the session vouches for the committed rows (see h5vc.repository)."""

    trusted: bool
    clean: bool

    def still_trusted(self, f: h5py.File | None = None) -> bool: ...


class History(Protocol):
    """What a transaction uses of the store it writes, handed to it by the repository: the
    open file and its ``/.h5vc`` layout, HEAD's state, recording a commit, and the intent
    that makes an operation crash-safe (begin before the first change, end when done)."""

    path: Path
    file: h5py.File
    layout: Layout
    seal: Seal
    objcache: dict[str, Any]  # h5py objects by path, kept across transactions of a session
    active: Any  # the transaction under way, if any

    def head_state(self) -> tuple[str | None, State]: ...
    def record(self, changes: list[dict[str, Any]], message: str, author: str | None) -> Any: ...
    def begin(self, intent: dict[str, Any]) -> None: ...
    def end(self) -> None: ...


class Transaction:
    """Writes that become one commit. Use ``with repo.transaction("msg") as tx:``."""

    def __init__(self, history: History, message: str, author: str | None, *,
                 record: bool = True) -> None:
        self._h = history
        self._record = record  # False: leave the writes as uncommitted changes
        self._f: h5py.File = history.file
        self._message = message
        self._author = author
        self._head, self._state = history.head_state()
        self._appended: dict[str, list[list[Any]]] = {}
        self._rewritten: dict[str, list[tuple[int, int]]] = {}
        self._attrs: set[str] = set()
        self._structural: set[str] = set()  # created, resized or deleted: compared by a scan
        self._recreated: set[str] = set()  # deleted in this transaction (maybe created again)
        self._checked: set[str] = set()
        self._rows: dict[str, int] = {}  # rows of datasets this transaction appended to
        self._objs: dict[str, Any] = {}  # h5py objects by path: lookups cost ~25 µs each
        self.notices: list[str] = []
        self.commit: Any = None
        self._open = True
        self._intent_paths: set[str] = set()  # paths whose committed rows it destroys
        self._intent_named: set[str] = set()  # paths its intent names
        self._since_check = 0  # bytes appended since free space was last checked
        self._sources: dict[tuple[str, bool], list[list[Any]]] = {}  # provenance, see record_sources
        # writes made to the file outside h5vc since its last write end its trust (checked
        # before this transaction writes, which would otherwise carry them to the disk as its own)
        history.seal.still_trusted(history.file)
        # until this transaction ends well, the session does not know the store equal to HEAD
        self._was_clean = history.seal.clean
        history.seal.clean = False
        history.active = self

    # -- context -------------------------------------------------------------------------

    def __enter__(self) -> Transaction:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        seal = self._h.seal
        if exc_type is not None:
            if disk_full(exc) and not (isinstance(exc, DiskFullError) and not exc.hdf5_failed):
                # HDF5 failed to write: a rollback would write again, into a library that
                # may not survive it; the file is left as a kill would leave it (uncommitted
                # appends, or an intent the next open finishes)
                self._open = False
                self._h.active = None
                seal.trusted = False
                raise DiskFullError(f"the disk holding {self._h.path} is full; nothing was "
                                    "committed; free some space and try again",
                                    hdf5_failed=True) from None
            seal.trusted, trusted = False, seal.trusted
            self.rollback()
            seal.trusted = trusted  # rolled back: the store is as it was
            seal.clean = self._was_clean
            return
        try:
            self.commit = self._finish()
            seal.clean = self._was_clean and self._record
        except (DiskFullError, OSError, RuntimeError) as e:
            seal.trusted = False  # whatever happens next, the next status looks
            if not disk_full(e) or self.commit is not None:
                raise
            if isinstance(e, DiskFullError) and not e.hdf5_failed:
                # refused before writing: take the rows back out before HDF5 tries to write them
                self._open = True
                self.rollback()
                raise
            # HDF5 failed to write: touch the file no more (see DiskFullError.hdf5_failed)
            raise DiskFullError(f"the disk holding {self._h.path} is full; nothing was "
                                "committed; free some space and try again",
                                hdf5_failed=True) from None
        except BaseException:
            seal.trusted = False
            raise

    def _obj(self, p: str) -> Any:
        obj = self._objs.get(p)
        if obj is None:
            # Opening an object costs ~30 µs, checking that a path still leads to the object
            # the repository opened last time ~2 µs: reuse it when it does.
            bp = p.encode()
            cache = self._h.objcache
            hit = cache.get(p)
            if hit is not None:
                try:
                    if self._f.id.links.get_info(bp).u == hit[1]:
                        obj = hit[0]
                except KeyError:
                    pass
            if obj is None:
                oid = h5py.h5o.open(self._f.id, bp)
                obj = h5py.Dataset(oid) if isinstance(oid, h5py.h5d.DatasetID) else h5py.Group(oid)
                cache[p] = (obj, h5py.h5o.get_info(oid).addr)
            self._objs[p] = obj
        return obj

    def _layout_of(self, p: str, ds: h5py.Dataset) -> tuple[Any, Any, np.dtype]:
        """(chunks, maxshape, dtype): fixed for the life of an HDF5 dataset, so cached with it."""
        hit = self._h.objcache.get(p)
        if hit is not None and hit[0] is ds:
            if len(hit) == 2:
                hit = self._h.objcache[p] = (*hit, (ds.chunks, ds.maxshape, ds.dtype))
            return hit[2]
        return ds.chunks, ds.maxshape, ds.dtype

    def _forget(self) -> None:
        """Drop cached h5py objects: the structure of the file is about to change."""
        self._objs.clear()
        self._h.objcache.clear()

    def _require_open(self) -> None:
        if not self._open:
            raise InvalidInputError("this transaction has ended; start a new one")

    # -- access --------------------------------------------------------------------------

    def __getitem__(self, path: str) -> TxDataset | TxGroup:
        self._require_open()
        p = _norm(path)
        try:
            obj = self._obj(p)
        except KeyError:
            raise NotFoundError(f"{p} does not exist; create it with tx.create_dataset or "
                                "tx.create_group") from None
        return TxDataset(self, p) if isinstance(obj, h5py.Dataset) else TxGroup(self, p)

    def __contains__(self, path: str) -> bool:
        return _norm(path) in self._f

    def __delitem__(self, path: str) -> None:
        self._require_open()
        p = _norm(path)
        if p == ROOT:
            raise InvalidInputError("the root group cannot be deleted")
        if p not in self._f:
            raise NotFoundError(f"{p} does not exist")
        self._structural_touch(p)
        for q, node in self._state.items():
            if (is_below(q, p) and node["k"] == "d" and q in self._f
                    and not self._is_recreated(q)):
                preserve_ranges(self._f, self._h.layout, q, node["meta"], node["ranges"])
        self._destroying(p)
        del self._f[p]
        self._forget()
        self._recreated.add(p)
        for q in [q for q in self._appended if is_below(q, p)]:
            del self._appended[q]  # their known hashes no longer describe the file

    def create_group(self, path: str) -> TxGroup:
        self._require_open()
        p = _norm(path)
        if p in self._f:
            raise InvalidInputError(f"{p} already exists; use tx.require_group('{p}') to reuse it")
        self._structural_touch(self._first_missing(p))
        make_group(self._f, p)
        return TxGroup(self, p)

    def require_group(self, path: str) -> TxGroup:
        p = _norm(path)
        if p in self._f:
            obj = self[p]
            if not isinstance(obj, TxGroup):
                raise InvalidInputError(f"{p} is a dataset, not a group")
            return obj
        return self.create_group(p)

    def create_dataset(self, path: str, data: Any = None, *, shape: Any = None,
                       dtype: Any = None, **kwargs: Any) -> TxDataset:
        """Like h5py's, but new datasets are chunked and resizable on axis 0 by default."""
        self._require_open()
        p = _norm(path)
        if p in self._f:
            raise InvalidInputError(
                f"{p} already exists; append rows with tx['{p}'].append(rows), or replace it "
                f"with tx.replace('{p}', data)"
            )
        arr = None if data is None or isinstance(data, h5py.Empty) else np.asarray(data)
        if arr is not None and arr.dtype.kind == "O" and dtype is None:
            raise InvalidInputError(f"{p}: give dtype= for object data (e.g. h5py.string_dtype())")
        shp = tuple(shape) if shape is not None else (arr.shape if arr is not None else None)
        if shp is not None and len(shp) > 0 and "maxshape" not in kwargs:
            kwargs["maxshape"] = (None, *shp[1:])
            kwargs.setdefault("chunks", True)
        self._structural_touch(self._first_missing(p))
        if arr is not None:
            ensure_space(self._h.path, arr.nbytes, f"creating {p}")
        parent = p.rsplit("/", 1)[0]
        if parent and parent not in self._f:
            make_group(self._f, parent)
        try:
            ds = self._f.create_dataset(p, data=data, shape=shape, dtype=dtype, **kwargs)
        except (TypeError, ValueError) as e:
            raise InvalidInputError(f"cannot create {p}: {e}") from None
        if arr is not None and arr.ndim and ds.chunks:
            # the initial rows are hashed from memory, as appends are: no read-back at commit
            self._appended[p] = _memory_hashes(arr, ds.dtype, 0, ds.chunks[0], own_type(ds))
        return TxDataset(self, p)

    def replace(self, path: str, data: Any = None, **kwargs: Any) -> TxDataset:
        """Delete ``path`` (preserving its committed rows) and create it anew."""
        p = _norm(path)
        if p in self._f:
            del self[p]
        return self.create_dataset(p, data, **kwargs)

    # -- bookkeeping ---------------------------------------------------------------------

    def _first_missing(self, p: str) -> str:
        top = p
        while parent_of(top) != ROOT and parent_of(top) not in self._f:
            top = parent_of(top)
        return top

    def _destroying(self, *paths: str) -> None:
        """Before overwriting, cutting or deleting committed rows below ``paths``: an intent
        names every path this transaction touched (a kill is undone at the next open), and the
        rows preserved for them reach the file first."""
        lay = self._h.layout
        new = [p for p in paths if p not in self._intent_paths]
        if new:
            self._intent_paths.update(new)
        named = self._name_touched()
        if named or lay.unsynced:
            lay.sync()
            crash_point("transaction.synced")

    def _name_touched(self) -> bool:
        """Once an intent exists, keep it naming every path this transaction wrote, and make
        it reach the file before those writes do (a kill is then undone for all of them)."""
        if not self._intent_paths:
            return False
        touched = (self._intent_paths | set(self._appended) | set(self._rewritten)
                   | self._structural | self._attrs)
        if touched <= self._intent_named:
            return False
        self._intent_named = touched
        lay = self._h.layout
        lay.write_intent({"op": "transaction", "goal": None, "paths": sorted(touched)})
        lay.flush_intent()
        return True

    def _is_recreated(self, p: str) -> bool:
        return any(is_below(p, r) for r in self._recreated)

    def _structural_touch(self, p: str) -> None:
        """Before creating, resizing or deleting below ``p``: refuse foreign uncommitted changes."""
        self._forget()
        if not any(is_below(p, t) for t in self._structural):
            mine = self._checked | self._attrs | self._structural | set(self._appended) \
                | set(self._rewritten)
            foreign = [c for c in scan(self._f, self._state, paths=[p])
                       if not any(is_below(c["path"], t) for t in mine)]
            if foreign and self._structural:
                # references to what this transaction deleted are nulled by HDF5: not foreign
                # (the commit records them, see _changes)
                nulled = set(referrers(self._state, self._structural))
                foreign = [c for c in foreign if c["path"] not in nulled]
            if foreign:
                raise _foreign(foreign[0]["path"])
        self._structural.add(p)

    def _check_dataset(self, p: str, shape: Any = False) -> dict[str, Any] | None:
        """The committed node of dataset ``p`` after checking the live one still matches it."""
        if self._structural and any(is_below(p, s) for s in self._structural):
            return None
        node = self._state.get(p)
        meta = node["meta"] if node is not None and node["k"] == "d" else {}
        if meta.get("stored"):
            missing = missing_filter(meta["filters"])
            raise InvalidInputError(
                f"{p} is versioned as its stored chunks (its filter"
                + (f" {missing[0]} ({missing[1]}) is not available here" if missing else
                   " was not available when it was committed")
                + "), so a transaction cannot write rows into it; write it with the program "
                "that has the filter, then `h5vc commit`")
        if "value" in meta:
            raise InvalidInputError(
                f"{p} holds object references, versioned whole: replace it (tx.replace) or "
                "write it with h5py, then `h5vc commit`")
        if p not in self._checked:
            ds = self._obj(p)
            if shape is False:
                shape = ds.shape
            want = None
            if node is not None and node["k"] == "d":
                m = node["meta"]
                want = None if m["rank"] < 0 else () if m["rank"] == 0 else (node["n"], *m["tail"])
            if node is None or node["k"] != "d" or shape != want:
                raise _foreign(p)
            self._checked.add(p)
        return node

    def _check_attrs(self, p: str) -> None:
        if p in self._attrs or any(is_below(p, s) for s in self._structural):
            return
        node = self._state.get(p)
        if node is None or not same_attrs(read_attrs(self._f[p]), node["attrs"]):
            raise DirtyStoreError(
                f"attributes of {p} have uncommitted changes; commit them first (h5vc commit)"
            )
        self._attrs.add(p)

    # -- end -----------------------------------------------------------------------------

    def _changes(self) -> list[dict[str, Any]]:
        tops = [p for p in sorted(self._structural)
                if not any(is_below(p, q) and p != q for q in self._structural)]
        changes = scan(self._f, self._state, paths=tops) if tops else []
        if tops:
            self._add_rewrites(changes, tops)
            # objects deleted or made anew: references recorded elsewhere to them (or below
            # them) no longer point there, so their holders are read again
            remade = [t for t in tops if t in self._state]
            if remade:
                changes += scan_objects(self._f, self._state,
                                        referrers(self._state, remade, tops))
        for p in sorted(set(self._appended) | set(self._rewritten)):
            if any(is_below(p, t) for t in tops):
                continue
            node = self._state[p]
            n = self._rows.get(p)
            if n is None or p in self._rewritten:
                shape = self._obj(p).shape
                n = 1 if shape == () else shape[0]
            rew = self._rewritten.get(p, [])
            ranges = [[s, e, None if any(_overlaps((s, e), w) for w in rew) else h]
                      for s, e, h in self._appended.get(p, [])]
            if rew:
                ranges += [[s, e, None] for s, e, _h in node["ranges"]
                           if any(_overlaps((s, e), w) for w in rew)]
            changes.append({"op": "rows", "path": p, "from": node["n"], "to": n,
                            "ranges": sorted(ranges)})
        for p in sorted(self._attrs):
            if not any(is_below(p, t) for t in tops) and p in self._f:
                object_attr_changes(p, self._f[p], self._state[p], changes)
        return changes

    def _add_rewrites(self, changes: list[dict[str, Any]], tops: list[str]) -> None:
        """A metadata scan misses rows rewritten in place below ``tops``: add them as ranges."""
        full = {c["path"] for c in changes if c["op"] in ("add_dataset", "redefine")}
        ops = {c["path"]: c for c in changes if c["op"] == "rows"}
        candidates = set(self._rewritten) | {q for q, node in self._state.items()
                                             if node["k"] == "d" and self._is_recreated(q)}
        for p in sorted(candidates):
            node = self._state.get(p)
            if (p in full or node is None or node["k"] != "d" or p not in self._f
                    or not any(is_below(p, t) for t in tops)):
                continue
            ds = self._f[p]
            if not isinstance(ds, h5py.Dataset) or ds.shape is None:
                continue
            n = 1 if ds.shape == () else ds.shape[0]
            if self._is_recreated(p):  # same definition, new content: every block again
                extra = split_blocks(0, n, block_rows(node["meta"], n))
            else:
                rew = self._rewritten[p]
                extra = [(s, e) for s, e, _h in node["ranges"]
                         if e <= n and any(_overlaps((s, e), w) for w in rew)]
            if not extra:
                continue
            op = ops.get(p)
            if op is None:
                op = ops[p] = {"op": "rows", "path": p, "from": node["n"], "to": n, "ranges": []}
                changes.append(op)
            merged = {(r[0], r[1]): r[2] for r in op["ranges"]}
            merged.update({(s, e): None for s, e in extra})
            op["ranges"] = [[s, e, h] for (s, e), h in sorted(merged.items())]

    def record_sources(self, group: str, files: list[tuple[str, int, str]], *,
                       moved: bool = False) -> None:
        """Provenance: ``files`` (name relative to the imported folder, size in bytes, content
        hash) were imported into ``group``. Recorded in /.h5vc with this transaction's commit
        (or, when it does not commit, with the next commit), never in the user's groups.
        ``moved``: rows taken from an older store's ``_h5vc_sources``, whose time is unknown."""
        self._require_open()
        key = (_norm(group), moved)
        self._sources.setdefault(key, []).extend([str(n), int(size), str(h)]
                                                 for n, size, h in files)

    def _source_changes(self) -> list[dict[str, Any]]:
        when = utc_now()
        return [{"op": "sources", "path": p, "files": files, "time": None if moved else when}
                for (p, moved), files in sorted(self._sources.items(), key=lambda kv: (
                    kv[0][0], not kv[0][1])) if files]

    def _appends_only(self) -> list[dict[str, Any]] | None:
        """The changes when this transaction only appended plain rows: no scan, no read-back.

        Not for an import (it records provenance): ``h5vc add`` is all or nothing, so its
        appends are named in an intent and a kill is undone, where a plain append killed
        leaves its rows as uncommitted changes, as a raw h5py append would."""
        if self._structural or self._rewritten or self._attrs or self._sources:
            return None
        changes = []
        for p, ranges in self._appended.items():
            if any(r[2] is None for r in ranges):
                return None
            changes.append({"op": "rows", "path": p, "from": self._state[p]["n"],
                            "to": self._rows[p], "ranges": ranges})
        return changes

    def _finish(self) -> Any:
        self._require_open()
        self._open = False
        self._h.active = None
        sources = self._source_changes()
        if not self._record:
            # uncommitted writes may rewrite committed rows in place: a metadata scan would
            # not see them, so this session no longer vouches for the rows
            self._h.seal.trusted = self._h.seal.clean = False
            if sources:
                layout = self._h.layout
                layout.set_pending_sources(layout.pending_sources() + sources)
            self._done()
            return None
        fast = self._appends_only()
        if fast is not None:
            fast += sources
            return self._h.record(fast, self._message, self._author) if fast else None
        changes = self._changes()
        if not changes and not sources:
            self._done()
            return None
        known = {p: {(s, e): h for s, e, h in rs
                     if not any(_overlaps((s, e), w) for w in self._rewritten.get(p, []))}
                 for p, rs in self._appended.items()}
        for ch in changes:
            # a dataset written whole by this transaction: its hashed pieces describe it
            # exactly, even where a scan would cut blocks differently
            if ch["op"] == "rows" and ch["from"] == 0 and ch["path"] in known:
                pieces = sorted([s, e, h] for (s, e), h in known[ch["path"]].items())
                if (pieces and pieces[0][0] == 0 and pieces[-1][1] == ch["to"]
                        and all(a[1] == b[0] for a, b in zip(pieces, pieces[1:], strict=False))):
                    ch["ranges"] = pieces
        # every path written is named in an intent that reaches the file before the rows do:
        # a kill between the rows' flush and the commit record is then undone at the next open
        # (appends alone take the fast path above: what a kill leaves there is plain to see)
        self._intent_paths.update(p for p in (set(self._appended) | set(self._rewritten)
                                              | self._structural | self._attrs))
        self._name_touched()
        commit = self._h.record(materialize(self._f, changes, known) + sources,
                                    self._message, self._author)
        self._done()
        return commit

    def _done(self) -> None:
        """Everything is in the file: drop this transaction's intent."""
        if self._intent_paths:
            self._h.end()
        else:
            self._f.flush()

    def _drop_appends(self) -> None:
        """Cut rows this transaction only appended, before anything is flushed: they are not
        committed, and HDF5 then drops them from its cache unwritten (a full disk cannot take
        them)."""
        for p, n in list(self._rows.items()):
            if p in self._rewritten or any(is_below(p, t) for t in self._structural):
                continue
            node = self._state.get(p)
            if node is None or node["k"] != "d":
                continue
            ds = self._obj(p)
            if ds.shape and ds.shape[0] == n and n > node["n"]:
                ds.id.set_extent((node["n"], *ds.shape[1:]))
            self._appended.pop(p, None)
            self._rows.pop(p, None)

    def rollback(self) -> None:
        """Undo every write of this transaction: the store returns to HEAD."""
        if not self._open:
            return
        self._open = False
        self._h.active = None
        self._drop_appends()
        live = apply_changes(self._state, self._changes())
        h = self._h

        def mark(paths: list[str]) -> None:
            # only objects this transaction created go away: a kill would leave them as
            # uncommitted additions, plain to see, so no intent (and no extra flush) is needed
            if self._intent_paths or any(p in self._state for p in paths):
                h.begin({"op": "rollback", "goal": None,
                         "paths": sorted(set(paths) | self._intent_paths)})

        restore(self._f, h.layout, live, self._state, force=True, before_mutate=mark)
        h.end()


class TxAttrs:
    """``attrs`` of a tracked object inside a transaction (a mutable mapping)."""

    def __init__(self, tx: Transaction, path: str) -> None:
        self._tx, self._path = tx, path

    @property
    def _attrs(self) -> h5py.AttributeManager:
        return self._tx._f[self._path].attrs

    def __getitem__(self, name: str) -> Any:
        return self._attrs[name]

    def __setitem__(self, name: str, value: Any) -> None:
        self._tx._require_open()
        check_text(name, f"the attribute name on {self._path}")
        self._tx._check_attrs(self._path)
        try:
            self._attrs[name] = value
        except (TypeError, ValueError) as e:
            raise InvalidInputError(f"cannot store attribute {name!r} on {self._path}: {e}") from None
        except OSError:
            # too large for the object's header (over 64 KiB): set_attrs rebuilds the object
            # with a header that holds it
            arr = value if isinstance(value, np.ndarray) else np.asarray(value)
            self._tx._forget()
            obj = self._tx._f[self._path]
            set_attrs(obj, {name: encode_value(arr, arr.dtype, arr.shape)}, {})
            self._tx._forget()

    def __delitem__(self, name: str) -> None:
        self._tx._require_open()
        self._tx._check_attrs(self._path)
        if name not in self._attrs:
            raise NotFoundError(f"{self._path} has no attribute {name!r}")
        del self._attrs[name]

    def __contains__(self, name: object) -> bool:
        return name in self._attrs

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._attrs))

    def __len__(self) -> int:
        return len(self._attrs)

    def keys(self) -> list[str]:
        return list(self._attrs)

    def get(self, name: str, default: Any = None) -> Any:
        return self._attrs.get(name, default)

    def update(self, other: dict[str, Any]) -> None:
        for k, v in other.items():
            self[k] = v


class _TxObject:
    def __init__(self, tx: Transaction, path: str) -> None:
        self._tx, self.name = tx, path

    @property
    def attrs(self) -> TxAttrs:
        return TxAttrs(self._tx, self.name)

    @property
    def ref(self) -> h5py.Reference:
        """An HDF5 object reference to this object, to store in an attribute (h5vc records
        it as this object's path)."""
        self._tx._require_open()
        return self._tx._f[self.name].ref


class TxGroup(_TxObject):
    """A group inside a transaction."""

    def _child(self, name: str) -> str:
        return name if name.startswith("/") else f"{self.name.rstrip('/')}/{name}"

    def __getitem__(self, name: str) -> TxDataset | TxGroup:
        return self._tx[self._child(name)]

    def __contains__(self, name: str) -> bool:
        return self._child(name) in self._tx

    def __delitem__(self, name: str) -> None:
        del self._tx[self._child(name)]

    def keys(self) -> list[str]:
        return [k for k in self._tx._f[self.name].keys() if not (self.name == ROOT and k == ".h5vc")]

    def create_group(self, name: str) -> TxGroup:
        return self._tx.create_group(self._child(name))

    def require_group(self, name: str) -> TxGroup:
        return self._tx.require_group(self._child(name))

    def create_dataset(self, name: str, data: Any = None, **kwargs: Any) -> TxDataset:
        return self._tx.create_dataset(self._child(name), data, **kwargs)


class TxDataset(_TxObject):
    """A dataset inside a transaction: read like h5py, write with append / [] / resize."""

    @property
    def _ds(self) -> h5py.Dataset:
        return self._tx._obj(self.name)

    @property
    def shape(self) -> tuple[int, ...] | None:
        return self._ds.shape

    @property
    def dtype(self) -> np.dtype:
        return self._ds.dtype

    def __len__(self) -> int:
        return len(self._ds)

    def __getitem__(self, key: Any) -> Any:
        return self._ds[key]

    def append(self, rows: Any) -> None:
        """Append rows along axis 0 (a single row is accepted too)."""
        tx = self._tx
        tx._require_open()
        p = self.name
        ds = self._ds
        shape = ds.shape
        tx._check_dataset(p, shape)
        if shape is None or shape == ():
            raise InvalidInputError(f"{p} is scalar or empty and has no rows to append to")
        arr = rows if isinstance(rows, np.ndarray) else np.asarray(rows)
        if (arr.ndim == len(shape) - 1 and arr.dtype.kind != "O") or (arr.ndim == 0 and len(shape) == 1):
            arr = arr[None]
        if arr.ndim != len(shape) or arr.shape[1:] != shape[1:]:
            raise InvalidInputError(
                f"cannot append rows of shape {arr.shape[1:] if arr.ndim else ()} to {p}, whose "
                f"rows have shape {shape[1:]}; reshape or resize the data first"
            )
        k = arr.shape[0]
        if k == 0:
            return
        if arr.nbytes > SPACE_CHECK_BYTES or tx._since_check + arr.nbytes > SPACE_CHECK_BYTES:
            ensure_space(tx._h.path, arr.nbytes + tx._since_check, f"{k:,} rows for {p}",
                         size=tx._f.id.get_filesize())
            tx._since_check = 0
        else:
            tx._since_check += arr.nbytes
        n0 = shape[0]
        chunks, maxshape, dt = tx._layout_of(p, ds)
        if chunks is None or (maxshape[0] is not None and n0 + k > maxshape[0]):
            ds = self._make_resizable()
            chunks = ds.chunks
        own = own_type(ds)  # h5py writes and reads back its own types exactly
        plain = arr.dtype == dt and dt.kind in "biufc" and not dt.metadata and arr.size > 0
        if plain:
            # low-level resize and write: half the cost of Dataset.resize + __setitem__
            arr = np.ascontiguousarray(arr)
            dsid = ds.id
            dsid.set_extent((n0 + k, *shape[1:]))
            fspace = dsid.get_space()
            fspace.select_hyperslab((n0,) + (0,) * (len(shape) - 1), arr.shape)
            dsid.write(h5py.h5s.create_simple(arr.shape), fspace, arr)
        else:
            if arr.dtype == dt and dt.metadata and arr.dtype.metadata != dt.metadata:
                arr = arr.astype(dt)  # h5py needs the metadata (string encoding, enum) to convert
            ds.resize(n0 + k, axis=0)
            try:
                if own or not write_exact(ds, np.s_[n0:n0 + k], arr):
                    ds[n0:n0 + k] = arr
            except (TypeError, ValueError) as e:
                ds.resize(n0, axis=0)
                raise InvalidInputError(f"cannot append to {p}: {e}") from None
        tx._rows[p] = n0 + k
        ranges = _memory_hashes(arr, dt, n0, chunks[0], own)
        tx._appended.setdefault(p, []).extend(ranges)

    def __setitem__(self, key: Any, value: Any) -> None:
        """Overwrite rows in place; committed rows are preserved first."""
        tx = self._tx
        tx._require_open()
        p = self.name
        tx._check_dataset(p)
        node = tx._state.get(p)
        if node is None or node["k"] != "d" or tx._is_recreated(p):
            node = None  # no committed rows live in this dataset
        ds = self._ds
        if ds.shape is None:
            raise InvalidInputError(f"{p} is empty (no dataspace); replace it instead")
        if ds.shape == ():
            lo, hi = 0, 1
        else:
            k0 = key[0] if isinstance(key, tuple) and key else key
            if key is Ellipsis or (isinstance(key, tuple) and key and key[0] is Ellipsis):
                k0 = slice(None)
            rows = np.arange(ds.shape[0])[k0]
            rows = np.atleast_1d(rows)
            if rows.size == 0:
                return
            lo, hi = int(rows.min()), int(rows.max()) + 1
        if node is not None:
            hit = [r for r in node["ranges"] if _overlaps((r[0], r[1]), (lo, hi))]
            preserve_ranges(tx._f, tx._h.layout, p, node["meta"], hit)
            if hit:
                tx._destroying(p)
        try:
            if not write_exact(ds, key, value):
                ds[key] = value
        except (TypeError, ValueError) as e:
            raise InvalidInputError(f"cannot write to {p}: {e}") from None
        tx._rewritten.setdefault(p, []).append((lo, hi))

    def resize(self, n: int) -> None:
        """Set the number of rows; rows cut off are preserved when committed."""
        tx = self._tx
        tx._require_open()
        p = self.name
        tx._check_dataset(p)
        node = tx._state.get(p)
        if node is not None and node["k"] == "d" and not tx._is_recreated(p):
            cut = [r for r in node["ranges"] if r[1] > n]
            preserve_ranges(tx._f, tx._h.layout, p, node["meta"], cut)
            if cut:
                tx._destroying(p)
        tx._structural_touch(p)
        tx._appended.pop(p, None)  # rows may be cut and regrown: hash them from the file
        tx._rows.pop(p, None)
        ds = self._ds
        if ds.shape and n < ds.shape[0]:
            # rows cut now and grown again later hold new content, though a scan sees no change
            tx._rewritten.setdefault(p, []).append((n, ds.shape[0]))
        if ds.chunks is None or (ds.maxshape[0] is not None and n > ds.maxshape[0]):
            ds = self._make_resizable()
        ds.resize(n, axis=0)

    def _make_resizable(self) -> h5py.Dataset:
        """Rewrite a contiguous or size-capped dataset as chunked, unlimited on axis 0."""
        from .engine.objects import create_dataset

        tx = self._tx
        p = self.name
        node = tx._state.get(p)
        tmp = f"{p}.h5vc-converting"
        if node is not None and node["k"] == "d" and not tx._is_recreated(p):
            preserve_ranges(tx._f, tx._h.layout, p, node["meta"], node["ranges"])
        tx._destroying(p, tmp)
        tx._structural_touch(p)
        tx._appended.pop(p, None)
        old = tx._f[p]
        was = "contiguous" if old.chunks is None else f"capped at {old.maxshape[0]} rows"
        attrs = read_attrs(old)
        meta, n = dataset_meta(old)
        meta = dict(meta, chunks=list(_guess_chunks(old.shape, old.dtype)),
                    maxshape=[None, *meta["tail"]])
        # copy slice by slice under a temporary name, then swap: memory stays bounded
        new = create_dataset(tx._f, tmp, meta, n)
        for a, b in row_slices(old, 0, n):
            write_rows(new, a, old[a:b])
        del tx._f[p]
        tx._f.move(tmp, p)
        tx._forget()
        tx._recreated.add(p)
        new = tx._f[p]
        set_attrs(new, attrs, {})
        msg = (f"{p} was {was}; h5vc rewrote it as a chunked dataset, resizable along axis 0, "
               "so that rows can be appended (HDF5 can only resize chunked datasets)")
        tx.notices.append(msg)
        warnings.warn(msg, ConversionWarning, stacklevel=3)
        return new


def _memory_hashes(arr: np.ndarray, dt: np.dtype, n0: int, block: int,
                   own: bool = True) -> list[list[Any]]:
    """Ranges for rows ``arr`` written at row ``n0``, hashed before writing where that is exact.

    Exact for plain rows of the dataset's dtype, and for text in a variable-length UTF-8
    dataset (read back as the same bytes), when the dataset's HDF5 type is h5py's own for its
    dtype (``own``; a null-terminated string reads back without what follows its terminator);
    other rows get None: hashed from the file at commit.
    """
    dkey = dtype_key(dt)  # the dataset's dtype: arr may lack h5py's metadata
    if not own:
        return [[s, e, None] for s, e in split_blocks(n0, n0 + len(arr), block)]
    plain = arr.dtype == dt and not dt.hasobject
    info = h5py.check_string_dtype(dt)
    text = (info is not None and info.length is None and info.encoding == "utf-8"
            and arr.dtype.kind == "O")
    out: list[list[Any]] = []
    for s, e in split_blocks(n0, n0 + len(arr), block):
        part = arr[s - n0:e - n0]
        h = rows_hash(part, dkey) if plain else text_rows_hash(part, dkey) if text else None
        out.append([s, e, h])
    return out


def _guess_chunks(shape: tuple[int, ...], dtype: np.dtype) -> tuple[int, ...]:
    """About 1 MiB per chunk, whole rows: one block is one chunk row."""
    rows = max(1, min(max(shape[0], 1), (1 << 20) // row_bytes(shape[1:], dtype.itemsize)))
    return (rows, *shape[1:])
