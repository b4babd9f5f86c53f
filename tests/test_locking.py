"""h5vc's own writer lock: one writer at a time even without HDF5 file locking."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from h5vc import LockedError, Repository

HOLD = """
import sys, time
from h5vc import Repository
repo = Repository.open(sys.argv[1])
print("open", flush=True)
time.sleep(float(sys.argv[2]))
repo.close()
"""


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "s.h5"
    with Repository.init(path, pointer=False) as repo:
        with repo.transaction("x") as tx:
            tx.create_dataset("/x", data=np.arange(10))
    return path


def hold(store: Path, seconds: float, env: dict[str, str] | None = None) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, "-c", HOLD, str(store), str(seconds)],
                         stdout=subprocess.PIPE, text=True, env=env)
    assert p.stdout is not None and p.stdout.readline().strip() == "open"
    return p


@pytest.fixture
def no_hdf5_locking() -> dict[str, str]:
    env = dict(os.environ, HDF5_USE_FILE_LOCKING="FALSE")
    return env


def test_second_writer_is_refused_naming_the_holder(store: Path, no_hdf5_locking: dict) -> None:
    holder = hold(store, 30, no_hdf5_locking)
    try:
        r = subprocess.run([sys.executable, "-m", "h5vc", "commit", "-m", "m", "--allow-empty",
                            "-s", str(store)], capture_output=True, text=True, env=no_hdf5_locking)
        assert r.returncode == 1
        line = r.stderr.strip()
        assert line.startswith("Error: ") and len(line.splitlines()) == 1, r.stderr
        assert "being written by another h5vc process" in line
        assert f"pid {holder.pid}" in line and "--wait SECONDS" in line
    finally:
        holder.kill()
        holder.wait()


def test_wait_lets_the_second_writer_in(store: Path, no_hdf5_locking: dict) -> None:
    holder = hold(store, 1.0, no_hdf5_locking)
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "h5vc", "--wait", "20", "commit", "-m", "after",
                        "--allow-empty", "-s", str(store)], capture_output=True, text=True,
                       env=no_hdf5_locking)
    holder.wait()
    assert r.returncode == 0, r.stderr
    assert time.monotonic() - t0 >= 0.5
    with Repository.open(store, mode="r") as repo:
        assert repo.head is not None and repo.head.message == "after"


def test_killed_holder_leaves_no_stale_lock(store: Path, no_hdf5_locking: dict) -> None:
    holder = hold(store, 60, no_hdf5_locking)
    holder.kill()
    holder.wait()
    with Repository.open(store) as repo:  # the kernel released the lock with the process
        assert repo.head is not None


def test_reader_holding_the_file_is_named_as_a_reader(store: Path) -> None:
    reader = subprocess.Popen([sys.executable, "-c", "import h5py, sys, time; "
                               "f = h5py.File(sys.argv[1], 'r'); print('open', flush=True); "
                               "time.sleep(30)", str(store)], stdout=subprocess.PIPE, text=True)
    try:
        assert reader.stdout is not None and reader.stdout.readline().strip() == "open"
        with pytest.raises(LockedError, match="reading it"):
            Repository.open(store)
    finally:
        reader.kill()
        reader.wait()


def test_two_writers_without_hdf5_locking_lose_nothing(store: Path, no_hdf5_locking: dict,
                                                      tmp_path: Path) -> None:
    code = """
import sys, numpy as np
from h5vc import Repository
for i in range(25):
    with Repository.open(sys.argv[1], wait=60) as repo:
        with repo.transaction(f"{sys.argv[2]}-{i}") as tx:
            tx["/x"].append(np.full(3, i))
        print(repo.head.id, flush=True)
"""
    procs = [subprocess.Popen([sys.executable, "-c", code, str(store), who],
                              stdout=subprocess.PIPE, text=True, env=no_hdf5_locking)
             for who in ("A", "B")]
    reported = []
    for p in procs:
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0
        reported += out.split()
    assert len(reported) == 50
    with Repository.open(store, mode="r") as repo:
        ids = {c.id for c in repo.log()}
        assert set(reported) <= ids
        assert repo.file["/x"].shape == (10 + 150,)
        assert repo.verify().ok


def test_dropped_repository_releases_file_and_lock(store: Path) -> None:
    repo = Repository.open(store)
    assert repo.head is not None
    del repo
    gc.collect()
    with h5py.File(store, "r+"):  # HDF5's lock is free
        pass
    with Repository.open(store) as again:  # and h5vc's
        assert again.head is not None
