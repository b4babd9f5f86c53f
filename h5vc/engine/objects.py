"""Preserve and restore ranges: turn the store from one state into another, in place.

``restore(live, target)`` is the engine behind checkout and transaction rollback. It works
in four steps so that a failure leaves tracked content untouched:

1. plan: per path, what to delete, create, resize, write, and which live ranges leave;
2. check that every range to write is available (preserved object, or about to be);
3. preserve every committed range that leaves the store (read, verify its hash, store it
   once, appended to a pack under ``/.h5vc/packs``);
4. mutate: delete, create, resize, write ranges, set attributes.

Ranges whose hash is ``None`` (uncommitted rows) are never kept and never preserved.
"""

from __future__ import annotations

import base64
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import h5py
import numpy as np

from ..crashpoints import crash_point
from ..errors import DirtyStoreError, IntegrityError, InvalidInputError
from .chunks import blob_hash, missing_filter, stored_blob, write_blob
from .format import Layout
from .hashing import (
    bytes_as_numpy,
    decode_dtype,
    decode_type,
    decode_value,
    dtype_key,
    has_refs,
    hdf5_type,
    ref_targets,
    rows_hash,
    rows_hash_parts,
)
from .hdf5lib import set_fill_bytes, undefined_fill
from .rows import live_hash, read_rows, row_slices, write_rows
from .scan import attr_order, create_kwargs, object_filters, read_raw
from .space import ensure_space
from .state import ROOT, State, block_rows, is_below, parent_of, row_bytes

__all__ = ["RestoreReport", "create_dataset", "make_group", "ordered_groups", "put_in_order",
           "tracks_order", "preserve_ranges", "preserve_rows", "restore",
           "blob_rows", "preserved_blob", "write_value"]


@dataclass
class RestoreReport:
    rows_written: int = 0
    rows_preserved: int = 0
    paths_changed: list[str] = field(default_factory=list)


def _create_raw(f: h5py.File, path: str, meta: dict[str, Any], n: int, tid: Any,
                attr_order: bool) -> h5py.Dataset:
    """A dataset of an HDF5 type numpy cannot hold, made with that very type."""
    rank = meta["rank"]
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    if attr_order:
        dcpl.set_attr_creation_order(h5py.h5p.CRT_ORDER_TRACKED | h5py.h5p.CRT_ORDER_INDEXED)
    if rank == -1:
        space = h5py.h5s.create(h5py.h5s.NULL)
    elif rank == 0:
        space = h5py.h5s.create(h5py.h5s.SCALAR)
    else:
        shape = (n, *meta["tail"])
        if meta["chunks"]:
            maxshape = tuple(h5py.h5s.UNLIMITED if m is None else m for m in meta["maxshape"])
            space = h5py.h5s.create_simple(shape, maxshape)
            dcpl.set_chunk(tuple(meta["chunks"]))
            _exact_pipeline(dcpl, meta)
        else:
            space = h5py.h5s.create_simple(shape)
    if meta.get("nofill"):
        undefined_fill(dcpl)
    elif meta["fill"] is not None and not meta.get("fill_default"):
        set_fill_bytes(dcpl, tid, base64.b64decode(meta["fill"]["a"]))
    if rank > 0:
        _creation_extras(dcpl, meta)
    return h5py.Dataset(h5py.h5d.create(f.id, path.encode("utf-8", "surrogateescape"), tid, space,
                                        dcpl=dcpl, lcpl=_lcpl(path)))


def _lcpl(name: str) -> Any:
    """Link creation properties as h5py sets them: parents made as needed, and the name marked
    UTF-8 only when it is not ASCII (a UTF-8 link cannot live in a group of the old format,
    which HDF5 then converts: its header and the superblock's entry for it change)."""
    lcpl = h5py.h5p.create(h5py.h5p.LINK_CREATE)
    lcpl.set_create_intermediate_group(True)
    if not name.isascii():
        lcpl.set_char_encoding(h5py.h5t.CSET_UTF8)
    return lcpl


