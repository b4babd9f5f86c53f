"""Data that travels with the code: a store's remote named in its pointer file, a store made
from it in a fresh clone of the code, and the data commits a ``git push`` carries.

- A pointer file names the store's default remote (its URL only; options and credentials stay
  with each user). In a fresh ``git clone`` the store is not there: :func:`materialise` makes
  it from that remote, at the pointer's commit (``h5vc pull``, ``h5vc sync`` and the
  post-checkout hook call it).
- A store that lacks the commit its pointer names (a teammate made it) fetches it from its
  default remote, or from the pointer's (:func:`fetch_pointed`).
- The pre-push hook (:func:`pre_push`) sends to each store's default remote the data commits
  named by the pointer files of the git commits being pushed, like git-lfs sends the objects
  of its pointers, and stops the git push if that fails. It moves no branch on the remote:
  git's commits name the data.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import TextIO

from ..errors import H5vcError, InvalidInputError, NotFoundError
from ..paths import shown
from ..pointer import POINTER_SUFFIX, Pointer, load_toml
from ..remote import CloneReport, FetchReport, clone, fetch, push, remote_of
from ..remote.sync import Progress
from ..repository import Repository

__all__ = ["fetch_pointed", "materialise", "pointed_commits", "pre_push"]

ZERO = "0" * 40


def materialise(ptr: Pointer, *, progress: Progress | None = None) -> CloneReport:
    """Make the missing store of ``ptr`` from the remote the pointer names, with the pointer's
    commit checked out (on the remote branch whose tip it is, if one is)."""
    if ptr.remote is None:
        raise NotFoundError(
            f"{shown(ptr.store)} is not here and {shown(ptr.path)} names no remote to get it "
            "from; copy the store here, or have its owner add a remote (h5vc remote add NAME "
            "URL) and commit the pointer again")
    if ptr.store.exists():
        raise InvalidInputError(f"{shown(ptr.store)} exists already")
    return clone(ptr.remote, ptr.store, rev=ptr.commit, progress=progress)


def fetch_pointed(repo: Repository, ptr: Pointer) -> FetchReport:
    """Fetch the commit ``ptr`` names into ``repo`` from its default remote (the pointer's
    remote, recorded as ``origin``, when the store has none)."""
    name = repo.default_remote
    if name is None and ptr.remote is not None and not repo.remotes:
        repo.set_remote("origin", ptr.remote)
        name = "origin"
    if name is None:
        raise NotFoundError(
            f"{shown(ptr.store)} lacks commit {ptr.commit[:10]} named by {shown(ptr.path)}, and "
            "has no remote to fetch it from; add the one its maker pushed to (h5vc remote add "
            "NAME URL), or bring that copy of the store here")
    report = fetch(repo, name, commits=[ptr.commit])
    # the current branch follows when the remote's namesake branch is at the commit
    b = repo.branch
    if b is not None and report.branches.get(b) == ptr.commit:
        mine = repo.branches()[b]
        if mine != ptr.commit and mine in repo.ancestors(ptr.commit):
            repo.fast_forward(b, ptr.commit)
    return report


# -- pre-push ---------------------------------------------------------------------------------

def _git(top: Path, *args: str, stdin: bytes | None = None) -> bytes:
    p = subprocess.run(["git", *args], cwd=top, input=stdin, capture_output=True)
    if p.returncode != 0:
        raise InvalidInputError(f"git {' '.join(args[:2])} failed: "
                                f"{p.stderr.decode(errors='replace').strip()}")
    return p.stdout


def pointed_commits(top: Path, lines: list[str], remote: str) -> dict[Path, set[str]]:
    """Store path -> the data commits named by pointer files in the git commits a push sends
    (``lines``: what git gives the pre-push hook on stdin)."""
    tips: list[str] = []
    for line in lines:
        parts = line.split()
        if len(parts) != 4 or parts[1] == ZERO:
            continue  # a deleted ref sends nothing
        tips.append(parts[1])
    if not tips:
        return {}
    found: dict[Path, set[str]] = {}
    blobs: list[tuple[Path, str]] = []  # (pointer path from the top, "<sha>:<path>")
    # the pointers at each tip, and those changed by every commit the remote lacks
    for tip in tips:
        out = _git(top, "ls-tree", "-r", "-z", "--name-only", tip).decode()
        blobs += [(Path(n), f"{tip}:{n}") for n in out.split("\0") if n.endswith(POINTER_SUFFIX)]
    out = _git(top, "log", "-z", "--format=%x01%H", "--name-only", "--no-renames",
               "--diff-filter=AM", *tips, "--not", f"--remotes={remote}", "--",
               "*" + POINTER_SUFFIX).decode()
    for entry in out.split("\x01"):
        sha, _, names = entry.partition("\n")
        for n in names.split("\0"):
            n = n.strip("\n")
            if sha and n.endswith(POINTER_SUFFIX):
                blobs.append((Path(n), f"{sha.strip()}:{n}"))
    if not blobs:
        return {}
    batch = _git(top, "cat-file", "--batch", stdin="".join(f"{b}\n" for _p, b in blobs).encode())
    pos = 0
    for rel, _b in blobs:
        header_end = batch.index(b"\n", pos)
        header = batch[pos:header_end].split()
        pos = header_end + 1
        if len(header) < 3 or header[1] != b"blob":
            continue
        size = int(header[2])
        body = batch[pos:pos + size]
        pos += size + 1
        try:
            doc = load_toml(body.decode("utf-8"))
            store, commit = doc["store"], doc["commit"]
        except (UnicodeDecodeError, ValueError, KeyError):
            continue  # not a pointer (or a broken one, which pre-commit refused)
        if not isinstance(store, str) or not isinstance(commit, str):
            continue
        path = Path(os.path.normpath(top / rel.parent / store))
        found.setdefault(path, set()).add(commit)
    return found


def pre_push(top: Path, remote: str, lines: list[str], out: TextIO) -> int:
    """The pre-push hook: send the data commits the pushed git commits name; 1 stops git."""
    root = top.resolve()
    failed = False

    def say(text: str) -> None:
        out.write(f"h5vc: {text}\n")
        out.flush()

    for store, cids in sorted(pointed_commits(top, lines, remote).items()):
        if not store.resolve().is_relative_to(root):
            continue  # a pointer leading outside the work tree is never followed
        if not store.exists():
            say(f"{shown(store)} is not here: the data its pointer names is not pushed from this "
                "clone")
            continue
        try:
            with Repository.open(store, mode="r") as repo:
                if repo.default_remote is None:
                    say(f"{shown(store)} has no remote, so its data stays here; add one (h5vc "
                        "remote add NAME URL) for your teammates to get it")
                    continue
                mine = repo.commit_ids()
                here = sorted(c for c in cids if c in mine)
                name, rs = remote_of(repo, None)
                others = [c for c in cids if c not in mine]
                if others:
                    rs.require()
                    index = rs.index()
                    absent = [c for c in others if c not in index.commits]
                    if absent:
                        raise NotFoundError(
                            f"a pointer names commit {absent[0][:10]}, which neither this store "
                            f"nor remote {name} holds; push it from the store that made it")
                if not here:
                    continue
                report = push(repo, name, commits=here)
        except H5vcError as e:
            say(f"cannot push the data of {shown(store)}: {e.message}")
            failed = True
            continue
        if report.commits or report.objects:
            say(f"{shown(store)}: sent {report.commits} commit(s), {report.objects} range(s), "
                f"{report.bytes / 2**20:.2f} MiB to {report.remote}")
    if failed:
        say("git push stopped, so that the code does not name data your teammates cannot get; "
            "fix the above and push again (or push the code alone: git push --no-verify)")
        return 1
    return 0
