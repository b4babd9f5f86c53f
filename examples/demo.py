"""The h5vc demo: a sensor store grows day by day; go back in time and forward again.

Run it with ``bash scripts/demo.sh`` (sets up .venv first) or ``python examples/demo.py DIR``.
Every step is the CLI a user types; the "pipeline" in between writes with plain h5py.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np

H5VC = [sys.executable, "-m", "h5vc"]


def run(*args: str, cwd: Path) -> None:
    print(f"\n$ h5vc {' '.join(args)}", flush=True)
    subprocess.run([*H5VC, *args], cwd=cwd, check=True)


def pipeline(store: Path, day: int, rng: np.random.Generator) -> None:
    """What a user's own script does: append a day of readings, tweak attributes."""
    print(f"\n# pipeline: day {day} appends 1,000 readings per sensor with plain h5py", flush=True)
    with h5py.File(store, "a") as f:
        for name in ("a", "b"):
            path = f"/sensors/{name}"
            rows = rng.normal(day, 1.0, size=(1000, 3)).astype("f4")
            if path not in f:
                f.create_dataset(path, data=rows, maxshape=(None, 3), chunks=(1000, 3),
                                 compression="gzip", compression_opts=1)
            else:
                ds = f[path]
                ds.resize(ds.shape[0] + len(rows), axis=0)
                ds[-len(rows):] = rows
        f["/sensors"].attrs["days"] = day
        if day == 2:
            f["/sensors"].attrs["units"] = "mV"


def main(folder: str = "demo") -> None:
    work = Path(folder).resolve()
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    store = work / "data.h5"
    with h5py.File(store, "w") as f:  # an existing HDF5 file, as users have them
        f.create_group("sensors").attrs["units"] = "V"
        f.create_dataset("/calibration", data=np.linspace(0, 1, 16))
    rng = np.random.default_rng(7)

    run("init", store.name, cwd=work)
    for day in (1, 2, 3):
        pipeline(store, day, rng)
        if day == 1:
            run("status", cwd=work)
        run("commit", "-m", f"day {day}", cwd=work)
    run("tag", "v1", "HEAD~1", cwd=work)
    run("log", cwd=work)
    run("show", "HEAD~1", cwd=work)
    run("checkout", "v1", cwd=work)
    with h5py.File(store, "r") as f:
        print(f"# plain h5py now sees {f['/sensors/a'].shape[0]:,} rows, "
              f"units={f['/sensors'].attrs['units']!r}")
    run("checkout", "main", cwd=work)
    with h5py.File(store, "r") as f:
        print(f"# and back on main: {f['/sensors/a'].shape[0]:,} rows, "
              f"days={int(f['/sensors'].attrs['days'])}")
    run("branch", "experiment", "HEAD~2", cwd=work)
    run("checkout", "experiment", cwd=work)
    run("status", cwd=work)
    run("checkout", "main", cwd=work)
    print(f"\nDemo store: {store}")


if __name__ == "__main__":
    main(*sys.argv[1:2])
