"""Pointer files: ``<store>.h5vc`` beside a store names the store's commit, for git.

A pointer file is tracked by git, so each git commit records the data version its code ran
on::

    format = 1
    store = "data.h5"
    commit = "<h5vc commit id>"
    remote = "s3://bucket/data"   # the store's default remote, when it has one

The repository keeps it naming HEAD (and its default remote's URL, never its options or any
credential: a fresh clone of the code finds the data there); :mod:`h5vc.git.link` reads it
to bring stores to the commit the checked-out code expects. Nothing here runs git.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import InvalidInputError, NotFoundError

__all__ = ["POINTER_SUFFIX", "Pointer", "pointer_path", "read_pointer", "render_pointer",
           "load_toml", "write_pointer"]

POINTER_FORMAT = 1
_HEX = re.compile(r"[0-9a-f]{32}")
_HEADER = (
    "# h5vc pointer: the version of the HDF5 store that goes with this code.\n"
    "# Track it with git; `h5vc sync` (or the git hooks) bring the store to it.\n"
)

POINTER_SUFFIX = ".h5vc"  # the pointer file beside a store, for git: data.h5 -> data.h5.h5vc


def pointer_path(store: str | os.PathLike[str]) -> Path:
    """The pointer file of ``store``: ``data.h5`` -> ``data.h5.h5vc``."""
    p = Path(store)
    return p.with_name(p.name + POINTER_SUFFIX)


@dataclass(frozen=True)
class Pointer:
    """A parsed pointer file: where it is, the store it names (absolute) and the commit."""

    path: Path
    store: Path
    commit: str
    format: int = POINTER_FORMAT
    remote: str | None = None  # the URL of the store's default remote, when it has one


def _toml_str(s: str) -> str:
    # JSON without ASCII escaping is a valid TOML basic string: only ", \ and control
    # characters are escaped, with escapes TOML shares
    return json.dumps(s, ensure_ascii=False)


def render_pointer(store_rel: str, commit: str, remote: str | None = None) -> str:
    text = (f"{_HEADER}format = {POINTER_FORMAT}\nstore = {_toml_str(store_rel)}\n"
            f"commit = {_toml_str(commit)}\n")
    return text + (f"remote = {_toml_str(remote)}\n" if remote else "")


def load_toml(text: str) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    return tomllib.loads(text)


def read_pointer(path: str | os.PathLike[str]) -> Pointer:
    """Parse a pointer file; :class:`InvalidInputError` naming the problem if it is not one."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise NotFoundError(f"no pointer file {p}; write one with `h5vc pointer`") from None
    except OSError as e:
        raise InvalidInputError(f"cannot read pointer file {p}: {e.strerror}") from None
    fix = "check it out again from git (git checkout -- FILE) or rewrite it with `h5vc pointer`"
    if b"\n<<<<<<< " in b"\n" + raw:
        raise InvalidInputError(
            f"{p} is not a valid h5vc pointer: it has git conflict markers; keep one side's "
            "commit, or record the store's version with `h5vc pointer`, then `git add` it"
        )
    try:
        doc = load_toml(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        reason = "not UTF-8 text" if isinstance(e, UnicodeDecodeError) else f"bad TOML: {e}"
        raise InvalidInputError(f"{p} is not a valid h5vc pointer ({reason}); {fix}") from None
    fmt, store, commit = doc.get("format"), doc.get("store"), doc.get("commit")
    if not isinstance(fmt, int) or not isinstance(store, str) or not isinstance(commit, str):
        raise InvalidInputError(
            f"{p} is not a valid h5vc pointer (it needs format, store and commit); {fix}"
        )
    if fmt > POINTER_FORMAT:
        raise InvalidInputError(
            f"{p} has pointer format {fmt}, newer than this h5vc reads ({POINTER_FORMAT}); "
            "upgrade h5vc"
        )
    if not _HEX.fullmatch(commit) or not store:
        raise InvalidInputError(
            f"{p} is not a valid h5vc pointer (commit must be a full 32-digit id and store a "
            f"path); {fix}"
        )
    remote = doc.get("remote")
    if remote is not None and (not isinstance(remote, str) or not remote.strip()):
        raise InvalidInputError(f"{p} is not a valid h5vc pointer (remote must be a URL); {fix}")
    return Pointer(p, (p.parent / store).absolute(), commit, fmt, remote)


def write_pointer(store: Path, commit: str, *, path: Path | None = None,
                  remote: str | None = None) -> bool:
    """Write ``store``'s pointer file naming ``commit`` (and ``remote``, the URL of the store's
    default remote); False when it already said so."""
    path = path or pointer_path(store)
    rel = Path(os.path.relpath(Path(store).absolute(), path.absolute().parent)).as_posix()
    text = render_pointer(rel, commit, remote)
    try:
        if path.read_text("utf-8") == text:
            return False
    except (OSError, UnicodeDecodeError):
        pass
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o666 & ~_umask()
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return True


@functools.lru_cache(maxsize=1)
def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
