"""Shared fixtures: stores built with plain h5py, then versioned."""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import pytest

from h5vc import Repository

os.environ.setdefault("H5VC_AUTHOR", "Test Author <test@example.org>")


@pytest.fixture
def sensor_file(tmp_path: Path) -> Path:
    """An ordinary HDF5 file as a user would have it before h5vc."""
    path = tmp_path / "data.h5"
    with h5py.File(path, "w") as f:
        g = f.create_group("sensors")
        g.attrs["site"] = "lab1"
        g.create_dataset("a", data=np.arange(1000, dtype="f4").reshape(250, 4),
                         maxshape=(None, 4), chunks=(100, 4), compression="gzip")
        g.create_dataset("b", data=np.arange(30, dtype="i8"), maxshape=(None,), chunks=(8,))
        f.create_dataset("fixed", data=np.eye(3))
        f.attrs["title"] = "demo"
    return path


@pytest.fixture
def repo(sensor_file: Path):
    r = Repository.init(sensor_file)
    yield r
    r.close()
