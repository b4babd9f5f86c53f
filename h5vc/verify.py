"""Check a whole store against its own history, and repair what can be rebuilt.

``verify`` trusts nothing it can recompute: every journal frame is rehashed against its commit
id, refs must name commits of the journal, the state snapshot must equal the state rebuilt
from the journal, every preserved object is rehashed, HEAD's live rows are rehashed, and every
commit reachable from a branch, a tag or HEAD must be restorable from what is left (live rows
that match, or objects).
Each problem names where it is (a path and row range, a commit, an object) and what to do.

Rows that differ from HEAD but whose committed content is preserved elsewhere are not
problems: history is intact, the store merely holds an uncommitted in-place change (a note).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol

import h5py
import numpy as np
import xxhash

from .engine.format import TRAILER, Frame, Layout
from .engine.hashing import dtype_key, rows_hash, rows_hash_parts
from .engine.rows import as_0d, row_slices
from .engine.scan import dataset_meta, range_hash
from .engine.snapshot import Pages
from .engine.state import State, apply_changes, empty_state, selected, within
from .errors import H5vcError, IntegrityError


class RepositoryLike(Protocol):
    """What verify and repair use of a :class:`h5vc.Repository` (which sits above this module:
    the facade calls these functions with itself)."""

    _f: h5py.File
    _layout: Layout
    _head_cache: Any
    interrupted: dict[str, Any] | None
    recovered: list[str]

    def resolve(self, rev: str) -> str: ...
    def _refs(self) -> dict[str, Any]: ...
    def _write_refs(self, refs: dict[str, Any]) -> None: ...
    def _head_from(self, refs: dict[str, Any]) -> str | None: ...
    def _load_index(self) -> dict[str, Frame]: ...
    def _frame(self, cid: str) -> Frame: ...
    def _parent_frame(self, fr: Frame) -> Frame | None: ...
    def _record_of(self, cid: str) -> dict[str, Any]: ...
    def _write_snapshot(self, cid: str, state: State) -> None: ...
    def _recover(self, intent: dict[str, Any]) -> None: ...

__all__ = ["Loss", "Problem", "RepairReport", "VerifyReport", "find_losses", "repair", "verify"]

_READ_ERRORS = (OSError, RuntimeError, KeyError, ValueError, TypeError, IndexError)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the store: where, what, and what to do."""

    where: str
    what: str
    fix: str

    def to_json(self) -> dict[str, str]:
        return {"where": self.where, "what": self.what, "fix": self.fix}

    def __str__(self) -> str:
        return f"{self.where}: {self.what}; {self.fix}"


@dataclass
class VerifyReport:
    """What ``verify`` checked and found."""

    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    commits: int = 0
    objects: int = 0
    live_rows: int = 0
    bytes_read: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "problems": [p.to_json() for p in self.problems],
                "notes": self.notes, "checked": {"commits": self.commits,
                                                  "objects": self.objects,
                                                  "live_rows": self.live_rows,
                                                  "bytes": self.bytes_read}}


@dataclass
class RepairReport:
    """What ``repair`` did, and what it could not save."""

    actions: list[str] = field(default_factory=list)
    unsaved: list[Problem] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"actions": self.actions, "unsaved": [p.to_json() for p in self.unsaved]}


REPAIR = "run `h5vc repair`"
BACKUP = "restore the store from a backup or a remote copy"


def _frames(data: bytes, report: VerifyReport) -> dict[str, tuple[Frame, dict[str, Any]]]:
    """Every frame of the journal, newest first, each checked against its id."""
    out: dict[str, tuple[Frame, dict[str, Any]]] = {}
    end = len(data)
    while end > 0:
        try:
            fr = Layout._parse_trailer(data, end, end)
        except IntegrityError:
            fr = None
        if fr is None or end < TRAILER.size:
            report.problems.append(Problem(
                f"journal (byte {end:,})", "a commit record there is damaged: it and every older "
                "commit can no longer be read", BACKUP))
            break
        raw = data[fr.start:fr.start + fr.length]
        if xxhash.xxh3_128(raw).hexdigest() != fr.id:
            report.problems.append(Problem(
                f"commit {fr.id[:10]}", "its record does not match its id (its message, author, "
                "time or changes were altered or damaged)", BACKUP))
        else:
            try:
                rec = json.loads(raw)
                if not (isinstance(rec, dict) and isinstance(rec.get("changes"), list)
                        and isinstance(rec.get("parents"), list)):
                    raise ValueError
                out[fr.id] = (fr, rec)
            except ValueError:
                report.problems.append(Problem(f"commit {fr.id[:10]}",
                                               "its record is not a valid commit", BACKUP))
        end = fr.start
    for cid, (fr, _rec) in out.items():
        if fr.parent is not None and fr.parent not in out:
            report.problems.append(Problem(f"commit {cid[:10]}", f"its parent {fr.parent[:10]} "
                                           "is missing or damaged", BACKUP))
    return out


