"""Push a store's history to a remote, and clone a store from one (see :mod:`.storage`).

Push sends the commits a remote lacks and the row ranges they name that it lacks, checked
against their hashes before they leave, in packs of up to 32 MiB; then moves each branch, only
as a fast-forward. Clone builds the new store in a file beside its destination: the journal
(the same commit records, so ids carry over), the chosen branch's tip written into its
datasets, every other range preserved as an object, the refs; each payload checked against
its id or hash as it arrives. The file takes the destination's name only when it is whole.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import xxhash

from ..crashpoints import crash_point
from ..engine.chunks import write_blob
from ..engine.format import META, Layout
from ..engine.hashing import (
    has_refs,
)
from ..engine.lock import LOCK_SUFFIX
from ..engine.objects import (
    create_dataset,
    make_group,
    ordered_groups,
    preserve_rows,
    put_in_order,
    set_attrs,
    tracks_order,
    write_value,
)
from ..engine.rows import write_rows
from ..engine.state import (
    ROOT,
    State,
    apply_changes,
    empty_state,
    format_needed,
    is_below,
    selected,
    within,
)
from ..engine.undo import undo_path
from ..errors import H5vcError, IntegrityError, InvalidInputError, NotFoundError
from ..paths import normalize_path
from ..repository import Repository
from .payload import WORKERS, encode_rows, estimate, fetch_rows, payload_dtype, read_packs
from .storage import PACK_BYTES, RemoteError, RemoteStorage

__all__ = ["AdoptReport", "CloneReport", "FetchReport", "PushReport", "adopt", "clone", "fetch",
           "pull", "push", "remote_of", "widen"]

Progress = Callable[[int, "int | None"], None]  # bytes moved so far, of how many (if known)


@dataclass
class PushReport:
    remote: str
    commits: int = 0
    objects: int = 0
    bytes: int = 0
    packs: int = 0
    updated: dict[str, tuple[str | None, str]] = field(default_factory=dict)  # ref: (old, new)
    up_to_date: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"remote": self.remote, "commits": self.commits, "objects": self.objects,
                "bytes": self.bytes, "packs": self.packs, "up_to_date": self.up_to_date,
                "updated": {k: {"old": a, "new": b} for k, (a, b) in self.updated.items()}}


@dataclass
class CloneReport:
    path: Path
    remote: str
    branch: str | None
    commit: str
    commits: int = 0
    objects: int = 0
    bytes: int = 0
    resumed: int = 0  # packs a killed clone had brought in already

    def to_json(self) -> dict[str, Any]:
        return {"path": str(self.path), "remote": self.remote, "branch": self.branch,
                "commit": self.commit, "commits": self.commits, "objects": self.objects,
                "bytes": self.bytes, "resumed": self.resumed}


def remote_of(repo: Repository, name: str | None) -> tuple[str, RemoteStorage]:
    """The named remote of ``repo`` (None: its default), ready to use."""
    remotes = repo.remotes
    if name is None:
        name = repo.default_remote
        if name is None:
            raise InvalidInputError(
                "no remote to use: add one with `h5vc remote add NAME URL`" if not remotes else
                "several remotes and no default: name one, or set it with "
                "`h5vc remote add NAME URL --default`")
    if name not in remotes:
        raise NotFoundError(f"no remote named {name!r}; see `h5vc remote list`")
    conf = remotes[name]
    return name, RemoteStorage(conf["url"], conf.get("options") or {}, name=name)


# -- payloads ---------------------------------------------------------------------------------

# -- walking a history ------------------------------------------------------------------------

def _parents_first(tips: Iterable[str], parents: Callable[[str], list[str]],
                   stop: set[str]) -> list[str]:
    """The commits reachable from ``tips`` and not in ``stop``, every parent before its child."""
    order: list[str] = []
    seen: set[str] = set(stop)
    for tip in tips:
        stack = [(tip, False)]
        while stack:
            cid, done = stack.pop()
            if done:
                order.append(cid)
                continue
            if cid in seen:
                continue
            seen.add(cid)
            stack.append((cid, True))
            stack.extend((p, False) for p in parents(cid) if p not in seen)
    return order


def _new_ranges(state: State, changes: list[dict[str, Any]]
                ) -> Iterable[tuple[str, str, int, int, dict[str, Any]]]:
    """(hash, path, start, stop, meta) of the ranges a commit's changes write, given the state
    after the commit."""
    for ch in changes:
        if ch["op"] == "rows" and ch["path"] in state:
            meta = state[ch["path"]]["meta"]
            for s, e, h in ch["ranges"]:
                yield h, ch["path"], s, e, meta


# -- push -------------------------------------------------------------------------------------

def push(repo: Repository, remote: str | None = None, refs: list[str] | None = None, *,
         commits: Iterable[str] = (), progress: Progress | None = None) -> PushReport:
    """Send ``refs`` (branch or tag names; None: the current branch and the tags on it) and
    everything they need that the remote lacks; move the remote's branches as fast-forwards.
    ``commits`` (ids) are sent too, with what they need, and no ref moves for them; given
    alone (``refs`` None), only they are sent (the git pre-push hook sends what pointer files
    name this way).

    RemoteError when a branch on the remote has commits this store lacks (pull first)."""
    name, rs = remote_of(repo, remote)
    report = PushReport(name)
    branches, tags = repo.branches(), repo.tags()
    commits = sorted(set(commits))
    if refs is None and commits:
        want_b, want_t = [], []
    elif refs is None:
        if repo.branch is None:
            raise InvalidInputError("HEAD is detached: name the branch or tag to push "
                                    "(h5vc push REMOTE BRANCH)")
        want_b = [repo.branch]
        on_branch = repo.ancestors(branches[repo.branch])
        want_t = sorted(t for t, c in tags.items() if c in on_branch)
    else:
        want_b = [r for r in refs if r in branches]
        want_t = [r for r in refs if r not in branches and r in tags]
        unknown = [r for r in refs if r not in branches and r not in tags]
        if unknown:
            raise NotFoundError(f"no branch or tag named {unknown[0]!r} in {repo.path}; see "
                                "`h5vc branch` and `h5vc tag`")
    remote_b, remote_t = rs.refs() if rs.create() else ({}, {})

    # fast-forward checks first: nothing is sent for a push that would be refused
    moves: list[tuple[str, tuple[int, str] | None, str]] = []
    for b in want_b:
        tip, old = branches[b], remote_b.get(b)
        if old is not None and old[1] == tip:
            report.up_to_date.append(b)
            continue
        if old is not None and old[1] not in repo.ancestors(tip):
            raise RemoteError(
                f"the remote {name}'s branch {b} has commits this store lacks "
                f"({old[1][:10]}); bring them in first (h5vc pull {name}), then push again")
        moves.append((b, old, tip))
    for t in want_t:
        if t in remote_t and remote_t[t] != tags[t]:
            raise RemoteError(f"tag {t} on remote {name} names another commit "
                              f"({remote_t[t][:10]}); tags are never moved: rename yours")

    tips = [tip for _b, _o, tip in moves] + [tags[t] for t in want_t if t not in remote_t]
    tips += [c for c in commits if c not in tips]
    if not tips:
        return report  # nothing to send: the packs' indexes are not even read
    index = rs.index()
    # what the remote's refs reach is whole there (a ref moves only after its push completed);
    # commits a killed push left behind are sent again only in part: their records are
    # there, but not necessarily the rows they name
    whole: set[str] = set()
    for c in {c for _n, c in remote_b.values()} | set(remote_t.values()):
        if c not in whole:
            try:
                whole |= repo.ancestors(c)
            except (NotFoundError, InvalidInputError):
                pass  # a commit this store lacks: its branch is refused above, if pushed
    records: dict[str, bytes] = {}  # read once: for the walk, then sent
    parsed: dict[str, dict[str, Any]] = {}

    def parents_of(c: str) -> list[str]:
        if c not in parsed:
            records[c] = repo.commit_record(c)
            parsed[c] = json.loads(records[c])
        return parsed[c]["parents"]

    send = _parents_first(tips, parents_of, whole)
    # the ranges those commits write, with the meta to read them by: each parent's state is
    # known before its children (parents first), and dropped once its last child is done
    states: dict[str, State] = {}
    children: dict[str, int] = {}
    for cid in send:
        for p in parsed[cid]["parents"]:
            children[p] = children.get(p, 0) + 1
    need: dict[str, tuple[dict[str, Any], int, int]] = {}
    for cid in send:
        rec = parsed[cid]
        parent = rec["parents"][0] if rec["parents"] else None
        if parent is None:
            base: State = empty_state()
        elif parent in states:
            base = states[parent]
        else:
            base = repo.state_of(parent)
        state = apply_changes(base, rec["changes"])
        for h, _p, s, e, meta in _new_ranges(state, rec["changes"]):
            if h not in index.objects and h not in need:
                need[h] = (meta, s, e)
        if parent is not None and parent in states:
            children[parent] -= 1
            if children[parent] <= 0:
                del states[parent]
        if children.get(cid):
            states[cid] = state

    # packs: commit records first (a clone reads them before any rows), then the rows; up to
    # WORKERS packs are sent at once while the next is read from the store
    fresh = {cid: raw for cid, raw in records.items() if cid not in index.commits}
    total = sum(map(len, fresh.values())) + sum(
        estimate(meta, s, e) for meta, s, e in need.values())
    moved = 0
    lock = threading.Lock()

    def send_pack(cs: dict[str, bytes], os_: dict[str, tuple[bytes, str]]) -> None:
        nonlocal moved
        rs.write_pack(cs, os_)
        crash_point("push.pack-sent")
        with lock:
            report.packs += 1
            moved += sum(map(len, cs.values())) + sum(len(r) for r, _k in os_.values())
            if progress is not None:
                progress(moved, total)

    with ThreadPoolExecutor(WORKERS) as pool:
        pending: deque[Future[None]] = deque()

        def flush(cs: dict[str, bytes], os_: dict[str, tuple[bytes, str]]) -> None:
            if not cs and not os_:
                return
            pending.append(pool.submit(send_pack, cs, os_))
            while len(pending) >= WORKERS or (pending and pending[0].done()):
                pending.popleft().result()

        try:
            flush(fresh, {})
            report.commits = len(fresh)
            batch: dict[str, tuple[bytes, str]] = {}
            size = 0
            for h, (meta, _s, _e) in need.items():
                arr = repo.content(h, meta)
                raw, kind = encode_rows(arr, payload_dtype(meta))
                batch[h] = (raw, kind)
                size += len(raw)
                report.objects += 1
                if size >= PACK_BYTES:
                    flush({}, batch)
                    batch, size = {}, 0
            flush({}, batch)
            while pending:
                pending.popleft().result()
        except BaseException:
            for fut in pending:
                fut.cancel()
            raise
    report.bytes = moved

    crash_point("push.before-refs")
    for t in want_t:
        if t not in remote_t:
            rs.put_tag(t, tags[t])
            report.updated[f"tag {t}"] = (None, tags[t])
    for b, old, tip in moves:
        if not rs.move_branch(b, old, tip):
            raise RemoteError(
                f"another push moved branch {b} of remote {name} meanwhile; bring its commits "
                f"in (h5vc pull {name}), then push again (what was sent stays on the remote)")
        report.updated[b] = (None if old is None else old[1], tip)
    if rs.default_branch() is None and want_b:
        rs.set_default_branch(want_b[0])
    return report


# -- clone ------------------------------------------------------------------------------------

def clone(url: str, path: str | os.PathLike[str], *, rev: str | None = None,
          options: dict[str, str] | None = None, name: str = "origin",
          select: list[str] | None = None, progress: Progress | None = None) -> CloneReport:
    """Make a new store at ``path`` from the remote at ``url``: its whole history, with
    ``rev`` (a branch or tag of the remote, or a commit id; default: the remote's default
    branch) checked out. The remote is recorded as ``name``, the default.

    ``select`` (paths): a partial store, holding those paths only (and the groups on the way):
    every commit, but the rows of the selected paths alone; the rest stays on the remote."""
    if select is not None:
        select = sorted({normalize_path(p, "--select path") for p in select})
    dest = Path(path)
    if dest.exists():
        raise InvalidInputError(f"{dest} exists already; clone into a new path")
    if not dest.parent.is_dir():
        raise InvalidInputError(f"cannot clone into {dest}: folder {dest.parent} does not exist")
    leftover = dest.with_name(dest.name + ".h5vc-clone")
    resuming = leftover.exists()

    def build() -> tuple[CloneReport, Path]:
        return _clone(url, dest, rev=rev, options=options, name=name, progress=progress,
                      select=select)

    try:
        report, tmp = build()
    except Exception:
        if not resuming:
            raise
        leftover.unlink(missing_ok=True)  # what a killed clone left cannot be read: anew
        report, tmp = build()
    if report.resumed and not _checks(tmp):  # what a killed clone left did not hold up
        tmp.unlink(missing_ok=True)
        report, tmp = build()
    crash_point("clone.before-rename")
    try:
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return report


PROGRESS = "clone_progress"  # attribute of /.h5vc while a clone is being built


def _checks(path: Path) -> bool:
    """True when the store at ``path`` verifies (every commit restorable, every row rehashed)."""
    lock = path.with_name(path.name + LOCK_SUFFIX)
    try:
        with Repository.open(path, mode="r") as repo:
            return repo.verify().ok
    except (H5vcError, OSError):
        return False
    finally:
        lock.unlink(missing_ok=True)


def _resumable(tmp: Path, url: str, target: str) -> dict[str, Any] | None:
    """What a killed clone of ``target`` from ``url`` recorded in ``tmp``: the packs whose rows
    are in it and where each commit's frame ends; None when there is nothing to resume."""
    try:
        with h5py.File(tmp, "r") as f:
            raw = f[META].attrs.get(PROGRESS)
            rec = json.loads(raw) if isinstance(raw, (str, bytes)) else None
    except (OSError, KeyError, ValueError):
        return None
    if not isinstance(rec, dict) or rec.get("url") != url or rec.get("target") != target:
        return None
    if not isinstance(rec.get("done"), list) or not isinstance(rec.get("ends"), dict):
        return None
    return rec


