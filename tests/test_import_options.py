"""`h5vc add` options that cut across importers: symbolic links and every --compression.

Real files throughout: PNG/TIFF written with Pillow, CSV text, .npy/.npz written with numpy.
The compression matrix runs each case in a child process (init, add, status, checkout back
and forth, and reading the data back with h5py), so that a filter crashing HDF5 (SIGFPE)
fails that test instead of killing pytest.
"""

from __future__ import annotations

import inspect
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

PIL = pytest.importorskip("PIL")
pytest.importorskip("h5vc_images")

from PIL import Image  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from h5vc import InvalidInputError, Repository  # noqa: E402
from h5vc.cli import app  # noqa: E402
from h5vc.importing import COMPRESSIONS, filters_for, run_import  # noqa: E402

runner = CliRunner()
RNG = np.random.default_rng(77)
SECRET = "TOP-SECRET-4711 root:x:0:0"  # the content of a file outside the folder

# Repository.add gains follow_symlinks in h5vc/repository.py; until then only run_import has it
ADD_FOLLOWS = "follow_symlinks" in inspect.signature(Repository.add).parameters
needs_add_follow = pytest.mark.skipif(not ADD_FOLLOWS, reason="Repository.add does not pass "
                                      "follow_symlinks through to run_import yet")


def h5vc(*args: str | Path):
    return runner.invoke(app, [str(a) for a in args])


def png(path: Path, arr: np.ndarray) -> np.ndarray:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    with Image.open(path) as im:
        return np.asarray(im)


def rgb(h: int = 10, w: int = 12) -> np.ndarray:
    return RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)


def names(ds: Any) -> list[str]:
    return [n.decode() if isinstance(n, bytes) else n for n in ds[()]]


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "s.h5"
    Repository.init(path).close()
    return path


# -- which files are opened ----------------------------------------------------------------

_OPENED: list[str] | None = None


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _OPENED is not None and event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        _OPENED.append(os.path.realpath(os.fsdecode(args[0])))


sys.addaudithook(_audit)


@pytest.fixture
def opened():
    """Real paths of every file Python opens during the test (audit hook on ``open``)."""
    global _OPENED
    _OPENED = []
    try:
        yield _OPENED
    finally:
        _OPENED = None


@pytest.fixture
def photos(tmp_path: Path) -> dict[str, Any]:
    """photos/cat/{0,1}.png, photos/dog/0.png, and outside/ (a folder beside photos) holding a
    secret text file named like an image and a real PNG in outside/more/."""
    want = {f"photos/cat/{i}.png": png(tmp_path / "photos" / "cat" / f"{i}.png", rgb()) for i in range(2)}
    want["photos/dog/0.png"] = png(tmp_path / "photos" / "dog" / "0.png", rgb())
    out = tmp_path / "outside"
    out.mkdir()
    (out / "secret.png").write_text(SECRET)
    ext = png(out / "more" / "e.png", rgb())
    return {"want": want, "outside": out, "ext": ext}


def assert_untouched(opened: list[str], *targets: Path | str) -> None:
    for t in targets:
        real = os.path.realpath(t)
        assert not [p for p in opened if p == real or p.startswith(real + os.sep)], f"{t} was opened"


# -- symbolic links ------------------------------------------------------------------------


def test_links_leading_outside_stop_the_import_unread(tmp_path: Path, store: Path, photos,
                                                      opened) -> None:
    cat = tmp_path / "photos" / "cat"
    (cat / "passwd.png").symlink_to("/etc/passwd")
    (cat / "secret.png").symlink_to(photos["outside"] / "secret.png")
    (tmp_path / "photos" / "ext").symlink_to(photos["outside"] / "more")
    with Repository.open(store) as repo:
        head = repo.head.id
    del opened[:]
    r = h5vc("add", tmp_path / "photos", "--to", "/train", "-m", "pets", "--store", store)
    assert r.exit_code == 1, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "Traceback" not in r.output
    msg = lines[0]
    for link in ("photos/cat/passwd.png", "photos/cat/secret.png", "photos/ext"):
        assert link in msg
    assert "/etc/passwd" in msg and "--follow-symlinks" in msg and "not read" in msg
    assert "TOP-SECRET" not in r.output and "root:" not in r.output
    assert_untouched(opened, "/etc/passwd", photos["outside"])
    with Repository.open(store) as repo:
        assert repo.head.id == head and repo.status().clean and "/train" not in repo.file


