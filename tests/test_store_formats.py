"""Stores written by older h5vc, and objects a kill left half made inside /.h5vc.

``tests/data/format1.h5`` was made by the format-1 code (three commits: a first import, an
append with an attribute, a rewrite of ten rows). It must be read as it is by read-only
commands, and upgraded in place, with every commit still checking out, by the first write.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from h5vc import Repository
from h5vc.engine.format import META, Layout

H5VC = [sys.executable, "-m", "h5vc"]
FORMAT1 = Path(__file__).parent / "data" / "format1.h5"


def h5vc(*args: str, ok: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run([*H5VC, *args], capture_output=True, text=True)
    assert "Traceback" not in r.stderr, r.stderr
    if ok:
        assert r.returncode == 0, r.stderr
    return r


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def content(path: Path) -> dict[str, object]:
    out: dict[str, object] = {}
    with h5py.File(path, "r") as f:
        def visit(name: str, obj: object) -> None:
            if name.startswith(META):
                return
            if isinstance(obj, h5py.Dataset):
                out[name] = np.asarray(obj[()]).tolist()
            out[name + "@"] = {k: np.asarray(v).tolist() for k, v in obj.attrs.items()}  # type: ignore[attr-defined]
        f.visititems(visit)
    return out


@pytest.fixture
def old_store(tmp_path: Path) -> Path:
    p = tmp_path / "old.h5"
    shutil.copyfile(FORMAT1, p)
    return p


def test_format1_is_read_as_it_is_by_read_only_commands(old_store: Path) -> None:
    before = sha(old_store)
    log = h5vc("log", "-s", str(old_store)).stdout
    assert len([line for line in log.splitlines() if line.strip()]) == 3
    for msg in ("first", "append", "rewrite"):
        assert msg in log
    assert "nothing to commit" in h5vc("status", "-s", str(old_store)).stdout
    with Repository.open(old_store, mode="r") as r:
        assert len(list(r.log())) == 3
    assert sha(old_store) == before, "a read-only command changed a format-1 store"
    with h5py.File(old_store, "r") as f:
        assert int(f[META].attrs["format_version"]) == 1


def test_format1_is_upgraded_at_the_first_write_and_keeps_every_commit(old_store: Path) -> None:
    head = content(old_store)
    with Repository.open(old_store, mode="r") as r:
        ids = [c.id for c in r.log()]  # newest first
    # the first write: checkout of the oldest commit
    h5vc("checkout", ids[-1], "-s", str(old_store))
    with h5py.File(old_store, "r") as f:
        g = f[META]
        assert int(g.attrs["format_version"]) == 2
        assert "refs" not in g and "state" not in g  # the format-1 blobs are gone
        assert {"refs.0", "refs.1", "state.0", "state.1", "packs", "objindex"} <= set(g)
        assert f["sensors/a"].shape == (50, 2)
        assert f["names"].shape == (2,)
        assert f["sensors"].attrs["site"] != "lab2"  # the second commit changed it
    first = content(old_store)
    h5vc("checkout", ids[1], "-s", str(old_store))
    with h5py.File(old_store, "r") as f:
        assert f["sensors/a"].shape == (75, 2)
        assert f["sensors"].attrs["site"] == "lab2"
        # the rewrite's ten rows are back to what the append wrote
        second_rows = f["sensors/a"][()]
    h5vc("checkout", "main", "-s", str(old_store))
    assert content(old_store) == head, "the upgraded store lost the tip's content"
    with h5py.File(old_store, "r") as f:
        assert not np.array_equal(f["sensors/a"][()], second_rows)
    h5vc("verify", "-s", str(old_store))
    assert "nothing to commit" in h5vc("status", "-s", str(old_store)).stdout
    # and a commit on the upgraded store
    with h5py.File(old_store, "r+") as f:
        ds = f["sensors/a"]
        ds.resize(80, axis=0)
        ds[75:] = 7
    h5vc("commit", "-m", "after upgrade", "-s", str(old_store))
    h5vc("checkout", ids[-1], "-s", str(old_store))
    assert content(old_store) == first
    h5vc("checkout", "main", "-s", str(old_store))
    h5vc("verify", "-s", str(old_store))


def _break_header(path: Path, where: str) -> None:
    """Zero the object header of ``where``: what a kill mid-flush can leave of a new object."""
    with h5py.File(path, "r") as f:
        addr = h5py.h5o.get_info(f[where].id).addr
    with open(path, "r+b") as fh:
        fh.seek(addr)
        fh.write(b"\0" * 32)


def test_a_half_made_record_slot_is_written_around(repo: Repository, sensor_file: Path) -> None:
    repo.close()
    with h5py.File(sensor_file, "r") as f:
        lay = Layout(f)
        lay.read_record("refs")
        other = f"refs.{(lay._load_live()['seq']['refs'] + 1) % 2}"  # the slot written next
    _break_header(sensor_file, f"{META}/{other}")
    with h5py.File(sensor_file, "r+") as f:
        ds = f["sensors/b"]
        ds.resize(40, axis=0)
        ds[30:] = 5
    r = h5vc("commit", "-m", "after a broken slot", "-s", str(sensor_file))
    assert r.returncode == 0
    log = h5vc("log", "-s", str(sensor_file)).stdout
    assert "after a broken slot" in log
    h5vc("checkout", "HEAD~1", "-s", str(sensor_file))
    with h5py.File(sensor_file, "r") as f:
        assert f["sensors/b"].shape == (30,)
    h5vc("checkout", "main", "-s", str(sensor_file))
    with h5py.File(sensor_file, "r") as f:
        assert f["sensors/b"][30:].tolist() == [5] * 10


def test_a_half_made_pack_is_passed_over(repo: Repository, sensor_file: Path) -> None:
    # a first rewrite makes the pack for /sensors/b's rows; break it as a kill would have
    # before any index row pointed at it
    with repo.transaction(message="rewrite") as tx:
        tx["sensors/b"][0:8] = -1
    repo.close()
    with h5py.File(sensor_file, "r") as f:
        packs = list(f[META]["packs"])
        index = f[META]["objindex"][()]
    assert packs and len(index)
    # drop the index rows of that pack too: a kill before objindex was flushed
    with h5py.File(sensor_file, "r+") as f:
        oi = f[META]["objindex"]
        keep = oi[()][[p.decode() != packs[0] for p in oi[()]["pack"]]]
        oi.resize(len(keep), axis=0)
        oi[:] = keep
    _break_header(sensor_file, f"{META}/packs/{packs[0]}")
    # the first commit now lacks its preserved rows: verify says so, and names the commit
    r = h5vc("verify", "-s", str(sensor_file), ok=False)
    assert r.returncode == 1
    # a new rewrite of the same dtype needs a pack: it must not fail on the broken one
    with Repository.open(sensor_file) as r2:
        with r2.transaction(message="rewrite again") as tx:
            tx["sensors/b"][8:16] = -2
    with h5py.File(sensor_file, "r") as f:
        assert len(f[META]["packs"]) == len(packs) + 1
    h5vc("checkout", "HEAD~1", "-s", str(sensor_file))
    with h5py.File(sensor_file, "r") as f:
        assert f["sensors/b"][8:16].tolist() == list(range(8, 16))
        assert f["sensors/b"][0:8].tolist() == [-1] * 8
    h5vc("checkout", "main", "-s", str(sensor_file))
    with h5py.File(sensor_file, "r") as f:
        assert f["sensors/b"][8:16].tolist() == [-2] * 8


def _copy(f: h5py.File, name: str) -> bytes:
    buf = f[META].attrs[f"{name}.inline"]
    return buf[4:4 + int(buf[:4].view("<u4")[0])].tobytes()


def _put_copy(f: h5py.File, name: str, raw: bytes) -> None:
    buf = f[META].attrs[f"{name}.inline"].copy()
    buf[:] = 0
    buf[:4] = np.frombuffer(np.uint32(len(raw)).tobytes(), dtype=np.uint8)
    buf[4:4 + len(raw)] = np.frombuffer(raw, dtype=np.uint8)
    f[META].attrs[f"{name}.inline"] = buf


def _slot(f: h5py.File, name: str, newest: bool = True) -> bytes:
    seq = Layout(f)._load_live()["seq"][name]
    return f[f"{META}/{name}.{(seq if newest else seq + 1) % 2}"][()].tobytes()


def test_small_records_are_copied_inline_and_a_stale_or_bad_copy_is_passed_over(
        repo: Repository, sensor_file: Path) -> None:
    repo.create_branch("exp")
    repo.close()
    with h5py.File(sensor_file, "r") as f:
        for name in ("refs", "state"):
            assert _copy(f, name) == _slot(f, name)
        older = _slot(f, "refs", newest=False)
    # a copy that checks itself but is the older version (as an older h5vc would leave it)
    with h5py.File(sensor_file, "r+") as f:
        _put_copy(f, "refs", older)
    with Repository.open(sensor_file, mode="r") as r:
        assert "exp" in r.branches()
    # a copy with a flipped byte
    with h5py.File(sensor_file, "r+") as f:
        bad = bytearray(_slot(f, "refs"))
        bad[3] ^= 0x20
        _put_copy(f, "refs", bytes(bad))
    with Repository.open(sensor_file, mode="r") as r:
        assert "exp" in r.branches()
    # the next write of the record makes the copy true again
    with Repository.open(sensor_file) as r:
        r.create_tag("v1")
    with h5py.File(sensor_file, "r") as f:
        assert _copy(f, "refs") == _slot(f, "refs")


def test_a_record_grown_past_the_inline_limit_drops_its_copy(repo: Repository) -> None:
    from h5vc.engine.format import INLINE_SIZE

    assert "state.inline" in repo.file[META].attrs  # small: copied
    with repo.transaction("many datasets") as tx:
        for i in range(200):  # past the copy's size, short of a paged snapshot
            tx.create_dataset(f"/many/d{i:03d}", data=np.arange(3, dtype="i4"))
    for _ in range(40):  # enough commits that the snapshot is rewritten with the large state
        with repo.transaction("append") as tx:
            tx["/sensors/b"].append(np.arange(2, dtype="i8"))
    head = repo.head.id
    repo.close()
    with h5py.File(repo.path, "r") as f:
        assert len(_slot(f, "state")) > INLINE_SIZE["state"]
        assert "state.side.0" not in f[META] and "state.side.1" not in f[META]
        assert _copy(f, "state") == b""
        assert _copy(f, "refs") == _slot(f, "refs")
    with Repository.open(repo.path, mode="r") as r:
        assert r.head.id == head
        assert r.status().clean
        assert len([p for p in r.state_of("HEAD") if p.startswith("/many/")]) == 200
