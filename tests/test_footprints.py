"""Footprints: after another program edits the store, ``status`` reads through HDF5 only the
objects whose bytes changed, and must find exactly what a full rehash of every object finds.

Each example builds a store of many kinds of objects with plain h5py (old- and new-style
groups, dense attributes, chunked, compressed, contiguous, compact, scalar, compound and
variable-length datasets, attributes of every common type), adopts it, then edits it the way
other programs do (appends, in-place rewrites of one value, attribute changes of the same size,
new, deleted, moved and re-created objects, soft links) in a separate h5py session, and checks
``status()`` against ``status(verify=True)``, which reads and rehashes everything. One
difference would be a change that the footprints let through unseen.
"""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import h5vc.repository as repository_mod
from h5vc import Repository
from h5vc.engine.footprint import Footprints, Table, Unknown


def build(path: Path, rng: random.Random) -> None:
    with h5py.File(path, "w") as f:
        f.attrs["title"] = "store"
        f.attrs["n"] = 3
        for gi in range(rng.randint(2, 4)):
            order = rng.random() < 0.3  # new-style group: links in a version-2 header
            g = f.create_group(f"g{gi}", track_order=order)
            g.attrs["label"] = rng.choice(["cat", "dog", "bird"])
            g.attrs["split"] = np.bytes_(rng.choice([b"train", b"test1"]))
            g.attrs["weights"] = np.arange(4, dtype="f4") * gi
            if rng.random() < 0.2:
                for k in range(12):  # many attributes: dense storage, read through HDF5
                    g.attrs[f"a{k}"] = k
            g.create_dataset("chunked", data=np.arange(60, dtype="f8").reshape(20, 3),
                             maxshape=(None, 3), chunks=(8, 3))
            g.create_dataset("packed", data=np.arange(50, dtype="i4"), maxshape=(None,),
                             chunks=(16,), compression="gzip", shuffle=True)
            g.create_dataset("contig", data=np.arange(30, dtype="u2"))
            dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
            dcpl.set_layout(h5py.h5d.COMPACT)
            space = h5py.h5s.create_simple((5,))
            h5py.h5d.create(g.id, b"compact", h5py.h5t.STD_I32LE, space, dcpl=dcpl)
            g["compact"][...] = np.arange(5, dtype="i4")
            g.create_dataset("scalar", data=np.float64(gi))
            if rng.random() < 0.5:
                g.create_dataset("names", data=["a", "bb", "ccc"], dtype=h5py.string_dtype())
            rec = np.zeros(4, dtype=[("x", "i4"), ("y", "f8")])
            g.create_dataset("table", data=rec, maxshape=(None,), chunks=(2,))
            g["chunked"].attrs["unit"] = "m"
            g["chunked"].attrs["scale"] = 1.5
            sub = g.create_group("sub")
            sub.create_dataset("deep", data=np.arange(12, dtype="i8"), maxshape=(None,),
                               chunks=(4,))


def edit(f: h5py.File, rng: random.Random, kind: str) -> None:
    try:
        _edit(f, rng, kind)
    except (OSError, ValueError, KeyError, TypeError):
        pass  # a name already taken, a type the edit does not fit: as another program fails


def _edit(f: h5py.File, rng: random.Random, kind: str) -> None:
    groups = sorted(k for k in f if k.startswith("g"))
    g = f[rng.choice(groups)] if groups else f.require_group("g0")
    names = [k for k in g if isinstance(g.get(k, getlink=True), h5py.HardLink)]
    dsets = [k for k in names if isinstance(g[k], h5py.Dataset)]
    name = rng.choice(dsets) if dsets else None
    ds = g[name] if name else None
    if kind == "append" and ds is not None and ds.chunks and ds.maxshape[0] is None:
        n = ds.shape[0]
        ds.resize(n + rng.randint(1, 9), axis=0)
    elif kind == "rewrite" and ds is not None and ds.shape not in (None, ()) and ds.shape[0]:
        i = rng.randrange(ds.shape[0])
        if ds.dtype.kind == "O":
            ds[i] = "zz"
        elif ds.dtype.names:
            row = ds[i]
            row["x"] += 1
            ds[i] = row
        else:
            ds[i] = ds[i] + 1
    elif kind == "rewrite" and ds is not None and ds.shape == ():
        ds[()] = ds[()] + 1
    elif kind == "same_size_attr":
        if "label" in g.attrs:
            label = g.attrs["label"]
            g.attrs["label"] = {"cat": "dog", "dog": "cat"}.get(label, "cat")
        if rng.random() < 0.5 and "split" in g.attrs:
            g.attrs.modify("split", np.bytes_(b"test2"))
        if rng.random() < 0.5 and "weights" in g.attrs:
            w = g.attrs["weights"]
            w[0] += 1
            g.attrs.modify("weights", w)
    elif kind == "attr_on_dataset" and ds is not None:
        ds.attrs["unit"] = rng.choice(["m", "s", "kg"])
    elif kind == "new_attr":
        g.attrs[f"extra{rng.randrange(3)}"] = rng.randrange(100)
    elif kind == "del_attr" and g.attrs:
        del g.attrs[rng.choice(list(g.attrs))]
    elif kind == "new_dataset":
        g.create_dataset(f"new{rng.randrange(1000)}", data=np.arange(7))
    elif kind == "new_group":
        h = f.create_group(f"g{rng.randrange(4, 9)}x{rng.randrange(1000)}")
        h.create_dataset("d", data=np.ones(3))
    elif kind == "delete" and name is not None:
        del g[name]
    elif kind == "move" and name is not None:
        g.move(name, f"{name}_moved")
    elif kind == "recreate" and ds is not None and ds.shape is not None and ds.dtype.kind != "O":
        data, kw = ds[()], {}
        if ds.chunks:
            kw = {"chunks": ds.chunks, "maxshape": ds.maxshape}
        del g[name]
        g.create_dataset(name, data=data, **kw)
    elif kind == "replace_kind" and name is not None:
        del g[name]
        g.create_group(name).attrs["was"] = "dataset"
    elif kind == "soft_link":
        g[f"link{rng.randrange(9)}"] = h5py.SoftLink("/g0")
    elif kind == "same_value" and ds is not None and ds.shape not in (None, ()) and ds.shape[0]:
        ds[0] = ds[0]
    elif kind == "deep":
        deep = g.get("sub/deep")
        if isinstance(deep, h5py.Dataset):
            deep[1] = -deep[1]


