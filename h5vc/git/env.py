"""The git environment of a store: the work tree holding it, git's identity, what git ignores
and tracks. gitpython is imported only here and only when a ``.git`` is found: opening a store
outside a git work tree costs a few ``stat`` calls. Nothing here knows a repository.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ..engine.lock import lock_path
from ..engine.undo import undo_path
from ..errors import NotARepositoryError
from ..pointer import POINTER_SUFFIX

if TYPE_CHECKING:
    import git

__all__ = ["find_work_tree", "git_identity", "git_or_none", "ignore_store", "is_ignored",
           "is_tracked", "listed_pointer_files", "git_paths", "open_git", "pointer_files"]


def _has_dot_git(start: Path) -> bool:
    """Cheap pre-check: is there a ``.git`` in ``start`` or above? (no gitpython import)"""
    if os.environ.get("GIT_DIR"):
        return True
    for d in (start, *start.parents):
        if os.path.lexists(os.path.join(d, ".git")):
            return True
    return False


@contextlib.contextmanager
def git_or_none(start: str | os.PathLike[str]) -> Iterator[git.Repo | None]:
    """The git repository whose work tree holds ``start``, or None; closed on exit.

    Outside git this costs a few ``stat`` calls: gitpython is imported only when a ``.git``
    is found above ``start``.
    """
    s = Path(start).absolute()
    if not s.is_dir():
        s = s.parent
    if not _has_dot_git(s):
        yield None
        return
    import git

    try:
        g = git.Repo(s, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        yield None
        return
    try:
        yield None if g.working_tree_dir is None else g
    finally:
        g.close()


def find_work_tree(start: str | os.PathLike[str]) -> Path | None:
    """The top folder of the git work tree holding ``start``, or None."""
    with git_or_none(start) as g:
        return None if g is None else Path(g.working_tree_dir or ".")


@contextlib.contextmanager
def open_git(start: str | os.PathLike[str] | None = None) -> Iterator[git.Repo]:
    """The git repository of the work tree holding ``start`` (default: the current folder).

    Closed on exit: gitpython keeps ``git cat-file`` processes alive until then.
    """
    import git

    s = Path(start) if start is not None else Path.cwd()
    try:
        g = git.Repo(s, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise NotARepositoryError(
            f"{s} is not inside a git work tree; run this in your project's git repository "
            "(or `git init` one)"
        ) from None
    try:
        if g.working_tree_dir is None:
            raise NotARepositoryError(f"{g.git_dir} is a bare git repository; use a clone of it")
        yield g
    finally:
        g.close()


def git_identity(start: str | os.PathLike[str]) -> str | None:
    """``Name <email>`` as git would author a commit in the work tree holding ``start``.

    Remembered per folder and environment for the life of the process (a script that opens
    a store for every commit pays for reading git's configuration once).
    """
    s = Path(start).absolute()
    return _identity_cached(str(s if s.is_dir() else s.parent),
                            os.environ.get("GIT_AUTHOR_NAME"), os.environ.get("GIT_AUTHOR_EMAIL"))


@functools.lru_cache(maxsize=64)
def _identity_cached(folder: str, name: str | None, email: str | None) -> str | None:
    with git_or_none(folder) as g:
        if g is None:
            return None
        if not (name and email):
            cfg = g.config_reader()
            name = name or cfg.get_value("user", "name", default="") or None
            email = email or cfg.get_value("user", "email", default="") or None
    if not name:
        return None
    return f"{name} <{email}>" if email else str(name)


def ignore_store(g: git.Repo, store: Path) -> Path | None:
    """Add ``/<store name>`` (and h5vc's lock file and rollback journal beside it) to the
    .gitignore beside the store unless git ignores them already.

    Returns the .gitignore written, or None.
    """
    todo = [p for p in (store, lock_path(store), undo_path(store)) if not is_ignored(g, p)]
    if not todo:
        return None
    gi = store.parent / ".gitignore"
    text = gi.read_text("utf-8") if gi.exists() else ""
    if text and not text.endswith("\n"):
        text += "\n"
    for p in todo:
        name = p.name
        for ch in "\\*?[!#":  # a literal file name, not a pattern
            name = name.replace(ch, "\\" + ch) if ch in name else name
        text += f"/{name}\n"
    gi.write_text(text, "utf-8")
    return gi


def is_ignored(g: git.Repo, path: Path) -> bool:
    import git as gitmod

    try:
        g.git.check_ignore("-q", "--no-index", "--", str(path))
        return True
    except gitmod.GitCommandError:
        return False


def is_tracked(g: git.Repo, path: Path) -> bool:
    return bool(g.git.ls_files("--", str(path)).strip())


def git_paths(g: git.Repo, *names: str) -> list[Path]:
    """``git rev-parse --git-path NAME`` for each name, absolute."""
    args = [a for n in names for a in ("--git-path", n)]
    top = Path(g.working_tree_dir or ".")
    return [top / line for line in g.git.rev_parse(*args).splitlines()]  # absolute lines stay


def listed_pointer_files(g: git.Repo, *args: str) -> set[Path]:
    """The pointer files a git listing command names (``-z``, paths from the top)."""
    top = Path(g.working_tree_dir or ".")
    out = g.git.execute([g.git.GIT_PYTHON_GIT_EXECUTABLE, *args, "-z", "--", "*" + POINTER_SUFFIX])
    return {top / r for r in out.split("\0") if r}


def pointer_files(g: git.Repo) -> list[Path]:
    """Pointer files of the work tree: tracked or untracked (not ignored), present on disk."""
    found = listed_pointer_files(g, "ls-files", "--cached", "--others", "--exclude-standard")
    return [p for p in sorted(found) if p.is_file()]
