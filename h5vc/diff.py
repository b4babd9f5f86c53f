"""What differs between two states: per path, from recorded metadata and hashes only.

Rows are compared by the hashes of their committed ranges, so a rewrite is found to the
block of rows h5vc hashes together (the dataset's chunk rows, at most a few MiB); appended and
removed rows are exact. No row data is read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .engine.hashing import plain_value
from .engine.state import State

__all__ = ["Diff", "PathDiff", "diff_states"]

META_FIELDS = ("dtype", "h5t", "rank", "tail", "chunks", "maxshape", "filters", "fill", "nofill",
               "fill_default", "fill_ref", "fill_time", "compact", "stored", "value")


@dataclass
class PathDiff:
    """How one path differs. ``status``: "created", "deleted", "replaced" (a group became a
    dataset, or the other way) or "changed". Row ranges are (start, stop)."""

    path: str
    kind: str  # "group" or "dataset" (the newer kind when replaced)
    status: str
    rows: tuple[int, int] | None = None  # (rows before, rows after) of a dataset
    appended: list[tuple[int, int]] = field(default_factory=list)
    removed: list[tuple[int, int]] = field(default_factory=list)
    rewritten: list[tuple[int, int]] = field(default_factory=list)
    meta: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # field -> (old, new)
    attrs: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # name -> (old, new); None: absent

    def inverse(self) -> PathDiff:
        swap = {"created": "deleted", "deleted": "created"}
        return PathDiff(self.path, self.kind, swap.get(self.status, self.status),
                        None if self.rows is None else (self.rows[1], self.rows[0]),
                        list(self.removed), list(self.appended), list(self.rewritten),
                        {k: (b, a) for k, (a, b) in self.meta.items()},
                        {k: (b, a) for k, (a, b) in self.attrs.items()})

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "kind": self.kind, "status": self.status}
        if self.rows is not None:
            out["rows"] = list(self.rows)
        for key in ("appended", "removed", "rewritten"):
            if getattr(self, key):
                out[key] = [list(r) for r in getattr(self, key)]
        if self.meta:
            out["meta"] = {k: {"old": a, "new": b} for k, (a, b) in self.meta.items()}
        if self.attrs:
            out["attrs"] = {k: {"old": a, "new": b} for k, (a, b) in self.attrs.items()}
        return out

    def stat(self) -> str:
        """One line: ``+appended -removed ~rewritten rows, N attributes, metadata``."""
        parts = []
        if self.kind == "dataset" and (self.appended or self.removed or self.rewritten):
            count = lambda rs: sum(e - s for s, e in rs)  # noqa: E731
            parts.append(f"+{count(self.appended):,} -{count(self.removed):,} "
                         f"~{count(self.rewritten):,} rows")
        if self.attrs:
            parts.append(f"{len(self.attrs)} attribute{'s' if len(self.attrs) != 1 else ''}")
        if self.meta:
            parts.append("metadata (" + ", ".join(self.meta) + ")")
        return ", ".join(parts)


@dataclass
class Diff:
    """The paths that differ from ``a`` to ``b`` (commit ids; ``b`` None: the live store)."""

    a: str | None
    b: str | None
    paths: list[PathDiff]

    def __bool__(self) -> bool:
        return bool(self.paths)

    def __iter__(self) -> Any:
        return iter(self.paths)

    def __getitem__(self, path: str) -> PathDiff:
        for p in self.paths:
            if p.path == path:
                return p
        raise KeyError(path)

    def inverse(self) -> Diff:
        return Diff(self.b, self.a, [p.inverse() for p in self.paths])

    def to_json(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "paths": [p.to_json() for p in self.paths]}


def _runs(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def _rewritten(ra: list[list[Any]], rb: list[list[Any]], m: int) -> list[tuple[int, int]]:
    """Rows below ``m`` whose covering ranges differ (range by range: exact where both sides
    split the rows alike, the whole span where they do not)."""
    if [tuple(r) for r in ra if r[0] < m] == [tuple(r) for r in rb if r[0] < m]:
        return []
    cuts = sorted({0, m} | {x for r in (*ra, *rb) for x in (r[0], r[1]) if 0 < x < m})
    out = []
    ia = ib = 0
    for x, y in zip(cuts, cuts[1:], strict=False):
        while ia < len(ra) and ra[ia][1] <= x:
            ia += 1
        while ib < len(rb) and rb[ib][1] <= x:
            ib += 1
        a = tuple(ra[ia]) if ia < len(ra) and ra[ia][0] <= x else None
        b = tuple(rb[ib]) if ib < len(rb) and rb[ib][0] <= x else None
        if a is None or b is None or a != b:
            out.append((x, y))
    return _runs(out)


def _attrs(a: dict[str, Any], b: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    out = {}
    for k in sorted(set(a) | set(b)):
        if a.get(k) != b.get(k):
            out[k] = (plain_value(a.get(k)), plain_value(b.get(k)))
    return out


def _dataset_created(p: str, node: dict[str, Any], status: str = "created") -> PathDiff:
    n = int(node["n"]) if node["meta"]["rank"] > 0 else 0
    return PathDiff(p, "dataset", status, (0, n), appended=[(0, n)] if n else [],
                    attrs=_attrs({}, node["attrs"]))


def diff_states(a: State, b: State, paths: list[str] | None = None,
                a_id: str | None = None, b_id: str | None = None) -> Diff:
    """The differences from state ``a`` to state ``b``, for every path, or only for ``paths``
    and what lies below them."""
    def wanted(p: str) -> bool:
        return paths is None or any(p == q or p.startswith(q.rstrip("/") + "/") or q == "/"
                                    for q in paths)

    out: list[PathDiff] = []
    for p in sorted(set(a) | set(b)):
        if not wanted(p):
            continue
        x, y = a.get(p), b.get(p)
        if x == y:
            continue
        if x is None or y is None:
            node = y if x is None else x
            assert node is not None
            made = _dataset_created(p, node) if node["k"] == "d" else PathDiff(
                p, "group", "created", attrs=_attrs({}, node["attrs"]))
            out.append(made if x is None else made.inverse())
            continue
        if x["k"] != y["k"]:
            d = _dataset_created(p, y, "replaced") if y["k"] == "d" else PathDiff(p, "group", "replaced")
            d.attrs = _attrs(x["attrs"], y["attrs"])
            if x["k"] == "d" and x["meta"]["rank"] > 0 and int(x["n"]):
                d.removed = [(0, int(x["n"]))]
                d.rows = (int(x["n"]), d.rows[1] if d.rows else 0)
            out.append(d)
            continue
        d = PathDiff(p, "group" if x["k"] == "g" else "dataset", "changed",
                     attrs=_attrs(x["attrs"], y["attrs"]))
        if x["k"] == "d":
            d.meta = {k: (x["meta"].get(k), y["meta"].get(k)) for k in META_FIELDS
                      if x["meta"].get(k) != y["meta"].get(k)}
            if x["meta"]["rank"] > 0 and y["meta"]["rank"] > 0:
                na, nb = int(x["n"]), int(y["n"])
                d.rows = (na, nb)
                if nb > na:
                    d.appended = [(na, nb)]
                elif nb < na:
                    d.removed = [(nb, na)]
                d.rewritten = _rewritten(x["ranges"], y["ranges"], min(na, nb))
            elif x["ranges"] != y["ranges"] and y["meta"]["rank"] == 0:
                d.rewritten = [(0, 1)]  # a scalar's value
        if "ao" in x and "ao" in y and x["ao"] != y["ao"]:  # the creation order of attributes
            d.meta["attribute order"] = (x["ao"], y["ao"])
        if d.attrs or d.meta or d.appended or d.removed or d.rewritten:
            out.append(d)
    return Diff(a_id, b_id, out)