def _state(cid: str, frames: dict[str, tuple[Frame, dict[str, Any]]]) -> State | None:
    chain = []
    cur: str | None = cid
    while cur is not None:
        if cur not in frames:
            return None
        chain.append(cur)
        cur = frames[cur][0].parent
    return apply_changes(empty_state(), [ch for c in reversed(chain) for ch in frames[c][1]["changes"]])


def _stored_state(layout: Layout, snap: Any, report: VerifyReport) -> Any:
    """The state a snapshot holds, every page of a paged one read and checked; None (with the
    problem reported) when a page is damaged."""
    if not (isinstance(snap, dict) and isinstance(snap.get("pages"), list)):
        return snap.get("state") if isinstance(snap, dict) else None
    seq = layout.record_seq("state") or 0

    def damaged() -> State:
        raise IntegrityError("damaged page")

    try:
        pages = Pages(snap["pages"], lambda a, n: layout.read_side("state", seq, a, n),
                      damaged, seq)
        bad = pages.bad_pages()
        if not bad:
            return dict(pages.items())
    except (IntegrityError, TypeError, ValueError, IndexError):
        bad = [-1]
    report.problems.append(Problem("state snapshot", f"{len(bad)} of its pages damaged (h5vc "
                                   "rebuilds the state from the history meanwhile)", REPAIR))
    return None


def _object_rows(layout: Layout, h: str) -> tuple[Any, int, int, bool]:
    key, a, b, scalar = layout._where(h)
    return layout._pack(key), a, b, scalar


def _check_objects(layout: Layout, wanted: set[str] | None,
                   report: VerifyReport) -> set[str]:
    """Rehash preserved objects (all, or those in ``wanted``); the hashes that are sound."""
    good: set[str] = set()
    index = layout._load_object_index()
    for h in sorted(index if wanted is None else wanted & set(index)):
        try:
            pack, a, b, scalar = _object_rows(layout, h)
            dkey = dtype_key(pack.dtype)
            if scalar:
                got = rows_hash(as_0d(pack[a], pack.dtype), dkey)
            elif b > pack.shape[0]:
                raise IntegrityError("rows beyond its pack")
            else:
                got = rows_hash_parts((pack[x:y] for x, y in row_slices(pack, a, b)),
                                      (b - a, *pack.shape[1:]), dkey)
                report.bytes_read += (b - a) * pack.dtype.itemsize * int(np.prod(pack.shape[1:]))
        except (H5vcError, *_READ_ERRORS) as e:
            report.problems.append(Problem(f"object {h[:10]}", f"cannot be read ({e})", BACKUP))
            continue
        report.objects += 1
        if got == h:
            good.add(h)
        else:
            report.problems.append(Problem(f"object {h[:10]}", "preserved rows do not match "
                                           "their hash (damaged)", BACKUP))
    return good


