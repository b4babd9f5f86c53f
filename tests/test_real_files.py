"""Each kind of file people already have that h5vc used to refuse or crash on, one test per
kind, asserting the outcome: versioned exactly, or refused at ``init`` in one line that
names the object, with the file left byte for byte as it was.

The files are real: PyTables' own test data (tests/data/corpus, see SOURCES.md there), or
written here with h5py the way MATLAB and PyTables write them.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from h5vc import Repository
from h5vc.cli import app

CORPUS = Path(__file__).parent / "data" / "corpus"
runner = CliRunner()


def digest(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def cli(args: list[str], cwd: Path):
    old = os.getcwd()
    os.chdir(cwd)
    try:
        return runner.invoke(app, args)
    finally:
        os.chdir(old)


def corpus_file(name: str, tmp_path: Path) -> Path:
    p = tmp_path / name
    shutil.copyfile(CORPUS / name, p)
    return p


def assert_refused(p: Path, *phrases: str) -> str:
    """``h5vc init p`` fails in one line holding ``phrases``; the file is untouched."""
    before = digest(p)
    r = cli(["init", p.name, "-m", "adopt"], p.parent)
    assert r.exit_code == 1, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    lines = [x for x in r.output.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), r.output
    assert "Traceback" not in r.output and "unexpected failure" not in r.output
    for phrase in phrases:
        assert phrase in lines[0], (phrase, lines[0])
    assert digest(p) == before, "a refused init changed the file's bytes"
    assert sorted(x.name for x in p.parent.iterdir()) == [p.name], "init left files behind"
    return lines[0]


# -- a refused init leaves every byte as it was ------------------------------------------------

@pytest.mark.parametrize("name, phrases", [
    # variable-length data of a type numpy cannot hold: h5py cannot read it, and its bytes
    # are addresses in this file's heap
    ("pytables_time-table-vlarray-1_x.h5", ["dataset /vlarray4",
                                            "H5T_VLEN of H5T_ARRAY of H5T_TIME of 4 bytes"]),
])
def test_refused_kinds_name_the_object_and_leave_the_bytes(tmp_path: Path, name: str,
                                                           phrases: list[str]) -> None:
    p = corpus_file(name, tmp_path)
    assert_refused(p, *phrases)


def test_a_refused_pytables_file_keeps_its_length(tmp_path: Path) -> None:
    """HDF5 rewrites the end of a PyTables file it opens for writing (6 bytes shorter): a
    refused init must never have opened it so."""
    p = corpus_file("pytables_time-table-vlarray-1_x.h5", tmp_path)
    size = p.stat().st_size
    mtime = p.stat().st_mtime_ns
    assert_refused(p, "vlarray4")
    assert (p.stat().st_size, p.stat().st_mtime_ns) == (size, mtime)


def test_an_adopted_file_is_still_read_before_it_is_written(tmp_path: Path) -> None:
    """The read-only look comes first, then the same content is committed: nothing is read
    twice wrong (the first commit holds every row, and verify agrees)."""
    p = corpus_file("pytables_smpl_compound_chunked.h5", tmp_path)
    with Repository.init(p) as repo:
        assert repo.status().clean
        assert repo.verify().ok


# -- an undefined fill value is recorded as such and made again --------------------------------

def test_undefined_fill_values_round_trip(tmp_path: Path) -> None:
    p = corpus_file("pytables_ex-noattr.h5", tmp_path)
    with h5py.File(p, "r") as f:
        before = f["detector/table"][()]
        assert f["detector/table"].id.get_create_plist().fill_value_defined() == \
            h5py.h5d.FILL_VALUE_UNDEFINED
    with Repository.init(p) as repo:
        first = repo.head.id
        assert repo.status().clean
        with repo.transaction("drop the table") as t:
            del t["/detector/table"]
        with repo.transaction("drop a column") as t:
            del t["/columns/TDC"]
        repo.checkout(first)
        assert repo.status().clean
    with h5py.File(p, "r") as f:
        for name in ("detector/table", "columns/TDC"):
            dcpl = f[name].id.get_create_plist()
            assert dcpl.fill_value_defined() == h5py.h5d.FILL_VALUE_UNDEFINED, name
        assert f["detector/table"][()].tobytes() == before.tobytes()
    r = cli(["verify"], tmp_path)
    assert r.exit_code == 0, r.output


# -- datasets of object references (MATLAB v7.3 cell arrays) ------------------------------------

def write_cell_file(p: Path) -> None:
    """A MATLAB v7.3 file as MATLAB writes it: a 512-byte userblock, the cell array a dataset
    of object references to datasets under /#refs#, MATLAB_class attributes."""
    with h5py.File(p, "w", userblock_size=512) as f:
        refs = f.create_group("#refs#")
        targets = []
        for i, data in enumerate([np.arange(3.0), np.array([[1.0, 2.0]]), np.array(b"hi")]):
            ds = refs.create_dataset(chr(ord("a") + i), data=data)
            ds.attrs["MATLAB_class"] = np.bytes_("double" if i < 2 else "char")
            targets.append(ds.ref)
        cell = f.create_dataset("cells", data=np.array([targets], dtype=h5py.ref_dtype))
        cell.attrs["MATLAB_class"] = np.bytes_("cell")
        rec = np.dtype([("id", "i4"), ("where", h5py.ref_dtype)])
        row = np.zeros(2, dtype=rec)
        row["id"] = [1, 2]
        row["where"] = [targets[0], targets[2]]
        f.create_dataset("table", data=row, maxshape=(None,), chunks=(4,))


