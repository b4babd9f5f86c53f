"""The tracked state of a commit, and how a commit's changes transform it.

A state maps each tracked path to a node (plain JSON, so it can be cached in the file)::

    group:   {"k": "g", "attrs": {name: value}, "src": {file: [size, hash, time]}}
    dataset: {"k": "d", "attrs": {...}, "meta": {...}, "n": rows, "ranges": [[start, stop, hash]]}

and, on an object that tracks the creation order of its attributes, ``"ao"``: their names in
that order (netCDF4 lists attributes so); on an object in a group that tracks the creation
order of its links, ``"c"``: the creation order of its link when it was added (a checkout
that makes objects anew puts the group's links back in that order).

``meta`` is everything about a dataset except its length along axis 0: dtype, rank, the
shape after axis 0, chunks, maxshape, filters and fill value. A scalar dataset has one row,
an empty (null dataspace) one none. Ranges never cross a block (one chunk row) and together
cover ``[0, n)`` exactly.

Changes are a list of operations, the same in commits and in ``status``::

    {"op": "add_group", "path", "c"?}           {"op": "delete", "path"}   (the whole subtree)
    {"op": "add_dataset", "path", "meta", "c"?} {"op": "redefine", "path", "meta", "old"}
    {"op": "rows", "path", "from", "to", "ranges"}   new length and the ranges (re)written
    {"op": "attr", "path", "name", "value", "old"}   value None = deleted
    {"op": "attr_order", "path", "names"}   attribute creation order (None: not tracked)
    {"op": "sources", "path", "files": [[file, size, hash]], "time"}   provenance (h5vc add)

``src`` (only on groups that files were imported into) is provenance: which source file
(relative to the folder given to ``h5vc add``), its size and content hash, and when it was
imported. It is not content of the HDF5 file: a scan never produces it, and it follows
checkouts because it is part of each commit's state.
"""

from __future__ import annotations

import time
from bisect import bisect_right
from collections.abc import Mapping
from typing import Any

# a dict, or a PagedState read lazily from a large snapshot (engine/snapshot.py, which this
# module does not import: such a state offers derive() and below()); read-only either way
State = Mapping[str, dict[str, Any]]

ROOT = "/"


def parent_of(path: str) -> str:
    return path.rsplit("/", 1)[0] or ROOT


def is_below(path: str, top: str) -> bool:
    return path == top or path.startswith(top.rstrip("/") + "/")


def selected(path: str, selection: list[str] | None) -> bool:
    """True when a store holding ``selection`` (None: everything) holds ``path``: the path lies
    under a selected one, or is a group on the way to one."""
    return selection is None or any(is_below(path, s) or is_below(s, path) for s in selection)


def within(state: State, selection: list[str] | None) -> State:
    """The part of ``state`` a store holding ``selection`` holds (``state`` itself for None)."""
    if selection is None:
        return state
    return {p: n for p, n in state.items() if selected(p, selection)}


def row_bytes(tail: tuple[int, ...] | list[int], itemsize: int) -> int:
    """Bytes of one row (at least 1): the unit every row budget is counted in."""
    n = 1
    for d in tail:
        n *= int(d)
    return max(1, n * max(itemsize, 1))


def block_rows(meta: dict[str, Any], n: int) -> int:
    """Rows per block: the chunk's first dimension, or the whole dataset when contiguous."""
    chunks = meta.get("chunks")
    if chunks:
        return int(chunks[0])
    return max(n, 1)


