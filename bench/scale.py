"""Scale: `h5vc init`, `status` and `commit` on stores of many datasets, as whole processes.

A store of --datasets datasets (default 1,000 and 10,000), in groups of three (``/cNNNN/a``,
``/b``, ``/c``: the per-subject layouts that make such stores common), each 10 rows of 4
float32 in chunks of 10 rows. Timed as separate processes (wall clock, median of --runs):

  h5vc init                            adopting the plain file (a fresh copy each run)
  h5vc status                          nothing changed since h5vc wrote the file
  h5vc status, after a plain h5py append of one row to one dataset (the file's seal is
                                       broken: committed rows are rehashed)
  h5vc commit of that append
  python: import h5py, open the file, visit every object (the floor of any full scan)

Targets (issue #9): status and commit (one dataset changed) <= 0.5 s at 10,000 datasets.

Python may cache bytecode (as an installed h5vc has it); --no-bytecode times every process
compiling h5vc's modules again, as an editable install under PYTHONDONTWRITEBYTECODE=1 does.

    python bench/scale.py [--datasets 1000 10000] [--runs 3] [--no-bytecode]
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
from _util import emit_json, median, ms, print_table, progress, verdict  # noqa: E402

TARGET = 0.5
H5VC = [sys.executable, "-m", "h5vc"]
FLOOR = """
import sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    f.visititems(lambda name, obj: None)
"""
APPEND = """
import sys, h5py
with h5py.File(sys.argv[1], "r+") as f:
    ds = f["/c0000/a"]
    n = ds.shape[0]
    ds.resize(n + 1, axis=0)
    ds[n] = 1.0
"""


def build(path: Path, n: int) -> None:
    row = np.arange(40, dtype="f4").reshape(10, 4)
    with h5py.File(path, "w") as f:
        for i in range(0, n, 3):
            g = f.create_group(f"c{i // 3:04d}")
            g.attrs["subject"] = i // 3
            for name in "abc"[: min(3, n - i)]:
                g.create_dataset(name, data=row, maxshape=(None, 4), chunks=(10, 4))


ENV = dict(os.environ)


def timed(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, env=ENV)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-bytecode", action="store_true",
                    help="time the commands as PYTHONDONTWRITEBYTECODE=1 runs them: every "
                         "module of an editable install compiled again by every process "
                         "(the default lets Python cache bytecode, as an installed h5vc has)")
    args = ap.parse_args()
    if args.no_bytecode:
        ENV["PYTHONDONTWRITEBYTECODE"] = "1"
    results = {}
    with tempfile.TemporaryDirectory() as d:
        if not args.no_bytecode:
            ENV.pop("PYTHONDONTWRITEBYTECODE", None)
            ENV["PYTHONPYCACHEPREFIX"] = str(Path(d) / "pycache")  # nothing next to the sources
            subprocess.run([*H5VC, "--help"], check=True, capture_output=True, env=ENV)
        for n in args.datasets:
            progress(f"{n:,} datasets: building")
            plain = Path(d) / f"plain{n}.h5"
            build(plain, n)
            t: dict[str, list[float]] = {k: [] for k in
                                         ("floor", "init", "status", "status_after", "commit")}
            for r in range(args.runs):
                progress(f"{n:,} datasets: run {r + 1}/{args.runs}")
                store = Path(d) / f"s{n}-{r}.h5"
                shutil.copyfile(plain, store)
                t["floor"].append(timed([sys.executable, "-c", FLOOR, str(store)]))
                t["init"].append(timed([*H5VC, "init", str(store), "-m", "adopt", "--no-pointer"]))
                t["status"].append(timed([*H5VC, "status", "-s", str(store)]))
                subprocess.run([sys.executable, "-c", APPEND, str(store)], check=True, env=ENV)
                t["status_after"].append(timed([*H5VC, "status", "-s", str(store)]))
                t["commit"].append(timed([*H5VC, "commit", "-s", str(store), "-m", "one row"]))
                store.unlink()
            results[n] = {k: median(v) for k, v in t.items()}
    rows = []
    for n, res in results.items():
        worst = max(res["status"], res["status_after"], res["commit"])
        rows.append([f"{n:,}", ms(res["floor"]), ms(res["init"]), ms(res["status"]),
                     ms(res["status_after"]), ms(res["commit"]),
                     verdict(worst, TARGET) if n == 10000 else ""])
    print()
    print_table(["datasets", "h5py open + visit", "init", "status (sealed)",
                 "status (after h5py append)", "commit (1 row)", "<= 0.5 s at 10,000"], rows)
    emit_json("scale", {"runs": args.runs, "bytecode": not args.no_bytecode,
                        "results": {str(n): res for n, res in results.items()}})


if __name__ == "__main__":
    main()