def create_dataset(f: h5py.File, path: str, meta: dict[str, Any], n: int, *,
                   attr_order: bool = False) -> h5py.Dataset:
    """Make dataset ``path`` as ``meta`` records it, ``n`` rows long (their values unset);
    ``attr_order``: tracking the creation order of its attributes."""
    tid = hdf5_type(meta["dtype"])
    if tid is not None:
        return _create_raw(f, path, meta, n, tid, attr_order)
    dt = decode_dtype(meta["dtype"])
    rank = meta["rank"]
    if rank == -1:
        return f.create_dataset(path, data=h5py.Empty(dt))
    shape: tuple[int, ...] = () if rank == 0 else (n, *meta["tail"])
    kw = create_kwargs(meta)
    if rank > 0 and meta["chunks"]:
        kw["chunks"] = tuple(meta["chunks"])
        kw["maxshape"] = tuple(meta["maxshape"])
    if meta.get("stored") or (rank > 0 and meta["chunks"] and meta["filters"]):
        # the very pipeline: ids, flags and parameters as recorded (a filter that computes its
        # own from the type and chunks computes them again), filters this HDF5 cannot apply
        # included for a dataset versioned as its stored chunks
        kw = {"chunks": kw.get("chunks"), "maxshape": kw.get("maxshape"),
              "allow_unknown_filter": bool(meta.get("stored"))}
        kw["dcpl"] = _exact_pipeline(h5py.h5p.create(h5py.h5p.DATASET_CREATE), meta)
    if meta["fill"] is not None and not meta.get("fill_default"):
        arr, _, _ = decode_value({"dtype": meta["dtype"], "shape": [], "data": meta["fill"]})
        kw["fillvalue"] = arr[()]
    elif meta.get("nofill"):
        kw["dcpl"] = undefined_fill(kw.get("dcpl"))
    if rank > 0 and ("fill_time" in meta or meta.get("compact")):
        kw["dcpl"] = _creation_extras(kw.get("dcpl") or h5py.h5p.create(h5py.h5p.DATASET_CREATE),
                                      meta)
    if "fill_ref" in meta:  # a reference to the recorded target (null where it is missing)
        kw["dcpl"] = kw.get("dcpl") or h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        target = f.get(meta["fill_ref"]) if meta["fill_ref"] is not None else None
        # an object reference is its target's header address (HDF5 converts no other form)
        addr = h5py.h5o.get_info(target.id).addr if target is not None else 0
        set_fill_bytes(kw["dcpl"], h5py.h5t.STD_REF_OBJ, int(addr).to_bytes(8, sys.byteorder))
    if attr_order:
        kw["track_order"] = True
    if "h5t" in meta:  # the file's own type, where h5py would make another for the dtype
        return f.create_dataset(path, shape=shape, dtype=h5py.Datatype(decode_type(meta["h5t"])),
                                **kw)
    return f.create_dataset(path, shape=shape, dtype=dt, **kw)


def _exact_pipeline(dcpl: Any, meta: dict[str, Any]) -> Any:
    """The recorded filter pipeline, ids, flags and parameters as they are (filters this HDF5
    cannot apply included), set on ``dcpl`` (returned)."""
    for code, flags, values in meta["filters"]:
        dcpl.set_filter(int(code), int(flags), tuple(int(v) for v in values))
    return dcpl


def _creation_extras(dcpl: Any, meta: dict[str, Any]) -> Any:
    """The creation properties a meta records beyond h5py's own choice: fill time, compact
    layout (``dcpl`` changed and returned)."""
    if "fill_time" in meta:
        dcpl.set_fill_time(int(meta["fill_time"]))
    if meta.get("compact"):
        dcpl.set_layout(h5py.h5d.COMPACT)
    return dcpl


def write_value(ds: h5py.Dataset, meta: dict[str, Any], *, missing_ok: bool = False) -> None:
    """Write the recorded value of a dataset of references (see ``scan._reference_value``),
    each reference made anew to its target's path."""
    arr, _dt, shape = decode_value(meta["value"], make_refs(ds.file, ds.name, missing_ok))
    if shape is None or arr is None:
        return
    if shape == ():
        ds[()] = arr[()]
    elif arr.size:
        ds[...] = arr


