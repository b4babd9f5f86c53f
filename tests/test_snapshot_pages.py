"""A large state snapshot is stored as pages and read a page at a time (h5vc/engine/snapshot.py):
opening a store and committing to one dataset reads a bounded amount whatever the store holds,
every state read through pages equals the history replayed, and a damaged page, a damaged side
dataset or a kill between the pages and their record never gives a wrong state."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from histories import OPS, start, step
from hypothesis import HealthCheck, given, settings

import h5vc.engine.snapshot as snapshot
from h5vc import Repository
from h5vc.engine.format import META, Layout
from h5vc.engine.snapshot import PagedState
from h5vc.engine.state import apply_changes, empty_state

SMALL_PAGES = 512  # bytes of nodes per page: tests page stores of a few dozen datasets


@pytest.fixture
def small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(snapshot, "PAGE_BYTES", SMALL_PAGES)


def replayed(repo: Repository, rev: str = "HEAD") -> dict:
    """The state of ``rev`` from the journal alone."""
    cid = repo.resolve(rev)
    chain = []
    cur = cid
    while cur is not None:
        chain.append(cur)
        cur = repo._frame(cur).parent
    return dict(apply_changes(empty_state(), [ch for c in reversed(chain)
                                              for ch in repo._record_of(c)["changes"]]))


def make_store(path: Path, groups: int) -> None:
    with h5py.File(path, "w") as f:
        for i in range(groups):
            g = f.create_group(f"c{i:04d}")
            g.attrs["label"] = f"class {i % 7}"
            for name in ("a", "b"):
                g.create_dataset(name, data=np.arange(8, dtype="f4").reshape(4, 2) + i,
                                 maxshape=(None, 2), chunks=(4, 2))
    Repository.init(path, message="init", pointer=False).close()


class Reads:
    """Counts what is read of the snapshot's pages."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        self.bytes = 0
        real = Layout.read_side

        def counted(lay: Layout, name: str, seq: int, start: int, n: int) -> bytes | None:
            self.calls += 1
            self.bytes += n
            return real(lay, name, seq, start, n)

        monkeypatch.setattr(Layout, "read_side", counted)


def is_paged(path: Path) -> bool:
    with h5py.File(path, "r") as f:
        return any(k.startswith("state.side.") for k in f[META])


@pytest.mark.parametrize("groups", [60, 600])
def test_an_append_commit_reads_one_page_whatever_the_store_holds(
        tmp_path: Path, small_pages: None, monkeypatch: pytest.MonkeyPatch, groups: int) -> None:
    path = tmp_path / "s.h5"
    make_store(path, groups)
    assert is_paged(path)
    reads = Reads(monkeypatch)
    with Repository.open(path) as r:
        pages = len(r._read_snapshot()[0]["pages"])  # the header only: no page read
        assert pages >= groups // 10 and reads.calls == 0
        with r.transaction("one append") as tx:
            tx["/c0003/b"].append(np.ones((2, 2), dtype="f4"))
    # the append's path and nothing else: one page, whether the store has 6 pages or 60
    assert reads.calls == 1 and reads.bytes < 4 * SMALL_PAGES
    with Repository.open(path, mode="r") as r:
        assert r.head.message == "one append"
        assert dict(r.state_of("HEAD")) == replayed(r)
        assert r.status().clean
        np.testing.assert_array_equal(r.at("HEAD")["/c0003/b"][-2:], np.ones((2, 2)))


def test_large_states_are_paged_and_small_ones_stay_one_record(tmp_path: Path) -> None:
    small, large = tmp_path / "small.h5", tmp_path / "large.h5"
    make_store(small, 20)
    make_store(large, 400)  # more than 64 KiB of nodes
    assert not is_paged(small) and is_paged(large)
    with Repository.open(large, mode="r") as r:
        state = r.state_of("HEAD")
        assert isinstance(state, PagedState)
        assert len(state) == 1 + 400 * 3 and dict(state) == replayed(r)
    with Repository.open(small, mode="r") as r:
        assert not isinstance(r.state_of("HEAD"), PagedState)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(ops=OPS, more=OPS)
def test_every_state_read_through_pages_equals_the_history(tmp_path_factory: pytest.TempPathFactory,
                                                          ops: list, more: list) -> None:
    old = snapshot.PAGE_BYTES
    snapshot.PAGE_BYTES = 96  # about one node a page: page boundaries everywhere
    try:
        path = tmp_path_factory.mktemp("h") / "s.h5"
        with h5py.File(path, "w") as f:
            f.create_group("pad")
        r = Repository.init(path, pointer=False)
        with r.transaction("start") as tx:
            names = start(tx)
        commits = [r.head.id]
        for batch in (ops, more):
            for i, (op, x) in enumerate(batch):
                with r.transaction(f"{op} {i}") as tx:
                    step(tx, op, x, len(commits), names)
                commits.append(r.head.id)
                assert dict(r._head_state()[1]) == replayed(r)
            r.close()  # reopen: the next steps start from the stored pages
            r = Repository.open(path)
            assert dict(r._head_state()[1]) == replayed(r)
        for c in commits:
            assert dict(r.state_of(c)) == replayed(r, c)
        assert r.verify().ok
        r.close()
    finally:
        snapshot.PAGE_BYTES = old


