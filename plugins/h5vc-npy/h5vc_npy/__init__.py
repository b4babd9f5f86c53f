"""h5vc importer for NumPy files: ``.npy`` (memory-mapped, streamed) and ``.npz`` (one dataset per key).

Arrays are appended along their first axis to a dataset named after the file's stem (``.npy``)
or the archive key (``.npz``), in the target group or its category sub-group. Object arrays
are refused: files are always read with ``allow_pickle=False``.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator

import numpy as np

from h5vc import Batch, ImportContext, Importer, Source, hookimpl

STREAM_BYTES = 64 << 20  # .npy rows are appended in slices of about this size


class NpyImporter(Importer):
    name = "npy"
    suffixes = (".npy", ".npz")
    description = "NumPy .npy (streamed via memory map) and .npz (one dataset per key)"

    def read(self, sources: list[Source], ctx: ImportContext) -> Iterator[Batch]:
        for src in sources:
            group = ctx.group_of(src)
            if src.path.suffix.lower() == ".npz":
                yield from self._npz(src, group, ctx)
            else:
                yield from self._npy(src, group, ctx)
            ctx.progress()

    def _npy(self, src: Source, group: str, ctx: ImportContext) -> Iterator[Batch]:
        try:
            arr = np.load(src.path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            ctx.bad(src, _reason(e, ".npy"))
            return
        if arr.dtype.hasobject:
            ctx.bad(src, "object arrays cannot be imported")
            return
        arr = np.atleast_1d(arr)
        name = src.path.stem
        row = max(1, arr[:1].nbytes)
        step = max(1, STREAM_BYTES // row)
        n = arr.shape[0]
        if n == 0:
            ctx.bad(src, "the array is empty")
            return
        for a in range(0, n, step):
            b = min(n, a + step)
            yield Batch({name: np.ascontiguousarray(arr[a:b])}, group=group,
                        sources=[src] if b == n else [])

    def _npz(self, src: Source, group: str, ctx: ImportContext) -> Iterator[Batch]:
        try:
            with np.load(src.path, allow_pickle=False) as z:
                cols = {}
                for key in z.files:
                    a = np.atleast_1d(z[key])
                    if a.dtype.hasobject:
                        ctx.bad(src, f"key {key!r} holds an object array, which cannot be imported")
                        return
                    cols[key] = a
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
            ctx.bad(src, _reason(e, ".npz"))
            return
        if not cols:
            ctx.bad(src, "the archive holds no arrays")
            return
        yield Batch(cols, group=group, sources=[src])


def _reason(e: Exception, kind: str) -> str:
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    if "Object arrays cannot be loaded" in text or "Python objects in dtype" in text:
        return "it holds an object array, which cannot be imported (files are read without pickle)"
    return f"not a valid {kind} file ({text})"


@hookimpl
def register_importers(register):  # noqa: ANN001 - pluggy passes the callable
    register(NpyImporter())
