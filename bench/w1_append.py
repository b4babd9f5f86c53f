"""W1 — append commits: h5vc against raw h5py, measured interleaved in one run.

Each commit appends 1,000 rows of a (rows, 64) float32 array (256 KB) to a dataset chunked
(1000, 64). Four variants write the same random data, one commit of each in turn (the order
rotates every commit, so machine noise and ordering effects hit all four alike):

  a  raw h5py, file kept open:          resize + write + flush
  b  h5vc, Repository kept open:        one transaction per commit
  c  raw h5py, file opened per commit:  open 'a' + resize + write + close
  d  h5vc, Repository opened per commit: Repository.open + transaction + close
  e  the floor of (d) (info): plain h5py doing the least any store with its history inside
     the file must do per commit: open 'a', resize + write the rows, flush them (before the
     record that commits them), read the journal's last 60 bytes, append a 300-byte record
     to a journal dataset, close
  f  the floor of (b) (info): the same with the file kept open, and the record flushed too

Targets (docs/../BENCHMARKS.md): b/a and d/c <= 1.3x; h5vc flat (median of the last 10 commits
<= 1.2x the first 10); final file <= 1.01x the raw file.

    python bench/w1_append.py [--commits 200] [--rows 1000] [--repeat 3] [--profile]
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import emit_json, mean, median, ms, print_table, profile_h5vc, progress, ratio, verdict  # noqa: E402

from h5vc import Repository  # noqa: E402

COLS = 64
TARGET_RATIO = 1.3
TARGET_FLAT = 1.2
TARGET_SIZE = 1.01


def make_raw(path: Path, rows: int) -> None:
    with h5py.File(path, "w") as f:
        f.create_dataset("x", shape=(0, COLS), maxshape=(None, COLS), chunks=(rows, COLS),
                         dtype="f4")


def make_vc(path: Path, rows: int) -> None:
    with Repository.init(path) as repo, repo.transaction("create /x") as tx:
        tx.create_dataset("/x", shape=(0, COLS), maxshape=(None, COLS), chunks=(rows, COLS),
                          dtype="f4")


FRAME = np.frombuffer(b"r" * 300, dtype=np.uint8)


def make_floor(path: Path, rows: int) -> None:
    make_raw(path, rows)
    with h5py.File(path, "a") as f:
        f.create_group("meta").create_dataset("journal", shape=(0,), maxshape=(None,),
                                              chunks=(4096,), dtype=np.uint8)


def flatness(times: list[float], k: int = 10) -> float:
    k = max(1, min(k, len(times) // 2))
    return median(times[-k:]) / median(times[:k])


def run_once(tmp: Path, data: list[np.ndarray], rows: int) -> dict[str, object]:
    paths = {v: tmp / f"{v}.h5" for v in "abcdef"}
    make_floor(paths["e"], rows)
    make_floor(paths["f"], rows)
    for v in "ac":
        make_raw(paths[v], rows)
    for v in "bd":
        make_vc(paths[v], rows)

    fa = h5py.File(paths["a"], "a")
    da = fa["x"]
    repo_b = Repository.open(paths["b"])

    def step_a(i: int, arr: np.ndarray) -> None:
        n = da.shape[0]
        da.resize(n + arr.shape[0], axis=0)
        da[n:] = arr
        fa.flush()

    def step_b(i: int, arr: np.ndarray) -> None:
        with repo_b.transaction(f"append {i}") as tx:
            tx["/x"].append(arr)

    def step_c(i: int, arr: np.ndarray) -> None:
        with h5py.File(paths["c"], "a") as f:
            ds = f["x"]
            n = ds.shape[0]
            ds.resize(n + arr.shape[0], axis=0)
            ds[n:] = arr

    def step_d(i: int, arr: np.ndarray) -> None:
        with Repository.open(paths["d"]) as repo, repo.transaction(f"append {i}") as tx:
            tx["/x"].append(arr)

    def step_e(i: int, arr: np.ndarray) -> None:
        with h5py.File(paths["e"], "a") as f:
            ds = f["x"]
            n = ds.shape[0]
            ds.resize(n + arr.shape[0], axis=0)
            ds[n:] = arr
            f.flush()
            j = f["meta/journal"]
            m = j.shape[0]
            if m:
                j[m - 60:m]
            j.resize((m + FRAME.size,))
            j[m:] = FRAME

    ff = h5py.File(paths["f"], "a")
    fx, fj = ff["x"], ff["meta/journal"]

    def step_f(i: int, arr: np.ndarray) -> None:
        n = fx.shape[0]
        fx.resize(n + arr.shape[0], axis=0)
        fx[n:] = arr
        ff.flush()
        m = fj.shape[0]
        fj.resize((m + FRAME.size,))
        fj[m:] = FRAME
        ff.flush()

    steps: dict[str, Callable[[int, np.ndarray], None]] = {
        "a": step_a, "b": step_b, "c": step_c, "d": step_d, "e": step_e, "f": step_f}
    order = list("abcdef")
    times: dict[str, list[float]] = {v: [] for v in order}
    pc = time.perf_counter
    gc.collect()
    for i, arr in enumerate(data):
        rot = order[i % 6:] + order[:i % 6]
        for v in rot:
            t0 = pc()
            steps[v](i, arr)
            times[v].append(pc() - t0)
    fa.close()
    ff.close()
    repo_b.close()

    # the data must be identical on all four sides
    want = np.concatenate(data)
    with h5py.File(paths["a"], "r") as f:
        assert np.array_equal(f["x"][()], want), "raw (a) data differs"
    for v in "bcdef":
        with h5py.File(paths[v], "r") as f:
            assert np.array_equal(f["x"][()], want), f"variant {v} data differs from what was written"
    with Repository.open(paths["b"], mode="r") as repo:
        n_commits = sum(1 for _ in repo.log())
    assert n_commits == len(data) + 2, n_commits  # init + create + appends

    size = {v: os.path.getsize(paths[v]) for v in order}
    return {"times": times, "size": size}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--commits", type=int, default=200)
    ap.add_argument("--rows", type=int, default=1000, help="rows per commit (also the chunk rows)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--profile", action="store_true",
                    help="afterwards, profile h5vc variants b and d and print h5vc's hot spots")
    args = ap.parse_args()

    rng = np.random.default_rng(args.seed)
    data = [rng.random((args.rows, COLS), dtype=np.float32) for _ in range(args.commits)]
    tmp = Path(tempfile.mkdtemp(prefix="h5vc-w1-"))
    per_repeat = []
    try:
        for r in range(args.repeat):
            progress(f"W1 repeat {r + 1}/{args.repeat}: {args.commits} commits x 4 variants ...")
            rdir = tmp / f"r{r}"
            rdir.mkdir()
            res = run_once(rdir, data, args.rows)
            t, s = res["times"], res["size"]
            per_repeat.append({
                "median_ms": {v: 1e3 * median(t[v]) for v in t},
                "mean_ms": {v: 1e3 * mean(t[v]) for v in t},
                "ratio_b_a": median(t["b"]) / median(t["a"]),
                "ratio_d_c": median(t["d"]) / median(t["c"]),
                "ratio_e_c": median(t["e"]) / median(t["c"]),
                "ratio_d_e": median(t["d"]) / median(t["e"]),
                "ratio_f_a": median(t["f"]) / median(t["a"]),
                "ratio_b_f": median(t["b"]) / median(t["f"]),
                "mean_ratio_b_a": mean(t["b"]) / mean(t["a"]),
                "mean_ratio_d_c": mean(t["d"]) / mean(t["c"]),
                "flat": {v: flatness(t[v]) for v in t},
                "size": s,
                "size_b_a": s["b"] / s["a"],
                "size_d_c": s["d"] / s["c"],
            })
            shutil.rmtree(rdir)

        names = {"a": "raw h5py, file kept open", "b": "h5vc, repository kept open",
                 "c": "raw h5py, open/close per commit", "d": "h5vc, open/close per commit",
                 "e": "floor of (d): h5py, rows + flush + journal record",
                 "f": "floor of (b): the same, file kept open, record flushed"}
        print(f"\nW1 append: {args.commits} commits x {args.rows} rows x {COLS} float32 "
              f"({args.rows * COLS * 4 / 1000:.0f} kB/commit), {args.repeat} repeats, interleaved\n")
        rows = []
        for v in "abcdef":
            rows.append([v, names[v],
                         ms(median([p["median_ms"][v] for p in per_repeat]) / 1e3),
                         ms(median([p["mean_ms"][v] for p in per_repeat]) / 1e3),
                         ratio(median([p["flat"][v] for p in per_repeat])),
                         f"{per_repeat[-1]['size'][v] / 2**20:.2f} MiB"])
        print_table(["", "variant", "median/commit", "mean/commit", "last10/first10", "file"], rows)

        def med(key: str) -> float:
            return median([p[key] for p in per_repeat])

        fig = {
            "ratio_b_a": med("ratio_b_a"), "ratio_d_c": med("ratio_d_c"),
            "ratio_e_c": med("ratio_e_c"), "ratio_d_e": med("ratio_d_e"),
            "ratio_f_a": med("ratio_f_a"), "ratio_b_f": med("ratio_b_f"),
            "mean_ratio_b_a": med("mean_ratio_b_a"), "mean_ratio_d_c": med("mean_ratio_d_c"),
            "flat_b": median([p["flat"]["b"] for p in per_repeat]),
            "flat_d": median([p["flat"]["d"] for p in per_repeat]),
            "size_b_a": med("size_b_a"), "size_d_c": med("size_d_c"),
        }
        print("\nratios (median across repeats; per repeat in brackets)\n")
        checks = [
            ("(b)/(a) per-commit median, kept open", "ratio_b_a", TARGET_RATIO),
            ("(d)/(c) per-commit median, open per commit", "ratio_d_c", TARGET_RATIO),
            ("(b)/(a) per-commit mean", "mean_ratio_b_a", TARGET_RATIO),
            ("(d)/(c) per-commit mean", "mean_ratio_d_c", TARGET_RATIO),
        ]
        table = []
        for label, key, target in checks:
            each = ", ".join(f"{p[key]:.2f}" for p in per_repeat)
            table.append([label, ratio(fig[key]), f"[{each}]", f"<= {target}x",
                          verdict(fig[key], target)])
        for label, v in (("flatness h5vc (b): last 10 / first 10", "b"),
                         ("flatness h5vc (d): last 10 / first 10", "d")):
            each = ", ".join(f"{p['flat'][v]:.2f}" for p in per_repeat)
            table.append([label, ratio(fig[f"flat_{v}"]), f"[{each}]", f"<= {TARGET_FLAT}x",
                          verdict(fig[f"flat_{v}"], TARGET_FLAT)])
        # raw h5py is not perfectly flat either (page cache, file growth): the same measure
        # divided by its raw twin's shows what h5vc itself adds
        for label, key in (("(e)/(c) the floor of any in-file journal (info)", "ratio_e_c"),
                           ("(d)/(e) h5vc over that floor (info)", "ratio_d_e"),
                           ("(f)/(a) the floor with the file kept open (info)", "ratio_f_a"),
                           ("(b)/(f) h5vc over that floor (info)", "ratio_b_f")):
            each = ", ".join(f"{p[key]:.2f}" for p in per_repeat)
            table.append([label, ratio(fig[key]), f"[{each}]", "", ""])
        for label, v, w in (("flatness (b) / flatness (a) (info)", "b", "a"),
                            ("flatness (d) / flatness (c) (info)", "d", "c")):
            rel = [p["flat"][v] / p["flat"][w] for p in per_repeat]
            fig[f"flat_{v}_rel"] = median(rel)
            table.append([label, ratio(median(rel)), "[" + ", ".join(f"{x:.2f}" for x in rel) + "]",
                          "", ""])
        for label, key in (("file size (b)/(a)", "size_b_a"), ("file size (d)/(c)", "size_d_c")):
            each = ", ".join(f"{p[key]:.4f}" for p in per_repeat)
            table.append([label, f"{fig[key]:.4f}x", f"[{each}]", f"<= {TARGET_SIZE}x",
                          verdict(fig[key], TARGET_SIZE)])
        print_table(["measure", "value", "repeats", "target", ""], table)

        prof: dict[str, list[dict[str, object]]] = {}
        if args.profile:
            pdir = tmp / "profile"
            pdir.mkdir()
            make_vc(pdir / "b.h5", args.rows)
            make_vc(pdir / "d.h5", args.rows)

            def run_b() -> None:
                with Repository.open(pdir / "b.h5") as repo:
                    for i, arr in enumerate(data):
                        with repo.transaction(f"append {i}") as tx:
                            tx["/x"].append(arr)

            def run_d() -> None:
                for i, arr in enumerate(data):
                    with Repository.open(pdir / "d.h5") as repo, repo.transaction(f"a {i}") as tx:
                        tx["/x"].append(arr)

            prof["b"] = profile_h5vc(run_b, title=f"W1 (b) {args.commits} commits, repo kept open")
            prof["d"] = profile_h5vc(run_d, title=f"W1 (d) {args.commits} commits, open per commit")

        fig.update({
            "commits": args.commits, "rows": args.rows, "repeat": args.repeat,
            "median_ms": {v: median([p["median_ms"][v] for p in per_repeat]) for v in "abcdef"},
            "mean_ms": {v: median([p["mean_ms"][v] for p in per_repeat]) for v in "abcdef"},
            "file_bytes": per_repeat[-1]["size"],
            "per_repeat": [{k: p[k] for k in ("ratio_b_a", "ratio_d_c", "size_b_a", "size_d_c")}
                           for p in per_repeat],
        })
        if prof:
            fig["profile_top"] = {k: [{"func": r["func"], "share": round(float(r["share"]), 3)}
                                      for r in v[:8]] for k, v in prof.items()}
        emit_json("w1_append", fig)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