def make_refs(f: h5py.File, where: str, missing_ok: bool = False) -> Callable[[str | None], Any]:
    """A recorded target path -> an object reference to it in ``f`` (None: a null reference).
    A target that does not exist is an IntegrityError naming ``where``, or with
    ``missing_ok`` a null reference (an export that leaves the target out)."""

    def ref(path: str | None) -> Any:
        if path is None:
            return h5py.Reference()
        try:
            return f[path].ref
        except (KeyError, ValueError, RuntimeError, OSError):
            if missing_ok:
                return h5py.Reference()
            raise IntegrityError(f"{where} refers to {path}, which is not in the store") from None

    return ref


def set_attrs(obj: h5py.HLObject, want: dict[str, Any], have: dict[str, Any], *,
              missing_ok: bool = False, order: list[str] | None = None) -> int:
    """Make the attributes of ``obj`` equal ``want`` (encoded), given they now equal ``have``;
    returns how many were set or deleted. An object reference is made to its recorded target
    path, which must exist (``missing_ok``: a null reference where it does not).

    ``order``: the names in their recorded creation order, for an object that tracks it; the
    attributes from the first one out of place on are made again, in that order.

    Attributes of any size: HDF5 keeps an attribute over 64 KiB in dense storage, which only
    an object with a version-2 header has (h5py writes one with ``libver=("v108", ...)`` or
    later), while an object h5vc (re)creates gets the version-1 header of the file's default
    format. Such an object is rebuilt once, in place, with a version-2 header (HDF5 1.8 and
    later read it): same name, creation properties, data and links, attribute creation order
    tracked as h5py's ``track_order`` does. ``obj`` is rebound to the rebuilt object, so the
    caller's handle stays valid.
    """

    def create(o: Any, name: str, enc: dict[str, Any]) -> None:
        arr, dt, shape = decode_value(
            enc, make_refs(o.file, f"attribute {name!r} of {o.name}", missing_ok))
        tid = hdf5_type(enc["dtype"])
        raw = tid is not None
        pad = enc["dtype"].get("pad") if isinstance(enc["dtype"], dict) else None
        if pad is not None:  # a fixed-length string padded as recorded, not as h5py pads
            tid = h5py.h5t.py_create(dt, logical=True).copy()
            tid.set_strpad(h5py.h5t.STR_NULLTERM if pad == "nullterm" else h5py.h5t.STR_SPACEPAD)
            raw = True
        elif "h5t" in enc:  # the file's own type, where h5py would make another
            tid = decode_type(enc["h5t"])
            raw = bytes_as_numpy(tid)
        if tid is not None:  # a type numpy cannot hold (or a padded string): made with it
            space = (h5py.h5s.create(h5py.h5s.NULL) if shape is None else
                     h5py.h5s.create(h5py.h5s.SCALAR) if shape == () else
                     h5py.h5s.create_simple(shape))
            aid = h5py.h5a.create(o.id, name.encode(), tid, space)
            if arr is not None:
                # written as its bytes where they are the type's; otherwise h5py converts
                aid.write(np.ascontiguousarray(arr), mtype=tid if raw else None)
            return
        if shape is None:
            o.attrs.create(name, h5py.Empty(dt))
        else:
            o.attrs.create(name, data=arr, shape=shape, dtype=dt)

    def rebuild(o: Any) -> None:
        """Replace ``o`` by a copy with a version-2 object header and no attributes."""
        f, name = o.file, o.name
        parent = f[name.rsplit("/", 1)[0] or "/"]
        link = name.rsplit("/", 1)[1].encode()
        tmp = link + b".h5vc-rebuilding"  # named while built: HDF5 cannot move links into an
        if tmp in parent.id:  # anonymous group, and a crash leaves it findable
            parent.id.unlink(tmp)
        order = h5py.h5p.CRT_ORDER_TRACKED | h5py.h5p.CRT_ORDER_INDEXED
        new: Any
        if isinstance(o, h5py.Dataset):
            dcpl = o.id.get_create_plist()
            dcpl.set_attr_creation_order(order)
            new = h5py.Dataset(h5py.h5d.create(parent.id, tmp, o.id.get_type(), o.id.get_space(),
                                               dcpl=dcpl))
            elsewhere = dcpl.get_layout() == h5py.h5d.VIRTUAL or dcpl.get_external_count()
            if o.shape is not None and o.size and not elsewhere:
                if o.chunks is not None and not o.dtype.hasobject:  # the stored bytes as they are
                    for i in range(o.id.get_num_chunks()):
                        at = o.id.get_chunk_info(i).chunk_offset
                        mask, raw = o.id.read_direct_chunk(at)
                        new.id.write_direct_chunk(at, raw, mask)
                elif o.shape == ():
                    write_rows(new, 0, read_rows(o, 0, 1))
                else:
                    for a, b in row_slices(o, 0, o.shape[0]):
                        write_rows(new, a, o[a:b])
        else:
            gcpl = o.id.get_create_plist()
            gcpl.set_attr_creation_order(order)
            new = h5py.Group(h5py.h5g.create(parent.id, tmp, gcpl=gcpl))
            for child in list(o.keys()):  # hard, soft and external links alike
                o.id.links.move(child.encode(), new.id, child.encode())
        parent.id.unlink(link)
        parent.id.links.move(tmp, parent.id, link)
        type(new).__init__(o, new.id)

    def refused(name: str, e: Exception) -> IntegrityError:
        return IntegrityError(
            f"cannot restore attribute {name!r} of {obj.name}: HDF5 refuses to create it "
            f"({' '.join(str(e).split())}); "
            "check out another commit with `h5vc checkout --force REV`")

    changed = 0
    for name in have:
        if name not in want and name in obj.attrs:
            del obj.attrs[name]
            changed += 1
    todo = [(name, enc) for name, enc in want.items() if have.get(name) != enc]
    if order is not None and attr_order(obj) is not None:
        desired = [n for n in order if n in want] + [n for n in want if n not in order]
        current = list(obj.attrs)
        rewrite = {name for name, _enc in todo}
        i = 0
        while i < min(len(desired), len(current)) and desired[i] == current[i] \
                and desired[i] not in rewrite:
            i += 1
        if i < len(desired) or i < len(current):
            for name in current[i:]:
                del obj.attrs[name]
            changed += len(current) - i
            todo = [(name, want[name]) for name in desired[i:]]
    for name, enc in todo:
        if name in obj.attrs:
            del obj.attrs[name]
        try:
            create(obj, name, enc)
        except OSError as e:
            if obj.name == "/" or h5py.h5o.get_info(obj.id).hdr.version >= 2:
                raise refused(name, e) from None
            rebuild(obj)  # its header cannot hold the attribute: all of them on the new one
            for n, en in want.items():
                try:
                    create(obj, n, en)
                except OSError as e2:
                    raise refused(n, e2) from None
            break
    return changed + len(todo)


