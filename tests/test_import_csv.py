"""The CSV importer plugin (plugins/h5vc-csv): types, missing values, categories, bad files."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from h5vc import Repository
from h5vc.cli import app
from h5vc.errors import H5vcError

pytest.importorskip("h5vc_csv")

from h5vc_csv import CsvImporter  # noqa: E402

from h5vc.importing import ImportContext, Source  # noqa: E402

runner = CliRunner()

HEADER = "time,site,temp,count,ok,label\n"
ROWS_A = [
    "2024-01-01T00:00:00,lab1,20.5,3,true,alpha",
    "2024-01-01T00:01:00,lab2,-1.25,4,false,\"be,ta\"",
    "2024-01-01T00:02:00,lab1,1e3,5,true,γάμμα",
]
ROWS_B = [
    "2024-01-02T00:00:00,lab2,7.0,6,false,delta",
    "2024-01-02T00:01:00,lab3,8.5,7,true,epsilon",
]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def store(tmp_path: Path):
    r = Repository.init(tmp_path / "store.h5")
    yield r
    r.close()


def texts(ds: h5py.Dataset) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else v for v in ds[()]]


def cli(store: Repository, *args: str):
    path = store.path
    store.close()
    result = runner.invoke(app, [*args, "--store", str(path)])
    return result


def test_plugins_lists_csv():
    result = runner.invoke(app, ["plugins"])
    assert result.exit_code == 0, result.output
    line = next(ln for ln in result.output.splitlines() if ln.startswith("csv"))
    assert ".csv" in line and ".tsv" in line and "h5vc-csv" in line


def test_round_trip_numbers_and_text(store, tmp_path):
    src = write(tmp_path / "a.csv", HEADER + "\n".join(ROWS_A) + "\n")
    res = store.add([src], to="/sensors", message="a")
    g = store.file["sensors"]
    assert set(g) == {"time", "site", "temp", "count", "ok", "label"}  # provenance is in /.h5vc
    assert set(store.sources("/sensors")["/sensors"]) == {"a.csv"}
    assert g["temp"].dtype == np.float64 and g["temp"][()].tolist() == [20.5, -1.25, 1000.0]
    assert g["count"].dtype == np.int64 and g["count"][()].tolist() == [3, 4, 5]
    assert g["ok"].dtype == np.bool_ and g["ok"][()].tolist() == [True, False, True]
    assert h5py.check_string_dtype(g["label"].dtype).encoding == "utf-8"
    assert texts(g["label"]) == ["alpha", "be,ta", "γάμμα"]
    assert texts(g["time"]) == ["2024-01-01T00:00:00", "2024-01-01T00:01:00", "2024-01-01T00:02:00"]
    assert res.rows["/sensors/temp"] == 3
    assert store.status().clean


def test_missing_values(store, tmp_path):
    src = write(tmp_path / "m.csv", "i,f,b,s,empty,n\n1,1.5,true,x,,7\n,,,,,8\n3,NA,false,NA,,9\n")
    store.add([src], to="/m", message="m")
    g = store.file["m"]
    assert g["i"].dtype == np.float64  # an int column with gaps in the first block
    np.testing.assert_array_equal(g["i"][()], [1.0, np.nan, 3.0])
    np.testing.assert_array_equal(g["f"][()], [1.5, np.nan, np.nan])
    assert g["b"].dtype == np.float64
    np.testing.assert_array_equal(g["b"][()], [1.0, np.nan, 0.0])
    assert texts(g["s"]) == ["x", "", "NA"]  # text: empty stays "", NA stays text
    assert texts(g["empty"]) == ["", "", ""]  # empty in the first block: text
    assert g["n"].dtype == np.int64


def test_int_gap_in_later_block_names_column(store, tmp_path):
    head = HEADER.strip() + "\n"
    rows = [f"2024-01-01,lab1,1.0,{i},true,x" for i in range(5000)] + ["2024-01-01,lab1,1.0,,true,x"]
    src = write(tmp_path / "gap.csv", head + "\n".join(rows) + "\n")
    head_before = store.head.id
    with pytest.raises(H5vcError, match=r"column 'count' has a missing value in data row 5,001.*"
                                         r"-o floats=count"):
        store.add([src], to="/g", message="g", options={"block_size": 4096})
    assert store.head.id == head_before and store.status().clean
    store.add([src], to="/g", message="g", options={"block_size": 4096, "floats": "count"})
    c = store.file["g/count"][()]
    assert c.dtype == np.float64 and len(c) == 5001 and np.isnan(c[-1]) and c[4999] == 4999


def test_append_second_file_and_checkout(store, tmp_path):
    a = write(tmp_path / "a.csv", HEADER + "\n".join(ROWS_A) + "\n")
    b = write(tmp_path / "b.csv", HEADER + "\n".join(ROWS_B) + "\n")
    first = store.add([a], to="/sensors", message="a").commit
    second = store.add([b], to="/sensors", message="b").commit
    assert store.file["sensors/count"][()].tolist() == [3, 4, 5, 6, 7]
    assert texts(store.file["sensors/site"])[-2:] == ["lab2", "lab3"]
    store.checkout(first.id)
    assert store.file["sensors/count"][()].tolist() == [3, 4, 5]
    assert texts(store.file["sensors/label"]) == ["alpha", "be,ta", "γάμμα"]
    assert store.status().clean
    store.checkout(second.id)
    assert len(store.file["sensors/temp"]) == 5


def test_category_column_and_attr_via_cli(store, tmp_path):
    a = write(tmp_path / "a.csv", HEADER + "\n".join(ROWS_A + ROWS_B) + "\n")
    result = cli(store, "add", str(a), "--to", "/sensors", "-m", "by site", "--category-column", "site",
                 "--attr", "source=lab2")
    assert result.exit_code == 0, result.output
    with Repository.open(store.path) as r:
        g = r.file["sensors"]
        assert g.attrs["source"] == "lab2"
        assert sorted(k for k in g if not k.startswith("_")) == ["lab1", "lab2", "lab3"]
        assert g["lab1/count"][()].tolist() == [3, 5]
        assert g["lab2/count"][()].tolist() == [4, 6]
        assert texts(g["lab2/label"]) == ["be,ta", "delta"]
        assert "site" not in g["lab1"]  # the value is the group name
        assert r.status().clean


def test_category_values_are_sanitized(store, tmp_path):
    src = write(tmp_path / "c.csv", "site,v\na/b,1\n,2\n.h5vc,3\n")
    store.add([src], to="/c", message="c", options={"category_column": "site",
                                                   "keep_category_column": True})
    g = store.file["c"]
    assert g["a_b/v"][()].tolist() == [1]
    assert g["_empty/v"][()].tolist() == [2]
    assert g["_.h5vc/v"][()].tolist() == [3] and texts(g["_.h5vc/site"]) == [".h5vc"]


def test_tsv_and_delimiter_option(store, tmp_path):
    t = write(tmp_path / "t.tsv", "a\tb\n1\tx;y\n")
    s = write(tmp_path / "s.csv", "a;b\n2;z\n")
    store.add([t], to="/t", message="t")
    store.add([s], to="/t", message="s", options={"delimiter": ";"})
    assert store.file["t/a"][()].tolist() == [1, 2]
    assert texts(store.file["t/b"]) == ["x;y", "z"]


def test_strings_option_and_folder_categories(store, tmp_path):
    for site, zips in (("north", "01234,55"), ("south", "00007,8")):
        (tmp_path / "in" / site).mkdir(parents=True)
        z1, z2 = zips.split(",")
        write(tmp_path / "in" / site / "z.csv", f"zip,kind\n{z1},a\n{z2},b\n")
    store.add([tmp_path / "in"], to="/z", message="z",
              options={"strings": "zip", "category_column": "kind"})
    assert texts(store.file["z/north/a/zip"]) == ["01234"]
    assert texts(store.file["z/south/b/zip"]) == ["8"]


def test_different_schema_is_an_error_and_changes_nothing(store, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    write(folder / "a.csv", HEADER + ROWS_A[0] + "\n")
    write(folder / "b.csv", "time,site,temp,humidity\n2024-01-01,lab1,1.0,50\n")
    head = store.head.id
    result = cli(store, "add", str(folder), "--to", "/sensors", "-m", "x")
    assert result.exit_code == 1
    err = result.stderr.strip()
    assert err.startswith("Error: ") and "\n" not in err
    assert "in/b.csv" in err and "in/a.csv" in err
    assert "'count', 'ok', 'label'" in err and "'humidity'" in err
    with Repository.open(store.path) as r:
        assert r.head.id == head and r.status().clean and "sensors" not in r.file


def test_type_change_in_later_file_names_column(store, tmp_path):
    write(tmp_path / "a.csv", "k,v\n1,2\n")
    write(tmp_path / "b.csv", "k,v\n1,oops\n")
    with pytest.raises(H5vcError, match=r"b\.csv: column 'v': .*int64.*-o strings=v"):
        store.add([tmp_path / "a.csv", tmp_path / "b.csv"], to="/k", message="k")
    assert store.status().clean and "k" not in store.file


CORRUPT = {
    "ragged.csv": b"a,b\n1,2\n3,4,5\n",
    "quote.csv": b'a,b\n1,2\n3,"never closed\n5,6\n',
    "latin.csv": b"a,b\n1,caf\xe9\n",
    "empty.csv": b"",
}


@pytest.mark.parametrize("name", sorted(CORRUPT))
def test_corrupt_file_is_an_error(store, tmp_path, name):
    (tmp_path / name).write_bytes(CORRUPT[name])
    head = store.head.id
    result = cli(store, "add", str(tmp_path / name), "--to", "/x", "-m", "x")
    assert result.exit_code == 1, result.output
    err = result.stderr.strip()
    assert err.startswith(f"Error: {name}: ") and "\n" not in err and "--skip-bad" in err
    with Repository.open(store.path) as r:
        assert r.head.id == head and r.status().clean


def test_skip_bad_lists_corrupt_files_and_imports_the_rest(store, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for name, data in CORRUPT.items():
        (folder / name).write_bytes(data)
    write(folder / "good.csv", "a,b\n1,x\n2,y\n")
    result = cli(store, "add", str(folder), "--to", "/x", "-m", "x", "--skip-bad")
    assert result.exit_code == 0, result.output
    for name in CORRUPT:
        assert f"skipped in/{name}:" in result.stderr
    assert "encoding" in result.stderr  # the latin-1 file says how to read it
    with Repository.open(store.path) as r:
        assert r.file["x/a"][()].tolist() == [1, 2]
        assert list(r.sources("/x")["/x"]) == ["in/good.csv"]
    # the encoding option reads the latin-1 file
    with Repository.open(store.path) as r:
        r.add([folder / "latin.csv"], to="/x", message="latin", options={"encoding": "latin-1"})
        assert texts(r.file["x/b"])[-1] == "café"


def test_skipped_first_file_does_not_set_the_schema(store, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    write(folder / "a.csv", "x,y\n1,2\n3,\"open\n")  # bad quoting: found after its header
    write(folder / "b.csv", "p,q\n1.5,z\n")
    res = store.add([folder], to="/s", message="s", skip_bad=True)
    assert [p for p, _ in res.bad] == ["in/a.csv"] and res.imported == ["in/b.csv"]
    assert store.file["s/p"][()].tolist() == [1.5]


def test_skip_bad_never_leaves_half_a_file(store, tmp_path):
    rows = "".join(f"{i},{i * 0.5}\n" for i in range(20000))
    write(tmp_path / "big.csv", "a,b\n" + rows + "1,2,3\n")  # ragged last row, many blocks later
    write(tmp_path / "ok.csv", "a,b\n7,1.5\n")
    res = store.add([tmp_path / "big.csv", tmp_path / "ok.csv"], to="/x", message="x",
                    skip_bad=True, options={"block_size": 8192})
    assert [p for p, _ in res.bad] == ["big.csv"] and "Expected 2 columns, got 3" in res.bad[0][1]
    assert store.file["x/a"][()].tolist() == [7]


def test_large_file_streams_in_blocks(store, tmp_path):
    n = 200_000
    ids = np.arange(n)
    lines = "\n".join(f"{i},{i * 0.25},s{i % 97}" for i in ids.tolist())
    src = write(tmp_path / "big.csv", "id,x,tag\n" + lines + "\n")
    batches = list(CsvImporter().read([Source(src, "big.csv", src.stat().st_size, None)],
                                      ImportContext(options={"block_size": 1 << 20})))
    assert len(batches) > 3 and sum(len(b.columns["id"]) for b in batches) == n
    assert [b.sources for b in batches[:-1]] == [[]] * (len(batches) - 1)
    assert [s.rel for s in batches[-1].sources] == ["big.csv"]
    res = store.add([src], to="/big", message="big")  # default blocks: 2 MiB
    assert res.rows["/big/id"] == n
    g = store.file["big"]
    assert np.array_equal(g["id"][()], ids) and g["x"][-1] == (n - 1) * 0.25
    assert texts(g["tag"])[-2:] == [f"s{(n - 2) % 97}", f"s{(n - 1) % 97}"]


def test_a_later_import_without_a_column_is_refused(tmp_path: Path) -> None:
    (tmp_path / "one.csv").write_text("a,b\n1,2\n")
    (tmp_path / "two.csv").write_text("a\n3\n")
    with Repository.init(tmp_path / "s.h5") as repo:
        repo.add([tmp_path / "one.csv"], to="/m", message="one")
        head = repo.head
        with pytest.raises(H5vcError, match="/m holds the columns a, b; the new data lacks b"):
            repo.add([tmp_path / "two.csv"], to="/m", message="two")
        assert repo.head == head and repo.status().clean
