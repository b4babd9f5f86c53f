"""Footprints: the bytes of the file that hold one HDF5 object, found by reading its
structures directly, so that "is this object as it was?" is a hash of those bytes.

An object's footprint is every byte range HDF5 reads to give its content: the chunks of its
object header (messages: datatype, dataspace, layout, filters, fill value, compact
attributes, compact links), its raw data (a contiguous block, or every stored chunk and the
nodes of the version-1 B-tree that indexes them), for a group the symbol table (its B-tree
nodes, symbol nodes and local heap), and the global heap objects that hold the values of its
variable-length attributes. If none of those bytes changed, neither did the object: the same
bytes decode to the same metadata, attributes and rows. Its children are objects of their own,
with their own footprints.

Only structures whose layout is known here are followed; anything else (dense attribute or
link storage in fractal heaps, shared or committed messages, external or virtual storage, the
chunk indexes of the 1.10 format, variable-length or reference data) raises
:class:`Unknown`, and such an object is always checked through HDF5 instead. Nothing is ever
assumed unchanged that its footprint does not prove: a footprint that cannot be read, or reads
differently, only costs a full check of that object.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Container, Sequence
from typing import Any

import xxhash

__all__ = ["Footprints", "Unknown", "digest"]

UNDEF = 0xFFFF_FFFF_FFFF_FFFF
SIGNATURE = b"\x89HDF\r\n\x1a\n"
_Q = struct.Struct("<Q")
_QQ = struct.Struct("<QQ")
_H = struct.Struct("<H")
_I = struct.Struct("<I")
_MAX_CHUNKS = 4096  # header continuation chunks followed before giving up
_MAX_NODES = 1 << 20  # B-tree nodes followed for one object


class Unknown(Exception):
    """The object uses a structure this module does not read: check it through HDF5."""


Extent = tuple[int, int]  # (absolute file offset, length)


def digest(buf: Sequence[int] | bytes | memoryview, extents: Sequence[Extent]) -> bytes:
    """xxh3-128 of the bytes of ``extents`` (in order) in ``buf``; of a short read, too."""
    h = xxhash.xxh3_128()
    for start, length in extents:
        h.update(buf[start:start + length])
        h.update(_Q.pack(length))
    return h.digest()


class Footprints:
    """Reads footprints in ``buf`` (the file's bytes: an mmap or bytes).

    :meth:`of` takes ``vlen_attr``: given an attribute's name, whether its datatype holds
    variable-length data (asked only of compound, array and enum attributes, whose member
    types this module does not decode; HDF5 knows).
    """

    def __init__(self, buf: Sequence[int] | bytes | memoryview) -> None:
        self.buf = buf
        self.base, self.root = self._superblock()
        self._collections: dict[int, dict[int, Extent]] = {}

    # -- the superblock -------------------------------------------------------------------

    def _superblock(self) -> tuple[int, int]:
        buf = self.buf
        at = 0
        while at + 8 <= len(buf) and bytes(buf[at:at + 8]) != SIGNATURE:
            at = 512 if at == 0 else at * 2
        if at + 8 > len(buf):
            raise Unknown("no HDF5 superblock")
        version = buf[at + 8]
        if version in (0, 1):
            if buf[at + 13] != 8 or buf[at + 14] != 8:
                raise Unknown("offsets or lengths of other than 8 bytes")
            pos = at + 24 + (4 if version == 1 else 0)
            base = _Q.unpack_from(buf, pos)[0]
            # the root group's symbol table entry follows the four addresses
            root = _Q.unpack_from(buf, pos + 32 + 8)[0]
            return base, root
        if version in (2, 3):
            if buf[at + 9] != 8 or buf[at + 10] != 8:
                raise Unknown("offsets or lengths of other than 8 bytes")
            base = _Q.unpack_from(buf, at + 12)[0]
            root = _Q.unpack_from(buf, at + 12 + 24)[0]
            return base, root
        raise Unknown(f"superblock version {version}")

    # -- reading --------------------------------------------------------------------------

    def _at(self, addr: int, length: int) -> int:
        """The absolute offset of ``addr``, checked to hold ``length`` bytes."""
        if addr == UNDEF:
            raise Unknown("undefined address")
        pos = self.base + addr
        if pos + length > len(self.buf):
            raise Unknown("an address past the end of the file")
        return pos

    def of(self, addr: int, vlen_attr: Callable[[str], bool] | None = None,
           children: dict[str, int] | None = None,
           holds_refs: Callable[[], bool] | None = None) -> list[Extent]:
        """The footprint of the object whose header is at ``addr`` (a relative address, as
        ``h5py.h5o.get_info(obj.id).addr`` gives it). ``children``, when given, receives the
        name and header address of each hard link of a group."""
        extents: list[Extent] = []
        heap_names: list[tuple[int, int]] = []  # (name offset in the local heap, address)
        heap_data = None
        for mtype, mflags, pos, size in self._messages(addr, extents):
            if mflags & 0x02:
                raise Unknown("a shared message")
            if mtype == 0x0003:  # datatype
                cls = self.buf[pos] & 0x0F
                if cls in (7, 9) or (cls in (6, 10) and holds_refs is not None and holds_refs()):
                    raise Unknown("reference or variable-length data")
            elif mtype == 0x0007:
                raise Unknown("external storage")
            elif mtype == 0x0008:
                self._layout(pos, extents)
            elif mtype == 0x0011:  # symbol table: an old-style group
                btree, heap = _QQ.unpack_from(self.buf, pos)
                self._group_btree(btree, extents, [0], heap_names)
                heap_data = self._local_heap(heap, extents)
            elif mtype == 0x0006 and children is not None:
                self._link(pos, size, children)
            elif mtype in (0x0002, 0x0015):  # link info, attribute info
                self._no_dense(pos, link=mtype == 0x0002)
            elif mtype == 0x000C:
                self._attribute(pos, size, extents, vlen_attr)
        if children is not None and heap_names:
            if heap_data is None:
                raise Unknown("a symbol table without its local heap")
            start, size = heap_data
            for offset, child in heap_names:
                if offset >= size:
                    raise Unknown("a link name outside the local heap")
                end = bytes(self.buf[start + offset:start + size]).find(b"\0")
                if end < 0:
                    raise Unknown("an unterminated link name")
                name = bytes(self.buf[start + offset:start + offset + end])
                children[name.decode("utf-8", "surrogateescape")] = child
        return extents

    def _link(self, pos: int, size: int, children: dict[str, int]) -> None:
        """A link message (a compact new-style group): record a hard link."""
        buf = self.buf
        if buf[pos] != 1:
            raise Unknown(f"link message version {buf[pos]}")
        flags = buf[pos + 1]
        at = pos + 2
        kind = 0
        if flags & 0x08:
            kind = buf[at]
            at += 1
        if flags & 0x04:
            at += 8  # creation order
        if flags & 0x10:
            at += 1  # character set
        width = 1 << (flags & 0x03)
        nlen = int.from_bytes(bytes(buf[at:at + width]), "little")
        at += width
        if at + nlen > pos + size:
            raise Unknown("a link name past its message")
        name = bytes(buf[at:at + nlen]).decode("utf-8", "surrogateescape")
        if kind == 0:
            children[name] = _Q.unpack_from(buf, at + nlen)[0]

    def _messages(self, addr: int, extents: list[Extent]) -> list[tuple[int, int, int, int]]:
        """(type, flags, offset of data, size) of every message, following continuations;
        adds each header chunk to ``extents``."""
        buf = self.buf
        start = self._at(addr, 16)
        out: list[tuple[int, int, int, int]] = []
        if bytes(buf[start:start + 4]) == b"OHDR":
            return self._messages_v2(start, extents)
        if buf[start] != 1:
            raise Unknown(f"object header version {buf[start]}")
        size = _I.unpack_from(buf, start + 8)[0]
        self._at(addr, 16 + size)
        extents.append((start, 16 + size))
        chunks = [(start + 16, size)]
        while chunks:
            pos, size = chunks.pop(0)
            end = pos + size
            while pos + 8 <= end:
                mtype, msize = struct.unpack_from("<HH", buf, pos)
                mflags = buf[pos + 4]
                data = pos + 8
                if data + msize > end:
                    raise Unknown("a message past its header chunk")
                if mtype == 0x0010:
                    c_addr, c_len = _QQ.unpack_from(buf, data)
                    c_pos = self._at(c_addr, c_len)
                    extents.append((c_pos, c_len))
                    chunks.append((c_pos, c_len))
                    if len(extents) > _MAX_CHUNKS:
                        raise Unknown("too many header chunks")
                else:
                    out.append((mtype, mflags, data, msize))
                pos = data + msize
        return out

    def _messages_v2(self, start: int, extents: list[Extent]) -> list[tuple[int, int, int, int]]:
        buf = self.buf
        if buf[start + 4] != 2:
            raise Unknown(f"object header version {buf[start + 4]}")
        flags = buf[start + 5]
        pos = start + 6 + (16 if flags & 0x20 else 0) + (4 if flags & 0x10 else 0)
        width = 1 << (flags & 0x03)
        size0 = int.from_bytes(bytes(buf[pos:pos + width]), "little")
        pos += width
        extents.append((start, pos - start + size0 + 4))  # with the checksum
        if pos + size0 + 4 > len(buf):
            raise Unknown("a header past the end of the file")
        head = 6 if flags & 0x04 else 4  # creation order tracked: 2 more bytes per message
        out: list[tuple[int, int, int, int]] = []
        chunks = [(pos, pos + size0)]
        while chunks:
            pos, end = chunks.pop(0)
            while pos + head <= end:
                mtype = buf[pos]
                msize = _H.unpack_from(buf, pos + 1)[0]
                mflags = buf[pos + 3]
                data = pos + head
                if data + msize > end:
                    raise Unknown("a message past its header chunk")
                if mtype == 0x10:
                    c_addr, c_len = _QQ.unpack_from(buf, data)
                    c_pos = self._at(c_addr, c_len)
                    if bytes(buf[c_pos:c_pos + 4]) != b"OCHK":
                        raise Unknown("a continuation chunk without its signature")
                    extents.append((c_pos, c_len))
                    chunks.append((c_pos + 4, c_pos + c_len - 4))
                    if len(extents) > _MAX_CHUNKS:
                        raise Unknown("too many header chunks")
                else:
                    out.append((mtype, mflags, data, msize))
                pos = data + msize
        return out

    def _no_dense(self, pos: int, link: bool) -> None:
        """Link info and attribute info: refuse dense (fractal heap) storage."""
        flags = self.buf[pos + 1]
        skip = (8 if link else 2) if flags & 0x01 else 0  # the largest creation index
        if _Q.unpack_from(self.buf, pos + 2 + skip)[0] != UNDEF:
            raise Unknown("dense storage in a fractal heap")

    # -- raw data -------------------------------------------------------------------------

    def _layout(self, pos: int, extents: list[Extent]) -> None:
        buf = self.buf
        version = buf[pos]
        if version != 3:
            raise Unknown(f"layout message version {version}")
        cls = buf[pos + 1]
        if cls == 0:
            return  # compact: the data is in the header
        if cls == 1:
            addr, size = _QQ.unpack_from(buf, pos + 2)
            if addr != UNDEF:
                extents.append((self._at(addr, size), size))
            return
        if cls == 2:
            rank1 = buf[pos + 2]
            btree = _Q.unpack_from(buf, pos + 3)[0]
            if btree != UNDEF:
                self._chunk_btree(btree, rank1, extents, [0])
            return
        raise Unknown(f"layout class {cls}")

    def _node(self, addr: int, kind: int, key: int, extents: list[Extent],
              count: list[int]) -> tuple[int, int, int]:
        """(offset, level, entries used) of a version-1 B-tree node of ``kind`` (0: group,
        1: chunks) whose keys are ``key`` bytes long; adds its used bytes to ``extents``."""
        buf = self.buf
        node = self._at(addr, 24)
        if bytes(buf[node:node + 4]) != b"TREE" or buf[node + 4] != kind:
            raise Unknown("an index that is not a version-1 B-tree")
        level = buf[node + 5]
        used = _H.unpack_from(buf, node + 6)[0]
        size = 24 + used * (key + 8) + key
        self._at(addr, size)
        extents.append((node, size))
        count[0] += 1
        if count[0] > _MAX_NODES:
            raise Unknown("too many index nodes")
        return node, level, used

    def _chunk_btree(self, addr: int, rank1: int, extents: list[Extent], count: list[int]) -> None:
        buf = self.buf
        key = 8 + 8 * rank1
        node, level, used = self._node(addr, 1, key, extents, count)
        pos = node + 24
        for _ in range(used):
            nbytes = _I.unpack_from(buf, pos)[0]
            child = _Q.unpack_from(buf, pos + key)[0]
            if level == 0:
                extents.append((self._at(child, nbytes), nbytes))
            else:
                self._chunk_btree(child, rank1, extents, count)
            pos += key + 8

    # -- groups ---------------------------------------------------------------------------

    def _group_btree(self, addr: int, extents: list[Extent], count: list[int],
                     names: list[tuple[int, int]]) -> None:
        buf = self.buf
        node, level, used = self._node(addr, 0, 8, extents, count)
        pos = node + 24
        for _ in range(used):
            child = _Q.unpack_from(buf, pos + 8)[0]
            if level == 0:
                snod = self._at(child, 8)
                if bytes(buf[snod:snod + 4]) != b"SNOD":
                    raise Unknown("a symbol node without its signature")
                n = _H.unpack_from(buf, snod + 6)[0]
                self._at(child, 8 + 40 * n)
                extents.append((snod, 8 + 40 * n))
                for i in range(n):
                    entry = snod + 8 + 40 * i
                    offset, obj = _QQ.unpack_from(buf, entry)
                    if _I.unpack_from(buf, entry + 16)[0] != 2:  # 2: a soft link
                        names.append((offset, obj))
            else:
                self._group_btree(child, extents, count, names)
            pos += 16

    def _local_heap(self, addr: int, extents: list[Extent]) -> Extent:
        buf = self.buf
        pos = self._at(addr, 32)
        if bytes(buf[pos:pos + 4]) != b"HEAP":
            raise Unknown("a local heap without its signature")
        size = _Q.unpack_from(buf, pos + 8)[0]
        data = _Q.unpack_from(buf, pos + 24)[0]
        extents.append((pos, 32))
        extents.append((self._at(data, size), size))
        return extents[-1]

    # -- attributes -----------------------------------------------------------------------

    def _attribute(self, pos: int, size: int, extents: list[Extent],
                   vlen_attr: Callable[[str], bool] | None) -> None:
        buf = self.buf
        version = buf[pos]
        nlen, tlen, slen = struct.unpack_from("<HHH", buf, pos + 2)
        if version == 1:
            def pad(n: int) -> int:
                return (n + 7) & ~7
            flags, at = 0, pos + 8
        elif version in (2, 3):
            def pad(n: int) -> int:
                return n
            flags, at = buf[pos + 1], pos + 8 + (1 if version == 3 else 0)
        else:
            raise Unknown(f"attribute message version {version}")
        if flags & 0x03:
            raise Unknown("a shared attribute datatype or dataspace")
        name = bytes(buf[at:at + nlen]).rstrip(b"\0").decode("utf-8", "replace")
        dtype_at = at + pad(nlen)
        space_at = dtype_at + pad(tlen)
        data_at = space_at + pad(slen)
        cls = buf[dtype_at] & 0x0F
        if cls == 7:
            raise Unknown("a reference attribute")
        if cls in (6, 8, 10):
            if vlen_attr is None or vlen_attr(name):
                raise Unknown("variable-length data inside an attribute's type")
            return
        if cls != 9:
            return  # fixed-size values, all in the header
        n = self._elements(space_at)
        if data_at + 16 * n > pos + size:
            raise Unknown("an attribute's values past its message")
        for i in range(n):
            length, coll = struct.unpack_from("<IQ", buf, data_at + 16 * i)
            index = _I.unpack_from(buf, data_at + 16 * i + 12)[0]
            if coll in (0, UNDEF):
                continue  # an empty or null value: nothing in a heap
            extents.append((self._at(coll, 16), 16))
            extents.append(self._heap_object(coll, index))

    def _elements(self, pos: int) -> int:
        buf = self.buf
        version, rank = buf[pos], buf[pos + 1]
        if version == 1:
            dims = pos + 8
        elif version == 2:
            if buf[pos + 3] == 2:
                return 0  # a null dataspace
            dims = pos + 4
        else:
            raise Unknown(f"dataspace message version {version}")
        n = 1
        for i in range(rank):
            n *= _Q.unpack_from(buf, dims + 8 * i)[0]
        return n

    def _heap_object(self, coll: int, index: int) -> Extent:
        found = self._collections.get(coll)
        if found is None:
            buf = self.buf
            start = self._at(coll, 16)
            if bytes(buf[start:start + 4]) != b"GCOL":
                raise Unknown("a global heap collection without its signature")
            size = _Q.unpack_from(buf, start + 8)[0]
            end = self._at(coll, size) + size
            found = {}
            pos = start + 16
            while pos + 16 <= end:
                idx = _H.unpack_from(buf, pos)[0]
                osize = _Q.unpack_from(buf, pos + 8)[0]
                if idx == 0:
                    break  # the free space: the rest of the collection
                found.setdefault(idx, (pos, 16 + osize))
                pos += 16 + ((osize + 7) & ~7)
            self._collections[coll] = found
        got = found.get(index)
        if got is None:
            raise Unknown("a global heap object that is not in its collection")
        return got


# -- the table of footprints -------------------------------------------------------------------

MAX_EXTENTS = 1 << 14  # an object with more byte ranges than this is checked through HDF5


def _join(parent: str, name: str) -> str:
    return f"/{name}" if parent == "/" else f"{parent}/{name}"


class Table:
    """The footprints of the tracked objects, taken when each equalled commit ``commit``.

    ``entries``: path -> (header address, digest, extents as a flat list of offsets and
    lengths). A path of the commit's state that
    has no entry (a new object, one of a kind :class:`Footprints` cannot read, one with more
    than :data:`MAX_EXTENTS` ranges) is always checked through HDF5.
    """

    MAGIC = b"H5VF\x01"

    def __init__(self, commit: str, root: int,
                 entries: dict[str, tuple[int, bytes, list[int]]] | None = None) -> None:
        self.commit = commit
        self.root = root
        self._entries = entries if entries is not None else {}
        # as loaded: paths, addresses, extent counts, digests, flat extents (lists for the
        # check's loop, arrays for rewriting), and the entries set or dropped since (None)
        self._packed: tuple[list[str], list[int], list[int], bytes, list[int]] | None = None
        self._arrays: tuple[Any, Any, Any] | None = None
        self._over: dict[str, tuple[int, bytes, list[int]] | None] = {}

    @property
    def entries(self) -> dict[str, tuple[int, bytes, list[int]]]:
        """Every entry, unpacked (a check and an update need only the packed form)."""
        if self._packed is not None:
            paths, addr, nx, digests, flat = self._packed
            entries: dict[str, tuple[int, bytes, list[int]]] = {}
            k = 0
            for i, p in enumerate(paths):
                c = 2 * nx[i]
                entries[p] = (addr[i], digests[16 * i:16 * i + 16], flat[k:k + c])
                k += c
            for p, e in self._over.items():
                if e is None:
                    entries.pop(p, None)
                else:
                    entries[p] = e
            self._entries, self._packed, self._arrays, self._over = entries, None, None, {}
        return self._entries

    def paths(self) -> set[str]:
        if self._packed is None:
            return set(self._entries)
        out = set(self._packed[0])
        for p, e in self._over.items():
            if e is None:
                out.discard(p)
            else:
                out.add(p)
        return out

    def addresses(self) -> dict[str, int]:
        if self._packed is None:
            return {p: e[0] for p, e in self._entries.items()}
        out = dict(zip(self._packed[0], self._packed[1], strict=True))
        for p, e in self._over.items():
            if e is None:
                out.pop(p, None)
            else:
                out[p] = e[0]
        return out

    def set(self, path: str, entry: tuple[int, bytes, list[int]] | None) -> None:
        """Set the entry of ``path`` (None: drop it)."""
        if self._packed is not None:
            self._over[path] = entry
        elif entry is None:
            self._entries.pop(path, None)
        else:
            self._entries[path] = entry

    def keep_only(self, wanted: Container[str]) -> None:
        """Drop the entries of paths not in ``wanted``."""
        for p in [p for p in self.paths() if p not in wanted]:
            self.set(p, None)

    # -- storing ----------------------------------------------------------------------------

    def dump(self) -> bytes:
        import numpy as np

        if self._packed is not None and self._arrays is not None:
            return self._dump_packed()
        entries = self.entries
        paths = list(entries)
        addr = np.fromiter((entries[p][0] for p in paths), dtype="<u8", count=len(paths))
        nx = np.fromiter((len(entries[p][2]) // 2 for p in paths), dtype="<u4", count=len(paths))
        ext = np.array([x for p in paths for x in entries[p][2]], dtype="<u8")
        digests = b"".join(entries[p][1] for p in paths)
        return self._encode(paths, addr, nx, digests, ext)

    def _dump_packed(self) -> bytes:
        """The loaded arrays with the few entries changed since spliced in: no unpacking."""
        import numpy as np

        paths, _addr, _nx, digests, _flat = self._packed  # type: ignore[misc]
        addr, nx, flat = self._arrays  # type: ignore[misc]
        over = self._over
        at = [i for i, p in enumerate(paths) if p in over] if over else []
        starts = np.zeros(len(paths) + 1, dtype=np.int64)
        np.cumsum(nx.astype(np.int64) * 2, out=starts[1:])
        out_paths: list[str] = []
        parts: tuple[list[Any], list[Any], list[bytes], list[Any]] = ([], [], [], [])

        def one(p: str, e: tuple[int, bytes, list[int]] | None) -> None:
            if e is not None:
                out_paths.append(p)
                parts[0].append(np.array([e[0]], dtype="<u8"))
                parts[1].append(np.array([len(e[2]) // 2], dtype="<u4"))
                parts[2].append(e[1])
                parts[3].append(np.array(e[2], dtype="<u8"))

        prev = 0
        for i in [*at, len(paths)]:
            if i > prev:
                out_paths.extend(paths[prev:i])
                parts[0].append(addr[prev:i])
                parts[1].append(nx[prev:i])
                parts[2].append(digests[16 * prev:16 * i])
                parts[3].append(flat[starts[prev]:starts[i]])
            if i < len(paths):
                one(paths[i], over[paths[i]])
            prev = i + 1
        present = {paths[i] for i in at}
        for p, e in over.items():
            if p not in present:
                one(p, e)

        def cat(xs: list[Any], dt: str) -> Any:
            return np.concatenate(xs).astype(dt, copy=False) if xs else np.zeros(0, dtype=dt)

        return self._encode(out_paths, cat(parts[0], "<u8"), cat(parts[1], "<u4"),
                            b"".join(parts[2]), cat(parts[3], "<u8"))

    def _encode(self, paths: list[str], addr: Any, nx: Any, digests: bytes, ext: Any) -> bytes:
        import json

        head = json.dumps({"commit": self.commit, "root": self.root, "paths": paths},
                          ensure_ascii=False, separators=(",", ":")).encode()
        return b"".join([self.MAGIC, _Q.pack(len(head)), head, addr.tobytes(), nx.tobytes(),
                         digests, ext.tobytes()])

    @classmethod
    def load(cls, raw: bytes) -> Table | None:
        """The table in ``raw``, or None when it is not one (a damaged table is only a cache
        lost: every object is then checked through HDF5)."""
        import json

        import numpy as np

        try:
            if not raw.startswith(cls.MAGIC):
                return None
            at = len(cls.MAGIC)
            hlen = _Q.unpack_from(raw, at)[0]
            at += 8
            head = json.loads(raw[at:at + hlen])
            at += hlen
            paths = head["paths"]
            n = len(paths)
            addr = np.frombuffer(raw, dtype="<u8", count=n, offset=at)
            at += 8 * n
            nxa = np.frombuffer(raw, dtype="<u4", count=n, offset=at)
            at += 4 * n
            digests = raw[at:at + 16 * n]
            at += 16 * n
            total = int(nxa.sum(dtype=np.int64))
            if at + 16 * total != len(raw) or len(digests) != 16 * n:
                return None
            flat = np.frombuffer(raw, dtype="<u8", count=2 * total, offset=at)
            table = cls(str(head["commit"]), int(head["root"]))
            table._packed = (list(paths), addr.tolist(), nxa.tolist(), digests, flat.tolist())
            table._arrays = (addr, nxa, flat)
            return table
        except (ValueError, KeyError, TypeError, struct.error):
            return None

    # -- checking ---------------------------------------------------------------------------

    def changed(self, buf: Sequence[int] | bytes | memoryview) -> set[str]:
        """The paths whose footprint no longer holds the bytes it held."""
        out = set()
        n = len(buf)
        if self._packed is None or self._over:
            for p, (_addr, dig, ext) in self.entries.items():
                pairs = list(zip(ext[::2], ext[1::2], strict=True))
                if any(s + ln > n for s, ln in pairs) or digest(buf, pairs) != dig:
                    out.add(p)
            return out
        paths, _addr, nx, digests, flat = self._packed
        pack, new = _Q.pack, xxhash.xxh3_128
        k = 0
        for i, p in enumerate(paths):
            h = new()
            end = k + 2 * nx[i]
            while k < end:
                s, ln = flat[k], flat[k + 1]
                if s + ln > n:
                    h.update(b"past the end")
                h.update(buf[s:s + ln])
                h.update(pack(ln))
                k += 2
            if h.digest() != digests[16 * i:16 * i + 16]:
                out.add(p)
        return out

    # -- taking -----------------------------------------------------------------------------

    def take(self, fp: Footprints, paths: Sequence[str] | None,
             vlen_attr: Callable[[str, str], bool],
             links: Callable[[str], dict[str, int] | None],
             locate: Callable[[str], int | None] | None = None,
             holds_refs: Callable[[str], bool] | None = None) -> None:
        """Take the footprints of ``paths`` (every tracked path when None) as they are now;
        paths that cannot be read lose their entry. ``vlen_attr(path, name)``: see
        :meth:`Footprints.of`; ``links(path)``: the hard links of a group whose footprint
        cannot be read (name -> header address, asked of HDF5), None for a dataset;
        ``locate(path)``: its header address asked of HDF5, used for a path whose group is not
        taken again (so that a large parent group is not parsed for one child);
        ``holds_refs(path)``: whether a dataset of a compound or array type holds object
        references somewhere inside (its rows then never vouch for it: a target deleted or
        made anew changes what they mean, not their bytes)."""
        found: dict[str, tuple[int, list[Extent]] | None] = {}
        kids: dict[str, dict[str, int] | None] = {}
        again: set[str] = set()  # the paths asked for

        def visit(path: str, addr: int) -> None:
            ch: dict[str, int] = {}
            try:
                ext = fp.of(addr, lambda name: vlen_attr(path, name), ch,
                            None if holds_refs is None else lambda: holds_refs(path))
                found[path] = (addr, ext) if len(ext) <= MAX_EXTENTS else None
                kids[path] = ch
            except (Unknown, struct.error, IndexError, ValueError, UnicodeError):
                found[path] = None
                ch = links(path) or {}
                kids[path] = ch
            if path == "/":
                ch.pop(".h5vc", None)

        def address(path: str) -> int | None:
            if path == "/":
                return fp.root
            parent, _, name = path.rpartition("/")
            parent = parent or "/"
            if parent not in kids and locate is not None and parent not in again:
                return locate(path)
            if parent not in kids:
                a = address(parent)
                if a is None:
                    return None
                visit(parent, a)
            ch = kids[parent]
            return None if ch is None else ch.get(name)

        if paths is None:
            todo = [("/", fp.root)]
            while todo:
                path, addr = todo.pop()
                visit(path, addr)
                todo.extend((_join(path, n), a) for n, a in (kids[path] or {}).items())
            self._entries, self._packed, self._arrays, self._over = {}, None, None, {}
            wanted: list[str] = list(found)
        else:
            known = self.addresses()
            wanted = list(paths)
            again.update(paths)
            queue = list(paths)
            while queue:
                path = queue.pop()
                if path not in found:
                    a = address(path)
                    if a is None:
                        found[path] = None
                    else:
                        visit(path, a)
                # a child now at another header than its entry names (deleted and made
                # again, moved here) is taken again too, and so on down
                for name, a in (kids.get(path) or {}).items():
                    q = _join(path, name)
                    if q not in found and known.get(q) != a:
                        wanted.append(q)
                        queue.append(q)
        for path in wanted:
            got = found.get(path)
            self.set(path, None if got is None else
                     (got[0], digest(fp.buf, got[1]), [x for e in got[1] for x in e]))
