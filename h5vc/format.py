"""The layout of ``/.h5vc``: the only module that knows its dataset names.

::

    /.h5vc            attrs: format_version, created_by
      journal         uint8 stream of commit frames, only ever appended
      refs            uint8 JSON blob: HEAD, branches, tags, and the journal length it saw
      state           uint8 JSON blob: a cached snapshot of one commit's tracked state
      objects/<hash>  preserved ranges, one dataset per content hash

A journal frame is ``payload | id (16 bytes) | parent (16 bytes) | len (u32) | b"H5VC"``, so the
journal can be read from its end without an index. ``payload`` is the canonical JSON of the
commit. A commit appends one frame and nothing else: refs and state are derived (frames
after ``refs.journal_len`` advance HEAD) and are rewritten only by ref operations, checkout,
and now and then to keep the state snapshot close to HEAD.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import h5py
import numpy as np

from .errors import FormatVersionError, IntegrityError, NotARepositoryError

META = ".h5vc"
FORMAT_VERSION = 1
TRAILER = struct.Struct("<16s16sI4s")
MAGIC = b"H5VC"
JOURNAL_CHUNK = 1 << 12


def canonical_json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class Frame:
    id: str
    parent: str | None
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
        self._objects: h5py.Group | None = None

    @classmethod
    def create(cls, f: h5py.File, created_by: str) -> Layout:
        g = f.create_group(META)
        g.attrs["format_version"] = np.int64(FORMAT_VERSION)
        g.attrs["created_by"] = created_by
        g.create_dataset("journal", shape=(0,), maxshape=(None,), dtype=np.uint8,
                         chunks=(JOURNAL_CHUNK,))
        g.create_group("objects")
        return cls(f)

    # -- journal --------------------------------------------------------------------------

    @property
    def journal_len(self) -> int:
        return int(self.journal.id.shape[0])

    def append_frame(self, payload: bytes, id_hex: str, parent_hex: str | None) -> int:
        """Append one commit frame; returns the new journal length. One write, low level."""
        trailer = TRAILER.pack(
            bytes.fromhex(id_hex), bytes.fromhex(parent_hex) if parent_hex else b"\0" * 16,
            len(payload), MAGIC,
        )
        buf = np.frombuffer(payload + trailer, dtype=np.uint8)
        dsid = self.journal.id
        n = dsid.shape[0]
        dsid.set_extent((n + buf.size,))
        fspace = dsid.get_space()
        fspace.select_hyperslab((n,), (buf.size,))
        dsid.write(h5py.h5s.create_simple((buf.size,)), fspace, buf)
        return n + buf.size

    def last_frame(self) -> Frame | None:
        """The newest frame, from its trailer alone."""
        n = self.journal_len
        if n == 0:
            return None
        if n < TRAILER.size:
            raise IntegrityError("the h5vc journal is truncated; restore the file from a backup")
        id_b, parent_b, length, magic = TRAILER.unpack(self.read_journal(n - TRAILER.size, n))
        if magic != MAGIC or length > n - TRAILER.size:
            raise IntegrityError("the h5vc journal is damaged; restore the file from a backup")
        return Frame(id_b.hex(), None if parent_b == b"\0" * 16 else parent_b.hex(),
                     n - TRAILER.size - length, length)

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
                raise IntegrityError("the h5vc journal is truncated; restore the file from a backup")
            id_b, parent_b, length, magic = TRAILER.unpack_from(data, end - TRAILER.size)
            start = end - TRAILER.size - length
            if magic != MAGIC or start < 0:
                raise IntegrityError("the h5vc journal is damaged; restore the file from a backup")
            yield Frame(id_b.hex(), None if parent_b == b"\0" * 16 else parent_b.hex(),
                        base + start, length)
            end = start

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
        if name not in self.g:
            return None
        raw = self.g[name][()].tobytes()
        try:
            return json.loads(raw)
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

    @property
    def objects(self) -> h5py.Group:
        if self._objects is None:
            self._objects = self.g.require_group("objects")
        return self._objects

    def has_object(self, h: str) -> bool:
        return h in self.objects

    def put_object(self, h: str, arr: np.ndarray, dtype: np.dtype, filters: dict[str, Any]) -> None:
        if h in self.objects:
            return
        kw: dict[str, Any] = {}
        if arr.ndim and arr.size and filters:
            kw = dict(filters, chunks=True)
        self.objects.create_dataset(h, data=arr, dtype=dtype, **kw)

    def get_object(self, h: str) -> np.ndarray:
        try:
            ds = self.objects[h]
        except KeyError:
            raise IntegrityError(
                f"preserved content {h[:10]} is missing from the store; it may have been "
                "discarded by `checkout --force` or removed by another tool"
            ) from None
        return ds[()]

    def object_hashes(self) -> list[str]:
        return list(self.objects.keys())
