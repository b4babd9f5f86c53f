"""Helpers for the adoption corpus (tests/test_corpus.py); no tests here.

- ``compare(a, b)``: an object-by-object comparison of two HDF5 files, h5vc's own ``/.h5vc``
  left out, that reads what HDF5 stores rather than what numpy makes of it: types by H5Tequal,
  values bit for bit (padding bytes and unused bits of a type never count), references by the
  path of their target, chunks as stored when their filter cannot be decoded.
- ``h5dump_ok`` / ``h5dump_error``: does Debian's h5dump (HDF5 1.10) read the file?
- ``roundtrip(src, work)``: the round trip a new user does with the h5vc CLI, each command its
  own process, every outcome checked exactly.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from h5py import h5d, h5s, h5t

try:  # blosc, zstd, lz4, ... : with the filters registered their data can be compared as values
    import hdf5plugin  # noqa: F401
except ImportError:  # pragma: no cover - hdf5plugin is in the test extra
    pass

META = ".h5vc"
AUTHOR = "Corpus Test <corpus@example.org>"
MAX_DIFFERENCES = 60
H5DUMP = shutil.which("h5dump")


# -- what a file holds, in comparable form --------------------------------------------------------

@dataclass(frozen=True)
class Link:
    kind: str  # "hard", "soft", "external" or what h5py calls another kind
    target: tuple[str, ...] = ()  # soft: (path,); external: (file, path)
    same_as: str | None = None  # hard: the path where the same object was reached first

    def __str__(self) -> str:
        if self.kind == "hard":
            return "hard link" + (f" to the object at {self.same_as}" if self.same_as else "")
        return f"{self.kind} link to {':'.join(self.target)}"


@dataclass(eq=False)  # compared by _first_diff, never with ==
class Leaf:
    """Fixed-size values: one row of significant bytes per element (padding masked out)."""
    desc: str
    shape: tuple[int, ...]
    rows: np.ndarray  # uint8, (elements, bytes per element)


@dataclass(eq=False)  # compared by _first_diff, never with ==
class Items:
    """Values that are Python objects (variable-length data, references): one node each."""
    shape: tuple[int, ...]
    items: list[Any]


@dataclass(eq=False)  # compared by _first_diff, never with ==
class Fields:
    """A compound value, field by field (each field a node over the whole array)."""
    shape: tuple[int, ...]
    fields: list[tuple[str, Any]]


@dataclass
class Chunks:
    """The chunks of a dataset whose filter cannot be decoded, as stored: offset -> (mask, bytes)."""
    chunks: dict[tuple[int, ...], tuple[int, bytes]]


@dataclass
class Unreadable:
    """A value HDF5 or h5py cannot read here; only whether it could be read is compared."""
    error: str


def _type_desc(tid: h5t.TypeID) -> str:
    cls = tid.get_class()
    names = {h5t.INTEGER: "integer", h5t.FLOAT: "float", h5t.TIME: "time", h5t.STRING: "string",
             h5t.BITFIELD: "bitfield", h5t.OPAQUE: "opaque", h5t.COMPOUND: "compound",
             h5t.REFERENCE: "reference", h5t.ENUM: "enum", h5t.VLEN: "vlen", h5t.ARRAY: "array"}
    text = f"{names.get(cls, f'class {cls}')} of {tid.get_size()} bytes"
    if isinstance(tid, h5t.TypeAtomicID):
        text += f", order {tid.get_order()}, precision {tid.get_precision()}, offset {tid.get_offset()}"
    if isinstance(tid, h5t.TypeStringID):
        text += f", cset {tid.get_cset()}, strpad {tid.get_strpad()}"
        text += ", variable" if tid.is_variable_str() else ""
    try:
        text += f" ({tid.dtype!r})"
    except Exception:  # no numpy equivalent: the HDF5 description above is all there is
        pass
    if tid.committed():
        text += ", committed"
    return text


def _special(tid: h5t.TypeID) -> bool:
    """Does the type hold variable-length data or references (values are not bytes in place)?"""
    cls = tid.get_class()
    if cls in (h5t.VLEN, h5t.REFERENCE):
        return True
    if cls == h5t.STRING:
        return bool(tid.is_variable_str())
    if cls == h5t.COMPOUND:
        return any(_special(tid.get_member_type(i)) for i in range(tid.get_nmembers()))
    if cls == h5t.ARRAY:
        return _special(tid.get_super())
    return False


def _mask(tid: h5t.TypeID) -> np.ndarray:
    """The bits of a fixed-size type that hold its value: padding of compounds and the unused
    bits of integers and floats (an 80-bit float in 16 bytes) are zero."""
    size = tid.get_size()
    cls = tid.get_class()
    if (cls in (h5t.INTEGER, h5t.FLOAT) and isinstance(tid, h5t.TypeAtomicID)
            and tid.get_order() in (h5t.ORDER_LE, h5t.ORDER_BE)):
        mask = np.zeros(size, np.uint8)
        big = tid.get_order() == h5t.ORDER_BE
        off = tid.get_offset()
        for bit in range(off, off + tid.get_precision()):
            byte = bit // 8
            mask[size - 1 - byte if big else byte] |= 1 << (bit % 8)
        return mask
    if cls == h5t.ENUM:
        return _mask(tid.get_super())
    if cls == h5t.COMPOUND:
        mask = np.zeros(size, np.uint8)
        for i in range(tid.get_nmembers()):
            member = tid.get_member_type(i)
            off = tid.get_member_offset(i)
            mask[off:off + member.get_size()] |= _mask(member)
        return mask
    if cls == h5t.ARRAY:
        return np.tile(_mask(tid.get_super()), int(np.prod(tid.get_array_dims())))
    return np.full(size, 0xFF, np.uint8)  # strings, opaque, bitfields, time: every byte counts


def _raw_leaf(buf: np.ndarray, tid: h5t.TypeID) -> Leaf:
    size = tid.get_size()
    rows = np.ascontiguousarray(buf).view(np.uint8).reshape(-1, size) & _mask(tid)
    return Leaf(_type_desc(tid), tuple(buf.shape), rows)


def _significant_float_bytes(dt: np.dtype) -> int:
    """Bytes of a numpy float that hold its value (x87 long double: 10 of 16)."""
    if dt.kind == "c":
        dt = np.dtype(f"f{dt.itemsize // 2}")
    if dt.itemsize > 8 and np.finfo(np.longdouble).nmant == 63 and dt == np.longdouble:
        return 10
    return dt.itemsize


def _np_leaf(x: np.ndarray) -> Leaf:
    """A numpy array h5py read (a leaf of a variable-length or compound value)."""
    arr = np.ascontiguousarray(x)
    rows = arr.view(np.uint8).reshape(arr.size, arr.dtype.itemsize)
    if arr.dtype.kind in "fc" and arr.dtype.subdtype is None:
        keep = _significant_float_bytes(arr.dtype)
        part = arr.dtype.itemsize // 2 if arr.dtype.kind == "c" else arr.dtype.itemsize
        if keep < part:  # little-endian x87: the value is in the first bytes of each part
            cols = [c for start in range(0, arr.dtype.itemsize, part) for c in range(start, start + keep)]
            rows = rows[:, cols]
    return Leaf(arr.dtype.str, tuple(arr.shape), rows.copy())


def _ref_target(ref: h5py.Reference, f: h5py.File) -> Any:
    if not ref:
        return None
    try:
        return f[ref].name
    except Exception as e:
        return f"<unresolvable reference: {type(e).__name__}>"


def _region(ref: h5py.RegionReference, f: h5py.File) -> Any:
    if not ref:
        return ("regionref", None)
    try:
        space = h5py.h5r.get_region(ref, f.id)
        sel = space.get_select_type()
        if sel == h5s.SEL_HYPERSLABS:
            what: Any = space.get_select_hyper_blocklist().tolist()
        elif sel == h5s.SEL_POINTS:
            what = space.get_select_elem_pointlist().tolist()
        else:
            what = sel
        return ("regionref", f[ref].name, space.shape, what)
    except Exception as e:
        return ("regionref", f"<unresolvable: {type(e).__name__}>")


def _canon(x: Any, f: h5py.File) -> Any:
    """A comparable node for a value h5py read: references become their targets' paths."""
    if isinstance(x, h5py.RegionReference):
        return _region(x, f)
    if isinstance(x, h5py.Reference):
        return ("ref", _ref_target(x, f))
    if isinstance(x, h5py.Empty):
        return ("empty", np.dtype(x.dtype).str)
    if isinstance(x, np.void) and x.dtype.names is not None:
        return Fields((), [(n, _canon(x[n], f)) for n in x.dtype.names])
    if isinstance(x, np.generic):
        return _canon(np.asarray(x), f)
    if isinstance(x, np.ndarray):
        if x.dtype.names is not None:
            return Fields(tuple(x.shape), [(n, _canon(x[n], f)) for n in x.dtype.names])
        if x.dtype.hasobject:
            return Items(tuple(x.shape), [_canon(v, f) for v in x.reshape(-1)])
        return _np_leaf(x)
    if isinstance(x, float):
        return ("float", x.hex())
    if isinstance(x, complex):
        return ("complex", x.real.hex(), x.imag.hex())
    if x is None or isinstance(x, (bytes, str, int, bool)):
        return (type(x).__name__, x)
    return ("other", type(x).__name__, repr(x))


