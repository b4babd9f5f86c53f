"""Datasets versioned as stored: chunks whose filter this HDF5 cannot decode.

A dataset compressed with a filter that is not installed (PyTables' LZO tables, id 305, where
no LZO plugin is on HDF5_PLUGIN_PATH) cannot give its rows, but HDF5 still hands out its
chunks as they lie in the file (``H5Dread_chunk``) and takes them back unchanged
(``H5Dwrite_chunk``, with the dataset created with the same filter pipeline). Such a dataset's
meta says ``"stored": True``, and each of its ranges covers one whole block (a chunk row along
axis 0) whose hash is that of the block's **stored bytes**: a blob of its chunks, in order of
their offsets over the other axes, each with its filter mask and length (a chunk never
written is marked so). The blob is what is preserved, pushed and written back: a checkout
makes such a dataset anew from its blobs, so its bytes come back exactly, filters and all.

A dataset of an HDF5 type numpy cannot hold (H5T_TIME, 128-bit numbers) is versioned the same
way, its meta's dtype the type as HDF5 encodes it: chunked, by its stored chunks; not chunked,
as one block holding its values as bytes of that type (read and written with the type itself
as the memory type, so nothing is converted). A view reads such values as opaque bytes.

Rows cannot be read from a dataset whose filter is missing (a view or an export names it); appending to
it needs the filter, and the program that has it (PyTables) rewrites the last chunk in place:
committing that is a loss h5vc names, as for any in-place rewrite.
"""

from __future__ import annotations

import functools
import itertools
import os
import struct

import h5py
import numpy as np

from .hashing import dtype_key, rows_hash

__all__ = ["BLOB_KEY", "BUILTIN_FILTERS", "FILTER_FIXES", "blob_hash", "load_plugins", "missing_filter",
           "stored_blob", "write_blob"]

BUILTIN_FILTERS = {1, 2, 3, 4, 5, 6, 32000}

_HDF5PLUGIN = "install hdf5plugin (pip install hdf5plugin)"
# third-party HDF5 filters: id -> (name, how to make it available)
FILTER_FIXES = {
    305: ("LZO", "put an LZO filter plugin for HDF5 on HDF5_PLUGIN_PATH (PyTables has one "
                 "built in, but only for its own HDF5 library)"),
    307: ("bzip2", _HDF5PLUGIN), 32001: ("Blosc", _HDF5PLUGIN), 32004: ("LZ4", _HDF5PLUGIN),
    32008: ("bitshuffle", _HDF5PLUGIN), 32013: ("ZFP", _HDF5PLUGIN),
    32015: ("Zstandard", _HDF5PLUGIN), 32017: ("SZ", _HDF5PLUGIN),
    32018: ("FCIDECOMP", _HDF5PLUGIN), 32024: ("SZ3", _HDF5PLUGIN), 32026: ("Blosc2", _HDF5PLUGIN),
}
_DEFAULT_FIX = "put the HDF5 filter plugin that provides it on HDF5_PLUGIN_PATH"

BLOB_KEY = dtype_key(np.dtype("u1"))
_HEAD = struct.Struct("<8sQQ")  # magic, rows of the range, chunks
_CHUNK = struct.Struct("<qQ")  # filter mask (-1: never written), stored length
_MAGIC = b"h5vcblk1"


@functools.lru_cache(maxsize=1)
def load_plugins() -> bool:
    """Register hdf5plugin's filters (Blosc, Zstandard, LZ4, ...) with h5py's HDF5, if it is
    installed. Done before HDF5 is ever asked about a third-party filter: asking makes HDF5
    search HDF5_PLUGIN_PATH, and a plugin found there may be built for another HDF5 library
    (netCDF4 points HDF5_PLUGIN_PATH at its own when it is imported), which crashes it."""
    try:
        import hdf5plugin  # registers its filters on import
    except ImportError:
        return False
    if os.environ.get("HDF5_PLUGIN_PATH"):
        # where a filter was already found on that path, hdf5plugin left it: take its own
        try:
            hdf5plugin.register(force=True)
        except Exception:  # noqa: BLE001 - an older hdf5plugin: keep what it registered
            pass
    return True