EDITS = ["append", "rewrite", "same_size_attr", "attr_on_dataset", "new_attr", "del_attr",
         "new_dataset", "new_group", "delete", "move", "recreate", "replace_kind", "soft_link",
         "same_value", "deep"]


@pytest.fixture(autouse=True)
def small_stores_keep_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    """These stores are small; the table is made for stores of PRINTS_MIN_PATHS paths on."""
    monkeypatch.setattr(repository_mod, "PRINTS_MIN_PATHS", 0)


def table_of(repo: Repository) -> Table | None:
    raw, _ = repo._layout.read_record("prints")
    return Table.load(raw) if raw is not None else None


EXAMPLES = int(os.environ.get("H5VC_FOOTPRINT_EXAMPLES", "60"))  # more for a long hunt


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), kinds=st.lists(st.sampled_from(EDITS), min_size=1,
                                                      max_size=4))
def test_status_by_footprints_equals_a_full_rehash(seed: int, kinds: list[str]) -> None:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "s.h5"
        build(path, rng)
        Repository.init(path, pointer=False).close()
        with Repository.open(path, mode="r") as repo:
            table = table_of(repo)
            assert table is not None and table.commit == repo.status().head
            tracked = repo.state_of("HEAD")
            # all but variable-length datasets and groups of many attributes have a footprint
            assert len(table.paths()) >= 0.8 * len(tracked)
        with h5py.File(path, "r+") as f:  # another program
            for kind in kinds:
                edit(f, rng, kind)
        with Repository.open(path, mode="r") as repo:
            fast = repo.status().changes
        with Repository.open(path, mode="r") as repo:
            full = repo.status(verify=True).changes
        assert fast == full
        # and commit: the footprints taken again afterwards vouch for the new HEAD
        with Repository.open(path) as repo:
            if full:
                repo.commit("outside edits", accept_loss=True)  # rewrites lose history
        with Repository.open(path, mode="r") as repo:
            table = table_of(repo)
            assert table is not None and table.commit == repo.status().head
        with h5py.File(path, "r+") as f:
            edit(f, rng, rng.choice(EDITS))
        with Repository.open(path, mode="r") as repo:
            fast = repo.status().changes
        with Repository.open(path, mode="r") as repo:
            assert fast == repo.status(verify=True).changes


def test_a_rewrite_in_place_is_found_by_footprint_alone(tmp_path: Path) -> None:
    """The seal broken, one value rewritten deep in a 300-dataset store: found, with every
    other object passed over by its footprint."""
    path = tmp_path / "s.h5"
    with h5py.File(path, "w") as f:
        for i in range(100):
            g = f.create_group(f"c{i:03d}")
            for k in "abc":
                g.create_dataset(k, data=np.arange(40, dtype="f4").reshape(10, 4),
                                 maxshape=(None, 4), chunks=(10, 4))
    Repository.init(path, pointer=False).close()
    with h5py.File(path, "r+") as f:
        f["c057/b"][3, 2] = -1.0
    read: list[str] = []
    import h5vc.engine.scan as scan_mod
    original = scan_mod._path_changes

    def spy(p: str, *args: object, **kw: object) -> None:
        read.append(p)
        original(p, *args, **kw)  # type: ignore[arg-type]

    scan_mod._path_changes = spy  # type: ignore[assignment]
    try:
        with Repository.open(path, mode="r") as repo:
            st_ = repo.status()
    finally:
        scan_mod._path_changes = original  # type: ignore[assignment]
    assert [(c["op"], c["path"], c["ranges"]) for c in st_.changes] == [
        ("rows", "/c057/b", [[0, 10, None]])]
    assert read == ["/c057/b"]


