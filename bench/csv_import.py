"""CSV import: `h5vc add file.csv` against pyarrow.csv read + h5py write of the same file.

Generates a CSV (--rows rows: an ISO timestamp, a site name, 6 float and 2 int columns), then
times, interleaved over --repeat rounds on fresh files:

  plain   pyarrow.csv.read_csv, then one chunked, gzip-1, resizable dataset per column
          (text as variable-length UTF-8), written with h5py
  h5vc    Repository.add([csv], to="/sensors") with the csv importer (streaming, provenance,
          one commit)

Target: h5vc throughput >= 0.8x plain (h5vc time <= 1.25x).

    python bench/csv_import.py [--rows 1000000] [--repeat 2]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import alternate, emit_json, median, ms, print_table, progress, ratio, timed_add, verdict  # noqa: E402

TARGET = 0.8


def make_csv(path: Path, rows: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    step = 100_000
    with path.open("w") as fh:
        fh.write("time,site,t1,t2,t3,t4,t5,t6,n1,n2\n")
        for a in range(0, rows, step):
            n = min(step, rows - a)
            t = np.datetime64("2026-01-01T00:00:00") + np.arange(a, a + n).astype("timedelta64[s]")
            site = np.array(["north", "south", "east", "west"])[rng.integers(0, 4, n)]
            f = rng.normal(20, 5, (n, 6)).round(3)
            i = rng.integers(0, 1000, (n, 2))
            lines = [f"{tt},{s},{','.join(map(str, ff))},{ii[0]},{ii[1]}"
                     for tt, s, ff, ii in zip(t.astype(str), site, f.tolist(), i.tolist(), strict=True)]
            fh.write("\n".join(lines) + "\n")


def plain(csv: Path, out: Path) -> float:
    import pyarrow.csv as pacsv

    t0 = time.perf_counter()
    table = pacsv.read_csv(csv)
    with h5py.File(out, "w") as f:
        g = f.create_group("sensors")
        for name in table.column_names:
            col = table.column(name)
            if col.type in ("string", "large_string") or str(col.type).startswith("timestamp"):
                data = np.array(col.cast("string").to_pylist(), dtype=object)
                dt = h5py.string_dtype()
            else:
                data = col.to_numpy()
                dt = data.dtype
            g.create_dataset(name, data=data, dtype=dt, chunks=True, maxshape=(None,),
                             compression="gzip", compression_opts=1)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="h5vc-csv-"))
    try:
        csv = tmp / "readings.csv"
        progress(f"generating {args.rows:,} rows ...")
        make_csv(csv, args.rows)
        mb = csv.stat().st_size / 2**20
        times = alternate(args.repeat, {"plain": lambda r: plain(csv, tmp / f"p{r}.h5"),
                                        "h5vc": lambda r: timed_add(csv, tmp / f"v{r}.h5", "/sensors")})
        p, v = times["plain"], times["h5vc"]
        with h5py.File(tmp / "p0.h5", "r") as a, h5py.File(tmp / "v0.h5", "r") as b:
            for name in ("t1", "n2"):
                assert np.array_equal(a[f"/sensors/{name}"][()], b[f"/sensors/{name}"][()])
        pm, vm = median(p), median(v)
        thr = pm / vm
        print(f"\nCSV import: {args.rows:,} rows, {mb:.0f} MiB, {args.repeat} rounds (median)\n")
        print_table(["", "time", "MiB/s", "throughput vs plain", "target", ""], [
            ["pyarrow.csv read + h5py write", ms(pm), f"{mb / pm:.0f}", "1.00x", "", ""],
            ["h5vc add (csv importer)", ms(vm), f"{mb / vm:.0f}", ratio(thr), f">= {TARGET}x",
             verdict(-thr, -TARGET)],
        ])
        emit_json("csv_import", {"rows": args.rows, "mib": mb, "plain_s": pm, "h5vc_s": vm,
                                 "throughput_ratio": thr})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