def cell_targets(p: Path) -> dict[str, list]:
    with h5py.File(p, "r") as f:
        cells = [(f[r].name, f[r][()].tolist()) for r in f["cells"][()].flat]
        table = [(int(i), f[r].name) for i, r in f["table"][()]]
        return {"cells": cells, "table": table}


def test_datasets_of_references_round_trip(tmp_path: Path) -> None:
    p = tmp_path / "cells.mat"
    write_cell_file(p)
    original = cell_targets(p)
    with Repository.init(p) as repo:
        first = repo.head.id
        assert repo.status().clean
        # a target made anew: the references to it must be made anew at checkout
        with repo.transaction("new b") as t:
            t.replace("/#refs#/b", np.array([[5.0, 6.0, 7.0]]))
        with repo.transaction("another cell") as t:
            t.create_dataset("/#refs#/d", data=np.arange(2))
        f = repo.file  # the cell array edited with plain h5py, through the repository's handle
        f["cells"][0, 0] = f["#refs#/d"].ref
        repo.commit("cell 0 -> d")
        edited = cell_targets(p)
        assert edited["cells"][0][0] == "/#refs#/d"
        assert repo.status().clean
        repo.checkout(first)
        assert repo.status().clean
        assert cell_targets(p) == original
        repo.checkout("main")
        assert cell_targets(p) == edited
        # read without a checkout: references come back as their targets' paths
        view = repo.at(first)
        assert view["cells"][()].tolist() == [["/#refs#/a", "/#refs#/b", "/#refs#/c"]]
        assert [str(x) for x in view["table"][()]["where"]] == ["/#refs#/a", "/#refs#/c"]
        repo.export(first, tmp_path / "out.h5")
    assert cell_targets(tmp_path / "out.h5") == original
    with h5py.File(p, "r") as f:
        assert f.userblock_size == 512
    r = cli(["verify"], tmp_path)
    assert r.exit_code == 0, r.output


def test_deleting_a_referenced_target_records_the_references_it_nulls(tmp_path: Path) -> None:
    """HDF5 leaves a reference to a deleted object dangling; the commit that deletes it names
    every object whose references it nulled, and a checkout makes them point again."""
    p = tmp_path / "cells.mat"
    write_cell_file(p)
    with Repository.init(p) as repo:
        first = repo.head.id
        with repo.transaction("drop c") as t:
            del t["/#refs#/c"]
        touched = {c["path"] for c in repo.head.changes}
        assert {"/#refs#/c", "/table", "/cells"} <= touched, touched
        assert repo.status().clean
        assert [str(x) for x in repo.at("HEAD")["table"][()]["where"]] == ["/#refs#/a", "None"]
        repo.checkout(first)
        assert repo.status().clean
        assert cell_targets(p)["table"] == [(1, "/#refs#/a"), (2, "/#refs#/c")]
    with h5py.File(p, "r+") as f:  # the same, with plain h5py: status names the holders
        del f["#refs#/c"]
    with Repository.open(p) as repo:
        changed = {c["path"] for c in repo.status().changes}
        assert {"/#refs#/c", "/table", "/cells"} <= changed, changed


