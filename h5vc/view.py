"""Read-only views of any revision, without a checkout: ``repo.at(rev)``.

A view is h5py-like: ``view["/train/cat/images"]`` is a :class:`ViewDataset` with ``shape``,
``dtype``, ``chunks``, ``attrs`` and numpy-style slicing; groups have ``keys``, iteration,
``in``, ``visit`` and ``visititems``. Nothing in the file changes.

Where the rows come from: each committed range of rows (``[start, stop, hash]`` in the
revision's state) is read from the live dataset when HEAD's state holds the same range at the
same place, and from the preserved object of that hash otherwise. Live rows are used as they
are while the repository vouches for them (its seal: nothing else wrote the file since h5vc
did); when it does not, a live range is read whole and checked against its hash, and a range
that no longer matches is read from its preserved copy (or refused, when there is none).
HEAD is asked again at every read, so a view stays correct when HEAD moves (a checkout through
the same repository) after it was made.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

import h5py
import numpy as np

from .engine.chunks import blob_hash, stored_blob
from .engine.hashing import decode_dtype, decode_value, dtype_key, rows_hash
from .engine.objects import blob_rows, preserved_blob
from .engine.rows import read_rows
from .engine.state import State, parent_of
from .errors import IntegrityError, InvalidInputError
from .paths import normalize_path

__all__ = ["ReadSource", "View", "ViewAttrs", "ViewDataset", "ViewGroup"]


class ReadSource(Protocol):
    """What a view reads through, handed to it by the repository: the open file and its
    ``/.h5vc`` layout, HEAD's state now, whether the live rows are vouched for, and how to
    open the same store again elsewhere (a pickled view reopens it read-only)."""

    path: Path
    file: h5py.File
    layout: Any

    @property
    def rows_trusted(self) -> bool: ...
    def head_state(self) -> tuple[str | None, State]: ...
    def reopen(self) -> Callable[..., Any]: ...
    @property
    def has_remote(self) -> bool: ...
    def backup_rows(self, wanted: dict[str, tuple[dict[str, Any], int, int]]
                    ) -> dict[str, np.ndarray]: ...

_RUN_ROWS_GAP = 4  # rows read in one call while the wanted rows fill at least 1/4 of the span


def _child_names(state: State, path: str) -> list[str]:
    """The names in group ``path``, as h5py lists them: in their recorded creation order where
    the group tracks it (``"c"``), by name otherwise."""
    prefix = "/" if path == "/" else path + "/"
    kids = [p for p in state
            if p != path and p.startswith(prefix) and "/" not in p[len(prefix):]]
    kids.sort(key=lambda p: (state[p].get("c", float("inf")), p))
    return [p[len(prefix):] for p in kids]


def _decode_attr(enc: Any) -> Any:
    arr, dt, shape = decode_value(enc)
    if shape is None:
        return h5py.Empty(dt)
    assert arr is not None
    return arr[()] if shape == () else arr


class ViewAttrs(Mapping[str, Any]):
    """The attributes of an object as of the view's revision (values as h5py returns them)."""

    def __init__(self, encoded: dict[str, Any], order: list[str] | None = None) -> None:
        self._enc = encoded
        # as h5py lists them: in their recorded creation order where the object tracks it
        self._names = [n for n in order or () if n in encoded]
        self._names += sorted(n for n in encoded if n not in self._names)

    def __getitem__(self, name: str) -> Any:
        try:
            return _decode_attr(self._enc[name])
        except KeyError:
            raise KeyError(f"no attribute {name!r}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._enc)

    def __repr__(self) -> str:
        return f"<ViewAttrs {self._names}>"


class _Node:
    def __init__(self, view: View, path: str) -> None:
        self._view = view
        self.name = path

    @property
    def _node(self) -> dict[str, Any]:
        return self._view.state[self.name]

    @property
    def attrs(self) -> ViewAttrs:
        return ViewAttrs(self._node["attrs"], self._node.get("ao"))

    @property
    def parent(self) -> ViewGroup:
        return ViewGroup(self._view, parent_of(self.name))


class ViewGroup(_Node):
    """A group as of the view's revision."""

    def _path(self, name: str) -> str:
        exact = name if name.startswith("/") else (
            f"/{name}" if self.name == "/" else f"{self.name}/{name}")
        if exact in self._view.state:
            return exact  # as recorded (HDF5 allows names such as "..", which paths refuse)
        return normalize_path(exact)

    def __getitem__(self, name: str) -> ViewGroup | ViewDataset:
        try:
            path = self._path(name)
        except InvalidInputError:
            raise KeyError(name) from None
        node = self._view.state.get(path)
        if node is None:
            raise KeyError(f"{path} does not exist in commit {self._view.commit[:10]}")
        return ViewDataset(self._view, path) if node["k"] == "d" else ViewGroup(self._view, path)

    def get(self, name: str, default: Any = None) -> Any:
        try:
            return self[name]
        except KeyError:
            return default

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        try:
            return self._path(name) in self._view.state
        except InvalidInputError:
            return False

    def keys(self) -> list[str]:
        return _child_names(self._view.state, self.name)

    def values(self) -> list[ViewGroup | ViewDataset]:
        return [self[k] for k in self.keys()]

    def items(self) -> list[tuple[str, ViewGroup | ViewDataset]]:
        return [(k, self[k]) for k in self.keys()]

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.keys())

    def visititems(self, func: Callable[[str, ViewGroup | ViewDataset], Any]) -> Any:
        """Call ``func(name, obj)`` for every object below this group, names relative to it,
        in h5py's order (each group before what it holds); stops at the first non-None."""
        def walk(group: ViewGroup, prefix: str) -> Any:
            for k in sorted(group.keys()):  # HDF5 visits by name, whatever order is tracked
                obj = group[k]
                got = func(prefix + k, obj)
                if got is not None:
                    return got
                if isinstance(obj, ViewGroup):
                    got = walk(obj, prefix + k + "/")
                    if got is not None:
                        return got
            return None

        return walk(self, "")

    def visit(self, func: Callable[[str], Any]) -> Any:
        return self.visititems(lambda name, _obj: func(name))

    def __repr__(self) -> str:
        return f"<ViewGroup {self.name} ({len(self)} members) at {self._view.commit[:10]}>"


