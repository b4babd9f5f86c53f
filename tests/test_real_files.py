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
    ("pytables_Tables_lzo1.h5", ["/group0/group1/tuple2", "filter 305 (LZO)", "HDF5_PLUGIN_PATH"]),
    ("pytables_float.h5", ["dataset /quadprecision", "H5T_FLOAT of 16 bytes"]),
    ("pytables_attr-u16.h5", ["attribute 'ref_time' of /wfm_group0/axes/axis0",
                              "H5T_INTEGER of 16 bytes, big-endian"]),
    ("pytables_times-nested-be.h5", ["dataset /earr32", "H5T_TIME of 4 bytes"]),
    ("pytables_time-table-vlarray-1_x.h5", ["dataset /table", "field 't32col'",
                                            "H5T_ARRAY of H5T_TIME"]),
])
def test_refused_kinds_name_the_object_and_leave_the_bytes(tmp_path: Path, name: str,
                                                           phrases: list[str]) -> None:
    p = corpus_file(name, tmp_path)
    assert_refused(p, *phrases)


def test_a_refused_pytables_file_keeps_its_length(tmp_path: Path) -> None:
    """HDF5 rewrites the end of a PyTables file it opens for writing (6 bytes shorter): a
    refused init must never have opened it so."""
    p = corpus_file("pytables_float.h5", tmp_path)
    size = p.stat().st_size
    mtime = p.stat().st_mtime_ns
    assert_refused(p, "quadprecision")
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
        with h5py.File(p, "r+") as f:  # the cell array edited with plain h5py
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
