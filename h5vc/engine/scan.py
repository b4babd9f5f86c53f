"""Read the live store: dataset metadata, attributes, rows; and compare it with a state.

``scan`` finds what differs from a commit's state (metadata only unless ``verify``) and
returns changes whose new ranges still lack hashes; ``materialize`` reads and hashes those
rows. ``status`` shows the first, ``commit`` records the second.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable
from typing import Any

import h5py
import numpy as np

from ..errors import InvalidInputError
from .chunks import BUILTIN_FILTERS, blob_hash, load_plugins, missing_filter, stored_blob
from .format import META
from .hashing import (
    decode_value,
    dtype_key,
    encode_dtype,
    encode_hdf5_type,
    encode_value,
    exact_type,
    has_refs,
    ref_targets,
)
from .hdf5lib import fill_bytes
from .rows import as_0d, live_hash
from .state import ROOT, State, block_rows, is_below, split_blocks

__all__ = ["attr_changes", "attr_order", "create_kwargs", "dataset_meta", "link_order", "live_kinds",
           "materialize", "numpy_dtype", "object_attr_changes", "object_filters", "range_hash",
           "read_attrs", "referrers", "same_attr", "same_attrs", "scan", "scan_objects",
           "scan_suspects", "type_text"]


def ensure_filter(code: int) -> None:
    """Make a third-party HDF5 filter (blosc, zstd, ...) usable: load hdf5plugin if installed."""
    if code not in BUILTIN_FILTERS:
        load_plugins()  # before HDF5 is asked about it (see chunks.load_plugins)


_TYPE_CLASSES = {
    h5py.h5t.INTEGER: "H5T_INTEGER", h5py.h5t.FLOAT: "H5T_FLOAT", h5py.h5t.TIME: "H5T_TIME",
    h5py.h5t.STRING: "H5T_STRING", h5py.h5t.BITFIELD: "H5T_BITFIELD",
    h5py.h5t.OPAQUE: "H5T_OPAQUE", h5py.h5t.COMPOUND: "H5T_COMPOUND",
    h5py.h5t.REFERENCE: "H5T_REFERENCE", h5py.h5t.ENUM: "H5T_ENUM", h5py.h5t.VLEN: "H5T_VLEN",
    h5py.h5t.ARRAY: "H5T_ARRAY",
}


def type_text(tid: Any) -> str:
    """An HDF5 datatype in words, down to the part numpy cannot hold: "H5T_TIME of 8 bytes",
    "H5T_COMPOUND whose field 'when' is H5T_TIME of 4 bytes, big-endian"."""
    cls = tid.get_class()
    name = _TYPE_CLASSES.get(cls, f"HDF5 type class {cls}")
    if cls == h5py.h5t.COMPOUND:
        for i in range(tid.get_nmembers()):
            member = tid.get_member_type(i)
            if _numpy_type(member) is None:
                field = tid.get_member_name(i).decode("utf-8", "replace")
                return f"{name} whose field {field!r} is {type_text(member)}"
        return name
    if cls in (h5py.h5t.ARRAY, h5py.h5t.VLEN):
        return f"{name} of {type_text(tid.get_super())}"
    text = f"{name} of {tid.get_size()} bytes"
    order = getattr(tid, "get_order", None)  # h5py's class for H5T_TIME has none
    if order is not None and cls != h5py.h5t.STRING:
        text += ", big-endian" if order() == h5py.h5t.ORDER_BE else ", little-endian"
    return text


def _numpy_type(tid: Any) -> np.dtype | None:
    try:
        return tid.dtype
    except (TypeError, ValueError):  # no numpy equivalent (H5T_TIME, 128-bit numbers, ...)
        return None


def _not_bytes(tid: Any) -> bool:
    """Whether values of an HDF5 type are more than their bytes: variable-length data and
    references point elsewhere in the file (their bytes mean nothing in another file)."""
    cls = tid.get_class()
    if cls in (h5py.h5t.VLEN, h5py.h5t.REFERENCE):
        return True
    if cls == h5py.h5t.STRING:
        return bool(tid.is_variable_str())
    if cls == h5py.h5t.COMPOUND:
        return any(_not_bytes(tid.get_member_type(i)) for i in range(tid.get_nmembers()))
    if cls == h5py.h5t.ARRAY:
        return _not_bytes(tid.get_super())
    return False


def numpy_dtype(what: str, tid: Any) -> np.dtype | None:
    """The numpy dtype of an HDF5 type; None for a type numpy cannot hold whose values are
    plain bytes (H5T_TIME, 128-bit numbers: versioned as opaque bytes of their size), and
    InvalidInputError naming ``what`` and the type for one that is not."""
    dt = _numpy_type(tid)
    if dt is None and _not_bytes(tid):
        raise InvalidInputError(
            f"{what} has the HDF5 type {type_text(tid)}, which numpy cannot hold, so h5vc "
            "cannot version it; convert it with the program that wrote it (or delete it), "
            "then run the command again")
    return dt


def read_raw(oid: Any, shape: tuple[int, ...]) -> np.ndarray:
    """All values of a dataset or attribute (its id) as bytes of its own HDF5 type."""
    tid = oid.get_type()
    buf = np.empty(shape, dtype=f"V{tid.get_size()}")
    if isinstance(oid, h5py.h5a.AttrID):
        oid.read(buf, mtype=tid)
    else:
        oid.read(h5py.h5s.ALL, h5py.h5s.ALL, buf, mtype=tid)
    return buf


def filter_refusal(ds: h5py.Dataset, missing: tuple[int, str, str], why: str) -> InvalidInputError:
    code, name, fix = missing
    return InvalidInputError(
        f"dataset {ds.name} is compressed with HDF5 filter {code} ({name}), which is not "
        f"available here; {why}; {fix}, then run the command again")


def dataset_meta(ds: h5py.Dataset, recorded: dict[str, Any] | None = None
                 ) -> tuple[dict[str, Any], int]:
    """(meta, rows) of a live dataset; see :mod:`h5vc.engine.state` for what meta holds.

    A dataset whose filter cannot be applied here is versioned as stored (see
    :mod:`h5vc.engine.chunks`); one that ``recorded`` (its meta as committed) says is, stays
    so where the filter is installed, and one committed with decoded rows cannot be compared
    without the filter (InvalidInputError naming it)."""
    shape = ds.shape
    tid = ds.id.get_type()
    dt = numpy_dtype(f"dataset {ds.name}", tid)
    raw = dt is None  # a type numpy cannot hold: versioned as stored bytes
    if raw:
        dt = np.dtype(f"V{tid.get_size()}")
    if shape is None:
        rank, tail, n = -1, [], 0
    elif shape == ():
        rank, tail, n = 0, [], 1
    else:
        rank, tail, n = len(shape), list(shape[1:]), int(shape[0])
    filters = []
    chunks = None
    missing = None
    dcpl = ds.id.get_create_plist() if rank >= 0 else None
    if rank > 0:
        pipeline = [dcpl.get_filter(i) for i in range(dcpl.get_nfilters())]
        for code, flags, values, _name in pipeline:
            ensure_filter(int(code))
            filters.append([int(code), int(flags), [int(v) for v in values]])
        missing = missing_filter(pipeline) if pipeline else None
        chunks = list(ds.chunks) if ds.chunks else None
    try:
        enc_dt = encode_hdf5_type(tid) if raw else encode_dtype(dt)
    except InvalidInputError as e:
        raise InvalidInputError(f"dataset {ds.name}: {e}") from None
    fill = None
    fill_state = dcpl.fill_value_defined() if dcpl is not None else None
    nofill = fill_state == h5py.h5d.FILL_VALUE_UNDEFINED
    if rank >= 0 and raw and not nofill:
        got = fill_bytes(dcpl, tid)
        fill = None if got is None else {"a": base64.b64encode(got).decode()}
    elif rank >= 0 and not dt.hasobject and not nofill:
        fv = ds.fillvalue
        fill = encode_value(np.asarray(fv, dtype=dt), dt, ())["data"]
    meta = {
        "dtype": enc_dt,
        "rank": rank,
        "tail": tail,
        "chunks": chunks,
        "maxshape": None if rank <= 0 else [None if m is None else int(m) for m in ds.maxshape],
        "filters": filters,
        "fill": fill,
    }
    if nofill:  # recorded only then: every other dataset's meta is as it always was
        meta["nofill"] = True
    # a fill value that refers to an object (MATLAB's cell arrays: to /#refs#/a), recorded as
    # its target's path (None: a null reference, or a target no longer there); as below, not
    # for a dataset committed before it was recorded
    if rank >= 0 and dt.hasobject and fill_state == h5py.h5d.FILL_VALUE_USER_DEFINED \
            and tid.get_class() == h5py.h5t.REFERENCE and h5py.check_ref_dtype(dt) is h5py.Reference \
            and (recorded is None or "fill_ref" in recorded):
        meta["fill_ref"] = ref_paths(ds.file)(ds.fillvalue)
    # HDF5's own default fill (zeros, never set): recorded so that a checkout leaves it unset;
    # a dataset committed before this was recorded is compared as it was
    if fill_state == h5py.h5d.FILL_VALUE_DEFAULT and (recorded is None or "fill_default" in recorded):
        meta["fill_default"] = True
    # creation properties h5py would set otherwise, recorded only where they differ from its
    # own (and, as above, not for a dataset committed before they were recorded)
    if rank > 0:
        fill_time = dcpl.get_fill_time()
        if fill_time != h5py.h5d.FILL_TIME_IFSET and (recorded is None or "fill_time" in recorded):
            meta["fill_time"] = int(fill_time)
        if dcpl.get_layout() == h5py.h5d.COMPACT and (recorded is None or "compact" in recorded):
            meta["compact"] = True
    # the file's own HDF5 type where h5py would make another for the dtype (string padding,
    # bitfields, ...), so that a dataset made anew has it; as above, not for a dataset
    # committed before it was recorded
    h5t = None if raw else exact_type(tid, dt)
    if h5t is not None and (recorded is None or "h5t" in recorded):
        meta["h5t"] = h5t
    if raw and rank >= 0:
        meta["stored"] = True
    elif rank > 0 and (missing is not None or (recorded or {}).get("stored")):
        if missing is not None and recorded is not None and not recorded.get("stored") \
                and recorded.get("filters") == filters:
            raise filter_refusal(ds, missing, "its rows were committed decoded, and h5vc needs "
                                              "the filter to compare them")
        meta["stored"] = True
    if has_refs(enc_dt):
        meta["value"] = _reference_value(ds, dt, shape)
    return meta, n


REF_VALUE_MAX = 1 << 20  # elements of a dataset of references (each recorded as a path)


def _reference_value(ds: h5py.Dataset, dt: np.dtype, shape: tuple[int, ...] | None) -> Any:
    """A dataset holding object references (MATLAB cell arrays, anndata categories, compound
    fields or variable-length sequences of references) is versioned whole, like an attribute:
    its value, each reference recorded as its target's path, is part of its metadata (its
    rows have no hashed ranges), so that a checkout makes every reference anew."""
    if shape is not None and ds.size > REF_VALUE_MAX:
        raise InvalidInputError(
            f"dataset {ds.name} holds {ds.size:,} object references; h5vc versions datasets of "
            f"references of up to {REF_VALUE_MAX:,} elements; store the targets' paths as "
            "strings instead")
    if shape is None:
        return encode_value(None, dt, None)
    arr = as_0d(ds[()], dt) if shape == () else np.asarray(ds[()], dtype=dt)
    try:
        return encode_value(arr, dt, shape, ref_paths(ds.file))
    except InvalidInputError as e:
        raise InvalidInputError(f"dataset {ds.name}: {e}") from None


def create_kwargs(meta: dict[str, Any]) -> dict[str, Any]:
    """h5py ``create_dataset`` keyword arguments for the filters and layout in ``meta``."""
    kw: dict[str, Any] = {}
    for code, _flags, values in meta["filters"]:
        if code == 1:
            kw["compression"], kw["compression_opts"] = "gzip", (values[0] if values else 4)
        elif code == 2:
            kw["shuffle"] = True
        elif code == 3:
            kw["fletcher32"] = True
        elif code == 6:
            kw["scaleoffset"] = values[1] if len(values) > 1 else None
        elif code == 32000:
            kw["compression"] = "lzf"
        elif code == 4:
            kw["compression"], kw["compression_opts"] = "szip", ("nn", values[1] if len(values) > 1 else 8)
        else:
            ensure_filter(code)
            kw["compression"], kw["compression_opts"] = code, tuple(values)
    return kw


def object_filters(meta: dict[str, Any]) -> dict[str, Any]:
    """Filters for a preserved range: the dataset's own compression, none if it has none."""
    kw = create_kwargs(meta)
    kw.pop("scaleoffset", None)  # lossy; preserved ranges must be exact
    return kw


