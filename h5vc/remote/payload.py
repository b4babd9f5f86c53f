"""Row ranges as a remote holds them: payloads encoded and decoded, packs read ahead in threads,
ranges fetched and checked against their hashes. Below the repository, which fetches from its
default remote what it no longer holds (the remote as a backup), and below :mod:`.sync`.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from ..crashpoints import crash_point
from ..engine.chunks import blob_hash
from ..engine.hashing import (
    canonical_bytes,
    decode_dtype,
    decode_value,
    dtype_key,
    encode_value,
    rows_hash,
)
from ..errors import IntegrityError
from .storage import RemoteStorage

__all__ = ["WORKERS", "backup_rows", "check_rows", "decode_rows", "encode_rows", "estimate",
           "fetch_rows", "payload_dtype", "read_packs", "rows_shape"]

WORKERS = 4  # packs in flight at once, each up to PACK_BYTES: transfers overlap the store's I/O


def encode_rows(arr: np.ndarray, dt: np.dtype) -> tuple[bytes, str]:
    """A range's payload: its canonical bytes for fixed-size rows, typed JSON for rows of
    variable length (strings, sequences)."""
    if not dt.hasobject:
        return bytes(canonical_bytes(np.ascontiguousarray(arr, dtype=dt))), "raw"
    return json.dumps(encode_value(arr, dt, arr.shape), separators=(",", ":")).encode(), "json"


def decode_rows(raw: bytes, kind: str, dt: np.dtype, shape: tuple[int, ...] | None) -> np.ndarray:
    if kind == "raw":
        if shape is None:  # the stored bytes of a block (engine/chunks.py): any length
            return np.frombuffer(raw, dtype=dt)
        if len(raw) != int(np.prod(shape, dtype=np.int64)) * dt.itemsize:
            raise ValueError("size")
        return np.frombuffer(raw, dtype=dt).reshape(shape)
    if kind == "json":
        arr, _dt, got = decode_value(json.loads(raw))
        if arr is None or got != shape:
            raise ValueError("shape")
        return arr
    raise ValueError(f"kind {kind}")


def rows_shape(meta: dict[str, Any], s: int, e: int) -> tuple[int, ...] | None:
    """The shape of a range's payload; None for a block of stored chunks (bytes)."""
    if meta.get("stored"):
        return None
    return () if meta["rank"] == 0 else (e - s, *meta["tail"])


def payload_dtype(meta: dict[str, Any]) -> np.dtype:
    """The dtype of a range's payload: the dataset's, or bytes for stored chunks."""
    return np.dtype("u1") if meta.get("stored") else decode_dtype(meta["dtype"])


def estimate(meta: dict[str, Any], s: int, e: int) -> int:
    """The bytes a range's payload is expected to take (exact for fixed-size rows)."""
    n = int(np.prod(() if meta["rank"] == 0 else (e - s, *meta["tail"]), dtype=np.int64))
    dt = decode_dtype(meta["dtype"])
    return n * (dt.itemsize if not dt.hasobject else 16)


def check_rows(arr: np.ndarray, meta: dict[str, Any], h: str) -> bool:
    if meta.get("stored"):
        return blob_hash(arr) == h
    return rows_hash(arr, dtype_key(decode_dtype(meta["dtype"]))) == h


def read_packs(rs: RemoteStorage, packs: list[str]) -> Iterator[tuple[str, bytes]]:
    """(pack, bytes) of ``packs`` in order, up to :data:`WORKERS` read ahead in threads."""
    with ThreadPoolExecutor(WORKERS) as pool:
        todo = iter(packs)
        ahead: deque[tuple[str, Future[bytes]]] = deque()
        for pack in todo:
            ahead.append((pack, pool.submit(rs.read_pack, pack)))
            if len(ahead) >= WORKERS:
                break
        while ahead:
            pack, fut = ahead.popleft()
            data = fut.result()
            nxt = next(todo, None)
            if nxt is not None:
                ahead.append((nxt, pool.submit(rs.read_pack, nxt)))
            yield pack, data


def fetch_rows(rs: RemoteStorage, index: Any, wanted: dict[str, tuple[dict[str, Any], int, int]],
                what: str, undone: str, fetched: Callable[[int], None],
                pack_done: Callable[[str], None] | None = None,
                ) -> Iterable[tuple[str, np.ndarray, dict[str, Any]]]:
    """(hash, rows, meta) of the ``wanted`` ranges (hash -> (meta, start, stop) of a commit
    that writes them), read pack by pack, each checked against its hash. ``pack_done(pack)``
    runs once the consumer has taken every range of a pack."""
    by_pack: dict[str, list[str]] = {}
    for h in wanted:
        by_pack.setdefault(index.objects[h][0], []).append(h)
    for pack, data in read_packs(rs, sorted(by_pack)):
        crash_point(f"{what}.pack-read")
        fetched(len(data))
        for h in by_pack[pack]:
            _p, a, n, kind = index.objects[h]
            meta, s, e = wanted[h]
            try:
                arr = decode_rows(data[a:a + n], kind, payload_dtype(meta),
                                   rows_shape(meta, s, e))
                ok = check_rows(arr, meta, h)
            except (ValueError, TypeError, KeyError):
                ok = False
            if not ok:
                raise IntegrityError(f"range {h[:10]} on remote {rs.name} is damaged (pack {pack}: "
                                     f"its bytes do not match its hash); {undone}")
            yield h, arr, meta
        if pack_done is not None:
            pack_done(pack)


def backup_rows(rs: RemoteStorage, wanted: dict[str, tuple[dict[str, Any], int, int]]
                ) -> dict[str, np.ndarray]:
    """The ``wanted`` ranges (hash -> (meta, start, stop)) that remote ``rs`` holds, each read
    by itself (a ranged read of its pack, in threads) and checked against its hash; the ones
    it lacks are left out. IntegrityError when one it holds is damaged."""
    if not rs.exists():
        return {}
    index = rs.index()
    have = [h for h in wanted if h in index.objects]

    def one(h: str) -> tuple[str, np.ndarray]:
        pack, a, n, kind = index.objects[h]
        raw = rs.read_range(pack, a, n)
        meta, s, e = wanted[h]
        try:
            arr = decode_rows(raw, kind, payload_dtype(meta), rows_shape(meta, s, e))
            ok = check_rows(arr, meta, h)
        except (ValueError, TypeError, KeyError):
            ok = False
        if not ok:
            raise IntegrityError(f"range {h[:10]} on remote {rs.name} is damaged (pack {pack}: "
                                 "its bytes do not match its hash)")
        return h, arr

    with ThreadPoolExecutor(WORKERS) as pool:
        return dict(pool.map(one, have))