def test_the_matlab_files_pytables_ships_round_trip(tmp_path: Path) -> None:
    for name in ("pytables_test_ref_array1.mat", "pytables_test_ref_array2.mat"):
        p = corpus_file(name, tmp_path)
        with h5py.File(p, "r") as f:
            names = {}

            def refs_of(n: str, obj: object, f: h5py.File = f, names: dict = names) -> None:
                if isinstance(obj, h5py.Dataset) and h5py.check_ref_dtype(obj.dtype):
                    names[n] = [f[r].name if r else None for r in obj[()].flat]

            f.visititems(refs_of)
        assert names, name
        with Repository.init(p) as repo:
            assert repo.status().clean
            first = repo.head.id
            with repo.transaction("touch every target") as t:
                for targets in names.values():
                    for q in {x for x in targets if x}:
                        t[q].attrs["touched"] = 1
            repo.checkout(first)
            assert repo.status().clean
        with h5py.File(p, "r") as f:
            for n, targets in names.items():
                assert [f[r].name if r else None for r in f[n][()].flat] == targets


# -- a filter this HDF5 cannot apply: chunks versioned as stored --------------------------------

LZO = "pytables_Tables_lzo1_shuffle.h5"


def stored_chunks(p: Path) -> dict[str, object]:
    """Per dataset: its pipeline (id, flags, values), shape, chunks and every stored chunk."""
    out: dict[str, object] = {}
    with h5py.File(p, "r") as f:
        def visit(name: str, obj: object) -> None:
            if not isinstance(obj, h5py.Dataset) or name.startswith(".h5vc"):
                return
            dcpl = obj.id.get_create_plist()
            pipe = [dcpl.get_filter(i)[:3] for i in range(dcpl.get_nfilters())]
            chunks = [obj.id.read_direct_chunk(obj.id.get_chunk_info(i).chunk_offset)
                      for i in range(obj.id.get_num_chunks())]
            out[name] = (pipe, obj.shape, obj.maxshape, obj.chunks, chunks)
        f.visititems(visit)
    return out


def test_lzo_tables_are_versioned_as_stored_chunks(tmp_path: Path) -> None:
    """PyTables' LZO tables without an LZO plugin: every chunk comes back byte for byte."""
    p = corpus_file(LZO, tmp_path)
    assert h5py.h5z.filter_avail(305) == 0  # the point of the test: no LZO here
    original = stored_chunks(p)
    assert any(305 in [x[0] for x in v[0]] for v in original.values())  # type: ignore[index]
    with Repository.init(p) as repo:
        first = repo.head.id
        assert repo.status().clean
        assert repo.verify().ok
        with repo.transaction("drop two tables") as t:
            del t["/tuple0"]
            del t["/group0/tuple1"]
        assert "/tuple0" not in repo.file
        repo.checkout(first)
        assert repo.status().clean
        assert stored_chunks(p) == original
        assert repo.verify().ok
        # rows cannot be decoded here: a view says so in one line naming the filter
        with pytest.raises(Exception, match=r"filter 305 \(LZO\).*HDF5_PLUGIN_PATH"):
            repo.at(first)["tuple0"][0:3]
        # an export copies the stored chunks, no filter needed
        repo.export(first, tmp_path / "out.h5")
        # a transaction cannot write rows into it
        with pytest.raises(Exception, match=r"/tuple0 is versioned as its stored chunks"):
            with repo.transaction("append") as t:
                t["/tuple0"].append(np.zeros(1, dtype=t["/tuple0"].dtype))
        assert repo.status().clean
    exported = stored_chunks(tmp_path / "out.h5")
    assert {k: v for k, v in exported.items()} == original
    r = cli(["verify"], tmp_path)
    assert r.exit_code == 0, r.output


def test_stored_chunks_travel_through_a_remote(tmp_path: Path) -> None:
    from h5vc.remote.sync import clone, push

    p = corpus_file(LZO, tmp_path)
    original = stored_chunks(p)
    with Repository.init(p, pointer=False) as repo:
        first = repo.head.id
        with repo.transaction("drop") as t:
            del t["/tuple0"]
        repo.set_remote("origin", str(tmp_path / "remote"))
        push(repo, "origin")
    clone(str(tmp_path / "remote"), tmp_path / "b.h5")
    with Repository.open(tmp_path / "b.h5") as b:
        assert b.status().clean
        b.checkout(first)
        assert b.status().clean
        assert b.verify().ok
    assert stored_chunks(tmp_path / "b.h5") == original


