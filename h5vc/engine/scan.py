"""Read the live store: dataset metadata, attributes, rows; and compare it with a state.

``scan`` finds what differs from a commit's state (metadata only unless ``verify``) and
returns changes whose new ranges still lack hashes; ``materialize`` reads and hashes those
rows. ``status`` shows the first, ``commit`` records the second.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import h5py
import numpy as np

from ..errors import InvalidInputError
from .format import META
from .hashing import decode_value, dtype_key, encode_dtype, encode_value, has_refs
from .rows import as_0d, live_hash
from .state import ROOT, State, block_rows, is_below, split_blocks

__all__ = ["attr_changes", "create_kwargs", "dataset_meta", "live_kinds", "materialize",
           "object_filters", "read_attrs", "scan", "scan_suspects"]


_BUILTIN_FILTERS = {1, 2, 3, 4, 5, 6, 32000}


def ensure_filter(code: int) -> None:
    """Make a third-party HDF5 filter (blosc, zstd, ...) usable: load hdf5plugin if installed."""
    if code in _BUILTIN_FILTERS or h5py.h5z.filter_avail(code):
        return
    try:
        import hdf5plugin  # noqa: F401  - registers its filters with HDF5 on import
    except ImportError:
        pass  # HDF5 then names the missing filter when the data is read or written


def dataset_meta(ds: h5py.Dataset) -> tuple[dict[str, Any], int]:
    """(meta, rows) of a live dataset; see :mod:`h5vc.engine.state` for what meta holds."""
    shape = ds.shape
    dt = ds.dtype
    if shape is None:
        rank, tail, n = -1, [], 0
    elif shape == ():
        rank, tail, n = 0, [], 1
    else:
        rank, tail, n = len(shape), list(shape[1:]), int(shape[0])
    filters = []
    chunks = None
    if rank > 0:
        dcpl = ds.id.get_create_plist()
        for i in range(dcpl.get_nfilters()):
            code, flags, values, _name = dcpl.get_filter(i)
            ensure_filter(int(code))
            filters.append([int(code), int(flags), [int(v) for v in values]])
        chunks = list(ds.chunks) if ds.chunks else None
    try:
        enc_dt = encode_dtype(dt)
    except InvalidInputError as e:
        raise InvalidInputError(f"dataset {ds.name}: {e}") from None
    if has_refs(enc_dt):
        raise InvalidInputError(
            f"dataset {ds.name} holds HDF5 object references, which h5vc versions in "
            "attributes but not yet in datasets; store the targets' paths as strings instead")
    fill = None
    if rank >= 0 and not dt.hasobject:
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
    return meta, n


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
        try:
            return f[ref].name
        except (KeyError, ValueError, RuntimeError, OSError, TypeError):
            return None

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
        dt, shape = aid.dtype, aid.shape
        try:
            if shape is None:
                out[name] = encode_value(None, dt, None)
                continue
            value = attrs[name]
            arr = as_0d(value, dt) if shape == () else np.asarray(value, dtype=dt)
            enc = out[name] = encode_value(arr, dt, shape, ref_paths(obj.file))
        except InvalidInputError as e:
            raise InvalidInputError(f"attribute {name!r} of {obj.name}: {e}") from None
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


def live_kinds(f: h5py.File, under: str = ROOT) -> dict[str, str]:
    """Every tracked path below ``under`` (itself included): ``"g"`` or ``"d"``."""
    out: dict[str, str] = {}
    top = f[under]
    if isinstance(top, h5py.Dataset):
        return {under: "d"}
    out[under] = "g"
    prefix = "" if under == ROOT else under
    # /.h5vc may hold thousands of preserved objects: never walk into it
    # soft and external links are not tracked objects (visititems skips them too)
    children = [k for k in top if not (under == ROOT and k == META)
                and isinstance(top.get(k, getlink=True), h5py.HardLink)]
    for key in children:
        child = top[key]
        base = f"{prefix}/{key}"
        if isinstance(child, h5py.Dataset):
            out[base] = "d"
            continue
        out[base] = "g"

        def visit(name: str, obj: Any, base: str = base) -> None:
            out[f"{base}/{name}"] = "d" if isinstance(obj, h5py.Dataset) else "g"

        child.visititems(visit)
    # visititems follows hard links once; soft and external links are not tracked objects
    return out


def _same_rows(ds: h5py.Dataset, s: int, e: int, dkey: str, h: str, unreadable_differ: bool) -> bool:
    if not unreadable_differ:
        return live_hash(ds, s, e, dkey) == h
    try:
        return live_hash(ds, s, e, dkey) == h
    except (OSError, RuntimeError, ValueError):
        return False


def _dataset_changes(path: str, ds: h5py.Dataset, node: dict[str, Any] | None,
                     verify: bool, out: list[dict[str, Any]], unreadable_differ: bool = False) -> None:
    meta, n = dataset_meta(ds)
    if node is None or node["k"] != "d" or meta != node["meta"]:
        if node is None or node["k"] != "d":
            out.append({"op": "add_dataset", "path": path, "meta": meta})
        else:
            out.append({"op": "redefine", "path": path, "meta": meta, "old": node["meta"]})
        ranges = [[s, e, None] for s, e in split_blocks(0, n, block_rows(meta, n))]
        out.append({"op": "rows", "path": path, "from": 0, "to": n, "ranges": ranges})
        return
    old_n = node["n"]
    ranges: list[list[Any]] = []
    if n > old_n:
        ranges += [[s, e, None] for s, e in split_blocks(old_n, n, block_rows(meta, n))]
    elif n < old_n:
        ranges += [[r[0], n, None] for r in node["ranges"] if r[0] < n < r[1]]
    if verify:
        dkey = dtype_key(ds.dtype)
        for s, e, h in node["ranges"]:
            if e <= n and not _same_rows(ds, s, e, dkey, h, unreadable_differ):
                ranges.append([s, e, None])
    if n != old_n or ranges:
        out.append({"op": "rows", "path": path, "from": old_n, "to": n, "ranges": sorted(ranges)})


def attr_changes(path: str, live: dict[str, Any], old: dict[str, Any],
                  out: list[dict[str, Any]]) -> None:
    for name in sorted(set(live) | set(old)):
        a, b = live.get(name), old.get(name)
        if a != b:
            out.append({"op": "attr", "path": path, "name": name, "value": a, "old": b})


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
            out.append({"op": "add_group", "path": p})
            node = None
    else:
        if node is not None and node["k"] != "d":
            out.append({"op": "delete", "path": p})
            node = None
        _dataset_changes(p, obj, node, verify, out, unreadable_differ)
    attr_changes(p, read_attrs(obj), node["attrs"] if node else {}, out)


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
            dkey = dtype_key(ds.dtype)
            hashes = (known or {}).get(ch["path"], {})
            ranges = []
            for s, e, h in ch["ranges"]:
                if h is None:
                    h = hashes.get((s, e)) or live_hash(ds, s, e, dkey)
                ranges.append([s, e, h])
            ch = dict(ch, ranges=ranges)
        out.append(ch)
    return out