def _flip_in_side(path: Path, holding: str | None = None) -> None:
    """Flip a byte in the middle of the snapshot's pages, or of the page ``holding`` a path."""
    with h5py.File(path, "r+") as f:
        lay = Layout(f)
        seq = int(lay._load_live()["seq"]["state"])
        ds = f[META][f"state.side.{seq % 2}"]
        raw = ds[()]
        at = raw.size // 2
        if holding is not None:
            pages = lay.read_record("state")[0]["pages"]
            first, start, length = [p for p in pages if p[0] <= holding][-1][:3]
            at = start + length // 2
        raw[at] ^= 0x40
        ds[...] = raw


def test_a_damaged_page_is_never_read_as_state_and_repair_rewrites_it(
        tmp_path: Path, small_pages: None) -> None:
    path = tmp_path / "s.h5"
    make_store(path, 60)
    with Repository.open(path) as r:
        with r.transaction("attr") as tx:
            tx["/c0010"].attrs["label"] = "changed"
        good = replayed(r)
    _flip_in_side(path)
    with Repository.open(path, mode="r") as r:
        assert dict(r.state_of("HEAD")) == good  # rebuilt from the history
        assert r.status().clean
        assert r.at("HEAD")["/c0010"].attrs["label"] == "changed"
        report = r.verify()
        assert not report.ok
        assert any(p.where == "state snapshot" and "pages damaged" in p.what
                   for p in report.problems)
    cli = [sys.executable, "-m", "h5vc"]
    out = subprocess.run([*cli, "verify", "-s", str(path)], capture_output=True, text=True)
    assert out.returncode == 1 and "state snapshot" in out.stdout + out.stderr
    out = subprocess.run([*cli, "repair", "-s", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    with Repository.open(path, mode="r") as r:
        assert r.verify().ok
        assert dict(r.state_of("HEAD")) == good


def test_a_damaged_page_found_while_committing_still_commits_right(
        tmp_path: Path, small_pages: None) -> None:
    path = tmp_path / "s.h5"
    make_store(path, 60)
    _flip_in_side(path, holding="/c0030/a")  # the page the commits read
    with Repository.open(path) as r:
        for i in range(3):
            with r.transaction(f"append {i}") as tx:
                tx["/c0030/a"].append(np.full((1, 2), i, dtype="f4"))
        assert dict(r._head_state()[1]) == replayed(r)
    with Repository.open(path, mode="r") as r:
        assert r.verify().ok  # the snapshot was rewritten whole at the first commit
        assert r.at("HEAD")["/c0030/a"].shape == (7, 2)


def test_a_damaged_side_dataset_falls_back_to_one_record(tmp_path: Path, small_pages: None) -> None:
    path = tmp_path / "s.h5"
    make_store(path, 60)
    with h5py.File(path, "r+") as f:
        for k in ("state.side.0", "state.side.1"):
            if k in f[META]:
                del f[META][k]
            f[META].create_group(k)  # in the way of either slot's pages
    with Repository.open(path) as r:
        for i in range(30):
            with r.transaction(f"append {i}") as tx:
                tx["/c0001/a"].append(np.full((1, 2), i, dtype="f4"))
        expect = replayed(r)
    with Repository.open(path, mode="r") as r:
        snap, _ = r._read_snapshot()
        assert "pages" not in snap
        assert dict(r.state_of("HEAD")) == expect
        assert r.status().clean


def test_a_store_with_one_record_snapshot_is_read_and_then_paged(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "s.h5"
    monkeypatch.setattr(snapshot, "PAGE_BYTES", 1 << 30)  # as written before paging
    make_store(path, 60)
    assert not is_paged(path)
    monkeypatch.setattr(snapshot, "PAGE_BYTES", SMALL_PAGES)
    with Repository.open(path) as r:
        assert not isinstance(r.state_of("HEAD"), PagedState)
        with r.transaction("append") as tx:
            tx["/c0002/a"].append(np.full((1, 2), 7, dtype="f4"))
    assert is_paged(path)  # at the first commit
    monkeypatch.setattr(snapshot, "PAGE_BYTES", 1 << 30)  # pages are read whatever the setting
    with Repository.open(path, mode="r") as r:
        assert isinstance(r.state_of("HEAD"), PagedState)
        assert dict(r.state_of("HEAD")) == replayed(r)
        assert r.verify().ok


KILLED = """
import sys
import numpy as np
import h5vc.engine.snapshot as snapshot
from h5vc import Repository
snapshot.PAGE_BYTES = 512
with Repository.open(sys.argv[1]) as r:
    for i in range(200):
        with r.transaction(f"append {i}") as tx:
            tx["/c0004/a"].append(np.full((1, 2), i, dtype="f4"))
"""


@pytest.mark.parametrize("nth", [1, 2, 3])
def test_a_kill_between_the_pages_and_their_record_loses_nothing(
        tmp_path: Path, small_pages: None, nth: int) -> None:
    path = tmp_path / "s.h5"
    make_store(path, 60)
    env = {**os.environ, "H5VC_CRASH_AT": f"record.side-written:{nth}"}
    done = subprocess.run([sys.executable, "-c", KILLED, str(path)], env=env)
    assert done.returncode == -9
    with Repository.open(path) as r:
        commits = list(r.log())
        assert 2 <= len(commits) <= 200
        assert dict(r.state_of("HEAD")) == replayed(r)
        assert r.at("HEAD")["/c0004/a"].shape == (4 + len(commits) - 1, 2)
        assert r.verify().ok
        # the killed commit was never reported: its appended row is an uncommitted change
        n = 4 + len(commits) - 1
        assert r.status().changes in ([], [{"op": "rows", "path": "/c0004/a", "from": n,
                                            "to": n + 1, "ranges": [[n, n + 1, None]]}])
