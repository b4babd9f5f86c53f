"""Remotes on a local folder (issue #11): h5vc against copying the file, in the same run.

  A  `push` of a --gib GiB store (float32 rows of 4 KiB, 1 MiB chunks, 8 commits) to a new
     folder remote, against `cp` of the store file into the same folder. Target: <= 1.5x.
  B  `clone` of that remote into a new store, against `cp` of the file. Target: <= 1.5x.
  C  after a 1% append and its commit, `push`: bytes moved over the store's bytes.
     Target: <= 1.1% (DVC moves the whole file again: +100%).
  D  `h5vc push` with nothing to push, as a whole process (median of --runs).

A and B alternate with their `cp`, --runs times, and report medians. The files are in the
page cache for both (each was just written), so the figures compare the work, not the disk.

    python bench/remote.py [--gib 1] [--runs 3]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import emit_json, median, ms, print_table, progress, ratio, verdict  # noqa: E402

from h5vc import Repository  # noqa: E402
from h5vc.remote import clone, push  # noqa: E402

COLS = 1024  # float32: 4 KiB rows
CHUNK = 256  # 1 MiB chunks


def build(path: Path, gib: float, commits: int = 8) -> None:
    rows = int(gib * 2**30) // (COLS * 4)
    step = rows // commits
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        f.create_dataset("x", shape=(0, COLS), maxshape=(None, COLS), chunks=(CHUNK, COLS),
                         dtype="f4")
    with Repository.init(path, pointer=False) as repo:
        block = rng.random((step, COLS), dtype="f4")
        for i in range(commits):
            with repo.transaction(f"part {i}") as tx:
                tx["/x"].append(block + i)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gib", type=float, default=1.0)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="h5vc-bench-remote-"))
    try:
        store = work / "store.h5"
        progress(f"building a {args.gib} GiB store ...")
        build(store, args.gib)
        size = store.stat().st_size
        t = {"push": [], "cp_push": [], "clone": [], "cp_clone": []}
        remote = work / "remote"
        for i in range(args.runs):
            for what in ("cp", "push") if i % 2 == 0 else ("push", "cp"):
                out = work / f"r{i}"
                shutil.rmtree(out, ignore_errors=True)
                out.mkdir()
                t0 = time.perf_counter()
                if what == "cp":
                    subprocess.run(["cp", str(store), str(out / "copy.h5")], check=True)
                    t["cp_push"].append(time.perf_counter() - t0)
                else:
                    with Repository.open(store) as repo:
                        repo.set_remote("r", str(out / "remote"))
                        push(repo, "r")
                    t["push"].append(time.perf_counter() - t0)
                    shutil.rmtree(remote, ignore_errors=True)
                    (out / "remote").rename(remote)
                shutil.rmtree(out, ignore_errors=True)
            for what in ("cp", "clone") if i % 2 == 0 else ("clone", "cp"):
                dest = work / "clone.h5"
                dest.unlink(missing_ok=True)
                t0 = time.perf_counter()
                if what == "cp":
                    subprocess.run(["cp", str(store), str(dest)], check=True)
                    t["cp_clone"].append(time.perf_counter() - t0)
                else:
                    clone(str(remote), dest)
                    t["clone"].append(time.perf_counter() - t0)
                dest.unlink(missing_ok=True)
            progress(f"run {i + 1}/{args.runs}: push {ms(t['push'][-1])}, clone {ms(t['clone'][-1])}")

        with Repository.open(store) as repo:
            repo.set_remote("origin", str(remote), default=True)
            push(repo)  # up to date
            n = repo.file["x"].shape[0]
            with repo.transaction("1% more") as tx:
                tx["/x"].append(np.random.default_rng(1).random((n // 100, COLS), dtype="f4"))
            report = push(repo)
        grown = store.stat().st_size
        moved_share = report.bytes / grown

        idle = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "h5vc", "push", "-q", "-s", str(store)],
                           check=True, capture_output=True)
            idle.append(time.perf_counter() - t0)

        rp, rc = median(t["push"]) / median(t["cp_push"]), median(t["clone"]) / median(t["cp_clone"])
        print_table(["measure", "h5vc", "floor", "ratio", "target", ""], [
            [f"A push of {size / 2**30:.2f} GiB to a folder", ms(median(t["push"])),
             ms(median(t["cp_push"])) + " (cp)", ratio(rp), "<= 1.5x", verdict(rp, 1.5)],
            ["B clone from it", ms(median(t["clone"])), ms(median(t["cp_clone"])) + " (cp)",
             ratio(rc), "<= 1.5x", verdict(rc, 1.5)],
            ["C push after a 1% append", f"{report.bytes / 2**20:.1f} MiB",
             f"{grown / 2**20:.0f} MiB store", f"{moved_share * 100:.2f}%", "<= 1.1%",
             verdict(moved_share, 0.011)],
            ["D `h5vc push`, nothing to push (whole process)", ms(median(idle)), "", "",
             "(S3: <= 0.5 s)", ""],
        ])
        emit_json("remote", {"gib": args.gib, "runs": args.runs, "store_bytes": size,
                             "push_s": t["push"], "cp_push_s": t["cp_push"], "clone_s": t["clone"],
                             "cp_clone_s": t["cp_clone"], "ratio_push": rp, "ratio_clone": rc,
                             "append_push_bytes": report.bytes, "append_share": moved_share,
                             "idle_push_s": idle})
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
