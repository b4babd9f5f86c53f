"""Round trips of every kind of dataset and attribute h5py can store.

Each case writes a file with plain h5py, adopts it with ``Repository.init``, records more
commits (through a transaction and through plain h5py + ``commit``), checks out older
commits and comes back, and compares everything observable with a fresh ``h5py.File``:
values (bit for bit), dtype (including h5py's string / vlen / enum information and the
HDF5 type itself), shape, chunks, maxshape, filters, fill value and attributes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from h5vc import DataLossError, IntegrityError, Repository

META = ".h5vc"


# -- exact snapshots of a file ---------------------------------------------------------------

def canon(x: Any) -> Any:
    """A comparable, type-sensitive and bit-exact description of a value read by h5py."""
    if isinstance(x, h5py.Empty):
        return ("empty", np.dtype(x.dtype).str)
    if isinstance(x, np.ndarray):
        if x.dtype.hasobject:
            if x.dtype.names is not None:
                return ("ndrec", x.shape, [canon(y) for y in x.reshape(-1)])
            return ("ndo", x.shape, [canon(y) for y in x.reshape(-1)])
        return ("nd", x.dtype.str, x.dtype.descr, x.shape, np.ascontiguousarray(x).tobytes())
    if isinstance(x, np.void):
        if x.dtype.hasobject:
            return ("rec", tuple(x.dtype.names), tuple(canon(x[n]) for n in x.dtype.names))
        return ("void", x.dtype.descr, x.tobytes())
    if isinstance(x, np.generic):
        return ("gen", type(x).__name__, x.dtype.str, x.tobytes())
    if isinstance(x, (bytes, str)):
        return (type(x).__name__, x)
    if isinstance(x, (bool, int, float, complex)):
        return (type(x).__name__, repr(x))
    return ("other", type(x).__name__, repr(x))


def dtype_sig(dt: np.dtype) -> Any:
    """Everything h5py tells about a dtype, recursively for compound fields."""
    s = h5py.check_string_dtype(dt)
    v = h5py.check_vlen_dtype(dt)
    e = h5py.check_enum_dtype(dt)
    sig: dict[str, Any] = {
        "str": dt.str,
        "descr": dt.descr,
        "string": None if s is None else (s.encoding, s.length),
        "vlen": None if v is None else v.__name__ if isinstance(v, type) else dtype_sig(v),
        "enum": None if e is None else sorted(e.items()),
        "opaque": bool(h5py.check_opaque_dtype(dt)),
    }
    if dt.names is not None:
        sig["fields"] = [(n, dtype_sig(dt.fields[n][0]), dt.fields[n][1]) for n in dt.names]
        sig["itemsize"] = dt.itemsize
    if dt.subdtype is not None:
        sig["sub"] = (dtype_sig(dt.subdtype[0]), dt.subdtype[1])
    return sig


def attrs_snapshot(obj: h5py.HLObject) -> dict[str, Any]:
    out = {}
    for name in obj.attrs:
        aid = obj.attrs.get_id(name)
        out[name] = {
            "h5type": aid.get_type().encode(),
            "dtype": dtype_sig(aid.dtype),
            "shape": aid.shape,
            "value": canon(obj.attrs[name]),
        }
    return out


def _try(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except Exception as e:  # the same failure on both sides counts as equal
        return ("error", type(e).__name__)


def dataset_snapshot(ds: h5py.Dataset) -> dict[str, Any]:
    dcpl = ds.id.get_create_plist()
    return {
        "h5type": ds.id.get_type().encode(),
        "dtype": dtype_sig(ds.dtype),
        "shape": ds.shape,
        "chunks": ds.chunks,
        "maxshape": ds.maxshape,
        "layout": dcpl.get_layout(),
        "compression": ds.compression,
        "compression_opts": ds.compression_opts,
        "shuffle": ds.shuffle,
        "fletcher32": ds.fletcher32,
        "scaleoffset": ds.scaleoffset,
        "filters": [dcpl.get_filter(i)[:3] for i in range(dcpl.get_nfilters())],
        "fillvalue": _try(lambda: canon(ds.fillvalue)),
        "value": canon(ds[()]),
        "attrs": attrs_snapshot(ds),
    }


def file_snapshot(path: Path) -> dict[str, Any]:
    """Every tracked object of the file at ``path``, read with a fresh plain h5py.File."""
    out: dict[str, Any] = {}
    with h5py.File(path, "r") as f:
        out["/"] = {"kind": "g", "attrs": attrs_snapshot(f)}

        def visit(name: str, obj: Any) -> None:
            if name == META or name.startswith(META + "/"):
                return
            if isinstance(obj, h5py.Dataset):
                out["/" + name] = {"kind": "d", **dataset_snapshot(obj)}
            else:
                out["/" + name] = {"kind": "g", "attrs": attrs_snapshot(obj)}

        f.visititems(visit)
    return out


def assert_snapshot(path: Path, want: dict[str, Any]) -> None:
    got = file_snapshot(path)
    assert sorted(got) == sorted(want)
    for p in want:
        for key in want[p]:
            assert got[p][key] == want[p][key], f"{p}: {key} differs"
    assert got == want


def checkout(path: Path, rev: str) -> None:
    with Repository.open(path) as repo:
        repo.checkout(rev)
        assert repo.status().changes == []
        assert repo.status(verify=True).changes == []


# -- dataset cases -----------------------------------------------------------------------------

ENUM = h5py.enum_dtype({"RED": 0, "GREEN": 1, "BLUE": 42, "NEG": -7}, basetype="i1")
COMPOUND = np.dtype([("id", "<i4"), ("xyz", "<f8", (3,)), ("tag", "S5"), ("m", "<u2", (2, 2))])
COMPOUND_VLEN = np.dtype([("id", "<i8"), ("name", h5py.string_dtype())])
VLEN_STR = h5py.string_dtype()
VLEN_ASCII = h5py.string_dtype("ascii")
FIXED_UTF8 = h5py.string_dtype("utf-8", 10)
VLEN_INT = h5py.vlen_dtype(np.dtype("i4"))


def _ints(dt: str, n: int, seed: int) -> np.ndarray:
    info = np.iinfo(dt)
    rng = np.random.default_rng(seed)
    native = np.dtype(dt).newbyteorder("=")
    a = rng.integers(info.min, info.max, size=n, dtype=native, endpoint=True)
    a[:2] = [info.min, info.max][: min(2, n)]
    return a.astype(dt)


def _floats(dt: str, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(n).astype(dt)
    special = np.array([np.nan, np.inf, -np.inf, -0.0, np.finfo(dt).tiny / 2, np.finfo(dt).max],
                       dtype=dt)
    k = min(n, len(special))
    a[:k] = special[:k]
    return a


def _complex(dt: str, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(dt)
    a[0] = complex(np.nan, -0.0)
    return a


def _vlen_str(n: int, seed: int) -> np.ndarray:
    words = ["", "a", "héllo ☃", "x" * 70, "tab\tnew\nline", "日本語", "end"]
    return np.array([words[(i + seed) % len(words)] + str(seed) * (i % 3) for i in range(n)],
                    dtype=object)


def _vlen_ascii(n: int, seed: int) -> np.ndarray:
    words = [b"", b"a", b"hello", b"x" * 70, b"tab\t", b"end"]
    return np.array([words[(i + seed) % len(words)] + str(seed).encode() * (i % 3)
                     for i in range(n)], dtype=object)


def _fixed_bytes(n: int, seed: int) -> np.ndarray:
    words = [b"", b"a", b"0123456789", b"\x01\xff\x7f", b"mid\x00dle", b"end"]
    return np.array([words[(i + seed) % len(words)] for i in range(n)], dtype="S10")


def _fixed_utf8(n: int, seed: int) -> np.ndarray:
    words = ["", "é", "ab☃", "日本", "0123456789", "z"]
    return np.array([words[(i + seed) % len(words)].encode() for i in range(n)], dtype=FIXED_UTF8)


def _vlen_int(n: int, seed: int) -> np.ndarray:
    out = np.empty(n, dtype=object)
    for i in range(n):
        out[i] = np.arange((i + seed) % 5, dtype="i4") * (seed + 1) - i
    return out


def _compound(n: int, seed: int) -> np.ndarray:
    a = np.zeros(n, dtype=COMPOUND)
    a["id"] = np.arange(n) + 100 * seed
    a["xyz"] = np.arange(3 * n, dtype="f8").reshape(n, 3) / (seed + 1)
    a["tag"] = [b"t%d" % (i + seed) for i in range(n)]
    a["m"] = np.arange(4 * n, dtype="u2").reshape(n, 2, 2) + seed
    return a


def _compound_vlen(n: int, seed: int) -> np.ndarray:
    a = np.empty(n, dtype=COMPOUND_VLEN)
    for i in range(n):
        a[i] = (i * 1000 + seed, f"name-{seed}-{'é' * i}")
    return a


def _enum(n: int, seed: int) -> np.ndarray:
    vals = np.array([0, 1, 42, -7], dtype="i1")
    return vals[(np.arange(n) + seed) % 4]


def _bool(n: int, seed: int) -> np.ndarray:
    return ((np.arange(n) * 7 + seed) % 3 == 0)


def _md(n: int, seed: int) -> np.ndarray:
    return (np.arange(n * 20, dtype="f4").reshape(n, 4, 5) + seed) / 3


def _rows3(n: int, seed: int) -> np.ndarray:
    return np.arange(n * 3, dtype="f8").reshape(n, 3) * (seed + 0.5)


@dataclass
class Case:
    id: str
    dtype: Any
    make: Callable[[int, int], Any]  # (rows, seed) -> data
    n: int = 7
    kwargs: dict[str, Any] = field(default_factory=dict)
    resizable: bool = True  # chunked, maxshape (None, ...): rows can be appended


def _case_int(dt: str) -> Case:
    return Case(dt, np.dtype(dt), lambda n, s, dt=dt: _ints(dt, n, s))


def _case_float(dt: str) -> Case:
    return Case(dt, np.dtype(dt), lambda n, s, dt=dt: _floats(dt, n, s))


CASES = [
    *[_case_int(dt) for dt in ["i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", ">i4", ">u8"]],
    *[_case_float(dt) for dt in ["f2", "f4", "f8", ">f8"]],
    Case("c8", np.dtype("c8"), lambda n, s: _complex("c8", n, s)),
    Case("c16", np.dtype("c16"), lambda n, s: _complex("c16", n, s)),
    Case("bool", np.dtype(bool), _bool),
    Case("S10", np.dtype("S10"), _fixed_bytes),
    Case("fixed-utf8", FIXED_UTF8, _fixed_utf8),
    Case("vlen-utf8", VLEN_STR, _vlen_str),
    Case("vlen-ascii", VLEN_ASCII, _vlen_ascii),
    Case("vlen-i4", VLEN_INT, _vlen_int),
    Case("compound", COMPOUND, _compound),
    Case("compound-vlen-str", COMPOUND_VLEN, _compound_vlen),
    Case("enum", ENUM, _enum),
    Case("nd-4x5", np.dtype("f4"), _md, n=5, kwargs={"chunks": (2, 4, 5)}),
    Case("zero-length-n3", np.dtype("f8"), _rows3, n=0, kwargs={"chunks": (4, 3)}),
    Case("gzip", np.dtype("i8"), lambda n, s: _ints("i8", n, s),
         kwargs={"compression": "gzip", "compression_opts": 7}),
    Case("lzf", np.dtype("f4"), lambda n, s: _floats("f4", n, s), kwargs={"compression": "lzf"}),
    Case("shuffle-gzip", np.dtype("u4"), lambda n, s: _ints("u4", n, s),
         kwargs={"shuffle": True, "compression": "gzip", "compression_opts": 1}),
    Case("fletcher32", np.dtype("f8"), lambda n, s: _floats("f8", n, s),
         kwargs={"fletcher32": True}),
    Case("shuffle-fletcher32-gzip-S10", np.dtype("S10"), _fixed_bytes,
         kwargs={"shuffle": True, "fletcher32": True, "compression": "gzip"}),
    Case("gzip-compound", COMPOUND, _compound, kwargs={"compression": "gzip"}),
    Case("scaleoffset-int", np.dtype("i4"), lambda n, s: np.arange(n, dtype="i4") * 3 - s,
         kwargs={"scaleoffset": 0}),
    Case("fill-f4", np.dtype("f4"), lambda n, s: _floats("f4", n, s), kwargs={"fillvalue": -1.5}),
    Case("fill-i8", np.dtype("i8"), lambda n, s: _ints("i8", n, s), kwargs={"fillvalue": 7}),
    Case("fill-compound", COMPOUND, _compound,
         kwargs={"fillvalue": np.array((5, (1.0, 2.0, 3.0), b"fill", ((1, 2), (3, 4))),
                                       dtype=COMPOUND)[()]}),
    Case("contiguous-i4", np.dtype("i4"), lambda n, s: _ints("i4", n, s), resizable=False),
    Case("contiguous-vlen-utf8", VLEN_STR, _vlen_str, resizable=False),
    Case("capped-f8", np.dtype("f8"), lambda n, s: _floats("f8", n, s),
         kwargs={"chunks": (3,), "maxshape": (10,)}, resizable=False),
]


def _create(f: h5py.File, case: Case, data: Any) -> h5py.Dataset:
    kw = dict(case.kwargs)
    if case.resizable:
        tail = np.shape(data)[1:]
        kw.setdefault("chunks", (3, *tail))
        kw.setdefault("maxshape", (None, *tail))
    return f.create_dataset("/g/d", data=data, dtype=case.dtype, **kw)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_dataset_round_trip(tmp_path: Path, case: Case) -> None:
    path = tmp_path / "store.h5"
    with h5py.File(path, "w") as f:
        ds = _create(f, case, case.make(case.n, 0))
        ds.attrs["unit"] = "m/s"
        f["g"].attrs["n"] = np.int64(case.n)
        f.attrs["root"] = 1.5
    snaps = [file_snapshot(path)]

    with Repository.init(path) as repo:
        assert repo.status().changes == []
        assert repo.status(verify=True).changes == []
        ids = [repo.head.id]
        # commit 2, through a transaction: append (or overwrite the first row)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConversionWarning for fixed-size datasets
            with repo.transaction("tx") as tx:
                d = tx["/g/d"]
                if case.resizable:
                    d.append(case.make(4, 1))
                else:
                    d[0:2] = case.make(10, 1)[-2:]
                d.attrs["unit"] = "km/h"
                tx["/g"].attrs["n"] = np.int64(case.n + 4)
        assert tx.commit is not None
        ids.append(tx.commit.id)
        assert repo.status().changes == []
    snaps.append(file_snapshot(path))
    if case.resizable:
        assert snaps[1]["/g/d"]["shape"][0] == case.n + 4

    with Repository.open(path) as repo:
        # commit 3, through plain h5py: append (when possible) and attributes
        ds = repo.file["/g/d"]
        if ds.maxshape[0] is None and ds.chunks is not None:
            n = ds.shape[0]
            ds.resize(n + 3, axis=0)
            ds[n:] = case.make(3, 2)
        ds.attrs["extra"] = np.arange(3, dtype="i2")
        del repo.file["/"].attrs["root"]
        ids.append(repo.commit("plain").id)
        assert repo.status().changes == []
    snaps.append(file_snapshot(path))
    assert snaps[0]["/g/d"] != snaps[1]["/g/d"] != snaps[2]["/g/d"]
    assert snaps[0]["/g/d"]["value"] != snaps[1]["/g/d"]["value"]

    assert_snapshot(path, snaps[2])
    for rev, want in [("HEAD~1", 1), ("HEAD~1", 0), (ids[2], 2), (ids[0], 0), ("main", 2),
                      (ids[1], 1)]:
        checkout(path, rev)
        assert_snapshot(path, snaps[want])
    checkout(path, "main")
    assert_snapshot(path, snaps[2])


def test_grow_with_fill_value_round_trip(tmp_path: Path) -> None:
    """Growing with resize exposes the fill value; the rows come back exactly."""
    path = tmp_path / "store.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("d", data=np.arange(5, dtype="f4"), chunks=(2,), maxshape=(None,),
                         fillvalue=-9.25)
    with Repository.init(path) as repo:
        with repo.transaction("grow") as tx:
            tx["/d"].resize(9)
        assert tx.commit is not None
    s1 = file_snapshot(path)
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(f["d"][()], np.r_[np.arange(5), np.full(4, -9.25)])
    with Repository.open(path) as repo:
        with repo.transaction("shrink") as tx:
            tx["/d"].resize(3)
    s2 = file_snapshot(path)
    checkout(path, "HEAD~1")
    assert_snapshot(path, s1)
    checkout(path, "HEAD~1")
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(f["d"][()], np.arange(5, dtype="f4"))
    checkout(path, "main")
    assert_snapshot(path, s2)


# -- special shapes ----------------------------------------------------------------------------

SCALARS = [
    ("f8", np.float64(-0.0), np.float64(np.nan), None),
    ("c16", np.complex128(1 - 2j), np.complex128(3j), None),
    ("vlen-utf8", "héllo ☃", "bye", VLEN_STR),
    ("S10", np.bytes_(b"abc"), np.bytes_(b"0123456789"), np.dtype("S10")),
    ("S10-full", np.bytes_(b"0123456789"), np.bytes_(b"abc"), np.dtype("S10")),
    ("compound", np.array((1, (1.0, 2.0, 3.0), b"ab", ((1, 2), (3, 4))), dtype=COMPOUND)[()],
     np.array((2, (4.0, 5.0, 6.0), b"cd", ((5, 6), (7, 8))), dtype=COMPOUND)[()], COMPOUND),
    ("vlen-i4", np.arange(4, dtype="i4"), np.arange(2, dtype="i4"), VLEN_INT),
]


@pytest.mark.parametrize("first, second, dtype", [s[1:] for s in SCALARS],
                         ids=[s[0] for s in SCALARS])
def test_scalar_dataset_round_trip(tmp_path: Path, first: Any, second: Any, dtype: Any) -> None:
    path = tmp_path / "store.h5"
    with h5py.File(path, "w") as f:
        if dtype is VLEN_INT:
            ds = f.create_dataset("s", shape=(), dtype=dtype)
            ds[()] = first
        else:
            ds = f.create_dataset("s", data=first, dtype=dtype)
        assert ds.shape == ()
        ds.attrs["a"] = 1
    s0 = file_snapshot(path)
    with Repository.init(path) as repo:
        with repo.transaction("set") as tx:
            tx["/s"][()] = second
        assert tx.commit is not None
    s1 = file_snapshot(path)
    assert s1["/s"]["value"] != s0["/s"]["value"]
    checkout(path, "HEAD~1")
    assert_snapshot(path, s0)
    checkout(path, "main")
    assert_snapshot(path, s1)


@pytest.mark.parametrize("dt", ["f4", "i8", "S5"])
def test_empty_dataset_round_trip(tmp_path: Path, dt: str) -> None:
    path = tmp_path / "store.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("e", data=h5py.Empty(dt))
        f["e"].attrs["why"] = "placeholder"
    s0 = file_snapshot(path)
    assert s0["/e"]["shape"] is None
    with Repository.init(path) as repo:
        with repo.transaction("attr") as tx:
            tx["/e"].attrs["why"] = "still empty"
            tx["/e"].attrs["empty"] = h5py.Empty("i2")
        with repo.transaction("add") as tx:
            tx.create_dataset("/e2", data=h5py.Empty("f8"))
    s1 = file_snapshot(path)
    assert s1["/e2"]["shape"] is None
    checkout(path, "HEAD~2")
    assert_snapshot(path, s0)
    checkout(path, "main")
    assert_snapshot(path, s1)


def test_zero_length_dataset_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "store.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("z", shape=(0, 3), dtype="f8", chunks=(2, 3), maxshape=(None, 3))
        f.create_dataset("zc", shape=(0, 3), dtype="i2")  # contiguous, fixed
    s0 = file_snapshot(path)
    with Repository.init(path) as repo:
        assert repo.status(verify=True).changes == []
        with repo.transaction("app") as tx:
            tx["/z"].append(np.ones((5, 3)))
        with repo.transaction("cut") as tx:
            tx["/z"].resize(0)
    s2 = file_snapshot(path)
    assert s2 == s0
    checkout(path, "HEAD~1")
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(f["z"][()], np.ones((5, 3)))
        assert f["z"].chunks == (2, 3)
    checkout(path, "HEAD~1")
    assert_snapshot(path, s0)
    checkout(path, "main")
    assert_snapshot(path, s2)


# -- attributes --------------------------------------------------------------------------------

def _attr_cases() -> list[tuple[str, Any, Any]]:
    """(id, value, dtype or None): how ``attrs.create`` is called."""
    cases: list[tuple[str, Any, Any]] = []
    for dt in ["i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", ">i4", "f2", "f4", "f8", ">f8",
               "c8", "c16"]:
        d = np.dtype(dt)
        scalar = (np.array(np.iinfo(d).min if d.kind in "iu" else -0.0, dtype=d))[()]
        cases.append((f"scalar-{dt}", scalar, d))
        arr = (np.arange(6, dtype=d) if d.kind in "iu" else _floats(dt, 6, 3)
               if d.kind == "f" else _complex(dt, 6, 3))
        cases.append((f"array-{dt}", arr.reshape(2, 3), d))
    cases += [
        ("bool", np.bool_(True), None),
        ("bool-array", np.array([True, False, True]), None),
        ("python-int", 12345678901234, None),
        ("python-float", 0.1, None),
        ("python-str", "héllo ☃", None),
        ("python-bytes", b"raw bytes", None),
        ("S10", np.bytes_(b"fixed"), np.dtype("S10")),
        ("S10-array", np.array([b"a", b"0123456789"], dtype="S10"), None),
        ("fixed-utf8", "日本".encode(), FIXED_UTF8),
        ("vlen-utf8-array", np.array(["a", "", "☃☃"], dtype=object), VLEN_STR),
        ("vlen-ascii", b"ascii text", VLEN_ASCII),
        ("vlen-ascii-array", np.array([b"x", b"yz"], dtype=object), VLEN_ASCII),
        ("str-list", ["one", "two", "three"], None),
        ("vlen-i4", np.array([np.arange(3, dtype="i4"), np.arange(0, dtype="i4")],
                             dtype=object), VLEN_INT),
        ("compound", np.array((1, (1.0, 2.0, 3.0), b"ab", ((1, 2), (3, 4))),
                              dtype=COMPOUND)[()], COMPOUND),
        ("compound-array", _compound(3, 1), None),
        ("enum", np.array(42, dtype="i1"), ENUM),
        ("enum-array", np.array([0, 1, -7], dtype="i1"), ENUM),
        ("empty-f4", h5py.Empty("f4"), None),
        ("empty-S5", h5py.Empty("S5"), None),
        ("zero-length-array", np.zeros(0, dtype="f8"), None),
        ("3d-array", np.arange(24, dtype="u2").reshape(2, 3, 4), None),
    ]
    return cases


ATTR_CASES = _attr_cases()


def _set(obj: h5py.HLObject, name: str, value: Any, dtype: Any) -> None:
    if dtype is None:
        obj.attrs[name] = value
    else:
        obj.attrs.create(name, value, dtype=dtype)


@pytest.mark.parametrize("value, dtype", [c[1:] for c in ATTR_CASES],
                         ids=[c[0] for c in ATTR_CASES])
def test_attribute_round_trip(tmp_path: Path, value: Any, dtype: Any) -> None:
    path = tmp_path / "store.h5"
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("g/d", data=np.arange(4), chunks=(2,), maxshape=(None,))
        for obj in (f, f["g"], ds):
            _set(obj, "a", value, dtype)
            obj.attrs["other"] = 1
    s0 = file_snapshot(path)
    for p in ("/", "/g", "/g/d"):
        assert "a" in s0[p]["attrs"]
    if dtype is not None:
        assert s0["/g/d"]["attrs"]["a"]["dtype"]["str"] == np.dtype(dtype).str

    with Repository.init(path) as repo:
        assert repo.status().changes == []
        with repo.transaction("attrs") as tx:
            del tx["/g"].attrs["a"]
            tx["/g/d"].attrs["a"] = "replaced by a string"
            tx["/"].attrs["other"] = np.float32(2.5)
        # the same value as a new attribute, written with plain h5py
        _set(repo.file["/g/d"], "b", value, dtype)
        _set(repo.file["/g"], "b", value, dtype)
        repo.commit("plain attrs")
        assert repo.status().changes == []
    s2 = file_snapshot(path)
    assert s2["/g/d"]["attrs"]["b"] == s0["/g/d"]["attrs"]["a"]
    checkout(path, "HEAD~1")
    s1 = file_snapshot(path)
    assert "a" not in s1["/g"]["attrs"] and "b" not in s1["/g"]["attrs"]
    checkout(path, "HEAD~1")
    assert_snapshot(path, s0)
    checkout(path, "main")
    assert_snapshot(path, s2)


# -- verify detects in-place overwrites ----------------------------------------------------------

@pytest.mark.parametrize("dtype, data, new", [
    ("i4", np.arange(10, dtype="i4"), np.array([99], dtype="i4")),
    ("f8", np.linspace(0, 1, 10), np.array([-0.0])),
    (VLEN_STR, np.array([f"s{i}" for i in range(10)], dtype=object), np.array(["changed"], dtype=object)),
    (VLEN_STR, np.array([f"s{i}" for i in range(10)], dtype=object), np.array(["s40"], dtype=object)),
], ids=["i4", "f8", "vlen-utf8", "vlen-utf8-same-length"])
def test_status_verify_detects_plain_overwrite(tmp_path: Path, dtype: Any, data: Any,
                                               new: Any) -> None:
    path = tmp_path / "store.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("d", data=data, dtype=dtype, chunks=(3,), maxshape=(None,))
    with Repository.init(path) as repo:
        repo.file["d"][4:5] = new  # plain h5py: same shape, same metadata
        assert repo.status().changes == repo.status(verify=True).changes  # rehashed too
        changes = repo.status(verify=True).changes
        assert len(changes) == 1
        ch = changes[0]
        assert ch["op"] == "rows" and ch["path"] == "/d"
        assert ch["from"] == ch["to"] == 10
        assert [r[:2] for r in ch["ranges"]] == [[3, 6]]
        st = repo.status(verify=True)
        assert [(lo.path, lo.ranges) for lo in st.lost] == [("/d", [(3, 6)])]
        with pytest.raises(DataLossError, match="rows 3:6 changed in place"):
            repo.commit("fix", verify=True)
        c = repo.commit("fix", verify=True, accept_loss=True)
        assert [r[:2] for r in c.changes[0]["ranges"]] == [[3, 6]]
        assert repo.status(verify=True).changes == []
        before = file_snapshot(path)
        # the overwritten committed rows were never preserved: commit 1 cannot come back
        with pytest.raises(IntegrityError):
            repo.checkout("HEAD~1")
        assert repo.head.id == c.id
    assert file_snapshot(path) == before
    with h5py.File(path, "r") as f:
        got = f["d"][4]
        assert (got.decode() if isinstance(got, bytes) else got) == new[0]


@pytest.mark.parametrize("dtype, first, rows", [
    (FIXED_UTF8, np.array(["é".encode(), b"ab"], dtype=FIXED_UTF8),
     np.array([b"plain", "日本".encode()], dtype="S10")),
    (ENUM, np.array([0, 1], dtype="i1"), np.array([42, -7], dtype="i1")),
    (COMPOUND, _compound(2, 0), _compound(2, 1)),
], ids=["fixed-utf8-from-S10", "enum-from-i1", "compound"])
def test_append_of_arrays_without_h5py_metadata(tmp_path: Path, dtype: Any, first: Any,
                                                rows: Any) -> None:
    """Rows given as plain numpy arrays (no h5py string/enum metadata) are hashed as stored."""
    path = tmp_path / "store.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("d", data=first, dtype=dtype, chunks=(2,), maxshape=(None,))
    s0 = file_snapshot(path)
    with Repository.init(path) as repo:
        with repo.transaction("append") as tx:
            tx["/d"].append(rows)
        assert repo.status(verify=True).changes == []
    s1 = file_snapshot(path)
    assert s1["/d"]["shape"] == (4,)
    assert s1["/d"]["dtype"] == s0["/d"]["dtype"]
    checkout(path, "HEAD~1")
    assert_snapshot(path, s0)
    checkout(path, "main")
    assert_snapshot(path, s1)


# -- compound types with padding (issue #13): padding never counts -----------------------------

PADDED = {
    "offsets": np.dtype({"names": ["a", "b"], "formats": ["i1", "f8"], "offsets": [0, 8],
                         "itemsize": 16}),
    "aligned": np.dtype([("x", "i1"), ("y", "<f8"), ("z", "<i2")], align=True),
    "nested": np.dtype([("p", np.dtype([("i", "i1"), ("d", "<f8")], align=True)), ("q", "<i4")],
                       align=True),
}


def test_padding_bytes_never_change_a_hash() -> None:
    from h5vc.engine.hashing import canonical_bytes, encode_value, rows_hash

    dt = PADDED["nested"]
    a = np.zeros(3, dt)
    b = np.frombuffer(np.full(3 * dt.itemsize, 0xAB, np.uint8).tobytes(), dtype=dt).copy()
    b[...] = a.astype(np.dtype([("p", [("i", "i1"), ("d", "<f8")]), ("q", "<i4")]))
    assert a.tobytes() != b.tobytes()  # the same values, other padding bytes
    assert bytes(canonical_bytes(a)) == bytes(canonical_bytes(b))
    assert rows_hash(a, "k") == rows_hash(b, "k")
    assert encode_value(a, dt, a.shape) == encode_value(b, dt, b.shape)
    packed = np.zeros(3, [("i", "i1"), ("d", "<f8")])
    assert bytes(canonical_bytes(packed)) == packed.tobytes()  # no padding: bytes as they are


@pytest.mark.parametrize("kind", sorted(PADDED))
def test_a_compound_with_padding_is_clean_and_round_trips(tmp_path: Path, kind: str) -> None:
    dt = PADDED[kind]
    path = tmp_path / "pad.h5"
    rows = np.zeros(10, dt)
    first = dt.names[0]
    if dt[first].names:
        rows[first][dt[first].names[0]] = np.arange(10)
    else:
        rows[first] = np.arange(10)
    with h5py.File(path, "w") as f:
        f.create_dataset("t", data=rows, maxshape=(None,), chunks=(4,))
        f.attrs["c"] = rows[:2]
    # each step its own process, as a user runs them: padding is whatever memory held
    h5vc = [sys.executable, "-m", "h5vc"]
    assert subprocess.run([*h5vc, "init", str(path), "--no-pointer"], capture_output=True).returncode == 0
    with h5py.File(path, "a") as f:  # any outside write: the seal no longer vouches
        f.attrs["note"] = "x"
    r = subprocess.run([*h5vc, "status", "--json", "-s", str(path)], capture_output=True, text=True)
    changes = json.loads(r.stdout)["changes"]
    assert [(ch["op"], ch["path"]) for ch in changes] == [("attr", "/")], changes
    r = subprocess.run([*h5vc, "commit", "-m", "note", "-s", str(path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    with Repository.open(path) as repo:
        c0 = list(repo.log())[-1].id
    with h5py.File(path, "a") as f:
        t = f["t"]
        t.resize(13, axis=0)
        t[10:] = rows[:3]
    with Repository.open(path) as repo:
        assert repo.status(verify=True).changes[0]["op"] == "rows"
        repo.commit("more")
        assert repo.status(verify=True).clean
        repo.checkout(c0)
        assert repo.status(verify=True).clean
        with h5py.File(path, "r") as f:
            assert f["t"].shape == (10,) and "note" not in f.attrs
        repo.checkout("main")
        assert repo.status(verify=True).clean and repo.verify().ok
    with h5py.File(path, "r") as f:
        got = f["t"][()]
        assert got.dtype == dt and np.array_equal(got[:10], rows) and np.array_equal(got[10:], rows[:3])
