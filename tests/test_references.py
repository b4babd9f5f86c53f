"""Object references in attributes: netCDF4 dimension scales and references made by hand,
through commit, status, checkout, at(rev) and export; region references refused clearly."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import h5netcdf
import h5py
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from typer.testing import CliRunner

from h5vc import Repository
from h5vc.cli import app

runner = CliRunner()


def cli(*args: str):
    return runner.invoke(app, list(args))


def climate() -> xr.Dataset:
    t = pd.date_range("2026-01-01", periods=4, freq="D")
    return xr.Dataset(
        {"temp": (("time", "lat", "lon"), np.arange(24, dtype="f4").reshape(4, 3, 2), {"units": "K"}),
         "station": (("lat",), np.array([7, 8, 9], dtype="i4"))},
        coords={"time": t, "lat": [10.0, 20.0, 30.0], "lon": [1.5, 2.5]},
        attrs={"title": "clim"})


def read_nc(path: Path) -> xr.Dataset:
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        return ds.load()


def append_days(path: Path, values: float) -> None:
    """Two more days along the unlimited dimension, written with h5netcdf."""
    with h5netcdf.File(path, "a") as f:
        n = f.dimensions["time"].size
        f.resize_dimension("time", n + 2)
        step = f["time"][1] - f["time"][0]
        f["time"][n:] = f["time"][n - 1] + np.array([1, 2]) * step
        f["temp"][n:] = np.full((2, 3, 2), values, "f4")


def netcdf4_summary(path: Path) -> dict:
    """What the netCDF-C library (netCDF4-python) sees, in a process of its own: it links its
    own HDF5, which should not meet h5py's in one process."""
    code = (
        "import json, sys, netCDF4\n"
        "d = netCDF4.Dataset(sys.argv[1])\n"
        "print(json.dumps({'dims': {k: len(v) for k, v in d.dimensions.items()},\n"
        "  'vars': {k: list(v.dimensions) for k, v in d.variables.items()},\n"
        "  'temp': d['temp'][:].tolist()}))\n")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout)


def test_netcdf4_file_round_trips(tmp_path: Path) -> None:
    nc = tmp_path / "clim.nc"
    climate().to_netcdf(nc, engine="h5netcdf", unlimited_dims=["time"])
    v1 = read_nc(nc)
    r = cli("init", str(nc))
    assert r.exit_code == 0, r.output
    append_days(nc, 99.0)
    v2 = read_nc(nc)
    r = cli("status", "-s", str(nc))
    assert "+2 rows          /time (4 -> 6)" in r.output, r.output
    assert cli("commit", "-s", str(nc), "-m", "two more days").exit_code == 0
    with h5netcdf.File(nc, "a") as f:  # a new variable on existing dimensions, an attribute edit
        rain = f.create_variable("rain", ("time", "lat"), "f8")
        rain[:] = np.arange(18.0).reshape(6, 3)
        rain.attrs["units"] = "mm"
        f["temp"].attrs["units"] = "degC"
    v3 = read_nc(nc)
    r = cli("status", "-s", str(nc))
    assert "/time@REFERENCE_LIST: [('/temp', 0)] -> [('/temp', 0), ('/rain', 0)]" in r.output, r.output
    assert cli("commit", "-s", str(nc), "-m", "rain").exit_code == 0
    assert cli("status", "-s", str(nc)).output.endswith("nothing to commit: the store equals HEAD\n")

    for rev, want in (("main~2", v1), ("main~1", v2), ("main", v3)):
        r = cli("checkout", "-s", str(nc), rev)
        assert r.exit_code == 0, r.output
        got = read_nc(nc)
        assert got.identical(want), (rev, got, want)
        assert dict(got.sizes) == dict(want.sizes)
        assert {k: v.dims for k, v in got.variables.items()} == \
            {k: v.dims for k, v in want.variables.items()}
        seen = netcdf4_summary(nc)
        assert seen["dims"] == {"time": want.sizes["time"], "lat": 3, "lon": 2}
        assert seen["vars"]["temp"] == ["time", "lat", "lon"]
        np.testing.assert_array_equal(np.array(seen["temp"]), want["temp"].values)
        assert cli("status", "-s", str(nc)).output.endswith("nothing to commit: the store equals HEAD\n")
    assert cli("verify", "-s", str(nc)).exit_code == 0


