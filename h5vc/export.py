"""Export a selection of any revision: a plain HDF5 file, a folder of .npy files, or images.

The selection is made by path (``select``: groups or datasets, with what lies below them) and
by attribute (``where``: ``ATTR=VALUE`` conditions, all of which an object must meet; an
object that meets them is exported with everything below it: the categories). Groups above
what is exported are made too, with their attributes, so that the tree keeps its shape.
Rows are read through :class:`h5vc.view.View` (live where they are the revision's, preserved
copies otherwise), a block at a time. The output is written under a temporary name next to
it and renamed into place when complete: a failure leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .engine.chunks import write_blob
from .engine.hashing import has_refs, plain_value
from .engine.objects import (
    create_dataset,
    make_group,
    ordered_groups,
    put_in_order,
    set_attrs,
    tracks_order,
    write_value,
)
from .engine.state import State, is_below, parent_of, row_bytes, utc_now
from .errors import InvalidInputError, NotFoundError
from .paths import normalize_path
from .view import View, ViewDataset

__all__ = ["ExportReport", "export"]

FORMATS = ("h5", "npy", "images")
BLOCK_BYTES = 64 << 20  # rows copied at a time
LOSSLESS = {".png": "PNG", ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP"}


@dataclass
class ExportReport:
    """What an export wrote."""

    out: Path
    commit: str
    format: str
    paths: list[str] = field(default_factory=list)  # the datasets exported
    rows: int = 0
    files: int = 0  # files written (npy, images)
    bytes: int = 0


def parse_where(conditions: list[str] | None) -> list[tuple[str, str]]:
    out = []
    for c in conditions or []:
        name, sep, value = c.partition("=")
        if not sep or not name.strip():
            raise InvalidInputError(f"--where {c!r}: give ATTR=VALUE, e.g. --where split=train")
        out.append((name.strip(), value.strip()))
    return out


def _matches(value: Any, want: str) -> bool:
    """An attribute's value (plain JSON) against the text of a --where condition."""
    if isinstance(value, bool):
        return want.lower() in (("true", "1", "yes") if value else ("false", "0", "no"))
    if isinstance(value, (int, float)):
        try:
            return float(want) == float(value)
        except ValueError:
            return False
    if isinstance(value, list):
        return want in [str(v) for v in value] or want == json.dumps(value)
    return str(value) == want


def select_paths(state: State, select: list[str] | None,
                 where: list[tuple[str, str]]) -> tuple[list[str], list[str]]:
    """(paths to make, in parent-first order; the selected tops), or NotFoundError."""
    tops = []
    for q in select or ["/"]:
        p = normalize_path(q, "--select")
        if p not in state:
            raise NotFoundError(f"--select {q}: there is no {p} in this revision; see "
                                "`h5vc ls --rev REV`")
        tops.append(p)
    candidates = [p for p in state if any(is_below(p, t) for t in tops)]
    if where:
        hits = [p for p in candidates
                if all(k in state[p]["attrs"] and _matches(plain_value(state[p]["attrs"][k]), v)
                       for k, v in where)]
        if not hits:
            conds = " and ".join(f"{k}={v}" for k, v in where)
            raise NotFoundError(f"no group or dataset under {', '.join(tops)} has {conds} in "
                                "this revision; see its attributes with `h5vc ls --rev REV`")
        kept = {p for p in candidates if any(is_below(p, h) for h in hits)}
    else:
        kept = set(candidates)
    for p in list(kept):
        q = p
        while q != "/":
            q = parent_of(q)
            kept.add(q)
    kept.add("/")
    return sorted(kept, key=lambda p: (p.count("/") if p != "/" else 0, p)), tops