def ref_paths(f: h5py.File) -> Callable[[Any], str | None]:
    """Object reference -> its target's path in ``f``; None for a reference whose target is
    gone or has no name (recorded as a null reference: no path can recreate it)."""

    def path(ref: Any) -> str | None:
        # asked of HDF5 without opening the target: a reference to a deleted object points at
        # freed space, and an object opened there would stay in HDF5's cache and clash with
        # the next object made at that address ("duplicate entry in cache")
        if not ref:
            return None
        try:
            name = h5py.h5r.get_name(ref, f.id)
        except (KeyError, ValueError, RuntimeError, OSError, TypeError):
            return None
        return None if name is None else name.decode("utf-8", "surrogateescape")

    return path


def read_attrs(obj: h5py.HLObject) -> dict[str, Any]:
    """The attributes of ``obj``, encoded (see :func:`h5vc.engine.hashing.encode_value`).

    A large attribute (over 32 KiB) is created once more, from its encoding, in a scratch
    in-memory file, on a group like those h5vc makes to hold one (version-2 header, see
    :func:`h5vc.engine.objects.set_attrs`): one that HDF5 would refuse to create there could be
    committed but never checked out again, so it is refused now, as :class:`InvalidInputError`
    naming the object and the attribute. Each kind of attribute is tried once per process.
    """
    out: dict[str, Any] = {}
    attrs = obj.attrs
    for name in attrs:
        aid = attrs.get_id(name)
        dt = numpy_dtype(f"attribute {name!r} of {obj.name}", aid.get_type())
        shape = aid.shape
        if dt is None:  # a type numpy cannot hold: its bytes, with the type HDF5 encodes
            out[name] = {"dtype": encode_hdf5_type(aid.get_type()),
                         "shape": None if shape is None else list(shape),
                         "data": None if shape is None else
                         {"a": base64.b64encode(read_raw(aid, shape).tobytes()).decode()}}
            continue
        try:
            if shape is None:
                enc = out[name] = encode_value(None, dt, None)
            else:
                value = attrs[name]
                arr = as_0d(value, dt) if shape == () else np.asarray(value, dtype=dt)
                enc = out[name] = encode_value(arr, dt, shape, ref_paths(obj.file))
            tid = aid.get_type()
            pad = _string_pad(tid)
            if pad is not None and isinstance(enc["dtype"], dict) and "str" in enc["dtype"]:
                enc["dtype"] = dict(enc["dtype"], pad=pad)
            else:  # the file's own type where h5py would make another (a bitfield, ...)
                h5t = exact_type(tid, dt)
                if h5t is not None:
                    enc["h5t"] = h5t
        except InvalidInputError as e:
            raise InvalidInputError(f"attribute {name!r} of {obj.name}: {e}") from None
        if shape is None:
            continue
        try:
            size = aid.get_storage_size()
        except RuntimeError:  # HDF5 cannot size an empty attribute
            size = 0
        if size <= 32 << 10 or has_refs(enc["dtype"]):
            continue

        tried: dict[Any, str | None] = read_attrs.__dict__.setdefault("tried", {})
        key = (name, repr(enc["dtype"]), shape, size)
        if key not in tried:
            if len(tried) > 1024:
                tried.clear()
            tried[key] = None
            with h5py.File(f"h5vc-attr-check-{id(key)}", "w", driver="core",
                           backing_store=False) as scratch:
                gcpl = h5py.h5p.create(h5py.h5p.GROUP_CREATE)
                gcpl.set_attr_creation_order(h5py.h5p.CRT_ORDER_TRACKED | h5py.h5p.CRT_ORDER_INDEXED)
                g = h5py.Group(h5py.h5g.create(scratch.id, b"g", gcpl=gcpl))
                a, t, s = decode_value(enc)
                try:
                    g.attrs.create(name, data=a, shape=s, dtype=t)
                except (OSError, ValueError, TypeError) as e:
                    tried[key] = " ".join(str(e).split())  # one line
        if tried[key] is not None:
            raise InvalidInputError(
                f"attribute {name!r} of {obj.name} cannot be versioned: HDF5 would refuse to create "
                f"it again ({tried[key]}); make it smaller or keep the value in a dataset, "
                "then commit")
    return out


