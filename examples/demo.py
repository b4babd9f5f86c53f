"""The h5vc demo: import bundled sample data by category and attribute, go back, come forward;
then keep data and code in step with git.

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


def git(*args: str, cwd: Path) -> None:
    print(f"\n$ git {' '.join(args)}", flush=True)
    subprocess.run(["git", *args], cwd=cwd, check=True)


def count_cats(store: Path) -> int:
    with h5py.File(store, "r") as f:
        return f["/train/cat/images"].shape[0] if "/train/cat/images" in f else 0


def git_part(work: Path) -> None:
    """Data + code in git: the store follows git checkouts through the pointer file."""
    print("\n# ---- data + code in git ----", flush=True)
    proj = work / "project"
    proj.mkdir()
    git("init", "-q", "-b", "main", cwd=proj)
    has_identity = subprocess.run(["git", "config", "user.name"], cwd=proj,
                                  capture_output=True).returncode == 0
    if not has_identity:  # a fresh machine: give this demo repository an identity of its own
        git("config", "user.name", "h5vc demo", cwd=proj)
        git("config", "user.email", "demo@example.org", cwd=proj)
    (proj / "train.py").write_text("import h5py\nprint(h5py.File('data.h5')['/train'])\n")
    run("init", "data.h5", cwd=proj)  # writes data.h5.h5vc, puts data.h5 in .gitignore
    run("hooks", "install", cwd=proj)
    run("add", str(work / "photos"), "--to", "/train", "-m", "photos", cwd=proj)
    git("add", "train.py", "data.h5.h5vc", ".gitignore", cwd=proj)
    git("commit", "-q", "-m", "train on the first photos", cwd=proj)
    git("checkout", "-q", "-b", "more-data", cwd=proj)
    run("add", str(work / "more_photos"), "--to", "/train", "-m", "more photos", cwd=proj)
    git("commit", "-q", "-am", "train on more photos", cwd=proj)
    more = count_cats(proj / "data.h5")
    git("checkout", "-q", "main", cwd=proj)
    print(f"# on git branch main the store holds {count_cats(proj / 'data.h5')} cat images "
          f"(more-data: {more})", flush=True)
    git("checkout", "-q", "more-data", cwd=proj)
    print(f"# back on more-data: {count_cats(proj / 'data.h5')} cat images", flush=True)
    run("hooks", "status", cwd=proj)
    git("log", "--oneline", "--", "data.h5.h5vc", cwd=proj)


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
    git_part(work)
    print(f"\nDemo stores: {work / 'data.h5'}, {work / 'project' / 'data.h5'} (a git project)")


if __name__ == "__main__":
    main(*sys.argv[1:2])