def _show(node: Any) -> str:
    text = repr(node)
    return text if len(text) <= 120 else text[:117] + "..."


def _first_diff(a: Any, b: Any, where: str = "") -> str | None:
    """Where two value nodes first differ, or None when they are equal."""
    at = where or "value"
    if type(a) is not type(b):
        return f"{at}: {_show(a)} in A, {_show(b)} in B"
    if isinstance(a, Leaf):
        if a.shape != b.shape or a.desc != b.desc:
            return f"{at}: shape {a.shape} {a.desc} in A, {b.shape} {b.desc} in B"
        if a.rows.shape != b.rows.shape:
            return f"{at}: {a.rows.shape[1]} bytes per element in A, {b.rows.shape[1]} in B"
        if not np.array_equal(a.rows, b.rows):
            i = int(np.flatnonzero((a.rows != b.rows).any(axis=1))[0])
            index = f"{list(map(int, np.unravel_index(i, a.shape)))}" if a.shape else ""
            return (f"{at}{index}: bytes {a.rows[i].tobytes().hex()} in A, "
                    f"{b.rows[i].tobytes().hex()} in B")
        return None
    if isinstance(a, Items):
        if a.shape != b.shape:
            return f"{at}: shape {a.shape} in A, {b.shape} in B"
        for i, (x, y) in enumerate(zip(a.items, b.items, strict=True)):
            index = list(map(int, np.unravel_index(i, a.shape))) if a.shape else []
            d = _first_diff(x, y, f"{at}{index}")
            if d:
                return d
        return None
    if isinstance(a, Fields):
        if a.shape != b.shape or [n for n, _ in a.fields] != [n for n, _ in b.fields]:
            return f"{at}: fields {[n for n, _ in a.fields]} in A, {[n for n, _ in b.fields]} in B"
        for (name, x), (_, y) in zip(a.fields, b.fields, strict=True):
            d = _first_diff(x, y, f"{at}.{name}")
            if d:
                return d
        return None
    if isinstance(a, Chunks):
        if sorted(a.chunks) != sorted(b.chunks):
            return f"{at}: stored chunks at {sorted(a.chunks)} in A, {sorted(b.chunks)} in B"
        for off in sorted(a.chunks):
            if a.chunks[off] != b.chunks[off]:
                return f"{at}: the stored chunk at {off} differs (filter mask, bytes)"
        return None
    if isinstance(a, Unreadable):
        return None  # neither file can be read here: only readability is compared
    return None if a == b else f"{at}: {_show(a)} in A, {_show(b)} in B"


