"""SIGKILL at random moments during ``h5vc push``, ``pull`` and ``clone`` to a folder remote.

Templates (built once per session, through the CLI of the h5vc under test): a store A of four
commits (~80 MiB of images), a remote holding A's first two commits, a remote holding all
four, and a clone B of the half remote. A trial copies what it needs, starts the command, kills
its process group after a seeded random delay (the start-up of a process that opens a store,
then up to 1.15 times the rest of a control run), and checks:

- push: A is untouched (same digest, verify passes); a rerun of push completes; a clone of the
  remote then holds every commit of A (its log equals A's, verify restores every commit, its
  files equal A's);
- clone: the destination is either absent (no partial file left under its name) or a whole
  store equal to A; a rerun (if needed) makes it;
- pull: B is either as it was or fully updated (digest, clean status, verify passes); a rerun
  of pull brings it to A's tip.

Outcomes use the harness's names: ``lost commit`` when a commit is missing after the rerun,
``silent mismatch`` when data differs without any error, ``unusable store`` when B or the clone
cannot be opened or verified, ``op error`` when the rerun fails.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import xxhash

from . import harness as h

REMOTE_OPS = ("push", "pull", "clone")
_lock = threading.Lock()
_templates: dict[str, Path] = {}
_windows: dict[str, float] = {}


def digest(path: Path) -> str:
    """Every object outside /.h5vc: names, shapes, dtypes, values, attributes."""
    d = xxhash.xxh3_128()
    with h5py.File(path, "r") as f:
        def visit(name: str, obj: Any) -> None:
            if name.startswith(".h5vc"):
                return
            d.update(name.encode())
            for k in sorted(obj.attrs):
                d.update(k.encode() + repr(obj.attrs[k]).encode())
            if isinstance(obj, h5py.Dataset):
                d.update(str((obj.shape, obj.dtype)).encode())
                d.update(np.ascontiguousarray(obj[()]).tobytes())
        f.visititems(visit)
    return d.hexdigest()


def _ok(c: h.Cmd, what: str) -> h.Cmd:
    if c.rc != 0:
        raise RuntimeError(f"building the remote templates: {what} failed:\n{c.err}")
    return c


def _commit_ids(store: Path) -> list[str]:
    c = h.h5vc("log", "--json", "-s", str(store))
    return [x["id"] for x in json.loads(c.out)] if c.rc == 0 else []


def template(session: h.Session) -> Path:
    """The templates (see the module's docstring), built once."""
    with _lock:
        if "t" in _templates:
            return _templates["t"]
        d = session.root / "templates" / "remote"
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        a = d / "a.h5"
        rng = np.random.default_rng(5)
        with h5py.File(a, "w") as f:
            for cat in ("cat", "dog"):
                g = f.create_group(f"train/{cat}")
                g.attrs["label"] = cat
                g.create_dataset("images", data=rng.integers(0, 255, (600, 64, 64), dtype="u1"),
                                 maxshape=(None, 64, 64), chunks=(32, 64, 64))
        _ok(h.h5vc("init", str(a), "-m", "first"), "init")
        half, full = d / "half", d / "full"
        for i in range(3):
            if i == 1:  # half: A's first two commits; B: a clone of them
                _ok(h.h5vc("remote", "add", "origin", str(half), "-s", str(a)), "remote add")
                _ok(h.h5vc("push", "-q", "-s", str(a)), "push to half")
                _ok(h.h5vc("clone", "-q", str(half), str(d / "b.h5")), "clone of half")
            with h5py.File(a, "a") as f:
                ds = f["train/dog/images"]
                n = ds.shape[0]
                ds.resize(n + 6000, axis=0)
                ds[n:] = rng.integers(0, 255, (6000, 64, 64), dtype="u1")
                f["train/cat"].attrs["round"] = i
            _ok(h.h5vc("commit", "-s", str(a), "-m", f"round {i}"), "commit")
        shutil.copytree(half, full)  # full: all four
        _ok(h.h5vc("remote", "add", "full", str(full), "-s", str(a)), "remote add")
        _ok(h.h5vc("push", "-q", "full", "-s", str(a)), "push to full")
        meta = {"ids": _commit_ids(a), "a": digest(a), "b": digest(d / "b.h5")}
        (d / "meta.json").write_text(json.dumps(meta))
        _templates["t"] = d
        return d


def _setup(session: h.Session, op: str, seed: int) -> tuple[Path, list[str]]:
    t = template(session)
    d = session.root / "trials" / f"kill-{op}-{seed}"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    if op == "push":
        shutil.copyfile(t / "a.h5", d / "a.h5")
        shutil.copytree(t / "half", d / "remote")
        h.h5vc("remote", "add", "origin", str(d / "remote"), "-s", str(d / "a.h5"))
        argv = ["push", "-q", "-s", str(d / "a.h5")]
    elif op == "clone":
        shutil.copytree(t / "full", d / "remote")
        argv = ["clone", "-q", str(d / "remote"), str(d / "c.h5")]
    else:
        shutil.copyfile(t / "b.h5", d / "b.h5")
        shutil.copytree(t / "full", d / "remote")
        h.h5vc("remote", "add", "origin", str(d / "remote"), "-s", str(d / "b.h5"))
        argv = ["pull", "-q", "-s", str(d / "b.h5")]
    return d, argv


def _run_killed(argv: list[str], delay: float | None) -> tuple[h.Cmd, bool]:
    """Run ``h5vc ARGV`` as a new process; SIGKILL its group after ``delay`` seconds (None: to
    its end). Returns the command and whether the kill landed before it finished."""
    full = [h.H5VC, *argv]
    t0 = time.monotonic()
    p = subprocess.Popen(full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env={**os.environ, **h.BASE_ENV}, start_new_session=True)
    killed = False
    if delay is not None:
        try:
            p.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            h.kill_group(p.pid)
            killed = True
    out, err = p.communicate(timeout=600)
    return h.Cmd(full, p.returncode, out, err, time.monotonic() - t0), killed


def window(session: h.Session, op: str) -> tuple[float, float]:
    """(start-up, work): seconds before ``op`` starts its work (a process that only opens a
    store and lists its remotes), and seconds of work after that (a control run, which must
    succeed)."""
    with _lock:
        if op in _windows:
            return _windows["start"], _windows[op]
    d, argv = _setup(session, op, 0)
    store = d / ("b.h5" if op == "pull" else "a.h5")
    startup = min(_run_killed(["remote", "list", "-s", str(store)], None)[0].elapsed
                  for _ in range(3)) if store.exists() else 0.0
    c, _ = _run_killed(argv, None)
    shutil.rmtree(d, ignore_errors=True)
    if c.rc != 0:
        raise RuntimeError(f"control {op} failed: {c.describe()}")
    with _lock:
        _windows.setdefault("start", startup)
        _windows[op] = max(c.elapsed - _windows["start"], 0.05)
    session.log(f"control {op}: {c.elapsed * 1000:.0f} ms, of which start-up "
                f"{_windows['start'] * 1000:.0f} ms")
    return _windows["start"], _windows[op]


def _verify(trial: h.Trial, store: Path, what: str) -> bool:
    c = h.h5vc("verify", "-s", str(store), real=True)
    if c.crashed:
        trial.found(h.TRACEBACK if c.traceback else h.UNUSABLE, f"verify of {what}: {c.describe()}")
        return False
    if c.rc != 0:
        trial.found(h.UNUSABLE, f"verify of {what}: {c.describe()}")
        return False
    return True


def kill_trial(session: h.Session, op: str, seed: int) -> h.Trial:
    t0 = time.monotonic()
    trial = h.Trial("kill", op, seed)
    try:
        start, work = window(session, op)
        meta = json.loads((template(session) / "meta.json").read_text())
        d, argv = _setup(session, op, seed)
        delay = start + random.Random(seed).uniform(0.0, 1.15) * work
        trial.info["kill"] = f"+{delay * 1000:.0f} ms"
        c, killed = _run_killed(argv, delay)
        trial.info["killed_in"] = "op" if killed else "after its end"
        if c.traceback:
            trial.found(h.TRACEBACK, c.describe())
        elif not killed and c.rc != 0:
            trial.found(h.OP_ERROR, c.describe())
        if op == "push":
            _check_push(trial, d, meta)
        elif op == "clone":
            _check_clone(trial, d, meta)
        else:
            _check_pull(trial, d, meta)
    except Exception as e:  # the harness itself: reported, never a silent pass
        trial.found(h.OP_ERROR, f"trial failed: {type(e).__name__}: {e}")
        d = session.root / "trials" / f"kill-{op}-{seed}"
    trial.elapsed = time.monotonic() - t0
    return session.finish(trial, d)


def _rerun(trial: h.Trial, argv: list[str]) -> bool:
    c = h.h5vc(*argv, real=True)
    if c.rc != 0:
        trial.found(h.TRACEBACK if c.traceback else h.OP_ERROR, f"rerun: {c.describe()}")
        return False
    return True


def _same_as_a(trial: h.Trial, store: Path, meta: dict[str, Any], what: str) -> None:
    ids = _commit_ids(store)
    lost = [c for c in meta["ids"] if c not in ids]
    if lost:
        trial.found(h.LOST, f"{what} lacks commit {lost[0][:10]} (and {len(lost) - 1} more)")
        return
    if not _verify(trial, store, what):
        return
    if digest(store) != meta["a"]:
        trial.found(h.SILENT, f"{what}'s data differs from A's, and nothing said so")


def _check_push(trial: h.Trial, d: Path, meta: dict[str, Any]) -> None:
    a = d / "a.h5"
    if digest(a) != meta["a"]:
        trial.found(h.SILENT, "push changed A's data")
    if not _verify(trial, a, "A"):
        return
    if not _rerun(trial, ["push", "-q", "-s", str(a)]):
        return
    c = d / "check.h5"
    if not _rerun(trial, ["clone", "-q", str(d / "remote"), str(c)]):
        return
    _same_as_a(trial, c, meta, "a clone of the remote")
    trial.info["state"] = "pushed"


def _check_clone(trial: h.Trial, d: Path, meta: dict[str, Any]) -> None:
    c = d / "c.h5"

    def litter() -> list[str]:
        return sorted(p.name for p in d.iterdir() if p.name.startswith("c.h5")
                      and p.name != "c.h5" and not p.name.endswith("-lock"))

    if c.exists():
        trial.info["state"] = "cloned"
        _same_as_a(trial, c, meta, "the clone")
        if litter():
            trial.found(h.MANUAL, f"a clone that completed left {litter()}")
        return
    # killed before the end: nothing under the store's name; its unfinished file beside it is
    # what the rerun replaces
    trial.info["state"] = "absent"
    if _rerun(trial, ["clone", "-q", str(d / "remote"), str(c)]):
        _same_as_a(trial, c, meta, "the clone made again")
        if litter():
            trial.found(h.MANUAL, f"the rerun clone left {litter()}")


def _check_pull(trial: h.Trial, d: Path, meta: dict[str, Any]) -> None:
    b = d / "b.h5"
    st = h.h5vc("status", "--json", "-s", str(b), real=True)
    if st.rc != 0:
        trial.found(h.TRACEBACK if st.traceback else h.UNUSABLE, f"status of B: {st.describe()}")
        return
    if not json.loads(st.out).get("clean"):
        trial.found(h.UNUSABLE, "B is not clean after the killed pull")
    if not _verify(trial, b, "B"):
        return
    got = digest(b)
    if got not in (meta["a"], meta["b"]):
        trial.found(h.SILENT, "B is neither as it was nor updated")
        return
    trial.info["state"] = "updated" if got == meta["a"] else "as it was"
    if _rerun(trial, ["pull", "-q", "-s", str(b)]):
        _same_as_a(trial, b, meta, "B after a second pull")


def kill_trials(session: h.Session, op: str, n: int, first_seed: int = 1,
                on_done: Any = None) -> list[h.Trial]:
    window(session, op)
    jobs = [lambda s=s: kill_trial(session, op, s) for s in range(first_seed, first_seed + n)]
    return h.run_trials(session, jobs, on_done=on_done)