_PADS = {h5py.h5t.STR_NULLTERM: "nullterm", h5py.h5t.STR_SPACEPAD: "spacepad"}


def _string_pad(tid: Any) -> str | None:
    """How a fixed-length string type pads its values, when it is not h5py's own (NULLPAD):
    PyTables and netCDF write null-terminated ones."""
    if tid.get_class() != h5py.h5t.STRING or tid.is_variable_str():
        return None
    return _PADS.get(tid.get_strpad())


def same_attr(live: Any, old: Any) -> bool:
    """Whether a live attribute (encoded) is the recorded one. A string's padding and the
    HDF5 type, recorded since later versions of h5vc, do not count against a value recorded
    without them."""
    if live == old:
        return True
    if live is None or old is None:
        return False
    if "h5t" in live and "h5t" not in old:  # the HDF5 type, recorded since this h5vc too
        return {k: v for k, v in live.items() if k != "h5t"} == old
    if not isinstance(live["dtype"], dict):
        return False
    if "pad" in live["dtype"] and isinstance(old["dtype"], dict) and "pad" not in old["dtype"]:
        return dict(live, dtype={k: v for k, v in live["dtype"].items() if k != "pad"}) == old
    return False


def _walk(gid: Any, base: str, out: dict[str, str]) -> bool:
    """Every object below ``gid`` once, as ``base/name`` -> ``"d"`` or ``"g"`` (an object with
    several hard links at its first name only, as HDF5 visits them); True when one of them has
    more than one hard link."""
    shared = False

    def visit(name: bytes, info: Any) -> None:
        nonlocal shared
        out[f"{base}/{name.decode('utf-8', 'surrogateescape')}"] = \
            "d" if info.type == h5py.h5o.TYPE_DATASET else "g"
        shared |= info.rc > 1

    h5py.h5o.visit(gid, visit, info=True)
    return shared


