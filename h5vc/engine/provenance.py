"""Provenance: which files ``h5vc add`` imported into a group.

It is recorded in /.h5vc, as a ``sources`` change of the importing commit folded into the
state (see :mod:`h5vc.engine.state`), so it follows checkouts like the content it describes and
never appears among the user's datasets. Stores written before that kept it in a dataset
``_h5vc_sources`` inside each target group; those are read as they are, and the next import
into such a group moves their rows into /.h5vc and deletes the dataset in its commit.
"""

from __future__ import annotations

from dataclasses import dataclass

import h5py

LEGACY = "_h5vc_sources"  # the dataset that held provenance before format 3

_READ_ERRORS = (OSError, KeyError, RuntimeError, ValueError, TypeError)


@dataclass(frozen=True)
class Provenance:
    """One imported file: its name relative to the folder given to ``h5vc add``, its size in
    bytes, its content hash (xxh3-128, hex) and when it was imported (UTC; None for rows
    moved from a ``_h5vc_sources`` dataset, which did not record it)."""

    name: str
    size: int
    hash: str
    time: str | None = None


def legacy_sources(f: h5py.File, group: str) -> dict[str, Provenance]:
    """The rows of ``group``'s ``_h5vc_sources`` dataset, if it has one."""
    path = f"{group.rstrip('/')}/{LEGACY}"
    try:
        ds = f.get(path)
    except _READ_ERRORS:
        return {}
    if not isinstance(ds, h5py.Dataset) or ds.dtype.names is None or not {
            "path", "size", "hash"} <= set(ds.dtype.names):
        return {}
    try:
        rows = ds[()]
    except _READ_ERRORS:
        return {}
    out: dict[str, Provenance] = {}
    for p, size, h in zip(rows["path"].tolist(), rows["size"].tolist(), rows["hash"].tolist(),
                          strict=True):
        name = p.decode("utf-8", "replace") if isinstance(p, bytes) else str(p)
        out[name] = Provenance(name, int(size),
                               h.decode("ascii", "replace") if isinstance(h, bytes) else str(h))
    return out
