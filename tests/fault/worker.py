"""The subprocess side of the fault harness: everything that opens an HDF5 file.

The harness (``harness.py``) never opens a store itself (a damaged file may crash HDF5); it
runs this file as a script::

    python worker.py build OP DIR              template store for OP + model.pkl + meta.json
    python worker.py run OP DIR LOG SEED MAXOPS
                                                 do OP in a loop on DIR/store.h5, logging to LOG
    python worker.py check REQUEST.json         digests, checkouts, fallback verify -> JSON
    python worker.py writer STORE WID N LOG GO  one of the two concurrent writers

Data written by a worker is generated from a seed and kept in a *model* (path -> group or
dataset with its values and attributes); the digest of a commit is computed from the model,
never read back through h5vc. ``digest_file`` reads a store with plain h5py and computes the
same digest, so the two can be compared.

Each log line is one JSON object, written with one ``os.write`` and ``os.fsync``-ed before the
worker goes on: what the log says succeeded, the worker was told succeeded.
"""

from __future__ import annotations

import copy
import json
import os
import pickle
import re
import select
import shutil
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import xxhash

META = ".h5vc"
HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
H5VC = str(BIN / "h5vc")

Model = dict[str, dict[str, Any]]

# -- canonical content and its digest ------------------------------------------------------------


def dtype_sig(dt: np.dtype) -> str:
    """A storage-independent name of a dtype: what the data means, not how HDF5 lays it out."""
    if dt.names:
        return "rec(" + ",".join(f"{n}:{dtype_sig(dt.fields[n][0])}" for n in dt.names) + ")"
    if dt.kind == "O":
        s = h5py.check_string_dtype(dt)
        if s is not None:
            return "str"
        v = h5py.check_vlen_dtype(dt)
        if v is not None:
            return f"vlen:{np.dtype(v).str}"
        return "obj"
    if dt.subdtype is not None:
        base, shape = dt.subdtype
        return f"{dtype_sig(base)}{list(shape)}"
    return dt.str


def _elem_bytes(x: Any) -> bytes:
    if isinstance(x, str):
        return b"s" + x.encode("utf-8")
    if isinstance(x, bytes):  # h5py reads variable-length strings as bytes
        return b"s" + x
    if isinstance(x, np.ndarray):
        return b"a" + np.ascontiguousarray(x).tobytes()
    return b"?" + repr(x).encode()


def _update_values(h: Any, a: np.ndarray) -> None:
    dt = a.dtype
    if dt.names:
        for n in dt.names:
            h.update(n.encode() + b"\0")
            _update_values(h, np.ascontiguousarray(a[n]))
        return
    if dt.kind == "O":
        for x in a.reshape(-1):
            b = _elem_bytes(x)
            h.update(len(b).to_bytes(8, "little"))
            h.update(b)
        return
    h.update(np.ascontiguousarray(a).tobytes())


def _attr_update(h: Any, name: str, v: Any) -> None:
    h.update(b"@" + name.encode() + b"\0")
    if isinstance(v, (str, bytes)):
        h.update(_elem_bytes(v))
        return
    a = np.asarray(v)
    if a.dtype.kind == "U":
        a = a.astype(object)
    h.update(f"{dtype_sig(a.dtype)}|{list(a.shape)}|".encode())
    _update_values(h, a)


def digest_model(model: Model, paths: list[str] | None = None) -> str:
    """xxh3-128 over every group and dataset: path, kind, attributes, dtype, shape, values."""
    h = xxhash.xxh3_128()
    for p in sorted(model if paths is None else paths):
        node = model[p]
        h.update(b"\1" + p.encode() + b"\0" + node["k"].encode())
        for name in sorted(node["attrs"]):
            _attr_update(h, name, node["attrs"][name])
        if node["k"] == "d":
            a = node["data"]
            h.update(f"|{dtype_sig(a.dtype)}|{list(a.shape)}|".encode())
            _update_values(h, a)
    return h.hexdigest()


def read_model(path: str | os.PathLike[str]) -> Model:
    """The tracked content of a store (everything but /.h5vc), read with plain h5py."""
    model: Model = {}
    with h5py.File(path, "r") as f:
        model["/"] = {"k": "g", "attrs": {k: f.attrs[k] for k in f.attrs}}

        def visit(name: str, obj: Any) -> None:
            if name == META or name.startswith(META + "/"):
                return
            attrs = {k: obj.attrs[k] for k in obj.attrs}
            if isinstance(obj, h5py.Dataset):
                data = np.empty(0) if obj.shape is None else obj[()]
                model["/" + name] = {"k": "d", "data": np.asarray(data), "attrs": attrs}
            else:
                model["/" + name] = {"k": "g", "attrs": attrs}

        f.visititems(visit)
    return model