def _clone(url: str, dest: Path, *, rev: str | None, options: dict[str, str] | None, name: str,
           progress: Progress | None, onto: Path | None = None,
           select: list[str] | None = None) -> tuple[CloneReport, Path]:
    """Build the store of :func:`clone` in a file beside ``dest``, returned with the report.

    ``onto``: start from a copy of that HDF5 file instead (what :func:`adopt` does), whose
    content stays as it is: the remote's history goes into its ``/.h5vc`` with every range
    preserved and HEAD at ``rev``, so the file's content shows as uncommitted changes."""
    rs = RemoteStorage(url, options or {}, name=url)
    rs.require()
    remote_b, tags = rs.refs()
    branches = {b: c for b, (_n, c) in remote_b.items()}
    branch: str | None
    if rev is None:
        branch = rs.default_branch()
        if branch not in branches:
            branch = "main" if "main" in branches else (sorted(branches)[0] if branches else None)
        if branch is None:
            raise RemoteError(f"remote {url} has no branch to clone")
        target = branches[branch]
    elif rev in branches:
        branch, target = rev, branches[rev]
    elif rev in tags:
        branch, target = None, tags[rev]
    else:
        found = [b for b in {*branches.values(), *tags.values()} if b.startswith(rev)]
        branch, target = None, found[0] if len(found) == 1 else ""
    index = rs.index()
    if rev is not None and target == "" and rev in index.commits:
        target = rev
    if not target:
        raise NotFoundError(f"remote {url} has no branch, tag or commit {rev!r}")
    if branch is None and rev not in tags:  # a commit at a branch's tip: on that branch
        at = sorted(b for b, c in branches.items() if c == target)
        default = rs.default_branch()
        branch = default if default in at else (at[0] if len(at) == 1 else None)

    report = CloneReport(dest, url, branch, target)
    moved = 0

    # the commits: read pack by pack, each record checked against its id
    records: dict[str, dict[str, Any]] = {}
    raws: dict[str, bytes] = {}
    packs_c = sorted({p for p, _a, _n in index.commits.values()})
    total = sum(index.sizes.get(p, 0) for p in packs_c)
    for pack, data in read_packs(rs, packs_c):
        moved += len(data)
        if progress is not None:
            progress(moved, total)
        for cid, (p, a, n) in index.commits.items():
            if p != pack:
                continue
            raw = data[a:a + n]
            if len(raw) != n or xxhash.xxh3_128(raw).hexdigest() != cid:
                raise IntegrityError(f"commit {cid[:10]} on remote {url} is damaged (pack {pack} "
                                     "does not hold it as its index says); nothing was cloned")
            raws[cid] = raw
            records[cid] = json.loads(raw)
    tips = [*branches.values(), *tags.values(), target]
    missing = sorted({c for c in tips if c not in records})
    if missing:
        raise IntegrityError(f"remote {url} names commit {missing[0][:10]} but does not hold it")

    def parents(c: str) -> list[str]:
        ps = records[c]["parents"]
        for p in ps:
            if p not in records:
                raise IntegrityError(f"commit {c[:10]} on remote {url} names a parent it does "
                                     f"not hold ({p[:10]}); nothing was cloned")
        return ps

    order = _parents_first(tips, parents, set())
    # the states, parent before child: what each range is (meta), and the target's state
    metas: dict[str, tuple[dict[str, Any], int, int]] = {}
    states: dict[str, State] = {}
    children: dict[str, int] = {}
    for cid in order:
        for p in records[cid]["parents"]:
            children[p] = children.get(p, 0) + 1
    goal: State | None = None
    for cid in order:
        rec = records[cid]
        parent = rec["parents"][0] if rec["parents"] else None
        state = apply_changes(states[parent] if parent else empty_state(), rec["changes"])
        for h, p, s, e, meta in _new_ranges(state, rec["changes"]):
            if selected(p, select):
                metas.setdefault(h, (meta, s, e))
        if cid == target:
            goal = state
        if parent is not None:
            children[parent] -= 1
            if children[parent] <= 0:
                del states[parent]
        if children.get(cid) or cid == target:
            states[cid] = state
    assert goal is not None
    absent = [p for p in select or () if p not in goal]
    if absent:
        raise NotFoundError(f"remote {url} has no {absent[0]} at {target[:10]}; see `h5vc ls "
                            "--rev` in a store that has it")
    goal = within(goal, select)
    lost = sorted(h for h in metas if h not in index.objects)
    if lost:
        raise IntegrityError(f"remote {url} lacks the rows of range {lost[0][:10]} (and "
                             f"{len(lost) - 1} more); push them from a store that has them")

    tmp = dest.with_name(dest.name + (".h5vc-adopt" if onto else ".h5vc-clone"))
    resume = _resumable(tmp, url, target) if onto is None and tmp.exists() else None
    if resume is None:
        tmp.unlink(missing_ok=True)
    done: list[str] = list(resume["done"]) if resume else []
    report.resumed = len(done)
    live: dict[str, list[tuple[str, int, int]]] = {}
    for p, node in goal.items():
        if node["k"] == "d" and onto is None:
            for s, e, h in node["ranges"]:
                live.setdefault(h, []).append((p, s, e))
    try:
        if onto is not None:
            shutil.copyfile(onto, tmp)
        with h5py.File(tmp, "r+" if onto or resume else "w",
                       track_order=None if onto or resume or not tracks_order(goal) else True) as f:
            ends: dict[str, int] = {}
            if resume is not None:  # the journal and the tree are there: rows are what remains
                lay = Layout(f)
                ends = {c: int(e) for c, e in resume["ends"].items()}
            else:
                lay = Layout.create(f, "h5vc adopt" if onto else "h5vc clone")
                lay.require_version(max(format_needed(records[c]["changes"]) for c in order))
                for cid in order:
                    parent = records[cid]["parents"][0] if records[cid]["parents"] else None
                    ends[cid] = lay.append_frame(raws[cid], cid, parent,
                                                 ends[parent] if parent else 0)
            report.commits = len(order)
            for p in sorted(goal) if onto is None and resume is None else ():  # the tree
                node = goal[p]
                if p == ROOT:
                    continue
                if node["k"] == "g":
                    make_group(f, p, attr_order=True if "ao" in node else None)
                else:
                    parent_path = p.rsplit("/", 1)[0]
                    if parent_path:
                        make_group(f, parent_path)
                    create_dataset(f, p, node["meta"], node["n"], attr_order="ao" in node)
            for p in sorted(ordered_groups(goal)) if onto is None and resume is None else ():
                put_in_order(f, p, goal)  # links made in the order of their names, as recorded
            progress_rec = {"url": url, "target": target, "done": done, "ends": ends}

            def pack_done(pack: str) -> None:  # its rows reach the file, then the record says so
                done.append(pack)
                lay.sync()
                f[META].attrs[PROGRESS] = json.dumps(progress_rec)
                f.flush()

            if onto is None:
                lay.sync()
                f[META].attrs[PROGRESS] = json.dumps(progress_rec)
                f.flush()
            skip = set(done)
            metas = {h: m for h, m in metas.items() if index.objects[h][0] not in skip}
            total = moved + sum(index.sizes.get(p, 0) for p in
                                {index.objects[h][0] for h in metas})

            def fetched(nbytes: int) -> None:
                nonlocal moved
                moved += nbytes
                if progress is not None:
                    progress(moved, total)

            for h, arr, meta in fetch_rows(rs, index, metas, "clone", "nothing was cloned",
                                           fetched, pack_done if onto is None else None):
                report.objects += 1
                if h in live:
                    for lp, ls, _le in live[h]:
                        if meta.get("stored"):
                            write_blob(f[lp], ls, arr)
                        else:
                            write_rows(f[lp], ls, arr)
                else:
                    preserve_rows(lay, h, arr, meta)
            referring = []
            for p in sorted(goal) if onto is None else ():  # attributes, references last
                if goal[p]["k"] == "d" and "value" in goal[p]["meta"]:
                    referring.append(p)
                elif any(has_refs(a["dtype"]) for a in goal[p]["attrs"].values()):
                    referring.append(p)
                else:
                    set_attrs(f[p], goal[p]["attrs"], {}, order=goal[p].get("ao"))
            for p in referring:
                if goal[p]["k"] == "d" and "value" in goal[p]["meta"]:
                    write_value(f[p], goal[p]["meta"])
                set_attrs(f[p], goal[p]["attrs"], {}, order=goal[p].get("ao"))
            lay.sync()
            head = {"branch": branch} if branch else {"commit": target}
            ref_ids = {*branches.values(), *tags.values(), target}
            lay.write_record("refs", {"head": head, "branches": branches, "tags": tags,
                                      "journal_len": lay.journal_len,
                                      "pos": {c: ends[c] for c in sorted(ref_ids)}})
            lay.set_remotes({"remotes": {name: {"url": url, "options": dict(options or {})}},
                             "default": name})
            lay.set_selection(select)
            if PROGRESS in f[META].attrs:
                del f[META].attrs[PROGRESS]
            f.flush()
    except H5vcError:
        tmp.unlink(missing_ok=True)  # refused (a damaged payload, ...): nothing kept
        raise
    except BaseException:
        if onto is not None or not done:
            tmp.unlink(missing_ok=True)
        raise  # the packs already in the file are not fetched again by the next clone
    report.bytes = moved
    return report, tmp