class ViewDataset(_Node):
    """A dataset as of the view's revision: read-only, sliced like an h5py dataset."""

    @property
    def _meta(self) -> dict[str, Any]:
        return self._node["meta"]

    @property
    def dtype(self) -> np.dtype:
        return decode_dtype(self._meta["dtype"])

    @property
    def shape(self) -> tuple[int, ...] | None:
        rank = self._meta["rank"]
        if rank == -1:
            return None
        return () if rank == 0 else (int(self._node["n"]), *self._meta["tail"])

    @property
    def ndim(self) -> int:
        shape = self.shape
        return 0 if shape is None else len(shape)

    @property
    def size(self) -> int:
        shape = self.shape
        return 0 if shape is None else int(np.prod(shape, dtype=np.int64))

    @property
    def chunks(self) -> tuple[int, ...] | None:
        c = self._meta.get("chunks")
        return tuple(c) if c else None

    @property
    def maxshape(self) -> tuple[int | None, ...] | None:
        m = self._meta.get("maxshape")
        return tuple(m) if m else self.shape

    @property
    def compression(self) -> str | None:
        """As h5py names it: "gzip", "lzf", "szip", or None (other filters: see ``filters``)."""
        names = {1: "gzip", 32000: "lzf", 4: "szip"}
        for code, _flags, _values in self._meta.get("filters", []):
            if code in names:
                return names[code]
        return None

    @property
    def filters(self) -> list[tuple[int, int, list[int]]]:
        """The HDF5 filter pipeline: (filter id, flags, parameters) in order."""
        return [(int(c), int(fl), list(v)) for c, fl, v in self._meta.get("filters", [])]

    @property
    def ranges(self) -> list[tuple[int, int, str]]:
        """The committed ranges of rows: (start, stop, content hash)."""
        return [(int(s), int(e), h) for s, e, h in self._node["ranges"]]

    def __len__(self) -> int:
        shape = self.shape
        if not shape:
            raise TypeError("a scalar dataset has no len()")
        return shape[0]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        arr = np.asarray(self[()])
        return arr if dtype is None else arr.astype(dtype)

    def __getitem__(self, key: Any) -> Any:
        shape = self.shape
        if shape is None:
            if key in ((), Ellipsis):
                return h5py.Empty(self.dtype)
            raise ValueError(f"{self.name} is empty (no dataspace): only [()] reads it")
        if shape == ():
            if key not in ((), Ellipsis):
                raise ValueError(f"{self.name} is a scalar dataset: read it with [()]")
            return self._rows(0, 1, scalar=True)
        if not isinstance(key, tuple):
            key = (key,)
        if any(k is Ellipsis for k in key) and key and key[0] is Ellipsis:
            key = (slice(None), *key)  # the rows are all of axis 0
        first, rest = (key[0], key[1:]) if key else (slice(None), ())
        n = shape[0]
        if isinstance(first, (int, np.integer)) and not isinstance(first, bool):
            i = int(first) + n if first < 0 else int(first)
            if not 0 <= i < n:
                raise IndexError(f"index {int(first)} is out of range for axis 0 with size {n}")
            return self._rows(i, i + 1)[(0, *rest)]
        if isinstance(first, slice):
            start, stop, step = first.indices(n)
            if step <= 0:
                raise ValueError("steps must be positive, as in h5py")
            if stop <= start:
                return np.empty((0, *shape[1:]), dtype=self.dtype)[(slice(None), *rest)]
            block = self._rows(start, stop) if step == 1 or (stop - start) <= _RUN_ROWS_GAP * \
                -(-(stop - start) // step) else None
            if block is not None:
                return block[(slice(None, None, step), *rest)]
            return self._take(np.arange(start, stop, step))[(slice(None), *rest)]
        idx = np.asarray(first)
        if idx.dtype == bool:
            if idx.shape != (n,):
                raise IndexError(f"a boolean index must have length {n}")
            idx = np.flatnonzero(idx)
        if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
            raise TypeError("index axis 0 with ints, slices, 1-D integer or boolean arrays, or ...")
        idx = np.where(idx < 0, idx + n, idx)
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            raise IndexError(f"an index is out of range for axis 0 with size {n}")
        return self._take(idx)[(slice(None), *rest)]

    def _take(self, idx: np.ndarray) -> np.ndarray:
        """Rows ``idx`` (any order, repeats allowed), reading runs of nearby rows at once."""
        out = np.empty((idx.size, *self.shape[1:]), dtype=self.dtype)  # type: ignore[index]
        if not idx.size:
            return out
        order = np.argsort(idx, kind="stable")
        srt = idx[order]
        cuts = np.flatnonzero(np.diff(srt) > _RUN_ROWS_GAP) + 1
        for part, pos in zip(np.split(srt, cuts), np.split(order, cuts), strict=True):
            a = int(part[0])
            block = self._rows(a, int(part[-1]) + 1)
            out[pos] = block[part - a]
        return out

    def read(self) -> np.ndarray:
        """Every row (``ds[()]``)."""
        return np.asarray(self[()])

    def _rows(self, start: int, stop: int, scalar: bool = False) -> Any:
        return self._view._read(self.name, start, stop, scalar)

    def __repr__(self) -> str:
        return (f"<ViewDataset {self.name}: shape {self.shape}, type {self.dtype} "
                f"at {self._view.commit[:10]}>")

    def __reduce__(self) -> tuple[Any, ...]:
        # pickled as store path + commit + name: reopened read-only where it is unpickled
        return (self._view.source.reopen(),
                (str(self._view.source.path), self._view.commit, self.name))


class View(ViewGroup):
    """The whole tree of one revision (the root group); see :meth:`Repository.at`."""

    def __init__(self, source: ReadSource, commit: str, state: State) -> None:
        self.source = source
        self.commit = commit
        self.state = state
        self._plans: dict[str, tuple[np.dtype, str, list[int], list[list[Any]], list[int]]] = {}
        self._held: dict[tuple[str, str | None], tuple[set[tuple[Any, ...]], h5py.Dataset | None]] = {}
        self._backup: dict[str, np.ndarray] = {}  # hash -> rows fetched from the remote
        super().__init__(self, "/")

    def __repr__(self) -> str:
        return f"<View of {self.source.path.name} at {self.commit[:10]}>"

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.source.reopen(), (str(self.source.path), self.commit))

    # -- reading rows -----------------------------------------------------------------------

    def _plan(self, path: str) -> tuple[np.dtype, str, list[int], list[list[Any]], list[int]]:
        """Per dataset, once: dtype, its hash key, row shape, ranges and their starts."""
        got = self._plans.get(path)
        if got is None:
            node = self.state[path]
            dt = decode_dtype(node["meta"]["dtype"])
            ranges = node["ranges"]
            got = self._plans[path] = (dt, dtype_key(dt), list(node["meta"]["tail"]), ranges,
                                       [int(r[0]) for r in ranges])
        return got

    def _live(self, path: str) -> tuple[set[tuple[Any, ...]], h5py.Dataset | None]:
        """The ranges of ``path`` that HEAD holds where this revision has them, and the live
        dataset; asked again when HEAD moves."""
        head, live_state = self.source.head_state()
        key = (path, head)
        got = self._held.get(key)
        if got is None:
            live = live_state.get(path)
            held: set[tuple[Any, ...]] = set()
            ds = None
            if live is not None and live["k"] == "d" and live["meta"] == self.state[path]["meta"]:
                held = {tuple(r) for r in live["ranges"]}
                obj = self.source.file.get(path)
                ds = obj if isinstance(obj, h5py.Dataset) else None
            got = self._held[key] = (held, ds)
        return got

    def _read(self, path: str, start: int, stop: int, scalar: bool = False) -> Any:
        value = self.state[path]["meta"].get("value")
        if value is not None:  # a dataset of references: recorded whole, each as its path
            arr, _dt, _shape = decode_value(value)
            assert arr is not None
            return arr[()] if scalar else arr[start:stop]
        dt, dkey, tail, ranges, starts = self._plan(path)
        if self.state[path]["meta"].get("stored"):
            return self._read_stored(path, start, stop, scalar)
        held, ds = self._live(path)
        src = self.source
        trusted = bool(held) and src.rows_trusted
        layout = src.layout
        if scalar:
            (_s, _e, h), = ranges
            if ds is not None and (_s, _e, h) in held:
                value = ds[()]
                if trusted or rows_hash(np.asarray(value, dtype=dt), dkey) == h:
                    return value
            if not layout.has_object(h):
                return self._from_backup(path, _s, _e, h)[()]
            return layout.read_object(h)[()]
        i = max(0, bisect.bisect_right(starts, start) - 1)
        if i < len(ranges) and ranges[i][0] <= start and stop <= ranges[i][1]:
            one = self._one(path, ranges[i], start, stop, held, ds, trusted, dkey)
            if one is not None and one.dtype == dt:
                return one  # within one range: h5py's own array, no copy
        out = np.empty((stop - start, *tail), dtype=dt)
        while i < len(ranges) and ranges[i][0] < stop:
            s, e, h = ranges[i]
            i += 1
            a, b = max(start, s), min(stop, e)
            if a >= b:
                continue
            dest = out[a - start:b - start]
            if h is None:
                raise IntegrityError(f"rows {s}:{e} of {path} at commit {self.commit[:10]} were "
                                     "not recorded; they cannot be read")
            if ds is not None and (s, e, h) in held and ds.shape and ds.shape[0] >= e:
                if trusted:
                    _read_into(ds, a, b, dest)
                    continue
                whole = read_rows(ds, s, e)
                if rows_hash(whole, dkey) == h:
                    dest[...] = whole[a - s:b - s]
                    continue
            if not layout.has_object(h):
                dest[...] = self._from_backup(path, s, e, h)[a - s:b - s]
                continue
            if a == s and b == e:
                got = layout.read_object(h, out=dest)
                if got is not dest:
                    dest[...] = got
            else:
                pack, pa, _pb = layout.locate(h)
                _read_into(pack, pa + a - s, pa + b - s, dest)
        return out


    def blob(self, path: str, r: list[Any]) -> np.ndarray:
        """The stored bytes of range ``r`` of a dataset versioned as stored (see
        :mod:`h5vc.engine.chunks`): live where HEAD holds them unchanged, else preserved."""
        s, e, h = r
        held, ds = self._live(path)
        if ds is not None and (s, e, h) in held:
            try:
                got = stored_blob(ds, s, e)
                if blob_hash(got) == h:
                    return got
            except (OSError, RuntimeError, ValueError):
                pass
        if not self.source.layout.has_object(h):
            raise IntegrityError(f"rows {s}:{e} of {path} as of commit {self.commit[:10]} are no "
                                 "longer in the store (changed outside h5vc before h5vc could "
                                 "preserve them)")
        return preserved_blob(self.source.layout, h)

    def _read_stored(self, path: str, start: int, stop: int, scalar: bool) -> Any:
        dt, _dkey, tail, ranges, starts = self._plan(path)
        meta = self.state[path]["meta"]
        if scalar:
            (r,) = ranges
            return blob_rows(meta, 0, 1, self.blob(path, r), path)[()]
        out = np.empty((stop - start, *tail), dtype=dt)
        i = max(0, bisect.bisect_right(starts, start) - 1)
        while i < len(ranges) and ranges[i][0] < stop:
            s, e, h = ranges[i]
            i += 1
            a, b = max(start, s), min(stop, e)
            if a < b:
                out[a - start:b - start] = blob_rows(meta, s, e, self.blob(path, [s, e, h]),
                                                     path)[a - s:b - s]
        return out

    def _from_backup(self, path: str, s: int, e: int, h: str) -> np.ndarray:
        """Committed rows the store no longer holds, from its default remote (kept for the
        view's life: the store is not written, so this works on one opened read-only)."""
        got = self._backup.get(h)
        if got is None:
            got = self.source.backup_rows({h: (self.state[path]["meta"], s, e)}).get(h)
            if got is None:
                raise IntegrityError(
                    f"rows {s}:{e} of {path} as of commit {self.commit[:10]} are no longer in "
                    "the store (changed outside h5vc before h5vc could preserve them)"
                    + ("" if self.source.has_remote else
                       "; a remote would have kept them: h5vc remote add, h5vc push"))
            self._backup[h] = got
        return got

    def _one(self, path: str, r: list[Any], start: int, stop: int, held: set[tuple[Any, ...]],
             ds: h5py.Dataset | None, trusted: bool, dkey: str) -> np.ndarray | None:
        """Rows start:stop that lie in range ``r``, read as one array: live when vouched for,
        else from the preserved copy; None for what :meth:`_read` checks the long way."""
        s, e, h = r
        if h is None:
            return None
        if ds is not None and (s, e, h) in held and ds.shape and ds.shape[0] >= e:
            return ds[start:stop] if trusted else None
        try:
            pack, pa, _pb = self.source.layout.locate(h)
        except IntegrityError:
            return None  # missing: the long way says so
        return pack[pa + start - s:pa + stop - s]


def _read_into(ds: h5py.Dataset, a: int, b: int, dest: np.ndarray) -> None:
    """Rows a:b of ``ds`` into ``dest``: large reads straight into it (h5py's direct read
    costs more per call but saves a copy)."""
    if (not ds.dtype.hasobject and dest.flags.c_contiguous and ds.dtype == dest.dtype
            and dest.nbytes >= 1 << 20):
        ds.read_direct(dest, np.s_[a:b])
    else:
        dest[...] = ds[a:b]