def _check_live(f: h5py.File, state: State, objects: set[str], report: VerifyReport,
                only: set[tuple[str, int, int, str]] | None = None) -> set[tuple[str, int, int, str]]:
    """Rehash the live rows ``state`` commits; the (path, start, stop, hash) that match."""
    good: set[tuple[str, int, int, str]] = set()
    for p, node in sorted(state.items()):
        if node["k"] != "d":
            continue
        ranges = [r for r in node["ranges"] if only is None or (p, r[0], r[1], r[2]) in only]
        if not ranges:
            continue
        try:
            ds = f[p] if p in f else None
            if ds is not None and not isinstance(ds, h5py.Dataset):
                ds = None
            meta, n = dataset_meta(ds, node["meta"]) if ds is not None else (None, 0)
        except _READ_ERRORS as e:
            report.problems.append(Problem(p, f"cannot be read ({e})", BACKUP))
            continue
        same = ds is not None and meta == node["meta"]
        stored = bool(node["meta"].get("stored"))  # hashes of stored chunks
        dkey = dtype_key(ds.dtype) if same and not stored else ""
        hashes = _run_hashes(ds, ranges, n, dkey, report) if same and not stored else {}
        for s, e, h in ranges:
            if same and e <= n:
                try:
                    got = hashes.get((s, e))
                    if got is None:
                        got = range_hash(ds, s, e, dkey, stored)
                        report.live_rows += e - s
                        report.bytes_read += (e - s) * max(ds.id.get_type().get_size(), 1) * int(
                            np.prod(ds.shape[1:] if ds.shape else ()))
                except _READ_ERRORS as err:
                    report.problems.append(Problem(f"{p} rows {s}:{e}", f"cannot be read ({err})",
                                                   BACKUP))
                    continue
                if got == h:
                    good.add((p, s, e, h))
                    continue
            if h in objects:
                # the committed rows are safe as a preserved copy, but the store does not hold
                # what HEAD says: damage, or an in-place edit no metadata scan can see
                report.problems.append(Problem(
                    f"{p} rows {s}:{e}", "differ from the commit checked out (changed in place "
                    "by another tool, or damaged); the committed rows are preserved",
                    "`h5vc checkout --force HEAD` puts them back, or `h5vc commit --verify` "
                    "records the change"))
            else:
                why = ("the dataset was deleted or re-created outside h5vc" if not same
                       else "the rows were cut" if e > n
                       else "they were changed in place by another tool, or are damaged")
                report.problems.append(Problem(
                    f"{p} rows {s}:{e}", f"the committed rows are no longer in the store ({why})",
                    BACKUP))
    return good


RUN_BYTES = 16 << 20  # live rows are read this many bytes at a time, into one reused buffer


