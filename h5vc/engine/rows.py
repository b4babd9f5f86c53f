"""Rows of live HDF5 datasets: read, write and hash them, a bounded slice at a time.

The lowest layer of h5vc's HDF5 I/O: the journal and object store (:mod:`h5vc.engine.format`), the
scan of the live store (:mod:`h5vc.engine.scan`), restore and verify all move rows through here.
"""

from __future__ import annotations

from typing import Any

import h5py
import numpy as np

from .hashing import rows_hash, rows_hash_parts
from .state import row_bytes

__all__ = ["SLICE_BYTES", "as_0d", "live_hash", "read_rows", "row_slices", "write_rows"]


def as_0d(value: Any, dt: np.dtype) -> np.ndarray:
    """A 0-d array of ``dt`` holding ``value`` (a vlen element stays one element)."""
    if dt.hasobject:
        out = np.empty((), dtype=dt)
        out[()] = value
        return out
    return np.asarray(value, dtype=dt)


def read_rows(ds: h5py.Dataset, start: int, stop: int) -> np.ndarray:
    if ds.shape == ():
        return as_0d(ds[()], ds.dtype)
    return ds[start:stop]


SLICE_BYTES = 64 << 20  # larger ranges are read, hashed and copied in slices of about this size


def row_slices(ds: h5py.Dataset, start: int, stop: int) -> list[tuple[int, int]]:
    """[start, stop) cut into slices of at most SLICE_BYTES of rows."""
    step = max(1, SLICE_BYTES // row_bytes(ds.shape[1:] if ds.shape else (), ds.dtype.itemsize))
    return [(a, min(a + step, stop)) for a in range(start, stop, step)] or [(start, stop)]


def live_hash(ds: h5py.Dataset, start: int, stop: int, dkey: str) -> str:
    """The hash of live rows [start, stop), read slice by slice: memory stays bounded."""
    if ds.shape == ():
        return rows_hash(read_rows(ds, 0, 1), dkey)
    shape = (stop - start, *ds.shape[1:])
    return rows_hash_parts((ds[a:b] for a, b in row_slices(ds, start, stop)), shape, dkey)


def write_rows(ds: h5py.Dataset, start: int, arr: np.ndarray) -> None:
    if ds.shape == ():
        ds[()] = arr[()] if arr.dtype.hasobject else arr
    elif len(arr):
        try:
            ds[start:start + len(arr)] = arr
        except TypeError:
            if not arr.dtype.hasobject:
                raise
            # h5py may read an object array of equal-length vlen rows as one more dimension
            for i, row in enumerate(arr):
                ds[start + i] = row
