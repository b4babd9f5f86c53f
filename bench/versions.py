"""Reading versions without checkout (issue #10): h5vc against raw h5py in the same run.

  A  repo.at(rev) reading a whole dataset of --gib GiB (float32, 4 MiB chunks): rows live
     (the revision is HEAD's), then rows all preserved (HEAD rewrote every row since);
     floor: h5py reading the live dataset whole. Targets: <= 1.2x live, <= 2x preserved.
  B  1,000 single-image reads (128x128 RGB, one image per chunk, gzip 1) at an old revision
     whose images HEAD has half rewritten; floor: h5py reading the same rows of the live
     dataset. Target: <= 2x per read.
  C  `h5vc diff A B` between two commits 1,000 apart of a 10,000-commit store, as a whole
     process (median of --runs; bytecode cached, as an installed h5vc has it). Target: <= 0.5 s.
  D  `repo.export(rev, out, where=...)` of two categories (--export-mb MB in all) against h5py
     copying the same datasets (same chunks, the same block size). Target: <= 1.5x.
  E  Dask sum over --dask-gib GiB at an old revision, 2 worker processes
     (distributed.LocalCluster), against Dask over raw h5py datasets. Target: >= 0.8x speed.

Timings of A, B and D alternate h5vc and raw, --runs times, and report medians.

    python bench/versions.py [--gib 1] [--dask-gib 2] [--export-mb 500] [--runs 3]
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
from typing import Any

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import emit_json, median, ms, print_table, progress, ratio, verdict  # noqa: E402

from h5vc import Repository  # noqa: E402

pc = time.perf_counter
COLS = 1024
CHUNK = 1024  # rows: 4 MiB of float32


def fill(tx: Any, path: str, n: int, value: float | None = None) -> None:
    ds = tx.create_dataset(path, shape=(0, COLS), maxshape=(None, COLS), chunks=(CHUNK, COLS),
                           dtype="f4") if value is None else tx[path]
    rng = np.random.default_rng(1)
    for a in range(0, n, 16 * CHUNK):
        b = min(n, a + 16 * CHUNK)
        if value is None:
            ds.append(rng.random((b - a, COLS), dtype=np.float32))
        else:
            ds[a:b] = np.full((b - a, COLS), value, dtype=np.float32)


def build(path: Path, gib: float) -> tuple[int, str]:
    """A store whose /x holds ``gib`` GiB of float32 rows; (rows, the commit)."""
    n = int(gib * 2**30) // (4 * COLS)
    with Repository.init(path, pointer=False) as repo:
        with repo.transaction("data") as tx:
            fill(tx, "/x", n)
        return n, repo.head.id


def part_a(tmp: Path, gib: float, runs: int) -> dict[str, float]:
    path = tmp / "a.h5"
    progress(f"A: building {gib} GiB")
    n, v1 = build(path, gib)

    def raw() -> float:
        with h5py.File(path, "r") as f:
            t = pc()
            f["x"][()]
            return pc() - t

    def view(rev: str) -> float:
        with Repository.open(path, mode="r") as repo:
            ds = repo.at(rev)["/x"]
            t = pc()
            ds[()]
            return pc() - t

    out: dict[str, list[float]] = {"raw_live": [], "view_live": [], "raw_pres": [], "view_pres": []}
    for _ in range(runs):
        out["raw_live"].append(raw())
        out["view_live"].append(view(v1))
    progress("A: rewriting every row (the old rows are preserved)")
    with Repository.open(path) as repo, repo.transaction("rewrite") as tx:
        fill(tx, "/x", n, value=2.0)
    for _ in range(runs):
        out["raw_pres"].append(raw())
        out["view_pres"].append(view(v1))
    res = {k: median(v) for k, v in out.items()}
    path.unlink()
    return res


def part_b(tmp: Path, runs: int) -> dict[str, float]:
    path = tmp / "b.h5"
    n = 4000
    rng = np.random.default_rng(2)
    progress("B: building 4,000 images")
    with Repository.init(path, pointer=False) as repo:
        with repo.transaction("images") as tx:
            ds = tx.create_dataset("/cat/images", shape=(0, 128, 128, 3), maxshape=(None, 128, 128, 3),
                                   chunks=(1, 128, 128, 3), dtype="u1", compression="gzip",
                                   compression_opts=1)
            for _ in range(0, n, 500):
                ds.append(rng.integers(0, 255, (500, 128, 128, 3), dtype=np.uint8))
        v1 = repo.head.id
        with repo.transaction("rewrite half") as tx:
            for a in range(0, n, 1000):
                tx["/cat/images"][a:a + 500] = rng.integers(0, 255, (500, 128, 128, 3), dtype=np.uint8)
    idx = rng.integers(0, n, 1000)
    out: dict[str, list[float]] = {"raw": [], "view": []}
    for _ in range(runs):
        with h5py.File(path, "r") as f:
            d = f["cat/images"]
            t = pc()
            for i in idx:
                d[int(i)]
            out["raw"].append((pc() - t) / len(idx))
        with Repository.open(path, mode="r") as repo:
            v = repo.at(v1)["/cat/images"]
            t = pc()
            for i in idx:
                v[int(i)]
            out["view"].append((pc() - t) / len(idx))
    path.unlink()
    return {k: median(v) for k, v in out.items()}


def part_c(tmp: Path, runs: int) -> dict[str, float]:
    path = tmp / "c.h5"
    progress("C: building 10,000 commits")
    ids = []
    with Repository.init(path, pointer=False) as repo:
        with repo.transaction("datasets") as tx:
            for k in range(5):
                tx.create_dataset(f"/d{k}", shape=(0, 4), maxshape=(None, 4), chunks=(100, 4),
                                  dtype="f4")
        for i in range(10000):
            with repo.transaction(f"c{i}") as tx:
                tx[f"/d{i % 5}"].append(np.full((10, 4), i, dtype="f4"))
                if i % 10 == 0:
                    tx["/d0"].attrs["step"] = i
            ids.append(tx.commit.id)
    cmd = [sys.executable, "-m", "h5vc", "diff", ids[4000], ids[5000], "-s", str(path)]
    # bytecode cached (in the temp folder) as an installed h5vc has it; the warm-up writes it
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
    subprocess.run(cmd, check=True, capture_output=True, env=env)
    times = []
    for _ in range(runs):
        t = pc()
        r = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
        times.append(pc() - t)
    assert "+ rows" in r.stdout, r.stdout
    floor = []
    for _ in range(runs):
        t = pc()
        subprocess.run([sys.executable, "-c", "import h5py"], check=True, env=env)
        floor.append(pc() - t)
    path.unlink()
    return {"diff": median(times), "import_h5py": median(floor)}


def part_d(tmp: Path, mb: int, runs: int) -> dict[str, float]:
    path = tmp / "d.h5"
    per = max(16, int(mb * 2**20 / 2 / (128 * 128 * 3)))
    rng = np.random.default_rng(3)
    progress(f"D: building two categories of {per:,} images")
    with Repository.init(path, pointer=False) as repo:
        with repo.transaction("categories") as tx:
            for name, kind in (("a", "x"), ("b", "x"), ("c", "y")):
                g = tx.create_group(f"/cats/{name}")
                g.attrs["kind"] = kind
                ds = g.create_dataset("images", shape=(0, 128, 128, 3), maxshape=(None, 128, 128, 3),
                                      chunks=(16, 128, 128, 3), dtype="u1")
                for a in range(0, per if kind == "x" else 64, 512):
                    k = min(512, (per if kind == "x" else 64) - a)
                    ds.append(rng.integers(0, 255, (k, 128, 128, 3), dtype=np.uint8))
        v1 = repo.head.id

    def raw() -> float:
        out = tmp / "raw.h5"
        t = pc()
        with h5py.File(path, "r") as src, h5py.File(out, "w") as dst:
            for name in ("a", "b"):
                s = src[f"cats/{name}/images"]
                d = dst.create_dataset(f"cats/{name}/images", shape=s.shape, maxshape=s.maxshape,
                                       chunks=s.chunks, dtype=s.dtype)
                step = max(s.chunks[0], (64 << 20) // (128 * 128 * 3) // s.chunks[0] * s.chunks[0])
                for a in range(0, s.shape[0], step):
                    d[a:a + step] = s[a:a + step]
        dt = pc() - t
        out.unlink()
        return dt

    def vc() -> float:
        out = tmp / "exp.h5"
        with Repository.open(path, mode="r") as repo:
            t = pc()
            repo.export(v1, out, where=["kind=x"])
            dt = pc() - t
        out.unlink()
        return dt

    times: dict[str, list[float]] = {"raw": [], "export": []}
    for _ in range(runs):
        times["raw"].append(raw())
        times["export"].append(vc())
    path.unlink()
    return {k: median(v) for k, v in times.items()} | {"mb": 2 * per * 128 * 128 * 3 / 2**20}


class RawRows:
    """An h5py dataset that pickles as (file, name) and opens the file where it is read: what
    raw h5py needs to be a Dask source on worker processes."""

    def __init__(self, path: str, name: str) -> None:
        self.path, self.name = path, name
        with h5py.File(path, "r") as f:
            ds = f[name]
            self.shape, self.dtype, self.chunks, self.ndim = ds.shape, ds.dtype, ds.chunks, ds.ndim

    def __getitem__(self, key: Any) -> np.ndarray:
        with h5py.File(self.path, "r") as f:
            return f[self.name][key]


def part_e(tmp: Path, gib: float, runs: int) -> dict[str, float]:
    import dask.array as da
    from distributed import Client, LocalCluster

    path = tmp / "e.h5"
    progress(f"E: building {gib} GiB, then rewriting a quarter")
    n, v1 = build(path, gib)
    with Repository.open(path) as repo:
        with repo.transaction("rewrite a quarter") as tx:
            tx_ds = tx["/x"]
            for a in range(0, n // 4, 16 * CHUNK):
                tx_ds[a:min(n // 4, a + 16 * CHUNK)] = 0.5
    out: dict[str, list[float]] = {"raw": [], "view": []}
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        raw_src = RawRows(str(path), "x")
        with Repository.open(path, mode="r") as repo:
            view_src = repo.at(v1)["/x"]
            for _ in range(runs):
                for key, src in (("raw", raw_src), ("view", view_src)):
                    arr = da.from_array(src, chunks=(4 * CHUNK, COLS))
                    t = pc()
                    client.compute(arr.sum(dtype=np.float64)).result()
                    out[key].append(pc() - t)
    path.unlink()
    return {k: median(v) for k, v in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gib", type=float, default=1.0)
    ap.add_argument("--dask-gib", type=float, default=2.0)
    ap.add_argument("--export-mb", type=int, default=500)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--parts", default="ABCDE")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="h5vc-versions-"))
    fig: dict[str, Any] = {}
    rows = []
    try:
        if "A" in args.parts:
            a = part_a(tmp, args.gib, args.runs)
            fig["A"] = a
            rows.append([f"A at(rev) read of {args.gib} GiB, rows live", ms(a["view_live"]),
                         ms(a["raw_live"]), ratio(a["view_live"] / a["raw_live"]), "<= 1.2x",
                         verdict(a["view_live"] / a["raw_live"], 1.2)])
            rows.append([f"A at(rev) read of {args.gib} GiB, rows preserved", ms(a["view_pres"]),
                         ms(a["raw_pres"]), ratio(a["view_pres"] / a["raw_pres"]), "<= 2x",
                         verdict(a["view_pres"] / a["raw_pres"], 2.0)])
        if "B" in args.parts:
            b = part_b(tmp, args.runs)
            fig["B"] = b
            rows.append(["B one image at an old revision (per read)", ms(b["view"]), ms(b["raw"]),
                         ratio(b["view"] / b["raw"]), "<= 2x", verdict(b["view"] / b["raw"], 2.0)])
        if "C" in args.parts:
            c = part_c(tmp, args.runs)
            fig["C"] = c
            rows.append(["C h5vc diff, commits 1,000 apart of 10,000 (process)", ms(c["diff"]),
                         ms(c["import_h5py"]) + " (import h5py)", "", "<= 0.5 s",
                         verdict(c["diff"], 0.5)])
        if "D" in args.parts:
            d = part_d(tmp, args.export_mb, args.runs)
            fig["D"] = d
            rows.append([f"D export of two categories ({d['mb']:.0f} MB)", ms(d["export"]),
                         ms(d["raw"]), ratio(d["export"] / d["raw"]), "<= 1.5x",
                         verdict(d["export"] / d["raw"], 1.5)])
        if "E" in args.parts:
            e = part_e(tmp, args.dask_gib, args.runs)
            fig["E"] = e
            speed = e["raw"] / e["view"]
            rows.append([f"E Dask sum of {args.dask_gib} GiB, 2 worker processes", ms(e["view"]),
                         ms(e["raw"]), f"{speed:.2f}x speed", ">= 0.8x",
                         "ok" if speed >= 0.8 else "MISS"])
        print()
        print_table(["workload", "h5vc", "raw h5py", "ratio", "target", ""], rows)
        emit_json("versions", fig | {"runs": args.runs, "gib": args.gib, "dask_gib": args.dask_gib})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