# -- reading values -------------------------------------------------------------------------------

def _stored_chunks(dsid: h5d.DatasetID) -> Chunks:
    chunks = {}
    for i in range(dsid.get_num_chunks()):
        offset = tuple(dsid.get_chunk_info(i).chunk_offset)
        mask, data = dsid.read_direct_chunk(offset)
        chunks[offset] = (int(mask), bytes(data))
    return Chunks(chunks)


def _value_node(tid: h5t.TypeID, space: h5s.SpaceID, special: Callable[[], Any],
                read: Callable[[np.ndarray], None], undecodable: Callable[[], Any] | None = None
                ) -> Any:
    """A dataset's or attribute's value as a node: bytes in place for fixed-size types (read
    with the file's own type, so types numpy lacks are read too), h5py's reading (``special``)
    for variable-length data and references, ``undecodable()`` when the bytes cannot be read."""
    if space.get_simple_extent_type() == h5s.NULL:
        return ("null dataspace",)
    shape = tuple(space.shape)
    if int(np.prod(shape)) == 0:
        return ("no elements", shape)
    if _special(tid):
        try:
            return special()
        except Exception as e:
            return Unreadable(f"{type(e).__name__}: {e}")
    buf = np.empty(shape, dtype=f"V{tid.get_size()}")
    try:
        read(buf)
    except Exception as e:
        if undecodable is not None:
            try:
                return undecodable()
            except Exception:
                pass
        return Unreadable(f"{type(e).__name__}: {e}")
    return _raw_leaf(buf, tid)