RUN_BYTES = 64 << 20  # rows read or written at once when preserving or restoring


def _runs(ranges: list[list[Any]], row_bytes: int) -> list[list[list[Any]]]:
    """Sorted ranges grouped into runs of adjacent rows, each at most RUN_BYTES."""
    runs: list[list[list[Any]]] = []
    for r in sorted(ranges, key=lambda r: r[0]):
        if (runs and runs[-1][-1][1] == r[0]
                and (r[1] - runs[-1][0][0]) * row_bytes <= RUN_BYTES):
            runs[-1].append(r)
        else:
            runs.append([r])
    return runs


def _meta_row_bytes(meta: dict[str, Any]) -> int:
    return row_bytes(meta["tail"], decode_dtype(meta["dtype"]).itemsize)


def _row_bytes(ds: h5py.Dataset) -> int:
    return row_bytes(ds.shape[1:] if ds.shape else (), ds.dtype.itemsize)


def preserve_ranges(f: h5py.File, layout: Layout, path: str, meta: dict[str, Any],
                    ranges: list[list[Any]], *, force: bool = False) -> int:
    """Store the committed ``ranges`` of live dataset ``path`` as objects; returns rows kept.

    Each range is verified against its hash as it is read: rows changed in place by another
    tool since they were committed stop the operation (or, with ``force``, are skipped).
    """
    todo = [r for r in ranges if r[2] is not None and not layout.has_object(r[2])]
    if not todo:
        return 0
    ds = f[path]
    if meta.get("stored"):
        return _preserve_blobs(ds, layout, path, todo, force)
    # twice: the rows kept, and their old bytes in the rollback journal when they are then
    # overwritten in place (h5vc.engine.undo)
    ensure_space(f.filename, 2 * sum(r[1] - r[0] for r in todo) * _row_bytes(ds),
                 f"preserving {path} before it changes")
    dkey = dtype_key(ds.dtype)
    filters = object_filters(meta)
    scalar = ds.shape == ()
    block = block_rows(meta, 1 if scalar else ds.shape[0])
    stored = 0
    row_bytes = _row_bytes(ds)
    for run in _runs(todo, row_bytes):
        s0, e0 = run[0][0], run[-1][1]
        if not scalar and (e0 - s0) * row_bytes > RUN_BYTES:  # one range larger than a run
            (s, e, h), = run
            if live_hash(ds, s, e, dkey) != h:
                if force:
                    continue
                raise _changed_outside(path, s, e)
            stored += layout.put_slices(h, ds, s, e, filters, block)
            continue
        arr = read_rows(ds, s0, e0)
        pieces = []
        for s, e, h in run:
            part = arr if scalar else arr[s - s0:e - s0]
            if rows_hash(part, dkey) != h:
                if force:
                    continue
                raise _changed_outside(path, s, e)
            pieces.append((h, s - s0, e - s0))
        stored += layout.put_run(arr, ds.dtype, filters, block, pieces, scalar=scalar)
    return stored


