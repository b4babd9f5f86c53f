"""Git integration: pointer files that tie a store's commit to the code, and git hooks.

A **pointer file** ``<store>.h5vc`` sits beside the store and is tracked by git. It names the
store's commit, so each git commit records the data version its code ran on::

    format = 1
    store = "data.h5"
    commit = "<h5vc commit id>"

The **hooks** are small shell shims in the folder ``git rev-parse --git-path hooks`` names
(``core.hooksPath`` and linked worktrees included). Each runs a hook that was there before
(renamed ``NAME.h5vc-chained``), then ``<python> -m h5vc git-hook NAME ARGS``:

- post-checkout (branch checkouts, never inside a rebase), post-merge and post-rewrite after a
  rebase bring every store to its pointer's commit (:func:`sync`); they never make git fail;
- pre-commit refuses a git commit while a store has unrecorded changes or its pointer file is
  stale, unstaged or untracked, printing the command that fixes it;
- pre-push sends the data commits named by the pointer files of the git commits being
  pushed to each store's default remote, and stops the push if that fails
  (:mod:`h5vc.git.share`).

A store missing from a fresh clone of the code is made from the remote its pointer names, and
a store lacking the commit its pointer names fetches it, by :func:`sync` (and so by the hooks).

gitpython is imported only where git is used: opening a store outside a git work tree costs a
few ``stat`` calls.
"""

from __future__ import annotations

import os
import re
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ..engine.state import summary_line
from ..errors import H5vcError, InvalidInputError, NotFoundError
from ..paths import quoted, shown
from ..pointer import Pointer, load_toml, pointer_path, read_pointer, write_pointer
from ..repository import Repository
from .env import (
    find_work_tree,
    git_identity,
    git_or_none,
    git_paths,
    ignore_store,
    is_ignored,
    is_tracked,
    listed_pointer_files,
    open_git,
    pointer_files,
)
from .share import fetch_pointed, materialise, pre_push

if TYPE_CHECKING:
    import git

# also the pointer, git-environment and path-display names the CLI and hooks use with these
__all__ = [
    "HOOKS",
    "HookState",
    "Pointer",
    "StoreState",
    "SyncOutcome",
    "git_identity",
    "git_or_none",
    "hooks_dir_is_shared",
    "hooks_status",
    "ignore_store",
    "install_hooks",
    "is_ignored",
    "is_tracked",
    "pointer_path",
    "quoted",
    "read_pointer",
    "run_hook",
    "shown",
    "store_states",
    "sync",
    "uninstall_hooks",
    "write_pointer",
]

HOOKS = ("pre-commit", "post-checkout", "post-merge", "post-rewrite", "pre-push")
SHIM_MARKER = "# h5vc-hook-shim"
CHAINED_SUFFIX = ".h5vc-chained"
_STDIN_HOOKS = ("pre-push", "post-rewrite")  # git feeds these on stdin: both hooks must see it


# -- store states, sync --------------------------------------------------------------------

@dataclass
class StoreState:
    """Where a pointer's store stands: ``in sync``, ``pointer stale``, ``uncommitted changes``,
    ``store missing``, ``lacks commit``, ``invalid pointer`` or ``unreadable``.

    ``dirty`` and ``has_commit`` hold both facts where the state can name only one.
    """

    pointer: Path
    store: Path | None
    commit: str | None
    head: str | None
    state: str
    detail: str = ""
    dirty: bool = False
    has_commit: bool = True

    def to_json(self) -> dict[str, Any]:
        return {"pointer": shown(self.pointer),
                "store": None if self.store is None else shown(self.store),
                "commit": self.commit, "head": self.head, "state": self.state, "detail": self.detail}