def test_netcdf4_versions_read_and_exported_without_checkout(tmp_path: Path) -> None:
    nc = tmp_path / "clim.nc"
    climate().to_netcdf(nc, engine="h5netcdf", unlimited_dims=["time"])
    v1 = read_nc(nc)
    with Repository.init(nc, pointer=False) as repo:
        first = repo.head.id
    append_days(nc, 5.0)
    with Repository.open(nc) as repo:
        repo.commit("two more days")
        view = repo.at(first)
        # a view gives a reference as its target's path: it is not an HDF5 file to point into
        dims = view["/temp"].attrs["DIMENSION_LIST"]
        assert [list(d) for d in dims] == [["/time"], ["/lat"], ["/lon"]]
        assert [tuple(x) for x in view["/lat"].attrs["REFERENCE_LIST"]] == [("/temp", 1), ("/station", 0)]
    whole = tmp_path / "v1.nc"
    r = cli("export", "-s", str(nc), first, str(whole))
    assert r.exit_code == 0, r.output
    got = read_nc(whole)
    assert got.drop_attrs().identical(v1.drop_attrs()) and got["temp"].attrs == v1["temp"].attrs
    part = tmp_path / "temp.h5"
    assert cli("export", "-s", str(nc), first, str(part), "--select", "/temp").exit_code == 0
    with h5py.File(part, "r") as f:  # the scales were left out: their references are null
        assert list(f) == ["temp"]
        assert [bool(r[0]) for r in f["temp"].attrs["DIMENSION_LIST"]] == [False, False, False]
        np.testing.assert_array_equal(f["temp"][()], v1["temp"].values)
    r = cli("cat", "-s", str(nc), f"{first}:/temp", "--attr", "DIMENSION_LIST")
    assert r.output == '[["/time"], ["/lat"], ["/lon"]]\n', r.output


NETCDF4_WRITE = """
import sys
import numpy as np, pandas as pd, xarray as xr
t = pd.date_range("2026-01-01", periods=4, freq="D")
xr.Dataset({"temp": (("time", "lat"), np.arange(12, dtype="f4").reshape(4, 3), {"units": "K"})},
           coords={"time": t, "lat": [10.0, 20.0, 30.0]}, attrs={"title": "c"}
           ).to_netcdf(sys.argv[1], engine="netcdf4", unlimited_dims=["time"])
"""
NETCDF4_APPEND = """
import sys
import netCDF4, numpy as np
d = netCDF4.Dataset(sys.argv[1], "a")
n = len(d.dimensions["time"])
d["time"][n:n + 2] = d["time"][n - 1] + np.array([1, 2])
d["temp"][n:n + 2] = np.full((2, 3), float(sys.argv[2]), "f4")
d.close()
"""


def test_a_file_the_netcdf_library_wrote_round_trips_and_stays_writable_by_it(
        tmp_path: Path) -> None:
    """Written and appended by netCDF-C (xarray's netcdf4 engine, netCDF4-python), in processes
    of their own; netCDF-C opens for writing only files whose groups all track creation order,
    so the groups h5vc adds must too."""
    nc = tmp_path / "c.nc"

    def py(code: str, *args: str) -> None:
        r = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True,
                           text=True)
        assert r.returncode == 0, r.stderr

    py(NETCDF4_WRITE, nc)
    v1, s1 = read_nc(nc), netcdf4_summary(nc)
    assert cli("init", str(nc)).exit_code == 0
    assert cli("status", "-s", str(nc)).output.endswith("nothing to commit: the store equals HEAD\n")
    py(NETCDF4_APPEND, nc, 7)
    v2, s2 = read_nc(nc), netcdf4_summary(nc)
    assert s2["dims"]["time"] == 6
    r = cli("status", "-s", str(nc))
    assert "+2 rows          /time (4 -> 6)" in r.output, r.output
    assert cli("commit", "-s", str(nc), "-m", "two more days").exit_code == 0
    for rev, want, seen in (("main~1", v1, s1), ("main", v2, s2)):
        assert cli("checkout", "-s", str(nc), rev).exit_code == 0
        assert read_nc(nc).identical(want), rev
        assert netcdf4_summary(nc) == seen, rev
    assert cli("checkout", "-s", str(nc), "main~1").exit_code == 0
    with Repository.open(nc) as repo, repo.transaction("a group of its own") as tx:
        tx.create_dataset("/extra/more/x", data=np.arange(3))  # groups h5vc makes
    py(NETCDF4_APPEND, nc, 9)  # still writable by netCDF-C
    assert netcdf4_summary(nc)["dims"]["time"] == 6
    assert cli("commit", "-s", str(nc), "-m", "other days").exit_code == 0
    assert cli("status", "-s", str(nc)).output.endswith("nothing to commit: the store equals HEAD\n")
    assert cli("verify", "-s", str(nc)).exit_code == 0


