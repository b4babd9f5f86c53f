"""`h5vc verify` on a large store against reading the file once with h5py, in the same run.

The store (default 1 GiB) holds --datasets float32 datasets of (rows, 256) in 1 MiB chunks,
committed, then a second commit rewrites a tenth of every dataset in place (so preserved
objects hold ~10% of the data) and appends as much again. Timed, alternating, page cache
warm for both:

- floor: plain h5py reading every dataset of the file, /.h5vc's packs included, once;
- `repo.verify()` in-process, and `h5vc verify` as a whole process, the latter also against a
  whole process that imports h5py and reads the file once (the floor a command can reach).

Target (issue #8): verify <= 1.5x the floor.
"""

from __future__ import annotations

import argparse
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


def build(path: Path, total_mib: int, datasets: int) -> None:
    rows_per = (total_mib << 20) // datasets // (256 * 4)
    chunk = (1 << 20) // (256 * 4)
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        for i in range(datasets):
            f.create_dataset(f"/d/{i}", data=rng.random((rows_per, 256), dtype=np.float32),
                             chunks=(chunk, 256), maxshape=(None, 256))
    with Repository.init(path, pointer=False) as repo:
        with repo.transaction("rewrite a tenth, append a tenth") as tx:
            for i in range(datasets):
                k = rows_per // 10
                tx[f"/d/{i}"][0:k] = rng.random((k, 256), dtype=np.float32)
                tx[f"/d/{i}"].append(rng.random((k, 256), dtype=np.float32))


def read_all(path: Path) -> int:
    n = 0
    with h5py.File(path, "r") as f:
        def visit(_name: str, obj: object) -> None:
            nonlocal n
            if isinstance(obj, h5py.Dataset) and obj.shape:
                for a in range(0, obj.shape[0], 4096):
                    n += obj[a:a + 4096].nbytes
        f.visititems(visit)
    return n


READ_SCRIPT = """
import sys, h5py
def visit(_name, obj):
    if isinstance(obj, h5py.Dataset) and obj.shape:
        for a in range(0, obj.shape[0], 4096):
            obj[a:a + 4096]
with h5py.File(sys.argv[1], "r") as f:
    f.visititems(visit)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mib", type=int, default=1024, help="size of the first commit's data")
    ap.add_argument("--datasets", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "big.h5"
        progress(f"building a {args.mib} MiB store")
        build(path, args.mib, args.datasets)
        size = path.stat().st_size

        def floor(_r: int) -> float:
            t = time.perf_counter()
            read_all(path)
            return time.perf_counter() - t

        def api(_r: int) -> float:
            t = time.perf_counter()
            with Repository.open(path, mode="r") as repo:
                rep = repo.verify()
            assert rep.ok, rep.problems
            return time.perf_counter() - t

        def floor_proc(_r: int) -> float:
            t = time.perf_counter()
            subprocess.run([sys.executable, "-c", READ_SCRIPT, str(path)], check=True)
            return time.perf_counter() - t

        def cli(_r: int) -> float:
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "h5vc", "verify", "-s", str(path)], check=True,
                           capture_output=True)
            return time.perf_counter() - t

        read_all(path)  # warm the page cache
        times = alternate(args.repeat, {"h5py read": floor, "verify (API)": api,
                                        "h5vc verify": cli, "h5py read process": floor_proc})
    f, a, c, fp = (median(times[k]) for k in ("h5py read", "verify (API)", "h5vc verify",
                                              "h5py read process"))
    print(f"\nstore: {size / 2**30:.2f} GiB, {args.datasets} datasets\n")
    print_table(["measure", "median", "ratio to h5py read", "target", ""],
                [["h5py reads the file once", ms(f), "1.00x", "", ""],
                 ["repo.verify()", ms(a), ratio(a / f), "<= 1.5x", verdict(a / f, 1.5)],
                 ["h5vc verify (whole process)", ms(c), ratio(c / f), "<= 1.5x", verdict(c / f, 1.5)],
                 ["python + h5py reading it once (whole process)", ms(fp), ratio(fp / f), "", ""],
                 ["h5vc verify / that process", "", ratio(c / fp), "<= 1.5x",
                  verdict(c / fp, 1.5)]])
    emit_json("verify", {"store_bytes": size, "h5py_read_s": f, "verify_api_s": a,
                         "verify_cli_s": c, "h5py_read_process_s": fp, "ratio_api": a / f,
                         "ratio_cli": c / f, "ratio_cli_process": c / fp})


if __name__ == "__main__":
    main()