def _run_hashes(ds: h5py.Dataset, ranges: list[list[Any]], n: int, dkey: str,
                report: VerifyReport) -> dict[tuple[int, int], str]:
    """Hashes of adjacent fixed-size ranges, read a run at a time (one read per ~16 MiB, not
    one per range); ranges it cannot do are left to the caller."""
    out: dict[tuple[int, int], str] = {}
    if ds.dtype.hasobject or not ds.shape or not ranges:
        return out
    rb = max(1, ds.dtype.itemsize * int(np.prod(ds.shape[1:])))
    step = max(1, RUN_BYTES // rb)
    buf = np.empty((min(step, n), *ds.shape[1:]), dtype=ds.dtype)
    todo = sorted((r for r in ranges if r[1] <= n and r[1] - r[0] <= step), key=lambda r: r[0])
    i = 0
    while i < len(todo):
        a = todo[i][0]
        j = i
        while j + 1 < len(todo) and todo[j + 1][0] == todo[j][1] and todo[j + 1][1] - a <= step:
            j += 1
        b = todo[j][1]
        view = buf[:b - a]
        try:
            ds.read_direct(view, np.s_[a:b])
        except _READ_ERRORS:
            i = j + 1
            continue  # the caller reads these ranges one by one and names the damage
        for s, e, _h in todo[i:j + 1]:
            out[(s, e)] = rows_hash(view[s - a:e - a], dkey)
        report.bytes_read += (b - a) * rb
        report.live_rows += b - a
        i = j + 1
    return out


def verify(repo: RepositoryLike, rev: str | None = None) -> VerifyReport:
    """Check the whole store (or what commit ``rev`` needs); see the module docstring."""
    report = VerifyReport()
    layout = repo._layout
    f = repo._f
    try:
        data = layout.read_journal()
    except _READ_ERRORS as e:
        report.problems.append(Problem("journal", f"cannot be read ({e})", BACKUP))
        return report
    extent = int(layout.journal.shape[0])
    if extent > len(data):
        report.notes.append("the history ends with an unfinished commit record (an interrupted "
                            "commit, never reported); any writing command drops it")
    frames = _frames(data, report)
    report.commits = len(frames)
    if repo.interrupted is not None:
        report.problems.append(Problem("store", f"an interrupted {repo.interrupted.get('op')} "
                                       "is not finished or undone", REPAIR))

    # refs and the snapshot
    tips: dict[str, str] = {}
    try:
        refs = repo._refs()
        head = repo._head_from(refs)
        for kind in ("branches", "tags"):
            for name, cid in refs[kind].items():
                tips[f"{kind[:-2] if kind == 'branches' else 'tag'} {name}"] = cid
        if head is not None:
            tips["HEAD"] = head
        for name, cid in tips.items():
            if cid not in frames:
                report.problems.append(Problem(f"refs ({name})", f"names commit {cid[:10]}, "
                                               "which is not in the history", REPAIR))
    except H5vcError as e:
        report.problems.append(Problem("refs", str(e), REPAIR))
        head = None
    for name in layout.damaged_slots():
        report.problems.append(Problem(f"{name} record", "its newest slot is damaged (read "
                                       "from its copy in /.h5vc's attributes meanwhile)", REPAIR))
    try:
        snap, _ = layout.read_record("state")
    except IntegrityError:
        snap = None
        report.problems.append(Problem("state snapshot", "damaged (h5vc rebuilds the state "
                                       "from the history meanwhile)", REPAIR))
    if snap is not None and rev is None:
        cid = snap.get("commit") if isinstance(snap, dict) else None
        built = _state(cid, frames) if isinstance(cid, str) else None
        stored = _stored_state(layout, snap, report)
        if stored is not None and (built is None or built != stored):
            report.problems.append(Problem("state snapshot", "does not match the history "
                                           f"(commit {str(cid)[:10]})", REPAIR))

    # what to check: everything, or what one commit needs
    if rev is not None:
        target = repo.resolve(rev)
        tips = {rev: target}
    states: dict[str, State] = {}
    for name, cid in tips.items():
        st = _state(cid, frames) if cid in frames else None
        if st is not None:
            states[name] = st
    wanted = None if rev is None else {r[2] for st in states.values() for node in st.values()
                                       if node["k"] == "d" for r in node["ranges"]}
    objects = _check_objects(layout, wanted, report)
    # the live rows: HEAD's (or, for ``rev``, those of its ranges the store holds now)
    first = "HEAD" if rev is None else rev
    sel = layout.selection()  # a partial store holds these paths; the rest is on its remote
    live_good = _check_live(f, within(states[first], sel), objects, report) \
        if first in states else set()
    reported = {pr.where for pr in report.problems}
    if rev is None:
        # every commit reachable from a tip: each range a commit needs was written by the
        # "rows" change of some commit on its line, so the ranges of those changes are all
        # the ranges any of them needs
        needed: dict[tuple[str, int, int, str], str] = {}
        seen: set[str] = set()
        todo = [cid for cid in tips.values() if cid in frames]
        while todo:
            cid = todo.pop()
            if cid in seen:
                continue
            seen.add(cid)
            fr, rec = frames[cid]
            for ch in rec["changes"]:
                if isinstance(ch, dict) and ch.get("op") == "rows":
                    for s, e, h in ch.get("ranges", []):
                        needed.setdefault((ch["path"], s, e, h), cid)
            todo.extend(p for p in [fr.parent, *rec.get("parents", [])[1:]]
                        if isinstance(p, str) and p in frames)
        lost = sorted((key, cid) for key, cid in needed.items()
                      if key[3] not in objects and key not in live_good and selected(key[0], sel))
        if sel is not None:
            report.notes.append(f"a partial store: it holds {', '.join(sel)}; the rest of the "
                                "history is on its remote")
        checks = [(f"commit {cid[:10]}", p, s, e) for (p, s, e, _h), cid in lost]
    else:
        checks = [(name, p, s, e) for name, st in states.items() if name != first
                  for p, node in st.items() if node["k"] == "d" and selected(p, sel)
                  for s, e, h in node["ranges"]
                  if h not in objects and (p, s, e, h) not in live_good]
    checks = [c for c in checks if f"{c[1]} rows {c[2]}:{c[3]}" not in reported]
    for name, p, s, e in checks[:20]:
        report.problems.append(Problem(f"{p} rows {s}:{e}", f"needed by {name}, "
                                       "is neither preserved nor live", BACKUP))
    if len(checks) > 20:
        report.problems.append(Problem("history", f"{len(checks) - 20} more ranges missing",
                                       BACKUP))
    return report


@dataclass(frozen=True)
class Loss:
    """Committed rows that another tool destroyed and h5vc never preserved."""

    path: str
    ranges: list[tuple[int, int]]
    why: str
    commits: int  # commits on HEAD's line that can no longer be fully checked out
    since: str | None  # the oldest of them

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "ranges": [list(r) for r in self.ranges], "why": self.why,
                "commits": self.commits, "since": self.since}

    def __str__(self) -> str:
        rows = ", ".join(f"{s}:{e}" for s, e in self.ranges[:3]) + (" …" if len(self.ranges) > 3
                                                                     else "")
        since = f" (since {self.since[:10]})" if self.since else ""
        return (f"{self.path} rows {rows} {self.why}: {self.commits} commit(s){since} can no "
                "longer be fully checked out")