def missing_filter(filters: list[list[int]] | list[tuple[int, int, list[int], bytes]]
                   ) -> tuple[int, str, str] | None:
    """The first filter of a pipeline that this HDF5 cannot apply: (id, name, how to get
    it), or None. ``filters`` holds (id, flags, values[, name]) per filter."""
    for f in filters:
        code = int(f[0])
        if code in BUILTIN_FILTERS:
            continue
        load_plugins()
        if h5py.h5z.filter_avail(code):
            continue
        name, fix = FILTER_FIXES.get(code, (None, _DEFAULT_FIX))
        if name is None:
            raw = f[3] if len(f) > 3 else b""
            name = (raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
                    ).strip() or "unnamed"
        return code, name, fix
    return None


def _offsets(ds: h5py.Dataset, start: int) -> list[tuple[int, ...]]:
    """The chunk offsets of the block that starts at row ``start``."""
    shape, chunks = ds.shape, ds.chunks
    assert chunks is not None and shape
    others = [range(0, max(d, 1), c) for d, c in zip(shape[1:], chunks[1:], strict=True)]
    return [(start, *rest) for rest in itertools.product(*others)]


def _raw(ds: h5py.Dataset) -> np.ndarray:
    tid = ds.id.get_type()
    buf = np.empty(ds.shape, dtype=f"V{tid.get_size()}")
    ds.id.read(h5py.h5s.ALL, h5py.h5s.ALL, buf, mtype=tid)
    return buf


def stored_blob(ds: h5py.Dataset, start: int, stop: int) -> np.ndarray:
    """The stored bytes of the block holding rows [start, stop) (``start`` is a block's
    first row), as one uint8 array. A dataset that is not chunked (a type numpy cannot hold,
    versioned as bytes) is one block: its values as bytes of its own type, no chunks."""
    if ds.chunks is None:
        return np.frombuffer(_HEAD.pack(_MAGIC, stop - start, 0) + _raw(ds).tobytes(),
                             dtype=np.uint8)
    offsets = _offsets(ds, start)
    parts = [_HEAD.pack(_MAGIC, stop - start, len(offsets))]
    dsid = ds.id
    for off in offsets:
        info = dsid.get_chunk_info_by_coord(off)
        if info.byte_offset is None:
            parts.append(_CHUNK.pack(-1, 0))
            continue
        mask, data = dsid.read_direct_chunk(off)
        parts.append(_CHUNK.pack(int(mask), len(data)))
        parts.append(bytes(data))
    return np.frombuffer(b"".join(parts), dtype=np.uint8)


def blob_hash(blob: np.ndarray) -> str:
    return rows_hash(blob, BLOB_KEY)


def write_blob(ds: h5py.Dataset, start: int, blob: np.ndarray) -> None:
    """Write a block's stored chunks back, unchanged (``ds`` made with the same pipeline)."""
    raw = memoryview(np.ascontiguousarray(blob, dtype=np.uint8)).cast("B")
    magic, _rows, count = _HEAD.unpack_from(raw, 0)
    if magic != _MAGIC:
        raise ValueError("not a block of stored chunks")
    pos = _HEAD.size
    if ds.chunks is None:  # values as bytes of the dataset's own type
        tid = ds.id.get_type()
        buf = np.frombuffer(raw[pos:], dtype=f"V{tid.get_size()}").reshape(ds.shape)
        ds.id.write(h5py.h5s.ALL, h5py.h5s.ALL, np.ascontiguousarray(buf), mtype=tid)
        return
    offsets = _offsets(ds, start)
    if count != len(offsets):
        raise ValueError(f"a block of {count} chunks for {len(offsets)} offsets")
    for off in offsets:
        mask, length = _CHUNK.unpack_from(raw, pos)
        pos += _CHUNK.size
        if mask < 0:
            continue
        ds.id.write_direct_chunk(off, bytes(raw[pos:pos + length]), mask)
        pos += length
