"""W2 — checkout: from HEAD of the W1 store to commit 100 and back, against raw h5py writes.

Builds the W1 store (200 append commits of 1,000 x 64 float32 rows, chunks (1000, 64)) with
one open Repository. "Commit 100" is the 100th append commit (the store then holds 100,000
rows), so going there and back differs by 100 commits x 1,000 rows. Timed, in this order:

  1. checkout(commit 100)   first trip: the 100,000 rows that leave are preserved
  2. checkout("main")       back: they are written again from the preserved objects
  3. checkout(commit 100)   second round trip: the objects are already preserved
  4. checkout("main")
  5. checkout("main")       no-op (HEAD already there), median of --noop runs

In the same run, the floor: raw h5py (file kept open) writing those 100,000 rows into a
chunked dataset, once as one resize + write + flush, and once as 100 appends of 1,000 rows,
each before and after the checkouts; the fastest of these is the floor.
Targets: each checkout <= 3x the raw write of the differing rows; no-op <= 50 ms.

    python bench/w2_checkout.py [--commits 200] [--to 100] [--repeat 3] [--profile]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import emit_json, median, ms, print_table, profile_h5vc, progress, ratio, verdict  # noqa: E402

from h5vc import Repository  # noqa: E402

COLS = 64
TARGET_RATIO = 3.0
TARGET_NOOP = 0.050


def build_store(path: Path, data: list[np.ndarray], rows: int) -> tuple[list[str], float]:
    """The W1 store; returns the ids of the append commits and the build time."""
    ids = []
    t0 = time.perf_counter()
    with Repository.init(path) as repo:
        with repo.transaction("create /x") as tx:
            tx.create_dataset("/x", shape=(0, COLS), maxshape=(None, COLS), chunks=(rows, COLS),
                              dtype="f4")
        for i, arr in enumerate(data):
            with repo.transaction(f"append {i + 1}") as tx:
                tx["/x"].append(arr)
            ids.append(tx.commit.id)
    return ids, time.perf_counter() - t0


def raw_write_once(path: Path, block: np.ndarray, rows: int) -> float:
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("x", shape=(0, COLS), maxshape=(None, COLS), chunks=(rows, COLS),
                              dtype="f4")
        f.flush()
        t0 = time.perf_counter()
        ds.resize(block.shape[0], axis=0)
        ds[:] = block
        f.flush()
        return time.perf_counter() - t0


def raw_write_appends(path: Path, parts: list[np.ndarray], rows: int) -> float:
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("x", shape=(0, COLS), maxshape=(None, COLS), chunks=(rows, COLS),
                              dtype="f4")
        f.flush()
        t0 = time.perf_counter()
        n = 0
        for arr in parts:
            ds.resize(n + arr.shape[0], axis=0)
            ds[n:] = arr
            n += arr.shape[0]
        f.flush()
        return time.perf_counter() - t0


def check(repo: Repository, want: np.ndarray, where: str) -> None:
    # read through a handle of its own: the repository's file, once handed out, makes the next
    # checkout rehash its rows (a write through it could have rewritten them in place)
    with h5py.File(repo.path, "r") as f:
        got = f["x"][()]
    assert got.shape == want.shape, f"{where}: shape {got.shape}, expected {want.shape}"
    assert np.array_equal(got, want), f"{where}: data differs from what was written"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--commits", type=int, default=200)
    ap.add_argument("--to", type=int, default=100, help="the append commit to check out")
    ap.add_argument("--rows", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--noop", type=int, default=5, help="no-op checkouts per repeat")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--profile", action="store_true",
                    help="afterwards, profile one round trip and print h5vc's hot spots")
    args = ap.parse_args()
    assert 0 < args.to < args.commits

    rng = np.random.default_rng(args.seed)
    data = [rng.random((args.rows, COLS), dtype=np.float32) for _ in range(args.commits)]
    full = np.concatenate(data)
    at_to = full[:args.to * args.rows]
    differing = data[args.to:]
    diff_block = np.concatenate(differing)
    tmp = Path(tempfile.mkdtemp(prefix="h5vc-w2-"))
    pc = time.perf_counter
    reps = []
    try:
        for r in range(args.repeat):
            progress(f"W2 repeat {r + 1}/{args.repeat}: building {args.commits} commits ...")
            store = tmp / f"store{r}.h5"
            ids, build = build_store(store, data, args.rows)
            size0 = os.path.getsize(store)
            t: dict[str, float] = {}
            # the floor is measured before and after the checkouts; the faster of each is kept
            raw_once = [raw_write_once(tmp / f"raw_once{r}a.h5", diff_block, args.rows)]
            raw_app = [raw_write_appends(tmp / f"raw_app{r}a.h5", differing, args.rows)]
            with Repository.open(store) as repo:
                target = ids[args.to - 1]
                t0 = pc()
                res1 = repo.checkout(target)
                t["to_1"] = pc() - t0
                check(repo, at_to, f"at commit {args.to}")
                t0 = pc()
                res2 = repo.checkout("main")
                t["back_1"] = pc() - t0
                check(repo, full, "back at main")
                t0 = pc()
                repo.checkout(target)
                t["to_2"] = pc() - t0
                t0 = pc()
                repo.checkout("main")
                t["back_2"] = pc() - t0
                check(repo, full, "back at main (second round trip)")
                assert repo.head.id == ids[-1] and repo.branch == "main"
                noops = []
                for _ in range(args.noop):
                    t0 = pc()
                    repo.checkout("main")
                    noops.append(pc() - t0)
                t["noop"] = median(noops)
                check(repo, full, "after no-op checkouts")
            raw_app.append(raw_write_appends(tmp / f"raw_app{r}b.h5", differing, args.rows))
            raw_once.append(raw_write_once(tmp / f"raw_once{r}b.h5", diff_block, args.rows))
            t["raw_once"], t["raw_appends"] = min(raw_once), min(raw_app)
            t["floor"] = min(t["raw_once"], t["raw_appends"])
            reps.append({"t": t, "build": build, "size0": size0, "size1": os.path.getsize(store),
                         "preserved": res1.report.rows_preserved,
                         "written": res2.report.rows_written})
            for p in tmp.iterdir():
                p.unlink()

        def med(k: str) -> float:
            return median([x["t"][k] for x in reps])

        n_rows = len(differing) * args.rows
        print(f"\nW2 checkout: store of {args.commits} commits x {args.rows} rows x {COLS} float32; "
              f"commit {args.to} <-> main differs by {n_rows:,} rows "
              f"({n_rows * COLS * 4 / 1e6:.1f} MB); {args.repeat} repeats (median)\n")
        floor = med("floor")
        rows = [
            ["raw h5py: write the differing rows, one write + flush", ms(med("raw_once")),
             ratio(med("raw_once") / floor), "", ""],
            [f"raw h5py: same rows as {len(differing)} appends + flush", ms(med("raw_appends")),
             ratio(med("raw_appends") / floor), "", ""],
            ["floor = the faster raw way (ratios below divide by it)", ms(floor), "1.00x", "", ""],
        ]
        fig: dict[str, object] = {"raw_once_ms": 1e3 * med("raw_once"),
                                  "raw_appends_ms": 1e3 * med("raw_appends"), "floor_ms": 1e3 * floor}
        for key, label in (("to_1", f"checkout commit {args.to} (first: preserves rows)"),
                           ("back_1", "checkout main (writes rows back)"),
                           ("to_2", f"checkout commit {args.to} (2nd round trip)"),
                           ("back_2", "checkout main (2nd round trip)")):
            v = med(key)
            rr = median([x["t"][key] / x["t"]["floor"] for x in reps])
            fig[f"{key}_ms"] = 1e3 * v
            fig[f"{key}_ratio"] = rr
            rows.append([label, ms(v), ratio(rr), f"<= {TARGET_RATIO:.0f}x", verdict(rr, TARGET_RATIO)])
        noop = med("noop")
        fig["noop_ms"] = 1e3 * noop
        rows.append(["no-op checkout main (at main already)", ms(noop), ratio(noop / floor),
                     "<= 50 ms", verdict(noop, TARGET_NOOP)])
        print_table(["operation", "time", "vs raw write", "target", ""], rows)
        size0 = reps[-1]["size0"]
        size1 = reps[-1]["size1"]
        print(f"\nrows preserved by the first checkout: {reps[-1]['preserved']:,}; rows written back: "
              f"{reps[-1]['written']:,}")
        print(f"store file: {size0 / 2**20:.1f} MiB after the build, {size1 / 2**20:.1f} MiB after the "
              f"round trips ({size1 / size0:.2f}x: the preserved rows stay as objects)")
        print(f"store build ({args.commits} commits, one open repository): "
              f"{median([x['build'] for x in reps]):.2f} s")
        fig.update({"commits": args.commits, "to": args.to, "rows": args.rows, "repeat": args.repeat,
                    "differing_rows": n_rows, "file_bytes_before": size0, "file_bytes_after": size1,
                    "build_s": median([x["build"] for x in reps])})

        if args.profile:
            store = tmp / "profile.h5"
            ids, _ = build_store(store, data, args.rows)
            with Repository.open(store) as repo:
                def trip() -> None:
                    repo.checkout(ids[args.to - 1])
                    repo.checkout("main")
                rows_p = profile_h5vc(trip, title="W2 first round trip")

                def noops() -> None:
                    for _ in range(20):
                        repo.checkout("main")
                profile_h5vc(noops, title="W2 20 no-op checkouts")
            fig["profile_top"] = [{"func": r["func"], "share": round(float(r["share"]), 3)}
                                  for r in rows_p[:8]]
        emit_json("w2_checkout", fig)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