def outside_work_tree(ptr: Pointer, top: Path) -> str | None:
    """Why ``ptr`` must not be followed: its store (or the pointer itself) lies outside the
    git work tree ``top``, by an absolute path, ``..`` or a symbolic link; None when inside.

    A pointer comes with the code, from whoever made the commit: followed blindly, a cloned
    repository could have h5vc check out any HDF5 store on this machine.
    """
    root = top.resolve()
    real_ptr = ptr.path.resolve()
    if not real_ptr.is_relative_to(root):
        return (f"{shown(ptr.path)} is a symbolic link to {real_ptr}, outside the git work tree "
                f"{root}; h5vc only follows pointer files inside it: replace the link with the "
                "pointer file itself (`h5vc pointer -s STORE`)")
    real = ptr.store.resolve()
    if real.is_relative_to(root):
        return None
    try:
        named = load_toml(ptr.path.read_text("utf-8")).get("store", str(ptr.store))
    except (OSError, ValueError):
        named = str(ptr.store)
    how = "" if real == Path(os.path.normpath(ptr.store)) else f", which leads to {real}"
    return (f"{shown(ptr.path)} names the store {named!r}{how}, outside the git work tree "
            f"{root}, so h5vc leaves it alone; name a store inside the work tree "
            "(`h5vc pointer -s STORE` rewrites the pointer)")


def inspect_pointer(path: Path, top: Path | None = None) -> StoreState:
    """Read a pointer and its store (read-only): is the store at the pointer's commit?

    ``top`` is the git work tree the pointer was found in (looked up when None): a pointer
    whose store lies outside it is an ``invalid pointer``, and its store is not opened.
    """

    try:
        ptr = read_pointer(path)
    except H5vcError as e:
        return StoreState(path, None, None, None, "invalid pointer", e.message)
    if top is None:
        top = find_work_tree(path.parent)
    if top is not None:
        why = outside_work_tree(ptr, top)
        if why is not None:
            return StoreState(path, None, None, None, "invalid pointer", why)
    if not ptr.store.exists():
        return StoreState(path, ptr.store, ptr.commit, None, "store missing",
                          f"{shown(ptr.store)} is not here")
    try:
        with Repository.open(ptr.store, mode="r") as repo:
            h = repo.head
            head = None if h is None else h.id
            changes = repo.status().changes
            has_commit = True
            if head != ptr.commit:
                try:
                    repo.resolve(ptr.commit)
                except NotFoundError:
                    has_commit = False
    except H5vcError as e:
        return StoreState(path, ptr.store, ptr.commit, None, "unreadable", e.message)
    if changes:
        state = "uncommitted changes"
    elif head == ptr.commit:
        state = "in sync"
    else:
        state = "pointer stale" if has_commit else "lacks commit"
    return StoreState(path, ptr.store, ptr.commit, head, state,
                      summary_line(changes) if changes else "", bool(changes), has_commit)


def store_states(start: str | os.PathLike[str] | None = None) -> list[StoreState]:
    """The state of every pointer file's store in the git work tree holding ``start``."""
    with open_git(start) as g:
        files = pointer_files(g)
        top = Path(g.working_tree_dir or ".")
    return [inspect_pointer(p, top) for p in files]


@dataclass
class SyncOutcome:
    """What :func:`sync` did for one pointer: ``checked out``, ``cloned`` (made from the
    pointer's remote), ``in sync``, ``dirty``, ``lacks commit``, ``store missing`` or
    ``error``; ``message`` says it to a user."""

    pointer: Path
    store: Path | None
    commit: str | None
    outcome: str
    message: str = ""
    discarded: list[dict[str, Any]] = field(default_factory=list, repr=False)

    @property
    def ok(self) -> bool:
        return self.outcome in ("checked out", "cloned", "in sync")

    def to_json(self) -> dict[str, Any]:
        return {"pointer": shown(self.pointer),
                "store": None if self.store is None else shown(self.store),
                "commit": self.commit, "outcome": self.outcome, "message": self.message}


