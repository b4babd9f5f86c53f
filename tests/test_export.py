"""h5vc export: a selection of any revision, by path and by category attribute, as a plain
HDF5 file (read back with h5py and h5dump), a folder of .npy files, or image files."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

from h5vc import Repository

H5VC = [sys.executable, "-m", "h5vc"]


def h5vc(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    r = subprocess.run([*H5VC, *args], capture_output=True, text=True, cwd=cwd)
    assert "Traceback" not in r.stderr, r.stderr
    return r


def sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """Real PNGs imported by category (cat, dog) into /train, category attributes set, a
    compressed sensor table; tagged v1; then HEAD moves on (more images, an attribute
    changed, rows rewritten), so that v1 is read partly from preserved rows."""
    rng = np.random.default_rng(7)
    photos = tmp_path / "photos"
    for cat, n in (("cat", 4), ("dog", 3)):
        (photos / cat).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (16, 12, 3), dtype=np.uint8)).save(
                photos / cat / f"{cat}{i}.png")
    path = tmp_path / "data.h5"
    with Repository.init(path, pointer=False) as repo:
        repo.add([photos], to="/train", message="photos")
        with repo.transaction("categories") as tx:
            tx["/train/cat"].attrs["split"] = "train"
            tx["/train/cat"].attrs["label"] = 0
            tx["/train/dog"].attrs["split"] = "test"
            tx["/train/dog"].attrs["label"] = 1
            tx.create_dataset("/sensors/t", data=rng.random((500, 4)), maxshape=(None, 4),
                              chunks=(64, 4), compression="gzip")
            tx["/sensors"].attrs["site"] = "lab1"
        repo.create_tag("v1")
        with repo.transaction("later") as tx:
            tx["/train/cat"].attrs["split"] = "test"
            tx["/sensors/t"][0:100] = -1.0
            tx["/sensors/t"].append(np.zeros((10, 4)))
    return path


def test_h5_export_of_a_category_as_of_an_old_revision(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "train.h5"
    r = h5vc("export", "v1", str(out), "--where", "split=train", "-s", str(store))
    assert r.returncode == 0, r.stderr
    with Repository.open(store, mode="r") as repo:
        v1 = repo.at("v1")
        cid = v1.commit
        with h5py.File(out, "r") as f:
            names: list[str] = []
            f.visit(names.append)
            assert sorted(names) == ["train", "train/cat", "train/cat/images", "train/cat/names"]
            for p in ("/train/cat/images", "/train/cat/names"):
                src, got = v1[p], f[p]
                assert np.array_equal(np.asarray(got[()]), np.asarray(src[()]))
                assert got.chunks == src.chunks and got.compression == src.compression
                assert got.dtype == src.dtype
            assert dict(f["train/cat"].attrs) == {"split": "train", "label": 0}
            record = json.loads(f.attrs["h5vc_export"])
            assert record["commit"] == cid and record["where"] == ["split=train"]
            assert record["select"] == ["/"] and Path(record["source"]) == store
    d = subprocess.run(["h5dump", str(out)], capture_output=True, text=True)
    assert d.returncode == 0 and "train" in d.stdout, d.stderr


def test_select_and_preserved_rows(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "sensors.h5"
    with Repository.open(store, mode="r") as repo:
        rep = repo.export("v1", out, select=["/sensors/t"])
        want = repo.at("v1")["/sensors/t"][()]
    assert rep.paths == ["/sensors/t"] and rep.rows == 500
    with h5py.File(out, "r") as f:
        assert np.array_equal(f["sensors/t"][()], want) and f["sensors/t"].compression == "gzip"
        assert dict(f["sensors"].attrs) == {"site": "lab1"}  # the groups above keep theirs
        assert (want[:100] != -1.0).all()  # the rows HEAD rewrote, as v1 had them


def test_npy_and_images_exports(store: Path, tmp_path: Path) -> None:
    npy = tmp_path / "npy"
    r = h5vc("export", "v1", str(npy), "--format", "npy", "--select", "/train", "-s", str(store))
    assert r.returncode == 0, r.stderr
    with Repository.open(store, mode="r") as repo:
        v1 = repo.at("v1")
        for cat in ("cat", "dog"):
            assert np.array_equal(np.load(npy / "train" / cat / "images.npy"),
                                  v1[f"/train/{cat}/images"][()])
            names = np.load(npy / "train" / cat / "names.npy")
            assert [n.rsplit("/", 1)[-1] for n in names] == \
                [f"{cat}{i}.png" for i in range(len(names))]
        meta = json.loads((npy / "attributes.json").read_text())
        assert meta["attrs"]["/train/dog"] == {"label": 1, "split": "test"}
        pics = tmp_path / "pics"
        rep = repo.export("v1", pics, format="images", where=["label=1"])
        assert rep.files == 3
        for i in range(3):
            got = np.asarray(Image.open(pics / "train" / "dog" / f"dog{i}.png"))
            assert np.array_equal(got, v1["/train/dog/images"][i])
        assert not (pics / "train" / "cat").exists()


def test_bad_exports_change_nothing(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "x.h5"
    out.write_bytes(b"keep me")
    before = sha(store)
    cases = [
        (["export", "v1", str(out)], "--force"),
        (["export", "v1", str(tmp_path / "n.h5"), "--where", "split=nope"], "has split=nope"),
        (["export", "v1", str(tmp_path / "n.h5"), "--where", "split"], "ATTR=VALUE"),
        (["export", "v1", str(tmp_path / "n.h5"), "--select", "/nope"], "no /nope"),
        (["export", "v1", str(tmp_path / "n.h5"), "--format", "zip"], "choose one of"),
        (["export", "nope", str(tmp_path / "n.h5")], "unknown revision"),
        (["export", "v1", str(tmp_path / "no" / "n.h5")], "does not exist"),
        (["export", "v1", str(store)], "the store itself"),
        (["export", "v1", str(tmp_path / "p"), "--format", "images", "--select", "/sensors"],
         "no images"),
    ]
    for args, words in cases:
        r = h5vc(*args, "-s", str(store))
        assert r.returncode == 1 and words in r.stderr and len(r.stderr.strip().splitlines()) == 1, \
            (args, r.stderr)
    assert out.read_bytes() == b"keep me" and sha(store) == before
    assert sorted(p.name for p in tmp_path.iterdir() if ".h5vc-" not in p.name) == \
        ["data.h5", "photos", "x.h5"]
    r = h5vc("export", "v1", str(out), "--force", "-s", str(store))
    assert r.returncode == 0 and h5py.is_hdf5(out)


def test_names_that_would_escape_the_output_folder_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "hostile.h5"
    with h5py.File(path, "w") as f:
        up = f.create_group("..")  # HDF5 allows the name; as a folder it would leave OUT
        up.create_dataset("x", data=np.arange(3))
        up.create_dataset("images", data=np.zeros((1, 4, 4, 3), dtype=np.uint8))
        up.create_dataset("names", data=np.array(["a.png"], dtype=object), dtype=h5py.string_dtype())
    assert h5vc("init", str(path), "--no-pointer").returncode == 0
    (tmp_path / "out").mkdir()
    for fmt in ("npy", "images"):
        r = h5vc("export", "HEAD", str(tmp_path / "out" / fmt), "--format", fmt, "-s", str(path))
        assert r.returncode == 1 and "outside the output folder" in r.stderr, r.stderr
    # (beside the store: h5vc's writer lock and rollback journal, both kept)
    assert sorted(p.name for p in tmp_path.rglob("*") if ".h5vc-" not in p.name) == \
        ["hostile.h5", "out"]
    # the plain HDF5 export keeps the names as they are
    r = h5vc("export", "HEAD", str(tmp_path / "out" / "all.h5"), "-s", str(path))
    assert r.returncode == 0
    with h5py.File(tmp_path / "out" / "all.h5", "r") as f:
        assert f["../x"][()].tolist() == [0, 1, 2]


def test_image_names_with_folders_are_written_by_their_file_name(tmp_path: Path) -> None:
    path = tmp_path / "names.h5"
    with h5py.File(path, "w") as f:
        g = f.create_group("evil")
        g.create_dataset("images", data=np.full((2, 4, 4, 3), 9, dtype=np.uint8))
        g.create_dataset("names", data=np.array(["../../../pwn.png", "x/a.jpg"], dtype=object),
                         dtype=h5py.string_dtype())
    assert h5vc("init", str(path), "--no-pointer").returncode == 0
    r = h5vc("export", "HEAD", str(tmp_path / "pics"), "--format", "images", "-s", str(path))
    assert r.returncode == 0, r.stderr
    got = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.png"))
    assert got == ["pics/evil/a.jpg.png", "pics/evil/pwn.png"]  # decoded JPEG: kept lossless
    assert np.asarray(Image.open(tmp_path / "pics" / "evil" / "pwn.png")).tolist() == \
        np.full((4, 4, 3), 9).tolist()
