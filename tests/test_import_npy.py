"""`h5vc add` through the npy importer: the core pipeline from a user's point of view."""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from h5vc import InvalidInputError, Repository
from h5vc.cli import app

runner = CliRunner()


@pytest.fixture
def files(tmp_path: Path) -> Path:
    d = tmp_path / "arrays"
    (d / "a").mkdir(parents=True)
    (d / "b").mkdir()
    np.save(d / "a" / "x.npy", np.arange(12.0).reshape(4, 3))
    np.save(d / "b" / "x.npy", np.ones((2, 3)))
    np.savez(tmp_path / "feat.npz", w=np.arange(5), v=np.eye(2))
    return tmp_path


@pytest.fixture
def store(tmp_path: Path) -> Path:
    p = tmp_path / "s.h5"
    Repository.init(p).close()
    return p


def test_add_by_category_with_attributes_is_one_commit(files: Path, store: Path) -> None:
    with Repository.open(store) as repo:
        r = repo.add([files / "arrays", files / "feat.npz"], to="/features", message="batch 1",
                     attrs={"source": "lab2", "n": 3})
        assert r.commit is not None and repo.head == r.commit
        assert sorted(r.imported) == ["arrays/a/x.npy", "arrays/b/x.npy", "feat.npz"]
        f = repo.file
        np.testing.assert_array_equal(f["/features/a/x"][()], np.arange(12.0).reshape(4, 3))
        np.testing.assert_array_equal(f["/features/b/x"][()], np.ones((2, 3)))
        np.testing.assert_array_equal(f["/features/w"][()], np.arange(5))
        assert f["/features"].attrs["source"] == "lab2" and f["/features"].attrs["n"] == 3
        ds = f["/features/a/x"]
        assert ds.maxshape == (None, 3) and ds.chunks is not None and ds.compression == "gzip"
        prov = repo.sources("/features")["/features"]
        assert sorted(prov) == sorted(r.imported)
        assert all(p.size > 0 and len(p.hash) == 32 and p.time for p in prov.values())
        assert repo.status(verify=True).clean
        assert len(list(repo.log())) == 2


def test_re_adding_is_skipped_force_imports_again(files: Path, store: Path) -> None:
    with Repository.open(store) as repo:
        repo.add([files / "arrays"], to="/f", message="one")
        head = repo.head
        r = repo.add([files / "arrays"], to="/f", message="two")
        assert r.commit is None and sorted(r.already) == ["arrays/a/x.npy", "arrays/b/x.npy"]
        assert repo.head == head
        r = repo.add([files / "arrays"], to="/f", message="three", force=True)
        assert r.commit is not None and repo.file["/f/a/x"].shape == (8, 3)


def test_changed_file_is_imported_again(files: Path, store: Path) -> None:
    with Repository.open(store) as repo:
        repo.add([files / "arrays"], to="/f", message="one")
        np.save(files / "arrays" / "b" / "x.npy", np.zeros((1, 3)))
        r = repo.add([files / "arrays"], to="/f", message="two")
        assert r.imported == ["arrays/b/x.npy"] and repo.file["/f/b/x"].shape == (3, 3)


def test_failure_midway_leaves_store_at_head(files: Path, store: Path) -> None:
    np.save(files / "arrays" / "b" / "y.npy", np.ones((2, 4)))
    with Repository.open(store) as repo:
        repo.add([files / "arrays" / "a"], to="/f", message="one")
        head = repo.head
        np.save(files / "arrays" / "a" / "x.npy", np.ones((3, 5)))  # wrong row shape
        with pytest.raises(InvalidInputError, match=r"/f/x holds rows of \(3,\) float64"):
            repo.add([files / "arrays" / "b", files / "arrays" / "a"], to="/f", message="two")
        assert repo.head == head and repo.status(verify=True).clean
        assert "/f/y" not in repo.file


def test_object_arrays_are_refused(tmp_path: Path, store: Path) -> None:
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    np.save(tmp_path / "ok.npy", np.arange(3))
    r = runner.invoke(app, ["add", str(tmp_path / "obj.npy"), "-s", str(store), "-m", "m"])
    assert r.exit_code == 1 and r.output.startswith("Error: obj.npy:") and "--skip-bad" in r.output
    r = runner.invoke(app, ["add", str(tmp_path / "obj.npy"), str(tmp_path / "ok.npy"),
                            "-s", str(store), "-m", "m", "--skip-bad", "--to", "/t"])
    assert r.exit_code == 0, r.output
    assert "skipped obj.npy:" in r.output and "1 file(s)" in r.output
    with h5py.File(store, "r") as f:
        assert f["/t/ok"][()].tolist() == [0, 1, 2]