def _blocks(ds: ViewDataset) -> list[tuple[int, int]]:
    shape = ds.shape or ()
    n = shape[0] if shape else 0
    step = max(1, BLOCK_BYTES // max(1, row_bytes(shape[1:], ds.dtype.itemsize)))
    chunk = ds.chunks[0] if ds.chunks else 1
    step = max(chunk, step - step % chunk)
    return [(s, min(n, s + step)) for s in range(0, n, step)]


def _prepare(out: Path, force: bool, folder: bool, store: Path) -> Path:
    if out.exists():
        if out.resolve() == store.resolve():
            raise InvalidInputError(f"{out} is the store itself; export to another file")
        if not force:
            raise InvalidInputError(f"{out} exists; pass --force to replace it")
        if folder != out.is_dir():
            kind = "a folder" if out.is_dir() else "a file"
            raise InvalidInputError(f"{out} is {kind}; this format writes "
                                    + ("a folder" if folder else "a file"))
    parent = out.parent
    if not parent.is_dir():
        raise InvalidInputError(f"the folder {parent} does not exist; create it first")
    if folder:
        return Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=parent))
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".part", dir=parent)
    os.close(fd)
    return Path(tmp)


def _finish(tmp: Path, out: Path) -> None:
    if out.is_dir():
        shutil.rmtree(out)
    os.replace(tmp, out)


def _inside(root: Path, rel: str) -> Path:
    target = (root / rel).resolve()
    if not target.is_relative_to(root.resolve()) or target == root.resolve():
        raise InvalidInputError(f"{rel!r} would be written outside the output folder; "
                                "rename it in the store, or export with --format h5")
    return target


def export(view: View, out: Path, *, store: Path, select: list[str] | None = None,
           where: list[str] | None = None, format: str = "h5",
           force: bool = False) -> ExportReport:
    """Write the selection of ``view`` to ``out`` (see the module's docstring)."""
    if format not in FORMATS:
        raise InvalidInputError(f"--format {format!r}: choose one of {', '.join(FORMATS)}")
    conds = parse_where(where)
    paths, tops = select_paths(view.state, select, conds)
    record = {"source": str(store), "commit": view.commit, "select": tops,
              "where": [f"{k}={v}" for k, v in conds], "time": utc_now()}
    tmp = _prepare(out, force, format != "h5", store)
    report = ExportReport(out, view.commit, format)
    try:
        if format == "h5":
            _write_h5(view, paths, tmp, record, report)
        elif format == "npy":
            _write_npy(view, paths, tmp, record, report)
        else:
            _write_images(view, paths, tmp, record, report)
        _finish(tmp, out)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise
    report.bytes = (out.stat().st_size if out.is_file() else
                    sum(p.stat().st_size for p in out.rglob("*") if p.is_file()))
    return report


def _write_h5(view: View, paths: list[str], tmp: Path, record: dict[str, Any],
              report: ExportReport) -> None:
    state = view.state
    with h5py.File(tmp, "w", track_order=True if tracks_order(state) else None) as f:
        referring: list[str] = []  # objects whose attributes refer to others: set at the end
        valued: list[str] = []  # datasets of references: likewise
        for p in paths:
            node = state[p]
            if node["k"] == "g":
                obj = f if p == "/" else make_group(f, p, attr_order=True if "ao" in node else None)
            else:
                src = view[p]
                assert isinstance(src, ViewDataset)
                rank = node["meta"]["rank"]
                obj = create_dataset(f, p, node["meta"], int(node["n"]) if rank > 0 else 0,
                                     attr_order="ao" in node)
                if "value" in node["meta"]:
                    valued.append(p)  # references: written once every target exists
                elif node["meta"].get("stored"):  # chunks as stored: no filter needed
                    for r in node["ranges"]:
                        write_blob(obj, r[0], view.blob(p, r))
                        report.rows += r[1] - r[0]
                elif rank == 0:
                    obj[()] = src[()]
                elif rank > 0:
                    for s, e in _blocks(src):
                        obj[s:e] = src[s:e]
                        report.rows += e - s
                report.paths.append(p)
            if any(has_refs(a["dtype"]) for a in node["attrs"].values()):
                referring.append(p)
            else:
                set_attrs(obj, node["attrs"], {}, order=node.get("ao"))
        for p in sorted(ordered_groups(state)):
            if p in f:
                put_in_order(f, p, state)  # links made in the order of their names, as recorded
        for p in referring:  # a reference to an object left out of the selection is null
            set_attrs(f[p], state[p]["attrs"], {}, missing_ok=True, order=state[p].get("ao"))
        for p in valued:
            write_value(f[p], state[p]["meta"], missing_ok=True)
        f.attrs["h5vc_export"] = json.dumps(record)
    report.files = 1


