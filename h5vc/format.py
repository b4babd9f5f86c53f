"""The layout of ``/.h5vc``: the only module that knows its dataset names.

::

    /.h5vc            attrs: format_version, created_by
      journal         uint8 stream of commit frames, only ever appended
      refs            uint8 JSON blob: HEAD, branches, tags, and the journal length it saw
      state           uint8 JSON blob: a cached snapshot of one commit's tracked state
      packs/<key>     preserved ranges, appended as rows: one pack per dtype, row shape, filters
      objindex        compound table: content hash -> pack, start, stop

A journal frame is ``payload | id (16 B) | parent (16 B) | parent's frame end (u64) | len (u32) |
b"H5VC"``, so the journal can be read from its end, and history walked parent by parent,
without an index. ``payload`` is the canonical JSON of the
commit. A commit appends one frame and nothing else: refs and state are derived (frames
after ``refs.journal_len`` advance HEAD) and are rewritten only by ref operations, checkout,
and now and then to keep the state snapshot close to HEAD.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import xxhash

from .errors import FormatVersionError, IntegrityError, NotARepositoryError
from .hashing import encode_dtype
from .state import row_bytes

META = ".h5vc"
POINTER_SUFFIX = ".h5vc"  # the pointer file beside a store, for git: data.h5 -> data.h5.h5vc


def pointer_path(store: str | os.PathLike[str]) -> Path:
    """The pointer file of ``store``: ``data.h5`` -> ``data.h5.h5vc``."""
    p = Path(store)
    return p.with_name(p.name + POINTER_SUFFIX)

FORMAT_VERSION = 1
TRAILER = struct.Struct("<16s16sQI4s")
MAGIC = b"H5VC"
JOURNAL_CHUNK = 1 << 12


_CANON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_json(obj: Any) -> bytes:
    """Sorted keys, no spaces, UTF-8: the bytes a commit id is computed over."""
    return _CANON.encode(obj).encode()


@dataclass(frozen=True)
class Frame:
    id: str
    parent: str | None
    parent_end: int  # where the parent's frame ends in the journal (0: no parent)
    start: int  # payload offset in the journal
    length: int

    @property
    def end(self) -> int:
        return self.start + self.length + TRAILER.size


class Layout:
    """Read and write the metadata group of one open store."""

    def __init__(self, f: h5py.File) -> None:
        self.f = f
        if META not in f:
            raise NotARepositoryError(
                f"{f.filename} is an HDF5 file but not an h5vc store; run `h5vc init {f.filename}`"
            )
        try:
            self.g = f[META]
            version = int(self.g.attrs["format_version"])
            self.journal = self.g["journal"]
        except (KeyError, TypeError, ValueError) as e:
            raise IntegrityError(
                f"/{META} in {f.filename} is damaged ({e}); restore the file from a backup"
            ) from None
        if version > FORMAT_VERSION:
            raise FormatVersionError(
                f"{f.filename} was written by a newer h5vc (format {version}, this h5vc reads "
                f"up to {FORMAT_VERSION}); upgrade h5vc: pip install -U h5vc"
            )
        self._jlen: int | None = None
        self._obj_index: dict[str, tuple[str, int, int, bool]] | None = None
        self._packs: dict[str, h5py.Dataset] = {}

    @classmethod
    def create(cls, f: h5py.File, created_by: str) -> Layout:
        g = f.create_group(META)
        g.attrs["format_version"] = np.int64(FORMAT_VERSION)
        g.attrs["created_by"] = created_by
        g.create_dataset("journal", shape=(0,), maxshape=(None,), dtype=np.uint8,
                         chunks=(JOURNAL_CHUNK,))
        return cls(f)

    # -- journal --------------------------------------------------------------------------

    @property
    def journal_len(self) -> int:
        # only this object appends while the file is open (HDF5 locks out other writers)
        if self._jlen is None:
            self._jlen = int(self.journal.id.shape[0])
        return self._jlen

    def append_frame(self, payload: bytes, id_hex: str, parent_hex: str | None,
                     parent_end: int) -> int:
        """Append one commit frame; returns the new journal length. One write, low level."""
        trailer = TRAILER.pack(
            bytes.fromhex(id_hex), bytes.fromhex(parent_hex) if parent_hex else b"\0" * 16,
            parent_end, len(payload), MAGIC,
        )
        buf = np.frombuffer(payload + trailer, dtype=np.uint8)
        dsid = self.journal.id
        n = self.journal_len
        dsid.set_extent((n + buf.size,))
        fspace = dsid.get_space()
        fspace.select_hyperslab((n,), (buf.size,))
        dsid.write(h5py.h5s.create_simple((buf.size,)), fspace, buf)
        self._jlen = n + buf.size
        return self._jlen

    def last_frame(self) -> Frame | None:
        """The newest frame, from its trailer alone."""
        n = self.journal_len
        return self.frame_at(n) if n else None

    def frame_at(self, end: int) -> Frame:
        """The frame that ends at journal offset ``end`` (one small read)."""
        if end < TRAILER.size or end > self.journal_len:
            raise IntegrityError("the h5vc journal is truncated; restore the file from a backup")
        return self._parse_trailer(self.read_journal(end - TRAILER.size, end), TRAILER.size, end)

    @staticmethod
    def _parse_trailer(data: bytes, at: int, end: int) -> Frame:
        id_b, parent_b, parent_end, length, magic = TRAILER.unpack_from(data, at - TRAILER.size)
        start = end - TRAILER.size - length
        if magic != MAGIC or start < 0 or parent_end > start:
            raise IntegrityError("the h5vc journal is damaged; restore the file from a backup")
        return Frame(id_b.hex(), None if parent_b == b"\0" * 16 else parent_b.hex(),
                     parent_end, start, length)

    def read_journal(self, start: int = 0, stop: int | None = None) -> bytes:
        stop = self.journal_len if stop is None else stop
        if stop <= start:
            return b""
        return self.journal[start:stop].tobytes()

    @staticmethod
    def frames_backward(data: bytes, base: int = 0) -> Iterator[Frame]:
        """Frames of ``data`` (journal bytes starting at offset ``base``), newest first."""
        end = len(data)
        while end > 0:
            if end < TRAILER.size:
                raise IntegrityError("the h5vc journal is damaged; restore the file from a backup")
            fr = Layout._parse_trailer(data, end, base + end)
            if fr.start < base:
                raise IntegrityError("the h5vc journal is damaged; restore the file from a backup")
            yield fr
            end = fr.start - base

    def read_payload(self, frame: Frame, data: bytes | None = None, base: int = 0) -> dict:
        if data is not None:
            raw = data[frame.start - base: frame.start - base + frame.length]
        else:
            raw = self.read_journal(frame.start, frame.start + frame.length)
        try:
            return json.loads(raw)
        except ValueError:
            raise IntegrityError(
                f"commit {frame.id[:10]} in the h5vc journal is damaged; restore from a backup"
            ) from None

    # -- small JSON blobs (refs, state) -----------------------------------------------------

    def read_blob(self, name: str) -> Any:
        return self.read_blob_sized(name)[0]

    def read_blob_sized(self, name: str) -> tuple[Any, int]:
        """(value, size in bytes) of a JSON blob; (None, 0) when absent."""
        if name not in self.g:
            return None, 0
        raw = self.g[name][()].tobytes()
        try:
            return json.loads(raw), len(raw)
        except ValueError:
            raise IntegrityError(f"/{META}/{name} is damaged; restore the file from a backup") from None

    def write_blob(self, name: str, value: Any) -> None:
        buf = np.frombuffer(canonical_json(value), dtype=np.uint8)
        if name in self.g:
            ds = self.g[name]
            if ds.shape[0] != buf.size:
                ds.resize((buf.size,))
            ds[:] = buf
        else:
            self.g.create_dataset(name, data=buf, maxshape=(None,), chunks=(4096,))

    # -- preserved content -----------------------------------------------------------------
    #
    # Preserved ranges are rows appended to packs: one resizable dataset per (dtype, row
    # shape, filters), so preserving is an append, not a dataset creation per range. The
    # index maps each content hash to (pack, start, stop); a scalar object is one pack row.

    def _load_object_index(self) -> dict[str, tuple[str, int, int, bool]]:
        if self._obj_index is None:
            idx: dict[str, tuple[str, int, int, bool]] = {}
            if "objindex" in self.g:
                rows = self.g["objindex"][()]
                for h, pk, a, b, sc in zip(rows["hash"].tolist(), rows["pack"].tolist(),
                                           rows["start"].tolist(), rows["stop"].tolist(),
                                           rows["scalar"].tolist(), strict=True):
                    idx[h.decode()] = (pk.decode(), a, b, bool(sc))
            self._obj_index = idx
        return self._obj_index

    def has_object(self, h: str) -> bool:
        return h in self._load_object_index()

    def _pack(self, key: str) -> h5py.Dataset:
        ds = self._packs.get(key)
        if ds is None:
            ds = self._packs[key] = self.g["packs"][key]
        return ds

    def put_run(self, arr: np.ndarray, dtype: np.dtype, filters: dict[str, Any],
                block_rows: int, pieces: list[tuple[str, int, int]], *, scalar: bool = False) -> int:
        """Preserve ``pieces`` (hash, first row, end row) of ``arr``; returns rows stored.

        Pieces already stored are skipped; the others are appended to their pack in one write
        when they are contiguous in ``arr``.
        """
        index = self._load_object_index()
        todo = []
        for h, a, b in pieces:
            if h not in index and all(h != t[0] for t in todo):
                todo.append((h, a, b))
        if not todo:
            return 0
        rows = arr.reshape(1) if scalar else arr
        from .scan import write_rows  # scan imports this module

        key, pack = self._pack_for(dtype, tuple(rows.shape[1:]), filters, block_rows)
        n0 = pack.shape[0]
        contiguous = all(todo[i][2] == todo[i + 1][1] for i in range(len(todo) - 1))
        total = sum(b - a for _, a, b in todo)
        pack.resize(n0 + total, axis=0)
        entries = []
        if contiguous:
            write_rows(pack, n0, rows[todo[0][1]:todo[-1][2]])
            base = n0 - todo[0][1]
            entries = [(h, a + base, b + base) for h, a, b in todo]
        else:
            pos = n0
            for h, a, b in todo:
                write_rows(pack, pos, rows[a:b])
                entries.append((h, pos, pos + b - a))
                pos += b - a
        self._index_objects(key, entries, scalar)
        return total

    def put_slices(self, h: str, src: h5py.Dataset, start: int, stop: int, filters: dict[str, Any],
                   block_rows: int) -> int:
        """Preserve rows [start, stop) of ``src`` as object ``h``, copied slice by slice."""
        from .scan import row_slices, write_rows

        if h in self._load_object_index():
            return 0
        key, pack = self._pack_for(src.dtype, tuple(src.shape[1:]), filters, block_rows)
        n0 = pack.shape[0]
        pack.resize(n0 + stop - start, axis=0)
        for a, b in row_slices(src, start, stop):
            write_rows(pack, n0 + a - start, src[a:b])
        self._index_objects(key, [(h, n0, n0 + stop - start)], False)
        return stop - start

    def locate(self, h: str) -> tuple[h5py.Dataset, int, int]:
        """(pack, first row, end row) of object ``h``, for reading it slice by slice."""
        key, a, b, _scalar = self._where(h)
        return self._pack(key), a, b

    def _where(self, h: str) -> tuple[str, int, int, bool]:
        loc = self._load_object_index().get(h)
        if loc is None:
            raise IntegrityError(
                f"preserved content {h[:10]} is missing from the store; it may have been "
                "discarded by `checkout --force` or removed by another tool"
            )
        return loc

    def _pack_for(self, dtype: np.dtype, tail: tuple[int, ...], filters: dict[str, Any],
                  block_rows: int) -> tuple[str, h5py.Dataset]:
        key = xxhash.xxh3_64_hexdigest(canonical_json(
            [encode_dtype(dtype), list(tail), sorted(filters.items())]))
        packs = self.g.require_group("packs")
        if key not in packs:
            chunk = max(1, min(block_rows, (1 << 22) // row_bytes(tail, dtype.itemsize)))
            kw = dict(filters) if filters else {}
            packs.create_dataset(key, shape=(0, *tail), maxshape=(None, *tail),
                                 chunks=(chunk, *tail), dtype=dtype, **kw)
        return key, self._pack(key)

    def _index_objects(self, key: str, entries: list[tuple[str, int, int]], scalar: bool) -> None:
        rec = np.array([(h.encode(), key.encode(), a, b, scalar) for h, a, b in entries],
                       dtype=OBJINDEX_DTYPE)
        if "objindex" not in self.g:
            self.g.create_dataset("objindex", shape=(0,), maxshape=(None,), chunks=(1024,),
                                  dtype=OBJINDEX_DTYPE)
        oi = self.g["objindex"]
        m = oi.shape[0]
        oi.resize(m + len(rec), axis=0)
        oi[m:] = rec
        index = self._load_object_index()
        for h, a, b in entries:
            index[h] = (key, a, b, scalar)

    def read_object(self, h: str, out: np.ndarray | None = None) -> np.ndarray:
        """The rows of object ``h``; into ``out`` (a view of the right shape) when given."""
        key, a, b, scalar = self._where(h)
        pack = self._pack(key)
        if scalar:
            from .scan import as_0d

            return as_0d(pack[a], pack.dtype)
        if out is not None and not pack.dtype.hasobject and out.flags.c_contiguous:
            pack.read_direct(out, np.s_[a:b])
            return out
        return pack[a:b]


OBJINDEX_DTYPE = np.dtype([("hash", "S32"), ("pack", "S16"), ("start", "<i8"), ("stop", "<i8"),
                           ("scalar", "u1")])
