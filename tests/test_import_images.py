"""The images importer plugin (plugins/h5vc-images): real image files made with Pillow."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

PIL = pytest.importorskip("PIL")
h5vc_images = pytest.importorskip("h5vc_images")

from PIL import Image  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from h5vc import InvalidInputError, Repository  # noqa: E402
from h5vc.cli import app  # noqa: E402

runner = CliRunner()
RNG = np.random.default_rng(1234)


def h5vc(*args: str | Path):
    return runner.invoke(app, [str(a) for a in args])


def save(path: Path, arr: np.ndarray, **kw) -> np.ndarray:
    """Write ``arr`` as an image file; return what Pillow decodes from it (the expected row)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, **kw)
    with Image.open(path) as im:
        return np.asarray(im)


def rgb(h: int, w: int, c: int = 3) -> np.ndarray:
    return RNG.integers(0, 256, (h, w, c), dtype=np.uint8)


def names(ds: h5py.Dataset) -> list[str]:
    return [n.decode() if isinstance(n, bytes) else n for n in ds[()]]


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "s.h5"
    Repository.init(path).close()
    return path


@pytest.fixture
def pets(tmp_path: Path) -> dict[str, np.ndarray]:
    """train/cat (3 PNGs) and train/dog (2 PNGs), 12x10 RGB: {recorded path: pixels}."""
    out = {}
    for cat, n in (("cat", 3), ("dog", 2)):
        for i in range(n):
            out[f"train/{cat}/{i}.png"] = save(tmp_path / "train" / cat / f"{i}.png", rgb(10, 12))
    return out


