"""repo.diff / h5vc diff: per path, from recorded hashes, checked against the data itself.

Random histories (hypothesis): for every pair of consecutive commits, the diff names exactly
the paths whose content or attributes differ, its appended and removed rows are exact, every
row that differs lies in a rewritten range, and ``diff(b, a)`` is the inverse of
``diff(a, b)``.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from histories import OPS, start, step
from hypothesis import HealthCheck, given, settings

from h5vc import Repository

H5VC = [sys.executable, "-m", "h5vc"]
EXAMPLES = int(os.environ.get("H5VC_DIFF_EXAMPLES", "25"))


def snapshot(f: h5py.File) -> dict[str, tuple[np.ndarray | None, dict[str, object]]]:
    out: dict[str, tuple[np.ndarray | None, dict[str, object]]] = {}

    def visit(name: str, obj: object) -> None:
        if name.startswith(".h5vc"):
            return
        attrs = {k: np.asarray(v).tolist() for k, v in obj.attrs.items()}  # type: ignore[attr-defined]
        data = np.asarray(obj[()]).copy() if isinstance(obj, h5py.Dataset) else None
        out["/" + name] = (data, attrs)
    f.visititems(visit)
    return out


def covered(row: int, spans: list[tuple[int, int]]) -> bool:
    return any(s <= row < e for s, e in spans)


def check_diff(d: object, old: dict, new: dict) -> None:
    got = {p.path: p for p in d}  # type: ignore[attr-defined]
    expect = set()
    for path in set(old) | set(new):
        a, b = old.get(path), new.get(path)
        if a is None or b is None:
            expect.add(path)
            assert got[path].status == ("created" if a is None else "deleted")
            continue
        (xa, aa), (xb, ab) = a, b
        differs = aa != ab or (xa is None) != (xb is None) or (
            xa is not None and (xa.shape != xb.shape or not np.array_equal(xa, xb)))
        if not differs:
            assert path not in got, (path, got.get(path))
            continue
        expect.add(path)
        p = got[path]
        assert set(p.attrs) == {k for k in set(aa) | set(ab) if aa.get(k) != ab.get(k)}
        if xa is not None and xa.ndim:
            na, nb = len(xa), len(xb)
            assert p.appended == ([(na, nb)] if nb > na else [])
            assert p.removed == ([(nb, na)] if nb < na else [])
            for i in range(min(na, nb)):
                if not np.array_equal(xa[i], xb[i]):
                    assert covered(i, p.rewritten), (path, i, p.rewritten)
    assert set(got) == expect


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_diff_matches_the_data_and_inverts(tmp_path_factory: pytest.TempPathFactory,
                                           ops: list[tuple[str, int]]) -> None:
    path = tmp_path_factory.mktemp("d") / "s.h5"
    with Repository.init(path) as repo:
        with repo.transaction("start") as tx:
            names = start(tx)
        commits = [(repo.head.id, snapshot(repo.file))]
        for i, (op, x) in enumerate(ops):
            with repo.transaction(f"{op} {i}") as tx:
                step(tx, op, x, i, names)
            commits.append((repo.head.id, snapshot(repo.file)))
        for (ca, sa), (cb, sb) in zip(commits, commits[1:], strict=False):
            d = repo.diff(ca, cb)
            check_diff(d, sa, sb)
            assert repo.diff(cb, ca).to_json() == d.inverse().to_json()
        first, last = commits[0], commits[-1]
        check_diff(repo.diff(first[0], last[0]), first[1], last[1])
        assert not repo.diff()  # nothing uncommitted


def test_diff_of_the_live_store_sees_outside_edits(tmp_path: Path) -> None:
    path = tmp_path / "s.h5"
    with Repository.init(path) as repo:
        with repo.transaction("make") as tx:
            tx.create_dataset("/x", data=np.arange(20), maxshape=(None,), chunks=(5,))
        repo.create_tag("v1")
    with h5py.File(path, "r+") as f:
        f["x"].resize((23,))
        f["x"][20:] = 1
        f["x"][3] = 99
        f["x"].attrs["unit"] = "m"
    with Repository.open(path, mode="r") as repo:
        p = repo.diff()["/x"]
        assert p.appended == [(20, 23)] and p.rewritten == [(0, 5)]
        assert p.attrs == {"unit": (None, "m")}
        assert repo.diff("v1").to_json() == repo.diff().to_json() | {"a": repo.resolve("v1")}
        assert not repo.diff("v1", "HEAD")
        assert not repo.diff(paths=["/y"])


def sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_cli_diff(tmp_path: Path) -> None:
    path = tmp_path / "s.h5"
    with Repository.init(path) as repo:
        with repo.transaction("make") as tx:
            tx.create_dataset("/x", data=np.arange(20), maxshape=(None,), chunks=(5,))
            tx.create_group("/g").attrs["split"] = "train"
        repo.create_tag("v1")
        with repo.transaction("change") as tx:
            tx["/x"].append(np.array([7, 8]))
            tx["/x"][1] = -1
            tx["/g"].attrs["split"] = "test"
            tx.create_dataset("/g/y", data=np.zeros(3))
    s = str(path)

    def h5vc(*args: str) -> subprocess.CompletedProcess:
        r = subprocess.run([*H5VC, *args, "-s", s], capture_output=True, text=True)
        assert "Traceback" not in r.stderr, r.stderr
        return r

    r = h5vc("diff", "v1", "HEAD")
    assert r.returncode == 0
    assert "M /x  dataset  20 -> 22 rows" in r.stdout and "+ rows 20:22 appended (2)" in r.stdout
    assert "~ rows 0:5 rewritten (5)" in r.stdout and '@ split: "train" -> "test"' in r.stdout
    assert "A /g/y  dataset  3 rows" in r.stdout
    r = h5vc("diff", "v1", "HEAD", "--stat")
    assert "M /x  dataset  +2 -0 ~5 rows" in r.stdout
    r = h5vc("diff", "v1", "HEAD", "/x", "--values")
    assert "row 1: 1 -> -1" in r.stdout and "+ row 20: 7" in r.stdout and "/g" not in r.stdout
    got = json.loads(h5vc("diff", "HEAD", "v1", "--json").stdout)
    x = next(p for p in got["paths"] if p["path"] == "/x")
    assert x["removed"] == [[20, 22]] and x["rows"] == [22, 20]
    assert h5vc("diff").stdout.startswith("no differences")
    before = sha(path)
    for args, words in [(("a", "b", "c"), "at most two revisions"),
                        (("nope",), "unknown revision"),
                        (("v1", "HEAD", "/x/../../y"), "not a path")]:
        r = h5vc("diff", *args)
        assert r.returncode == 1 and words in r.stderr and len(r.stderr.strip().splitlines()) == 1, \
            (args, r.stderr)
    assert sha(path) == before