def test_appending_into_a_stored_block_is_a_named_loss(tmp_path: Path) -> None:
    """A program with the filter (PyTables has LZO built in) appends in place: the last
    block's committed chunk is rewritten before h5vc could preserve it, and h5vc says so
    before it commits (done here as such a program does it: the dataset grown, its last chunk
    written anew)."""
    p = corpus_file(LZO, tmp_path)
    with Repository.init(p) as repo:
        first = repo.head.id
    with h5py.File(p, "r+") as f:
        t = f["tuple0"]
        other = f["group0/tuple1"].id.read_direct_chunk((0,))
        t.resize((105,))
        t.id.write_direct_chunk((0,), other[1], other[0])
    r = cli(["status"], tmp_path)
    assert r.exit_code == 0 and "/tuple0" in r.output, r.output
    r = cli(["commit", "-m", "appended"], tmp_path)
    assert r.exit_code == 1 and "/tuple0" in r.output and "--accept-loss" in r.output, r.output
    r = cli(["commit", "-m", "appended", "--accept-loss"], tmp_path)
    assert r.exit_code == 0, r.output
    with Repository.open(p) as repo:
        assert repo.status().clean
        assert repo.file["tuple0"].shape == (105,)
        with pytest.raises(Exception, match="/tuple0"):
            repo.checkout(first)  # its first block was never preserved: named, not written
        assert repo.status().clean


def test_stored_blocks_decode_where_the_filter_is_installed(tmp_path: Path) -> None:
    """A block's blob holds every chunk across the other axes (one never written too) and
    decodes to the rows through a dataset with the same pipeline, when the filter is there."""
    from h5vc.engine.chunks import blob_hash, stored_blob, write_blob
    from h5vc.engine.objects import blob_rows, create_dataset
    from h5vc.engine.scan import dataset_meta

    p = tmp_path / "g.h5"
    data = np.arange(7 * 10, dtype="i4").reshape(7, 10)
    with h5py.File(p, "w") as f:
        ds = f.create_dataset("d", shape=(7, 10), dtype="i4", chunks=(3, 4), maxshape=(None, 10),
                              compression="gzip", shuffle=True, fillvalue=-1)
        ds[0:6] = data[0:6]
        ds[6, 0:4] = data[6, 0:4]  # the last block: one chunk of three written
        meta, n = dataset_meta(ds)
        meta = dict(meta, stored=True)
        blobs = [stored_blob(ds, s, min(s + 3, n)) for s in range(0, n, 3)]
        assert len({blob_hash(b) for b in blobs}) == 3
        for i, s in enumerate(range(0, n, 3)):
            got = blob_rows(meta, s, min(s + 3, n), blobs[i], "/d")
            assert np.array_equal(got, ds[s:s + 3])
        copy = create_dataset(f, "copy", meta, n)
        for i, s in enumerate(range(0, n, 3)):
            write_blob(copy, s, blobs[i])
        assert np.array_equal(copy[()], ds[()])
        assert copy.id.get_num_chunks() == ds.id.get_num_chunks() == 7
        for i in range(ds.id.get_num_chunks()):
            off = ds.id.get_chunk_info(i).chunk_offset
            assert copy.id.read_direct_chunk(off) == ds.id.read_direct_chunk(off)


# -- HDF5 types numpy cannot hold: versioned as bytes of their own type -------------------------

@pytest.mark.parametrize("name, path", [
    ("pytables_times-nested-be.h5", "/tbl"),  # H5T_TIME in a nested compound, chunked
    ("pytables_float.h5", "/quadprecision"),  # an IEEE 128-bit float, contiguous
])
def test_types_numpy_cannot_hold_round_trip_as_bytes(tmp_path: Path, name: str, path: str) -> None:
    from corpus import compare

    p = corpus_file(name, tmp_path)
    src = CORPUS / name
    with h5py.File(src, "r") as f:
        ds = f[path]
        tid = ds.id.get_type()
        raw = np.empty(ds.shape, dtype=f"V{tid.get_size()}")
        ds.id.read(h5py.h5s.ALL, h5py.h5s.ALL, raw, mtype=tid)
        with pytest.raises((TypeError, ValueError)):
            ds.dtype  # noqa: B018  (the point: numpy cannot hold it)
        names = [k for k in f if k != ".h5vc"]
    with Repository.init(p) as repo:
        first = repo.head.id
        assert repo.status().clean and repo.status(verify=True).clean
        assert repo.verify().ok
        with repo.transaction("drop everything") as t:
            for k in names:
                del t["/" + k]
        assert not [k for k in repo.file if k != ".h5vc"]
        repo.checkout(first)
        assert repo.status().clean
        assert repo.verify().ok
        got = repo.at(first)[path][()]  # a view reads the values as their bytes
        assert got.dtype == raw.dtype and got.tobytes() == raw.tobytes()
        repo.export(first, tmp_path / "out.h5")
    assert compare(src, p) == []
    with h5py.File(p, "r") as f, h5py.File(tmp_path / "out.h5", "r") as g:
        for q in (f, g):
            assert q[path].id.get_type().equal(tid)  # the very HDF5 type, made anew
            back = np.empty(raw.shape, dtype=raw.dtype)
            q[path].id.read(h5py.h5s.ALL, h5py.h5s.ALL, back, mtype=q[path].id.get_type())
            assert back.tobytes() == raw.tobytes()


