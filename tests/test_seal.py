"""Rows rewritten in place by another program are caught by plain status and commit.

h5vc seals the store file's modification time after its own writes (h5vc/engine/stamp.py); a file
whose seal is broken has its committed rows rehashed, so an in-place rewrite, which no
metadata shows, is still found. These tests write the file the way users do (plain h5py, in
this process or another, right after h5vc wrote it) and check what ``status`` and
``commit`` say, through the API and the CLI.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from h5vc import DataLossError, Repository
from h5vc.engine.stamp import is_sealed

H5VC = [sys.executable, "-m", "h5vc"]


def h5vc(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*H5VC, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def make_store(tmp_path: Path, name: str = "s.h5") -> Path:
    path = tmp_path / name
    with h5py.File(path, "w") as f:
        f.create_dataset("plain", data=np.arange(400, dtype="f8").reshape(100, 4),
                         maxshape=(None, 4), chunks=(10, 4))
        f.create_dataset("packed", data=np.arange(300, dtype="i4"), maxshape=(None,),
                         chunks=(50,), compression="gzip")
        f.create_dataset("contig", data=np.arange(64, dtype="u2"))
    Repository.init(path, message="init", pointer=False).close()
    return path


def old_mtime(path: Path, seconds: float = 5.0) -> None:
    """Let time pass for the file: its modification time moves back (as if written earlier)."""
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - int(seconds * 1e9)))


def test_h5vc_writes_leave_the_file_sealed(tmp_path: Path) -> None:
    path = make_store(tmp_path)
    assert is_sealed(os.stat(path))
    with Repository.open(path) as repo:
        assert repo.rows_trusted
        with repo.transaction("append") as tx:
            tx["plain"].append(np.ones((5, 4)))
    assert is_sealed(os.stat(path))
    with Repository.open(path, mode="r") as repo:
        assert repo.rows_trusted and repo.status().clean


@pytest.mark.parametrize("dataset,index,value", [
    ("plain", (3, 1), -1.0), ("packed", 7, -7), ("contig", 9, 999)])
def test_rewrite_in_place_right_after_h5vc_is_seen_by_plain_status(
        tmp_path: Path, dataset: str, index: object, value: object) -> None:
    path = make_store(tmp_path)
    with h5py.File(path, "r+") as f:  # at once: same second, same size
        f[dataset][index] = value
    assert not is_sealed(os.stat(path))
    with Repository.open(path, mode="r") as repo:
        assert not repo.rows_trusted
        st = repo.status()
        rows = [c for c in st.changes if c["op"] == "rows"]
        assert [c["path"] for c in rows] == [f"/{dataset}"]
        assert [lo.path for lo in st.lost] == [f"/{dataset}"]
        assert "changed in place" in str(st.lost[0])
    with Repository.open(path) as repo, pytest.raises(DataLossError, match="changed in place"):
        repo.commit("sneaky")


def test_cli_status_and_commit_catch_a_plain_h5py_rewrite(tmp_path: Path) -> None:
    path = make_store(tmp_path)
    code = ("import h5py, sys\n"
            "with h5py.File(sys.argv[1], 'r+') as f:\n"
            "    f['plain'][50] = [9, 9, 9, 9]\n")
    subprocess.run([sys.executable, "-c", code, str(path)], check=True)
    st = h5vc("status", "-s", str(path), cwd=tmp_path)
    assert st.returncode == 0, st.stderr
    assert "/plain" in st.stdout and "rewritten" in st.stdout, st.stdout
    assert "changed in place outside h5vc" in st.stdout + st.stderr
    before = path.read_bytes()
    c = h5vc("commit", "-s", str(path), "-m", "x", cwd=tmp_path)
    assert c.returncode == 1
    assert c.stderr.count("\n") == 1 and "--accept-loss" in c.stderr, c.stderr
    assert path.read_bytes() == before  # refused: nothing written
    c = h5vc("commit", "-s", str(path), "-m", "x", "--accept-loss", cwd=tmp_path)
    assert c.returncode == 0, c.stderr
    assert is_sealed(os.stat(path))
    st = h5vc("status", "-s", str(path), cwd=tmp_path)
    assert "nothing to commit" in st.stdout or "equals HEAD" in st.stdout, st.stdout


def test_appends_through_h5py_are_committed_and_then_trusted(tmp_path: Path) -> None:
    path = make_store(tmp_path)
    with h5py.File(path, "r+") as f:
        f["plain"].resize(120, axis=0)
        f["plain"][100:] = 5.0
    with Repository.open(path) as repo:
        assert not repo.rows_trusted
        st = repo.status()
        assert not st.lost and [c["path"] for c in st.changes] == ["/plain"]
        assert repo.rows_trusted  # rehashed: the committed rows are intact
        repo.commit("more rows")
    assert is_sealed(os.stat(path))


def test_read_only_status_reseals_once_the_write_is_old(tmp_path: Path) -> None:
    path = make_store(tmp_path)
    with h5py.File(path, "r+") as f:
        f["plain"].resize(110, axis=0)
    old_mtime(path)
    with Repository.open(path, mode="r") as repo:
        assert [c["path"] for c in repo.status().changes] == ["/plain"]
    assert is_sealed(os.stat(path))  # the rehash found the committed rows intact
    with Repository.open(path, mode="r") as repo:
        assert repo.rows_trusted
        assert [c["path"] for c in repo.status().changes] == ["/plain"]  # still uncommitted


def test_read_only_status_does_not_reseal_a_fresh_write(tmp_path: Path) -> None:
    # a write in the same clock tick as the rehash could hide behind an unchanged time
    path = make_store(tmp_path)
    with h5py.File(path, "r+") as f:
        f["plain"].resize(110, axis=0)
    with Repository.open(path, mode="r") as repo:
        repo.status()
    assert not is_sealed(os.stat(path))


def test_read_only_status_never_reseals_a_rewrite(tmp_path: Path) -> None:
    path = make_store(tmp_path)
    with h5py.File(path, "r+") as f:
        f["plain"][0] = 1
    old_mtime(path)
    with Repository.open(path, mode="r") as repo:
        assert repo.status().lost
    assert not is_sealed(os.stat(path))
    with Repository.open(path, mode="r") as repo:
        assert repo.status().lost  # found again


def test_writing_through_repo_file_is_not_vouched_for(tmp_path: Path) -> None:
    path = make_store(tmp_path)
    with Repository.open(path) as repo:
        repo.file["plain"][2] = 42  # the documented way is a transaction; this still counts
    with Repository.open(path, mode="r") as repo:
        assert repo.status().lost


def test_uncommitted_transaction_rewrite_is_seen(tmp_path: Path) -> None:
    path = make_store(tmp_path)
    with Repository.open(path) as repo:
        with repo.transaction("later", commit=False) as tx:
            tx["packed"][10:20] = 0
    with Repository.open(path, mode="r") as repo:
        st = repo.status()
        assert [c["path"] for c in st.changes] == ["/packed"]
        assert not st.lost  # h5vc preserved the rows it overwrote


def test_copies(tmp_path: Path) -> None:
    path = make_store(tmp_path)
    kept = tmp_path / "kept.h5"
    plain = tmp_path / "plain.h5"
    shutil.copy2(path, kept)  # keeps the modification time: same bytes, still sealed
    shutil.copyfile(path, plain)  # a new time: rehashed once, found clean
    assert is_sealed(os.stat(kept)) and not is_sealed(os.stat(plain))
    for p in (kept, plain):
        with Repository.open(p) as repo:
            assert repo.status().clean
    assert is_sealed(os.stat(plain))  # a writable session that rehashed seals at close


def test_random_histories_never_hide_a_rewrite(tmp_path: Path) -> None:
    """h5vc and plain h5py take turns, as fast as they can; after each step, status must
    report a rewrite exactly when plain h5py rewrote committed rows since the last commit."""
    rng = random.Random(8)
    path = make_store(tmp_path)
    dirty = False  # plain h5py rewrote committed rows since the last commit
    appended = False  # plain h5py appended rows since the last commit
    missed = 0
    for step in range(120):
        action = rng.choice(["h5vc-append", "h5vc-rewrite", "h5py-rewrite", "h5py-append",
                             "status", "commit"])
        if action == "h5vc-append":
            with Repository.open(path) as repo:
                if dirty:
                    continue  # h5vc refuses to append over foreign changes; not the point here
                with repo.transaction(f"a{step}") as tx:
                    tx["packed"].append(np.arange(7, dtype="i4"))
        elif action == "h5vc-rewrite" and not dirty and not appended:
            with Repository.open(path) as repo, repo.transaction(f"r{step}") as tx:
                tx["plain"][rng.randrange(100)] = rng.random()
        elif action == "h5py-rewrite":
            with h5py.File(path, "r+") as f:
                name = rng.choice(["plain", "packed", "contig"])
                ds = f[name]
                i = rng.randrange(100 if name == "plain" else ds.shape[0])  # committed rows
                row = ds[i]
                ds[i] = row + 1
            dirty = True
        elif action == "h5py-append":
            with h5py.File(path, "r+") as f:
                n = f["plain"].shape[0]
                f["plain"].resize(n + 3, axis=0)
                f["plain"][n:] = 1.5
            appended = True
        elif action == "commit":
            with Repository.open(path) as repo:
                if not repo.status().changes:
                    continue
                repo.commit(f"c{step}", accept_loss=True)
            dirty = appended = False
        with Repository.open(path, mode="r") as repo:
            st = repo.status()
        if bool(st.lost) != dirty or bool(st.changes) != (dirty or appended):
            missed += 1
    assert missed == 0


def test_a_store_sealed_clean_needs_no_scan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import h5vc.repository as repository_mod

    path = make_store(tmp_path)
    with Repository.open(path) as repo, repo.transaction("append") as tx:
        tx["plain"].append(np.ones((5, 4)))

    def no_scan(*args: object, **kwargs: object) -> None:
        raise AssertionError("scanned a store sealed clean")

    monkeypatch.setattr(repository_mod, "scan", no_scan)
    monkeypatch.setattr(repository_mod, "scan_suspects", no_scan)
    with Repository.open(path, mode="r") as repo:
        assert repo.status().clean
    with Repository.open(path) as repo:
        with pytest.raises(Exception, match="nothing to commit"):
            repo.commit("again")
    monkeypatch.undo()
    with h5py.File(path, "r+") as f:  # any write ends it
        f.attrs["note"] = "x"
    monkeypatch.setattr(repository_mod, "scan", no_scan)
    monkeypatch.setattr(repository_mod, "scan_suspects", no_scan)
    with Repository.open(path, mode="r") as repo, pytest.raises(AssertionError, match="sealed"):
        repo.status()


@pytest.mark.parametrize("kind", ["create", "rewrite", "attribute", "delete", "then append"])
def test_transactions_with_an_intent_leave_the_store_sealed(tmp_path: Path, kind: str,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A transaction that writes an intent flushes the file at its start and end: those are
    h5vc's own writes, so the session still vouches for the rows, and seals the file."""
    import h5vc.repository as repository_mod

    path = make_store(tmp_path)
    with Repository.open(path) as repo:
        with repo.transaction(kind) as tx:
            if kind in ("create", "then append"):
                tx.create_dataset("/new", data=np.arange(6), maxshape=(None,), chunks=(3,))
            elif kind == "rewrite":
                tx["plain"][0:2] = 7
            elif kind == "attribute":
                tx["plain"].attrs["k"] = 1
            else:
                del tx["plain"]
        assert repo.rows_trusted
        if kind == "then append":
            with repo.transaction("append") as tx:
                tx["/new"].append(np.arange(3))
            assert repo.rows_trusted

    def no_scan(*args: object, **kwargs: object) -> None:
        raise AssertionError("scanned a store sealed clean")

    monkeypatch.setattr(repository_mod, "scan", no_scan)
    monkeypatch.setattr(repository_mod, "scan_suspects", no_scan)
    with Repository.open(path, mode="r") as repo:
        assert repo.rows_trusted and repo.status().clean


def test_known_uncommitted_changes_survive_a_writer_that_seals(tmp_path: Path) -> None:
    """A writer that knows of uncommitted changes seals the file, but never as clean."""
    path = make_store(tmp_path)
    for _ in range(5):  # quickly, so that seals fall in the same second
        with h5py.File(path, "r+") as f:
            f["plain"].resize(f["plain"].shape[0] + 1, axis=0)
        with Repository.open(path) as repo:
            assert [c["path"] for c in repo.status().changes] == ["/plain"]
            with repo.transaction("other") as tx:
                tx["packed"].append(np.arange(3, dtype="i4"))
        assert is_sealed(os.stat(path))
        with Repository.open(path, mode="r") as repo:
            assert [c["path"] for c in repo.status().changes] == ["/plain"]
        with Repository.open(path) as repo:
            repo.commit("plain")
        with Repository.open(path, mode="r") as repo:
            assert repo.status().clean