@pytest.mark.parametrize("extra", [0, 300])  # 300 more paths: status reads only what changed
def test_references_made_by_hand(tmp_path: Path, extra: int) -> None:
    path = tmp_path / "refs.h5"
    with h5py.File(path, "w") as f:
        for i in range(extra):
            f.create_dataset(f"bulk/d{i:03d}", data=[i])
        a = f.create_dataset("cats/a", data=np.arange(4.0), maxshape=(None,), chunks=(2,))
        b = f.create_dataset("b", data=np.arange(3))
        meta = f.create_group("meta")
        gone = f.create_dataset("gone", data=[1])
        f.attrs["one"] = a.ref  # a scalar reference
        f.attrs["group"] = meta.ref
        f.attrs["dangling"] = gone.ref
        f.attrs.create("many", data=[a.ref, h5py.Reference(), b.ref], dtype=h5py.ref_dtype)
        rec = np.dtype([("target", h5py.ref_dtype), ("n", "i4")])
        b.attrs.create("pairs", data=np.array([(a.ref, 1), (meta.ref, 2)], dtype=rec))
        del f["gone"]
    with Repository.init(path, pointer=False) as repo:
        first = repo.head.id
        assert repo.at(first)["/"].attrs["dangling"] is None  # recorded as a null reference
    with h5py.File(path, "a") as f:  # rename a target: the references now name its new path
        f.move("meta", "info")
    with Repository.open(path) as repo:
        if extra:
            assert repo._load_prints() is not None  # the footprints table vouches for the rest
        moved = [c for c in repo.status().changes if c["op"] == "attr"]
        assert sorted((c["path"], c["name"]) for c in moved) == [("/", "group"), ("/b", "pairs")], moved
        repo.commit("renamed")
        assert repo.at("HEAD")["/"].attrs["group"] == "/info"
        repo.checkout(first)
    with h5py.File(path, "r") as f:
        assert f[f.attrs["one"]].name == "/cats/a"
        assert f[f.attrs["group"]].name == "/meta"
        dangling = f.attrs["dangling"]  # left as it was (h5vc never changed it): it resolves to nothing
        assert not dangling or f.get(dangling) is None
        many = f.attrs["many"]
        assert [f[r].name if r else None for r in many] == ["/cats/a", None, "/b"]
        pairs = f["b"].attrs["pairs"]
        assert [(f[r].name, int(n)) for r, n in pairs] == [("/cats/a", 1), ("/meta", 2)]
        np.testing.assert_array_equal(f[f.attrs["one"]][()], np.arange(4.0))


def test_reference_to_an_object_recreated_by_checkout(tmp_path: Path) -> None:
    """A checkout that deletes and recreates a target (its dtype changed) makes the references
    to it anew, though the attributes holding them did not change."""
    path = tmp_path / "s.h5"
    with Repository.init(path, pointer=False) as repo:
        with repo.transaction("a and b") as tx:
            a = tx.create_dataset("/a", data=np.arange(3, dtype="f4"))
            tx.create_dataset("/b", data=[0]).attrs["to"] = a.ref
        first = repo.head.id
        with repo.transaction("a as integers") as tx:
            tx["/b"].attrs["to"] = tx.replace("/a", data=np.arange(5, dtype="i8")).ref
        assert repo.at(first)["/b"].attrs["to"] == "/a"
        repo.checkout(first)
        assert repo.status().clean
    with h5py.File(path, "r") as f:
        target = f[f["b"].attrs["to"]]
        assert target.name == "/a" and target.dtype == np.float32 and target.shape == (3,)


def test_region_references_are_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "region.h5"
    with h5py.File(path, "w") as f:
        d = f.create_dataset("d", data=np.arange(10))
        f.attrs.create("sel", data=d.regionref[2:5], dtype=h5py.regionref_dtype)
    before = path.read_bytes()
    r = cli("init", str(path))
    assert r.exit_code == 1
    assert r.output.strip().splitlines() == [
        "Error: attribute 'sel' of /: HDF5 region references cannot be versioned yet; store the "
        "referenced path and selection as a string instead"], r.output
    assert path.read_bytes() == before
