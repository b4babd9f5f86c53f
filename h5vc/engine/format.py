"""The layout of ``/.h5vc``: the only module that knows its dataset names.

::

    /.h5vc            attrs: format_version, created_by, live (slot hints, intent),
                      refs.inline, state.inline (copies of the newest slot, when small)
      journal         uint8 stream of commit frames, only ever appended
      refs.0, refs.1  two slots of the refs record: HEAD, branches, tags, the journal length
      state.0, state.1  two slots of the state record: a snapshot of one commit's state
      state.side.0, .1  the pages of a large snapshot, one dataset per slot (see snapshot.py)
      pending.0, .1   two slots: provenance of imports made without a commit (format 3)
      prints.0, .1    two slots: the footprints of the tracked objects, a cache (binary)
      packs/<key>     preserved ranges, appended as rows: one pack per dtype, row shape, filters
      objindex        compound table: content hash -> pack, start, stop

A journal frame is ``payload | id (16 B) | parent (16 B) | parent's frame end (u64) | len (u32) |
b"H5VC"``, so the journal can be read from its end, and history walked parent by parent,
without an index. ``payload`` is the canonical JSON of the commit, and ``id`` its xxh3-128, so
a frame checks itself. A commit appends one frame and nothing else: refs and state are derived
(frames after ``refs.journal_len`` advance HEAD) and are rewritten only by ref operations,
checkout, and now and then to keep the state snapshot close to HEAD.

A record (refs, state, pending) is written into the older of its two slots as ``payload | seq (u64) |
xxh3-64 of payload and seq (u64) | len (u32) | b"H5VR"`` and read from the valid slot with the
highest ``seq``: a write killed halfway leaves the other slot, the previous version, intact.
Format 1 kept refs and state as plain JSON blobs rewritten in place; they are still read, and
replaced by the two slots at the first write.

The newest slot of refs and state is also kept, byte for byte, in a uint8 attribute of
``/.h5vc`` (``<name>.inline``: a u32 length, the slot's bytes, zeros; of a fixed size,
:data:`INLINE_SIZE`, so that it is rewritten in place; length 0 when the slot is larger): an
open reads it with the group it has already opened, where a slot costs a dataset open. It is
used only when it checks itself and its seq is the one ``live`` names; else the slots are read.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import h5py
import numpy as np
import xxhash

from ..crashpoints import crash_point
from ..errors import FormatVersionError, IntegrityError, NotARepositoryError
from .hashing import encode_dtype
from .hdf5lib import create_roomy_group, flush_object
from .rows import as_0d, row_slices, write_rows
from .state import row_bytes
from .undo import write_out

META = ".h5vc"
# 3: provenance in the journal ("sources" changes), the "pending" record; 4: changes that
# record what an object made anew needs (attribute creation order, the file's own HDF5 type,
# fill values that refer to objects; see state.format_needed). A store is made at 3 and raised
# to 4 by the first commit that holds such a change, so that an h5vc that would misread it
# refuses it in one line.
FORMAT_VERSION = 4
CREATE_VERSION = 3
TRAILER = struct.Struct("<16s16sQI4s")
MAGIC = b"H5VC"
JOURNAL_CHUNK = 1 << 12
_READ_ERRORS = (OSError, KeyError, RuntimeError, ValueError)  # what HDF5 raises on bad bytes
REC_TRAILER = struct.Struct("<QQI4s")  # seq, xxh3-64 of payload + seq, payload length, magic
REC_MAGIC = b"H5VR"
RECORD_CHUNK = 1 << 12
SIDE_CHUNK = 1 << 16
# two-slot records; pending: provenance not yet committed; prints: footprints of the tracked
# objects (a cache, see h5vc.engine.footprint: binary, and never needed to read the history)
RECORDS = ("refs", "state", "pending", "prints")
RAW_RECORDS = ("prints",)
INLINE_RECORDS = ("refs", "state")  # copied into an attribute of /.h5vc while small
INLINE_SIZE = {"refs": 4 << 10, "state": 16 << 10}  # bytes of each copy's attribute
INTENT_PATH_BYTES = 16 << 10  # an intent lists its paths up to this size, else "every path"


_CANON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def child(g: h5py.Group, name: str) -> h5py.HLObject | None:
    """``g[name]``; None when no such link; ``BROKEN`` when the link exists and its object
    cannot be opened (a kill while HDF5 flushed a new object can write the link before the
    header). HDF5 can neither delete nor move such a link, so its name is avoided instead."""
    if not g.id.links.exists(name.encode()):
        return None
    try:
        return g[name]
    except _READ_ERRORS:
        return BROKEN


def _append_start(pack: h5py.Dataset) -> int:
    """Where rows appended to ``pack`` begin: its end, or for variable-length rows the next
    chunk boundary. A kill during an append can leave, past the extent of the last chunk,
    references to heap objects that never reached the file; HDF5 frees an element's old value
    before writing it, and freeing such a reference crashes it, so those elements are skipped
    (they stay unreferenced by the index) and appends start in a fresh chunk."""
    n0 = int(pack.shape[0])
    if pack.dtype.hasobject and pack.chunks:
        c = pack.chunks[0]
        n0 = -(-n0 // c) * c
    return n0


BROKEN: Any = object()  # see child()
PACK_SALTS = 8  # names tried for one pack key when earlier ones are broken
PACK_LINKS = 512  # packs the header of /.h5vc/packs has room for (beyond: dense storage)


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


_STR = h5py.string_dtype()


def _attr(obj: h5py.HLObject, name: str, dt: Any) -> Any:
    """Attribute ``name`` of ``obj`` (None when absent), read at the low level as a scalar of
    ``dt``: a third of h5py's generic read, which every open pays. Anything unexpected
    (another type or shape, damage) is read the generic way, which says what it found."""
    try:
        aid = h5py.h5a.open(obj.id, name.encode())
    except KeyError:
        return None
    except Exception:
        return obj.attrs.get(name)
    try:
        if aid.get_space().get_simple_extent_type() != h5py.h5s.SCALAR:
            raise ValueError
        out = np.empty((), dtype=dt)
        aid.read(out)
        return out[()]
    except Exception:
        return obj.attrs.get(name)


class Layout:
    """Read and write the metadata group of one open store."""

    def __init__(self, f: h5py.File) -> None:
        self.f = f
        try:
            # the low-level opens: h5py's generic lookup costs as much again, at every open
            self.g = h5py.Group(h5py.h5g.open(f.id, META.encode()))
        except (KeyError, TypeError, ValueError):
            try:
                self.g = f[META]  # not a group, or damaged: the generic way says what it is
            except KeyError:
                self.g = None  # type: ignore[assignment]
        if self.g is None:
            raise NotARepositoryError(
                f"{f.filename} is an HDF5 file but not an h5vc store; run `h5vc init {f.filename}`"
            ) from None
        try:
            if not isinstance(self.g, h5py.Group):
                raise TypeError(f"/{META} is not a group")
            version = _attr(self.g, "format_version", np.int64)
            if version is None:
                raise KeyError("no format_version")
            version = int(version)
            try:
                self.journal = h5py.Dataset(h5py.h5d.open(self.g.id, b"journal"))
            except (KeyError, TypeError, ValueError):
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
        self.version = version
        self._jlen: int | None = None
        self._obj_index: dict[str, tuple[str, int, int, bool]] | None = None
        self._packs: dict[str, h5py.Dataset] = {}
        # preserved objects whose index rows wait for their pack rows to reach the file
        self._pending: list[tuple[str, list[tuple[str, int, int]], bool]] = []
        self._seq: dict[str, int] = {}  # record name -> sequence number of its newest slot
        self._live: dict[str, Any] | None = None
        self._attr_json: dict[str, Any] = {}  # "remotes", "partial": parsed once per open
        self._last: Frame | None = None  # the newest frame, once read

    @classmethod
    def create(cls, f: h5py.File, created_by: str) -> Layout:
        # creation order tracked, as netCDF-C requires of every group in a file it opens for
        # writing: an adopted netCDF4 file stays writable by the netCDF library
        g = f.create_group(META, track_order=True)
        g.attrs["format_version"] = np.int64(CREATE_VERSION)
        g.attrs["created_by"] = created_by
        g.create_dataset("journal", shape=(0,), maxshape=(None,), dtype=np.uint8,
                         chunks=(JOURNAL_CHUNK,))
        lay = cls(f)
        lay.ensure_containers()
        return lay

    def ensure_containers(self) -> bool:
        """Create ``packs``, ``objindex`` and the record slots if missing (True when it did).
        Made once, at init
        or at a store's first writable open, and flushed by the caller on their own: created
        in the middle of an operation, a kill during its flush could leave a link written
        before the header it points to."""
        links = self.g.id.links
        made = False
        if not links.exists(b"packs"):
            # room for PACK_LINKS packs in the header: a new pack rewrites one block of it
            create_roomy_group(self.g, "packs", links=PACK_LINKS, name_len=16, track_order=True)
            made = True
        if not links.exists(b"objindex"):
            self.g.create_dataset("objindex", shape=(0,), maxshape=(None,), chunks=(1024,),
                                  dtype=OBJINDEX_DTYPE)
            made = True
        for name in RECORDS:
            for i in (0, 1):
                key = f"{name}.{i}"
                if not links.exists(key.encode()):
                    # empty until first written; made here so no operation creates one
                    self.g.create_dataset(key, shape=(0,), maxshape=(None,), dtype=np.uint8,
                                          chunks=(RECORD_CHUNK,))
                    made = True
        return made

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
        if not n:
            return None
        if self._last is None or self._last.end != n:
            self._last = self.frame_at(n)
        return self._last

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
        # low level: a third of h5py's slicing for the small reads every open makes
        dsid = self.journal.id
        fspace = dsid.get_space()
        fspace.select_hyperslab((start,), (stop - start,))
        out = np.empty(stop - start, dtype=np.uint8)
        dsid.read(h5py.h5s.create_simple((stop - start,)), fspace, out)
        return out.tobytes()

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

    def tail_is_sound(self) -> bool:
        """False when the journal ends in a torn frame: bytes whose trailer does not parse.

        A kill while HDF5 was writing a commit can leave the journal longer than the frames
        written into it (zeros, or old bytes of the file). A whole trailer over a payload that
        does not match its id is damage, not a kill: reading that commit says so.
        """
        n = self.journal_len
        if n == 0:
            return True
        if n < TRAILER.size:
            return False
        try:
            self._last = self.frame_at(n)
        except (IntegrityError, *_READ_ERRORS):
            return False  # a whole trailer that cannot be read is as torn as one never written
        return True

    def sound_end(self) -> int:
        """Where the last whole frame ends: the journal without a torn tail (one full read;
        chunk by chunk up to the first unreadable one when a kill left some unwritten)."""
        try:
            data = self.read_journal()
        except _READ_ERRORS:
            parts = []
            for a in range(0, self.journal_len, JOURNAL_CHUNK):
                try:
                    parts.append(self.read_journal(a, min(a + JOURNAL_CHUNK, self.journal_len)))
                except _READ_ERRORS:
                    break
            data = b"".join(parts)
        pos = len(data)
        while True:
            pos = data.rfind(MAGIC, 0, pos)
            if pos < 0:
                return 0
            end = pos + len(MAGIC)
            if end >= TRAILER.size:
                try:
                    fr = self._parse_trailer(data, end, end)
                except IntegrityError:
                    fr = None
                if fr is not None and xxhash.xxh3_128(
                        data[fr.start:fr.start + fr.length]).hexdigest() == fr.id:
                    return end

    def truncate_journal(self, end: int) -> None:
        """Drop journal bytes after ``end`` (a torn frame no command ever reported)."""
        self.journal.id.set_extent((end,))
        self._jlen = end

    def read_payload(self, frame: Frame, data: bytes | None = None, base: int = 0) -> dict:
        if data is not None:
            raw = data[frame.start - base: frame.start - base + frame.length]
        else:
            raw = self.read_journal(frame.start, frame.start + frame.length)
        try:
            if xxhash.xxh3_128(raw).hexdigest() != frame.id:
                raise ValueError
            rec = json.loads(raw)
            if not isinstance(rec, dict) or not isinstance(rec.get("changes"), list):
                raise ValueError
            return rec
        except ValueError:
            raise IntegrityError(
                f"commit {frame.id[:10]} of {self.f.filename} is damaged (its record does not "
                "match its id); see `h5vc verify`, and `h5vc repair` to drop it if it is the newest"
            ) from None

    # -- records (refs, state) and the intent ---------------------------------------------

    def read_record(self, name: str) -> tuple[Any, int]:
        """(value, size in bytes) of record ``name``; (None, 0) when absent.

        The valid slot with the highest sequence number wins; a torn or damaged slot is passed
        over. IntegrityError when slots exist and none is valid.
        """
        hint = self._load_live()["seq"].get(name)
        if hint is not None and name in INLINE_RECORDS:  # its copy, when small: no dataset open
            raw = self._inline_bytes(name)
            if raw is not None:
                got = _parse_record(raw)
                if got is not None and got[0] == int(hint):
                    self._seq[name] = got[0]
                    return got[1], len(raw)
        if hint is not None:  # the slot written last: one low-level read when it is sound
            raw = self._slot_bytes(f"{name}.{int(hint) % 2}")
            if raw is not None:
                got = _parse_record(raw, name in RAW_RECORDS)
                if got is not None and got[0] == int(hint):
                    self._seq[name] = got[0]
                    return got[1], len(raw)
        slots = []
        for i in (0, 1):
            ds = child(self.g, f"{name}.{i}")
            if ds is BROKEN or (ds is not None and not isinstance(ds, h5py.Dataset)):
                slots.append((-1, None))
            elif ds is not None and ds.shape[0]:  # an empty slot was never written
                n = ds.shape[0]
                if n >= REC_TRAILER.size:
                    try:
                        tail = ds[n - REC_TRAILER.size:n].tobytes()
                    except _READ_ERRORS:  # damaged below its header: passed over like torn bytes
                        tail = b""
                    if len(tail) == REC_TRAILER.size:
                        seq, _sum, length, magic = REC_TRAILER.unpack(tail)
                        if magic == REC_MAGIC and length + REC_TRAILER.size == n:
                            slots.append((seq, ds))
                            continue
                slots.append((-1, ds))
        if not slots:
            return self._read_legacy(name) if self.version < 2 else (None, 0)
        if all(ds is None for _seq, ds in slots) and self.version < 2:
            return self._read_legacy(name)
        for seq, ds in sorted(slots, key=lambda t: -t[0]):
            if seq < 0 or ds is None:
                continue
            try:
                raw = ds[()].tobytes()
            except _READ_ERRORS:
                continue
            got = _parse_record(raw, name in RAW_RECORDS)
            if got is None:
                continue
            self._seq[name] = got[0]
            return got[1], len(raw)
        raise IntegrityError(f"/{META}/{name} is damaged in {self.f.filename}")

    def _slot_bytes(self, key: str) -> bytes | None:
        """The bytes of record slot ``key`` read at the low level (h5py's object lookup and
        generic read cost more than the read), or None when it cannot be read so."""
        try:
            dsid = h5py.h5d.open(self.g.id, key.encode())
            n = dsid.shape
            if len(n) != 1 or dsid.dtype != np.uint8:
                return None
            buf = np.empty(n[0], dtype=np.uint8)
            if n[0]:
                dsid.read(h5py.h5s.ALL, h5py.h5s.ALL, buf)
            return buf.tobytes()
        except _READ_ERRORS:
            return None

    def damaged_slots(self) -> list[str]:
        """The records whose newest slot (the one ``live`` names) is damaged while their copy
        still holds them: readable, but one copy short until the record is written again."""
        out = []
        live = self._load_live()["seq"]
        for name in INLINE_RECORDS:
            hint = live.get(name)
            if hint is None:
                continue
            raw = self._slot_bytes(f"{name}.{int(hint) % 2}")
            got = _parse_record(raw) if raw is not None else None
            if got is None or got[0] != int(hint):
                out.append(name)
        return out

    def _inline_bytes(self, name: str) -> bytes | None:
        try:
            aid = h5py.h5a.open(self.g.id, f"{name}.inline".encode())
        except _READ_ERRORS:
            return None
        try:
            if aid.shape != (INLINE_SIZE[name],) or aid.dtype != np.uint8:
                return None
            buf = np.empty(INLINE_SIZE[name], dtype=np.uint8)
            aid.read(buf)
            n = int(buf[:4].view("<u4")[0])
            return buf[4:4 + n].tobytes() if 0 < n <= buf.size - 4 else None
        except _READ_ERRORS:
            return None

    def _write_inline(self, name: str, raw: np.ndarray) -> None:
        """Copy slot bytes ``raw`` into the record's attribute: always of one size, written in
        place (a new attribute at every write would leave the old one's space behind in the
        file); a length of 0 says there is no copy."""
        size = INLINE_SIZE[name]
        buf = np.zeros(size, dtype=np.uint8)
        if raw.size <= size - 4:
            buf[:4] = np.frombuffer(struct.pack("<I", raw.size), dtype=np.uint8)
            buf[4:4 + raw.size] = raw
        key = f"{name}.inline".encode()
        try:
            aid = h5py.h5a.open(self.g.id, key)
            if aid.shape != (size,) or aid.dtype != np.uint8:
                aid = None
                h5py.h5a.delete(self.g.id, key)
        except KeyError:
            aid = None
        if aid is None:
            aid = h5py.h5a.create(self.g.id, key, h5py.h5t.STD_U8LE,
                                  h5py.h5s.create_simple((size,)))
        aid.write(buf)

    def _read_legacy(self, name: str) -> tuple[Any, int]:
        """A format-1 blob: plain JSON rewritten in place."""
        if name not in self.g:
            return None, 0
        raw = self.g[name][()].tobytes()
        try:
            return json.loads(raw), len(raw)
        except ValueError:
            raise IntegrityError(f"/{META}/{name} is damaged in {self.f.filename}") from None

    def write_record(self, name: str, value: Any, side: bytes | None = None) -> int:
        """Write ``value`` into the older slot of record ``name``; returns its size (with
        ``side``'s). ``side``: bytes the value refers to (a paged snapshot's pages), written
        first into the side dataset paired with that slot. IntegrityError, with nothing
        written, when that dataset is damaged."""
        if name not in self._seq:
            try:
                self.read_record(name)
            except IntegrityError:
                pass
        seq = self._seq.get(name, 0) + 1
        if child(self.g, f"{name}.{seq % 2}") is BROKEN:
            seq += 1  # that slot cannot be written again: the other one is rewritten in place
        if side is not None:
            self._write_side(f"{name}.side.{seq % 2}", side)
            crash_point("record.side-written")
        payload = value if name in RAW_RECORDS else canonical_json(value)
        check = xxhash.xxh3_64_intdigest(payload + struct.pack("<Q", seq))
        buf = np.frombuffer(payload + REC_TRAILER.pack(seq, check, len(payload), REC_MAGIC),
                            dtype=np.uint8)
        key = f"{name}.{seq % 2}"
        ds = child(self.g, key)
        if ds is BROKEN or (ds is not None and not isinstance(ds, h5py.Dataset)):
            raise IntegrityError(f"/{META}/{name} is damaged in {self.f.filename}; "
                                 "run `h5vc verify`")
        if ds is not None:
            dsid = ds.id  # low level: h5py's resize and slicing cost more than the write
            if dsid.shape[0] != buf.size:
                dsid.set_extent((buf.size,))
            dsid.write(h5py.h5s.ALL, h5py.h5s.ALL, buf)
        else:
            self.g.create_dataset(key, data=buf, maxshape=(None,), chunks=(RECORD_CHUNK,))
        if name in INLINE_RECORDS:
            self._write_inline(name, buf)
        self._seq[name] = seq
        live = self._load_live()
        live["seq"][name] = seq
        size = int(buf.size) + (len(side) if side is not None else 0)
        if name == "state" and isinstance(value, dict):
            live["state_journal_len"] = value.get("journal_len")
            live["state_bytes"] = size
            live["state_paged"] = "pages" in value
        self._write_live()
        return size

    def _write_side(self, key: str, data: bytes) -> None:
        ds = child(self.g, key)
        if ds is BROKEN or (ds is not None and not (isinstance(ds, h5py.Dataset)
                                                    and ds.dtype == np.uint8 and ds.ndim == 1)):
            raise IntegrityError(f"/{META}/{key} is damaged in {self.f.filename}")
        buf = np.frombuffer(data, dtype=np.uint8)
        if ds is None:
            self.g.create_dataset(key, data=buf, maxshape=(None,), chunks=(SIDE_CHUNK,))
            return
        dsid = ds.id
        if dsid.shape[0] != buf.size:
            dsid.set_extent((buf.size,))
        if buf.size:
            dsid.write(h5py.h5s.ALL, h5py.h5s.ALL, buf)

    def record_seq(self, name: str) -> int | None:
        """The seq of record ``name`` as last read or written."""
        return self._seq.get(name)

    def read_side(self, name: str, seq: int, start: int, length: int) -> bytes | None:
        """``length`` bytes at ``start`` of the side dataset of record ``name``'s slot ``seq``;
        None when they cannot be read."""
        if start < 0 or length < 0:
            return None
        try:
            dsid = h5py.h5d.open(self.g.id, f"{name}.side.{seq % 2}".encode())
            if len(dsid.shape) != 1 or dsid.dtype != np.uint8 or start + length > dsid.shape[0]:
                return None
            buf = np.empty(length, dtype=np.uint8)
            if length:
                space = dsid.get_space()
                space.select_hyperslab((start,), (length,))
                dsid.read(h5py.h5s.create_simple((length,)), space, buf)
            return buf.tobytes()
        except _READ_ERRORS:
            return None

    def drop_legacy(self) -> None:
        """After the first records are written and flushed: format 1 becomes format 2 (and 3
        once it holds provenance)."""
        if self.version < 2:
            for name in ("refs", "state"):
                if name in self.g:
                    del self.g[name]
            self.g.attrs["format_version"] = np.int64(2)
            self.version = 2

    # The ``live`` attribute of /.h5vc: which slot of each record was written last, where the
    # snapshot's commit ends, and the intent of an operation under way. One small checksummed
    # JSON attribute, so that opening a store reads it once.

    def _load_live(self) -> dict[str, Any]:
        if self._live is None:
            live: dict[str, Any] = {"seq": {}, "state_journal_len": None, "intent": None}
            raw = _attr(self.g, "live", _STR)
            if raw is not None:
                if isinstance(raw, bytes):
                    raw = raw.decode("utf-8", "replace")
                text, _, check = str(raw).rpartition("\n")
                try:
                    if xxhash.xxh3_64_hexdigest(text.encode()) != check:
                        raise ValueError
                    value = json.loads(text)
                    if not (isinstance(value, dict) and isinstance(value.get("seq"), dict)):
                        raise ValueError
                    live.update(value)
                except ValueError:
                    # unreadable: no slot hints (both slots are read), and perhaps an intent
                    live["intent"] = {"op": "damaged"}
            self._live = live
        return self._live

    def _write_live(self) -> None:
        text = canonical_json(self._load_live()).decode()
        self.g.attrs["live"] = text + "\n" + xxhash.xxh3_64_hexdigest(text.encode())

    @property
    def snapshot_end(self) -> int | None:
        """Where the snapshot's commit ends in the journal, without reading the snapshot."""
        pos = self._load_live().get("state_journal_len")
        return int(pos) if isinstance(pos, int) else None

    @property
    def snapshot_paged(self) -> bool:
        return self._load_live().get("state_paged") is True

    @property
    def snapshot_bytes(self) -> int:
        n = self._load_live().get("state_bytes")
        return int(n) if isinstance(n, int) else 0

    def read_intent(self) -> dict[str, Any] | None:
        """The operation that was under way when the process stopped, if any.

        ``{"op": "damaged"}`` when the record that would hold it cannot be read: recovery
        then checks every dataset.
        """
        intent = self._load_live().get("intent")
        if intent is not None and not (isinstance(intent, dict)
                                       and isinstance(intent.get("op"), str)):
            return {"op": "damaged"}
        return intent

    @property
    def clean_seal(self) -> int | None:
        """The second of the seal (see :mod:`h5vc.engine.stamp`) that a session knowing the store
        equal to HEAD set as it closed: while the file carries that seal, it still is."""
        value = self._load_live().get("clean")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def set_clean_seal(self, second: int | None) -> None:
        """Record it (or None: not known clean); written only when it changes."""
        live = self._load_live()
        if live.get("clean") != second:
            live["clean"] = second
            self._write_live()

    # Provenance of files imported without a commit (``h5vc add --no-commit``) waits in the
    # "pending" record until the next commit takes it; ``live["pending"]`` says it is there.

    def pending_sources(self) -> list[dict[str, Any]]:
        """The "sources" changes waiting for the next commit."""
        if not self._load_live().get("pending"):
            return []
        try:
            value, _ = self.read_record("pending")
        except IntegrityError:
            return []  # damaged: provenance of uncommitted imports is lost, not history
        if not isinstance(value, list):
            return []
        return [ch for ch in value if isinstance(ch, dict) and ch.get("op") == "sources"
                and isinstance(ch.get("path"), str) and isinstance(ch.get("files"), list)]

    def set_pending_sources(self, changes: list[dict[str, Any]]) -> None:
        live = self._load_live()
        if changes:
            live["pending"] = True
            self.write_record("pending", changes)  # writes live, flag included, once
        elif live.get("pending"):
            live["pending"] = False
            self._write_live()

    def require_version(self, version: int) -> None:
        """Before writing what only this format can read: raise ``format_version``."""
        if self.version < version:
            self.g.attrs["format_version"] = np.int64(version)
            self.version = version

    def _json_attr(self, name: str) -> Any:
        """The JSON attribute ``name`` of ``/.h5vc``, parsed once (None when absent): the file
        is held open, so only this object changes it."""
        if name not in self._attr_json:
            raw = self.g.attrs.get(name)
            try:
                self._attr_json[name] = None if raw is None else json.loads(raw)
            except (ValueError, TypeError):
                self._attr_json[name] = ValueError
        return self._attr_json[name]

    def _set_json_attr(self, name: str, value: Any) -> None:
        if value is None:
            if name in self.g.attrs:
                del self.g.attrs[name]
        else:
            self.g.attrs[name] = canonical_json(value).decode()
        self._attr_json[name] = json.loads(canonical_json(value)) if value is not None else None

    def remotes(self) -> dict[str, Any]:
        """The remotes configured for this store: ``{"remotes": {name: {"url", "options"}},
        "default": name or None}`` (an attribute of ``/.h5vc``: no credentials, ever)."""
        rec = self._json_attr("remotes")
        if rec is None:
            return {"remotes": {}, "default": None}
        if isinstance(rec, dict) and isinstance(rec.get("remotes"), dict):
            return json.loads(json.dumps(rec))  # a copy: callers edit it
        raise IntegrityError(f"the remotes of {self.f.filename} are damaged; set them again "
                             "with `h5vc remote add`")

    def set_remotes(self, rec: dict[str, Any]) -> None:
        self._set_json_attr("remotes", rec)

    def selection(self) -> list[str] | None:
        """The paths a partial store holds (with their ancestors); None: it holds everything."""
        rec = self._json_attr("partial")
        if rec is None:
            return None
        if isinstance(rec, list) and all(isinstance(p, str) for p in rec):
            return list(rec)
        raise IntegrityError(f"the selection of partial store {self.f.filename} is damaged")

    def set_selection(self, paths: list[str] | None) -> None:
        self._set_json_attr("partial", None if paths is None else sorted(set(paths)))

    def flush_intent(self) -> None:
        """Make the intent reach the file before anything else waiting in HDF5's cache."""
        flush_object(self.g)

    def write_intent(self, intent: dict[str, Any]) -> None:
        paths = intent.get("paths")
        if paths is not None and sum(len(p) + 3 for p in paths) > INTENT_PATH_BYTES:
            intent = dict(intent, paths=None)  # too many to list: recovery checks every path
        self._load_live()["intent"] = intent
        self._write_live()

    def clear_intent(self) -> None:
        live = self._load_live()
        if live.get("intent") is not None:
            live["intent"] = None
            self._write_live()

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
                    if len(h) == 32 and 0 <= a <= b:  # a row never written (a kill) is skipped
                        idx[h.decode("ascii", "replace")] = (pk.decode("ascii", "replace"), a, b,
                                                             bool(sc))
            self._obj_index = idx
        return self._obj_index

    def has_object(self, h: str) -> bool:
        return h in self._load_object_index()

    def _pack(self, key: str) -> h5py.Dataset:
        ds = self._packs.get(key)
        if ds is None:
            try:
                ds = self._packs[key] = self.g["packs"][key]
            except KeyError:
                raise IntegrityError(
                    f"/{META}/packs/{key} is missing in {self.f.filename}; run `h5vc verify`"
                ) from None
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

        tail = tuple(rows.shape[1:])
        if dtype.subdtype is not None and not scalar:  # numpy spreads a sub-array over axes
            sub = tuple(dtype.subdtype[1])
            if len(tail) >= len(sub) and tail[len(tail) - len(sub):] == sub:
                tail = tail[:len(tail) - len(sub)]
        key, pack = self._pack_for(dtype, tail, filters, block_rows)
        n0 = _append_start(pack)
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

        if h in self._load_object_index():
            return 0
        key, pack = self._pack_for(src.dtype, tuple(src.shape[1:]), filters, block_rows)
        n0 = _append_start(pack)
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
        base = canonical_json([encode_dtype(dtype), list(tail), sorted(filters.items())])
        packs = self.g["packs"] if "packs" in self.g else create_roomy_group(
            self.g, "packs", links=PACK_LINKS, name_len=16, track_order=True)
        for salt in range(PACK_SALTS):
            key = xxhash.xxh3_64_hexdigest(base + (b"#%d" % salt if salt else b""))
            got = child(packs, key)
            if got is BROKEN:
                continue  # a pack left half-made by a kill: the next name is used
            if got is None:
                chunk = max(1, min(block_rows, (1 << 22) // row_bytes(tail, dtype.itemsize)))
                kw = dict(filters) if filters else {}
                packs.create_dataset(key, shape=(0, *tail), maxshape=(None, *tail),
                                     chunks=(chunk, *tail), dtype=dtype, **kw)
            return key, self._pack(key)
        raise IntegrityError(f"/{META}/packs in {self.f.filename} is damaged; run `h5vc verify`")

    def _index_objects(self, key: str, entries: list[tuple[str, int, int]], scalar: bool) -> None:
        """Known at once in memory; written to ``objindex`` by :meth:`sync`, after the rows."""
        self._pending.append((key, entries, scalar))
        index = self._load_object_index()
        for h, a, b in entries:
            index[h] = (key, a, b, scalar)

    @property
    def unsynced(self) -> bool:
        """True when preserved rows are not yet in the file's index (call :meth:`sync`)."""
        return bool(self._pending)

    def sync(self) -> None:
        """Flush, so preserved rows reach the file before anything that relies on them.

        Pack rows are flushed first and their index rows only then (and flushed again), so
        a kill can never leave an index row pointing at rows that were not written.
        """
        if self._pending:
            # a step, not a checkpoint, on a journaled store (see h5vc.engine.undo)
            write_out(self.f)
            crash_point("objects.rows-flushed")
            rec = np.array([(h.encode(), key.encode(), a, b, scalar)
                            for key, entries, scalar in self._pending for h, a, b in entries],
                           dtype=OBJINDEX_DTYPE)
            if "objindex" not in self.g:
                self.g.create_dataset("objindex", shape=(0,), maxshape=(None,), chunks=(1024,),
                                      dtype=OBJINDEX_DTYPE)
            oi = self.g["objindex"]
            m = oi.shape[0]
            oi.resize(m + len(rec), axis=0)
            oi[m:] = rec
            self._pending.clear()
        self.f.flush()

    def read_object(self, h: str, out: np.ndarray | None = None) -> np.ndarray:
        """The rows of object ``h``; into ``out`` (a view of the right shape) when given."""
        key, a, b, scalar = self._where(h)
        pack = self._pack(key)
        if scalar:
            return as_0d(pack[a], pack.dtype)
        if out is not None and not pack.dtype.hasobject and out.flags.c_contiguous \
                and pack.dtype.subdtype is None:  # (h5py cannot read a sub-array type directly)
            pack.read_direct(out, np.s_[a:b])
            return out
        return pack[a:b]


def _parse_record(raw: bytes, binary: bool = False) -> tuple[int, Any] | None:
    """(seq, value) of a record slot's bytes, or None when they are torn or damaged; the value
    is the payload itself for a ``binary`` record, else its JSON."""
    if len(raw) < REC_TRAILER.size:
        return None
    seq, check, length, magic = REC_TRAILER.unpack(raw[-REC_TRAILER.size:])
    if magic != REC_MAGIC or length + REC_TRAILER.size != len(raw):
        return None
    payload = raw[:length]
    if xxhash.xxh3_64_intdigest(payload + struct.pack("<Q", seq)) != check:
        return None
    if binary:
        return seq, payload
    try:
        return seq, json.loads(payload)
    except ValueError:
        return None


OBJINDEX_DTYPE = np.dtype([("hash", "S32"), ("pack", "S16"), ("start", "<i8"), ("stop", "<i8"),
                           ("scalar", "u1")])
