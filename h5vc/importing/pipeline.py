"""The import pipeline: files in, datasets appended, one commit out.

Importers (plugins) only turn files into :class:`Batch` es of rows. Everything else is the
core's: finding files, choosing importers by suffix, skipping files already imported
(provenance), creating chunked resizable datasets, appending, attributes, progress, and one
transaction so that an import is all or nothing.

A plugin author subclasses :class:`~h5vc.importing.api.Importer` and registers an instance
from the ``register_importers`` hook (see docs/plugins.md).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import h5py
import numpy as np
import xxhash

from ..engine.provenance import LEGACY, legacy_sources
from ..engine.space import disk_full
from ..engine.state import row_bytes
from ..errors import DiskFullError, H5vcError, InvalidInputError, NotFoundError
from ..paths import normalize_path
from ..progress import make_bar
from .api import BadInputError, Batch, ImportContext, Source

__all__ = ["COMPRESSIONS", "AddResult", "compression_kwargs", "filters_for", "run_import"]

COMPRESSIONS = ("gzip", "lzf", "none", "blosc-zstd", "blosc-lz4")


@dataclass
class AddResult:
    """What an import did (or, with ``dry_run``, would do)."""

    commit: Any
    target: str
    imported: list[str]
    already: list[str]
    bad: list[tuple[str, str]]
    rows: dict[str, int]
    created: list[str]
    importers: dict[str, int]
    dry_run: bool = False
    notices: list[str] = field(default_factory=list)  # one line each, e.g. a compression fallback

    def to_json(self) -> dict[str, Any]:
        return {
            "commit": self.commit.id if self.commit is not None else None,
            "target": self.target, "imported": self.imported, "already_imported": self.already,
            "bad": [{"path": p, "reason": r} for p, r in self.bad], "rows": self.rows,
            "created": self.created, "importers": self.importers, "dry_run": self.dry_run,
            "notices": self.notices,
        }


def compression_kwargs(name: str) -> dict[str, Any]:
    """h5py keyword arguments for ``--compression``."""
    if name == "gzip":
        return {"compression": "gzip", "compression_opts": 1}
    if name == "lzf":
        return {"compression": "lzf"}
    if name == "none":
        return {}
    if name in ("blosc-zstd", "blosc-lz4"):
        try:
            import hdf5plugin
        except ImportError:
            raise InvalidInputError(
                f"--compression {name} needs hdf5plugin: pip install hdf5plugin "
                "(readers need it too; gzip is readable everywhere)") from None
        cname = "zstd" if name == "blosc-zstd" else "lz4"
        return dict(hdf5plugin.Blosc(cname=cname, clevel=5, shuffle=hdf5plugin.Blosc.SHUFFLE))
    raise InvalidInputError(f"unknown compression {name!r}; choose one of {', '.join(COMPRESSIONS)}")


FALLBACK = "gzip"  # for data a chosen filter cannot compress


def filters_for(name: str, dtype: Any) -> str:
    """The ``--compression`` that applies to a new dataset of ``dtype``: ``name`` or a fallback.

    Blosc compresses fixed-size elements only; on variable-length data (strings, vlen arrays,
    compounds holding them) the HDF5 blosc filter crashes the process (SIGFPE), so such datasets
    get gzip. gzip, lzf and none apply to every dtype h5py writes.
    """
    if name.startswith("blosc") and np.dtype(dtype).hasobject:
        return FALLBACK
    return name


def _norm_group(to: str) -> str:
    return normalize_path(to, "--to")


def collect_sources(paths: list[Path], skip_bad: bool, skipped: list[tuple[str, str]],
                    follow_symlinks: bool = False) -> list[Source]:
    """Files named, and files below folders named, with their recorded paths and categories.

    A path named is used whatever it is (a symbolic link named is followed). Below a folder,
    hidden entries are left out and a symbolic link is only followed if it leads inside the
    folder (a link to a folder inside is not descended into: its files are found where they
    are), unless ``follow_symlinks``; a link leading outside is never opened: it stops the
    import, or is skipped and listed with ``skip_bad``. Special files (FIFOs, devices) are
    left out.
    """
    out: list[Source | None] = []
    outside: list[tuple[str, str]] = []  # (recorded path, where the link leads)
    for root in paths:
        if not root.exists():
            if root.is_symlink():
                raise NotFoundError(f"{root} is a broken symbolic link (to {os.readlink(root)}); "
                                    "fix or remove it")
            raise NotFoundError(f"{root} does not exist")
        if root.is_dir():
            before = len(skipped)
            found = _walk(root, follow_symlinks, outside, skip_bad, skipped)
            if not found and not outside and len(skipped) == before:
                raise InvalidInputError(f"folder {root} holds no files to import")
            for p, inner in found:
                cat = inner[0] if len(inner) > 1 else None
                out.append(_source(p, "/".join((root.name, *inner)), cat, skip_bad, skipped))
        else:
            out.append(_source(root, root.name, None, skip_bad, skipped))
    if outside:
        shown = ", ".join(f"{rel} -> {to}" for rel, to in outside[:SHOWN_LINKS])
        more = f" and {len(outside) - SHOWN_LINKS} more" if len(outside) > SHOWN_LINKS else ""
        one = len(outside) == 1
        raise InvalidInputError(
            f"{'a symbolic link leads' if one else 'symbolic links lead'} outside the folder "
            f"given: {shown}{more}; {'it was' if one else 'they were'} not read. Pass "
            f"--follow-symlinks to import what {'it leads' if one else 'they lead'} to, "
            f"or remove {'it' if one else 'them'} (--skip-bad skips {'it' if one else 'them'})")
    return [s for s in out if s is not None]


SHOWN_LINKS = 5  # links named in one error


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _walk(root: Path, follow: bool, outside: list[tuple[str, str]], skip_bad: bool,
          skipped: list[tuple[str, str]]) -> list[tuple[Path, tuple[str, ...]]]:
    """Regular files below ``root`` (not hidden), sorted, as (path, parts below ``root``)."""
    real_root = os.path.realpath(root)
    seen = {real_root}  # real folders walked (a followed link may lead back: no loops)
    found: list[tuple[Path, tuple[str, ...]]] = []

    def visit(folder: str, inner: tuple[str, ...]) -> None:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as e:
            raise InvalidInputError(f"cannot list the folder {folder}: {e.strerror or e}") from None
        for e in entries:
            if e.name.startswith("."):
                continue
            parts = (*inner, e.name)
            if e.is_symlink():
                target = os.path.realpath(e.path)
                rel = "/".join((root.name, *parts))
                if not os.path.exists(target):
                    why = f"a broken symbolic link (to {os.readlink(e.path)})"
                    if not skip_bad:
                        raise BadInputError(f"{rel}: {why}; fix or remove it, or pass --skip-bad")
                    skipped.append((rel, why))
                elif not follow and not _inside(target, real_root):
                    if skip_bad:
                        skipped.append((rel, f"a symbolic link to {target}, outside the folder "
                                             "given; not read (--follow-symlinks imports it)"))
                    else:
                        outside.append((rel, target))
                elif os.path.isdir(target):
                    if not _inside(target, real_root) and target not in seen:
                        seen.add(target)
                        visit(e.path, parts)
                elif os.path.isfile(target):
                    found.append((Path(e.path), parts))
            elif e.is_dir(follow_symlinks=False):
                real = os.path.realpath(e.path)
                if real not in seen:
                    seen.add(real)
                    visit(e.path, parts)
            elif e.is_file(follow_symlinks=False):
                found.append((Path(e.path), parts))

    visit(str(root), ())
    found.sort(key=lambda f: f[1])
    return found


def _source(p: Path, rel: str, cat: str | None, skip_bad: bool,
            skipped: list[tuple[str, str]]) -> Source | None:
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        shown = rel.encode("utf-8", "replace").decode()
        if skip_bad:
            skipped.append((shown, "name is not valid UTF-8"))
            return None
        raise BadInputError(
            f"{shown}: the file name is not valid UTF-8; rename it, or pass --skip-bad") from None
    return Source(p, rel, p.stat().st_size, cat)


def file_hash(path: Path) -> str:
    h = xxhash.xxh3_128()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _auto_chunk_rows(tail: tuple[int, ...], itemsize: int) -> int:
    return max(1, min(65536, (1 << 20) // row_bytes(tail, itemsize)))


class _Progress:
    """The files-imported bar on stderr (:mod:`h5vc.progress`), only on a terminal."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.bar = make_bar("importing", unit="files", total=total, enabled=enabled)

    def __call__(self, n: int) -> None:
        if self.bar is not None:
            self.bar.advance(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class ImportTarget(Protocol):
    """What the pipeline uses of a repository (it sits below it: ``Repository.add`` calls it)."""

    path: Path
    _f: h5py.File

    def sources(self, group: str = "/", rev: str | None = None) -> dict[str, Any]: ...
    def transaction(self, message: str, *, author: str | None = None,
                    commit: bool = True) -> Any: ...


def run_import(repo: ImportTarget, paths: list[str | os.PathLike[str]], *, to: str, message: str | None,
               importer: str | None = None, attrs: dict[str, Any] | None = None,
               compression: str = "gzip", force: bool = False, commit: bool = True,
               dry_run: bool = False, skip_bad: bool = False,
               options: dict[str, Any] | None = None, progress: bool = True,
               follow_symlinks: bool = False) -> AddResult:
    """Import files into group ``to`` of ``repo`` as one commit (see ``h5vc add``).

    ``follow_symlinks``: follow symbolic links below a folder named that lead outside it
    (by default such a link stops the import, or is skipped with ``skip_bad``).
    """
    from . import registry as plugins

    target = _norm_group(to)
    comp = compression_kwargs(compression)
    if importer is not None:
        plugins.importer_for("", importer)  # an unknown name is an error even if nothing is new
    if not (message or "").strip():
        names = [Path(p).name or str(p) for p in paths]
        message = f"add {', '.join(names[:3])}{' ...' if len(names) > 3 else ''} to {target}"
    f = repo._f
    if target in f and isinstance(f[target], h5py.Dataset):
        raise InvalidInputError(f"--to {target} is a dataset; give a group to import into")
    ctx = ImportContext(options=dict(options or {}), skip_bad=skip_bad)
    sources = collect_sources([Path(p) for p in paths], skip_bad, ctx.skipped, follow_symlinks)

    # provenance: files already imported with the same content are skipped
    recorded = repo.sources(target).get(target, {})
    known = {name: src.hash for name, src in recorded.items()}
    legacy = legacy_sources(f, target)  # a store written before provenance moved to /.h5vc
    todo: list[tuple[Source, str]] = []
    already: list[str] = []
    for s in sources:
        h = file_hash(s.path)
        if not force and known.get(s.rel) == h:
            already.append(s.rel)
        else:
            todo.append((s, h))

    by_importer: dict[str, list[Source]] = {}
    infos: dict[str, Any] = {}
    for s, _h in todo:
        try:
            info = plugins.importer_for(s.path.suffix, importer)
        except InvalidInputError as e:
            if not skip_bad or importer is not None:
                raise InvalidInputError(f"{s.rel}: {e}") from None
            ctx.skipped.append((s.rel, "no importer for this suffix"))
            continue
        infos[info.name] = info
        by_importer.setdefault(info.name, []).append(s)
    hashes = {s.rel: h for s, h in todo}
    result = AddResult(None, target, [], already, ctx.skipped, {}, [],
                       {k: len(v) for k, v in by_importer.items()}, dry_run, ctx.notices)
    fallbacks: list[str] = []  # datasets created with FALLBACK instead of `compression`
    if dry_run or not by_importer:
        result.imported = [s.rel for v in by_importer.values() for s in v]
        if not dry_run and not by_importer and not already:
            raise InvalidInputError("nothing to import: every file was skipped as bad")
        return result

    bar = _Progress(sum(len(v) for v in by_importer.values()), progress)
    ctx.on_progress = bar
    done: list[Source] = []
    marks: dict[str, int] = {}  # dataset -> rows when the last file was completed
    try:
        with repo.transaction(message, commit=commit) as tx:

            def take_back() -> None:
                for path, n in marks.items():
                    extra = len(tx[path]) - n if path in tx else 0
                    if extra > 0:
                        tx[path].resize(n)
                        result.rows[path] -= extra

            ctx.on_bad = take_back
            for name, srcs in by_importer.items():
                for batch in infos[name].importer.read(srcs, ctx):
                    group = _group_of(target, batch)
                    for col in batch.columns:
                        path = f"{group}/{col}"
                        if path not in marks:
                            obj = tx[path] if path in tx else None
                            marks[path] = len(obj) if hasattr(obj, "append") else 0
                    _write_batch(tx, target, batch, compression, comp, result, fallbacks)
                    if batch.sources:
                        marks = {p: len(tx[p]) for p in marks if p in tx}
                        done.extend(batch.sources)
            take_back()  # rows of a file that never completed
            if not done:
                if not already:
                    raise InvalidInputError(
                        "nothing to import: every new file was skipped as bad"
                        if ctx.skipped else "nothing to import: the importers produced no rows")
                result.imported = []
                return result  # the new files were all bad; the others were imported before
            group = tx.require_group(target)
            for k, v in (attrs or {}).items():
                group.attrs[k] = v
            if legacy and isinstance(f.get(f"{target}/{LEGACY}"), h5py.Dataset):
                # its rows move into /.h5vc with this commit, and the dataset goes
                tx.record_sources(target, [(p.name, p.size, p.hash) for p in legacy.values()],
                                  moved=True)
                del tx[f"{target}/{LEGACY}"]
            tx.record_sources(target, [(s.rel, s.size, hashes[s.rel]) for s in done])
    except H5vcError:
        raise
    except (OSError, ValueError, TypeError) as e:
        if disk_full(e):
            raise DiskFullError(f"the disk holding {repo.path} is full; nothing was imported or "
                                "committed; free some space and try again",
                                hdf5_failed=True) from None
        raise BadInputError(f"import failed: {e}; nothing was written") from None
    finally:
        bar.close()
    if fallbacks:
        shown = ", ".join(fallbacks[:3]) + (f" and {len(fallbacks) - 3} more" if len(fallbacks) > 3 else "")
        ctx.notice(f"--compression {compression} cannot compress variable-length data (text, "
                   f"encoded files): {shown} stored with {FALLBACK} instead")
    result.commit = tx.commit
    result.imported = [s.rel for s in done]
    return result


def _group_of(target: str, batch: Batch) -> str:
    return target if not batch.group else f"{target.rstrip('/')}/{batch.group.strip('/')}"


def _write_batch(tx: Any, target: str, batch: Batch, compression: str, comp: dict[str, Any],
                 result: AddResult, fallbacks: list[str]) -> None:
    """Append ``batch``.

    New datasets get the filter ``comp`` of ``compression``, or :data:`FALLBACK` where that
    filter cannot apply (their paths are added to ``fallbacks``).
    """
    group = _group_of(target, batch)
    if batch.table and group in tx:
        have = {k for k in tx[group].keys() if k != LEGACY and hasattr(tx[f"{group}/{k}"], "append")}
        cols = set(batch.columns)
        if have and have != cols:
            missing, extra = sorted(have - cols), sorted(cols - have)
            raise InvalidInputError(
                f"{group} holds the columns {', '.join(sorted(have))}; the new data "
                + (f"lacks {', '.join(missing)}" if missing else "")
                + ("; " if missing and extra else "")
                + (f"adds {', '.join(extra)}" if extra else "")
                + "; import into another --to group, or make the columns match")
    for name, rows in batch.columns.items():
        if not name or "/" in name:
            raise InvalidInputError(f"an importer produced an invalid dataset name {name!r}")
        dt = batch.dtypes.get(name)
        if isinstance(rows, np.ndarray):
            arr = rows
        elif dt is not None and np.dtype(dt).kind == "O":
            # element by element: numpy would turn equal-length vlen rows into a 2-D array
            arr = np.empty(len(rows), dtype=dt)
            for i, x in enumerate(rows):
                arr[i] = x
        else:
            arr = np.asarray(rows, dtype=dt)
        if arr.ndim == 0 or len(arr) == 0:
            continue
        if dt is None:
            if arr.dtype.kind == "O":
                raise InvalidInputError(f"{group}/{name}: object data needs an HDF5 dtype")
            if arr.dtype.kind == "U":
                arr, dt = arr.astype(object), h5py.string_dtype()
        path = f"{group}/{name}"
        if path not in tx:
            tail = arr.shape[1:]
            itemsize = arr.dtype.itemsize if dt is None else np.dtype(dt).itemsize
            rows_per_chunk = batch.chunk_rows.get(name) or _auto_chunk_rows(tail, itemsize)
            use = filters_for(compression, dt if dt is not None else arr.dtype)
            kw = comp if use == compression else compression_kwargs(use)
            if use != compression:
                fallbacks.append(path)
            tx.create_dataset(path, data=arr, dtype=dt, chunks=(rows_per_chunk, *tail),
                              maxshape=(None, *tail), **kw)
            result.created.append(path)
        else:
            ds = tx[path]
            if not hasattr(ds, "append"):
                raise InvalidInputError(f"{path} is a group; the importer needs a dataset there")
            have = ds.dtype
            want = np.dtype(dt) if dt is not None else arr.dtype
            same_kind = (h5py.check_string_dtype(have) is not None) == (
                h5py.check_string_dtype(want) is not None or want.kind == "O")
            if ds.shape is None or ds.shape[1:] != arr.shape[1:] or (
                    not have.hasobject and have != want) or not same_kind:
                raise InvalidInputError(
                    f"{path} holds rows of {ds.shape[1:] if ds.shape else ()} {have}, the new data "
                    f"is {arr.shape[1:]} {want}; import into another --to group, or convert the data")
            ds.append(arr)
        result.rows[path] = result.rows.get(path, 0) + len(arr)