# -- adopt ------------------------------------------------------------------------------------

@dataclass
class AdoptReport:
    path: Path
    remote: str
    base: str  # the remote's commit the file was recorded on top of
    commit: str  # the new commit (``base`` when the file equals it)
    branch: str | None
    commits: int = 0
    objects: int = 0
    bytes: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"path": str(self.path), "remote": self.remote, "base": self.base,
                "commit": self.commit, "branch": self.branch, "commits": self.commits,
                "objects": self.objects, "bytes": self.bytes}


def adopt(path: str | os.PathLike[str], url: str, *, rev: str | None = None,
          options: dict[str, str] | None = None, name: str = "origin", message: str | None = None,
          author: str | None = None, progress: Progress | None = None) -> AdoptReport:
    """Record an HDF5 file that another program rewrote whole (``h5py.File(path, "w")``,
    ``to_netcdf(mode="w")``, ...: its h5vc history is gone) as a new commit on top of the
    history on the remote at ``url``, at ``rev`` (default: the remote's default branch).

    The file's content is not changed: a copy of it receives the remote's whole history (every
    range preserved, each checked), the commit is made there, and the copy takes the file's
    name only then. A failure, or a kill, leaves the file as it was."""
    src = Path(path)
    if not src.is_file():
        raise NotFoundError(f"no file {src}")
    if not h5py.is_hdf5(src):
        raise InvalidInputError(f"{src} is not an HDF5 file; adopt records an HDF5 file")
    if Repository.is_store(src):
        raise InvalidInputError(
            f"{src} holds an h5vc history already; bring it up to date with `h5vc pull`, or "
            "check out what it lacks with `h5vc sync`")
    cr, tmp = _clone(url, src, rev=rev, options=options, name=name, progress=progress, onto=src)
    report = AdoptReport(src, url, cr.commit, cr.commit, cr.branch, cr.commits, cr.objects,
                         cr.bytes)
    lock = tmp.with_name(tmp.name + LOCK_SUFFIX)
    try:
        with Repository.open(tmp) as repo:
            if not repo.status().clean:
                c = repo.commit(message or f"adopt {src.name} as another program rewrote it",
                                author=author)
                report.commit = c.id
        crash_point("adopt.before-rename")
        os.replace(tmp, src)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        lock.unlink(missing_ok=True)
        undo_path(tmp).unlink(missing_ok=True)  # its rollback journal, emptied at its close
    return report