def test_bad_inputs_are_clear(tmp_path: Path, store: Path, files: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "trunc.npy").write_bytes(b"\x93NUMPY\x01\x00")
    with h5py.File(store, "a") as f:
        f["d"] = 1
    cases = [
        ([str(empty)], "holds no files"),
        ([str(tmp_path / "notes.txt")], "no importer for '.txt' files"),
        ([str(tmp_path / "trunc.npy")], "trunc.npy: not a valid .npy file"),
        ([str(tmp_path / "missing.npy")], "does not exist"),
    ]
    with Repository.open(store) as repo:
        repo.commit("d")
    for args, msg in cases:
        r = runner.invoke(app, ["add", *args, "-s", str(store), "-m", "m", "--to", "/x"])
        assert r.exit_code == 1 and msg in r.output, r.output
        assert len(r.output.strip().splitlines()) == 1
    r = runner.invoke(app, ["add", str(files / "feat.npz"), "-s", str(store), "-m", "m", "--to", "/d"])
    assert r.exit_code == 1 and "--to /d is a dataset" in r.output
    with Repository.open(store, mode="r") as repo:
        assert repo.status().clean and len(list(repo.log())) == 2


def test_dry_run_no_commit_and_json(files: Path, store: Path) -> None:
    r = runner.invoke(app, ["add", str(files / "arrays"), "-s", str(store), "--dry-run", "--to", "/f"])
    assert r.exit_code == 0 and r.output.strip() == "would import 2 file(s) into /f: 2 by npy"
    with Repository.open(store, mode="r") as repo:
        assert "/f" not in repo.file
    r = runner.invoke(app, ["add", str(files / "arrays"), "-s", str(store), "--no-commit", "--to", "/f"])
    assert r.exit_code == 0 and "not committed" in r.output
    with Repository.open(store) as repo:
        assert len(list(repo.log())) == 1 and not repo.status().clean
        repo.commit("now")
    r = runner.invoke(app, ["add", str(files / "feat.npz"), "-s", str(store), "-m", "j", "--json",
                            "--to", "/g"])
    import json

    data = json.loads(r.output)
    assert data["imported"] == ["feat.npz"] and data["rows"] == {"/g/v": 2, "/g/w": 5}


def test_attr_parsing_and_category_none(files: Path, store: Path) -> None:
    r = runner.invoke(app, ["add", str(files / "arrays"), "-s", str(store), "-m", "m", "--to", "/f",
                            "--category-from", "none", "--attr", "k=1.5", "--attr", "b=true",
                            "--attr", "l=[1, 2]", "--attr", "s=hello"])
    assert r.exit_code == 0, r.output
    with h5py.File(store, "r") as f:
        assert f["/f/x"].shape == (6, 3)  # no categories: both x.npy files append to /f/x
        a = f["/f"].attrs
        assert a["k"] == 1.5 and bool(a["b"]) is True and list(a["l"]) == [1, 2] and a["s"] == "hello"
    r = runner.invoke(app, ["add", str(files / "arrays"), "-s", str(store), "-m", "m", "--attr", "bad"])
    assert r.exit_code == 1 and "not key=value" in r.output


def test_checkout_before_import_and_back(files: Path, store: Path) -> None:
    with Repository.open(store) as repo:
        repo.add([files / "arrays"], to="/f", message="one")
        repo.checkout("HEAD~1")
        assert "/f" not in repo.file
        repo.checkout("main")
        np.testing.assert_array_equal(repo.file["/f/a/x"][()], np.arange(12.0).reshape(4, 3))


def test_ls_and_plugins() -> None:
    r = runner.invoke(app, ["plugins", "--json"])
    import json

    names = {p["name"]: p for p in json.loads(r.output)}
    assert names["npy"]["package"] == "h5vc-npy" and ".npz" in names["npy"]["suffixes"]


def test_ls_tree(files: Path, store: Path) -> None:
    with Repository.open(store) as repo:
        repo.add([files / "arrays"], to="/f", message="one", attrs={"site": "lab"})
    r = runner.invoke(app, ["ls", "/f", "-s", str(store)])
    assert r.exit_code == 0
    lines = r.output.splitlines()
    assert lines[0].startswith("f/  (2 groups, 2 datasets)") and "site=lab" in lines[0]
    assert "_h5vc_sources" not in r.output  # provenance is in /.h5vc, not among the datasets
    assert "    x  4 x 3  float64" in lines
    r = runner.invoke(app, ["ls", "/nope", "-s", str(store)])
    assert r.exit_code == 1 and "does not exist" in r.output


def test_only_bad_new_files_with_skip_bad_is_not_an_error(files: Path, store: Path) -> None:
    with Repository.open(store) as repo:
        repo.add([files / "arrays"], to="/f", message="one")
        head = repo.head
        (files / "arrays" / "a" / "junk.npy").write_bytes(b"not numpy")
        r = repo.add([files / "arrays"], to="/f", message="two", skip_bad=True)
        assert r.commit is None and repo.head == head and repo.status().clean
        assert [p for p, _ in r.bad] == ["arrays/a/junk.npy"] and len(r.already) == 2
        with pytest.raises(InvalidInputError, match="junk.npy: not a valid .npy file"):
            repo.add([files / "arrays"], to="/f", message="three")


