"""Provenance lives in /.h5vc: which files `h5vc add` imported, their size, hash and time.

It follows checkouts, skips files already imported, survives `add --no-commit` until the next
commit, and never shows among the user's datasets. A store written before (format 2, with
``_h5vc_sources`` datasets in the target groups; ``tests/data/format2-sources.h5``, made from
the files in ``tests/data/format2-sources/``) is read as it is, and its next import into a
group moves that group's rows into /.h5vc.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import xxhash
from PIL import Image

from h5vc import Repository
from h5vc.engine.format import META

H5VC = [sys.executable, "-m", "h5vc"]
DATA = Path(__file__).parent / "data"


def h5vc(*args: str | Path, ok: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run([*H5VC, *map(str, args)], capture_output=True, text=True)
    assert "Traceback" not in r.stderr, r.stderr
    if ok:
        assert r.returncode == 0, r.stderr
    return r


def user_names(path: Path) -> list[str]:
    with h5py.File(path, "r") as f:
        names: list[str] = []
        f.visit(lambda n: None if n.startswith(META) else names.append(n))
    return names


def photo(path: Path, seed: int, shape: tuple[int, ...] = (6, 5, 3)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8)).save(path)


def file_hash(path: Path) -> str:
    return xxhash.xxh3_128(path.read_bytes()).hexdigest()


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    root = tmp_path / "photos"
    for i in range(3):
        photo(root / "cat" / f"c{i}.png", i)
    photo(root / "dog" / "d0.png", 10)
    return root


def test_provenance_is_in_h5vc_and_follows_checkouts(tmp_path: Path, photos: Path) -> None:
    store = tmp_path / "s.h5"
    h5vc("init", store)
    h5vc("add", photos, "--to", "/train", "-m", "first", "-s", store)
    assert not [n for n in user_names(store) if "_h5vc_sources" in n]
    with Repository.open(store, mode="r") as r:
        prov = r.sources()["/train"]
    assert sorted(prov) == ["photos/cat/c0.png", "photos/cat/c1.png", "photos/cat/c2.png",
                            "photos/dog/d0.png"]
    p = prov["photos/cat/c1.png"]
    src = photos / "cat" / "c1.png"
    assert p.size == src.stat().st_size and p.hash == file_hash(src) and p.time
    # the CLI lists it
    out = h5vc("sources", "-s", store).stdout
    assert "photos/dog/d0.png" in out and file_hash(photos / "dog" / "d0.png")[:12] in out
    # a second batch: known files are skipped, the new one imported
    photo(photos / "dog" / "d1.png", 11)
    r = h5vc("add", photos, "--to", "/train", "-m", "second", "-s", store)
    assert r.stderr.count("already imported") == 4 and "1 file(s)" in r.stdout
    with Repository.open(store, mode="r") as repo:
        assert len(repo.sources()["/train"]) == 5
        assert len(repo.sources(rev="HEAD~1")["/train"]) == 4
        with h5py.File(store, "r") as f:
            assert f["/train/dog/names"].shape == (2,)
    # checkout follows: at the older commit, d1.png is not known, so it is imported again
    h5vc("checkout", "HEAD~1", "-s", store)
    with Repository.open(store, mode="r") as repo:
        assert "photos/dog/d1.png" not in repo.sources()["/train"]
    h5vc("checkout", "main", "-s", store)
    with Repository.open(store, mode="r") as repo:
        assert "photos/dog/d1.png" in repo.sources()["/train"]
    # a changed file is imported again, and its provenance updated
    photo(photos / "cat" / "c0.png", 99)
    h5vc("add", photos, "--to", "/train", "-m", "third", "-s", store)
    with Repository.open(store, mode="r") as repo:
        assert repo.sources()["/train"]["photos/cat/c0.png"].hash == file_hash(
            photos / "cat" / "c0.png")
    with h5py.File(store, "r") as f:
        assert f["/train/cat/names"].shape == (4,)
        assert int(f[META].attrs["format_version"]) == 3
    h5vc("verify", "-s", store)


def test_no_commit_keeps_provenance_for_the_next_commit(tmp_path: Path, photos: Path) -> None:
    store = tmp_path / "s.h5"
    h5vc("init", store)
    h5vc("add", photos, "--to", "/t", "--no-commit", "-s", store)
    with Repository.open(store, mode="r") as r:
        assert len(r.sources()["/t"]) == 4  # pending, listed at HEAD
        assert "/t" not in r.sources(rev="HEAD")
    again = h5vc("add", photos, "--to", "/t", "--no-commit", "-s", store)
    assert again.stderr.count("already imported") == 4  # nothing imported twice
    h5vc("commit", "-m", "photos", "-s", store)
    with Repository.open(store, mode="r") as r:
        assert len(r.sources(rev="HEAD")["/t"]) == 4
        assert r.status().clean
    with h5py.File(store, "r") as f:
        assert f["/t/cat/names"].shape == (3,)


def test_no_commit_then_checkout_force_drops_pending(tmp_path: Path, photos: Path) -> None:
    store = tmp_path / "s.h5"
    h5vc("init", store)
    h5vc("add", photos / "dog", "--to", "/t", "-m", "dogs", "-s", store)
    h5vc("add", photos / "cat", "--to", "/t", "--no-commit", "-s", store)
    h5vc("checkout", "--force", "HEAD", "-s", store)
    with Repository.open(store, mode="r") as r:
        assert sorted(r.sources()["/t"]) == ["dog/d0.png"]
    h5vc("add", photos / "cat", "--to", "/t", "-m", "cats", "-s", store)
    with h5py.File(store, "r") as f:
        assert f["/t/names"].shape == (4,)  # imported, not skipped as already known


def test_a_category_folder_may_be_named_like_the_old_dataset(tmp_path: Path) -> None:
    root = tmp_path / "cats"
    (root / "_h5vc_sources").mkdir(parents=True)
    np.save(root / "_h5vc_sources" / "b.npy", np.arange(3))
    store = tmp_path / "s.h5"
    h5vc("init", store)
    h5vc("add", root, "--to", "/c", "-m", "m", "-s", store)
    with h5py.File(store, "r") as f:
        assert f["/c/_h5vc_sources/b"][()].tolist() == [0, 1, 2]


@pytest.fixture
def old_store(tmp_path: Path) -> Path:
    p = tmp_path / "old.h5"
    shutil.copyfile(DATA / "format2-sources.h5", p)
    shutil.copytree(DATA / "format2-sources", tmp_path / "src")
    return p


def test_format2_provenance_is_read_as_it_is(old_store: Path) -> None:
    before = hashlib.sha256(old_store.read_bytes()).hexdigest()
    with Repository.open(old_store, mode="r") as r:
        prov = r.sources()
    assert sorted(prov["/train"]) == ["photos/cat/cat0.png", "photos/cat/cat1.png",
                                      "photos/dog/dog0.png", "photos/dog/dog1.png"]
    assert sorted(prov["/sensors"]) == ["readings.csv"]
    src = old_store.parent / "src"
    assert prov["/train"]["photos/cat/cat1.png"].hash == file_hash(src / "photos/cat/cat1.png")
    out = h5vc("sources", "-s", old_store).stdout
    assert "readings.csv" in out
    assert "nothing to commit" in h5vc("status", "-s", old_store).stdout
    assert hashlib.sha256(old_store.read_bytes()).hexdigest() == before
    with h5py.File(old_store, "r") as f:
        assert int(f[META].attrs["format_version"]) == 2


def test_format2_provenance_moves_into_h5vc_at_the_next_import(old_store: Path) -> None:
    src = old_store.parent / "src"
    photo(src / "photos" / "dog" / "dog2.png", 5, (8, 8, 3))
    r = h5vc("add", src / "photos", "--to", "/train", "-m", "more", "-s", old_store)
    assert r.stderr.count("already imported") == 4  # the four known photos are not imported again
    with h5py.File(old_store, "r") as f:
        assert "_h5vc_sources" not in f["/train"]  # moved into /.h5vc by this commit
        assert "_h5vc_sources" in f["/sensors"]  # not imported into since: read as it is
        assert f["/train/dog/names"].shape == (3,)
        assert int(f[META].attrs["format_version"]) == 3
    with Repository.open(old_store, mode="r") as repo:
        prov = repo.sources()
        assert len(prov["/train"]) == 5 and sorted(prov["/sensors"]) == ["readings.csv"]
        assert prov["/train"]["photos/cat/cat0.png"].time is None  # the old rows had none
        assert prov["/train"]["photos/dog/dog2.png"].time is not None
    # the older commits still hold their dataset: checked out, it comes back as it was
    h5vc("checkout", "HEAD~1", "-s", old_store)
    with h5py.File(old_store, "r") as f:
        assert f["/train/_h5vc_sources"].shape == (4,)
    h5vc("checkout", "main", "-s", old_store)
    h5vc("verify", "-s", old_store)
    # and an import of the same folder again finds everything known
    r = h5vc("add", src / "photos", "--to", "/train", "-m", "again", "-s", old_store, ok=False)
    assert r.stderr.count("already imported") == 5


@pytest.mark.parametrize("point", ["commit.before-frame", "commit.frame-written", "op.flushed"])
def test_an_import_into_existing_datasets_killed_is_all_or_nothing(tmp_path: Path, photos: Path,
                                                                  point: str) -> None:
    """A second import only appends to the datasets of the first: killed after its rows
    reached the file, the next command undoes it (or finds it committed), never leaves the
    rows as uncommitted changes."""
    import json
    import os
    import signal

    store = tmp_path / "s.h5"
    h5vc("init", store)
    h5vc("add", photos, "--to", "/train", "-m", "first", "-s", store)
    env = dict(os.environ, H5VC_CRASH_AT=point)
    r = subprocess.run([*H5VC, "add", str(photos), "--to", "/train", "--force", "-m", "again",
                        "-s", str(store)], capture_output=True, text=True, env=env)
    assert r.returncode == -signal.SIGKILL, (point, r.returncode, r.stderr)
    status = json.loads(h5vc("status", "--json", "-s", store).stdout)
    assert status["clean"], (point, status)
    with Repository.open(store, mode="r") as repo:
        n = len(list(repo.log()))
        with h5py.File(store, "r") as f:
            rows = f["/train/cat/names"].shape[0]
    assert (n, rows) in ((2, 3), (3, 6)), (point, n, rows)  # before, or the commit done
    h5vc("verify", "-s", store)