def live_kinds(f: h5py.File, under: str = ROOT) -> dict[str, str]:
    """Every tracked path below ``under`` (itself included): ``"g"`` or ``"d"``.

    Each top-level object's tree is walked whole, visiting an object linked twice (PyTables'
    axes, h5py's ``f["b"] = f["a"]``) at its first name only; the paths below ``under`` are
    those of that walk, whichever subtree ``under`` is."""
    out: dict[str, str] = {}
    top = f[under]
    if under != ROOT:
        if isinstance(top, h5py.Dataset):
            out[under] = "d"
            shared = False
        else:
            out[under] = "g"
            shared = _walk(top.id, under, out)
        if not shared and h5py.h5o.get_info(top.id).rc < 2:
            return out
        # an object here is linked twice: which of its names is tracked depends on the walk
        # of the whole top-level object
        first = "/" + under.strip("/").split("/")[0]
        fo = f[first]
        whole = {first: "d" if isinstance(fo, h5py.Dataset) else "g"}
        if isinstance(fo, h5py.Group):
            _walk(fo.id, first, whole)
        return {p: k for p, k in whole.items() if is_below(p, under)}
    out[under] = "g"
    # /.h5vc may hold thousands of preserved objects: never walk into it
    # soft and external links are not tracked objects (HDF5's walk skips them too)
    children = [k for k in top if k != META and isinstance(top.get(k, getlink=True), h5py.HardLink)]
    for key in children:
        child = top[key]
        base = f"/{key}"
        if isinstance(child, h5py.Dataset):
            out[base] = "d"
            continue
        out[base] = "g"
        if isinstance(child, h5py.Group):
            _walk(child.id, base, out)
    return out


