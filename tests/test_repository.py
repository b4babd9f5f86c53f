"""The Python API from a user's point of view: init, transactions, status, commit, log, checkout."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from h5vc import (
    AmbiguousRevError,
    ConversionWarning,
    DataLossError,
    DirtyStoreError,
    InvalidInputError,
    NotFoundError,
    Repository,
)
from h5vc.engine.format import CREATE_VERSION


def test_init_adopts_existing_file_as_first_commit(repo: Repository, sensor_file: Path) -> None:
    head = repo.head
    assert head is not None and head.message == "init" and head.parents == ()
    assert repo.branch == "main"
    assert repo.status().clean
    state = repo.state_of("HEAD")
    assert set(state) == {"/", "/sensors", "/sensors/a", "/sensors/b", "/fixed"}
    assert state["/sensors/a"]["n"] == 250
    # 250 rows with 100-row chunks: blocks [0,100) [100,200) [200,250)
    assert [r[:2] for r in state["/sensors/a"]["ranges"]] == [[0, 100], [100, 200], [200, 250]]
    assert head.summary.startswith("+")


def test_init_new_file(tmp_path: Path) -> None:
    with Repository.init(tmp_path / "new.h5") as r:
        assert r.head is not None
        assert list(r.file.keys()) == [".h5vc"]
    with h5py.File(tmp_path / "new.h5", "r") as f:
        assert f[".h5vc"].attrs["format_version"] == CREATE_VERSION == 3


def test_transaction_append_and_attrs_commit(repo: Repository) -> None:
    rows = np.full((20, 4), 7, dtype="f4")
    with repo.transaction("day 2") as tx:
        tx["/sensors/a"].append(rows)
        tx["/sensors"].attrs["units"] = "mV"
    c = tx.commit
    assert c is not None and c.message == "day 2"
    assert repo.head == c
    assert repo.status().clean
    assert repo.file["/sensors/a"].shape == (270, 4)
    ops = {(ch["op"], ch.get("name")) for ch in c.changes}
    assert ops == {("rows", None), ("attr", "units")}
    assert c.summary == "+20 rows /sensors/a, 1 attr"
    assert [x.message for x in repo.log()] == ["day 2", "init"]


def test_transaction_rolls_back_on_exception(repo: Repository) -> None:
    before = repo.file["/sensors/a"][()].copy()
    head = repo.head
    with pytest.raises(RuntimeError):
        with repo.transaction("broken") as tx:
            tx["/sensors/a"].append(np.ones((5, 4), "f4"))
            tx["/sensors/a"][0:3] = -1
            tx["/sensors"].attrs["site"] = "changed"
            tx.create_dataset("/new", data=np.arange(3))
            del tx["/sensors/b"]
            raise RuntimeError("boom")
    assert repo.head == head
    assert repo.status(verify=True).clean
    np.testing.assert_array_equal(repo.file["/sensors/a"][()], before)
    assert repo.file["/sensors"].attrs["site"] == "lab1"
    assert "/new" not in repo.file and "/sensors/b" in repo.file


def test_outside_writes_are_found_by_status_and_commit(repo: Repository) -> None:
    f = repo.file
    f["/sensors/b"].resize((40,))
    f["/sensors/b"][30:] = np.arange(10)
    f.create_group("extra").attrs["k"] = 1
    f["/sensors"].attrs["site"] = "lab2"
    del f["/sensors"].attrs["site"]
    f.attrs["title"] = "renamed"
    changes = repo.status().changes
    kinds = sorted((c["op"], c["path"]) for c in changes)
    assert kinds == [("add_group", "/extra"), ("attr", "/"), ("attr", "/extra"),
                     ("attr", "/sensors"), ("rows", "/sensors/b")]
    c = repo.commit("outside")
    assert repo.status().clean
    assert c.summary == "+10 rows /sensors/b, 1 created, 3 attrs"


def test_verify_finds_in_place_overwrite(repo: Repository) -> None:
    repo.file["/sensors/a"][5] = 99
    # the file was handed out for writing: plain status rehashes too, and sees it
    assert repo.status().changes == repo.status(verify=True).changes
    changes = repo.status(verify=True).changes
    assert changes == [{"op": "rows", "path": "/sensors/a", "from": 250, "to": 250,
                        "ranges": [[0, 100, None]]}]
    with pytest.raises(DataLossError, match="changed in place outside h5vc"):
        repo.commit("fix", verify=True)  # the committed rows 0:100 were never preserved
    c = repo.commit("fix", verify=True, accept_loss=True)
    assert c.summary == "~100 rows rewritten"
    assert repo.status(verify=True).clean


def test_checkout_back_and_forth_is_lossless(repo: Repository) -> None:
    snapshots = {}
    for i in range(4):
        with repo.transaction(f"step {i}") as tx:
            tx["/sensors/a"].append(np.full((60, 4), i, "f4"))
            if i % 2:
                tx["/sensors/a"][10:20] = -i
            tx["/sensors"].attrs["step"] = i
            if i == 2:
                tx["/sensors/b"].resize(5)
        snapshots[repo.head.id] = (repo.file["/sensors/a"][()].copy(),
                                   repo.file["/sensors/b"][()].copy(),
                                   repo.file["/sensors"].attrs["step"])
    ids = list(snapshots)
    for cid in [ids[0], ids[3], ids[1], ids[2], ids[0]]:
        repo.checkout(cid)
        a, b, step = snapshots[cid]
        np.testing.assert_array_equal(repo.file["/sensors/a"][()], a)
        np.testing.assert_array_equal(repo.file["/sensors/b"][()], b)
        assert repo.file["/sensors"].attrs["step"] == step
        assert repo.status(verify=True).clean
    repo.checkout("main")
    assert repo.branch == "main" and repo.head.id == ids[3]


def test_checkout_keeps_chunking_filters_and_fill(repo: Repository) -> None:
    with repo.transaction("drop") as tx:
        del tx["/sensors/a"]
    repo.checkout("HEAD~1")
    ds = repo.file["/sensors/a"]
    assert ds.chunks == (100, 4) and ds.compression == "gzip" and ds.maxshape == (None, 4)
    np.testing.assert_array_equal(ds[()], np.arange(1000, dtype="f4").reshape(250, 4))


def test_checkout_refuses_dirty_store_then_force_discards(repo: Repository) -> None:
    repo.file["/sensors/b"].resize((35,))
    head = repo.head
    with pytest.raises(DirtyStoreError, match="uncommitted"):
        repo.checkout("HEAD")
    assert repo.file["/sensors/b"].shape == (35,)
    r = repo.checkout("HEAD", force=True)
    assert [c["path"] for c in r.discarded] == ["/sensors/b"]
    assert repo.file["/sensors/b"].shape == (30,)
    assert repo.head == head and repo.status(verify=True).clean


def test_revs_branches_tags(repo: Repository) -> None:
    for i in range(3):
        with repo.transaction(f"c{i}") as tx:
            tx["/sensors/b"].append([i])
    ids = [c.id for c in repo.log()]
    assert repo.resolve("HEAD~2") == ids[2]
    assert repo.resolve("main~1") == ids[1]
    assert repo.resolve(ids[3][:8]) == ids[3]
    assert repo.resolve(ids[3].upper()) == ids[3]
    repo.create_tag("v1", "HEAD~1")
    repo.create_branch("exp", "v1")
    assert repo.tags() == {"v1": ids[1]} and repo.branches()["exp"] == ids[1]
    repo.checkout("exp")
    assert repo.branch == "exp" and repo.file["/sensors/b"].shape == (32,)
    with repo.transaction("on exp") as tx:
        tx["/sensors/b"].append([100])
    assert repo.branches()["exp"] == repo.head.id and repo.branches()["main"] == ids[0]
    repo.checkout("main")
    assert list(repo.file["/sensors/b"][-3:]) == [0, 1, 2]
    with pytest.raises(NotFoundError):
        repo.resolve("nope")
    with pytest.raises(NotFoundError):
        repo.resolve("HEAD~10")
    with pytest.raises(InvalidInputError):
        repo.create_branch("exp")
    with pytest.raises(InvalidInputError):
        repo.create_tag("bad name")


def test_ambiguous_prefix_names_the_candidates() -> None:
    from h5vc.refs import resolve_base

    ids = ["abcd" + "1" * 28, "abcd" + "2" * 28, "ffff" + "0" * 28]
    kw = dict(head=ids[0], branches={}, tags={}, ids=lambda: ids)
    with pytest.raises(AmbiguousRevError, match=r"matches 2 commits \(abcd11111111, abcd22222222\)"):
        resolve_base("abcd", **kw)
    assert resolve_base("abcd2", **kw) == ids[1]
    assert resolve_base("FFFF", **kw) == ids[2]
    with pytest.raises(NotFoundError):
        resolve_base("abc", **kw)  # fewer than 4 hex digits is not an id prefix


def test_contiguous_append_is_converted_and_said(repo: Repository) -> None:
    with pytest.warns(ConversionWarning, match="contiguous"):
        with repo.transaction("grow fixed") as tx:
            tx["/fixed"].append(np.ones((2, 3)))
    ds = repo.file["/fixed"]
    assert ds.shape == (5, 3) and ds.chunks is not None and ds.maxshape == (None, 3)
    assert any("contiguous" in n for n in tx.notices)
    repo.checkout("HEAD~1")
    assert repo.file["/fixed"].chunks is None
    np.testing.assert_array_equal(repo.file["/fixed"][()], np.eye(3))


def test_create_existing_dataset_names_alternatives(repo: Repository) -> None:
    with pytest.raises(InvalidInputError, match=r"already exists; append rows .*replace"):
        with repo.transaction("dup") as tx:
            tx.create_dataset("/sensors/a", data=np.zeros((1, 4)))
    assert repo.status().clean


def test_append_shape_mismatch_is_clear(repo: Repository) -> None:
    with pytest.raises(InvalidInputError, match=r"shape \(5,\).*\(4,\)"):
        with repo.transaction("bad") as tx:
            tx["/sensors/a"].append(np.zeros((2, 5)))
    assert repo.status(verify=True).clean


def test_transaction_refuses_outside_changes_on_touched_dataset(repo: Repository) -> None:
    repo.file["/sensors/b"].resize((31,))
    with pytest.raises(DirtyStoreError, match="/sensors/b"):
        with repo.transaction("x") as tx:
            tx["/sensors/b"].append([1])
    assert repo.file["/sensors/b"].shape == (31,)


def test_new_datasets_from_transactions_are_resizable(repo: Repository) -> None:
    with repo.transaction("new") as tx:
        g = tx.create_group("/cams")
        g.attrs["kind"] = "rgb"
        g.create_dataset("images", data=np.zeros((2, 8, 8, 3), "u1"))
    with repo.transaction("more") as tx:
        tx["/cams/images"].append(np.ones((3, 8, 8, 3), "u1"))
    assert repo.file["/cams/images"].shape == (5, 8, 8, 3)
    repo.checkout("HEAD~2")
    assert "/cams" not in repo.file
    repo.checkout("main")
    assert repo.file["/cams"].attrs["kind"] == "rgb"
    assert repo.file["/cams/images"][4].sum() == 8 * 8 * 3


def test_empty_transaction_makes_no_commit(repo: Repository) -> None:
    head = repo.head
    with repo.transaction("nothing") as tx:
        _ = tx["/sensors/a"][0]
    assert tx.commit is None and repo.head == head


def test_nothing_to_commit(repo: Repository) -> None:
    with pytest.raises(InvalidInputError, match="nothing to commit"):
        repo.commit("again")
    c = repo.commit("marker", allow_empty=True)
    assert c.changes == [] and repo.head == c


def test_history_survives_reopen_and_readonly_open(repo: Repository, sensor_file: Path) -> None:
    with repo.transaction("t") as tx:
        tx["/sensors/b"].append([5])
    ids = [c.id for c in repo.log()]
    repo.close()
    with Repository.open(sensor_file, mode="r") as r:
        assert [c.id for c in r.log()] == ids
        assert r.status().clean
    with Repository.open(sensor_file) as r:
        r.checkout(ids[1])
        assert r.file["/sensors/b"].shape == (30,)


def test_snapshot_cache_is_consistent_after_many_commits(tmp_path: Path, monkeypatch) -> None:
    import h5vc.repository as rmod

    monkeypatch.setattr(rmod, "SNAPSHOT_MIN_BYTES", 2048)
    path = tmp_path / "many.h5"
    with Repository.init(path) as r:
        with r.transaction("create") as tx:
            tx.create_dataset("/x", data=np.zeros(0, "i4"), chunks=(4,))
        for i in range(60):
            with r.transaction(f"c{i}") as tx:
                tx["/x"].append(np.arange(3, dtype="i4") + i)
        expected = r.file["/x"][()].copy()
        states = r.state_of("HEAD")
    with Repository.open(path, mode="r") as r:
        assert r.state_of("HEAD") == states
        assert r.status(verify=True).clean
        np.testing.assert_array_equal(r.file["/x"][()], expected)


def test_plain_h5py_reader_sees_checkout(repo: Repository, sensor_file: Path) -> None:
    with repo.transaction("t") as tx:
        tx["/sensors/a"].append(np.zeros((50, 4), "f4"))
    repo.checkout("HEAD~1")
    repo.close()
    with h5py.File(sensor_file, "r") as f:
        assert f["/sensors/a"].shape == (250, 4)
        assert f.attrs["title"] == "demo"


def test_shrink_then_regrow_in_one_transaction(repo: Repository) -> None:
    before = repo.file["/sensors/b"][()].copy()
    with pytest.raises(RuntimeError):
        with repo.transaction("doomed") as tx:
            tx["/sensors/b"].resize(0)
            tx["/sensors/b"].resize(30)
            raise RuntimeError("boom")
    np.testing.assert_array_equal(repo.file["/sensors/b"][()], before)
    assert repo.status(verify=True).clean
    with repo.transaction("zero then regrow") as tx:
        tx["/sensors/b"].resize(10)
        tx["/sensors/b"].resize(30)
    assert repo.status(verify=True).clean
    assert list(repo.file["/sensors/b"][8:12]) == [8, 9, 0, 0]
    repo.checkout("HEAD~1")
    np.testing.assert_array_equal(repo.file["/sensors/b"][()], before)


def test_one_transaction_at_a_time(repo: Repository) -> None:
    with repo.transaction("outer") as tx:
        tx["/sensors/b"].append([1])
        with pytest.raises(InvalidInputError, match="transaction is open"):
            repo.transaction("inner")
        with pytest.raises(InvalidInputError, match="transaction is open"):
            repo.checkout("HEAD")
    assert tx.commit is not None and repo.head == tx.commit
    with repo.transaction("next") as tx2:  # free again
        tx2["/sensors/b"].append([2])
    assert repo.file["/sensors/b"][-2:].tolist() == [1, 2]


def test_large_ranges_are_hashed_and_converted_in_slices(tmp_path: Path, monkeypatch) -> None:
    import h5vc.engine.rows as scan_mod

    data = np.arange(3000, dtype="f8").reshape(1000, 3)
    hashes = []
    for slice_bytes in (64 << 20, 100):  # one read, then slices of 4 rows
        monkeypatch.setattr(scan_mod, "SLICE_BYTES", slice_bytes)
        path = tmp_path / f"c{slice_bytes}.h5"
        with h5py.File(path, "w") as f:
            f["big"] = data  # contiguous: one block, one range
        with Repository.init(path) as repo:
            hashes.append(repo.state_of("HEAD")["/big"]["ranges"])
            with pytest.warns(ConversionWarning):
                with repo.transaction("grow") as tx:
                    tx["/big"].append(np.ones((1, 3)))
            np.testing.assert_array_equal(repo.file["/big"][:1000], data)
            assert repo.status(verify=True).clean
            repo.checkout("HEAD~1")
            np.testing.assert_array_equal(repo.file["/big"][()], data)
    assert hashes[0] == hashes[1]


def test_interrupted_commit_leaves_uncommitted_changes(repo: Repository, sensor_file: Path,
                                                       monkeypatch) -> None:
    from h5vc.engine.format import Layout

    head = repo.head

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(Layout, "append_frame", fail)
    with pytest.raises(OSError):
        with repo.transaction("lost") as tx:
            tx["/sensors/b"].append([7, 8])
    monkeypatch.undo()
    repo.close()
    with Repository.open(sensor_file) as r:
        assert r.head == head  # history intact
        assert [c["path"] for c in r.status().changes] == ["/sensors/b"]
        c = r.commit("recovered")
        assert c.summary == "+2 rows /sensors/b"
        assert r.status(verify=True).clean


def test_text_rows_are_hashed_as_stored(repo: Repository) -> None:
    with repo.transaction("text") as tx:
        tx.create_dataset("/t", data=np.array(["α", "b"], dtype=object), dtype=h5py.string_dtype())
        tx["/t"].append(np.array(["c", "d"], dtype=object))
    assert repo.status(verify=True).clean
    assert [x.decode() for x in repo.file["/t"][()]] == ["α", "b", "c", "d"]
    with pytest.raises(InvalidInputError, match="NUL"):
        with repo.transaction("nul") as tx:
            tx["/t"].append(np.array(["e\0f"], dtype=object))
    assert repo.file["/t"].shape == (4,) and repo.status(verify=True).clean
    repo.checkout("HEAD~1")
    repo.checkout("main")
    assert repo.status(verify=True).clean


def test_one_huge_range_is_preserved_and_restored_in_slices(tmp_path: Path, monkeypatch) -> None:
    import h5vc.engine.objects as objects_mod
    import h5vc.engine.rows as scan_mod

    monkeypatch.setattr(objects_mod, "RUN_BYTES", 256)  # the dataset's one range is "huge"
    monkeypatch.setattr(scan_mod, "SLICE_BYTES", 100)
    data = np.arange(3000, dtype="i8").reshape(1000, 3)
    path = tmp_path / "huge.h5"
    with h5py.File(path, "w") as f:
        f["big"] = data  # contiguous: one block, one range of 24 kB
    with Repository.init(path) as repo:
        with repo.transaction("drop") as tx:
            del tx["/big"]
        assert repo.file["/.h5vc/objindex"].shape == (1,)
        repo.checkout("HEAD~1")
        np.testing.assert_array_equal(repo.file["/big"][()], data)
        assert repo.status(verify=True).clean
    path2 = tmp_path / "huge2.h5"
    with h5py.File(path2, "w") as f:
        f["big"] = data
    with Repository.init(path2) as repo:
        repo.file["/big"][5] = -1  # an outside overwrite is caught while preserving in slices
        with pytest.raises(DirtyStoreError, match="rows 0:1000 of /big"):
            with repo.transaction("drop") as tx:
                del tx["/big"]
        assert "/big" in repo.file and repo.file["/.h5vc/objindex"].shape == (0,)  # nothing kept