def dataset_values(ds: h5py.Dataset) -> Any:
    """The dataset's values as a node (see _value_node); its stored chunks when the data cannot
    be decoded (a missing filter)."""
    dsid = ds.id
    tid = dsid.get_type()
    chunked = dsid.get_create_plist().get_layout() == h5d.CHUNKED
    return _value_node(tid, dsid.get_space(), lambda: _canon(ds[()], ds.file),
                       lambda buf: dsid.read(h5s.ALL, h5s.ALL, buf, mtype=tid),
                       (lambda: _stored_chunks(dsid)) if chunked else None)


def attribute_value(obj: h5py.HLObject, name: str) -> Any:
    """An attribute's value as a node, by the same rules as a dataset's."""
    aid = obj.attrs.get_id(name)
    tid = aid.get_type()
    return _value_node(tid, aid.get_space(), lambda: _canon(obj.attrs[name], obj.file),
                       lambda buf: aid.read(buf, mtype=tid))


def _fill_value(ds: h5py.Dataset) -> Any:
    try:
        buf = np.zeros((1,), dtype=ds.dtype)
        ds.id.get_create_plist().get_fill_value(buf)
        return _canon(buf, ds.file)  # field by field: the padding of a compound never counts
    except Exception as e:
        return Unreadable(f"{type(e).__name__}: {e}")


def _compare_values(what: str, a: Any, b: Any, out: list[str]) -> None:
    ua, ub = isinstance(a, Unreadable), isinstance(b, Unreadable)
    if ua != ub:
        bad = a if ua else b
        out.append(f"{what}: readable only in {'B' if ua else 'A'} ({bad.error})")
        return
    d = _first_diff(a, b, what)
    if d:
        out.append(d)


# -- the tree -------------------------------------------------------------------------------------

def _tree(f: h5py.File) -> tuple[dict[str, Link], dict[str, Any]]:
    """Every link from the root (sorted names, breadth first) and the objects first reached."""
    root = f["/"]
    links: dict[str, Link] = {"/": Link("hard")}
    objects: dict[str, Any] = {"/": root}
    seen = {h5py.h5o.get_info(root.id).addr: "/"}
    queue = ["/"]
    while queue:
        gpath = queue.pop(0)
        group = objects[gpath]
        for name in sorted(group):
            if gpath == "/" and name == META:
                continue
            path = f"{gpath.rstrip('/')}/{name}"
            link = group.get(name, getlink=True)
            if isinstance(link, h5py.SoftLink):
                links[path] = Link("soft", (link.path,))
            elif isinstance(link, h5py.ExternalLink):
                links[path] = Link("external", (link.filename, link.path))
            elif isinstance(link, h5py.HardLink):
                obj = group[name]
                addr = h5py.h5o.get_info(obj.id).addr
                if addr in seen:
                    links[path] = Link("hard", same_as=seen[addr])
                    continue
                seen[addr] = path
                links[path] = Link("hard")
                objects[path] = obj
                if isinstance(obj, h5py.Group):
                    queue.append(path)
            else:
                links[path] = Link(type(link).__name__)
    return links, objects


