"""The store stays readable by HDF5 1.10 tools (h5dump from Debian's hdf5-tools) after checkouts."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import h5py
import numpy as np

from h5vc import Repository

H5DUMP = shutil.which("h5dump")


def dump(*args: str) -> str:
    assert H5DUMP is not None, "h5dump is missing: install Debian's hdf5-tools (scripts/test.sh does)"
    out = subprocess.run([H5DUMP, *args], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_h5dump_reads_store_after_checkouts(tmp_path: Path) -> None:
    path = tmp_path / "d.h5"
    with Repository.init(path) as repo:
        with repo.transaction("create") as tx:
            g = tx.create_group("/cat")
            g.attrs["label"] = "cat"
            g.create_dataset("v", data=np.arange(6, dtype="i4"), chunks=(4,), compression="gzip")
            tx.create_dataset("/names", data=np.array([b"a", b"bc"], dtype=object),
                              dtype=h5py.string_dtype())
        with repo.transaction("append") as tx:
            tx["/cat/v"].append(np.array([100, 101], dtype="i4"))
            tx["/cat"].attrs["label"] = "kitten"
        repo.checkout("HEAD~1")
    text = dump("-d", "/cat/v", str(path))
    assert "0, 1, 2, 3, 4, 5" in text and "100" not in text
    assert '"cat"' in dump("-a", "/cat/label", str(path))
    header = dump("-H", str(path))  # whole file, /.h5vc and preserved objects included
    assert 'GROUP ".h5vc"' in header and 'GROUP "packs"' in header and "objindex" in header
    with Repository.open(path) as repo:
        repo.checkout("main")
    assert "100, 101" in dump("-d", "/cat/v", str(path))
    assert '"kitten"' in dump("-a", "/cat/label", str(path))
    assert "FILTERS" in dump("-p", "-H", "-d", "/cat/v", str(path))
