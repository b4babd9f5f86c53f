"""What a checkout makes anew comes back as the file had it: attribute and link creation order,
HDF5 types h5py would not choose (string padding, bitfields), big-endian variable-length data;
and stores committed before these were recorded stay clean and gain them at their next change.

``tests/data/format2-order.h5`` was made by the h5vc before this (e7bfd1d): adopted from a file
whose root, dataset ``/zeta`` and group ``/alpha`` track creation order, with a null-terminated
string dataset ``/names`` that has a bitfield attribute ``flags``; a second commit changed
``/zeta@axis``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from h5vc import Repository
from h5vc.engine.hdf5lib import set_fill_bytes

H5VC = [sys.executable, "-m", "h5vc"]
BEFORE = Path(__file__).parent / "data" / "format2-order.h5"


def h5vc(*args: str) -> subprocess.CompletedProcess:
    r = subprocess.run([*H5VC, *args], capture_output=True, text=True)
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode == 0, r.stderr
    return r


@contextlib.contextmanager
def made_anew(p: Path, *paths: str) -> Iterator[Repository]:
    """The file at ``p`` adopted, ``paths`` deleted by a transaction, the first commit checked
    out again (so that they are made anew), status clean; the repository, open."""
    with Repository.init(p, pointer=False) as repo:
        first = repo.head.id
        with repo.transaction("drop") as t:
            for path in paths:
                del t[path]
        repo.checkout(first)
        assert repo.status().clean
        yield repo


def nullterm(size: int) -> h5py.h5t.TypeID:
    t = h5py.h5t.py_create(np.dtype(f"S{size}")).copy()
    t.set_strpad(h5py.h5t.STR_NULLTERM)
    return t


def test_attribute_order_is_versioned(tmp_path: Path) -> None:
    p = tmp_path / "nc.h5"
    with h5py.File(p, "w") as f:
        d = f.create_dataset("t", data=np.arange(4.0), track_order=True)
        for k in ("units", "long_name", "axis"):
            d.attrs[k] = k
    with Repository.init(p, pointer=False) as repo:
        first = repo.head.id
        repo.file["t"].attrs["units"] = "s"  # h5py makes it anew: it is listed last now
        assert list(repo.file["t"].attrs) == ["long_name", "axis", "units"]
        repo.commit("units")
        repo.checkout(first)
        assert list(repo.file["t"].attrs) == ["units", "long_name", "axis"]
        assert repo.file["t"].attrs["units"] == "units"
        assert repo.status().clean
        # only the order changes: status says so, a commit records it
        del repo.file["t"].attrs["units"]
        repo.file["t"].attrs["units"] = "units"
    r = h5vc("status", "-s", str(p))
    assert "attr order       /t: long_name, axis, units" in r.stdout
    with Repository.open(p) as repo:
        repo.commit("order")
        assert repo.status().clean
        (d,) = repo.diff("main~1", "main").paths
        assert d.path == "/t" and d.meta == {"attribute order": (
            ["units", "long_name", "axis"], ["long_name", "axis", "units"])}
        repo.checkout(first)
        assert list(repo.file["t"].attrs) == ["units", "long_name", "axis"]
        repo.checkout("main")
        assert list(repo.file["t"].attrs) == ["long_name", "axis", "units"]
        assert repo.status().clean


def test_objects_made_anew_keep_link_and_attribute_creation_order(tmp_path: Path) -> None:
    p = tmp_path / "nc.h5"
    with h5py.File(p, "w", track_order=True) as f:
        for name in ("time", "lat", "lon", "air"):
            d = f.create_dataset(name, data=np.arange(3.0), track_order=True)
            d.attrs["units"] = "u"
            d.attrs["_FillValue"] = -1.0
        g = f.create_group("grp", track_order=True)
        g.attrs["z"] = 1
        g.attrs["a"] = 2
    with made_anew(p, "/lat", "/grp") as repo:
        f = repo.file
        assert [k for k in f if k != ".h5vc"] == ["time", "lat", "lon", "air", "grp"]
        assert list(f["lat"].attrs) == ["units", "_FillValue"]
        assert list(f["grp"].attrs) == ["z", "a"]
        for path in ("lat", "grp"):
            plist = f[path].id.get_create_plist()
            assert plist.get_attr_creation_order() == (h5py.h5p.CRT_ORDER_TRACKED
                                                       | h5py.h5p.CRT_ORDER_INDEXED)
        assert f["grp"].id.get_create_plist().get_link_creation_order()


def test_types_h5py_would_not_make_come_back_made_anew(tmp_path: Path) -> None:
    p = tmp_path / "pt.h5"
    rows = np.array([b"abcd", b"ef", b"ghij"], "S4")  # full-length values: no terminator
    compound = np.dtype([("name", "S3"), ("x", "<f8")])
    ctype = h5py.h5t.create(h5py.h5t.COMPOUND, compound.itemsize)
    ctype.insert(b"name", 0, nullterm(3))
    ctype.insert(b"x", 3, h5py.h5t.IEEE_F64LE)
    table = np.array([(b"abc", 1.5), (b"d", 2.5)], compound)
    with h5py.File(p, "w") as f:
        s = f.create_dataset("names", (3,), dtype=h5py.Datatype(nullterm(4)), maxshape=(None,),
                             chunks=(2,))
        s.id.write(h5py.h5s.ALL, h5py.h5s.ALL, rows, mtype=nullterm(4))
        aid = h5py.h5a.create(s.id, b"flags", h5py.h5t.STD_B8LE, h5py.h5s.create(h5py.h5s.SCALAR))
        aid.write(np.array(5, np.uint8), mtype=h5py.h5t.STD_B8LE)
        c = f.create_dataset("table", (2,), dtype=h5py.Datatype(ctype))
        c.id.write(h5py.h5s.ALL, h5py.h5s.ALL, table, mtype=ctype)
        f.create_dataset("be1", data=np.arange(3, dtype="i1"),
                         dtype=h5py.Datatype(h5py.h5t.STD_I8BE))
    with h5py.File(p, "r") as f:
        types = {k: f[k].id.get_type() for k in ("names", "table", "be1")}
        flags = f["names"].attrs.get_id("flags").get_type()
    with made_anew(p, "/names", "/table", "/be1") as repo:
        f = repo.file
        for k, tid in types.items():
            assert f[k].id.get_type() == tid, k  # H5Tequal
        assert f["names"].attrs.get_id("flags").get_type() == flags
        assert f["names"][()].tolist() == rows.tolist()
        assert f["table"][()].tolist() == table.tolist()
        assert f["be1"][()].tolist() == [0, 1, 2]
        assert int(f["names"].attrs["flags"]) == 5
    r = subprocess.run(["h5dump", "-d", "/names", str(p)], capture_output=True, text=True)
    assert r.returncode == 0 and '"abcd"' in r.stdout and "H5T_STR_NULLTERM" in r.stdout


def test_big_endian_variable_length_data_made_anew(tmp_path: Path) -> None:
    p = tmp_path / "vl.h5"
    with h5py.File(p, "w") as f:
        v = f.create_dataset("v", (2,), dtype=h5py.vlen_dtype(np.dtype(">u4")))
        v[0] = np.array([65, 66, 67], ">u4")
        v[1] = np.array([1 << 20], ">u4")
    with h5py.File(p, "r") as f:
        before = [bytes(x.tobytes()) for x in f["v"][()]]
    with made_anew(p, "/v") as repo:
        assert [bytes(x.tobytes()) for x in repo.file["v"][()]] == before
    r = subprocess.run(["h5dump", "-d", "/v", str(p)], capture_output=True, text=True)
    assert r.returncode == 0 and "(65, 66, 67)" in r.stdout, r.stdout


def test_a_transaction_below_an_object_linked_twice(tmp_path: Path) -> None:
    p = tmp_path / "axes.h5"
    with h5py.File(p, "w") as f:
        a = f.create_group("w/axes/x")
        a.create_dataset("data", data=np.arange(5))
        f["w/traces/t0/x-axis"] = a  # a second hard link, as PyTables' waveform files have
    with Repository.init(p, pointer=False) as repo:
        with repo.transaction("drop the traces") as t:
            del t["/w/traces"]
        assert repo.status().clean
        assert "w/axes/x/data" in repo.file
        assert "w/traces" not in repo.file


def test_a_store_from_before_is_clean_and_records_order_at_its_next_change(tmp_path: Path) -> None:
    p = tmp_path / "old.h5"
    shutil.copyfile(BEFORE, p)
    with Repository.open(p) as repo:
        assert repo.status().clean
        assert len(list(repo.log())) == 2
        first = list(repo.log())[-1].id
        repo.checkout(first)
        assert repo.status().clean
        assert repo.file["zeta"].attrs["axis"] == "AXIS"
        repo.checkout("main")
        assert repo.status().clean
        # the next change of /zeta's attributes records their order
        repo.file["zeta"].attrs["units"] = "m"
        st = repo.status()
        assert {(c["op"], c["path"]) for c in st.changes} >= {("attr", "/zeta"),
                                                             ("attr_order", "/zeta")}
        with h5py.File(p, "r") as f:  # (read beside the open store: the last flush's bytes)
            assert int(f[".h5vc"].attrs["format_version"]) == 3
        repo.commit("units")
        assert repo.status().clean
        with h5py.File(p, "r") as f:  # raised by the first commit that records an order
            assert int(f[".h5vc"].attrs["format_version"]) == 4
        second = repo.head.id
        repo.checkout(first)
        repo.checkout(second)
        assert list(repo.file["zeta"].attrs) == ["long_name", "axis", "units"]
        assert repo.status().clean
    h5vc("verify", "-s", str(p))


def test_a_fill_value_that_refers_to_an_object_made_anew(tmp_path: Path) -> None:
    p = tmp_path / "cells.mat"
    with h5py.File(p, "w") as f:
        empty = f.create_dataset("#refs#/a", data=np.zeros(2, np.uint64))
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)  # as MATLAB makes a cell array:
        addr = h5py.h5o.get_info(empty.id).addr  # the fill value refers to /#refs#/a
        set_fill_bytes(dcpl, h5py.h5t.STD_REF_OBJ, addr.to_bytes(8, sys.byteorder))
        cells = h5py.Dataset(h5py.h5d.create(f.id, b"cells", h5py.h5t.STD_REF_OBJ,
                                             h5py.h5s.create_simple((3,)), dcpl=dcpl))
        cells[0] = f["#refs#/a"].ref
        f.create_dataset("#refs#/b", data=np.arange(4.0))
        cells[1] = f["#refs#/b"].ref
    with made_anew(p, "/cells", "/#refs#") as repo:
        f = repo.file
        cells = f["cells"]
        assert cells.id.get_create_plist().fill_value_defined() == h5py.h5d.FILL_VALUE_USER_DEFINED
        assert f[cells.fillvalue].name == "/#refs#/a"
        assert [f[r].name if r else None for r in cells[()]] == ["/#refs#/a", "/#refs#/b", "/#refs#/a"]


def test_a_second_hard_link_in_a_group_status_reads_again(tmp_path: Path) -> None:
    """A store large enough for status to read only what changed (footprints): a group whose
    children are listed again holds a second hard link, which is not a new object."""
    p = tmp_path / "big.h5"
    with h5py.File(p, "w") as f:
        for i in range(300):
            f.create_dataset(f"many/d{i:03}", data=np.arange(3))
        axis = f.create_group("w/axes/x")
        axis.create_dataset("data", data=np.arange(5))
        f["w/traces/x-axis"] = axis
    with Repository.init(p, pointer=False) as repo:
        assert repo.status().clean
        repo.file["many/d000"].attrs["first"] = 1
        repo.commit("first")  # (the session's close takes the footprints of HEAD)
    with Repository.open(p) as repo:
        assert repo.status().clean
        repo.file["w/traces"].attrs["note"] = "changed"
        repo.file.flush()
        st = repo.status()
        assert [(c["op"], c["path"]) for c in st.changes] == [("attr", "/w/traces")]
        repo.commit("note")
        assert repo.status().clean


OPS = st.lists(st.one_of(
    st.tuples(st.just("set"), st.sampled_from(["a", "b", "c"]), st.sampled_from(["x", "y", "z"]),
              st.integers(0, 9)),
    st.tuples(st.just("del_attr"), st.sampled_from(["a", "b", "c"]), st.sampled_from(["x", "y", "z"])),
    st.tuples(st.just("drop"), st.sampled_from(["a", "b", "c"])),
    st.tuples(st.just("make"), st.sampled_from(["a", "b", "c"])),
    st.tuples(st.just("commit"),),
), min_size=1, max_size=14)


@settings(max_examples=int(os.environ.get("H5VC_ORDER_EXAMPLES", "20")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ops=OPS)
def test_every_commit_checks_out_with_its_attribute_and_link_order(tmp_path: Path,
                                                                   ops: list[tuple]) -> None:
    """Random attribute changes (h5py moves a changed attribute last), deletions and new
    objects in a file whose groups and datasets track creation order: every commit, checked out
    after the others, lists its attributes and links as they were when it was made."""
    d = Path(tempfile.mkdtemp(dir=tmp_path))
    p = d / "s.h5"
    with h5py.File(p, "w", track_order=True) as f:
        for name in ("a", "b", "c"):
            ds = f.create_dataset(name, data=np.arange(3), track_order=True)
            ds.attrs["x"], ds.attrs["y"] = 1, 2

    def seen(f: h5py.File) -> dict[str, list[str]]:
        out = {"/": [k for k in f if k != ".h5vc"]}
        out.update({k: list(f[k].attrs) for k in f if k != ".h5vc"})
        return out

    with Repository.init(p, pointer=False) as repo:
        made = [(repo.head.id, seen(repo.file))]
        for op in ops:
            f = repo.file
            if op[0] == "set" and op[1] in f:
                f[op[1]].attrs[op[2]] = op[3]
            elif op[0] == "del_attr" and op[1] in f and op[2] in f[op[1]].attrs:
                del f[op[1]].attrs[op[2]]
            elif op[0] == "drop" and op[1] in f:
                if not repo.status().clean:  # a transaction starts from a clean store
                    repo.commit("before drop")
                    made.append((repo.head.id, seen(repo.file)))
                with repo.transaction("drop") as t:
                    del t["/" + op[1]]
                made.append((repo.head.id, seen(repo.file)))
            elif op[0] == "make" and op[1] not in f:
                ds = f.create_dataset(op[1], data=np.arange(2), track_order=True)
                ds.attrs["z"] = 0
            elif op[0] == "commit" and not repo.status().clean:
                repo.commit("step")
                made.append((repo.head.id, seen(repo.file)))
        if not repo.status().clean:
            repo.commit("last")
            made.append((repo.head.id, seen(repo.file)))
        for commit, want in reversed(made):
            repo.checkout(commit)
            assert seen(repo.file) == want
            assert repo.status().clean
        for commit, want in made:
            repo.checkout(commit)
            assert seen(repo.file) == want


def test_export_and_clone_keep_creation_order(tmp_path: Path) -> None:
    p = tmp_path / "nc.h5"
    with h5py.File(p, "w", track_order=True) as f:
        f.attrs["title"], f.attrs["history"] = "t", "h"
        for name in ("time", "lat", "air"):
            d = f.create_dataset(name, data=np.arange(3.0), track_order=True)
            d.attrs["units"], d.attrs["_FillValue"] = "u", -1.0
    Repository.init(p, pointer=False).close()
    h5vc("export", "main", str(tmp_path / "out.h5"), "-s", str(p))
    h5vc("remote", "add", "origin", str(tmp_path / "remote"), "-s", str(p))
    h5vc("push", "-s", str(p))
    h5vc("clone", str(tmp_path / "remote"), str(tmp_path / "clone.h5"))
    for copy in ("out.h5", "clone.h5"):
        with h5py.File(tmp_path / copy, "r") as f:
            assert [k for k in f if k != ".h5vc"] == ["time", "lat", "air"], copy
            assert list(f.attrs)[:2] == ["title", "history"], copy
            assert list(f["lat"].attrs) == ["units", "_FillValue"], copy
            assert f["/"].id.get_create_plist().get_link_creation_order(), copy


def test_transactions_write_full_length_values_into_null_terminated_strings(tmp_path: Path) -> None:
    """PyTables writes 'abcd' whole into a 4-byte null-terminated string; HDF5's conversion
    from h5py's strings would keep 'abc'. A transaction writes and commits what it was given."""
    p = tmp_path / "pt.h5"
    with h5py.File(p, "w") as f:
        s = f.create_dataset("names", (2,), dtype=h5py.Datatype(nullterm(4)), maxshape=(None,),
                             chunks=(4,))
        s.id.write(h5py.h5s.ALL, h5py.h5s.ALL, np.array([b"ab", b"cd"], "S4"), mtype=nullterm(4))
        one = f.create_dataset("one", (), dtype=h5py.Datatype(nullterm(3)))
        one.id.write(h5py.h5s.ALL, h5py.h5s.ALL, np.array(b"xy", "S3"), mtype=nullterm(3))
    with Repository.init(p, pointer=False) as repo:
        first = repo.head.id
        with repo.transaction("append and rewrite") as t:
            t["/names"].append(np.array([b"wxyz", b"ef"], "S4"))
            t["/names"][0] = b"ABCD"
            t["/one"][()] = b"xyz"
        assert repo.status().clean
        assert repo.file["names"][()].tolist() == [b"ABCD", b"cd", b"wxyz", b"ef"]
        assert repo.file["one"][()] == b"xyz"
        repo.checkout(first)
        assert repo.file["names"][()].tolist() == [b"ab", b"cd"]
        repo.checkout("main")
        assert repo.file["names"][()].tolist() == [b"ABCD", b"cd", b"wxyz", b"ef"]
        assert repo.status().clean
    h5vc("verify", "-s", str(p))