def range_hash(ds: h5py.Dataset, s: int, e: int, dkey: str, stored: bool = False) -> str:
    """The hash of live range [s, e): of its rows, or of its block's stored bytes."""
    return blob_hash(stored_blob(ds, s, e)) if stored else live_hash(ds, s, e, dkey)


def _same_rows(ds: h5py.Dataset, s: int, e: int, dkey: str, h: str, unreadable_differ: bool,
               stored: bool) -> bool:
    if not unreadable_differ:
        return range_hash(ds, s, e, dkey, stored) == h
    try:
        return range_hash(ds, s, e, dkey, stored) == h
    except (OSError, RuntimeError, ValueError):
        return False


def _dataset_changes(path: str, ds: h5py.Dataset, node: dict[str, Any] | None,
                     verify: bool, out: list[dict[str, Any]], unreadable_differ: bool = False) -> None:
    meta, n = dataset_meta(ds, node["meta"] if node is not None and node["k"] == "d" else None)
    stored = {"stored": True} if meta.get("stored") else {}  # hashes of stored bytes
    if node is None or node["k"] != "d" or meta != node["meta"]:
        if node is None or node["k"] != "d":
            out.append({"op": "add_dataset", "path": path, "meta": meta,
                        **link_order(ds.file, path)})
        else:
            out.append({"op": "redefine", "path": path, "meta": meta, "old": node["meta"]})
        ranges = [] if "value" in meta else \
            [[s, e, None] for s, e in split_blocks(0, n, block_rows(meta, n))]
        out.append({"op": "rows", "path": path, "from": 0, "to": n, "ranges": ranges, **stored})
        return
    old_n = node["n"]
    ranges: list[list[Any]] = []
    block = block_rows(meta, n)
    if n > old_n:
        # a stored block is hashed whole: a block grown is a block rewritten
        start = old_n - old_n % block if stored else old_n
        ranges += [[s, e, None] for s, e in split_blocks(start, n, block)]
    elif n < old_n:
        ranges += [[r[0], n, None] for r in node["ranges"] if r[0] < n < r[1]]
    if verify:
        dkey = "" if stored else dtype_key(ds.dtype)
        for s, e, h in node["ranges"]:
            if e <= n and [s, e, None] not in ranges and \
                    not _same_rows(ds, s, e, dkey, h, unreadable_differ, bool(stored)):
                ranges.append([s, e, None])
    if n != old_n or ranges:
        out.append({"op": "rows", "path": path, "from": old_n, "to": n, "ranges": sorted(ranges),
                    **stored})