def _rev_for(repo: Repository, cid: str, prefer: str | None) -> str:
    """Check out a branch when one sits at ``cid`` (the current one, else the git branch's
    namesake, else the only one); a detached commit otherwise."""
    branches = repo.branches()
    for b in (repo.branch, prefer):
        if b and branches.get(b) == cid:
            return b
    at = [b for b, tip in branches.items() if tip == cid]
    return at[0] if len(at) == 1 else cid


def sync_pointer(path: Path, *, force: bool = False, prefer_branch: str | None = None,
                 top: Path | None = None) -> SyncOutcome:
    """Bring the store of one pointer file to the pointer's commit.

    ``top`` is the git work tree of the pointer (looked up when None); a store outside it is
    never opened (see :func:`outside_work_tree`).
    """

    st = inspect_pointer(path, top)
    store, cid = st.store, st.commit
    if store is None or cid is None:  # not a pointer
        return SyncOutcome(path, store, cid, "error", st.detail)
    short, at = cid[:10], (st.head or "-")[:10]
    if st.state == "store missing":
        try:
            ptr = read_pointer(path)
        except H5vcError as e:
            return SyncOutcome(path, store, cid, "error", e.message)
        if ptr.remote is None:
            return SyncOutcome(path, store, cid, "store missing",
                               f"{shown(path)} names commit {short}, but the store {shown(store)} "
                               "is not here, and no remote to get it from; copy the store here, "
                               "then run `h5vc sync`")
        try:
            rep = materialise(ptr)
        except H5vcError as e:
            return SyncOutcome(path, store, cid, "error",
                               f"{shown(store)} is not here and cannot be made from {ptr.remote}: "
                               f"{e.message}")
        where = f" (h5vc branch {rep.branch})" if rep.branch else ""
        return SyncOutcome(path, store, cid, "cloned",
                           f"{shown(store)}: made from {ptr.remote} at {short}{where}, "
                           f"{rep.bytes / 2**20:.2f} MiB fetched")
    if st.state == "unreadable":
        return SyncOutcome(path, store, cid, "error",
                           f"{shown(store)}: {st.detail}; run `h5vc sync` once that is fixed")
    if st.head == cid and (not st.dirty or not force):
        return SyncOutcome(path, store, cid, "in sync")
    fetched = ""
    if not st.has_commit:
        try:
            ptr = read_pointer(path)
            with Repository.open(store, mode="r+") as repo:
                if repo.default_remote is not None or (ptr.remote and not repo.remotes):
                    rep = fetch_pointed(repo, ptr)
                    fetched = f" (fetched {rep.commits} commit(s) from {rep.remote})"
                    st.has_commit = True
        except H5vcError as e:
            return SyncOutcome(path, store, cid, "error",
                               f"{shown(store)} lacks commit {short} named by {shown(path)}, and "
                               f"fetching it failed: {e.message}")
    if not st.has_commit:
        return SyncOutcome(
            path, store, cid, "lacks commit",
            f"{shown(store)} lacks commit {short} named by {shown(path)} (it was made in another "
            f"copy of the store), so it stays at {at}; bring that copy here, then run `h5vc sync`")
    if st.dirty and not force:
        return SyncOutcome(
            path, store, cid, "dirty",
            f"{shown(store)} has uncommitted changes ({st.detail}), so it stays at {at} instead of "
            f"{short}; record them with `h5vc commit -s {quoted(store)} -m MESSAGE` (then "
            f"`git add {quoted(path)}`), or discard them with `h5vc sync --force`")
    try:
        with Repository.open(store, mode="r+") as repo:
            r = repo.checkout(_rev_for(repo, cid, prefer_branch), force=force)
    except H5vcError as e:
        return SyncOutcome(path, store, cid, "error",
                           f"{shown(store)}: {e.message}; run `h5vc sync` once that is fixed")
    where = f" (h5vc branch {r.branch})" if r.branch else ""
    return SyncOutcome(path, store, cid, "checked out",
                       f"{shown(store)}: checked out {r.commit.short_id} {r.commit.message}{where}"
                       f"{fetched}",
                       r.discarded)