def _npy_array(p: str, arr: np.ndarray) -> np.ndarray:
    if arr.dtype.kind == "O":
        if all(isinstance(v, (str, bytes)) for v in arr.flat):
            return np.vectorize(lambda v: v.decode("utf-8", "replace") if isinstance(v, bytes)
                                else v, otypes=[str])(arr) if arr.size else arr.astype(str)
        raise InvalidInputError(f"{p} holds variable-length values that .npy cannot store "
                                "without pickle; export it with --format h5")
    return arr


def _write_npy(view: View, paths: list[str], tmp: Path, record: dict[str, Any],
               report: ExportReport) -> None:
    state = view.state
    attrs: dict[str, Any] = {}
    for p in paths:
        node = state[p]
        attrs[p] = {k: plain_value(v) for k, v in sorted(node["attrs"].items())}
        if node["k"] != "d":
            continue
        src = view[p]
        assert isinstance(src, ViewDataset)
        if src.shape is None:
            continue  # an empty dataspace holds nothing to save
        target = _inside(tmp, p.lstrip("/") + ".npy")
        target.parent.mkdir(parents=True, exist_ok=True)
        np.save(target, _npy_array(p, np.asarray(src[()])), allow_pickle=False)
        report.paths.append(p)
        report.rows += src.shape[0] if src.shape else 1
        report.files += 1
    (tmp / "attributes.json").write_text(json.dumps({"h5vc_export": record, "attrs": attrs},
                                                    indent=2, ensure_ascii=False))


def _write_images(view: View, paths: list[str], tmp: Path, record: dict[str, Any],
                  report: ExportReport) -> None:
    try:
        from PIL import Image
    except ImportError:
        raise InvalidInputError("--format images needs Pillow: pip install h5vc-images") from None
    state = view.state
    wanted = set(paths)
    groups = [p for p in paths if state[p]["k"] == "g"
              and (p.rstrip("/") + "/images" if p != "/" else "/images") in wanted
              and (p.rstrip("/") + "/names" if p != "/" else "/names") in wanted]
    if not groups:
        raise NotFoundError("the selection holds no images: --format images exports groups "
                            "made by the images importer (an images and a names dataset)")
    for g in groups:
        base = "" if g == "/" else g.rstrip("/")
        images, names = view[base + "/images"], view[base + "/names"]
        assert isinstance(images, ViewDataset) and isinstance(names, ViewDataset)
        n = len(images)
        if len(names) != n:
            raise InvalidInputError(f"{g}: {n} images but {len(names)} names; export it with "
                                    "--format h5")
        encoded = images.dtype.kind == "O"
        seen: set[str] = set()
        folder = _inside(tmp, g.lstrip("/")) if g != "/" else tmp
        folder.mkdir(parents=True, exist_ok=True)
        for s, e in _blocks(names):
            label_rows = names[s:e]
            for i, label in enumerate(label_rows, start=s):
                text = label.decode("utf-8", "replace") if isinstance(label, bytes) else str(label)
                name = text.replace("\\", "/").rsplit("/", 1)[-1]
                stem, _, frame = name.partition("#")
                ext = Path(stem).suffix.lower()
                if frame:
                    stem = f"{Path(stem).stem}_{frame}{Path(stem).suffix}"
                if not encoded and ext not in LOSSLESS:
                    stem += ".png"  # decoded pixels: written losslessly, never re-encoded lossy
                if stem in seen or not stem or stem in (".", ".."):
                    stem = f"{i}_{stem}"
                seen.add(stem)
                target = _inside(folder, stem)
                pixels = images[i]
                if encoded:
                    target.write_bytes(np.asarray(pixels, dtype=np.uint8).tobytes())
                else:
                    fmt = LOSSLESS.get(Path(stem).suffix.lower(), "PNG")
                    Image.fromarray(np.asarray(pixels)).save(target, format=fmt)
                report.files += 1
                report.rows += 1
        report.paths += [base + "/images", base + "/names"]
    (tmp / "export.json").write_text(json.dumps(record, indent=2, ensure_ascii=False))
