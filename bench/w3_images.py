"""W3 — images: `h5vc add` of a folder of PNGs against a plain Pillow + h5py loop, same run.

Generates N RGB 128x128 PNGs that compress like photo crops (smooth colour fields plus
noise), in two category folders. Timed, interleaved over --repeat rounds on fresh stores:

  plain   single-threaded loop: Image.open + np.asarray, then append to an h5py dataset
          (chunks of one image, gzip 1, resizable), in batches of 64, flush at the end
  h5vc    Repository.add(folder, to="/train") with the images importer: parallel decode,
          one image per chunk, gzip 1, provenance, one commit

Peak memory: the same `h5vc add` run in a child process for 1,000 and for N files (the
child's ru_maxrss), to show that memory does not grow with the folder.

Random reads (the founding claim: a store serves single images faster than decoding the PNGs):
the folder is also imported with --compression blosc-zstd and blosc-lz4 (the gzip store is
the one above); then --reads distinct random images (the same ones for every variant) are
read one by one from each store (h5py, file opened once, `ds[i]`, HDF5's chunk cache off so
that every read decompresses its chunk, as random reads over a store larger than the cache
do) and decoded from their PNG files (Image.open + np.asarray, what the importer does), both
from the OS page cache, interleaved over --repeat rounds in rotating order. Reported: time
per image and speed against the PNG decode of the same round.
Targets: h5vc <= 1.0x plain; peak RSS for 1,000 vs 10,000 files nearly equal; a random read
from a blosc store >= 5x faster than decoding the PNG.

    python bench/w3_images.py [--files 10000] [--repeat 2] [--size 128] [--reads 2000]
"""

from __future__ import annotations

import argparse
import random
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
from _util import alternate, emit_json, median, ms, print_table, progress, ratio, timed_add, verdict  # noqa: E402

TARGET = 1.0
READ_TARGET = 5.0  # a random read from a blosc store vs decoding the PNG: at least this much faster
BLOSC = ("blosc-zstd", "blosc-lz4")


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


def add_with(folder: Path, store: Path, compression: str) -> float:
    """Seconds for ``repo.add([folder], to="/train", compression=...)`` into a new store."""
    from h5vc import Repository

    with Repository.init(store) as repo:
        t0 = time.perf_counter()
        repo.add([folder], to="/train", message="import", compression=compression)
        return time.perf_counter() - t0


def random_reads(folder: Path, stores: dict[str, Path], reads: int, repeat: int,
                 seed: int = 0) -> tuple[dict[str, list[float]], list[float], dict[str, tuple[int, ...]]]:
    """Seconds per random single-image read from each store, and per PNG decode of the same
    images; each round reads the same images, variants in rotating order."""
    from PIL import Image

    files = {name: h5py.File(path, "r", rdcc_nbytes=0) for name, path in stores.items()}
    try:
        first = next(iter(files.values()))
        cats = sorted(k for k in first["/train"].keys() if not k.startswith("_"))
        names = {c: [n.decode() if isinstance(n, bytes) else n for n in first[f"/train/{c}/names"][()]]
                 for c in cats}
        for f in files.values():  # every store holds the same images in the same order
            for c in cats:
                got = [n.decode() if isinstance(n, bytes) else n for n in f[f"/train/{c}/names"][()]]
                assert got == names[c]
        rng = random.Random(seed)
        pool = [(c, i) for c in cats for i in range(len(names[c]))]
        picks = rng.sample(pool, min(reads, len(pool)))
        reads = len(picks)
        pngs = [folder.parent / names[c][i] for c, i in picks]
        dsets = {name: {c: f[f"/train/{c}/images"] for c in cats} for name, f in files.items()}
        chunks = {name: d[cats[0]].chunks for name, d in dsets.items()}

        def png_round() -> float:
            t0 = time.perf_counter()
            for p in pngs:
                with Image.open(p) as im:
                    np.asarray(im)
            return (time.perf_counter() - t0) / reads

        def store_round(name: str) -> float:
            ds = dsets[name]
            t0 = time.perf_counter()
            for c, i in picks:
                ds[c][i]
            return (time.perf_counter() - t0) / reads

        for c, i in picks[:20]:  # the stores hold exactly the decoded PNGs
            with Image.open(folder.parent / names[c][i]) as im:
                want = np.asarray(im)
            for d in dsets.values():
                assert np.array_equal(d[c][i], want)
        png_round()  # warm-up: page cache, codecs
        for name in stores:
            store_round(name)
        runs: dict[str, Any] = {"png": lambda _r: png_round()}
        runs.update({name: (lambda _r, n=name: store_round(n)) for name in stores})
        times = alternate(repeat, runs)
        png = times.pop("png")
        return times, png, chunks
    finally:
        for f in files.values():
            f.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=10000)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--reads", type=int, default=2000, help="random single-image reads per round")
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
        try:
            import hdf5plugin  # noqa: F401  - registers the blosc filter with HDF5 for reading
            blosc = BLOSC
        except ImportError:
            progress("hdf5plugin is not installed: the blosc stores are left out")
            blosc = ()
        writes: dict[str, float] = {}
        stores = {"gzip": tmp / "h5vc0.h5"}
        for comp in blosc:
            progress(f"h5vc add --compression {comp} ...")
            stores[comp] = tmp / f"{comp}.h5"
            writes[comp] = add_with(big, stores[comp], comp)
        progress(f"random reads: {args.reads} images, {args.repeat} rounds ...")
        reads, png, chunks = random_reads(big, stores, args.reads, args.repeat)
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
        pt = median(png)
        speed = {name: pt / median(t) for name, t in reads.items()}
        print(f"\nrandom single-image reads: {args.reads} images, {args.repeat} rounds (median); "
              "speed = PNG decode time / store read time, same images, same rounds\n")
        rows = [["PNG file: Image.open + np.asarray", "", "", f"{pt * 1e3:.3f} ms", "1.00x", "", ""]]
        for name, t in reads.items():
            size = stores[name].stat().st_size
            wt = ms(writes[name]) if name in writes else ms(vm)
            target = f">= {READ_TARGET:.0f}x" if name in BLOSC else ""
            ok = ("ok" if speed[name] >= READ_TARGET else "MISS") if name in BLOSC else ""
            rows.append([f"store, --compression {name}, chunks {chunks[name]}", wt,
                         f"{size / png_bytes:.2f}", f"{median(t) * 1e3:.3f} ms",
                         f"{speed[name]:.2f}x faster", target, ok])
        print_table(["read one image from", "add", "size vs PNG", "per image", "speed", "target", ""],
                    rows)
        print(f"peak RSS of `add`: {rss_small / 2**20:.0f} MiB for {min(1000, args.files)} files, "
              f"{rss_big / 2**20:.0f} MiB for {args.files} files ({rss_big / rss_small:.2f}x)")
        emit_json("w3_images", {"files": args.files, "plain_s": pm, "h5vc_s": vm, "ratio": vm / pm,
                                "rss_small": rss_small, "rss_big": rss_big,
                                "store_bytes": size_vc, "png_bytes": png_bytes,
                                "png_decode_s": pt,
                                "random_read_s": {n: median(t) for n, t in reads.items()},
                                "random_read_speedup": speed,
                                "add_s": {"gzip": vm, **writes},
                                "store_bytes_by_compression": {n: p.stat().st_size
                                                               for n, p in stores.items()}})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

