"""W3 — images: `h5vc add` of a folder of PNGs against a plain Pillow + h5py loop, same run.

Generates N RGB 128x128 PNGs that compress like photo crops (smooth colour fields plus
noise), in two category folders. Timed, interleaved over --repeat rounds on fresh stores:

  plain   single-threaded loop: Image.open + np.asarray, then append to an h5py dataset
          (chunks of one image, gzip 1, resizable), in batches of 64, flush at the end
  h5vc    Repository.add(folder, to="/train") with the images importer: parallel decode,
          one image per chunk, gzip 1, provenance, one commit

Peak memory: the same `h5vc add` run in a child process for 1,000 and for N files (the
child's ru_maxrss), to show that memory does not grow with the folder.
Targets: h5vc <= 1.0x plain; peak RSS for 1,000 vs 10,000 files nearly equal.

    python bench/w3_images.py [--files 10000] [--repeat 2] [--size 128]
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
from _util import alternate, emit_json, median, ms, print_table, progress, ratio, timed_add, verdict  # noqa: E402

TARGET = 1.0


def make_images(folder: Path, n: int, size: int, seed: int = 0) -> None:
    from PIL import Image

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    for i in range(n):
        cat = folder / ("cat" if i % 2 == 0 else "dog")
        cat.mkdir(parents=True, exist_ok=True)
        a, b, c = rng.random(3) * 6
        base = np.stack([np.sin(a * xx + b * yy), np.cos(b * xx - c * yy), np.sin(c * (xx + yy))], -1)
        img = (127 + 100 * base + rng.normal(0, 6, base.shape)).clip(0, 255).astype(np.uint8)
        Image.fromarray(img).save(cat / f"{i:06d}.png")


def plain_loop(folder: Path, out: Path) -> float:
    """What a user writes without h5vc: decode one by one, append in batches of 64."""
    from PIL import Image

    t0 = time.perf_counter()
    with h5py.File(out, "w") as f:
        for cat in sorted(p for p in folder.iterdir() if p.is_dir()):
            files = sorted(cat.iterdir())
            first = np.asarray(Image.open(files[0]))
            ds = f.create_dataset(f"/train/{cat.name}/images", shape=(0, *first.shape),
                                  maxshape=(None, *first.shape), chunks=(1, *first.shape),
                                  dtype=np.uint8, compression="gzip", compression_opts=1)
            batch: list[np.ndarray] = []
            for p in files:
                with Image.open(p) as im:
                    batch.append(np.asarray(im.convert("RGB")))
                if len(batch) == 64:
                    n = ds.shape[0]
                    ds.resize(n + len(batch), axis=0)
                    ds[n:] = np.stack(batch)
                    batch = []
            if batch:
                n = ds.shape[0]
                ds.resize(n + len(batch), axis=0)
                ds[n:] = np.stack(batch)
        f.flush()
    return time.perf_counter() - t0


def child_peak_rss(folder: Path, store: Path) -> int:
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the forking parent
    code = ("import sys; from h5vc import Repository; "
            "r = Repository.init(sys.argv[2]); r.add([sys.argv[1]], to='/train', message='m'); "
            "r.close(); print([l.split()[1] for l in open('/proc/self/status') "
            "if l.startswith('VmHWM')][0])")
    out = subprocess.run([sys.executable, "-c", code, str(folder), str(store)],
                         capture_output=True, text=True, check=True)
    return int(out.stdout.strip()) * 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=10000)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--size", type=int, default=128)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="h5vc-w3-"))
    try:
        big, small = tmp / "big", tmp / "small"
        progress(f"generating {args.files} PNGs ...")
        make_images(big, args.files, args.size)
        make_images(small, min(1000, args.files), args.size, seed=1)
        png_bytes = sum(p.stat().st_size for p in big.rglob("*.png"))
        times = alternate(args.repeat, {"plain": lambda r: plain_loop(big, tmp / f"plain{r}.h5"),
                                        "h5vc": lambda r: timed_add(big, tmp / f"h5vc{r}.h5", "/train")})
        plain, vc = times["plain"], times["h5vc"]
        with h5py.File(tmp / "h5vc0.h5", "r") as a, h5py.File(tmp / "plain0.h5", "r") as b:
            for cat in ("cat", "dog"):
                assert np.array_equal(a[f"/train/{cat}/images"][()], b[f"/train/{cat}/images"][()])
        size_vc = (tmp / "h5vc0.h5").stat().st_size
        progress("peak memory in child processes ...")
        rss_small = child_peak_rss(small, tmp / "rss_small.h5")
        rss_big = child_peak_rss(big, tmp / "rss_big.h5")
        pm, vm = median(plain), median(vc)
        print(f"\nW3 images: {args.files} PNGs {args.size}x{args.size} RGB "
              f"({png_bytes / 2**20:.1f} MiB), {args.repeat} rounds (median)\n")
        print_table(["", "time", "per image", "vs plain", "target", ""], [
            ["plain Pillow decode + h5py append (1 thread)", ms(pm), f"{pm / args.files * 1e3:.3f} ms",
             "1.00x", "", ""],
            ["h5vc add (images importer)", ms(vm), f"{vm / args.files * 1e3:.3f} ms", ratio(vm / pm),
             f"<= {TARGET}x", verdict(vm / pm, TARGET)],
        ])
        print(f"\nstore size: {size_vc / 2**20:.1f} MiB ({size_vc / png_bytes:.2f}x the PNG folder)")
        print(f"peak RSS of `add`: {rss_small / 2**20:.0f} MiB for {min(1000, args.files)} files, "
              f"{rss_big / 2**20:.0f} MiB for {args.files} files ({rss_big / rss_small:.2f}x)")
        emit_json("w3_images", {"files": args.files, "plain_s": pm, "h5vc_s": vm, "ratio": vm / pm,
                                "rss_small": rss_small, "rss_big": rss_big,
                                "store_bytes": size_vc, "png_bytes": png_bytes})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

