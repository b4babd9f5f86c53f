"""A large state snapshot kept as pages, each checked and decoded only when it is needed.

A snapshot whose nodes together take more than :data:`PAGE_BYTES` of JSON is written as pages:
the paths in sorted order, cut into runs of about :data:`PAGE_BYTES`. One page is::

    count (u32) | length of the paths (u32) | the paths, NUL-separated (UTF-8) |
    count + 1 offsets (u32) | the nodes: a JSON array of each node's canonical JSON

Offset ``i`` is where node ``i`` starts in the array, and the last is the array's length, so
node ``i`` ends one byte (its comma, or the closing bracket) before offset ``i + 1``: one node
is decoded from its slice, a whole page with one call.

HDF5 names never hold a NUL, so the separator is unambiguous. The state record then holds
only a header, ``{"commit", "journal_len", "paths", "pages": [[first path, start, length,
xxh3-64 hex, count], ...]}``, and the pages lie in a side dataset written with it. Opening the
store reads the header; looking up one path reads, checks and splits one page and decodes one
node. A page that does not check itself calls ``rescue``, which returns the snapshot commit's
state rebuilt from the journal: from then on every lookup is served from that, so a damaged
page costs time, never a wrong answer.

:class:`PagedState` is a read-only mapping over the pages plus an overlay of the paths changed
since (``apply_changes`` builds one from another without decoding what it does not touch), and
:func:`encode` writes a state back as pages, copying the bytes of every page the overlay does
not touch.
"""

from __future__ import annotations

import json
import struct
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
import xxhash

PAGE_BYTES = 64 << 10  # a page's nodes, about; also the least snapshot that is paged
_U32 = struct.Struct("<I")
_CANON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)

Node = dict[str, Any]
Reader = Callable[[int, int], "bytes | None"]  # (start, length) -> the side dataset's bytes


def node_bytes(node: Node) -> bytes:
    return _CANON.encode(node).encode()


def _page_bytes(items: list[tuple[str, bytes]]) -> bytes:
    keys = "\0".join(k for k, _ in items).encode()
    nodes = b"[" + b",".join(b for _, b in items) + b"]"
    offs = np.ones(len(items) + 1, dtype="<u4")
    np.cumsum([len(b) + 1 for _, b in items], out=offs[1:])
    offs[1:] += 1
    offs[-1] = len(nodes)
    return b"".join([_U32.pack(len(items)), _U32.pack(len(keys)), keys, offs.tobytes(), nodes])


class PageError(Exception):
    """A page that does not check itself or does not parse."""


class _Page:
    __slots__ = ("keys", "index", "offs", "blob", "nodes")

    def __init__(self, raw: bytes, count: int) -> None:
        try:
            n, klen = _U32.unpack_from(raw, 0)[0], _U32.unpack_from(raw, 4)[0]
            keys = raw[8:8 + klen].decode().split("\0") if n else []
            at = 8 + klen
            offs = np.frombuffer(raw, dtype="<u4", count=n + 1, offset=at)
        except (struct.error, ValueError, UnicodeDecodeError):
            raise PageError from None
        blob = memoryview(raw)[at + 4 * (n + 1):]
        if (n != count or len(keys) != n or int(offs[-1]) != len(blob)
                or bytes(blob[:1]) != b"[" or bytes(blob[-1:]) != b"]"):
            raise PageError
        self.keys: list[str] = keys
        self.index = {k: i for i, k in enumerate(keys)}
        self.offs = offs.tolist()
        self.blob = blob
        self.nodes: dict[int, Node] = {}

    def raw_node(self, i: int) -> bytes:
        return bytes(self.blob[self.offs[i]:self.offs[i + 1] - 1])

    def node(self, i: int) -> Node:
        got = self.nodes.get(i)
        if got is None:
            try:
                got = json.loads(self.blob[self.offs[i]:self.offs[i + 1] - 1].tobytes())
            except ValueError:
                raise PageError from None
            if not isinstance(got, dict):
                raise PageError
            self.nodes[i] = got
        return got

    def all_nodes(self) -> list[Node]:
        if len(self.nodes) < len(self.keys):
            try:
                every = json.loads(self.blob.tobytes())
            except ValueError:
                raise PageError from None
            if not (isinstance(every, list) and len(every) == len(self.keys)
                    and all(isinstance(n, dict) for n in every)):
                raise PageError
            for i, n in enumerate(every):
                self.nodes.setdefault(i, n)
        return [self.nodes[i] for i in range(len(self.keys))]