BLOB_PACK_ROWS = 1 << 16  # a pack of blobs is chunked by 64 KiB


def _preserve_blobs(ds: h5py.Dataset, layout: Layout, path: str, todo: list[list[Any]],
                    force: bool) -> int:
    """Preserve ranges of a dataset versioned as stored: each block's stored bytes."""
    rows = 0
    for s, e, h in todo:
        blob = stored_blob(ds, s, e)
        if blob_hash(blob) != h:
            if force:
                continue
            raise _changed_outside(path, s, e)
        ensure_space(ds.file.filename, blob.nbytes, f"preserving {path} before it changes")
        put_blob(layout, h, blob)
        rows += e - s
    return rows


def put_blob(layout: Layout, h: str, blob: np.ndarray) -> None:
    """Preserve a block's stored bytes as object ``h`` (already checked against it)."""
    layout.put_run(blob, blob.dtype, {}, BLOB_PACK_ROWS, [(h, 0, len(blob))])


def preserved_blob(layout: Layout, h: str) -> np.ndarray:
    """The preserved stored bytes of object ``h``, checked against it."""
    blob = np.asarray(layout.read_object(h))
    if blob_hash(blob) != h:
        raise IntegrityError(f"preserved content {h[:10]} does not match its hash; the store "
                             "is damaged: see `h5vc verify`")
    return blob


def _write_blobs(ds: h5py.Dataset, layout: Layout, ranges: list[list[Any]]) -> int:
    for s, _e, h in ranges:
        write_blob(ds, s, preserved_blob(layout, h))
    return sum(e - s for s, e, _h in ranges)


def blob_rows(meta: dict[str, Any], s: int, e: int, blob: np.ndarray, path: str) -> np.ndarray:
    """Rows [s, e) of a dataset versioned as stored, decoded from its block's blob through a
    scratch dataset in memory with the same pipeline; InvalidInputError naming the filter
    when this HDF5 cannot apply it."""
    missing = missing_filter(meta["filters"])
    if missing is not None:
        code, name, fix = missing
        raise InvalidInputError(
            f"rows of {path} are compressed with HDF5 filter {code} ({name}), which is not "
            f"available here: h5vc versions its chunks as stored but cannot decode them; {fix}")
    rows = e - s
    block = int(meta["chunks"][0]) if meta["chunks"] else rows
    with h5py.File(f"h5vc-blob-{id(blob)}", "w", driver="core", backing_store=False) as f:
        ds = create_dataset(f, "b", meta, block)
        write_blob(ds, 0, blob)
        if hdf5_type(meta["dtype"]) is None:
            return ds[()] if meta["rank"] == 0 else ds[0:rows]
        got = read_raw(ds.id, ds.shape)  # values of a type numpy cannot hold, as bytes
        return got if meta["rank"] == 0 else got[:rows]


def _changed_outside(path: str, s: int, e: int) -> DirtyStoreError:
    return DirtyStoreError(
        f"rows {s}:{e} of {path} were changed outside h5vc since they were committed; record "
        "them with `h5vc commit --verify`, or discard them with --force")