def attr_changes(path: str, live: dict[str, Any], old: dict[str, Any],
                  out: list[dict[str, Any]]) -> None:
    for name in sorted(set(live) | set(old)):
        a, b = live.get(name), old.get(name)
        if not same_attr(a, b):
            out.append({"op": "attr", "path": path, "name": name, "value": a, "old": b})


def same_attrs(live: dict[str, Any], old: dict[str, Any]) -> bool:
    """Whether live attributes (encoded) are the recorded ones (see :func:`same_attr`)."""
    return live.keys() == old.keys() and all(same_attr(live[k], old[k]) for k in live)


def link_order(f: h5py.File, path: str) -> dict[str, int]:
    """``{"c": n}``, the creation order of the link to ``path`` in its group, when the group
    tracks it (netCDF4 lists variables and groups so); ``{}`` when it does not."""
    info = f.id.links.get_info(path.encode("utf-8", "surrogateescape"))
    return {"c": int(info.corder)} if info.corder_valid else {}


def attr_order(obj: h5py.HLObject) -> list[str] | None:
    """The names of the attributes of ``obj`` in the order they were created, when ``obj``
    tracks it (netCDF4 variables and groups, h5py's ``track_order``); None when it does not
    (HDF5 then lists them by name)."""
    if not obj.id.get_create_plist().get_attr_creation_order() & h5py.h5p.CRT_ORDER_TRACKED:
        return None
    return list(obj.attrs)  # h5py lists them in creation order when it is tracked