def split_blocks(start: int, stop: int, block: int) -> list[tuple[int, int]]:
    out = []
    s = start
    while s < stop:
        e = min(stop, (s // block + 1) * block)
        out.append((s, e))
        s = e
    return out


def utc_now() -> str:
    """The time a commit (or an import) records: UTC, microseconds, ``...Z``."""
    t = time.time_ns()
    return (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t // 10**9))
            + f".{t // 1000 % 10**6:06d}Z")


def empty_state() -> State:
    return {ROOT: {"k": "g", "attrs": {}}}


def apply_changes(state: State, changes: list[dict[str, Any]]) -> State:
    """A new state: ``state`` with ``changes`` applied (``state`` itself is not modified).
    A paged state gives a paged state that shares its pages: nothing untouched is decoded."""
    derive = getattr(state, "derive", None)
    new: Any = derive() if derive is not None else dict(state)
    touched: set[str] = set()

    def node(path: str) -> dict[str, Any]:
        if path not in touched:
            old = new[path]
            n = dict(old)
            n["attrs"] = dict(old["attrs"])
            if "ranges" in old:
                n["ranges"] = list(old["ranges"])
            new[path] = n
            touched.add(path)
        return new[path]

    for ch in changes:
        op, path = ch["op"], ch["path"]
        if op == "add_group":
            new[path] = {"k": "g", "attrs": {}, **({"c": ch["c"]} if "c" in ch else {})}
            touched.add(path)
        elif op == "add_dataset":
            new[path] = {"k": "d", "attrs": {}, "meta": ch["meta"], "n": 0, "ranges": [],
                         **({"c": ch["c"]} if "c" in ch else {})}
            touched.add(path)
        elif op == "redefine":
            nd = node(path)
            nd["meta"], nd["n"], nd["ranges"] = ch["meta"], 0, []
        elif op == "delete":
            below = new.below(path) if derive is not None else [
                p for p in new if is_below(p, path)]
            for p in below:
                del new[p]
                touched.discard(p)
        elif op == "rows":
            nd = node(path)
            n = ch["to"]
            fresh = sorted(list(r) for r in ch["ranges"])
            ranges = nd["ranges"]
            cut = min(fresh[0][0] if fresh else n, n)
            # ranges are sorted and disjoint, so their ends are sorted: those ending at or
            # before the cut stay as they are (all of them, for an append)
            i = bisect_right(ranges, cut, key=lambda r: r[1])
            tail = [r for r in ranges[i:]
                    if r[1] <= n and not any(f[0] < r[1] and r[0] < f[1] for f in fresh)]
            nd["ranges"] = ranges[:i] + (sorted(tail + fresh) if tail else fresh)
            nd["n"] = n
        elif op == "sources":
            nd = node(path)
            src = dict(nd.get("src") or {})
            for name, size, h in ch["files"]:
                src[name] = [size, h, ch.get("time")]
            nd["src"] = src
        elif op == "attr":
            nd = node(path)
            if ch["value"] is None:
                nd["attrs"].pop(ch["name"], None)
            else:
                nd["attrs"][ch["name"]] = ch["value"]
        elif op == "attr_order":
            nd = node(path)
            if ch["names"] is None:
                nd.pop("ao", None)
            else:
                nd["ao"] = list(ch["names"])
        else:
            raise ValueError(f"unknown change {op!r}")
    return new


def format_needed(changes: list[dict[str, Any]]) -> int:
    """The lowest ``/.h5vc`` format that can hold a commit of ``changes`` (see
    :data:`h5vc.engine.format.FORMAT_VERSION`): 4 for attribute creation order and what objects
    made anew need (an older h5vc would fail on them, or call the store changed), 3 for
    provenance, else 2."""
    need = 2
    for ch in changes:
        op = ch["op"]
        meta = ch.get("meta") if op in ("add_dataset", "redefine") else None
        value = ch.get("value") if op == "attr" else None
        if op == "attr_order" or (meta is not None and ("h5t" in meta or "fill_ref" in meta)) \
                or (isinstance(value, dict) and "h5t" in value):
            return 4
        if op == "sources":
            need = 3
    return need


def summarize(changes: list[dict[str, Any]]) -> dict[str, int]:
    """Counts for a one-line summary: rows added/removed/rewritten, objects, attributes."""
    s = {"added": 0, "removed": 0, "rewritten": 0, "created": 0, "deleted": 0,
         "redefined": 0, "attrs": 0}
    for ch in changes:
        op = ch["op"]
        if op == "rows":
            a, b = ch["from"], ch["to"]
            if b > a:
                s["added"] += b - a
            else:
                s["removed"] += a - b
            s["rewritten"] += sum(min(r[1], a) - r[0] for r in ch["ranges"] if r[0] < a)
        elif op in ("add_group", "add_dataset"):
            s["created"] += 1
        elif op == "delete":
            s["deleted"] += 1
        elif op == "redefine":
            s["redefined"] += 1
        elif op == "attr":
            s["attrs"] += 1
        elif op == "attr_order" and not any(c["op"] == "attr" and c["path"] == ch["path"]
                                            for c in changes):
            s["attrs"] += 1  # only their order changed
    return s


_SUMMARY = [("removed", "-{:,} rows"), ("rewritten", "~{:,} rows rewritten"),
            ("created", "{} created"), ("deleted", "{} deleted"), ("redefined", "{} redefined")]


def summary_line(changes: list[dict[str, Any]]) -> str:
    """One line, as ``h5vc log`` prints it: ``+1,000 rows /sensors/a, 1 attr``."""
    s = summarize(changes)
    parts = []
    if s["added"]:
        paths = sorted({c["path"] for c in changes if c["op"] == "rows" and c["to"] > c["from"]})
        where = f" {paths[0]}" if len(paths) == 1 else f" in {len(paths)} datasets"
        parts.append(f"+{s['added']:,} rows{where}")
    parts += [fmt.format(s[key]) for key, fmt in _SUMMARY if s[key]]
    if s["attrs"]:
        parts.append(f"{s['attrs']} attr{'s' if s['attrs'] != 1 else ''}")
    return ", ".join(parts) or "no changes"