# -- fetch and pull ---------------------------------------------------------------------------

@dataclass
class FetchReport:
    remote: str
    commits: int = 0
    objects: int = 0
    bytes: int = 0
    branches: dict[str, str] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)  # tags made here
    pulled: tuple[str, str] | None = None  # (old, new) tip of the branch pull moved
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"remote": self.remote, "commits": self.commits, "objects": self.objects,
                "bytes": self.bytes, "branches": self.branches, "tags": self.tags,
                "pulled": None if self.pulled is None else
                {"old": self.pulled[0], "new": self.pulled[1]}, "note": self.note}


def fetch(repo: Repository, remote: str | None = None, *, commits: Iterable[str] = (),
          progress: Progress | None = None) -> FetchReport:
    """Bring in the commits of the remote's branches and tags that this store lacks, and the
    rows they write that it lacks, each checked against its id or hash; ``commits`` (ids the
    remote holds on no branch, such as those a pointer file names) too. No branch moves and
    the live file is not touched; the remote's tips are recorded (``repo.remotes[name]
    ["seen"]``), and its tags this store lacks are made here."""
    name, rs = remote_of(repo, remote)
    rs.require()
    report = FetchReport(name)
    tips_b, remote_t = rs.refs()
    remote_b = {b: c for b, (_n, c) in tips_b.items()}
    index = rs.index()
    known = repo.commit_ids()
    sel = repo.selection  # a partial store fetches the rows of what it holds
    extra = sorted({c for c in commits if c not in known})
    absent = [c for c in extra if c not in index.commits]
    if absent:
        raise NotFoundError(f"remote {name} does not hold commit {absent[0][:10]}; push it there "
                            "from the store that made it (h5vc push), then try again")
    records: dict[str, bytes] = {}
    moved = 0
    packs_c = sorted({p for c, (p, _a, _n) in index.commits.items() if c not in known})
    total = sum(index.sizes.get(p, 0) for p in packs_c)
    for pack, data in read_packs(rs, packs_c):
        moved += len(data)
        if progress is not None:
            progress(moved, total)
        for cid, (p, a, n) in index.commits.items():
            if p == pack and cid not in known:
                raw = data[a:a + n]
                if len(raw) != n or xxhash.xxh3_128(raw).hexdigest() != cid:
                    raise IntegrityError(f"commit {cid[:10]} on remote {name} is damaged (pack "
                                         f"{pack}); nothing was fetched")
                records[cid] = raw
    tips = sorted({*remote_b.values(), *remote_t.values(), *extra})
    lacking = [c for c in tips if c not in known and c not in records]
    if lacking:
        raise IntegrityError(f"remote {name} names commit {lacking[0][:10]} but does not hold it")
    parsed = {cid: json.loads(raw) for cid, raw in records.items()}

    def parents(c: str) -> list[str]:
        ps = parsed[c]["parents"]
        for p in ps:
            if p not in known and p not in parsed:
                raise IntegrityError(f"commit {c[:10]} on remote {name} names a parent it does "
                                     f"not hold ({p[:10]}); nothing was fetched")
        return ps

    order = _parents_first(tips, parents, known)
    need: dict[str, tuple[dict[str, Any], int, int]] = {}
    states: dict[str, State] = {}
    for cid in order:
        rec = parsed[cid]
        parent = rec["parents"][0] if rec["parents"] else None
        base = empty_state() if parent is None else states.get(parent) or repo.state_of(parent)
        state = apply_changes(base, rec["changes"])
        states[cid] = state
        for h, p, s, e, meta in _new_ranges(state, rec["changes"]):
            if h not in need and selected(p, sel) and not repo.has_content(h):
                need[h] = (meta, s, e)
    report.commits = _receive(repo, rs, index, need, [(c, records[c]) for c in order], report,
                              moved, progress)
    report.branches = remote_b
    local_tags = repo.tags()
    for t, c in sorted(remote_t.items()):
        if t not in local_tags:
            repo.create_tag(t, c)
            report.tags.append(t)
    repo.set_remote_refs(name, remote_b, remote_t)
    return report