def object_attr_changes(path: str, obj: h5py.HLObject, node: dict[str, Any] | None,
                        out: list[dict[str, Any]]) -> None:
    """The attribute changes of live ``obj`` since ``node`` (None: a new object), and the
    change of their creation order where ``obj`` tracks it. The order of an object recorded
    without it (by an earlier h5vc) is recorded at its next attribute change only."""
    before = len(out)
    attr_changes(path, read_attrs(obj), node["attrs"] if node else {}, out)
    if node is not None and "ao" not in node and len(out) == before:
        return
    order = attr_order(obj)
    if order != (node.get("ao") if node else None):
        out.append({"op": "attr_order", "path": path, "names": order})


def scan(f: h5py.File, state: State, *, verify: bool = False,
         paths: Iterable[str] | None = None,
         unreadable_differ: bool = False) -> list[dict[str, Any]]:
    """Changes that turn ``state`` into the live store (new ranges carry hash None).

    ``paths`` limits the comparison to those subtrees (a transaction's touched paths).
    ``unreadable_differ``: with ``verify``, committed rows that cannot be read count as
    changed (recovery after a kill) instead of raising.
    """
    if paths is None:
        live = live_kinds(f)
        tops = [ROOT]
    else:
        tops = sorted(set(paths))
        live = {}
        for top in tops:
            if top in f:
                live.update(live_kinds(f, top))
    committed = {p for p in state if any(is_below(p, t) for t in tops)}
    out: list[dict[str, Any]] = []
    deleted: list[str] = []
    for p in sorted(committed - set(live)):
        if not any(is_below(p, d) for d in deleted):
            out.append({"op": "delete", "path": p})
            deleted.append(p)
    for p in sorted(live):
        _path_changes(p, live[p], f[p], state.get(p), verify, out, unreadable_differ)
    return out


def _path_changes(p: str, kind: str, obj: Any, node: dict[str, Any] | None, verify: bool,
                  out: list[dict[str, Any]], unreadable_differ: bool) -> None:
    """The changes of one live object (not of its children) since ``node``."""
    if kind == "g":
        if node is None or node["k"] != "g":
            if node is not None:
                out.append({"op": "delete", "path": p})
            out.append({"op": "add_group", "path": p, **link_order(obj.file, p)})
            node = None
    else:
        if node is not None and node["k"] != "d":
            out.append({"op": "delete", "path": p})
            node = None
        _dataset_changes(p, obj, node, verify, out, unreadable_differ)
    object_attr_changes(p, obj, node, out)


def referrers(state: State, remade: Iterable[str], skip: Iterable[str] = ()) -> list[str]:
    """The recorded objects (outside ``skip``'s subtrees) whose attributes or values hold a
    reference to an object at or below one of ``remade`` (deleted or made anew): their
    recorded references must be checked again, the live ones no longer point there."""
    remade = sorted(set(remade))
    skip = sorted(set(skip))
    if not remade:
        return []
    out = []
    for p, node in state.items():
        if any(is_below(p, t) for t in skip):
            continue
        values = [v for v in node["attrs"].values() if has_refs(v["dtype"])]
        if node["k"] == "d" and "value" in node["meta"]:
            values.append(node["meta"]["value"])
        fill = node["meta"].get("fill_ref") if node["k"] == "d" else None
        if any(is_below(t, r) for v in values for t in ref_targets(v) for r in remade) or \
                (fill is not None and any(is_below(fill, r) for r in remade)):
            out.append(p)
    return out


def scan_objects(f: h5py.File, state: State, paths: Iterable[str]) -> list[dict[str, Any]]:
    """What changed in each of ``paths`` itself (not below it), for paths recorded in
    ``state`` that the store still holds."""
    out: list[dict[str, Any]] = []
    for p in paths:
        obj = f.get(p)
        node = state.get(p)
        if obj is None or node is None:
            continue
        _path_changes(p, "g" if isinstance(obj, h5py.Group) else "d", obj, node, False, out,
                      False)
    return out