def _same_shape_kind(a: dict[str, Any], b: dict[str, Any]) -> bool:
    if a["k"] != b["k"]:
        return False
    if a["k"] == "g":
        return True
    if a["meta"] != b["meta"]:
        return False
    if a["meta"].get("stored") and (a["n"] != b["n"] or a["ranges"] != b["ranges"]):
        return False  # stored chunks cannot be cut (HDF5 would decode the last): made anew
    ms = a["meta"]["maxshape"]
    if b["n"] != a["n"] and (a["meta"]["rank"] <= 0 or a["meta"]["chunks"] is None
                              or (ms[0] is not None and b["n"] > ms[0])):
        return False  # cannot resize in place: recreate
    return True


def preserve_rows(layout: Layout, h: str, arr: np.ndarray, meta: dict[str, Any]) -> int:
    """Store ``arr``, the rows of range ``h`` of a dataset whose recorded meta is ``meta`` (rows
    that came from elsewhere, already checked against ``h``), as an object."""
    if meta.get("stored"):  # a block's stored bytes
        put_blob(layout, h, arr)
        return len(arr)
    rows = 1 if meta["rank"] == 0 else int(arr.shape[0])
    return layout.put_run(arr, decode_dtype(meta["dtype"]), object_filters(meta),
                          block_rows(meta, rows), [(h, 0, rows)], scalar=meta["rank"] == 0)


def ordered_groups(state: State) -> set[str]:
    """The groups ``state`` records as tracking the creation order of their links: those with
    a child whose node records its order (``"c"``)."""
    return {parent_of(p) for p, node in state.items() if "c" in node}


def tracks_order(state: State) -> bool:
    """Whether a file made from ``state`` should track creation order in its root group, as the
    recorded root did (netCDF4 files: netCDF-C writes only files whose groups all track it)."""
    return "ao" in state.get(ROOT, {}) or ROOT in ordered_groups(state)


def put_in_order(f: h5py.File, group: str, state: State) -> int:
    """Put the links of ``group`` back in their recorded creation order (``"c"`` of the nodes
    of ``state``), when the group tracks it: objects made anew were linked last. The links
    without a recorded order (soft and external links, /.h5vc) keep their places, and those
    from the first one out of place on are linked again, in order. Returns how many."""
    g = f.get(group)
    if not isinstance(g, h5py.Group) or not g.id.get_create_plist().get_link_creation_order():
        return 0
    live = list(g)  # in creation order, which the group tracks
    prefix = "" if group == ROOT else group
    order = {k: state[f"{prefix}/{k}"]["c"] for k in live
             if "c" in state.get(f"{prefix}/{k}", {})}
    at = [i for i, k in enumerate(live) if k in order]
    want = list(live)
    for i, k in zip(at, sorted(order, key=lambda k: (order[k], k)), strict=True):
        want[i] = k
    first = next((i for i, (a, b) in enumerate(zip(live, want, strict=True)) if a != b), None)
    if first is None:
        return 0
    for k in want[first:]:
        name, tmp = k.encode("utf-8", "surrogateescape"), f"{k}.h5vc-order".encode(
            "utf-8", "surrogateescape")
        g.id.links.move(name, g.id, tmp)
        g.id.links.move(tmp, g.id, name)
    return len(want) - first


def make_group(f: h5py.File, path: str, *, attr_order: bool | None = None) -> h5py.Group:
    """Create group ``path`` and any missing parents. They track link creation order when the
    root group does (netCDF4 files: netCDF-C opens for writing only files whose groups all
    track it), so a group h5vc makes keeps such a file writable by its own library, and the
    creation order of their attributes then too; ``attr_order`` True or False says it for
    ``path`` itself (what its recorded node says)."""
    track = bool(f["/"].id.get_create_plist().get_link_creation_order())
    g: h5py.Group = f["/"]
    names = path.strip("/").split("/")
    for i, name in enumerate(names):
        if name in g:
            g = g[name]
            continue
        attrs = attr_order if i == len(names) - 1 and attr_order is not None else track
        if not track and not attrs:
            g = g.create_group(name)
            continue
        gcpl = h5py.h5p.create(h5py.h5p.GROUP_CREATE)
        both = h5py.h5p.CRT_ORDER_TRACKED | h5py.h5p.CRT_ORDER_INDEXED
        if track:
            gcpl.set_link_creation_order(both)
        if attrs:
            gcpl.set_attr_creation_order(both)
        g = h5py.Group(h5py.h5g.create(g.id, name.encode("utf-8", "surrogateescape"),
                                       lcpl=_lcpl(name), gcpl=gcpl))
    return g