def test_views_list_attributes_and_members_as_h5py_does(tmp_path: Path) -> None:
    p = tmp_path / "nc.h5"
    with h5py.File(p, "w", track_order=True) as f:
        for name in ("time", "lat", "air"):
            d = f.create_dataset(name, data=np.arange(3.0), track_order=True)
            d.attrs["units"], d.attrs["_FillValue"] = "u", -1.0
        f.create_group("plain").create_dataset("b", data=[1])
        f["plain"].create_dataset("a", data=[2])
    with Repository.init(p, pointer=False) as repo:
        view = repo.at("main")
        with h5py.File(p, "r") as f:
            for where in ("/", "/plain"):
                assert list(view[where].keys()) == [k for k in f[where] if k != ".h5vc"]
            assert list(view["lat"].attrs) == list(f["lat"].attrs) == ["units", "_FillValue"]
            names: list[str] = []
            f.visit(lambda n: None if n.startswith(".h5vc") else names.append(n))
        seen: list[str] = []
        view["/"].visit(seen.append)
        assert seen == names


def _leaf(draw: st.DrawFn) -> tuple[h5py.h5t.TypeID, np.dtype]:
    kind = draw(st.sampled_from(["nullterm", "spacepad", "nullpad", "bitfield", "i1be", "i4be",
                                 "f8be", "u2"]))
    if kind in ("nullterm", "spacepad", "nullpad"):
        n = draw(st.integers(1, 6))
        t = h5py.h5t.py_create(np.dtype(f"S{n}")).copy()
        t.set_strpad({"nullterm": h5py.h5t.STR_NULLTERM, "spacepad": h5py.h5t.STR_SPACEPAD,
                      "nullpad": h5py.h5t.STR_NULLPAD}[kind])
        return t, np.dtype(f"S{n}")
    return {"bitfield": (h5py.h5t.STD_B8LE, np.dtype("u1")),
            "i1be": (h5py.h5t.STD_I8BE, np.dtype("i1")),
            "i4be": (h5py.h5t.STD_I32BE, np.dtype(">i4")),
            "f8be": (h5py.h5t.IEEE_F64BE, np.dtype(">f8")),
            "u2": (h5py.h5t.STD_U16LE, np.dtype("<u2"))}[kind]