class Pages:
    """The pages of one stored snapshot, read and checked one at a time, cached once read."""

    def __init__(self, entries: list[list[Any]], read: Reader,
                 rescue: Callable[[], Mapping[str, Node]], seq: int = 0) -> None:
        self.seq = seq  # the record slot the pages belong to
        self.entries = entries
        self.firsts = [e[0] for e in entries]
        self.total = sum(int(e[4]) for e in entries)
        self._read = read
        self._rescue = rescue
        self._pages: dict[int, _Page] = {}
        self._raw: dict[int, bytes] = {}
        self.rescued: Mapping[str, Node] | None = None

    def _fail(self) -> None:
        if self.rescued is None:
            self.rescued = self._rescue()
            self._pages.clear()
            self._raw.clear()

    def raw(self, i: int) -> bytes | None:
        """Page ``i``'s bytes, checked (None once the pages were given up for the journal)."""
        if self.rescued is not None:
            return None
        got = self._raw.get(i)
        if got is None:
            _first, start, length, check, _count = self.entries[i]
            got = self._read(int(start), int(length))
            if got is None or len(got) != length or xxhash.xxh3_64_hexdigest(got) != check:
                self._fail()
                return None
            self._raw[i] = got
        return got

    def load_all(self) -> None:
        """Read every page into memory: before their side dataset is written over."""
        for i in range(len(self.entries)):
            if self.raw(i) is None:
                return

    def page(self, i: int) -> _Page | None:
        got = self._pages.get(i)
        if got is None:
            raw = self.raw(i)
            if raw is None:
                return None
            try:
                got = _Page(raw, int(self.entries[i][4]))
            except PageError:
                self._fail()
                return None
            self._pages[i] = got
        return got

    def where(self, path: str) -> int:
        """The page whose range holds ``path`` (page 0 takes everything before the second)."""
        return max(0, bisect_right(self.firsts, path) - 1)

    def get(self, path: str) -> Node | None:
        if self.rescued is None:
            pg = self.page(self.where(path))
            if pg is not None:
                i = pg.index.get(path)
                if i is None:
                    return None
                try:
                    return pg.node(i)
                except PageError:
                    self._fail()
        assert self.rescued is not None
        return self.rescued.get(path)

    def has(self, path: str) -> bool:
        if self.rescued is None:
            pg = self.page(self.where(path))
            if pg is not None:
                return path in pg.index
        assert self.rescued is not None
        return path in self.rescued

    def keys(self) -> Iterator[str]:
        if self.rescued is None:
            out: list[str] = []
            for i in range(len(self.entries)):
                pg = self.page(i)
                if pg is None:
                    break
                out += pg.keys
            else:
                yield from out
                return
        assert self.rescued is not None
        yield from self.rescued

    def items(self) -> Iterator[tuple[str, Node]]:
        if self.rescued is None:
            out: list[tuple[str, Node]] = []
            for i in range(len(self.entries)):
                pg = self.page(i)
                if pg is None:
                    break
                try:
                    out += zip(pg.keys, pg.all_nodes(), strict=True)
                except PageError:
                    self._fail()
                    break
            else:
                yield from out
                return
        assert self.rescued is not None
        yield from self.rescued.items()

    def keys_between(self, lo: str, hi: str) -> list[str]:
        """The stored paths ``p`` with ``lo <= p < hi``."""
        if self.rescued is None:
            out: list[str] = []
            for i in range(self.where(lo), max(self.where(lo) + 1, bisect_left(self.firsts, hi))):
                pg = self.page(i)
                if pg is None:
                    break
                out += [k for k in pg.keys if lo <= k < hi]
            else:
                return out
        assert self.rescued is not None
        return [k for k in self.rescued if lo <= k < hi]

    def bad_pages(self) -> list[int]:
        """Every page that does not check itself or parse (all of them read: for verify)."""
        bad = []
        for i, e in enumerate(self.entries):
            raw = self._read(int(e[1]), int(e[2]))
            try:
                if raw is None or xxhash.xxh3_64_hexdigest(raw) != e[3]:
                    raise PageError
                _Page(raw, int(e[4])).all_nodes()
            except PageError:
                bad.append(i)
        return bad


