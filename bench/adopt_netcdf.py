"""`h5vc init` of a large netCDF4 file written by xarray, against reading it once with h5py,
in the same run.

The file (default 1 GiB) holds --variables float32 variables over (time, lat, lon), time
unlimited, in chunks of 16 time steps, written by ``xarray.Dataset.to_netcdf`` (the netCDF4
engine, netCDF-C's writer; ``--engine h5netcdf`` for the other one). Each round adopts a fresh
copy of it (the copy is not timed). Timed, alternating, page cache warm for both:

- floor: plain h5py reading every dataset of the file once;
- ``Repository.init`` in-process, and ``h5vc init`` as a whole process, the latter also
  against a whole process that imports h5py and reads the file once.

Both processes run as on a user's machine: Python caches compiled modules (a
``PYTHONDONTWRITEBYTECODE`` set here is not passed on, and one untimed run of each writes the
cache first), so neither pays for compiling h5vc's or h5py's sources at every start.

Target (issue #13): init <= 1.5x the floor.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import alternate, emit_json, median, ms, print_table, progress, ratio, verdict  # noqa: E402

from h5vc import Repository  # noqa: E402

LAT, LON, STEP = 256, 512, 16


def build(path: Path, total_mib: int, variables: int, engine: str) -> None:
    import xarray as xr

    steps = (total_mib << 20) // (variables * LAT * LON * 4)
    rng = np.random.default_rng(0)
    data = {f"v{i}": (("time", "lat", "lon"), rng.random((steps, LAT, LON), dtype=np.float32),
                      {"units": "K", "long_name": f"variable {i}"}) for i in range(variables)}
    ds = xr.Dataset(data, coords={"time": np.arange(steps, dtype="f8"),
                                  "lat": np.linspace(-90, 90, LAT), "lon": np.linspace(0, 360, LON)},
                    attrs={"title": "adoption benchmark"})
    enc = {k: {"chunksizes": (STEP, LAT, LON)} if engine == "netcdf4" else {"chunks": (STEP, LAT, LON)}
           for k in data}
    ds.to_netcdf(path, engine=engine, unlimited_dims=["time"], encoding=enc)


def read_all(path: Path) -> int:
    n = 0
    with h5py.File(path, "r") as f:
        def visit(_name: str, obj: object) -> None:
            nonlocal n
            if isinstance(obj, h5py.Dataset) and obj.shape:
                step = max(1, obj.chunks[0] if obj.chunks else obj.shape[0])
                for a in range(0, obj.shape[0], step):
                    n += obj[a:a + step].nbytes
        f.visititems(visit)
    return n


READ_SCRIPT = """
import sys, h5py
def visit(_name, obj):
    if isinstance(obj, h5py.Dataset) and obj.shape:
        step = max(1, obj.chunks[0] if obj.chunks else obj.shape[0])
        for a in range(0, obj.shape[0], step):
            obj[a:a + step]
with h5py.File(sys.argv[1], "r") as f:
    f.visititems(visit)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mib", type=int, default=1024, help="size of the file's data")
    ap.add_argument("--variables", type=int, default=2)
    ap.add_argument("--engine", default="netcdf4", choices=["netcdf4", "h5netcdf"])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "clim.nc"
        work = Path(d) / "work.nc"
        progress(f"writing a {args.mib} MiB netCDF4 file with xarray ({args.engine})")
        build(src, args.mib, args.variables, args.engine)
        size = src.stat().st_size

        def fresh() -> None:
            work.unlink(missing_ok=True)
            shutil.copyfile(src, work)
            read_all(work)  # the copy's pages warm, as the source's are for the floor

        def floor(_r: int) -> float:
            t = time.perf_counter()
            read_all(src)
            return time.perf_counter() - t

        def api(_r: int) -> float:
            fresh()
            t = time.perf_counter()
            Repository.init(work, pointer=False).close()
            return time.perf_counter() - t

        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}

        def floor_proc(_r: int) -> float:
            t = time.perf_counter()
            subprocess.run([sys.executable, "-c", READ_SCRIPT, str(src)], check=True, env=env)
            return time.perf_counter() - t

        def cli(_r: int) -> float:
            fresh()
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "h5vc", "init", str(work), "-m", "adopt"],
                           check=True, capture_output=True, cwd=d, env=env)
            return time.perf_counter() - t

        read_all(src)  # warm the page cache
        floor_proc(0)  # and the compiled-module caches of both processes (untimed)
        cli(0)
        times = alternate(args.repeat, {"h5py read": floor, "init (API)": api,
                                        "h5vc init": cli, "h5py read process": floor_proc})
    f, a, c, fp = (median(times[k]) for k in ("h5py read", "init (API)", "h5vc init",
                                              "h5py read process"))
    print(f"\nfile: {size / 2**30:.2f} GiB netCDF4 ({args.engine}), {args.variables} variables\n")
    print_table(["measure", "median", "ratio to h5py read", "target", ""],
                [["h5py reads the file once", ms(f), "1.00x", "", ""],
                 ["Repository.init()", ms(a), ratio(a / f), "<= 1.5x", verdict(a / f, 1.5)],
                 ["h5vc init (whole process)", ms(c), ratio(c / f), "", ""],
                 ["python + h5py reading it once (whole process)", ms(fp), ratio(fp / f), "", ""],
                 ["h5vc init / that process", "", ratio(c / fp), "<= 1.5x", verdict(c / fp, 1.5)]])
    emit_json("adopt_netcdf", {"file_bytes": size, "engine": args.engine, "h5py_read_s": f,
                               "init_api_s": a, "init_cli_s": c, "h5py_read_process_s": fp,
                               "ratio_api": a / f, "ratio_cli_process": c / fp})


if __name__ == "__main__":
    main()
