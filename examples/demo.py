"""The h5vc demo: import bundled sample data by category and attribute, go back, come forward.

Run it with ``bash scripts/demo.sh`` (sets up .venv first) or ``python examples/demo.py DIR``.
Every step is a command a user types; the sample data is in ``examples/sample``: photos of
cats and dogs (PNG), sensor readings (CSV), embeddings and labels (npy/npz).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np

H5VC = [sys.executable, "-m", "h5vc"]
SAMPLE = Path(__file__).resolve().parent / "sample"


def run(*args: str, cwd: Path) -> None:
    print(f"\n$ h5vc {' '.join(args)}", flush=True)
    subprocess.run([*H5VC, *args], cwd=cwd, check=True)


def main(folder: str = "demo") -> None:
    work = Path(folder).resolve()
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(SAMPLE, work)
    run("init", "data.h5", cwd=work)
    run("add", "photos", "--to", "/train", "-m", "photos of cats and dogs", cwd=work)
    run("add", "readings.csv", "--to", "/sensors", "--category-column", "site",
        "--attr", "source=lab2", "-m", "sensor readings", cwd=work)
    run("add", "arrays", "--to", "/features", "-m", "embeddings and labels", cwd=work)
    run("add", "more_photos", "--to", "/train", "-m", "more photos", cwd=work)
    run("add", "photos", "--to", "/train", "-m", "again?", cwd=work)  # already imported: skipped

    print("\n# a user's own script changes the store with plain h5py", flush=True)
    with h5py.File(work / "data.h5", "a") as f:
        f["/train"].attrs["reviewed"] = True
        ds = f["/sensors/north/temperature"]
        ds.resize(ds.shape[0] + 1, axis=0)
        ds[-1] = 21.5
    run("status", cwd=work)
    run("commit", "-m", "review and one more reading", cwd=work)

    run("ls", "/", cwd=work)
    run("log", cwd=work)
    run("show", "HEAD~2", cwd=work)
    run("tag", "v1", "HEAD~3", cwd=work)
    run("checkout", "v1", cwd=work)
    with h5py.File(work / "data.h5", "r") as f:
        cats = f["/train/cat/images"].shape[0]
        print(f"# at v1 a plain h5py reader sees {cats} cat images and "
              f"{'no' if '/features' not in f else 'the'} /features group", flush=True)
    run("checkout", "main", cwd=work)
    with h5py.File(work / "data.h5", "r") as f:
        cats = f["/train/cat/images"].shape[0]
        emb = np.asarray(f["/features/embeddings"]).shape
        print(f"# back on main: {cats} cat images, embeddings {emb}", flush=True)
    run("log", "-n", "3", cwd=work)
    print(f"\nDemo store: {work / 'data.h5'}")


if __name__ == "__main__":
    main(*sys.argv[1:2])