def test_footprints_of_damaged_bytes_are_unknown_not_a_crash(tmp_path: Path) -> None:
    """Random bytes where headers should be: every object reads as Unknown or as some
    footprint, never an exception of another kind."""
    path = tmp_path / "s.h5"
    build(path, random.Random(7))
    with h5py.File(path, "r") as f:
        addrs = []
        f.visit(lambda n: addrs.append(h5py.h5o.get_info(f[n].id).addr))
    raw = bytearray(path.read_bytes())
    rng = random.Random(1)
    outcomes = {"unknown": 0, "read": 0}
    for trial in range(300):
        buf = bytearray(raw)
        for _ in range(rng.randint(1, 8)):
            at = rng.choice(addrs) + rng.randrange(64)
            buf[at] = rng.randrange(256)
        fp = Footprints(bytes(buf))
        for a in addrs:
            try:
                fp.of(a)
                outcomes["read"] += 1
            except Unknown:
                outcomes["unknown"] += 1
        assert trial >= 0
    assert outcomes["unknown"] > 0 and outcomes["read"] > 0


def test_small_stores_keep_no_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(repository_mod, "PRINTS_MIN_PATHS", 256)
    path = tmp_path / "s.h5"
    build(path, random.Random(3))
    Repository.init(path, pointer=False).close()
    with Repository.open(path, mode="r") as repo:
        assert table_of(repo) is None
    with h5py.File(path, "r+") as f:
        f["g0/chunked"][0, 0] = 99.0
    with Repository.open(path, mode="r") as repo:
        assert [c["path"] for c in repo.status().changes] == ["/g0/chunked"]


def test_a_damaged_table_is_only_a_lost_cache(tmp_path: Path) -> None:
    path = tmp_path / "s.h5"
    build(path, random.Random(3))
    Repository.init(path, pointer=False).close()
    with Repository.open(path) as repo:
        raw, _ = repo._layout.read_record("prints")
        assert Table.load(raw) is not None
        assert Table.load(raw[:-5]) is None
        assert Table.load(b"H5VF\x01" + b"\xff" * 40) is None
        repo._layout.write_record("prints", b"not a table")
    with h5py.File(path, "r+") as f:
        f["g0/chunked"][0, 0] = 99.0
    with Repository.open(path, mode="r") as repo:
        assert [c["path"] for c in repo.status().changes] == ["/g0/chunked"]


@pytest.mark.parametrize("libver", [None, ("v108", "v110")])
def test_superblock_versions(tmp_path: Path, libver: tuple[str, str] | None) -> None:
    """Files written with newer superblocks and version-2 headers (as netCDF4 writes them)
    are read too, or found Unknown object by object."""
    path = tmp_path / "s.h5"
    kw = {"libver": libver} if libver else {}
    with h5py.File(path, "w", **kw) as f:
        f.create_group("g").create_dataset("d", data=np.arange(10), chunks=(5,), maxshape=(None,))
    Repository.init(path, pointer=False).close()
    with h5py.File(path, "r+") as f:
        f["g/d"].resize((12,))
    with Repository.open(path, mode="r") as repo:
        fast = repo.status().changes
    with Repository.open(path, mode="r") as repo:
        assert fast == repo.status(verify=True).changes
        assert [c["path"] for c in fast] == ["/g/d"]


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_a_table_updated_in_place_stores_what_a_whole_rewrite_stores(data: st.DataObject) -> None:
    def entry(draw: st.DataObject) -> tuple[int, bytes, list[int]]:
        n = draw.draw(st.integers(0, 4))
        flat = draw.draw(st.lists(st.integers(0, 2**40), min_size=2 * n, max_size=2 * n))
        return (draw.draw(st.integers(0, 2**40)), draw.draw(st.binary(min_size=16, max_size=16)),
                flat)

    names = [f"/g{i}" for i in range(12)]
    base = {p: entry(data) for p in data.draw(st.lists(st.sampled_from(names), unique=True))}
    loaded = Table.load(Table("c1", 96, dict(base)).dump())
    assert loaded is not None
    want = dict(base)
    for _ in range(data.draw(st.integers(0, 8))):
        p = data.draw(st.sampled_from(names))
        e = None if data.draw(st.booleans()) else entry(data)
        loaded.set(p, e)
        if e is None:
            want.pop(p, None)
        else:
            want[p] = e
    keep = set(data.draw(st.lists(st.sampled_from(names), unique=True)))
    if data.draw(st.booleans()):
        loaded.keep_only(keep)
        want = {p: e for p, e in want.items() if p in keep}
    assert loaded.paths() == set(want)
    assert loaded.addresses() == {p: e[0] for p, e in want.items()}
    again = Table.load(loaded.dump())
    assert again is not None and again.entries == want
    assert loaded.entries == want