class PagedState(Mapping[str, Node]):
    """A state: stored pages plus the paths set or deleted since (read-only once built)."""

    def __init__(self, pages: Pages, over: dict[str, Node] | None = None,
                 gone: set[str] | None = None) -> None:
        self.pages = pages
        self.over: dict[str, Node] = over if over is not None else {}
        self.gone: set[str] = gone if gone is not None else set()  # stored paths deleted
        self._len: int | None = None

    def derive(self) -> PagedState:
        """A copy to change (the pages are shared, the overlay copied)."""
        return PagedState(self.pages, dict(self.over), set(self.gone))

    def __getitem__(self, path: str) -> Node:
        got = self.over.get(path)
        if got is not None:
            return got
        if path in self.gone:
            raise KeyError(path)
        got = self.pages.get(path)
        if got is None:
            raise KeyError(path)
        return got

    def __contains__(self, path: object) -> bool:
        if not isinstance(path, str):
            return False
        return path in self.over or (path not in self.gone and self.pages.has(path))

    def __iter__(self) -> Iterator[str]:
        for k in self.pages.keys():
            if k not in self.gone:
                yield k
        for k in self.over:
            if not self.pages.has(k):
                yield k

    def items(self) -> Iterator[tuple[str, Node]]:  # type: ignore[override]
        """Every (path, node): each page decoded with one call."""
        over, gone = self.over, self.gone
        for k, node in self.pages.items():
            if k not in gone:
                yield k, over.get(k, node)
        for k, node in over.items():
            if not self.pages.has(k):
                yield k, node

    def values(self) -> Iterator[Node]:  # type: ignore[override]
        return (node for _k, node in self.items())

    def __len__(self) -> int:
        if self._len is None:
            self._len = (self.pages.total - len(self.gone)
                         + sum(1 for k in self.over if not self.pages.has(k)))
        return self._len

    # building (apply_changes only)

    def __setitem__(self, path: str, node: Node) -> None:
        self.over[path] = node
        self.gone.discard(path)
        self._len = None

    def __delitem__(self, path: str) -> None:
        if path not in self:
            raise KeyError(path)
        self.over.pop(path, None)
        if self.pages.has(path):
            self.gone.add(path)
        self._len = None

    def below(self, top: str) -> list[str]:
        """The paths at or below ``top``: read from the pages that can hold them."""
        if top == "/":
            return list(self)
        stored = [top] if self.pages.has(top) else []
        stored += self.pages.keys_between(top + "/", top + "0")  # "0" follows "/"
        out = [k for k in stored if k not in self.gone]
        out += [k for k in self.over if (k == top or k.startswith(top + "/")) and k not in out]
        return out


def changed_paths(old: Mapping[str, Node], new: Mapping[str, Node]) -> set[str] | None:
    """The paths whose node differs between two states, told from their overlays when both
    are built on the same pages; None when that cannot be told without reading both."""
    if not (isinstance(old, PagedState) and isinstance(new, PagedState)
            and old.pages is new.pages):
        return None
    maybe = old.over.keys() | new.over.keys() | (old.gone ^ new.gone)
    return {p for p in maybe if old.get(p) != new.get(p)}


def encode(state: Mapping[str, Node]) -> tuple[list[list[Any]], bytes] | None:
    """``state`` as (page entries, page bytes); None when its nodes fit in one page, where the
    plain one-record snapshot serves better. Pages the overlay of a :class:`PagedState` does not
    touch are copied as stored."""
    base = state.pages if isinstance(state, PagedState) and state.pages.rescued is None else None
    runs: list[list[tuple[str, bytes]] | bytes] = []  # items to encode, or a stored page
    if base is not None:
        assert isinstance(state, PagedState)
        touched: dict[int, list[str]] = {}
        for k in [*state.over, *state.gone]:
            touched.setdefault(base.where(k), []).append(k)
        for i in range(len(base.entries)):
            if i not in touched:
                raw = base.raw(i)
                if raw is None:
                    break
                runs.append(raw)
                continue
            pg = base.page(i)
            if pg is None:
                break
            items = [(k, pg.raw_node(j)) for j, k in enumerate(pg.keys)
                     if k not in state.gone and k not in state.over]
            items += [(k, node_bytes(state.over[k])) for k in touched[i] if k in state.over]
            items.sort(key=lambda t: t[0])
            runs.append(items)
        if base.rescued is not None:  # a page failed: encode the whole state afresh
            base = None
    if base is None:
        runs = [sorted((k, node_bytes(v)) for k, v in state.items())]
        if sum(len(b) for _, b in runs[0]) <= PAGE_BYTES:  # type: ignore[misc]
            return None
    entries: list[list[Any]] = []
    parts: list[bytes] = []
    pos = 0

    def put(raw: bytes, first: str, count: int) -> None:
        nonlocal pos
        entries.append([first, pos, len(raw), xxhash.xxh3_64_hexdigest(raw), count])
        parts.append(raw)
        pos += len(raw)

    for i, run in enumerate(runs):
        if isinstance(run, bytes):
            assert base is not None
            put(run, base.entries[i][0], int(base.entries[i][4]))
            continue
        cut: list[tuple[str, bytes]] = []
        size = 0
        for item in run:
            cut.append(item)
            size += len(item[1])
            if size >= PAGE_BYTES:
                put(_page_bytes(cut), cut[0][0], len(cut))
                cut, size = [], 0
        if cut:  # a page all of whose paths were deleted is not written
            put(_page_bytes(cut), cut[0][0], len(cut))
    return entries, b"".join(parts)
