"""Kills at every named point of checkout, transactions, rollback and commit.

Each case runs the operation in a child process told to SIGKILL itself at one point
(``H5VC_CRASH_AT``, see h5vc/crashpoints.py), then checks from the outside, as a user would:
the next command recovers by itself, ``verify`` is clean, the store holds exactly the source
or the target version (never a mix), ``status`` is clean exactly when the store equals HEAD,
and every commit made before the kill checks out to its data.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import xxhash

from h5vc import Repository

H5VC = [sys.executable, "-m", "h5vc"]


def digest(path: Path) -> str:
    """Every tracked dataset's bytes, shape, dtype and every attribute, outside /.h5vc."""
    h = xxhash.xxh3_128()
    with h5py.File(path, "r") as f:
        def visit(name: str, obj: object) -> None:
            if name.startswith(".h5vc"):
                return
            h.update(name.encode())
            for k in sorted(obj.attrs):  # type: ignore[attr-defined]
                h.update(k.encode() + repr(obj.attrs[k]).encode())  # type: ignore[attr-defined]
            if isinstance(obj, h5py.Dataset):
                h.update(str((obj.shape, obj.dtype)).encode())
                data = obj[()]
                if obj.dtype.hasobject:  # variable-length: the values, not their pointers
                    for v in np.asarray(data).ravel():
                        h.update(v if isinstance(v, bytes) else repr(v).encode())
                else:
                    h.update(np.ascontiguousarray(data).tobytes())
        for k in sorted(f.attrs):
            h.update(k.encode() + repr(f.attrs[k]).encode())
        f.visititems(visit)
    return h.hexdigest()


def run(args: list[str], crash: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("H5VC_CRASH_AT", None)
    if crash:
        env["H5VC_CRASH_AT"] = crash
    r = subprocess.run(args, capture_output=True, text=True, env=env)
    assert "Traceback" not in r.stderr, r.stderr
    if check and crash is None:
        assert r.returncode == 0, r.stderr
    return r


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str, str, str]:
    """A store whose commits A and B differ in every way a checkout handles."""
    d = tmp_path_factory.mktemp("versions")
    path = d / "s.h5"
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        f.create_dataset("/t/a", data=rng.random((4000, 8)), maxshape=(None, 8), chunks=(500, 8))
        f.create_dataset("/t/b", data=rng.integers(0, 9, 3000), maxshape=(None,), chunks=(256,))
        f.create_dataset("/gone", data=np.arange(1000.0), chunks=(100,), maxshape=(None,))
        f.create_dataset("/names", data=np.array([f"n{i}" for i in range(300)], dtype=object),
                         dtype=h5py.string_dtype(), maxshape=(None,), chunks=(64,))
        f["/t"].attrs["split"] = "train"
    with Repository.init(path, pointer=False) as repo:
        a = repo.head.id  # type: ignore[union-attr]
        with repo.transaction("B") as tx:
            tx["/t/a"][100:1300] = rng.random((1200, 8))
            tx["/t/a"].append(rng.random((2000, 8)))
            tx["/t/b"].resize(1000)
            tx["/names"][5:80] = np.array([f"x{i}" for i in range(75)], dtype=object)
            del tx["/gone"]
            tx.create_dataset("/new/c", data=rng.random((700, 3)))
            tx["/t"].attrs["split"] = "test"
            tx["/t"].attrs["extra"] = 3
        b = repo.head.id  # type: ignore[union-attr]
    db = digest(path)
    fresh = d / "fresh.h5"  # B, nothing of B preserved yet: every point of B -> A is reached
    fresh.write_bytes(path.read_bytes())
    run(H5VC + ["checkout", a, "-s", str(path)])
    da = digest(path)
    assert da != db
    return path, a, b, da, db, fresh


CHECKOUT_POINTS = ["objects.rows-flushed", "intent.written", "intent.flushed", "restore.created",
                   "restore.written", "restore.written:2", "restore.written:3",
                   "checkout.restored", "op.flushed"]