def _git_branch(g: git.Repo) -> str | None:
    try:
        return g.active_branch.name
    except (TypeError, ValueError):  # detached HEAD, or no commits yet
        return None


def sync(start: str | os.PathLike[str] | None = None, *, force: bool = False) -> list[SyncOutcome]:
    """Bring every store with a pointer file in the git work tree to the pointer's commit.

    A store with uncommitted changes is left as it is (unless ``force``), and so is a store
    that lacks the commit or is missing; each outcome says what to run.
    """
    with open_git(start) as g:
        files = pointer_files(g)
        branch = _git_branch(g)
        top = Path(g.working_tree_dir or ".")
    return [sync_pointer(p, force=force, prefer_branch=branch, top=top) for p in files]


# -- hooks ---------------------------------------------------------------------------------

def hooks_dir(g: git.Repo) -> Path:
    """Where git looks for hooks: ``core.hooksPath``, the common dir of linked worktrees."""
    return git_paths(g, "hooks")[0]


def hooks_dir_is_shared(start: str | os.PathLike[str] | None = None) -> bool:
    """True when git's hooks folder lies outside this repository (a global core.hooksPath):
    hooks installed there run in every repository that uses it."""
    with open_git(start) as g:
        d = hooks_dir(g).resolve()
        common = Path(g.common_dir).resolve()
        top = Path(g.working_tree_dir or ".").resolve()
    return not (d.is_relative_to(common) or d.is_relative_to(top))


def _sh_quote(s: str) -> str:
    return "'" + s.replace("'", "'\\''") + "'"


def shim_text(name: str, python: str) -> str:
    pre = name.startswith("pre-")
    lines = [
        "#!/bin/sh",
        f"{SHIM_MARKER}: installed by `h5vc hooks install`; `h5vc hooks uninstall` removes it and",
        f"# puts back {name}{CHAINED_SUFFIX}, the hook that was here before (if any).",
        f"hook={name}",
        f"py={_sh_quote(python)}",
        f'chained="$(dirname "$0")/$hook{CHAINED_SUFFIX}"',
        "status=0",
    ]
    stdin = ""
    if name in _STDIN_HOOKS:
        lines += ['input=$(mktemp) || exit 1', "trap 'rm -f \"$input\"' EXIT", 'cat >"$input"']
        stdin = ' <"$input"'
    lines += [f'if [ -x "$chained" ]; then "$chained" "$@"{stdin} || status=$?; fi']
    if name == "post-checkout":  # same commit (git checkout -b, a file checkout): nothing moved
        lines += ['[ "$1" = "$2" ] && exit "$status"']
    if pre:
        lines += ['[ "$status" -eq 0 ] || exit "$status"']
    lines += ['if [ -x "$py" ]; then']
    if pre:  # a refusal stops git; h5vc gone from that interpreter does not
        lines += [f'  "$py" -m h5vc git-hook "$hook" "$@"{stdin} || {{',
                  '    rc=$?',
                  '    "$py" -c "import h5vc" 2>/dev/null && exit "$rc"',
                  '    echo "h5vc: the $hook hook did not run: h5vc is not installed for $py; '
                  r'reinstall it, or remove the hooks with \`h5vc hooks uninstall\`" >&2',
                  '  }']
    else:  # a post-* hook never makes git fail on h5vc's account
        lines += [f'  "$py" -m h5vc git-hook "$hook" "$@"{stdin} || true']
    lines += [
        "else",
        '  echo "h5vc: the $hook hook did not run: $py is gone; run \\`h5vc hooks install\\` '
        'again" >&2',
        "fi",
        'exit "$status"',
        "",
    ]
    return "\n".join(lines)


def _is_shim(p: Path) -> bool:
    try:
        with p.open("rb") as fh:
            return SHIM_MARKER.encode() in fh.read(512)
    except OSError:
        return False