@st.composite
def file_types(draw: st.DrawFn) -> tuple[h5py.h5t.TypeID, np.dtype]:
    """An HDF5 type h5py might not make itself, and the numpy dtype h5py reads it as."""
    if draw(st.booleans()):
        return _leaf(draw)
    fields = [_leaf(draw) for _ in range(draw(st.integers(1, 4)))]
    gap = draw(st.integers(0, 3))  # padding between fields
    offsets, at = [], 0
    for _t, dt in fields:
        offsets.append(at)
        at += dt.itemsize + gap
    ctype = h5py.h5t.create(h5py.h5t.COMPOUND, max(at, 1))
    for i, ((t, _dt), off) in enumerate(zip(fields, offsets, strict=True)):
        ctype.insert(f"f{i}".encode(), off, t)
    return ctype, ctype.dtype


@settings(max_examples=int(os.environ.get("H5VC_TYPE_EXAMPLES", "25")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(kind=file_types(), data=st.data())
def test_any_fixed_type_is_made_anew_with_its_values(tmp_path: Path, kind: tuple,
                                                     data: st.DataObject) -> None:
    """Random fixed-size types (strings of each padding, full length included; bitfields;
    big-endian numbers; compounds of them with gaps), random bytes as values: made anew by a
    checkout, the dataset has the same HDF5 type and reads back the same values."""
    tid, dt = kind
    rows = data.draw(st.integers(1, 5))
    raw = np.frombuffer(data.draw(st.binary(min_size=rows * dt.itemsize,
                                            max_size=rows * dt.itemsize)), dtype=dt).copy()
    d = Path(tempfile.mkdtemp(dir=tmp_path))
    p = d / "t.h5"
    with h5py.File(p, "w") as f:
        ds = f.create_dataset("x", (rows,), dtype=h5py.Datatype(tid), chunks=(2,), maxshape=(None,))
        ds.id.write(h5py.h5s.ALL, h5py.h5s.ALL, raw, mtype=tid)
        before = values(ds[()])
    with made_anew(p, "/x") as repo:
        ds = repo.file["x"]
        assert ds.id.get_type() == tid
        assert values(ds[()]) == before


def values(arr: np.ndarray) -> list[bytes]:
    """The bytes of each field (of the whole value where there are none): padding between
    fields holds whatever memory held, in the file and as read."""
    return [arr[n].tobytes() for n in arr.dtype.names] if arr.dtype.names else [arr.tobytes()]