def _kind(obj: Any) -> str:
    if isinstance(obj, h5py.Dataset):
        return "dataset"
    if isinstance(obj, h5py.Group):
        return "group"
    if isinstance(obj, h5py.Datatype):
        return "committed datatype"
    return type(obj).__name__


def _creation_order(flags: int) -> str:
    if flags & h5py.h5p.CRT_ORDER_INDEXED:
        return "tracked and indexed"
    return "tracked" if flags & h5py.h5p.CRT_ORDER_TRACKED else "not tracked"


def _compare_attrs(path: str, a: Any, b: Any, out: list[str]) -> None:
    oa, ob = (a.id.get_create_plist().get_attr_creation_order(),
              b.id.get_create_plist().get_attr_creation_order())
    if oa != ob:
        out.append(f"{path}: attribute creation order {_creation_order(oa)} in A, "
                   f"{_creation_order(ob)} in B")
    na, nb = list(a.attrs), list(b.attrs)  # creation order when tracked, else name order
    for name in na:
        if name not in nb:
            out.append(f"{path}@{name}: attribute only in A")
    for name in nb:
        if name not in na:
            out.append(f"{path}@{name}: attribute only in B")
    common = [n for n in na if n in nb]
    if common != [n for n in nb if n in na]:
        out.append(f"{path}: attribute order {common} in A, {[n for n in nb if n in na]} in B")
    for name in common:
        where = f"{path}@{name}"
        ia, ib = a.attrs.get_id(name), b.attrs.get_id(name)
        ta, tb = ia.get_type(), ib.get_type()
        if not ta.equal(tb):
            out.append(f"{where}: type {_type_desc(ta)} in A, {_type_desc(tb)} in B")
            continue
        sa, sb = _space(ia.get_space()), _space(ib.get_space())
        if sa != sb:
            out.append(f"{where}: dataspace {sa} in A, {sb} in B")
            continue
        _compare_values(where, attribute_value(a, name), attribute_value(b, name), out)


def _space(space: h5s.SpaceID) -> tuple[Any, ...]:
    kind = space.get_simple_extent_type()
    if kind == h5s.NULL:
        return ("null",)
    if kind == h5s.SCALAR:
        return ("scalar",)
    dims, maxdims = space.get_simple_extent_dims(), space.get_simple_extent_dims(True)
    return ("simple", tuple(dims), tuple(None if m == h5s.UNLIMITED else m for m in maxdims))


_LAYOUTS = {h5d.COMPACT: "compact", h5d.CONTIGUOUS: "contiguous", h5d.CHUNKED: "chunked",
            h5d.VIRTUAL: "virtual"}
_FILL = {h5d.FILL_VALUE_UNDEFINED: "undefined", h5d.FILL_VALUE_DEFAULT: "default",
         h5d.FILL_VALUE_USER_DEFINED: "user-defined"}


def _storage(dcpl: h5py.h5p.PropDCID) -> dict[str, Any]:
    layout = dcpl.get_layout()
    return {
        "layout": _LAYOUTS.get(layout, layout),
        "chunks": dcpl.get_chunk() if layout == h5d.CHUNKED else None,
        "filters": [tuple(dcpl.get_filter(i)[:3]) for i in range(dcpl.get_nfilters())],
        "fill value": _FILL.get(dcpl.fill_value_defined(), dcpl.fill_value_defined()),
        "fill time": dcpl.get_fill_time(),
        "allocation time": dcpl.get_alloc_time(),
        "external storage": [dcpl.get_external(i) for i in range(dcpl.get_external_count())],
    }


def _compare_dataset(path: str, a: h5py.Dataset, b: h5py.Dataset, out: list[str]) -> None:
    ta, tb = a.id.get_type(), b.id.get_type()
    same_type = bool(ta.equal(tb)) and ta.committed() == tb.committed()
    if not same_type:
        out.append(f"{path}: type {_type_desc(ta)} in A, {_type_desc(tb)} in B")
    sa, sb = _space(a.id.get_space()), _space(b.id.get_space())
    if sa != sb:
        out.append(f"{path}: dataspace (shape, maxshape) {sa} in A, {sb} in B")
    pa, pb = _storage(a.id.get_create_plist()), _storage(b.id.get_create_plist())
    for key in pa:
        if pa[key] != pb[key]:
            out.append(f"{path}: {key} {pa[key]} in A, {pb[key]} in B")
    if not same_type:
        return  # values of different types are not comparable byte for byte
    if pa["fill value"] == pb["fill value"] != "undefined":
        _compare_values(f"{path} fill value", _fill_value(a), _fill_value(b), out)
    if sa == sb:
        _compare_values(path, dataset_values(a), dataset_values(b), out)