def _receive(repo: Repository, rs: RemoteStorage, index: Any,
             need: dict[str, tuple[dict[str, Any], int, int]], records: list[tuple[str, bytes]],
             report: FetchReport, moved: int, progress: Progress | None) -> int:
    """Fetch the ``need`` ranges (each checked) and take them into ``repo`` with ``records``
    (:meth:`Repository.receive`); ``report`` counts them. Refused, before anything is
    fetched, when the remote lacks one. Returns the commits added."""
    lost = sorted(h for h in need if h not in index.objects)
    if lost:
        raise IntegrityError(f"remote {report.remote} lacks the rows of range {lost[0][:10]} "
                             f"(and {len(lost) - 1} more); push them from a store that has them")
    total = moved + sum(index.sizes.get(p, 0) for p in {index.objects[h][0] for h in need})
    done = [moved]

    def fetched(nbytes: int) -> None:
        done[0] += nbytes
        if progress is not None:
            progress(done[0], total)

    def objects() -> Iterable[tuple[str, np.ndarray, dict[str, Any]]]:
        for item in fetch_rows(rs, index, need, "fetch", "nothing was fetched", fetched):
            report.objects += 1
            yield item

    added = repo.receive(records, iter(objects()))
    report.bytes = done[0]
    return added


def widen(repo: Repository, remote: str | None, paths: list[str], *,
          progress: Progress | None = None) -> FetchReport:
    """Make a partial store hold ``paths`` too: the rows every commit has there, fetched
    (each checked), then HEAD's content written into the file (:meth:`Repository.widen`)."""
    paths = sorted({normalize_path(p, "--select path") for p in paths})
    sel = repo.selection
    if sel is None:
        raise InvalidInputError(f"{repo.path} holds every path already (it is not partial): "
                                "pull without --select")
    name, rs = remote_of(repo, remote)
    rs.require()
    report = FetchReport(name)
    index = rs.index()
    need: dict[str, tuple[dict[str, Any], int, int]] = {}
    ids = repo.commit_ids()
    parsed = {c: json.loads(repo.commit_record(c)) for c in ids}
    states: dict[str, State] = {}
    for cid in _parents_first(sorted(ids), lambda c: parsed[c]["parents"], set()):
        rec = parsed[cid]
        parent = rec["parents"][0] if rec["parents"] else None
        state = apply_changes(states[parent] if parent else empty_state(), rec["changes"])
        states[cid] = state
        for h, p, s, e, meta in _new_ranges(state, rec["changes"]):
            if h not in need and any(is_below(p, q) for q in paths) and not repo.has_content(h):
                need[h] = (meta, s, e)
    _receive(repo, rs, index, need, [], report, 0, progress)
    repo.widen(paths)
    report.note = f"now holds {', '.join(repo.selection or ['everything'])}"
    return report