def scan_suspects(f: h5py.File, state: State, suspects: set[str], addresses: dict[str, int],
                  *, verify: bool = False, unreadable_differ: bool = False) -> list[dict[str, Any]]:
    """What :func:`scan` finds, reading only what may have changed.

    Every object not in ``suspects`` is known to be as ``state`` records it, and, when it is a
    group, to hold the same children at the header ``addresses`` recorded (see
    :mod:`h5vc.engine.footprint`); every path of ``state`` without an address must be in
    ``suspects``. A suspect group's children are listed again: one at another address than
    recorded is a suspect too, and so are its own children.
    """
    ancestors: set[str] = set()
    for p in suspects:
        while p != ROOT:
            p = p.rpartition("/")[0] or ROOT
            if p in ancestors:
                break
            ancestors.add(p)
    children: dict[str, list[str]] = {}
    for p in state:
        if p != ROOT:
            children.setdefault(p.rpartition("/")[0] or ROOT, []).append(p)
    deletes: list[str] = []
    found: dict[str, list[dict[str, Any]]] = {}
    new: list[str] = []

    def below(p: str) -> list[str]:
        out, todo = [], list(children.get(p, ()))
        while todo:
            q = todo.pop()
            out.append(q)
            todo.extend(children.get(q, ()))
        return out

    def visit(p: str, obj: Any, suspect: bool) -> None:
        node = state.get(p)
        is_group = isinstance(obj, h5py.Group)
        if suspect:
            ops: list[dict[str, Any]] = []
            _path_changes(p, "g" if is_group else "d", obj, node, verify, ops, unreadable_differ)
            if ops:
                found[p] = ops
            if node is not None and node["k"] == "g" and not is_group:
                deletes.extend(below(p))  # a group replaced by a dataset
                return
        if not is_group:
            return
        if suspect:
            keep = [k for k in obj if not (p == ROOT and k == META)
                    and isinstance(obj.get(k, getlink=True), h5py.HardLink)]
            base = "" if p == ROOT else p
            live = {f"{base}/{k}": k for k in keep}
            mine = [] if node is None or node["k"] != "g" else children.get(p, [])
            deletes.extend(q for q in mine if q not in live)
            for q, k in live.items():
                child = obj[k]
                if q not in state:
                    new.append(q)
                    continue
                moved = addresses.get(q) != h5py.h5o.get_info(child.id).addr
                visit(q, child, moved or q in suspects)
            return
        for q in children.get(p, ()):
            if q in suspects or q in ancestors:
                k = q.rpartition("/")[2]
                if k in obj:
                    visit(q, obj[k], q in suspects)
                else:
                    deletes.append(q)

    visit(ROOT, f, ROOT in suspects)
    out: list[dict[str, Any]] = []
    done: list[str] = []
    for p in sorted(deletes):
        if not any(is_below(p, d) for d in done):
            out.append({"op": "delete", "path": p})
            done.append(p)
    for top in new:
        for p, kind in live_kinds(f, top).items():
            ops = []
            _path_changes(p, kind, f[p], None, verify, ops, unreadable_differ)
            found[p] = ops
    for p in sorted(found):
        out.extend(found[p])
    return out


def materialize(f: h5py.File, changes: list[dict[str, Any]],
                known: dict[str, dict[tuple[int, int], str]] | None = None) -> list[dict[str, Any]]:
    """Fill in the hashes of new ranges by reading the live rows (or taking ``known`` ones)."""
    out = []
    for ch in changes:
        if ch["op"] == "rows" and any(r[2] is None for r in ch["ranges"]):
            ds = f[ch["path"]]
            stored = bool(ch.get("stored"))
            dkey = "" if stored else dtype_key(ds.dtype)
            hashes = (known or {}).get(ch["path"], {})
            ranges = []
            for s, e, h in ch["ranges"]:
                if h is None:
                    h = hashes.get((s, e)) or range_hash(ds, s, e, dkey, stored)
                ranges.append([s, e, h])
            ch = dict(ch, ranges=ranges)
        out.append(ch)
    return out