def _compare_object(path: str, a: Any, b: Any, out: list[str]) -> None:
    ka, kb = _kind(a), _kind(b)
    if ka != kb:
        out.append(f"{path}: {ka} in A, {kb} in B")
        return
    _compare_attrs(path, a, b, out)
    if ka == "group":
        la = a.id.get_create_plist().get_link_creation_order()
        lb = b.id.get_create_plist().get_link_creation_order()
        if la != lb:
            out.append(f"{path}: link creation order {_creation_order(la)} in A, "
                       f"{_creation_order(lb)} in B")
        elif la & h5py.h5p.CRT_ORDER_TRACKED:  # h5py and netCDF-C list these links in that order
            na = [n for n in a if not (path == "/" and n == META)]
            nb = [n for n in b if not (path == "/" and n == META)]
            if sorted(na) == sorted(nb) and na != nb:
                out.append(f"{path}: link order {na} in A, {nb} in B")
    elif ka == "committed datatype":
        if not a.id.equal(b.id):
            out.append(f"{path}: type {_type_desc(a.id)} in A, {_type_desc(b.id)} in B")
    elif ka == "dataset":
        _compare_dataset(path, a, b, out)


def _userblock(path: Path, f: h5py.File) -> bytes:
    size = f.userblock_size
    with open(path, "rb") as fh:
        return fh.read(size)


def compare(a: Path, b: Path) -> list[str]:
    """Every difference between the HDF5 files ``a`` and ``b`` (A and B in the messages), the
    group /.h5vc left out; an empty list when they hold the same."""
    out: list[str] = []
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        ua, ub = _userblock(a, fa), _userblock(b, fb)
        if ua != ub:
            out.append(f"userblock: {len(ua)} bytes in A, {len(ub)} in B"
                       + (", different bytes" if len(ua) == len(ub) else ""))
        la, objects_a = _tree(fa)
        lb, objects_b = _tree(fb)
        for path in sorted(set(la) | set(lb)):
            if path not in lb:
                out.append(f"{path}: only in A ({la[path]})")
            elif path not in la:
                out.append(f"{path}: only in B ({lb[path]})")
            elif la[path] != lb[path]:
                out.append(f"{path}: {la[path]} in A, {lb[path]} in B")
            elif path in objects_a and path in objects_b:
                try:
                    _compare_object(path, objects_a[path], objects_b[path], out)
                except Exception as e:  # a comparator failure is reported, never taken as equal
                    out.append(f"{path}: cannot be compared ({type(e).__name__}: {e})")
    if len(out) > MAX_DIFFERENCES:
        out = [*out[:MAX_DIFFERENCES], f"... and {len(out) - MAX_DIFFERENCES} more differences"]
    return out


# -- h5dump -------------------------------------------------------------------------------------

def h5dump_error(path: Path, header_only: bool = False) -> str | None:
    """None when ``h5dump`` (``-H``: the header only) reads the whole file, else its error."""
    if H5DUMP is None:
        raise RuntimeError("h5dump is missing: install Debian's hdf5-tools (scripts/test.sh does)")
    args = [H5DUMP, *(["-H"] if header_only else []), str(path)]
    r = subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                       errors="replace", timeout=300)
    if r.returncode == 0:
        return None
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    return f"exit {r.returncode}: " + (" | ".join(dict.fromkeys(lines[:20])) or "(no message)")


def h5dump_ok(path: Path, header_only: bool = False) -> bool:
    return h5dump_error(path, header_only) is None


# -- the round trip -----------------------------------------------------------------------------

@dataclass
class Problem:
    step: str
    message: str
    differences: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return "\n      ".join([f"{self.step}: {self.message}", *self.differences])


