"""pandas' PyTables-format tables (``to_hdf(format="table", append=True)``) round-trip
through commit and checkout: each version reads back with ``pandas.read_hdf`` exactly.

pandas runs in its own processes: PyTables brings its own HDF5 library, which should not share
a process with h5py's.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from h5vc import Repository

PANDAS = r"""
import sys, numpy as np, pandas as pd
path, step, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if step >= 0:
    rng = np.random.default_rng(step)
    df = pd.DataFrame({"t": np.arange(step * 100, step * 100 + 100, dtype="i8"),
                       "v": rng.random(100), "site": [f"s{i % 3}" for i in range(100)]})
    df.to_hdf(path, key="readings", format="table", append=True, min_itemsize={"site": 8},
              index=False)  # no PyTables index: see the test below
pd.read_hdf(path, "readings").to_pickle(out)
"""


def pandas(path: Path, step: int, out: Path) -> None:
    r = subprocess.run([sys.executable, "-c", PANDAS, str(path), str(step), str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_pandas_hdfstore_table_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "frames.h5"
    pandas(path, 0, tmp_path / "v0.pkl")
    with Repository.init(path, pointer=False) as repo:
        ids = [repo.head.id]
    for step in (1, 2):
        pandas(path, step, tmp_path / f"v{step}.pkl")
        with Repository.open(path) as repo:
            ids.append(repo.commit(f"day {step}").id)
    frames = [pd.read_pickle(tmp_path / f"v{i}.pkl") for i in range(3)]
    assert [len(f) for f in frames] == [100, 200, 300]
    for i in (0, 2, 1, 0, 2):
        with Repository.open(path) as repo:
            repo.checkout(ids[i])
            assert repo.status().clean
        pandas(path, -1, tmp_path / "now.pkl")
        pd.testing.assert_frame_equal(pd.read_pickle(tmp_path / "now.pkl"), frames[i])
        with Repository.open(path, mode="r") as repo:  # and read without a checkout
            t = repo.at(ids[0])["/readings/table"]
            assert len(t) == 100


INDEXED = r"""
import sys, numpy as np, pandas as pd
path, step = sys.argv[1], int(sys.argv[2])
df = pd.DataFrame({"t": np.arange(step * 100, step * 100 + 100, dtype="i8")})
df.to_hdf(path, key="readings", format="table", append=True)  # pandas' default: indexed
"""


def test_an_indexed_pandas_table_is_refused_not_lost(tmp_path: Path) -> None:
    """PyTables rewrites its index arrays in place when rows are appended: those committed
    rows were never preserved, so the commit is refused (naming them) rather than made with
    a history that could not be checked out; --accept-loss commits anyway."""
    from h5vc import DataLossError

    path = tmp_path / "indexed.h5"
    subprocess.run([sys.executable, "-c", INDEXED, str(path), "0"], check=True)
    with Repository.init(path, pointer=False):
        pass
    subprocess.run([sys.executable, "-c", INDEXED, str(path), "1"], check=True)
    with Repository.open(path) as repo:
        head = repo.head.id
        with pytest.raises(DataLossError, match="_i_table/index"):
            repo.commit("day 1")
        assert repo.head.id == head
        repo.commit("day 1", accept_loss=True)
        assert repo.status().clean