@pytest.mark.parametrize("point", CHECKOUT_POINTS)
@pytest.mark.parametrize("direction", ["fresh", "forward", "back"])
def test_checkout_killed_is_finished_or_undone(two_versions: tuple, tmp_path: Path, point: str,
                                               direction: str) -> None:
    src, a, b, da, db, fresh = two_versions
    path = tmp_path / "s.h5"
    path.write_bytes((fresh if direction == "fresh" else src).read_bytes())
    start, goal, d_start, d_goal = (a, b, da, db) if direction == "forward" else (b, a, db, da)
    if direction == "back":
        run(H5VC + ["checkout", b, "-s", str(path)])
    r = run(H5VC + ["checkout", goal, "-s", str(path)], crash=point)
    if direction == "fresh":  # nothing is preserved yet: the checkout passes every point
        assert r.returncode == -signal.SIGKILL, (point, r.returncode, r.stderr)
    else:  # the rows that leave may be preserved already: some points are passed by
        assert r.returncode in (0, -signal.SIGKILL), (point, r.returncode, r.stderr)
    st = run(H5VC + ["status", "--json", "-s", str(path)])  # the next command recovers
    import json

    status = json.loads(st.stdout)
    now = digest(path)
    assert now in (d_start, d_goal), f"{point}: a mix of both versions"
    assert status["clean"], status
    assert status["head"] == (goal if now == d_goal else start), (point, status["head"])
    run(H5VC + ["verify", "-s", str(path)])
    for cid, d in ((a, da), (b, db)):  # both versions still check out exactly
        run(H5VC + ["checkout", cid, "-s", str(path)])
        assert digest(path) == d
        run(H5VC + ["verify", "-s", str(path)])


TX = """
import sys, numpy as np
from h5vc import Repository
rng = np.random.default_rng(1)
with Repository.open(sys.argv[1]) as repo:
    with repo.transaction("tx") as tx:
        tx["/t/a"][0:700] = rng.random((700, 8))
        tx["/t/b"].resize(10)
        tx["/names"][0:3] = np.array(["p", "q", "r"], dtype=object)
        del tx["/new"]
        if sys.argv[2] == "raise":
            raise SystemExit(3)
"""

ROLLBACK_ONLY = {"intent.written", "intent.flushed", "restore.written"}
COMMIT_ONLY = {"commit.frame-written", "commit.flushed"}
TX_POINTS = ["transaction.synced", "transaction.synced:2", "transaction.synced:3",
             "objects.rows-flushed", "objects.rows-flushed:2", "commit.frame-written",
             "commit.flushed", "intent.written", "intent.flushed", "restore.written", "op.flushed"]


@pytest.mark.parametrize("point", TX_POINTS)
@pytest.mark.parametrize("ending", ["commit", "raise"])
def test_transaction_killed_is_undone(two_versions: tuple, tmp_path: Path, point: str,
                                      ending: str) -> None:
    src, a, b, da, db, fresh = two_versions
    path = tmp_path / "s.h5"
    path.write_bytes(fresh.read_bytes())
    r = run([sys.executable, "-c", TX, str(path), ending], crash=point, check=False)
    # killed; or, at a point only the other ending passes, committed (0) or rolled back (3)
    expect = -signal.SIGKILL
    if ending == "commit" and point in ROLLBACK_ONLY:
        expect = 0
    elif ending == "raise" and point in COMMIT_ONLY:
        expect = 3
    assert r.returncode == expect, (point, r.returncode, r.stderr)
    import json

    status = json.loads(run(H5VC + ["status", "--json", "-s", str(path)]).stdout)
    now = digest(path)
    log = json.loads(run(H5VC + ["log", "--json", "-s", str(path)]).stdout)
    if status["head"] == b:
        assert now == db, f"{point}: the transaction was not undone"
    else:  # the commit was recorded before the kill
        assert ending == "commit" and log[0]["message"] == "tx" and log[1]["id"] == b
    assert status["clean"], status
    run(H5VC + ["verify", "-s", str(path)])
    for cid, d in ((a, da), (b, db)):
        run(H5VC + ["checkout", cid, "-s", str(path)])
        assert digest(path) == d