def test_plugin_is_listed() -> None:
    r = h5vc("plugins")
    assert r.exit_code == 0, r.output
    line = next(ln for ln in r.output.splitlines() if ln.startswith("images"))
    for suffix in (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"):
        assert suffix in line
    assert "h5vc-images" in line


def test_categories_values_append_and_skip(tmp_path: Path, store: Path, pets) -> None:
    with Repository.open(store) as repo:
        res = repo.add([tmp_path / "train"], to="/train", message="pets")
        assert sorted(res.imported) == sorted(pets)
        f = repo.file
        for cat, n in (("cat", 3), ("dog", 2)):
            ds = f[f"/train/{cat}/images"]
            assert ds.shape == (n, 10, 12, 3) and ds.dtype == np.uint8
            assert ds.chunks == (1, 10, 12, 3)
            got = names(f[f"/train/{cat}/names"])
            assert got == [f"train/{cat}/{i}.png" for i in range(n)]
            assert h5py.check_string_dtype(f[f"/train/{cat}/names"].dtype).encoding == "utf-8"
            for i, rel in enumerate(got):
                np.testing.assert_array_equal(ds[i], pets[rel])  # PNG: lossless, exact
        first = repo.head.id

        # new files append; the old ones are skipped by provenance
        new = save(tmp_path / "train" / "cat" / "3.png", rgb(10, 12))
        res = repo.add([tmp_path / "train"], to="/train", message="one more cat")
        assert res.imported == ["train/cat/3.png"] and len(res.already) == 5
        assert repo.file["/train/cat/images"].shape == (4, 10, 12, 3)
        np.testing.assert_array_equal(repo.file["/train/cat/images"][3], new)
        np.testing.assert_array_equal(repo.file["/train/cat/images"][0], pets["train/cat/0.png"])
        assert names(repo.file["/train/cat/names"])[-1] == "train/cat/3.png"
        assert repo.head.id != first
        second = repo.head.id

    # re-adding the same folder: nothing new, no commit
    r = h5vc("add", tmp_path / "train", "--to", "/train", "-m", "again", "--store", store)
    assert r.exit_code == 0, r.output
    assert "nothing new to import" in r.stdout
    with Repository.open(store) as repo:
        assert repo.head.id == second and repo.status().clean


def test_many_images_are_appended_in_batches(tmp_path: Path, store: Path, monkeypatch) -> None:
    monkeypatch.setattr(h5vc_images, "BATCH_IMAGES", 4)
    want = {f"imgs/g/{i:02d}.png": save(tmp_path / "imgs" / "g" / f"{i:02d}.png", rgb(8, 8))
            for i in range(11)}
    with Repository.open(store) as repo:
        res = repo.add([tmp_path / "imgs"], to="/x", message="many")
        assert res.rows["/x/g/images"] == 11
        ds = repo.file["/x/g/images"]
        for i, rel in enumerate(names(repo.file["/x/g/names"])):
            np.testing.assert_array_equal(ds[i], want[rel])
        assert sorted(names(repo.file["/x/g/names"])) == sorted(want)


def test_mixed_sizes_fail_with_one_error_and_leave_store_unchanged(tmp_path: Path, store: Path,
                                                                    pets) -> None:
    save(tmp_path / "train" / "cat" / "big.png", rgb(20, 16))
    save(tmp_path / "train" / "cat" / "small.png", rgb(5, 7))
    with Repository.open(store) as repo:
        head = repo.head.id
    r = h5vc("add", tmp_path / "train", "--to", "/train", "-m", "mixed", "--store", store)
    assert r.exit_code == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "Traceback" not in r.output
    msg = lines[0]
    assert "train/cat/big.png is 16x20" in msg and "train/cat/small.png is 7x5" in msg
    assert "12x10" in msg  # the majority size
    assert "--resize" in msg and "--encoded" in msg
    with Repository.open(store) as repo:
        assert repo.head.id == head and repo.status().clean
        assert "/train" not in repo.file

    # --resize makes them fit
    r = h5vc("add", tmp_path / "train", "--to", "/train", "-m", "resized", "--resize", "16x16",
             "--store", store)
    assert r.exit_code == 0, r.output
    with Repository.open(store) as repo:
        assert repo.file["/train/cat/images"].shape == (5, 16, 16, 3)
        assert repo.file["/train/dog/images"].shape == (2, 16, 16, 3)
        i = names(repo.file["/train/cat/names"]).index("train/cat/big.png")
        with Image.open(tmp_path / "train" / "cat" / "big.png") as im:
            want = np.asarray(im.resize((16, 16), Image.Resampling.LANCZOS))
        np.testing.assert_array_equal(repo.file["/train/cat/images"][i], want)


def test_new_size_not_matching_the_stored_dataset(tmp_path: Path, store: Path) -> None:
    save(tmp_path / "a" / "1.png", rgb(8, 8))
    with Repository.open(store) as repo:
        repo.add([tmp_path / "a"], to="/a", message="8x8", options={"category_from": "none"})
        head = repo.head.id
        save(tmp_path / "a" / "2.png", rgb(9, 9))
        with pytest.raises(InvalidInputError, match="holds rows of"):
            repo.add([tmp_path / "a"], to="/a", message="9x9", options={"category_from": "none"})
        assert repo.head.id == head and repo.status().clean
        assert repo.file["/a/images"].shape == (1, 8, 8, 3)


def test_encoded_keeps_files_bit_exact(tmp_path: Path, store: Path) -> None:
    d = tmp_path / "mix" / "any"
    save(d / "a.png", rgb(8, 8))
    save(d / "b.jpg", rgb(16, 9), quality=80)
    save(d / "c.webp", rgb(5, 30, 4))
    save(d / "d.tif", rgb(12, 12))
    save(d / "e.bmp", RNG.integers(0, 256, (7, 3), dtype=np.uint8))
    r = h5vc("add", tmp_path / "mix", "--to", "/raw", "-m", "raw", "--encoded", "--store", store)
    assert r.exit_code == 0, r.output
    with Repository.open(store) as repo:
        ds = repo.file["/raw/any/images"]
        assert ds.shape == (5,) and h5py.check_vlen_dtype(ds.dtype) == np.uint8
        got = names(repo.file["/raw/any/names"])
        assert got == [f"mix/any/{n}" for n in ("a.png", "b.jpg", "c.webp", "d.tif", "e.bmp")]
        for i, rel in enumerate(got):
            assert ds[i].tobytes() == (tmp_path / rel).read_bytes()
        assert repo.status().clean


def test_formats_decode_like_pillow(tmp_path: Path, store: Path) -> None:
    d = tmp_path / "fmt"
    want = {
        "fmt/a.png": save(d / "a.png", rgb(9, 11)),
        "fmt/b.jpg": save(d / "b.jpg", rgb(9, 11), quality=90),
        "fmt/c.jpeg": save(d / "c.jpeg", rgb(9, 11)),
        "fmt/d.bmp": save(d / "d.bmp", rgb(9, 11)),
        "fmt/e.tif": save(d / "e.tif", rgb(9, 11)),
        "fmt/f.tiff": save(d / "f.tiff", rgb(9, 11), compression="tiff_lzw"),
        "fmt/g.webp": save(d / "g.webp", rgb(9, 11), lossless=True),
        "fmt/h.webp": save(d / "h.webp", rgb(9, 11), quality=50),
    }
    with Repository.open(store) as repo:
        res = repo.add([d], to="/f", message="formats")
        assert sorted(res.imported) == sorted(want)
        ds = repo.file["/f/images"]  # no sub-folders: no category group
        assert ds.shape == (8, 9, 11, 3)
        for i, rel in enumerate(names(repo.file["/f/names"])):
            np.testing.assert_array_equal(ds[i], want[rel])


def test_modes(tmp_path: Path, store: Path) -> None:
    gray = save(tmp_path / "m" / "gray" / "g.png", RNG.integers(0, 256, (6, 7), dtype=np.uint8))
    rgba = save(tmp_path / "m" / "rgba" / "a.png", rgb(6, 7, 4))
    deep = (RNG.integers(0, 65536, (6, 7))).astype(np.uint16)
    assert (save(tmp_path / "m" / "deep" / "d.png", deep) == deep).all()
    pal = Image.fromarray(rgb(6, 7)).quantize(8)
    bilevel = Image.fromarray(RNG.integers(0, 2, (6, 7), dtype=np.uint8) * 255).convert("1")
    la = Image.merge("LA", [Image.fromarray(RNG.integers(0, 256, (6, 7), dtype=np.uint8))
                            for _ in range(2)])
    for sub, im in (("pal", pal), ("bw", bilevel), ("la", la)):
        (tmp_path / "m" / sub).mkdir()
        im.save(tmp_path / "m" / sub / "x.png")
        with Image.open(tmp_path / "m" / sub / "x.png") as back:
            assert back.mode == im.mode
    with Repository.open(store) as repo:
        repo.add([tmp_path / "m"], to="/m", message="modes")
        f = repo.file
        assert f["/m/gray/images"].shape == (1, 6, 7) and f["/m/gray/images"].dtype == np.uint8
        np.testing.assert_array_equal(f["/m/gray/images"][0], gray)
        assert f["/m/rgba/images"].shape == (1, 6, 7, 4)
        np.testing.assert_array_equal(f["/m/rgba/images"][0], rgba)
        assert f["/m/deep/images"].dtype == np.uint16 and f["/m/deep/images"].shape == (1, 6, 7)
        np.testing.assert_array_equal(f["/m/deep/images"][0], deep)
        np.testing.assert_array_equal(f["/m/pal/images"][0], np.asarray(pal.convert("RGB")))
        np.testing.assert_array_equal(f["/m/bw/images"][0], np.asarray(bilevel.convert("L")))
        np.testing.assert_array_equal(f["/m/la/images"][0], np.asarray(la.convert("RGBA")))


def test_mixed_kinds_need_a_mode(tmp_path: Path, store: Path) -> None:
    save(tmp_path / "k" / "c.png", rgb(6, 6))
    g = save(tmp_path / "k" / "g.png", RNG.integers(0, 256, (6, 6), dtype=np.uint8))
    r = h5vc("add", tmp_path / "k", "--to", "/k", "-m", "kinds", "--store", store)
    assert r.exit_code == 1 and "k/g.png is 6x6 single-channel" in r.stderr and "mode=RGB" in r.stderr
    r = h5vc("add", tmp_path / "k", "--to", "/k", "-m", "kinds", "-o", "mode=RGB", "--store", store)
    assert r.exit_code == 0, r.output
    with Repository.open(store) as repo:
        np.testing.assert_array_equal(repo.file["/k/images"][1], np.stack([g] * 3, axis=-1))


def test_corrupt_and_truncated_files(tmp_path: Path, store: Path, pets) -> None:
    (tmp_path / "train" / "dog" / "junk.jpg").write_bytes(b"this is not a jpeg")
    full = (tmp_path / "train" / "cat" / "0.png").read_bytes()
    (tmp_path / "train" / "cat" / "cut.png").write_bytes(full[: len(full) // 2])
    with Repository.open(store) as repo:
        head = repo.head.id
    r = h5vc("add", tmp_path / "train", "--to", "/train", "-m", "bad", "--store", store)
    assert r.exit_code == 1 and r.stderr.startswith("Error: train/")
    assert "--skip-bad" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    with Repository.open(store) as repo:
        assert repo.head.id == head and repo.status().clean

    r = h5vc("add", tmp_path / "train", "--to", "/train", "-m", "good ones", "--skip-bad",
             "--store", store)
    assert r.exit_code == 0, r.output
    assert "skipped train/dog/junk.jpg: " in r.stderr and "skipped train/cat/cut.png: " in r.stderr
    assert "5 file(s)" in r.stdout
    with Repository.open(store) as repo:
        assert sorted(names(repo.file["/train/cat/names"])) == [f"train/cat/{i}.png" for i in range(3)]
        assert repo.file["/train/dog/images"].shape == (2, 10, 12, 3)


def test_category_from_none(tmp_path: Path, store: Path, pets) -> None:
    r = h5vc("add", tmp_path / "train", "--to", "/all", "-m", "flat", "--category-from", "none",
             "--store", store)
    assert r.exit_code == 0, r.output
    with Repository.open(store) as repo:
        assert set(repo.file["/all"].keys()) == {"images", "names"}
        ds = repo.file["/all/images"]
        assert ds.shape == (5, 10, 12, 3)
        for i, rel in enumerate(names(repo.file["/all/names"])):
            np.testing.assert_array_equal(ds[i], pets[rel])


def test_checkout_removes_and_restores(tmp_path: Path, store: Path, pets) -> None:
    with Repository.open(store) as repo:
        before = repo.head.id
        repo.add([tmp_path / "train"], to="/train", message="pets")
        after = repo.head.id
        kept = {c: repo.file[f"/train/{c}/images"][()] for c in ("cat", "dog")}
        repo.checkout(before)
        assert "/train" not in repo.file and repo.status().clean
        repo.checkout("main")
        assert repo.head.id == after and repo.status(verify=True).clean
        for c, arr in kept.items():
            np.testing.assert_array_equal(repo.file[f"/train/{c}/images"][()], arr)
        np.testing.assert_array_equal(repo.file["/train/cat/images"][1], pets["train/cat/1.png"])


def test_bad_options(tmp_path: Path, store: Path, pets) -> None:
    with Repository.open(store) as repo:
        with pytest.raises(InvalidInputError, match="mode="):
            repo.add([tmp_path / "train"], to="/t", message="m", options={"mode": "XYZ"})
        with pytest.raises(InvalidInputError, match="positive"):
            repo.add([tmp_path / "train"], to="/t", message="m", options={"resize": (0, 4)})
        assert repo.status().clean


# -- multi-frame files ---------------------------------------------------------------------


def save_frames(path: Path, frames: list[np.ndarray], **kw) -> list[np.ndarray]:
    """Write a multi-frame file (TIFF pages, GIF/WebP/PNG animation); return what Pillow
    decodes for each frame (converted as the importer stores it: palette frames to RGB/RGBA)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ims = [Image.fromarray(f) for f in frames]
    ims[0].save(path, save_all=True, append_images=ims[1:], **kw)
    return decoded_frames(path)


def decoded_frames(path: Path, mode: str | None = None) -> list[np.ndarray]:
    out = []
    with Image.open(path) as im:
        for i in range(im.n_frames):
            im.seek(i)
            fr = im.convert(mode or ("RGB" if im.mode == "P" else im.mode))
            out.append(np.asarray(fr))
    return out


def test_multipage_tiff_imports_every_page(tmp_path: Path, store: Path) -> None:
    d = tmp_path / "scope"
    pages = save_frames(d / "stack.tif", [rgb(10, 12) for _ in range(3)])
    single = save(d / "one.png", rgb(10, 12))
    lzw = save_frames(d / "z.tiff", [rgb(10, 12) for _ in range(2)], compression="tiff_lzw")
    r = h5vc("add", d, "--to", "/s", "-m", "stacks", "--store", store)
    assert r.exit_code == 0, r.output
    assert "3 file(s)" in r.stdout
    with Repository.open(store) as repo:
        got = names(repo.file["/s/names"])
        assert got == ["scope/one.png", "scope/stack.tif#0", "scope/stack.tif#1", "scope/stack.tif#2",
                       "scope/z.tiff#0", "scope/z.tiff#1"]
        ds = repo.file["/s/images"]
        assert ds.shape == (6, 10, 12, 3) and ds.chunks == (1, 10, 12, 3)
        for i, want in enumerate([single, *pages, *lzw]):
            np.testing.assert_array_equal(ds[i], want)
        prov = repo.sources("/s")["/s"]
        assert sorted(prov) == ["scope/one.png", "scope/stack.tif", "scope/z.tiff"]  # files, not frames
        assert repo.status().clean


def test_16bit_microscopy_stack(tmp_path: Path, store: Path) -> None:
    frames = [RNG.integers(0, 65536, (6, 5)).astype(np.uint16) for _ in range(4)]
    got = save_frames(tmp_path / "m" / "cells.tif", frames)
    for a, b in zip(got, frames, strict=True):
        np.testing.assert_array_equal(a, b)  # Pillow keeps 16-bit pages exactly
    with Repository.open(store) as repo:
        repo.add([tmp_path / "m"], to="/m", message="cells")
        ds = repo.file["/m/images"]
        assert ds.dtype == np.uint16 and ds.shape == (4, 6, 5)
        np.testing.assert_array_equal(ds[()], np.stack(frames))
        assert names(repo.file["/m/names"]) == [f"m/cells.tif#{i}" for i in range(4)]


def test_animated_gif_imports_every_frame(tmp_path: Path, store: Path) -> None:
    d = tmp_path / "anim"
    frames = save_frames(d / "opaque" / "run.gif", [rgb(10, 12) for _ in range(4)], duration=80, loop=0)
    assert len(frames) == 4 and all(f.shape == (10, 12, 3) for f in frames)
    still = save(d / "opaque" / "still.gif", rgb(10, 12))  # one frame: no #0
    # transparency: the first frame is a palette image with a transparent colour, the later
    # ones RGBA: all stored as RGBA
    ims = []
    for _ in range(3):
        px = rgb(10, 12)
        im = Image.fromarray(px)
        im.putalpha(Image.fromarray((RNG.integers(0, 2, (10, 12)) * 255).astype(np.uint8)))
        ims.append(im)
    (d / "clear").mkdir()
    ims[0].save(d / "clear" / "blink.gif", save_all=True, append_images=ims[1:], disposal=2)
    clear = decoded_frames(d / "clear" / "blink.gif", "RGBA")
    r = h5vc("add", d, "--to", "/a", "-m", "gifs", "--store", store)
    assert r.exit_code == 0, r.output
    with Repository.open(store) as repo:
        f = repo.file
        assert names(f["/a/opaque/names"]) == [*(f"anim/opaque/run.gif#{i}" for i in range(4)),
                                               "anim/opaque/still.gif"]
        ds = f["/a/opaque/images"]
        assert ds.shape == (5, 10, 12, 3)
        for i, want in enumerate(frames):
            np.testing.assert_array_equal(ds[i], want)
        with Image.open(d / "opaque" / "still.gif") as im:
            np.testing.assert_array_equal(ds[4], np.asarray(im.convert("RGB")))
        assert still.ndim == 2  # Pillow reads a one-frame GIF as a palette image
        assert f["/a/clear/images"].shape == (3, 10, 12, 4)
        for i, want in enumerate(clear):
            np.testing.assert_array_equal(f["/a/clear/images"][i], want)


def test_animated_webp_and_png(tmp_path: Path, store: Path) -> None:
    d = tmp_path / "anim"
    webp = save_frames(d / "a.webp", [rgb(8, 9) for _ in range(3)], lossless=True)
    apng = save_frames(d / "b.png", [rgb(8, 9) for _ in range(2)])
    with Repository.open(store) as repo:
        repo.add([d], to="/w", message="anim")
        assert names(repo.file["/w/names"]) == ["anim/a.webp#0", "anim/a.webp#1", "anim/a.webp#2",
                                                "anim/b.png#0", "anim/b.png#1"]
        for i, want in enumerate([*webp, *apng]):
            np.testing.assert_array_equal(repo.file["/w/images"][i], want)


def test_frames_of_another_size_follow_the_size_rule(tmp_path: Path, store: Path) -> None:
    d = tmp_path / "odd"
    ims = [Image.fromarray(rgb(10, 12)), Image.fromarray(rgb(4, 5)), Image.fromarray(rgb(10, 12))]
    d.mkdir()
    ims[0].save(d / "s.tif", save_all=True, append_images=ims[1:])
    save(d / "p.png", rgb(10, 12))
    with Repository.open(store) as repo:
        head = repo.head.id
    r = h5vc("add", d, "--to", "/o", "-m", "odd", "--store", store)
    assert r.exit_code == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: images of different sizes")
    assert "odd/s.tif#1 is 5x4 RGB" in lines[0] and "12x10 RGB, 3 of 4 images" in lines[0]
    assert "--resize" in lines[0] and "--encoded" in lines[0]
    with Repository.open(store) as repo:
        assert repo.head.id == head and repo.status().clean

    r = h5vc("add", d, "--to", "/o", "-m", "odd", "--resize", "12x10", "--store", store)
    assert r.exit_code == 0, r.output
    with Repository.open(store) as repo:
        ds = repo.file["/o/images"]
        assert ds.shape == (4, 10, 12, 3)
        assert names(repo.file["/o/names"])[2] == "odd/s.tif#1"
        np.testing.assert_array_equal(ds[2], np.asarray(ims[1].resize((12, 10), Image.Resampling.LANCZOS)))
        np.testing.assert_array_equal(ds[1], np.asarray(ims[0]))

    # and against an existing dataset: a stack of another size is refused like a file
    save_frames(tmp_path / "more" / "t.tif", [rgb(6, 6), rgb(6, 6)])
    with Repository.open(store) as repo, pytest.raises(InvalidInputError, match="holds rows of"):
        repo.add([tmp_path / "more"], to="/o", message="6x6")


def test_large_stack_in_parts_and_a_bad_page_is_taken_back(tmp_path: Path, store: Path,
                                                           monkeypatch) -> None:
    monkeypatch.setattr(h5vc_images, "BATCH_IMAGES", 2)
    monkeypatch.setattr(h5vc_images, "PART_BYTES", 1)  # one page per part
    d = tmp_path / "lab"
    a, b = save(d / "a.png", rgb(10, 12)), save(d / "b.png", rgb(10, 12))
    good = save_frames(d / "good.tif", [rgb(10, 12) for _ in range(5)], compression="tiff_adobe_deflate")
    save_frames(d / "s.tif", [rgb(10, 12) for _ in range(5)], compression="tiff_adobe_deflate")
    z = save(d / "z.png", rgb(10, 12))
    with Image.open(d / "s.tif") as im:  # break the pixels of page 3 (its header stays valid)
        im.seek(3)
        off, n = im.tag_v2[273][0], im.tag_v2[279][0]
    raw = bytearray((d / "s.tif").read_bytes())
    raw[off:off + n] = b"\xff" * n
    (d / "s.tif").write_bytes(bytes(raw))
    with Repository.open(store) as repo:
        head = repo.head.id
    r = h5vc("add", d, "--to", "/lab", "-m", "lab", "--store", store)
    assert r.exit_code == 1 and r.stderr.startswith("Error: lab/s.tif: cannot decode the image")
    assert len(r.stderr.strip().splitlines()) == 1 and "--skip-bad" in r.stderr
    with Repository.open(store) as repo:
        assert repo.head.id == head and repo.status().clean and "/lab" not in repo.file

    r = h5vc("add", d, "--to", "/lab", "-m", "lab", "--skip-bad", "--store", store)
    assert r.exit_code == 0, r.output
    assert "skipped lab/s.tif: cannot decode the image" in r.stderr
    with Repository.open(store) as repo:
        got = names(repo.file["/lab/names"])
        assert got == ["lab/a.png", "lab/b.png", *(f"lab/good.tif#{i}" for i in range(5)), "lab/z.png"]
        ds = repo.file["/lab/images"]
        assert ds.shape == (8, 10, 12, 3)  # the first pages of s.tif were written, then taken back
        for i, want in enumerate([a, b, *good, z]):
            np.testing.assert_array_equal(ds[i], want)
        prov = repo.sources("/lab")["/lab"]
        assert "lab/s.tif" not in prov and "lab/good.tif" in prov
        assert repo.status(verify=True).clean


def test_mpo_jpeg_gives_its_first_picture_and_says_so(tmp_path: Path, store: Path) -> None:
    d = tmp_path / "cam"
    d.mkdir()
    first, second = Image.fromarray(rgb(10, 12)), Image.fromarray(rgb(20, 24))
    first.save(d / "shot.jpg", format="MPO", save_all=True, append_images=[second], quality=95)
    with Image.open(d / "shot.jpg") as im:
        assert im.format == "MPO" and im.n_frames == 2
        want = np.asarray(im.convert("RGB"))
    r = h5vc("add", d, "--to", "/c", "-m", "cam", "--store", store)
    assert r.exit_code == 0, r.output
    notes = [ln for ln in r.stderr.splitlines() if ln.startswith("note: ")]
    assert len(notes) == 1 and "cam/shot.jpg" in notes[0] and "only the first picture" in notes[0]
    assert "--encoded" in notes[0]
    with Repository.open(store) as repo:
        assert names(repo.file["/c/names"]) == ["cam/shot.jpg"]
        np.testing.assert_array_equal(repo.file["/c/images"][0], want)


def test_encoded_keeps_a_stack_as_one_file(tmp_path: Path, store: Path) -> None:
    save_frames(tmp_path / "e" / "s.tif", [rgb(4, 4) for _ in range(3)])
    save_frames(tmp_path / "e" / "g.gif", [rgb(5, 4) for _ in range(2)])
    with Repository.open(store) as repo:
        repo.add([tmp_path / "e"], to="/e", message="raw", options={"encoded": True})
        assert names(repo.file["/e/names"]) == ["e/g.gif", "e/s.tif"]
        for i, n in enumerate(("g.gif", "s.tif")):
            assert repo.file["/e/images"][i].tobytes() == (tmp_path / "e" / n).read_bytes()