@dataclass
class Outcome:
    """What a round trip did: ``ok``; ``refused`` (``message``: h5vc's one line, the refusal
    itself as it must be); or ``failed``, with the ``problems`` found: a command's error stops
    the round trip, a comparison's differences or h5dump's error do not."""
    file: str
    status: str
    message: str = ""
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def __str__(self) -> str:
        text = f"{self.file}: {self.status}" + (f": {self.message}" if self.message else "")
        return "\n    ".join([text, *map(str, self.problems)])


class _Stop(Exception):
    """A step that failed so that the round trip cannot go on."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def h5vc(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The real CLI, in its own process, as a user runs it in the store's folder."""
    env = {**os.environ, "H5VC_AUTHOR": AUTHOR, "NO_COLOR": "1"}
    env.pop("H5VC_WAIT", None)
    return subprocess.run([sys.executable, "-m", "h5vc", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, errors="replace", timeout=600)


def _stderr(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if any("Traceback" in line for line in lines):
        return " | ".join(lines[-3:])  # the exception, where it was raised
    return " | ".join(lines[:5]) or "(nothing on stderr)"


def _plain_rows(dt: np.dtype, kinds: str = "biufc") -> bool:
    """Plain numbers, or a compound of numbers and fixed-length bytes (no object fields)."""
    if dt.names is not None:
        return all(_plain_rows(dt.fields[n][0], "biufcS") for n in dt.names)
    if dt.subdtype is not None:
        return _plain_rows(dt.subdtype[0], kinds)
    return dt.kind in kinds


def growable_dataset(f: h5py.File) -> h5py.Dataset | None:
    """The first dataset by path that is chunked, unlimited along axis 0, holds at least one
    row of plain numbers or a plain compound, and whose last row h5py reads."""
    names: list[str] = []
    f.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
    for name in sorted(names):
        if name == META or name.startswith(META + "/"):
            continue
        ds = f[name]
        try:
            if (ds.chunks is None or not ds.maxshape or ds.maxshape[0] is not None
                    or ds.shape[0] < 1 or not _plain_rows(ds.dtype)):
                continue
            ds[ds.shape[0] - 1]
        except Exception:  # a type numpy lacks, a filter that is not installed
            continue
        return ds
    return None


def default_edit(f: h5py.File) -> None:
    """What a user's script does next: a root attribute, a new dataset, one row appended."""
    target = growable_dataset(f)
    f.attrs["corpus_edit"] = "yes"
    f.create_dataset("corpus_edit_new", data=np.arange(10, dtype="i4"), chunks=(5,), maxshape=(None,))
    if target is not None:
        n = target.shape[0]
        target.resize(n + 1, axis=0)
        target[n] = target[n - 1]


class _RoundTrip:
    def __init__(self, src: Path, work: Path) -> None:
        self.src = src
        self.folder, self.copies = work / "store", work / "copies"
        self.folder.mkdir(parents=True)
        self.copies.mkdir()
        self.path = self.folder / src.name
        self.problems: list[Problem] = []
        self.full_dump = self.header_dump = False
        self._dumped: tuple[int, int, int] | None = None

    def run(self, step: str, *args: str) -> subprocess.CompletedProcess[str]:
        r = h5vc(*args, cwd=self.folder)
        if r.returncode != 0:
            raise _Stop(Problem(step, f"exit {r.returncode}: {_stderr(r.stderr)}"))
        return r

    def status(self, step: str, clean: bool) -> dict[str, Any]:
        r = self.run(step, "status", "--json")
        try:
            st = json.loads(r.stdout)
        except ValueError:
            raise _Stop(Problem(step, f"status --json printed no JSON: {r.stdout[:200]!r}")) from None
        changes = st.get("changes")
        if clean and not (st.get("clean") is True and changes == []):
            self.problems.append(Problem(step, "status is not clean",
                                         [json.dumps(c)[:300] for c in changes or []][:20]))
        if not clean and (st.get("clean") is not False or not changes):
            self.problems.append(Problem(step, f"status does not show the edit: {json.dumps(st)[:300]}"))
        self.dump(step)
        return st

    def dump(self, step: str) -> None:
        """h5dump after every step: the whole dump must keep working when it read the source,
        else at least ``h5dump -H`` when that did."""
        st = self.path.stat()
        key = (st.st_size, st.st_mtime_ns, st.st_ino)
        if key == self._dumped or not (self.full_dump or self.header_dump):
            return  # the bytes h5dump read last time are still there
        self._dumped = key
        err = h5dump_error(self.path, header_only=not self.full_dump)
        if err is not None:
            kind = "h5dump" if self.full_dump else "h5dump -H"
            self.problems.append(Problem(step, f"{kind} fails (it read the source): {err}"))

    def equal(self, step: str, want: Path, message: str) -> None:
        try:
            diffs = compare(want, self.path)
        except Exception as e:
            raise _Stop(Problem(step, f"h5py cannot compare the file: {type(e).__name__}: {e}")) from None
        if diffs:
            self.problems.append(Problem(step, f"{message} (A: what it must equal, B: the store)", diffs))

    def edit(self, step: str, edit: Callable[[h5py.File], None]) -> None:
        try:
            with h5py.File(self.path, "r+") as f:
                edit(f)
        except Exception as e:
            raise _Stop(Problem(step, f"plain h5py cannot edit the file: {type(e).__name__}: {e}")) from None
        self.dump(step)


def roundtrip(src: Path, work: Path, edit: Callable[[h5py.File], None] | None = None) -> Outcome:
    """Adopt a copy of ``src`` with ``h5vc init``, check that status is clean and the content
    unchanged, edit it with plain h5py (``edit``, else ``default_edit``), check that status
    shows it, commit, check that status is clean, check out the first commit (it must equal
    ``src``) and main again (it must equal the edited file); h5dump after every step.

    The store is alone in its folder (``work/store``), where each command runs and finds it
    as a user's would; copies go to ``work/copies``."""
    rt = _RoundTrip(src, work)
    path = rt.path
    shutil.copyfile(src, path)
    before = sha256(path)
    rt.full_dump = h5dump_ok(path)
    rt.header_dump = rt.full_dump or h5dump_ok(path, header_only=True)
    try:
        r = h5vc("init", path.name, "-m", "adopt", cwd=rt.folder)
        if r.returncode != 0:
            return _refusal(src.name, r, path, before)
        rt.dump("init")
        head = rt.status("status after init", clean=True)["head"]
        rt.equal("init", src, "the adopted file differs from the source")
        rt.edit("edit", edit or default_edit)
        edited = rt.copies / "edited"
        shutil.copyfile(path, edited)
        rt.status("status after edit", clean=False)
        rt.run("commit", "commit", "-m", "edit")
        rt.dump("commit")
        rt.status("status after commit", clean=True)
        rt.run("checkout first commit", "checkout", head)
        rt.dump("checkout first commit")
        rt.equal("checkout first commit", src, "the file differs from the source")
        rt.run("checkout main", "checkout", "main")
        rt.dump("checkout main")
        rt.equal("checkout main", edited, "the file differs from the edited file")
    except _Stop as e:
        rt.problems.append(e.problem)
    except subprocess.TimeoutExpired as e:
        rt.problems.append(Problem("timeout", f"{e.cmd} timed out"))
    return Outcome(src.name, "failed" if rt.problems else "ok", problems=rt.problems)


def _refusal(name: str, r: subprocess.CompletedProcess[str], path: Path, before: str) -> Outcome:
    """``h5vc init`` refused: exit 1, one line on stderr, the file as it was, nothing left."""
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    wrong = []
    if r.returncode != 1:
        wrong.append(f"exit {r.returncode}, not 1")
    if len(lines) != 1:
        wrong.append(f"{len(lines)} lines on stderr, not one")
    if "Traceback" in r.stderr or "unexpected failure" in r.stderr.lower():
        wrong.append("a crash, not a refusal")
    if sha256(path) != before:
        wrong.append("the file was changed")
    left = sorted(p.name for p in path.parent.iterdir() if p != path)
    if left:
        wrong.append(f"left behind: {', '.join(left)}")
    if wrong:
        return Outcome(name, "failed", problems=[Problem("init", f"{'; '.join(wrong)}: {_stderr(r.stderr)}")])
    return Outcome(name, "refused", lines[0].strip())