def test_one_link_outside_is_named_in_the_singular(tmp_path: Path, store: Path, photos) -> None:
    (tmp_path / "photos" / "cat" / "passwd.png").symlink_to("/etc/passwd")
    r = h5vc("add", tmp_path / "photos", "--to", "/t", "--store", store)
    assert r.exit_code == 1
    assert r.stderr.startswith("Error: a symbolic link leads outside the folder given: "
                               "photos/cat/passwd.png -> /etc/passwd; it was not read. Pass "
                               "--follow-symlinks")


def test_skip_bad_skips_links_outside_one_line_each(tmp_path: Path, store: Path, photos,
                                                    opened) -> None:
    cat = tmp_path / "photos" / "cat"
    (cat / "passwd.png").symlink_to("/etc/passwd")
    (cat / "secret.png").symlink_to(photos["outside"] / "secret.png")
    del opened[:]
    r = h5vc("add", tmp_path / "photos", "--to", "/train", "-m", "pets", "--skip-bad",
             "--store", store)
    assert r.exit_code == 0, r.output
    skipped = [ln for ln in r.stderr.splitlines() if ln.startswith("skipped ")]
    assert len(skipped) == 2
    assert skipped[0].startswith("skipped photos/cat/passwd.png: a symbolic link to /etc/passwd")
    assert skipped[1].startswith("skipped photos/cat/secret.png: a symbolic link to ")
    assert all("--follow-symlinks" in ln for ln in skipped)
    assert "TOP-SECRET" not in r.output and "root:" not in r.output
    assert_untouched(opened, "/etc/passwd", photos["outside"])
    with Repository.open(store) as repo:
        assert names(repo.file["/train/cat/names"]) == ["photos/cat/0.png", "photos/cat/1.png"]
        np.testing.assert_array_equal(repo.file["/train/cat/images"][1], photos["want"]["photos/cat/1.png"])
        assert repo.status().clean


def test_links_inside_the_folder_work_as_before(tmp_path: Path, store: Path, photos) -> None:
    root = tmp_path / "photos"
    (root / "cat" / "alias.png").symlink_to("0.png")  # relative, same folder
    (root / "dog" / "cat1.png").symlink_to(root / "cat" / "1.png")  # absolute, other sub-folder
    (root / "kitten").symlink_to("cat")  # a folder inside: its files are found where they are
    (root / "cat" / "up").symlink_to("..")  # a loop, inside: not descended either
    with Repository.open(store) as repo:
        res = repo.add([root], to="/train", message="pets")
        assert sorted(res.imported) == sorted([*photos["want"], "photos/cat/alias.png",
                                               "photos/dog/cat1.png"])
        f = repo.file
        assert set(f["/train"].keys()) == {"cat", "dog"}
        got = names(f["/train/cat/names"])
        assert got == ["photos/cat/0.png", "photos/cat/1.png", "photos/cat/alias.png"]
        np.testing.assert_array_equal(f["/train/cat/images"][2], photos["want"]["photos/cat/0.png"])
        assert names(f["/train/dog/names"]) == ["photos/dog/0.png", "photos/dog/cat1.png"]
        np.testing.assert_array_equal(f["/train/dog/images"][1], photos["want"]["photos/cat/1.png"])


def test_follow_symlinks_through_run_import(tmp_path: Path, store: Path, photos) -> None:
    root = tmp_path / "photos"
    (root / "ext").symlink_to(photos["outside"] / "more")
    (root / "cat" / "far.png").symlink_to(photos["outside"] / "more" / "e.png")
    (photos["outside"] / "more" / "back").symlink_to(root)  # leads back inside: no loop
    with Repository.open(store) as repo:
        with pytest.raises(InvalidInputError, match="--follow-symlinks"):
            run_import(repo, [root], to="/t", message="m", progress=False)
        res = run_import(repo, [root], to="/t", message="m", progress=False, follow_symlinks=True)
        assert sorted(res.imported) == sorted([*photos["want"], "photos/cat/far.png",
                                               "photos/ext/e.png"])
        np.testing.assert_array_equal(repo.file["/t/ext/images"][0], photos["ext"])
        assert names(repo.file["/t/cat/names"])[-1] == "photos/cat/far.png"
        np.testing.assert_array_equal(repo.file["/t/cat/images"][-1], photos["ext"])
        assert repo.status().clean


