"""repo.at(rev): any revision read without a checkout, from the live rows or preserved ones.

Histories are random (hypothesis): appends, rewrites in place, shrinks, attribute edits,
datasets made and deleted. After every commit, every earlier commit's view must equal what
was recorded when it was made, and reading must leave the file's bytes unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from histories import OPS, start, step
from hypothesis import HealthCheck, given, settings

from h5vc import IntegrityError, Repository, ViewDataset, ViewGroup

H5VC = [sys.executable, "-m", "h5vc"]
EXAMPLES = int(os.environ.get("H5VC_VIEW_EXAMPLES", "25"))


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snapshot(repo: Repository) -> dict[str, object]:
    """What the live file holds now: rows and attributes of every object."""
    out: dict[str, object] = {}
    f = repo.file

    def visit(name: str, obj: object) -> None:
        if name.startswith(".h5vc"):
            return
        attrs = {k: np.asarray(v).tolist() for k, v in obj.attrs.items()}  # type: ignore[attr-defined]
        if isinstance(obj, h5py.Dataset):
            out["/" + name] = (np.asarray(obj[()]).copy(), attrs)
        else:
            out["/" + name] = (None, attrs)
    f.visititems(visit)
    return out


def view_snapshot(view: ViewGroup) -> dict[str, object]:
    out: dict[str, object] = {}

    def visit(name: str, obj: ViewGroup | ViewDataset) -> None:
        attrs = {k: np.asarray(v).tolist() for k, v in obj.attrs.items()}
        out["/" + name] = (np.asarray(obj[()]) if isinstance(obj, ViewDataset) else None, attrs)
    view.visititems(visit)
    return out


def same(a: dict[str, object], b: dict[str, object]) -> bool:
    if set(a) != set(b):
        return False
    for k in a:
        (x, ax), (y, ay) = a[k], b[k]  # type: ignore[misc]
        if ax != ay:
            return False
        if (x is None) != (y is None):
            return False
        if x is not None and (x.shape != y.shape or x.dtype != y.dtype
                              or not np.array_equal(x, y)):
            return False
    return True



@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_every_commit_reads_back_exactly_after_random_histories(tmp_path_factory: pytest.TempPathFactory,
                                                                ops: list[tuple[str, int]]) -> None:
    path = tmp_path_factory.mktemp("v") / "s.h5"
    recorded: dict[str, dict[str, object]] = {}
    with Repository.init(path) as repo:
        with repo.transaction("start") as tx:
            names = start(tx)
        recorded[repo.head.id] = snapshot(repo)
        for i, (op, x) in enumerate(ops):
            with repo.transaction(f"{op} {i}") as tx:
                step(tx, op, x, i, names)
            recorded[repo.head.id] = snapshot(repo)
            for cid, want in recorded.items():
                assert same(view_snapshot(repo.at(cid)), want), cid
    before = sha(path)
    with Repository.open(path, mode="r") as ro:
        for cid, want in recorded.items():
            assert same(view_snapshot(ro.at(cid)), want), cid
    assert sha(path) == before  # reading changes nothing


@pytest.fixture
def history(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    """A store with three commits of /d (100 x 3 float32): made, rewritten, appended."""
    path = tmp_path / "h.h5"
    base = np.arange(300, dtype="f4").reshape(100, 3)
    with Repository.init(path) as repo:
        with repo.transaction("make") as tx:
            tx.create_dataset("/d", data=base, maxshape=(None, 3), chunks=(16, 3))
            tx["/d"].attrs["units"] = "m"
        repo.create_tag("v1")
        with repo.transaction("rewrite") as tx:
            tx["/d"][10:40] = -1
        repo.create_tag("v2")
        with repo.transaction("append") as tx:
            tx["/d"].append(np.full((20, 3), 5, dtype="f4"))
    v2 = base.copy()
    v2[10:40] = -1
    return path, {"v1": base, "v2": v2, "main": np.concatenate([v2, np.full((20, 3), 5, "f4")])}


KEYS = [(), np.s_[:], 5, -1, np.s_[3:50], np.s_[3:90:7], np.s_[-30:], np.s_[95:200],
        np.s_[7, 1], np.s_[..., 2], np.s_[2:30, 1:], [50, 3, 3, 97], np.array([0, 99, 12]),
        np.s_[40:40]]


@pytest.mark.parametrize("key", KEYS, ids=[repr(k) for k in KEYS])
def test_slicing_is_numpy_s(history: tuple[Path, dict[str, np.ndarray]], key: object) -> None:
    path, want = history
    with Repository.open(path, mode="r") as repo:
        for rev in ("v1", "v2", "main"):
            ds = repo.at(rev)["/d"]
            assert np.array_equal(ds[key], want[rev][key]), rev  # type: ignore[index]


def test_a_view_is_h5py_like(history: tuple[Path, dict[str, np.ndarray]]) -> None:
    path, want = history
    with Repository.open(path, mode="r") as repo:
        view = repo.at("v1")
        ds = view["/d"]
        assert isinstance(ds, ViewDataset)
        assert ds.shape == (100, 3) and len(ds) == 100 and ds.dtype == np.float32
        assert ds.chunks == (16, 3) and ds.ndim == 2 and ds.size == 300
        assert ds.attrs["units"] == "m" and dict(ds.attrs) == {"units": "m"}
        assert list(view) == ["d"] and "d" in view and "/d" in view and "e" not in view
        assert np.array_equal(np.asarray(ds), want["v1"])
        assert view.commit == repo.resolve("v1")
        with pytest.raises(KeyError):
            view["/nope"]
        with pytest.raises(IndexError):
            ds[100]
        assert repo.at("HEAD~1").commit == repo.resolve("v2")
        assert repo.at(repo.resolve("v1")[:8]).commit == repo.resolve("v1")


def test_rows_come_from_live_and_preserved_in_one_call(history: tuple[Path, dict[str, np.ndarray]]) -> None:
    path, want = history
    with Repository.open(path, mode="r") as repo:
        ds = repo.at("v1")["/d"]
        # rows 0:10 and 40:100 are live, 10:40 were preserved when v2 rewrote them
        assert np.array_equal(ds[0:60], want["v1"][0:60])


def test_a_view_stays_right_when_head_moves(history: tuple[Path, dict[str, np.ndarray]]) -> None:
    path, want = history
    with Repository.open(path) as repo:
        views = {rev: repo.at(rev) for rev in ("v1", "v2", "main")}
        repo.checkout("v1")
        for rev, view in views.items():
            assert np.array_equal(view["/d"][()], want[rev]), rev
        repo.checkout("main")
        for rev, view in views.items():
            assert np.array_equal(view["/d"][()], want[rev]), rev


def test_rows_changed_outside_h5vc_are_never_read_as_history(
        history: tuple[Path, dict[str, np.ndarray]]) -> None:
    path, want = history
    with h5py.File(path, "r+") as f:  # another program rewrites committed rows in place
        f["d"][60:62] = 1234
    with Repository.open(path, mode="r") as repo:
        ds = repo.at("main")["/d"]
        with pytest.raises(IntegrityError, match="no longer in the store"):
            ds[()]
        assert np.array_equal(ds[0:48], want["main"][0:48])  # ranges not touched still read
        # v2's rows 10:40 are preserved: still exact
        assert np.array_equal(repo.at("v2")["/d"][10:40], want["v2"][10:40])


def test_a_view_pickles_as_path_and_commit(history: tuple[Path, dict[str, np.ndarray]]) -> None:
    path, want = history
    with Repository.open(path, mode="r") as repo:
        ds = repo.at("v1")["/d"]
        blob = pickle.dumps(ds)
        assert len(blob) < 500  # path, commit and name: no rows
    code = ("import pickle, sys, numpy as np; ds = pickle.loads(sys.stdin.buffer.read()); "
            "sys.stdout.write(repr(float(np.asarray(ds[()]).sum())))")
    r = subprocess.run([sys.executable, "-c", code], input=blob, capture_output=True, check=True)
    assert float(r.stdout) == float(want["v1"].sum())


def h5vc(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    r = subprocess.run([*H5VC, *args], capture_output=True, text=True, cwd=cwd)
    assert "Traceback" not in r.stderr, r.stderr
    return r


def test_cli_cat_and_ls_rev(history: tuple[Path, dict[str, np.ndarray]], tmp_path: Path) -> None:
    path, want = history
    s = str(path)
    r = h5vc("cat", "v1:/d", "--slice", "10:12", "-s", s)
    assert r.returncode == 0 and "30" in r.stdout and "-1" not in r.stdout, r.stdout
    r = h5vc("cat", "v2:/d", "--slice", "10:12,0", "--json", "-s", s)

    got = json.loads(r.stdout)
    with Repository.open(path, mode="r") as repo:
        assert got["data"] == [-1.0, -1.0] and got["commit"] == repo.resolve("v2")
    r = h5vc("cat", "v1:/d", "--attr", "units", "-s", s)
    assert r.stdout.strip() == "m"
    out = tmp_path / "d.npy"
    r = h5vc("cat", "v1:/d", "--npy", str(out), "-s", s)
    assert r.returncode == 0 and np.array_equal(np.load(out), want["v1"])
    before = sha(path)
    for args, words in [
        (["cat", "v1:/nope"], "does not exist at v1"),
        (["cat", "nope:/d"], "unknown revision"),
        (["cat", "v1:/d", "--slice", "a:b"], "--slice"),
        (["cat", "v1:/d", "--slice", "500"], "out of range"),
        (["cat", "v1:/d", "--npy", str(out)], "--force"),
        (["cat", "v1:/", "--attr", "x"], "no attribute"),
        (["cat", "v1:d"], "from the root"),
        (["ls", "--rev", "v1", "/nope"], "does not exist at v1"),
    ]:
        r = h5vc(*args, "-s", s)
        assert r.returncode == 1 and words in r.stderr and len(r.stderr.strip().splitlines()) == 1, \
            (args, r.stderr)
    assert sha(path) == before
    r = h5vc("ls", "--rev", "v1", "-s", s)
    assert r.returncode == 0 and r.stdout.startswith("/  (0 groups, 1 datasets)"), r.stdout
    assert "100 x 3  float32" in r.stdout and "units=m" in r.stdout