def _cut_eoa(path: Path, eoa: int) -> None:
    """Leave the superblock's end of allocation at ``eoa``, as a kill in the middle of HDF5's
    flush can (the objects written past it, and the links to them, are on disk)."""
    import struct

    data = bytearray(path.read_bytes())
    assert data[:8] == b"\x89HDF\r\n\x1a\n" and data[8] == 0  # superblock version 0
    (old,) = struct.unpack_from("<Q", data, 40)
    assert old == len(data) > eoa
    struct.pack_into("<Q", data, 40, eoa)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("committed", [True, False])
def test_objects_past_a_short_end_of_allocation_are_recovered(tmp_path: Path,
                                                              committed: bool) -> None:
    path = tmp_path / "s.h5"
    with h5py.File(path, "w") as f:
        f["a"] = np.arange(10)
    Repository.init(path, message="init", pointer=False).close()
    eoa = path.stat().st_size
    rows = np.arange(50_000, dtype="i8")
    with Repository.open(path) as repo, repo.transaction("more", commit=committed) as tx:
        tx.create_group("g").create_dataset("big", data=rows, chunks=(4096,), maxshape=(None,))
    _cut_eoa(path, eoa)
    with h5py.File(path, "r") as f, pytest.raises(KeyError, match="EOA"):
        f["g/big"]  # plain h5py: the data is there, but past the recorded end
    copy = tmp_path / "copy.h5"
    copy.write_bytes(path.read_bytes())
    with Repository.open(copy, mode="r") as repo:  # read-only: read as it is, not changed
        assert any("recorded end" in p for p in repo.pending)
        assert np.array_equal(repo.file["g/big"][()], rows)
        assert [c["path"] for c in repo.status().changes][:1] == ([] if committed else ["/g"])
        assert repo.verify().ok
    assert copy.read_bytes() == path.read_bytes()
    # the next command, as a user runs it, records the end by itself
    st = subprocess.run([*H5VC, "status", "-s", str(path)], capture_output=True, text=True)
    assert st.returncode == 0 and "Traceback" not in st.stderr, st.stderr
    assert "recorded end" in st.stdout + st.stderr, st.stdout + st.stderr
    assert ("/g" in st.stdout) == (not committed), st.stdout
    with h5py.File(path, "r") as f:  # now plain h5py reads it too
        assert np.array_equal(f["g/big"][()], rows)
    v = subprocess.run([*H5VC, "verify", "-s", str(path)], capture_output=True, text=True)
    assert v.returncode == 0, v.stdout + v.stderr
    with Repository.open(path) as repo:
        assert repo.verify().ok
        if not committed:
            repo.commit("the rows")
        assert repo.status().clean
        assert repo.log(limit=1).__next__().message == ("more" if committed else "the rows")


def test_a_file_shorter_than_its_recorded_end_is_extended_and_recovered(tmp_path: Path) -> None:
    """A kill after HDF5 wrote a superblock whose end lies past the bytes it got to write."""
    path = tmp_path / "s.h5"
    with h5py.File(path, "w") as f:
        f["a"] = np.arange(10)
    Repository.init(path, message="init", pointer=False).close()
    with Repository.open(path) as repo, repo.transaction("more") as tx:
        tx["a"].append(np.arange(5))
    end = path.stat().st_size
    with open(path, "ab") as fh:  # space HDF5 allocated and recorded, then never wrote
        fh.write(b"\0" * 4096)
    import struct

    data = bytearray(path.read_bytes())
    struct.pack_into("<Q", data, 40, end + 4096)
    path.write_bytes(bytes(data[:end]))
    with pytest.raises(OSError, match="truncated file"):
        h5py.File(path, "r")
    st = subprocess.run([*H5VC, "status", "-s", str(path)], capture_output=True, text=True)
    assert st.returncode == 0, st.stderr
    assert "recorded end" in st.stdout + st.stderr and "equals HEAD" in st.stdout, st.stdout
    v = subprocess.run([*H5VC, "verify", "-s", str(path)], capture_output=True, text=True)
    assert v.returncode == 0, v.stdout + v.stderr
    with h5py.File(path, "r") as f:
        assert f["a"][()].tolist() == [*range(10), *range(5)]