@needs_add_follow
def test_follow_symlinks_flag(tmp_path: Path, store: Path, photos) -> None:
    root = tmp_path / "photos"
    (root / "ext").symlink_to(photos["outside"] / "more")
    (photos["outside"] / "more" / "loop").symlink_to(".")  # a loop outside: walked once
    r = h5vc("add", root, "--to", "/t", "-m", "follow", "--follow-symlinks", "--store", store)
    assert r.exit_code == 0, r.output
    assert "4 file(s)" in r.stdout
    with Repository.open(store) as repo:
        assert names(repo.file["/t/ext/names"]) == ["photos/ext/e.png"]
        np.testing.assert_array_equal(repo.file["/t/ext/images"][0], photos["ext"])
        res = repo.add([root], to="/u", message="api", follow_symlinks=True)
        assert "photos/ext/e.png" in res.imported


def test_a_link_named_on_the_command_line_is_followed(tmp_path: Path, store: Path, photos) -> None:
    (tmp_path / "pick.png").symlink_to(photos["outside"] / "more" / "e.png")
    (tmp_path / "album").symlink_to(photos["outside"] / "more")
    r = h5vc("add", tmp_path / "pick.png", tmp_path / "album", "--to", "/p", "-m", "named",
             "--category-from", "none", "--store", store)
    assert r.exit_code == 0, r.output
    with Repository.open(store) as repo:
        assert names(repo.file["/p/names"]) == ["pick.png", "album/e.png"]
        for i in range(2):
            np.testing.assert_array_equal(repo.file["/p/images"][i], photos["ext"])


def test_broken_links(tmp_path: Path, store: Path, photos) -> None:
    (tmp_path / "photos" / "cat" / "gone.png").symlink_to("nowhere.png")
    r = h5vc("add", tmp_path / "photos", "--to", "/t", "--store", store)
    assert r.exit_code == 1 and len(r.stderr.strip().splitlines()) == 1
    assert r.stderr.startswith("Error: photos/cat/gone.png: a broken symbolic link (to nowhere.png)")
    assert "--skip-bad" in r.stderr
    r = h5vc("add", tmp_path / "photos", "--to", "/t", "-m", "m", "--skip-bad", "--store", store)
    assert r.exit_code == 0, r.output
    assert "skipped photos/cat/gone.png: a broken symbolic link" in r.stderr
    (tmp_path / "dead").symlink_to(tmp_path / "missing")
    r = h5vc("add", tmp_path / "dead", "--to", "/t", "--store", store)
    assert r.exit_code == 1 and r.stderr.startswith("Error: ") and "broken symbolic link" in r.stderr


# -- every compression x every importer ----------------------------------------------------


def test_filters_for() -> None:
    import h5py

    for name in COMPRESSIONS:
        assert filters_for(name, np.uint8) == name
        assert filters_for(name, np.dtype([("a", "<i4"), ("b", "S3")])) == name
        vlen = name if not name.startswith("blosc") else "gzip"
        assert filters_for(name, h5py.string_dtype()) == vlen
        assert filters_for(name, h5py.vlen_dtype(np.uint8)) == vlen