def restore(f: h5py.File, layout: Layout, live: State, target: State, *,
            force: bool = False,
            before_mutate: Callable[[list[str]], None] | None = None,
            fill: Callable[[dict[str, tuple[dict[str, Any], int, int]]], None] | None = None,
            ) -> RestoreReport:
    """Make the store, whose content is described by ``live``, equal to ``target``.

    ``before_mutate(paths)`` runs after everything that leaves is preserved and before the
    first change to tracked content, with the paths that will change (to record an intent).
    Preserved rows are synced to the file before it runs. ``fill(wanted)`` is asked for the
    ranges to write that the store no longer holds (hash -> (meta, start, stop)), to preserve
    them from elsewhere (a remote) before anything changes.
    """
    report = RestoreReport()
    deletes: list[str] = []
    creates: list[str] = []
    preserve: list[tuple[str, dict[str, Any], list[list[Any]]]] = []
    resizes: list[tuple[str, int, list[list[Any]]]] = []

    for p in sorted(set(live) | set(target)):
        a, b = live.get(p), target.get(p)
        if any(is_below(p, d) for d in deletes):
            if b is not None:
                creates.append(p)
            if a is not None and a["k"] == "d":
                preserve.append((p, a["meta"], a["ranges"]))
            continue
        if a is None:
            creates.append(p)
        elif b is None or not _same_shape_kind(a, b):
            if p == ROOT:
                raise IntegrityError("the root group cannot be replaced")
            deletes.append(p)
            if a["k"] == "d":
                preserve.append((p, a["meta"], a["ranges"]))
            if b is not None:
                creates.append(p)
        elif a["k"] == "d":
            keep = {tuple(r) for r in a["ranges"]} & {tuple(r) for r in b["ranges"]}
            leaving = [r for r in a["ranges"] if tuple(r) not in keep]
            writing = [r for r in b["ranges"] if tuple(r) not in keep]
            if leaving:
                preserve.append((p, a["meta"], leaving))
            if writing or a["n"] != b["n"]:
                resizes.append((p, b["n"], writing))

    # 2. everything to write must exist: as an object, or among what step 3 preserves
    leaving_hashes = {r[2] for _, _, rs in preserve for r in rs if r[2] is not None}
    needed = [(p, r) for p, _, rs in resizes for r in rs]
    needed += [(p, r) for p in creates if target[p]["k"] == "d" for r in target[p]["ranges"]]
    lacking = [(p, r) for p, r in needed
               if r[2] not in leaving_hashes and not layout.has_object(r[2])]
    if lacking and fill is not None:
        fill({r[2]: (target[p]["meta"], r[0], r[1]) for p, r in lacking if r[2] is not None})
        lacking = [(p, r) for p, r in lacking if not layout.has_object(r[2])]
    missing = sorted({p for p, _r in lacking})
    if missing:
        raise IntegrityError(
            "cannot restore " + ", ".join(missing[:5]) + (" …" if len(missing) > 5 else "")
            + ": their committed content is no longer in the store (it was changed or "
            "deleted outside h5vc before it could be preserved)"
        )

    # 3. preserve what leaves
    for p, meta, rs in preserve:
        report.rows_preserved += preserve_ranges(f, layout, p, meta, rs, force=force)
    changing = sorted(p for p in set(live) | set(target) if live.get(p) != target.get(p))
    if not changing:
        return report
    rows_out = [(p, r[1] - r[0]) for p, _n, rs in resizes for r in rs]
    rows_out += [(p, target[p]["n"]) for p in creates if target[p]["k"] == "d"]
    if rows_out:
        # twice: rows written over others leave their old bytes in the rollback journal
        ensure_space(f.filename,
                     2 * sum(k * _meta_row_bytes(target[p]["meta"]) for p, k in rows_out),
                     "the rows this checkout writes")
    if layout.unsynced:
        layout.sync()
    if before_mutate is not None:
        before_mutate(changing)

    # 4. mutate
    for p in deletes:
        if p in f:
            del f[p]
        report.paths_changed.append(p)
    referring: list[str] = []  # created objects with references: their targets come first
    valued: list[str] = []  # datasets of references (their values): likewise
    # datasets whose fill value refers to another object are made once it exists
    creates = sorted(creates, key=lambda p: target[p]["k"] == "d"
                     and target[p]["meta"].get("fill_ref") is not None)
    for p in creates:
        node = target[p]
        if node["k"] == "g":
            if p not in f:
                make_group(f, p, attr_order=True if "ao" in node else None)
            obj = f[p]
        else:
            obj = create_dataset(f, p, node["meta"], node["n"], attr_order="ao" in node)
            if "value" in node["meta"]:
                valued.append(p)
            if node["meta"].get("stored"):
                report.rows_written += _write_blobs(obj, layout, node["ranges"])
            else:
                report.rows_written += _write_ranges(obj, layout, node["ranges"])
        crash_point("restore.created")
        if any(has_refs(a["dtype"]) for a in node["attrs"].values()):
            referring.append(p)
        else:
            set_attrs(obj, node["attrs"], {}, order=node.get("ao"))
        report.paths_changed.append(p)
    for g in sorted({parent_of(p) for p in creates}):
        put_in_order(f, g, target)
    for p in referring:
        set_attrs(f[p], target[p]["attrs"], {}, order=target[p].get("ao"))
    created = set(creates)
    for p, b in target.items():  # references to objects made anew are made anew too
        if b["k"] == "d" and "value" in b["meta"] and p not in created and \
                ref_targets(b["meta"]["value"]) & created:
            valued.append(p)
    for p in valued:
        write_value(f[p], target[p]["meta"])
        if p not in report.paths_changed:
            report.paths_changed.append(p)
    for p, n, writing in resizes:
        ds = f[p]
        if ds.shape and ds.shape[0] != n:
            ds.resize(n, axis=0)
        report.rows_written += _write_ranges(ds, layout, writing)
        crash_point("restore.written")
        report.paths_changed.append(p)
    for p, b in target.items():
        a = live.get(p)
        if p in created or a is None:
            continue
        have = a["attrs"]
        if created:  # a reference to an object made anew must be made anew too
            have = {k: v for k, v in have.items() if not ref_targets(v) & created}
        order = b.get("ao") if b.get("ao") != a.get("ao") or b["attrs"] != have else None
        if set_attrs(f[p], b["attrs"], have, order=order) and p not in report.paths_changed:
            report.paths_changed.append(p)
    return report