def test_vlen_rows_given_as_a_list_stay_one_dimensional(tmp_path: Path, store: Path) -> None:
    from h5vc.importing.pipeline import Batch, ImportContext, _write_batch

    with Repository.open(store) as repo:
        with repo.transaction("vlen") as tx:
            rows = [np.zeros(3, np.uint8), np.ones(3, np.uint8)]
            result = type("R", (), {"rows": {}, "created": []})()
            _write_batch(tx, "/v", Batch({"blobs": rows}, dtypes={"blobs": h5py.vlen_dtype(np.uint8)}),
                         "none", {}, result, [])
        assert repo.file["/v/blobs"].shape == (2,)
        assert repo.file["/v/blobs"][1].tolist() == [1, 1, 1]
    assert ImportContext(options={}).skip_bad is False


@pytest.mark.parametrize("name,filter_id", [("gzip", 1), ("lzf", 32000), ("none", None),
                                            ("blosc-zstd", 32001), ("blosc-lz4", 32001)])
def test_compression_choices(files: Path, store: Path, name: str, filter_id: int | None) -> None:
    import hdf5plugin  # noqa: F401  - registers the blosc filter for reading

    with Repository.open(store) as repo:
        repo.add([files / "feat.npz"], to="/c", message="m", compression=name)
        ds = repo.file["/c/w"]
        codes = [ds.id.get_create_plist().get_filter(i)[0]
                 for i in range(ds.id.get_create_plist().get_nfilters())]
        assert (filter_id in codes) if filter_id else codes == []
        np.testing.assert_array_equal(ds[()], np.arange(5))
        repo.checkout("HEAD~1")
        repo.checkout("main")
        assert repo.status(verify=True).clean
    r = runner.invoke(app, ["add", str(files / "feat.npz"), "-s", str(store), "-m", "m",
                            "--compression", "brotli"])
    assert r.exit_code == 1 and "unknown compression 'brotli'" in r.output


def test_non_utf8_file_name(tmp_path: Path, store: Path) -> None:
    import os

    d = tmp_path / "names"
    d.mkdir()
    np.save(d / "ok.npy", np.arange(2))
    with open(os.path.join(os.fsencode(d), b"bad\xff.npy"), "wb") as fh:
        np.save(fh, np.arange(3))
    r = runner.invoke(app, ["add", str(d), "-s", str(store), "-m", "m", "--to", "/n"])
    assert r.exit_code == 1 and "not valid UTF-8" in r.output
    r = runner.invoke(app, ["add", str(d), "-s", str(store), "-m", "m", "--to", "/n", "--skip-bad"])
    assert r.exit_code == 0 and "not valid UTF-8" in r.output
    with h5py.File(store, "r") as f:
        assert f["/n/ok"][()].tolist() == [0, 1] and list(f["/n"].keys()) == ["ok"]


def test_blosc_store_is_versioned_by_a_fresh_process(files: Path, store: Path) -> None:
    import subprocess
    import sys

    with Repository.open(store) as repo:
        repo.add([files / "feat.npz"], to="/c", message="m", compression="blosc-zstd")
    # a new process that never imported hdf5plugin itself checks out and back
    code = ("import sys; from h5vc import Repository\n"
            "with Repository.open(sys.argv[1]) as r:\n"
            "    r.checkout('HEAD~1'); r.checkout('main')\n"
            "    assert r.status(verify=True).clean\n"
            "    print(r.file['/c/w'][()].tolist())")
    out = subprocess.run([sys.executable, "-c", code, str(store)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[0, 1, 2, 3, 4]"
    # and with HDF5_PLUGIN_PATH naming plugins built for another HDF5 (netCDF4 sets it to its
    # own when imported): HDF5 must never load them for a filter hdf5plugin provides
    import netCDF4

    plugins = Path(netCDF4.__file__).parent / "plugins"
    assert plugins.is_dir()
    env = {**os.environ, "HDF5_PLUGIN_PATH": str(plugins)}
    out = subprocess.run([sys.executable, "-c", code, str(store)], capture_output=True, text=True,
                         env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[0, 1, 2, 3, 4]"


def test_default_message_names_what_was_added(files: Path, store: Path) -> None:
    r = runner.invoke(app, ["add", str(files / "arrays"), str(files / "feat.npz"), "-s", str(store),
                            "--to", "/features"])
    assert r.exit_code == 0, r.output
    with Repository.open(store, mode="r") as repo:
        assert repo.head.message == "add arrays, feat.npz to /features"
