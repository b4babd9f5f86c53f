"""Calls into the HDF5 library that h5py loaded, for what h5py does not expose.

Two things live here. First, a repair: HDF5 records in the superblock where the file's allocated space ends
(the *end of allocation*, EOA) and writes the superblock last when it flushes. A process
killed in the middle of a flush can leave objects written past the recorded EOA, with links
to them already on disk; HDF5 then refuses to read them ("len not positive after adjustment
for EOA"), and the store looks damaged although every byte is there. ``H5Fincrement_filesize``
moves the EOA to the end of the file, as ``h5clear --increment`` does: in memory only for a
file opened read-only (the file is not changed), and written at the next flush otherwise.

Second, an order: ``H5Oflush`` writes one object's header now, so that a record h5vc keeps
in ``/.h5vc`` (the intent of a transaction) reaches the file before the rows the cache holds.

Third, room: a group whose header is made large enough for many links up front
(``H5Pset_est_link_info``) and kept compact (``H5Pset_link_phase_change``), so that adding a
link rewrites one block of its header in place. Grown the default way, a header gains
continuation blocks and then turns into a fractal heap and B-trees: several blocks that must
change together, which a kill in the middle of a flush can leave half written.

Fourth, a fill value left undefined (``H5Pset_fill_value`` with no value), as some files
have their datasets and h5py cannot ask for.
"""

from __future__ import annotations

import ctypes
import functools
from typing import Any

import h5py

__all__ = ["create_roomy_group", "extend_to_eof", "fill_bytes", "flush_object", "set_fill_bytes",
           "undefined_fill"]


@functools.lru_cache(maxsize=1)
def _lib() -> Any:
    """The libhdf5 h5py is linked against (already loaded: the same library instance)."""
    try:
        with open("/proc/self/maps") as fh:
            paths = sorted({line.split()[-1] for line in fh
                            if "libhdf5" in line and "hl" not in line.rsplit("/", 1)[-1]
                            and ".so" in line})
    except OSError:
        paths = []
    for path in paths + ["libhdf5.so"]:
        try:
            lib = ctypes.CDLL(path)
            lib.H5Fget_eoa.argtypes = [ctypes.c_int64, ctypes.POINTER(ctypes.c_uint64)]
            lib.H5Fget_eoa.restype = ctypes.c_int
            lib.H5Fincrement_filesize.argtypes = [ctypes.c_int64, ctypes.c_uint64]
            lib.H5Fincrement_filesize.restype = ctypes.c_int
            lib.H5Oflush.argtypes = [ctypes.c_int64]
            lib.H5Oflush.restype = ctypes.c_int
            lib.H5Pset_est_link_info.argtypes = [ctypes.c_int64, ctypes.c_uint, ctypes.c_uint]
            lib.H5Pset_est_link_info.restype = ctypes.c_int
            lib.H5Pset_link_phase_change.argtypes = [ctypes.c_int64, ctypes.c_uint, ctypes.c_uint]
            lib.H5Pset_link_phase_change.restype = ctypes.c_int
            lib.H5Pset_fill_value.argtypes = [ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p]
            lib.H5Pset_fill_value.restype = ctypes.c_int
            lib.H5Pget_fill_value.argtypes = [ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p]
            lib.H5Pget_fill_value.restype = ctypes.c_int
            return lib
        except (OSError, AttributeError):
            continue
    return None


def extend_to_eof(f: h5py.File) -> bool:
    """Move ``f``'s end of allocation to the end of the file when a killed flush left it
    short; True when it did. A no-op (False) for a file closed cleanly, or without access to
    the library."""
    lib = _lib()
    if lib is None:
        return False
    eoa = ctypes.c_uint64()
    if lib.H5Fget_eoa(f.id.id, ctypes.byref(eoa)) < 0:
        return False
    try:
        size = f.id.get_filesize()
    except (OSError, RuntimeError, ValueError):
        return False
    if eoa.value + f.userblock_size >= size:
        return False
    return lib.H5Fincrement_filesize(f.id.id, 0) >= 0


def flush_object(obj: h5py.HLObject) -> bool:
    """Write one object's metadata (its header: attributes, layout) to the file now, before
    anything else the cache holds: ``H5Oflush``. False when the library cannot; the caller's
    next full flush writes it then."""
    lib = _lib()
    if lib is None:
        return False
    return lib.H5Oflush(obj.id.id) >= 0


def create_roomy_group(parent: h5py.Group, name: str, *, links: int, name_len: int,
                       track_order: bool) -> h5py.Group:
    """Create group ``name`` in ``parent`` with a header sized for ``links`` links of names of
    ``name_len`` bytes, kept compact up to that many (see the module's docstring). Without
    access to the library, a plain group."""
    def gcpl(roomy: bool) -> Any:
        pl = h5py.h5p.create(h5py.h5p.GROUP_CREATE)
        if track_order:
            pl.set_link_creation_order(h5py.h5p.CRT_ORDER_TRACKED | h5py.h5p.CRT_ORDER_INDEXED)
        lib = _lib() if roomy else None
        if lib is not None and (lib.H5Pset_est_link_info(pl.id, links, name_len) < 0 or
                                lib.H5Pset_link_phase_change(pl.id, links,
                                                             max(1, links * 3 // 4)) < 0):
            return gcpl(False)
        return pl

    return h5py.Group(h5py.h5g.create(parent.id, name.encode(), gcpl=gcpl(True)))


def undefined_fill(pl: Any = None) -> Any:
    """A dataset creation property list (``pl``, or a new one) whose fill value is undefined;
    ``pl`` as it was without access to the library."""
    lib = _lib()
    if lib is None:
        return pl
    if pl is None:
        pl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    lib.H5Pset_fill_value(pl.id, h5py.h5t.NATIVE_INT32.id, None)
    return pl


def fill_bytes(pl: Any, tid: Any) -> bytes | None:
    """The fill value of a dataset creation property list as bytes of the HDF5 type ``tid``
    (for types h5py cannot convert); None when it cannot be read."""
    lib = _lib()
    if lib is None:
        return None
    buf = ctypes.create_string_buffer(max(1, tid.get_size()))
    if lib.H5Pget_fill_value(pl.id, tid.id, buf) < 0:
        return None
    return buf.raw[:tid.get_size()]


def set_fill_bytes(pl: Any, tid: Any, value: bytes) -> None:
    """Set the fill value of ``pl`` to ``value``, bytes of the HDF5 type ``tid``."""
    lib = _lib()
    if lib is not None:
        buf = ctypes.create_string_buffer(value, max(1, len(value)))
        lib.H5Pset_fill_value(pl.id, tid.id, buf)