def pull(repo: Repository, remote: str | None = None, *, select: list[str] | None = None,
         progress: Progress | None = None) -> FetchReport:
    """Fetch, then bring the current branch forward to the remote's branch of the same name
    (refused with uncommitted changes, and when the histories have diverged). ``select``: a
    partial store also comes to hold those paths (:func:`widen`)."""
    if select:
        return widen(repo, remote, select, progress=progress)
    branch = repo.branch
    if branch is None:
        raise InvalidInputError("HEAD is detached: check out the branch to pull into "
                                "(h5vc checkout main)")
    report = fetch(repo, remote, progress=progress)
    theirs = report.branches.get(branch)
    mine = repo.branches()[branch]
    if theirs is None:
        report.note = f"remote {report.remote} has no branch {branch}: nothing to pull"
    elif theirs == mine:
        report.note = f"{branch} is up to date with {report.remote}"
    elif mine in repo.ancestors(theirs):
        repo.fast_forward(branch, theirs)
        report.pulled = (mine, theirs)
    elif theirs in repo.ancestors(mine):
        report.note = f"{branch} is ahead of {report.remote} (push it: h5vc push)"
    else:
        raise RemoteError(
            f"{branch} and {report.remote}'s {branch} have diverged ({mine[:10]} here, "
            f"{theirs[:10]} there); h5vc cannot merge yet: put your commits on another branch "
            f"(h5vc branch mine), check out {theirs[:10]} and commit them again there")
    return report