def digest_file(path: str | os.PathLike[str], paths: list[str] | None = None) -> str:
    return digest_model(read_model(path), paths)


def cat(*parts: np.ndarray) -> np.ndarray:
    """np.concatenate keeping the first part's dtype (and so h5py's string metadata)."""
    out = np.empty((sum(len(p) for p in parts), *parts[0].shape[1:]), dtype=parts[0].dtype)
    i = 0
    for p in parts:
        out[i:i + len(p)] = p
        i += len(p)
    return out


def group(attrs: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"k": "g", "attrs": dict(attrs or {})}


def dataset(data: np.ndarray, attrs: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"k": "d", "data": data, "attrs": dict(attrs or {})}


def strings(prefix: str, n: int, start: int = 0) -> np.ndarray:
    out = np.empty(n, dtype=h5py.string_dtype())
    out[:] = [f"{prefix}-{start + i}-" + "é" * ((start + i) % 4) for i in range(n)]
    return out


# -- logging -------------------------------------------------------------------------------------


class Log:
    """Append-only JSON lines, each fsync-ed before the worker goes on."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.t0 = time.monotonic()

    def write(self, **rec: Any) -> None:
        rec["t"] = round(time.monotonic() - self.t0, 4)
        os.write(self.fd, (json.dumps(rec) + "\n").encode())
        os.fsync(self.fd)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([H5VC, *args], capture_output=True, text=True)


# -- images for `h5vc add` ------------------------------------------------------------------------

IMAGE_CATEGORIES = {  # name -> (height, width, channels: 0 = grayscale), 50 images each
    "birds": (12, 12, 4),
    "cats": (16, 16, 3),
    "dogs": (20, 12, 0),
    "fish": (10, 24, 3),
}
IMAGES_PER_CATEGORY = 50


def image_pixels(category: str, i: int) -> np.ndarray:
    h, w, c = IMAGE_CATEGORIES[category]
    rng = np.random.default_rng([sorted(IMAGE_CATEGORIES).index(category), i])
    yy, xx = np.mgrid[0:h, 0:w]
    base = (xx * 255 // max(w - 1, 1) + yy * 7 + i * 13) % 256  # a gradient, and some noise
    shape = (h, w) if c == 0 else (h, w, c)
    noise = rng.integers(0, 48, size=shape)
    img = (base[..., None] if c else base) + noise
    return (img % 256).astype(np.uint8)


def make_images(folder: Path) -> None:
    """Write ~200 small PNGs in four categories (sub-folders) with Pillow."""
    from PIL import Image

    for c in sorted(IMAGE_CATEGORIES):
        (folder / c).mkdir(parents=True, exist_ok=True)
        for i in range(IMAGES_PER_CATEGORY):
            arr = image_pixels(c, i)
            mode = {0: "L", 3: "RGB", 4: "RGBA"}[IMAGE_CATEGORIES[c][2]]
            Image.fromarray(arr, mode).save(folder / c / f"img_{i:03d}.png")


SOURCES_DTYPE = np.dtype([("path", h5py.string_dtype()), ("size", "<i8"), ("hash", "S32")])


def images_import(folder: Path) -> dict[str, Any]:
    """What one `h5vc add FOLDER` imports: per category pixels and names, and the sources table,
    from the pixels generated and the PNG files written (not from the store)."""
    cats = {}
    rows = []
    for c in sorted(IMAGE_CATEGORIES):
        pix = np.stack([image_pixels(c, i) for i in range(IMAGES_PER_CATEGORY)])
        names = np.empty(IMAGES_PER_CATEGORY, dtype=h5py.string_dtype())
        names[:] = [f"{folder.name}/{c}/img_{i:03d}.png" for i in range(IMAGES_PER_CATEGORY)]
        cats[c] = (pix, names)
        for i in range(IMAGES_PER_CATEGORY):
            p = folder / c / f"img_{i:03d}.png"
            data = p.read_bytes()
            rows.append((f"{folder.name}/{c}/img_{i:03d}.png", len(data),
                         xxhash.xxh3_128(data).hexdigest().encode()))
    return {"cats": cats, "sources": np.array(rows, dtype=SOURCES_DTYPE)}


def apply_import(model: Model, target: str, imp: dict[str, Any]) -> None:
    parts = target.strip("/").split("/")
    for i in range(1, len(parts) + 1):
        model.setdefault("/" + "/".join(parts[:i]), group())
    for category, (pix, names) in imp["cats"].items():
        g = f"{target}/{category}"
        model.setdefault(g, group())
        for name, arr in (("images", pix), ("names", names)):
            p = f"{g}/{name}"
            if p in model:
                model[p]["data"] = cat(model[p]["data"], arr)
            else:
                model[p] = dataset(arr)
    from h5vc.engine.format import FORMAT_VERSION

    if FORMAT_VERSION >= 3:
        return  # provenance is in /.h5vc (the h5vc under test is this one, or newer)
    p = f"{target}/_h5vc_sources"  # the h5vc under test keeps it in a dataset of the group
    if p in model:
        model[p]["data"] = cat(model[p]["data"], imp["sources"])
    else:
        model[p] = dataset(imp["sources"])


# -- templates ------------------------------------------------------------------------------------


def _ds_kwargs(chunks: tuple[int, ...], gzip: bool = False) -> dict[str, Any]:
    kw: dict[str, Any] = {"chunks": chunks, "maxshape": (None, *chunks[1:])}
    if gzip:
        kw["compression"] = "gzip"
    return kw


def write_model(f: h5py.File, model: Model, layout: dict[str, tuple[tuple[int, ...], bool]]) -> None:
    for p in sorted(model):
        node = model[p]
        if node["k"] == "g":
            obj = f if p == "/" else f.require_group(p)
        else:
            chunks, gz = layout[p]
            obj = f.create_dataset(p, data=node["data"], dtype=node["data"].dtype,
                                   **_ds_kwargs(chunks, gz))
        for k, v in node["attrs"].items():
            obj.attrs[k] = v


def _init_from_model(store: Path, model: Model, layout: dict[str, Any], message: str) -> str:
    from h5vc import Repository

    with h5py.File(store, "w") as f:
        write_model(f, model, layout)
    with Repository.init(store, message=message, pointer=False) as repo:
        return repo.head.id


def rng_rows(rng: np.random.Generator, n: int, tail: tuple[int, ...], dt: str) -> np.ndarray:
    if np.dtype(dt).kind == "f":
        return rng.standard_normal((n, *tail)).astype(dt)
    info = np.iinfo(dt)
    return rng.integers(max(info.min, -(2**30)), min(info.max, 2**30), size=(n, *tail), dtype=dt)


COMMIT_LAYOUT = {"/s/a": ((1024, 4), True), "/s/b": ((2048,), False), "/s/t": ((64,), False)}
TX_LAYOUT = {"/t/a": ((2048, 4), False), "/t/b": ((4096,), False), "/t/c": ((512, 16), True)}
CHECKOUT_LAYOUT = {"/d/x": ((4096, 4), False), "/d/y": ((8192,), False), "/d/z": ((2048, 2), True),
                   "/d/gone": ((1024, 8), False), "/d/s": ((256,), False)}


def commit_model() -> Model:
    rng = np.random.default_rng(101)
    return {"/": group({"title": "fault-commit"}), "/s": group({"count": np.int64(0)}),
            "/s/a": dataset(rng_rows(rng, 10000, (4,), "f4"), {"unit": "mV"}),
            "/s/b": dataset(rng_rows(rng, 10000, (), "i8")),
            "/s/t": dataset(strings("t", 100))}


def tx_model() -> Model:
    rng = np.random.default_rng(202)
    return {"/": group({"title": "fault-tx"}), "/t": group({"n": np.int64(0)}),
            "/t/a": dataset(rng_rows(rng, 30000, (4,), "f8")),
            "/t/b": dataset(rng_rows(rng, 30000, (), "i4")),
            "/t/c": dataset(rng_rows(rng, 8000, (16,), "u2"), {"kind": "counts"})}


def checkout_models() -> tuple[Model, Model]:
    """Commits A and B: B appends, shrinks, rewrites, changes attributes, deletes a dataset and
    creates one; about 50,000 rows differ."""
    rng = np.random.default_rng(303)
    a: Model = {"/": group({"title": "fault-checkout"}), "/d": group({"version": np.int64(1)}),
                "/d/x": dataset(rng_rows(rng, 60000, (4,), "f8"), {"unit": "m", "old": np.int64(1)}),
                "/d/y": dataset(rng_rows(rng, 100000, (), "i4")),
                "/d/z": dataset(rng_rows(rng, 30000, (2,), "f4")),
                "/d/gone": dataset(rng_rows(rng, 10000, (8,), "u1")),
                "/d/s": dataset(strings("s", 400))}
    b = copy.deepcopy(a)
    b["/"]["attrs"]["title"] = "fault-checkout B"
    b["/d"]["attrs"]["version"] = np.int64(2)
    b["/d/x"]["data"] = cat(a["/d/x"]["data"], rng_rows(rng, 15000, (4,), "f8"))
    b["/d/x"]["attrs"] = {"unit": "km"}
    b["/d/y"]["data"] = a["/d/y"]["data"][:90000].copy()
    b["/d/y"]["attrs"] = {"note": "shrunk"}
    z = a["/d/z"]["data"].copy()
    z[5000:15000] = rng_rows(rng, 10000, (2,), "f4")
    b["/d/z"]["data"] = z
    del b["/d/gone"]
    b["/d/new"] = dataset(rng_rows(rng, 5000, (3,), "f8"), {"made": "in B"})
    b["/d/s"]["data"] = cat(a["/d/s"]["data"], strings("s", 100, 400))
    return a, b


def build_checkout(store: Path) -> tuple[Model, list[dict[str, Any]]]:
    from h5vc import Repository

    a, b = checkout_models()
    aid = _init_from_model(store, a, CHECKOUT_LAYOUT, "A")
    with Repository.open(store) as repo:
        with repo.transaction("B") as tx:
            tx["/"].attrs["title"] = b["/"]["attrs"]["title"]
            tx["/d"].attrs["version"] = b["/d"]["attrs"]["version"]
            x = tx["/d/x"]
            x.append(b["/d/x"]["data"][60000:])
            del x.attrs["old"]
            x.attrs["unit"] = "km"
            tx["/d/y"].resize(90000)
            tx["/d/y"].attrs["note"] = "shrunk"
            tx["/d/z"][5000:15000] = b["/d/z"]["data"][5000:15000]
            del tx["/d/gone"]
            tx.create_dataset("/d/new", data=b["/d/new"]["data"], chunks=(1024, 3),
                              maxshape=(None, 3))
            tx["/d/new"].attrs["made"] = "in B"
            tx["/d/s"].append(b["/d/s"]["data"][400:])
        bid = tx.commit.id
    return b, [{"id": aid, "digest": digest_model(a), "name": "A"},
               {"id": bid, "digest": digest_model(b), "name": "B"}]


def tx_step(model: Model, rng: np.random.Generator, k: int, tx: Any = None) -> str:
    """One transaction's edits, applied to the model (and to ``tx`` when given)."""
    kind = str(rng.choice(["append", "rewrite", "shrink", "mixed"]))
    a, b, c = model["/t/a"], model["/t/b"], model["/t/c"]
    if kind == "shrink" and len(a["data"]) < 20000:
        kind = "append"
    if kind == "append":
        m = int(rng.integers(2000, 8000))
        ra, rb = rng_rows(rng, m, (4,), "f8"), rng_rows(rng, m, (), "i4")
        a["data"] = cat(a["data"], ra)
        b["data"] = cat(b["data"], rb)
        model["/t"]["attrs"]["n"] = np.int64(k)
        if tx is not None:
            tx["/t/a"].append(ra)
            tx["/t/b"].append(rb)
            tx["/t"].attrs["n"] = np.int64(k)
    elif kind == "rewrite":
        r = int(rng.integers(1000, 5000))
        i = int(rng.integers(0, len(a["data"]) - r))
        j = int(rng.integers(0, len(c["data"]) - 500))
        ra, rc = rng_rows(rng, r, (4,), "f8"), rng_rows(rng, 500, (16,), "u2")
        a["data"] = a["data"].copy()
        a["data"][i:i + r] = ra
        c["data"] = c["data"].copy()
        c["data"][j:j + 500] = rc
        if tx is not None:
            tx["/t/a"][i:i + r] = ra
            tx["/t/c"][j:j + 500] = rc
    elif kind == "shrink":
        s = int(rng.integers(1000, 6000))
        n = len(a["data"]) - s
        a["data"] = a["data"][:n].copy()
        nb = max(1000, len(b["data"]) - s // 2)
        b["data"] = b["data"][:nb].copy()
        if tx is not None:
            tx["/t/a"].resize(n)
            tx["/t/b"].resize(nb)
    else:  # mixed: append to c, rewrite b, shrink a a little, an attribute
        m = int(rng.integers(200, 800))
        rc = rng_rows(rng, m, (16,), "u2")
        c["data"] = cat(c["data"], rc)
        r = min(2000, len(b["data"]))
        rb = rng_rows(rng, r, (), "i4")
        b["data"] = b["data"].copy()
        b["data"][:r] = rb
        n = max(1000, len(a["data"]) - 500)
        a["data"] = a["data"][:n].copy()
        c["attrs"]["last"] = f"mixed {k}"
        if tx is not None:
            tx["/t/c"].append(rc)
            tx["/t/b"][0:r] = rb
            tx["/t/a"].resize(n)
            tx["/t/c"].attrs["last"] = f"mixed {k}"
    return kind


def build_bitflip(store: Path) -> tuple[Model, list[dict[str, Any]]]:
    """A few commits (appends, rewrites, shrinks, attributes) and a checkout back and forth, so
    that the file holds preserved ranges as well as live rows."""
    from h5vc import Repository

    model = tx_model()
    commits = [{"id": _init_from_model(store, model, TX_LAYOUT, "init"), "digest": digest_model(model)}]
    rng = np.random.default_rng(404)
    with Repository.open(store) as repo:
        for k in range(1, 5):
            with repo.transaction(f"edit {k}") as tx:
                tx_step(model, rng, k, tx)
            commits.append({"id": tx.commit.id, "digest": digest_model(model)})
        repo.checkout(commits[1]["id"])
        repo.checkout("main")
    return model, commits


def build(op: str, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    store = out / "store.h5"
    store.unlink(missing_ok=True)
    meta: dict[str, Any] = {"op": op}
    if op == "add":
        make_images(out / "photos")
        meta["photos"] = str(out / "photos")
        model: Model = {"/": group({"title": "fault-add"})}
        cid = _init_from_model(store, model, {}, "init")
        commits = [{"id": cid, "digest": digest_model(model)}]
    elif op == "commit":
        model = commit_model()
        commits = [{"id": _init_from_model(store, model, COMMIT_LAYOUT, "init"),
                    "digest": digest_model(model)}]
    elif op == "transaction":
        model = tx_model()
        commits = [{"id": _init_from_model(store, model, TX_LAYOUT, "init"),
                    "digest": digest_model(model)}]
    elif op in ("checkout", "repair"):
        model, commits = build_checkout(store)
    elif op == "bitflip":
        model, commits = build_bitflip(store)
    elif op == "writers":
        model = {"/": group(), "/w": group(),
                 "/w/w0": dataset(np.zeros((0, 8), "i8")), "/w/w1": dataset(np.zeros((0, 8), "i8"))}
        layout = {"/w/w0": ((256, 8), False), "/w/w1": ((256, 8), False)}
        commits = [{"id": _init_from_model(store, model, layout, "init"), "digest": digest_model(model)}]
    else:
        raise SystemExit(f"unknown op {op}")
    # the model is what was written; the file is checked against it once, so that a harness
    # bug (a wrong model) shows up here and not as a failure of every trial
    got = digest_file(store)
    if got != digest_model(model):
        raise SystemExit(f"template {op}: the store does not match the model (harness bug)")
    meta["commits"] = commits
    meta["head"] = commits[-1]["id"]
    meta["branch"] = "main"
    with open(out / "model.pkl", "wb") as fh:
        pickle.dump(model, fh)
    (out / "meta.json").write_text(json.dumps(meta, indent=1))


# -- operation loops -------------------------------------------------------------------------------


class Boom(Exception):
    """Raised inside a transaction to roll it back."""


def run(op: str, tdir: Path, log_path: str, seed: int, max_ops: int) -> None:
    store = tdir / "store.h5"
    meta = json.loads((tdir / "meta.json").read_text())
    with open(tdir / "model.pkl", "rb") as fh:
        model: Model = pickle.load(fh)
    log = Log(log_path)
    rng = np.random.default_rng([seed, 7])
    if op == "transaction":
        from h5vc import Repository

        repo = Repository.open(store, mode="r+")
    elif op == "add":
        photos = Path(meta["photos"])
        imp = images_import(photos)
    log.write(ev="ready")
    for k in range(max_ops):
        if op == "add":
            target = "/train" if k % 2 == 0 else f"/b{k}"
            nxt = copy.deepcopy(model)
            apply_import(nxt, target, imp)
            d = digest_model(nxt)
            log.write(ev="begin", k=k, expect=d)
            log.write(ev="go", k=k)
            r = cli("add", str(photos), "--to", target, "--force", "-m", f"add {k}",
                    "-s", str(store), "--json")
            if r.returncode != 0:
                log.write(ev="fail", k=k, rc=r.returncode, stderr=r.stderr[-4000:])
                return
            cid = json.loads(r.stdout)["commit"]
            model = nxt
            log.write(ev="done", k=k, commit=cid, digest=d)
        elif op == "commit":
            nxt = copy.deepcopy(model)
            m = int(rng.integers(2000, 10000))
            ra, rb = rng_rows(rng, m, (4,), "f4"), rng_rows(rng, m, (), "i8")
            rt = strings(f"c{k}", 5)
            nxt["/s/a"]["data"] = cat(nxt["/s/a"]["data"], ra)
            nxt["/s/b"]["data"] = cat(nxt["/s/b"]["data"], rb)
            nxt["/s/t"]["data"] = cat(nxt["/s/t"]["data"], rt)
            nxt["/s"]["attrs"]["count"] = np.int64(k + 1)
            d = digest_model(nxt)
            log.write(ev="begin", k=k, expect=d)
            with h5py.File(store, "r+") as f:  # the user's own writes, with plain h5py
                for p, rows in (("/s/a", ra), ("/s/b", rb), ("/s/t", rt)):
                    ds = f[p]
                    n = ds.shape[0]
                    ds.resize(n + len(rows), axis=0)
                    ds[n:] = rows
                f["/s"].attrs["count"] = np.int64(k + 1)
            log.write(ev="go", k=k)  # from here on only h5vc writes the file
            r = cli("commit", "-m", f"commit {k}", "-s", str(store))
            if r.returncode != 0:
                log.write(ev="fail", k=k, rc=r.returncode, stderr=r.stderr[-4000:])
                return
            short = re.match(r"\[\S+ ([0-9a-f]+)\]", r.stdout)
            model = nxt
            log.write(ev="done", k=k, commit=short.group(1) if short else None, digest=d)
        elif op == "checkout":
            a, b = meta["commits"]
            target, rev = (a, a["id"]) if k % 2 == 0 else (b, "main")
            log.write(ev="begin", k=k, expect=target["digest"], target=target["id"])
            log.write(ev="go", k=k)
            r = cli("checkout", rev, "-s", str(store))
            if r.returncode != 0:
                log.write(ev="fail", k=k, rc=r.returncode, stderr=r.stderr[-4000:])
                return
            log.write(ev="done", k=k, commit=target["id"], digest=target["digest"], moved=True)
        elif op == "transaction":
            nxt = copy.deepcopy(model)
            rollback = bool(rng.random() < 0.3)
            step_rng = np.random.default_rng([seed, k])
            kind = tx_step(nxt, np.random.default_rng([seed, k]), k)
            d = digest_model(nxt)
            log.write(ev="begin", k=k, expect=d, kind=kind, rollback=rollback)
            log.write(ev="go", k=k)
            scratch = copy.deepcopy(model)
            try:
                with repo.transaction(f"tx {k} {kind}") as tx:
                    tx_step(scratch, step_rng, k, tx)
                    if rollback:
                        raise Boom()
            except Boom:
                log.write(ev="done", k=k, commit=None, rolled_back=True)
                continue
            except Exception as e:  # noqa: BLE001 - reported to the harness
                log.write(ev="fail", k=k, rc=1, stderr=traceback.format_exc()[-4000:], error=repr(e))
                return
            model = nxt
            log.write(ev="done", k=k, commit=tx.commit.id if tx.commit else None, digest=d)
        elif op == "repair":
            head = meta["commits"][-1]
            log.write(ev="begin", k=k, expect=head["digest"])
            log.write(ev="go", k=k)
            r = cli("repair", "-s", str(store))
            if r.returncode != 0:
                log.write(ev="fail", k=k, rc=r.returncode, stderr=r.stderr[-4000:])
                return
            log.write(ev="done", k=k, commit=None)
        else:
            raise SystemExit(f"unknown op {op}")
    log.write(ev="end")


# -- two writers ------------------------------------------------------------------------------------


def writer_rows(wid: int, i: int, n: int = 200) -> np.ndarray:
    base = wid * 10**9 + i * 10**6
    return (base + np.arange(n * 8, dtype="i8")).reshape(n, 8)


def open_writer(store: str, wait: float) -> tuple[Any, str]:
    """``Repository.open(store, "r+", wait=...)``; where ``wait`` is not supported yet, a plain
    open retried while it says the store is locked (returns the repo and which was used)."""
    from h5vc import LockedError, Repository

    try:
        return Repository.open(store, mode="r+", wait=wait), "wait"
    except TypeError:
        pass
    deadline = time.monotonic() + wait
    while True:
        try:
            return Repository.open(store, mode="r+"), "retry"
        except LockedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def writer(store: str, wid: int, n: int, log_path: str, go: str) -> None:
    log = Log(log_path)
    log.write(ev="ready", wid=wid)
    while not os.path.exists(go):
        time.sleep(0.001)
    for i in range(n):
        try:
            repo, how = open_writer(store, 30)
            try:
                with repo.transaction(f"w{wid} {i}") as tx:
                    tx[f"/w/w{wid}"].append(writer_rows(wid, i))
                cid = tx.commit.id
            finally:
                repo.close()
        except Exception as e:  # noqa: BLE001 - reported, the writer goes on
            d = _err(e)
            log.write(ev="fail", wid=wid, i=i, error=d["error"], clean=d["clean"])
            continue
        data = cat(*[writer_rows(wid, j) for j in range(i + 1)])
        log.write(ev="done", wid=wid, i=i, commit=cid, open=how,
                  digest=digest_model({"p": dataset(data)}, ["p"]))
    log.write(ev="end", wid=wid)


def writer_prefix(wid: int, data: np.ndarray) -> int | None:
    """How many of writer ``wid``'s commits ``data`` holds, or None if it is not such a prefix."""
    if data.ndim != 2 or data.shape[1:] != (8,) or len(data) % 200:
        return None
    i = len(data) // 200
    want = cat(*[writer_rows(wid, j) for j in range(i)]) if i else np.zeros((0, 8), "i8")
    return i if np.array_equal(data, want) else None


# -- checks ----------------------------------------------------------------------------------------


def _err(e: BaseException) -> dict[str, Any]:
    from h5vc import H5vcError

    clean = isinstance(e, H5vcError)
    return {"error": f"{type(e).__name__}: {e}"[:600], "clean": clean,
            "traceback": "" if clean else traceback.format_exc()[-3000:]}


def check(req: dict[str, Any]) -> dict[str, Any]:
    """Run the checks a request asks for; every failure is caught and described."""
    out: dict[str, Any] = {}
    store = req["store"]
    if req.get("digest"):
        try:
            out["digest"] = digest_file(store)
        except Exception as e:  # noqa: BLE001
            out["digest_error"] = _err(e)
    if req.get("checkouts") is not None:
        out["checkouts"] = checkouts(store, req["checkouts"], Path(req["workdir"]),
                                     req.get("writers", False))
    if req.get("fallback_verify"):
        out["verify"] = fallback_verify(store, Path(req["workdir"]))
    return out


def checkouts(store: str, commits: list[list[Any]], work: Path, writers: bool = False) -> dict[str, Any]:
    """Check out each (rev, digest) on a copy of the store; compare with h5py's reading."""
    from h5vc import Repository

    work.mkdir(parents=True, exist_ok=True)
    copy_path = work / "checkouts.h5"
    shutil.copyfile(store, copy_path)
    res: dict[str, Any] = {}
    for rev, want in commits:
        r: dict[str, Any] = {}
        try:
            with Repository.open(copy_path, mode="r+") as repo:
                c = repo.checkout(rev, force=True)
                r["id"] = c.commit.id
                st = repo.status(verify=True)
                r["clean_after"] = st.clean
        except Exception as e:  # noqa: BLE001
            r.update(_err(e))
            res[rev] = r
            continue
        try:
            if writers:
                m = read_model(copy_path)
                wid, d = want
                got = digest_model({"p": m[f"/w/w{wid}"]}, ["p"])
                r["match"] = got == d
                other = m.get(f"/w/w{1 - wid}")
                r["other_ok"] = other is not None and writer_prefix(1 - wid, other["data"]) is not None
            else:
                got = digest_file(copy_path)
                r["match"] = got == want
                r["got"] = got
        except Exception as e:  # noqa: BLE001
            r["read_error"] = _err(e)
        res[rev] = r
    copy_path.unlink(missing_ok=True)
    return res


def fallback_verify(store: str, work: Path) -> dict[str, Any]:
    """What can be checked without `h5vc verify`: the history reads, every commit checks out
    (preserved content matches its hashes), and after each checkout the live rows rehash to
    the commit (status --verify clean). HEAD's committed rows are rehashed in place first."""
    from h5vc import Repository

    problems: list[str] = []
    tracebacks: list[str] = []
    ids: list[str] = []
    try:
        with Repository.open(store, mode="r") as repo:
            head = repo.head.id if repo.head else None
            revs = ["HEAD", *repo.branches(), *repo.tags()]
            seen: set[str] = set()
            for rev in revs:
                for c in repo.log(rev):
                    if c.id not in seen:
                        seen.add(c.id)
                        ids.append(c.id)
                        repo.state_of(c.id)
            st = repo.status(verify=True)
            for ch in st.changes:
                if ch["op"] == "rows" and any(r[0] < min(ch["from"], ch["to"]) for r in ch["ranges"]):
                    problems.append(f"HEAD's committed rows of {ch['path']} differ from their hashes")
    except Exception as e:  # noqa: BLE001
        d = _err(e)
        problems.append(d["error"])
        if d["traceback"]:
            tracebacks.append(d["traceback"])
        return {"ok": False, "problems": problems, "tracebacks": tracebacks}
    work.mkdir(parents=True, exist_ok=True)
    copy_path = work / "verify.h5"
    shutil.copyfile(store, copy_path)
    # every commit, then back to where HEAD was: HEAD's own rows may be needed from packs
    back = [head] if head else []
    for cid in [*ids, *back]:
        try:
            with Repository.open(copy_path, mode="r+") as repo:
                repo.checkout(cid, force=True)
                if not repo.status(verify=True).clean:
                    problems.append(f"after checking out {cid[:10]} the store differs from it")
        except Exception as e:  # noqa: BLE001
            d = _err(e)
            problems.append(f"checkout {cid[:10]}: {d['error']}")
            if d["traceback"]:
                tracebacks.append(d["traceback"])
    copy_path.unlink(missing_ok=True)
    return {"ok": not problems, "problems": problems, "tracebacks": tracebacks, "head": head,
            "commits": len(ids)}


# -- fork server -----------------------------------------------------------------------------------


def serve() -> None:
    """Run requests in forked children of this process, which has imported h5vc, its CLI and
    plugins, h5py and numpy once: a command then costs its own work, not ~0.3 s of imports.

    One JSON request per line on stdin: ``{"kind": "cli" | "check", "argv": [...], "env": {...},
    "cwd": ..., "out": FILE, "err": FILE, "timeout": SECONDS}``; one JSON reply per line on
    stdout: ``{"rc": exit code (negative: killed by that signal), "timed_out": bool}``. A child
    behaves as ``h5vc ARGV`` (or ``worker.py check``) would: its output goes to the files, an
    uncaught exception prints a traceback and exits 1, exit handlers run (h5py closes files).
    """
    import atexit

    import h5vc.cli  # noqa: F401 - imported here, once, for every child
    from h5vc.importing import registry as plugins

    try:
        plugins.importers()
    except Exception:  # noqa: BLE001 - a child reports it
        pass
    proto = os.fdopen(os.dup(1), "w")  # replies; fds 0 and 1 of children are their own
    reqs = os.fdopen(os.dup(0), "r")
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    for line in reqs:
        req = json.loads(line)
        pid = os.fork()
        if pid == 0:  # the child
            code = 1
            try:
                proto.close()
                reqs.close()
                out = os.open(req["out"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                err = os.open(req["err"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                os.dup2(out, 1)
                os.dup2(err, 2)
                sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
                sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
                os.environ.update(req.get("env") or {})
                if req.get("cwd"):
                    os.chdir(req["cwd"])
                try:
                    if req["kind"] == "cli":
                        sys.argv = ["h5vc", *req["argv"]]
                        h5vc.cli.main()
                        code = 0
                    else:
                        main(req["argv"])
                        code = 0
                except SystemExit as e:
                    if e.code is None or isinstance(e.code, int):
                        code = e.code or 0
                    else:
                        print(e.code, file=sys.stderr)
                        code = 1
                except BaseException:  # noqa: BLE001 - as the interpreter would print it
                    traceback.print_exc()
                    code = 1
                atexit._run_exitfuncs()
            finally:
                try:
                    sys.stdout.flush()
                    sys.stderr.flush()
                finally:
                    os._exit(code)
        pidfd = os.pidfd_open(pid)
        ready, _, _ = select.select([pidfd], [], [], float(req.get("timeout", 300)))
        os.close(pidfd)
        timed_out = not ready
        if timed_out:
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        proto.write(json.dumps({"rc": os.waitstatus_to_exitcode(status), "timed_out": timed_out}) + "\n")
        proto.flush()


def main(argv: list[str]) -> None:
    os.environ.setdefault("H5VC_AUTHOR", "Fault Harness <fault@example.org>")
    cmd = argv[0]
    if cmd == "build":
        build(argv[1], Path(argv[2]))
    elif cmd == "run":
        run(argv[1], Path(argv[2]), argv[3], int(argv[4]), int(argv[5]))
    elif cmd == "check":
        req = json.loads(Path(argv[1]).read_text())
        print(json.dumps(check(req)))
    elif cmd == "writer":
        writer(argv[1], int(argv[2]), int(argv[3]), argv[4], argv[5])
    elif cmd == "serve":
        serve()
    elif cmd == "digest":
        print(digest_file(argv[1]))
    else:
        raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    main(sys.argv[1:])