def _write_ranges(ds: h5py.Dataset, layout: Layout, ranges: list[list[Any]]) -> int:
    """Write preserved ranges into ``ds``: adjacent ones gathered and written at once."""
    if not ranges:
        return 0
    dkey = dtype_key(ds.dtype)
    if ds.shape == ():
        (_s, _e, h), = ranges
        arr = layout.read_object(h)
        _check(arr, dkey, h)
        write_rows(ds, 0, arr)
        return 1
    rows = 0
    dt = ds.dtype
    row_bytes = _row_bytes(ds)
    for run in _runs(ranges, row_bytes):
        s0, e0 = run[0][0], run[-1][1]
        if (e0 - s0) * row_bytes > RUN_BYTES:  # one range larger than a run: in slices
            (s, e, h), = run
            pack, a, b = layout.locate(h)
            parts = (pack[x:y] for x, y in row_slices(pack, a, b))
            if rows_hash_parts(parts, (e - s, *ds.shape[1:]), dkey) != h:
                raise IntegrityError(
                    f"preserved content {h[:10]} does not match its hash; the store is damaged")
            for x, y in row_slices(pack, a, b):
                write_rows(ds, s + x - a, pack[x:y])
            rows += e - s
            continue
        buf = np.empty((e0 - s0, *ds.shape[1:]), dtype=dt)
        for s, e, h in run:
            view = buf[s - s0:e - s0]
            got = layout.read_object(h, out=view)
            if got is not view:
                view[...] = got
            _check(view, dkey, h)
        write_rows(ds, s0, buf)
        rows += e0 - s0
    return rows


def _check(arr: np.ndarray, dkey: str, h: str) -> None:
    if rows_hash(arr, dkey) != h:
        raise IntegrityError(f"preserved content {h[:10]} does not match its hash; the store is damaged")
