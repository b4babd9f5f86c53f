"""Rows of live HDF5 datasets: read, write and hash them, a bounded slice at a time.

The lowest layer of h5vc's HDF5 I/O: the journal and object store (:mod:`h5vc.engine.format`), the
scan of the live store (:mod:`h5vc.engine.scan`), restore and verify all move rows through here.
"""

from __future__ import annotations

from typing import Any

import h5py
import numpy as np
from h5py._hl.selections import select

from .hashing import bytes_as_numpy, rows_hash, rows_hash_parts
from .state import row_bytes

__all__ = ["SLICE_BYTES", "as_0d", "live_hash", "own_type", "read_rows", "row_slices", "write_exact",
           "write_rows"]


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


def _as_h5py_reads(ds: h5py.Dataset, arr: np.ndarray) -> np.ndarray:
    """``arr`` (rows h5py read) ready to be written back byte for byte. h5py reads the
    elements of variable-length data of a foreign byte order (PyTables' big-endian VLArrays)
    without swapping their bytes, into arrays it labels native, and swaps them when it writes
    such an array: each element is labelled with the file's byte order again (the bytes
    stay as they are), so that what is written is what was read."""
    base = h5py.check_vlen_dtype(ds.dtype)
    if not isinstance(base, np.dtype) or base.isnative or base.names is not None \
            or base.subdtype is not None:
        return arr
    out = np.empty(arr.shape, dtype=arr.dtype)
    for i, x in np.ndenumerate(arr):
        relabel = (isinstance(x, np.ndarray) and x.dtype.isnative
                   and x.dtype.newbyteorder() == base)
        out[i] = x.view(base) if relabel else x
    return out


def _raw_type(ds: h5py.Dataset, arr: np.ndarray) -> Any:
    """The dataset's HDF5 type, when rows of ``arr`` (its dtype) must be written with it as the
    memory type: the type is not the one h5py makes for the dtype, and its values are numpy's
    bytes (a null-terminated string of full length would be cut short by HDF5's conversion
    from h5py's null-padded one; a bitfield has no conversion from an integer). None when
    h5py's own write is exact."""
    if arr.dtype.hasobject or arr.dtype != ds.dtype:
        return None
    tid = ds.id.get_type()
    if tid.get_class() in (h5py.h5t.INTEGER, h5py.h5t.FLOAT):
        return None  # numbers: h5py's conversion is exact
    return tid if bytes_as_numpy(tid) and not own_type(ds) else None


def own_type(ds: h5py.Dataset) -> bool:
    """Whether the dataset's HDF5 type is the one h5py makes for its dtype (then what h5py
    writes is what it reads back)."""
    try:
        return bool(ds.id.get_type() == h5py.h5t.py_create(ds.dtype, logical=True))
    except (TypeError, ValueError):
        return False


def write_exact(ds: h5py.Dataset, key: Any, value: Any) -> bool:
    """Write ``value`` at ``key`` (as ``ds[key] = value``) as its bytes, with the dataset's own
    type as the memory type, when h5py's conversion would not be exact (see
    :func:`_raw_type`); False, writing nothing, when h5py's own write is."""
    arr = np.asarray(value)
    if arr.dtype != ds.dtype and not arr.dtype.hasobject and arr.dtype.kind in "SUV":
        try:
            arr = arr.astype(ds.dtype)
        except (TypeError, ValueError):
            return False
    tid = _raw_type(ds, arr)
    if tid is None:
        return False
    selection = select(ds.shape, key, dataset=ds)
    if selection.nselect == 0:
        return True
    arr = np.ascontiguousarray(arr)
    mspace = h5py.h5s.create_simple(selection.expand_shape(arr.shape))
    for fspace in selection.broadcast(arr.shape):
        ds.id.write(mspace, fspace, arr, mtype=tid)
    return True


def write_rows(ds: h5py.Dataset, start: int, arr: np.ndarray) -> None:
    """Write rows h5py read (from this dataset or another of its type) at ``start``."""
    if arr.dtype.hasobject:
        arr = _as_h5py_reads(ds, arr)
    key = () if ds.shape == () else np.s_[start:start + len(arr)]
    if (ds.shape == () or len(arr)) and write_exact(ds, key, arr):
        return
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