# The child process: run the CLI commands, read the target group back with h5py after each
# step (values, dtype, filters, chunks), and pickle it all for the test (plain numpy/str).
CHILD = r"""
import json, pickle, sys
import h5py, numpy as np
from typer.testing import CliRunner
from h5vc.cli import app

store, target, out, add_args = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
runner = CliRunner()

def run(*args):
    r = runner.invoke(app, [*args, "--store", store])
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise r.exception
    return {"code": r.exit_code, "stdout": r.stdout, "stderr": r.stderr}

def dump():
    try:
        import hdf5plugin  # noqa: F401  - a plain h5py reader of blosc data needs it
    except ImportError:
        pass
    got = {}
    with h5py.File(store, "r") as f:
        if target not in f:
            return None
        def visit(name, obj):
            if not isinstance(obj, h5py.Dataset):
                return
            data = obj[()]
            text = h5py.check_string_dtype(obj.dtype)
            if text is not None and text.length is None:
                data = [x.decode("utf-8") for x in data]
            elif h5py.check_vlen_dtype(obj.dtype) is not None:
                data = [bytes(x.tobytes()) for x in data]
            got[name] = {"data": data, "dtype": obj.dtype.str if not obj.dtype.hasobject else "vlen",
                         "filters": sorted(obj._filters), "chunks": obj.chunks}
        f[target].visititems(visit)
    return got

steps = {"add": run("add", *add_args)}
steps["status"] = run("status", "--json", "--verify")
steps["after_add"] = dump()
steps["back"] = run("checkout", "HEAD~1")
steps["at_parent"] = dump()
steps["forth"] = run("checkout", "main")
steps["at_main"] = dump()
steps["status_end"] = run("status", "--json", "--verify")
with open(out, "wb") as fh:
    pickle.dump(steps, fh)
"""

FILTER_ID = {"gzip": "gzip", "lzf": "lzf", "none": None, "blosc-zstd": "32001", "blosc-lz4": "32001"}


def _images(root: Path) -> tuple[list[str], dict[str, Any]]:
    """PNG RGB (uint8), 16-bit grey PNG (uint16), float TIFF (float32): {dataset: values}."""
    d = root / "photos"
    cat = [png(d / "cat" / f"{i}.png", rgb()) for i in range(3)]
    deep = RNG.integers(0, 65536, (6, 5)).astype(np.uint16)
    grey = [png(d / "deep" / f"{i}.png", deep + i) for i in range(2)]
    (d / "float").mkdir()
    flt = []
    for i in range(2):
        Image.fromarray(RNG.random((4, 7)).astype(np.float32)).save(d / "float" / f"{i}.tif")
        with Image.open(d / "float" / f"{i}.tif") as im:
            flt.append(np.asarray(im))
    want = {"cat/images": np.stack(cat), "deep/images": np.stack(grey), "float/images": np.stack(flt),
            "cat/names": [f"photos/cat/{i}.png" for i in range(3)],
            "deep/names": [f"photos/deep/{i}.png" for i in range(2)],
            "float/names": [f"photos/float/{i}.tif" for i in range(2)]}
    assert want["deep/images"].dtype == np.uint16 and want["float/images"].dtype == np.float32
    return [str(d)], want


def _encoded(root: Path) -> tuple[list[str], dict[str, Any]]:
    """--encoded: the original bytes of a PNG and a JPEG of other sizes (vlen uint8)."""
    d = root / "mix"
    png(d / "a.png", rgb(8, 8))
    Image.fromarray(rgb(9, 5)).save(d / "b.jpg", quality=85)
    return [str(d), "--encoded"], {
        "images": [(d / "a.png").read_bytes(), (d / "b.jpg").read_bytes()],
        "names": ["mix/a.png", "mix/b.jpg"]}


def _csv(root: Path) -> tuple[list[str], dict[str, Any]]:
    """Text (with non-ASCII), int, float (with a gap), bool and date columns."""
    rows = [("Zürich", 3, 1.5, "true", "2024-01-02"), ("Lyon, FR", -7, "", "false", "2024-02-03"),
            ("東京", 12, 2.25, "true", "2024-03-04")]
    lines = ["city,n,x,ok,day"] + [",".join(f'"{v}"' if "," in str(v) else str(v) for v in r)
                                   for r in rows]
    (root / "t.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [str(root / "t.csv")], {
        "city": [r[0] for r in rows], "n": np.array([3, -7, 12], dtype=np.int64),
        "x": np.array([1.5, np.nan, 2.25]), "ok": np.array([True, False, True]),
        "day": [r[4] for r in rows]}


