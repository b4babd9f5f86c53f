"""A view's dataset as the source of a Dask array: threaded, and on a distributed cluster of
worker processes (each unpickles the view as store path + commit and reopens it read-only).

The store holds 2 GiB at the old revision: int32 rows whose values are known in closed form,
so the sums are exact; HEAD has since rewritten a quarter of them, so the old revision is read
partly from preserved rows and partly from live ones.
"""

from __future__ import annotations

import os
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import pytest
from distributed import Client, LocalCluster

from h5vc import Repository

COLS = 1024
ROWS = int(os.environ.get("H5VC_DASK_ROWS", str(2**19)))  # 2**19 x 1024 int32 = 2 GiB
CHUNK = 4096  # rows per chunk: 16 MiB


def row_values(a: int, b: int) -> np.ndarray:
    return np.repeat((np.arange(a, b, dtype=np.int64) % 97).astype(np.int32)[:, None], COLS, axis=1)


def expected_sum(n: int) -> int:
    full, rest = divmod(n, 97)
    return COLS * (full * sum(range(97)) + sum(range(rest)))


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    path = tmp_path_factory.mktemp("dask") / "big.h5"
    with Repository.init(path, pointer=False) as repo:
        with repo.transaction("2 GiB") as tx:
            ds = tx.create_dataset("/x", shape=(0, COLS), maxshape=(None, COLS),
                                   chunks=(CHUNK, COLS), dtype="i4")
            for a in range(0, ROWS, 8 * CHUNK):
                ds.append(row_values(a, min(ROWS, a + 8 * CHUNK)))
        old = repo.head.id
        with repo.transaction("rewrite a quarter") as tx:
            for a in range(0, ROWS // 4, 8 * CHUNK):
                tx["/x"][a:a + 8 * CHUNK] = -1
    assert path.stat().st_size >= 2 * 2**30
    return path, old


def test_dask_threaded_sum_at_an_old_revision(store: tuple[Path, str]) -> None:
    path, old = store
    with Repository.open(path, mode="r") as repo:
        ds = repo.at(old)["/x"]
        arr = da.from_array(ds, chunks=ds.chunks)
        with dask.config.set(scheduler="threads"):
            assert int(arr.sum(dtype=np.int64).compute()) == expected_sum(ROWS)
            part = int(arr[ROWS // 8: ROWS // 8 + 3 * CHUNK + 5].sum(dtype=np.int64).compute())
        want = int(row_values(ROWS // 8, ROWS // 8 + 3 * CHUNK + 5).sum(dtype=np.int64))
        assert part == want
        head = repo.at("HEAD")["/x"]
        assert int(da.from_array(head, chunks=head.chunks)[: ROWS // 4].max().compute()) == -1


def test_dask_distributed_worker_processes(store: tuple[Path, str]) -> None:
    path, old = store
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        with Repository.open(path, mode="r") as repo:
            ds = repo.at(old)["/x"]
            arr = da.from_array(ds, chunks=ds.chunks)
            total = client.compute(arr.sum(dtype=np.int64)).result()
        assert int(total) == expected_sum(ROWS)
        pids = client.run(os.getpid)
        assert len(pids) == 2 and os.getpid() not in pids.values()