def _shim_python(p: Path) -> str | None:
    try:
        text = p.read_text("utf-8", "replace")
    except OSError:
        return None
    m = re.search(r"^py='((?:[^']|'\\'')*)'$", text, re.M)
    return None if m is None else m.group(1).replace("'\\''", "'")


@dataclass
class HookState:
    """One hook: ``installed`` (an h5vc shim), ``absent`` or ``other`` (not h5vc's)."""

    name: str
    state: str
    chained: bool = False
    python: str | None = None
    action: str = ""

    @property
    def python_ok(self) -> bool:
        return self.python is not None and os.access(self.python, os.X_OK)

    def to_json(self) -> dict[str, Any]:
        return {"state": self.state, "chained": self.chained, "python": self.python,
                "python_ok": self.python_ok}


def _hook_state(d: Path, name: str) -> HookState:
    p = d / name
    chained = (d / (name + CHAINED_SUFFIX)).exists()
    if _is_shim(p):
        return HookState(name, "installed", chained, _shim_python(p))
    if p.exists() or p.is_symlink():
        return HookState(name, "other", chained)
    return HookState(name, "absent", chained)


def install_hooks(start: str | os.PathLike[str] | None = None,
                  python: str | None = None) -> tuple[Path, list[HookState]]:
    """Install the h5vc shims, chaining hooks that are there; idempotent."""
    python = python or sys.executable
    if not python or not os.path.isabs(python):
        raise InvalidInputError("cannot tell the path of this Python interpreter; run h5vc with "
                                "an absolute interpreter path")
    with open_git(start) as g:
        d = hooks_dir(g)
    states = [_hook_state(d, n) for n in HOOKS]
    clash = [s.name for s in states if s.state == "other" and s.chained]
    if clash:  # checked before anything is written
        raise InvalidInputError(
            "both " + ", ".join(f"{d / n} and {n}{CHAINED_SUFFIX}" for n in clash)
            + " exist, so the hook cannot be chained; merge them into one file or remove one, "
            "then run `h5vc hooks install` again")
    d.mkdir(parents=True, exist_ok=True)
    for s in states:
        p = d / s.name
        if s.state == "other":
            os.replace(p, d / (s.name + CHAINED_SUFFIX))
            s.chained, s.action = True, "installed, chaining the existing hook"
        else:
            s.action = "updated" if s.state == "installed" else "installed"
        tmp = d / f".{s.name}.h5vc-tmp"
        tmp.write_text(shim_text(s.name, python), "utf-8")
        tmp.chmod(tmp.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        os.replace(tmp, p)
        s.state, s.python = "installed", python
    return d, states


def uninstall_hooks(start: str | os.PathLike[str] | None = None) -> tuple[Path, list[HookState]]:
    """Remove the h5vc shims and put chained hooks back; other hooks are left alone."""
    with open_git(start) as g:
        d = hooks_dir(g)
    states = [_hook_state(d, n) for n in HOOKS]
    for s in states:
        if s.state != "installed":
            s.action = "left alone (not an h5vc hook)" if s.state == "other" else "not installed"
            continue
        (d / s.name).unlink()
        if s.chained:
            os.replace(d / (s.name + CHAINED_SUFFIX), d / s.name)
            s.state, s.chained, s.action = "other", False, "removed, earlier hook restored"
        else:
            s.state, s.action = "absent", "removed"
        s.python = None
    return d, states


def hooks_status(start: str | os.PathLike[str] | None = None) -> tuple[Path, list[HookState]]:
    with open_git(start) as g:
        d = hooks_dir(g)
    return d, [_hook_state(d, n) for n in HOOKS]


# -- running a hook ------------------------------------------------------------------------

def _in_rebase(g: git.Repo) -> bool:
    if "rebase" in os.environ.get("GIT_REFLOG_ACTION", ""):
        return True
    return any(p.exists() for p in git_paths(g, "rebase-merge", "rebase-apply"))


def _say(out: TextIO, text: str) -> None:
    out.write(f"h5vc: {text}\n")
    out.flush()


def _post_sync(out: TextIO) -> None:
    for o in sync():
        if o.outcome != "in sync":
            _say(out, o.message)


def _pre_commit(out: TextIO) -> int:
    with open_git() as g:
        files = pointer_files(g)
        tracked = listed_pointer_files(g, "ls-files", "--cached")
        unstaged = listed_pointer_files(g, "diff", "--name-only")
        top = Path(g.working_tree_dir or ".")
    problems = []
    for p in files:
        st = inspect_pointer(p, top)
        store = st.store
        if st.state == "invalid pointer":
            problems.append(st.detail)
        elif st.state == "unreadable":
            problems.append(f"{shown(store or p)} cannot be checked ({st.detail}); commit again when "
                            "that is fixed")
        elif st.state == "uncommitted changes":
            problems.append(
                f"{shown(store or p)} has unrecorded changes ({st.detail}); record them: "
                f"h5vc commit -s {quoted(store or p)} -m MESSAGE && git add {quoted(p)}")
        elif st.state in ("pointer stale", "lacks commit"):
            problems.append(
                f"{shown(p)} names commit {(st.commit or '')[:10]} but {shown(store or p)} is at "
                f"{(st.head or '-')[:10]}; record the store's version: h5vc pointer -s "
                f"{quoted(store or p)} && git add {quoted(p)} (or bring the store to the pointer: h5vc sync)")
        elif p not in tracked:
            problems.append(f"{shown(p)} is not tracked by git; track it: git add {quoted(p)}")
        elif p in unstaged:
            problems.append(f"{shown(p)} has changes that are not staged; stage them: git add {quoted(p)}")
    for text in problems:
        _say(out, text)
    if problems:
        _say(out, "commit refused, so that the code is recorded with the data it ran on "
                  "(skip this check once with git commit --no-verify)")
        return 1
    return 0


def run_hook(name: str, args: list[str], out: TextIO | None = None) -> int:
    """Run the h5vc part of git hook ``name``; returns the hook's exit code.

    post-* hooks always return 0: a failure is reported, never turned into a failing git.
    """
    out = out or sys.stderr
    if name not in HOOKS:
        raise InvalidInputError(f"unknown hook {name!r}; h5vc runs {', '.join(HOOKS)}")
    if name == "pre-push":
        try:
            lines = sys.stdin.read().splitlines() if not sys.stdin.isatty() else []
            with open_git() as g:
                top = Path(g.working_tree_dir or ".")
            return pre_push(top, args[0] if args else "origin", lines, out)
        except H5vcError as e:
            _say(out, f"{e.message}; git push stopped (push the code alone: git push --no-verify)")
            return 1
    if name == "pre-commit":
        try:
            return _pre_commit(out)
        except H5vcError as e:
            _say(out, f"{e.message} (skip this check once with git commit --no-verify)")
            return 1
    try:
        if name == "post-checkout":
            if not args:  # the pre-commit framework passes them in the environment
                args = [os.environ.get("PRE_COMMIT_FROM_REF", ""),
                        os.environ.get("PRE_COMMIT_TO_REF", ""),
                        os.environ.get("PRE_COMMIT_CHECKOUT_TYPE", "1")]
            if len(args) < 3 or args[2] != "1" or args[0] == args[1]:
                return 0  # a file checkout, or the same commit: the stores stay
            with open_git() as g:
                if _in_rebase(g):
                    return 0  # post-rewrite syncs once the rebase is done
        elif name == "post-rewrite":
            command = args[0] if args else os.environ.get("PRE_COMMIT_REWRITE_COMMAND", "rebase")
            if command != "rebase":
                return 0  # amend: HEAD's tree did not change
        _post_sync(out)
    except H5vcError as e:
        _say(out, f"{e.message}; git itself succeeded")
    except Exception as e:  # a hook must never break git
        _say(out, f"the {name} hook failed ({type(e).__name__}: {e}); git itself succeeded; "
                  "bring the stores to their pointers with `h5vc sync`")
    return 0