def test_an_attribute_numpy_cannot_hold_round_trips(tmp_path: Path) -> None:
    """PyTables' big-endian 128-bit unsigned integer attribute: changed, then checked out."""
    from corpus import compare

    name = "pytables_attr-u16.h5"
    p = corpus_file(name, tmp_path)
    where = "/wfm_group0/axes/axis0"
    with Repository.init(p) as repo:
        first = repo.head.id
        assert repo.status().clean
        with repo.transaction("a plain value") as t:
            t[where].attrs["ref_time"] = 5
        with h5py.File(p, "r") as f:
            assert f[where].attrs["ref_time"] == 5
        repo.checkout(first)
        assert repo.status().clean
        got = repo.at(first)[where].attrs["ref_time"]
        assert isinstance(got, np.void) and len(got.tobytes()) == 16
    assert compare(CORPUS / name, p) == []


def test_fill_values_of_extended_precision_floats_compare_stably(tmp_path: Path) -> None:
    """An 80-bit long double sits in 16 bytes; the 6 unused ones hold whatever memory held and
    must never make a dataset look re-created (its fill value is compared as encoded)."""
    p = corpus_file("pytables_float.h5", tmp_path)
    with Repository.init(p) as repo:
        for _ in range(3):
            assert repo.verify().ok
            assert repo.status(verify=True).clean


def test_creation_properties_h5py_would_not_choose_survive_being_made_anew(tmp_path: Path) -> None:
    """Fill time (PyTables writes ALLOC) and compact layout (MATLAB writes small arrays so)."""
    p = tmp_path / "props.h5"
    with h5py.File(p, "w") as f:
        f.create_dataset("alloc", data=np.arange(6.0), chunks=(3,), maxshape=(None,), fill_time="alloc")
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_layout(h5py.h5d.COMPACT)
        f.create_dataset("compact", data=np.arange(4, dtype="i2"), dcpl=dcpl)
        f.create_dataset("plain", data=np.arange(3))
    with Repository.init(p) as repo:
        first = repo.head.id
        with repo.transaction("drop") as t:
            for k in ("alloc", "compact", "plain"):
                del t["/" + k]
        repo.checkout(first)
        assert repo.status().clean
    with h5py.File(p, "r") as f:
        assert f["alloc"].id.get_create_plist().get_fill_time() == h5py.h5d.FILL_TIME_ALLOC
        assert f["compact"].id.get_create_plist().get_layout() == h5py.h5d.COMPACT
        assert f["plain"].id.get_create_plist().get_fill_time() == h5py.h5d.FILL_TIME_IFSET
        assert f["plain"].id.get_create_plist().fill_value_defined() == h5py.h5d.FILL_VALUE_DEFAULT
        assert f["compact"][()].tolist() == [0, 1, 2, 3]


def test_sub_array_datasets_are_preserved_and_made_anew(tmp_path: Path) -> None:
    """PyTables' multidimensional atoms: a dataset whose dtype is itself an array (numpy reads
    its rows with the atom's axes added)."""
    p = tmp_path / "atoms.h5"
    atom = np.dtype(("<i4", (3,)))
    data = np.arange(5 * 4 * 3, dtype="<i4").reshape(5, 4, 3)
    with h5py.File(p, "w") as f:
        f.create_dataset("arr", shape=(5, 4), dtype=atom, chunks=(2, 4), maxshape=(None, 4))
        f["arr"][...] = data
        f.create_dataset("flat", shape=(6,), dtype=atom)
        f["flat"][...] = np.arange(18, dtype="<i4").reshape(6, 3)
    with Repository.init(p) as repo:
        first = repo.head.id
        with repo.transaction("rewrite some rows") as t:
            t["/arr"][1:3] = np.zeros((2, 4, 3), dtype="<i4")  # preserved first
        with repo.transaction("drop") as t:
            del t["/arr"]
            del t["/flat"]
        repo.checkout(first)
        assert repo.status().clean and repo.verify().ok
        assert np.array_equal(repo.at("main~1")["arr"][()][1:3], np.zeros((2, 4, 3)))
    with h5py.File(p, "r") as f:
        assert f["arr"].dtype == atom and f["arr"].shape == (5, 4)
        assert np.array_equal(f["arr"][()], data)
        assert np.array_equal(f["flat"][()], np.arange(18).reshape(6, 3))