def _stale_refs_past_end(path: Path, name: str) -> None:
    """Write, past the extent of ``name``'s last chunk, references to heap objects that are not
    in the file: what a kill leaves when a chunk of new variable-length rows reached the file
    and neither the new extent nor the heap holding their values did."""
    import struct

    with h5py.File(path, "r+") as f:
        ds = f[name]
        c, n = ds.chunks[0], ds.shape[0]
        assert ds.dtype.hasobject and n % c, "the last chunk must be partial"
        start = n - n % c
        mask, raw = ds.id.read_direct_chunk((start,))
        assert mask == 0 and len(raw) == 16 * c  # length, heap collection address, index
        buf = bytearray(raw)
        _length, addr, _index = struct.unpack_from("<IQI", buf, 0)
        for i in range(n % c, c):  # a real collection, an object it does not hold
            struct.pack_into("<IQI", buf, 16 * i, 3, addr, 60_000 + i)
        ds.id.write_direct_chunk((start,), bytes(buf))


def test_stale_heap_references_past_a_vlen_dataset_end_are_not_reused(tmp_path: Path) -> None:
    """A checkout killed while it grew a variable-length dataset: the rows it wrote past the
    recorded extent point at heap objects that never reached the file. Recovery (and every
    later checkout that grows the dataset again) must not write over them: HDF5 would free
    them first and crash."""
    path = tmp_path / "s.h5"
    names = np.array([f"name-{i}-é" for i in range(400)], dtype=object)
    with h5py.File(path, "w") as f:
        f.create_dataset("/names", data=names[:300], dtype=h5py.string_dtype(),
                         maxshape=(None,), chunks=(64,))
    with Repository.init(path, pointer=False) as repo:
        a = repo.head.id  # type: ignore[union-attr]
        with repo.transaction("more names") as tx:
            tx["/names"].append(names[300:])
        c = repo.head.id  # type: ignore[union-attr]
    dc = digest(path)
    run(H5VC + ["checkout", a, "-s", str(path)])
    da = digest(path)
    r = run(H5VC + ["checkout", c, "-s", str(path)], crash="intent.flushed")
    assert r.returncode == -signal.SIGKILL, r.stderr
    _stale_refs_past_end(path, "/names")
    st = run(H5VC + ["status", "-s", str(path)])  # recovers: finishes the checkout
    assert "finished an interrupted checkout" in st.stdout + st.stderr, st.stdout + st.stderr
    assert digest(path) == dc
    run(H5VC + ["verify", "-s", str(path)])
    for cid, d in ((a, da), (c, dc), (a, da), (c, dc)):
        run(H5VC + ["checkout", cid, "-s", str(path)])
        assert digest(path) == d
    run(H5VC + ["verify", "-s", str(path)])


def test_stale_heap_references_past_a_vlen_pack_end_are_skipped(tmp_path: Path) -> None:
    """A kill while variable-length rows were appended to a pack can leave the same stale
    references past the pack's extent: the next append starts in a fresh chunk instead."""
    path = tmp_path / "s.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("/names", data=np.array([f"a{i}" for i in range(100)], dtype=object),
                         dtype=h5py.string_dtype(), maxshape=(None,), chunks=(256,))
    with Repository.init(path, pointer=False) as repo:
        a = repo.head.id  # type: ignore[union-attr]
        with repo.transaction("b") as tx:  # the rows it overwrites are preserved in a pack
            tx["/names"][0:10] = np.array([f"b{i}" for i in range(10)], dtype=object)
        b = repo.head.id  # type: ignore[union-attr]
    db = digest(path)
    with h5py.File(path, "r") as f:
        packs = [k for k, v in f["/.h5vc/packs"].items() if v.dtype.hasobject]
    assert len(packs) == 1
    pack = f"/.h5vc/packs/{packs[0]}"
    _stale_refs_past_end(path, pack)
    run(H5VC + ["checkout", a, "-s", str(path)])  # preserves b's rows: appends to the pack
    with h5py.File(path, "r") as f:
        assert [f["/names"][i].decode() for i in (0, 9, 10)] == ["a0", "a9", "a10"]
    with Repository.open(path) as repo, repo.transaction("c") as tx:  # and appends again
        tx["/names"][20:30] = np.array([f"c{i}" for i in range(10)], dtype=object)
    run(H5VC + ["verify", "-s", str(path)])
    run(H5VC + ["checkout", b, "-s", str(path)])
    assert digest(path) == db
    run(H5VC + ["verify", "-s", str(path)])