def _npy(root: Path) -> tuple[list[str], dict[str, Any]]:
    """.npy files of several dtypes and shapes, and an .npz with more."""
    d = root / "arrays"
    d.mkdir()
    want: dict[str, Any] = {
        "f32": RNG.random((5, 3)).astype(np.float32), "i16": np.arange(-6, 6, dtype=np.int16),
        "u64": np.array([0, 2**63, 2**64 - 1], dtype=np.uint64), "flag": np.array([True, False]),
        "cplx": np.array([1 + 2j, -3.5j], dtype=np.complex128), "half": np.arange(4, dtype=np.float16),
        "cube": RNG.integers(0, 255, (2, 3, 4), dtype=np.uint8), "tag": np.array([b"ab", b"cdefg"]),
        "rec": np.array([(1, 2.5), (3, -1.0)], dtype=[("id", "<i4"), ("v", "<f8")]),
        "big": np.arange(4, dtype=">i8")}
    for k, v in want.items():
        np.save(d / f"{k}.npy", v)
    extra = {"word": np.array(["α", "beta", ""]), "m": np.eye(3, dtype=np.float64)}
    np.savez(root / "more.npz", **extra)
    want.update({"word": ["α", "beta", ""], "m": extra["m"]})
    return [str(d), str(root / "more.npz"), "--category-from", "none"], want


IMPORTERS = {"images": _images, "encoded": _encoded, "csv": _csv, "npy": _npy}
VLEN = {"images": {"cat/names", "deep/names", "float/names"}, "encoded": {"images", "names"},
        "csv": {"city", "day"}, "npy": {"word"}}


@pytest.mark.parametrize("importer", list(IMPORTERS))
@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_every_compression_with_every_importer(tmp_path: Path, store: Path, compression: str,
                                               importer: str) -> None:
    if compression.startswith("blosc"):
        pytest.importorskip("hdf5plugin")
    args, want = IMPORTERS[importer](tmp_path)
    out = tmp_path / "steps.pickle"
    add = [*args, "--to", "/d", "-m", f"{importer} {compression}", "--compression", compression]
    proc = subprocess.run([sys.executable, "-c", CHILD, str(store), "/d", str(out), json.dumps(add)],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, (f"child process died with {proc.returncode} "
                                  f"(-8 is SIGFPE):\n{proc.stderr[-3000:]}")
    with out.open("rb") as fh:
        steps = pickle.load(fh)

    add_run = steps["add"]
    assert add_run["code"] == 0, add_run
    notes = [ln for ln in add_run["stderr"].splitlines() if ln.startswith("note: ")]
    if compression.startswith("blosc"):  # every importer here writes some variable-length data
        assert len(notes) == 1, add_run["stderr"]
        assert f"--compression {compression} cannot compress variable-length data" in notes[0]
        assert "with gzip instead" in notes[0]
        for name in sorted(VLEN[importer])[:3]:
            assert f"/d/{name}" in notes[0]
    else:
        assert notes == [], add_run["stderr"]
    for key in ("status", "status_end"):
        assert steps[key]["code"] == 0 and json.loads(steps[key]["stdout"])["clean"], steps[key]
    assert steps["back"]["code"] == 0, steps["back"]
    assert steps["forth"]["code"] == 0, steps["forth"]
    assert steps["at_parent"] is None  # HEAD~1 is the empty store
    assert steps["at_main"] is not None

    for state in ("after_add", "at_main"):
        got = steps[state]
        assert set(got) == set(want), state
        for name, value in want.items():
            ds = got[name]
            if isinstance(value, list):
                assert ds["dtype"] == "vlen" and list(ds["data"]) == value, name
            else:
                data = np.asarray(ds["data"])
                assert data.dtype == value.dtype.newbyteorder("=") or data.dtype == value.dtype, name
                np.testing.assert_array_equal(data, value, err_msg=name)
            # the filter chosen, or gzip where it cannot apply
            fid = FILTER_ID["gzip" if name in VLEN[importer] and compression.startswith("blosc")
                            else compression]
            assert ds["filters"] == ([fid] if fid else []), (name, ds["filters"])
            if importer == "images" and name.endswith("/images"):
                assert ds["chunks"] == (1, *np.asarray(value).shape[1:])  # one image per chunk
