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
    for suffix in (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"):
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
        assert set(repo.file["/all"].keys()) == {"images", "names", "_h5vc_sources"}
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