def find_losses(repo: RepositoryLike, head: str | None, state: State,
                changes: list[dict[str, Any]]) -> list[Loss]:
    """Which of ``changes`` (a scan of the store against HEAD's ``state``) destroy committed
    rows that are not preserved: deleted, re-created or cut by another tool, or (with a
    verifying scan) rewritten in place."""
    gone: dict[str, tuple[list[list[Any]], str]] = {}
    for ch in changes:
        op, p = ch["op"], ch["path"]
        if op == "delete":
            for q, node in state.items():
                if node["k"] == "d" and (q == p or q.startswith(p.rstrip("/") + "/")):
                    gone[q] = (node["ranges"], "deleted outside h5vc")
        elif op == "redefine":
            node = state.get(p)
            if node is not None and node["k"] == "d":
                gone[p] = (node["ranges"], "re-created with another type or layout outside h5vc")
        elif op == "rows" and p in state and state[p]["k"] == "d" and p not in gone:
            node = state[p]
            cut = [r for r in node["ranges"] if r[1] > ch["to"]]
            rewritten = {(r[0], r[1]) for r in ch["ranges"] if r[0] < ch["from"]}
            # (a block of stored chunks is rewritten whole: [start, new end) over [start, end))
            hit = [r for r in node["ranges"] if r not in cut
                   and any(a < r[1] and r[0] < b for a, b in rewritten)]
            if cut:
                gone[p] = (cut, "cut off outside h5vc")
            if hit:
                gone[p] = (gone.get(p, ([], ""))[0] + hit,
                           "changed in place outside h5vc" if not cut else
                           "cut off or changed in place outside h5vc")
    layout = repo._layout
    lost = {p: ([r for r in rs if r[2] is not None and not layout.has_object(r[2])], why)
            for p, (rs, why) in gone.items()}
    lost = {p: v for p, v in lost.items() if v[0]}
    if not lost:
        return []
    wanted = {(p, r[2]) for p, (rs, _why) in lost.items() for r in rs}
    since: dict[str, tuple[int, str]] = {}  # path -> (commits back, the commit)
    count = 0
    fr = repo._frame(head) if head else None
    while fr is not None and wanted:
        count += 1
        for ch in repo._record_of(fr.id)["changes"]:
            if ch["op"] == "rows":
                for r in ch["ranges"]:
                    if (ch["path"], r[2]) in wanted:
                        wanted.discard((ch["path"], r[2]))
                        since[ch["path"]] = (count, fr.id)
        fr = repo._parent_frame(fr)
    return [Loss(p, [(r[0], r[1]) for r in rs], why, since.get(p, (count, None))[0],
                 since.get(p, (count, None))[1])
            for p, (rs, why) in sorted(lost.items())]


def repair(repo: RepositoryLike) -> RepairReport:
    """Rebuild refs and snapshot from the journal, finish or undo an interrupted operation."""
    out = RepairReport()
    out.actions += repo.recovered
    repo.recovered = []
    layout = repo._layout
    refs = repo._refs()  # a writable repository rebuilds damaged refs as it reads them
    out.actions += repo.recovered
    repo.recovered = []
    repo._write_refs(refs)  # also overwrites a torn slot
    intent = layout.read_intent()
    if intent is not None:
        try:
            repo._recover(intent)
            out.actions += repo.recovered
        except H5vcError as e:
            layout.clear_intent()
            out.unsaved.append(Problem("store", f"an interrupted {intent.get('op')} could not be "
                                       f"finished or undone ({e}); the intent was dropped",
                                       "check the store with `h5vc verify` and `h5vc status`"))
        repo.recovered = []
    head = repo._head_from(repo._refs())
    if head is not None:
        repo._head_cache = None
        index = repo._load_index()
        chain = []
        cur: str | None = head
        while cur is not None:
            chain.append(cur)
            cur = index[cur].parent
        state = apply_changes(empty_state(), [ch for c in reversed(chain)
                                              for ch in repo._record_of(c)["changes"]])
        repo._write_snapshot(head, state)
        out.actions.append(f"rebuilt the state snapshot of {head[:10]} from the history")
    layout.sync()
    rep = verify(repo)
    out.unsaved += rep.problems
    return out

