"""Fault-injection harness for h5vc: kill it, run two writers, fill the disk, flip bits.

Every trial works on a fresh copy of a template store in its own folder, and is decided by a
seed (the kill moment, the data written, the byte flipped), so a failing trial is replayed with
``python bench/fault.py --op OP --seed SEED --trials 1 --keep``.

The harness process never opens an HDF5 file itself: a damaged store could crash HDF5, so all
reading and writing is done by subprocesses (``worker.py`` and the ``h5vc`` CLI).

Kinds of trial (see docs/reliability.md):

* ``kill`` (ops ``add``, ``commit``, ``checkout``, ``transaction``, ``repair``): a worker does
  the operation in a loop, logging what it was told succeeded, and is SIGKILLed (its whole
  process group, with the ``h5vc`` command it is running) after a random delay. Then: the next
  ``h5vc status`` must work; if the store is not in an allowed state, the next writing command
  (``h5vc checkout`` of where HEAD should be) must bring it there; ``verify`` must be clean;
  every reported commit must be in the log and check out to its recorded digest.
* ``writers``: two processes at once, each doing N commits through
  ``Repository.open(path, "r+", wait=30)`` with ``HDF5_USE_FILE_LOCKING=FALSE``.
* ``disk``: a store on a small tmpfs filled by ``h5vc add`` (or a checkout that must preserve
  rows) until the disk is full: one clean ``Error:`` line, exit 1, history intact.
* ``bitflip``: one random byte of a store with a few commits flipped; verify must report it
  when committed content changed, and no command may print a traceback.

``verify()`` is the one place that asks h5vc whether a store is sound: ``h5vc verify --json``
when the CLI has it, else a fallback (``worker.fallback_verify``: the history reads, HEAD's
committed rows rehash, and every commit checks out on a copy with its rows matching).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
WORKER = HERE / "worker.py"
_VENV_PY = ROOT / ".venv" / "bin" / "python"
PY = str(_VENV_PY if _VENV_PY.exists() else Path(sys.executable))
H5VC = str(Path(PY).parent / "h5vc")

KILL_OPS = ("add", "commit", "checkout", "transaction", "repair")

# outcomes, most severe first; a trial gets the most severe of what it found
TRACEBACK = "traceback"
UNUSABLE = "unusable store"
LOST = "lost commit"
SILENT = "silent mismatch"
MANUAL = "manual recovery needed"
OP_ERROR = "op error"
OK = "ok"
SKIPPED = "skipped"
OUTCOMES = (TRACEBACK, UNUSABLE, LOST, SILENT, MANUAL, OP_ERROR, OK, SKIPPED)
# bit flips
DETECTED = "detected"
HARMLESS = "harmless"
SILENT_FLIP = "silent"
FLIP_OUTCOMES = (TRACEBACK, SILENT_FLIP, DETECTED, HARMLESS)
GOOD = {OK, SKIPPED, DETECTED, HARMLESS}

BASE_ENV = {"H5VC_AUTHOR": "Fault Harness <fault@example.org>", "PYTHONDONTWRITEBYTECODE": "1"}

# H5VC_FAULT_SRC=DIR runs the trials against another h5vc source tree (e.g. `git archive HEAD`
# unpacked in DIR), ahead of the installed one on PYTHONPATH, plugins included.
SRC = os.environ.get("H5VC_FAULT_SRC")
if SRC:
    _paths = [SRC, *(str(p) for p in sorted((Path(SRC) / "plugins").glob("h5vc-*")))]
    BASE_ENV["PYTHONPATH"] = os.pathsep.join([*_paths, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)

# H5VC_FAULT_VERIFY: "auto" (h5vc verify if the CLI has it, else the fallback), "verify",
# or "fallback"
VERIFY_MODE = os.environ.get("H5VC_FAULT_VERIFY", "auto")


# -- running commands ----------------------------------------------------------------------------

@dataclass
class Cmd:
    """One finished command: exit code, output, and whether it crashed."""

    argv: list[str]
    rc: int
    out: str
    err: str
    elapsed: float
    timed_out: bool = False

    @property
    def traceback(self) -> bool:
        return "Traceback (most recent call last)" in self.out + self.err

    @property
    def signal(self) -> int | None:
        return -self.rc if self.rc < 0 else None

    @property
    def crashed(self) -> bool:
        """A Python traceback, death by a signal (SIGSEGV, SIGBUS, ...) or a hang."""
        return self.traceback or self.signal is not None or self.timed_out

    @property
    def clean_error(self) -> bool:
        """Exit 1 with exactly one line on stderr, ``Error: ...``."""
        lines = [x for x in self.err.strip().splitlines() if x.strip()]
        return (self.rc == 1 and not self.crashed and len(lines) == 1
                and lines[0].startswith("Error: "))

    def describe(self) -> str:
        name = " ".join(Path(a).name if a.startswith("/") else a for a in self.argv[:4])
        if self.timed_out:
            return f"`{name}` hung (killed after {self.elapsed:.0f} s)"
        if self.signal is not None:
            return f"`{name}` died by signal {self.signal} ({signal.Signals(self.signal).name})"
        tail = (self.err.strip() or self.out.strip()).splitlines()
        last = tail[-1][:300] if tail else ""
        if self.traceback:
            return f"`{name}` printed a traceback: {last}"
        return f"`{name}` exit {self.rc}: {last}"


def run_cmd(argv: list[str], *, env: dict[str, str] | None = None, timeout: float = 300,
            cwd: str | None = None) -> Cmd:
    full_env = {**os.environ, **BASE_ENV, **(env or {})}
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=full_env, cwd=cwd, start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
        return Cmd(argv, p.returncode, out, err, time.monotonic() - t0)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)  # its own session: only what this command started
        out, err = p.communicate()
        return Cmd(argv, p.returncode, out, err, time.monotonic() - t0, timed_out=True)


# H5VC_FAULT_FORK=0: every command a new process. By default the commands that check a store
# after a fault run in children forked from a server that has imported h5vc and h5py already
# (worker.serve): the same code and the same fresh process state, without ~0.3 s of imports
# each. The first command after a kill and the recovering command are always new processes.
FORK = os.environ.get("H5VC_FAULT_FORK", "1") != "0"


class ForkServer:
    """One ``worker.py serve`` process; one request at a time (one server per thread)."""

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
        scratch.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen([PY, str(WORKER), "serve"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                     env={**os.environ, **BASE_ENV, "OPENBLAS_NUM_THREADS": "1"},
                                     start_new_session=True)
        self.n = 0

    def run(self, kind: str, argv: list[str], env: dict[str, str] | None, timeout: float,
            shown: list[str]) -> Cmd | None:
        if self.proc.poll() is not None:
            return None
        self.n += 1
        out, err = self.scratch / f"{self.n}.out", self.scratch / f"{self.n}.err"
        t0 = time.monotonic()
        req = {"kind": kind, "argv": argv, "env": {**BASE_ENV, **(env or {})},
               "out": str(out), "err": str(err), "timeout": timeout}
        try:
            assert self.proc.stdin is not None and self.proc.stdout is not None
            self.proc.stdin.write(json.dumps(req) + "\n")
            self.proc.stdin.flush()
            reply = json.loads(self.proc.stdout.readline())
        except (OSError, ValueError):
            return None
        c = Cmd(shown, reply["rc"], out.read_text(errors="replace"), err.read_text(errors="replace"),
                time.monotonic() - t0, reply["timed_out"])
        out.unlink()
        err.unlink()
        return c

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


_free_servers: list[ForkServer] = []
_all_servers: list[ForkServer] = []
_servers_lock = threading.Lock()


def _acquire_server() -> ForkServer | None:
    """A fork server no other thread is using (started if need be), or None if FORK is off."""
    if not FORK:
        return None
    with _servers_lock:
        while _free_servers:
            srv = _free_servers.pop()
            if srv.proc.poll() is None:
                return srv
        srv = ForkServer(Path(tempfile.mkdtemp(prefix="h5vc-fault-srv-")))
        _all_servers.append(srv)
        return srv


def _release_server(srv: ForkServer) -> None:
    with _servers_lock:
        _free_servers.append(srv)


def _forked(kind: str, argv: list[str], env: dict[str, str] | None, timeout: float,
            shown: list[str]) -> Cmd | None:
    srv = _acquire_server()
    if srv is None:
        return None
    try:
        return srv.run(kind, argv, env, timeout, shown)
    finally:
        _release_server(srv)


def close_servers() -> None:
    with _servers_lock:
        for srv in _all_servers:
            srv.close()
            shutil.rmtree(srv.scratch, ignore_errors=True)
        _all_servers.clear()
        _free_servers.clear()


def h5vc(*args: str, env: dict[str, str] | None = None, timeout: float = 300,
         real: bool = False) -> Cmd:
    """Run ``h5vc ARGS``: a new process if ``real``, else a child of the fork server."""
    c = None if real else _forked("cli", list(args), env, timeout, [H5VC, *args])
    return c if c is not None else run_cmd([H5VC, *args], env=env, timeout=timeout)


def worker(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> Cmd:
    c = None
    if args and args[0] == "check":
        c = _forked("check", list(args), env, timeout, [PY, str(WORKER), *args])
    return c if c is not None else run_cmd([PY, str(WORKER), *args], env=env, timeout=timeout)


def check(work: Path, **req: Any) -> tuple[dict[str, Any], Cmd]:
    """Ask ``worker.py check`` (digests, checkouts on a copy, fallback verify)."""
    work.mkdir(parents=True, exist_ok=True)
    req.setdefault("workdir", str(work / "check"))
    fd, name = tempfile.mkstemp(suffix=".json", dir=work)
    with os.fdopen(fd, "w") as fh:
        json.dump(req, fh)
    c = worker("check", name)
    os.unlink(name)
    try:
        res = json.loads(c.out.strip().splitlines()[-1]) if c.rc == 0 else {}
    except (ValueError, IndexError):
        res = {}
    shutil.rmtree(work / "check", ignore_errors=True)
    return res, c


def parse_json(c: Cmd) -> Any:
    if c.rc != 0:
        return None
    try:
        return json.loads(c.out)
    except ValueError:
        return None


# -- capabilities ------------------------------------------------------------------------------------

_caps: dict[str, bool] = {}
_caps_lock = threading.Lock()


def has_command(name: str) -> bool:
    """Whether the h5vc CLI has a command (``verify`` and ``repair`` are on their way)."""
    with _caps_lock:
        if name not in _caps:
            _caps[name] = h5vc(name, "--help").rc == 0
        return _caps[name]


def uses_verify_command() -> bool:
    """Whether ``verify()`` asks ``h5vc verify`` (else it uses the fallback)."""
    return VERIFY_MODE == "verify" or (VERIFY_MODE == "auto" and has_command("verify"))


@dataclass
class Verdict:
    """What ``verify`` said: ``ok`` iff the store is sound."""

    ok: bool
    mode: str  # "verify" (h5vc verify) or "fallback"
    problems: list[str]
    crashed: list[str]  # tracebacks or signals: always bugs


def verify(store: Path, work: Path, *, env: dict[str, str] | None = None) -> Verdict:
    """THE verify helper: ``h5vc verify -s STORE --json`` (exit 0 iff sound), or, until that
    command exists, the fallback in ``worker.fallback_verify``."""
    if uses_verify_command():
        c = h5vc("verify", "-s", str(store), "--json", env=env)
        problems = []
        if c.rc != 0:
            js = parse_json(Cmd(c.argv, 0, c.out, "", 0.0))
            if isinstance(js, dict) and js.get("problems"):
                problems = [p if isinstance(p, str) else
                            "; ".join(str(v) for v in p.values()) for p in js["problems"]]
            else:
                problems = [(c.err.strip() or c.out.strip())[:1000]]
        return Verdict(c.rc == 0 and not c.crashed, "verify", problems,
                       [c.describe()] if c.crashed else [])
    res, c = check(work, store=str(store), fallback_verify=True)
    if c.rc != 0 or "verify" not in res:  # (its JSON may quote tracebacks: not its own)
        return Verdict(False, "fallback", [c.describe()], [c.describe()] if c.signal else [])
    v = res["verify"]
    crashed = [f"API raised: {t.strip().splitlines()[-1]}" for t in v.get("tracebacks", [])]
    return Verdict(v["ok"], "fallback", v["problems"], crashed)


# -- sessions, templates, trials -----------------------------------------------------------------------

@dataclass
class Trial:
    """One trial: its kind, op and seed, the outcome and why."""

    kind: str
    op: str
    seed: int
    outcome: str = OK
    details: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    elapsed: float = 0.0
    folder: str | None = None

    @property
    def bad(self) -> bool:
        return self.outcome not in GOOD

    def found(self, outcome: str, detail: str) -> None:
        """Record a finding; the trial keeps the most severe outcome."""
        self.details.append(f"{outcome}: {detail}")
        order = FLIP_OUTCOMES if self.kind == "bitflip" else OUTCOMES
        if self.outcome not in order or order.index(outcome) < order.index(self.outcome):
            self.outcome = outcome

    def line(self) -> str:
        head = f"{self.kind}/{self.op} seed={self.seed} -> {self.outcome}"
        bits = [f"{k}={v}" for k, v in self.info.items() if k in (
            "kill", "killed_in", "reported", "offset", "open", "state", "open after the kill",
            "lock after kill")]
        s = head + (f" ({', '.join(bits)})" if bits else "")
        if self.bad or self.outcome == SKIPPED:
            order = FLIP_OUTCOMES if self.kind == "bitflip" else OUTCOMES
            rank = {o: i for i, o in enumerate(order)}
            shown = sorted(self.details, key=lambda d: rank.get(d.split(":", 1)[0], 99))
            s += "".join(f"\n    {d[:400]}" for d in shown[:6])
            if len(shown) > 6:
                s += f"\n    ... {len(shown) - 6} more"
            if self.folder:
                s += f"\n    kept: {self.folder}"
        return s


class Session:
    """A run folder, the template stores (built once), and kill-timing calibration."""

    def __init__(self, root: Path | None = None, *, jobs: int | None = None,
                 keep_failed: int = 2, log: Callable[[str], None] | None = None) -> None:
        self.root = Path(root or tempfile.mkdtemp(prefix="h5vc-fault-"))
        self.root.mkdir(parents=True, exist_ok=True)
        self.jobs = jobs or max(1, os.cpu_count() or 1)
        self.keep_failed = keep_failed  # failing trial folders kept per (op, outcome)
        self.kept: Counter[tuple[str, str]] = Counter()
        self.log = log or (lambda s: None)
        self._templates: dict[str, Path] = {}
        self._durations: dict[str, float] = {}
        # H5VC_FAULT_WINDOW=MS pins the write window (else measured by a control trial), so a
        # seed replays the same delay as the run that found it (the run prints its windows)
        pinned = os.environ.get("H5VC_FAULT_WINDOW")
        self.pinned_window = float(pinned) / 1000 if pinned else None
        self.controls: dict[str, Trial] = {}
        self._lock = threading.Lock()
        self._op_locks: dict[str, threading.Lock] = {}

    def template(self, op: str) -> Path:
        with self._lock:
            lock = self._op_locks.setdefault(op, threading.Lock())
        with lock:
            if op not in self._templates:
                d = self.root / "templates" / op
                c = worker("build", op, str(d))
                if c.rc != 0:
                    raise RuntimeError(f"building the {op} template failed:\n{c.err}")
                self._templates[op] = d
            return self._templates[op]

    def meta(self, op: str) -> dict[str, Any]:
        return json.loads((self.template(op) / "meta.json").read_text())

    def trial_dir(self, kind: str, op: str, seed: int, template: str | None = None) -> Path:
        """A fresh folder holding a copy of the template store of ``template`` (or ``op``)."""
        d = self.root / "trials" / f"{kind}-{op}-{seed}"
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        t = self.template(template or op)
        for name in ("store.h5", "meta.json", "model.pkl"):
            shutil.copyfile(t / name, d / name)
        return d

    def finish(self, trial: Trial, d: Path) -> Trial:
        """Delete the trial folder, unless it failed and fewer than keep_failed like it are kept."""
        with self._lock:
            key = (trial.op, trial.outcome)
            keep = trial.bad and self.kept[key] < self.keep_failed
            if keep:
                self.kept[key] += 1
        if keep:
            trial.folder = str(d)
        else:
            shutil.rmtree(d, ignore_errors=True)
        return trial

    def duration(self, op: str) -> float:
        """Seconds one operation writes the store for, here and now (from a control trial,
        run to its end without a kill, which must itself be ok)."""
        with self._lock:
            lock = self._op_locks.setdefault("cal-" + op, threading.Lock())
        with lock:
            if op not in self._durations:
                t = kill_trial(self, op, 0, control=True)
                self.controls[op] = t
                self._durations[op] = self.pinned_window or t.info.get("window") or 0.3
                self.log(f"control {op}: {t.outcome}; write window of one operation: "
                         f"{t.info.get('window', 0) * 1000:.0f} ms"
                         + (f" (pinned: {self.pinned_window * 1000:.0f} ms)" if self.pinned_window else ""))
            return self._durations[op]

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def read_log(path: Path) -> list[dict[str, Any]]:
    out = []
    try:
        text = path.read_text()
    except FileNotFoundError:
        return out
    for line in text.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass  # a line torn by the kill
    return out


def _wait_for(pred: Callable[[], bool], proc: subprocess.Popen[Any] | None, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        if proc is not None and proc.poll() is not None:
            return pred()
        time.sleep(0.002)
    return False


def _has_event(path: Path, ev: str) -> Callable[[], bool]:
    needle = f'"ev": "{ev}"'

    def pred() -> bool:
        try:
            return needle in path.read_text()
        except FileNotFoundError:
            return False
    return pred


# -- expected states -------------------------------------------------------------------------------------

@dataclass
class Expect:
    """What the store may hold after the kill: the last reported state, or the in-flight one."""

    last_id: str  # HEAD as last reported (a full id or a 10-digit prefix)
    last_digest: str
    last_rev: str  # how to check out the last state: "main" or an id
    flight: dict[str, Any] | None  # the begin event of the operation killed, if any
    flight_commits: bool  # the in-flight operation would make a new commit
    known: dict[str, str]  # every commit id (or prefix) the trial knows -> digest
    reported: list[tuple[str, str]]  # (id, digest) of commits the worker was told were made


def _same(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and (a.startswith(b) or b.startswith(a))  # type: ignore[union-attr]


def _digest_of(exp: Expect, cid: str) -> str | None:
    for k, d in exp.known.items():
        if _same(k, cid):
            return d
    return None


def expectation(op: str, meta: dict[str, Any], events: list[dict[str, Any]]) -> Expect:
    known = {c["id"]: c["digest"] for c in meta["commits"]}
    head = meta["head"]
    last_id, last_digest, last_rev = head, known[head], "main"
    reported: list[tuple[str, str]] = []
    begun: dict[int, dict[str, Any]] = {}
    done: set[int] = set()
    for e in events:
        if e["ev"] == "begin":
            begun[e["k"]] = e
        elif e["ev"] == "go" and e["k"] in begun:
            begun[e["k"]]["go"] = True
        elif e["ev"] == "fail":
            done.add(e["k"])  # it said it failed: its changes must not be there
        elif e["ev"] == "done":
            done.add(e["k"])
            if e.get("commit"):
                last_id, last_digest = e["commit"], e["digest"]
                known[e["commit"]] = e["digest"]
                if not e.get("moved"):
                    reported.append((e["commit"], e["digest"]))
                if op == "checkout":
                    last_rev = "main" if _same(e["commit"], meta["head"]) else e["commit"]
    flight = None
    pending = [k for k in begun if k not in done]
    if pending:
        flight = begun[max(pending)]
    commits = op in ("add", "commit", "transaction") and flight is not None \
        and not flight.get("rollback")
    return Expect(last_id, last_digest, last_rev, flight, commits, known, reported)


def allowed(op: str, exp: Expect, head: str | None, digest: str | None, clean: bool) -> str | None:
    """Which allowed state (head, content, clean) is, or None."""
    if digest is None or head is None:
        return None
    if _same(head, exp.last_id) and digest == exp.last_digest and clean:
        return "last reported state"
    f = exp.flight
    if f is not None:
        if op == "checkout" and _same(head, f.get("target")) and digest == f["expect"] and clean:
            return "in-flight checkout done"
        if exp.flight_commits and _digest_of(exp, head) is None and digest == f["expect"] and clean:
            return "in-flight commit done"
        if op == "commit" and _same(head, exp.last_id) and not clean and (
                digest == f["expect"] or not f.get("go")):
            return "the user's uncommitted appends (h5vc says so)"
    return None


# -- kill trials -----------------------------------------------------------------------------------------

WINDOW = {"add": "write", "commit": "write", "checkout": "write", "repair": "write",
          "transaction": "go"}
ANCHORS = 3  # the kill falls in one of the first three operations


class Monitor:
    """Follows the worker's log and the store's size and mtime (polled about every ms).

    For each operation k: when it started (``go``), when the store first changed after that
    (``first_write``), and when it was reported done, all in this process's clock.
    """

    def __init__(self, log: Path, store: Path) -> None:
        self.log, self.store = log, store
        self.pos = 0
        self.buf = b""
        self.events: list[dict[str, Any]] = []
        self.go: dict[int, float] = {}
        self.first_write: dict[int, float] = {}
        self.done: dict[int, float] = {}
        self.ready = False
        self._cur: int | None = None
        self._base: tuple[int, int] | None = None

    def _stat(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.store)
        except FileNotFoundError:
            return None
        return st.st_mtime_ns, st.st_size

    def poll(self) -> None:
        now = time.monotonic()
        try:
            with open(self.log, "rb") as fh:
                fh.seek(self.pos)
                chunk = fh.read()
        except FileNotFoundError:
            chunk = b""
        if chunk:
            self.pos += len(chunk)
            self.buf += chunk
            *lines, self.buf = self.buf.split(b"\n")
            for line in lines:
                try:
                    e = json.loads(line)
                except ValueError:
                    continue
                self.events.append(e)
                if e["ev"] == "ready":
                    self.ready = True
                elif e["ev"] == "go":
                    self.go[e["k"]] = now
                    self._cur, self._base = e["k"], self._stat()
                elif e["ev"] == "done":
                    self.done[e["k"]] = now
                    self._cur = None
        if self._cur is not None and self._cur not in self.first_write and self._stat() != self._base:
            self.first_write[self._cur] = now


def _stat_fields(path: str) -> list[str]:
    try:
        with open(path) as fh:
            stat = fh.read()
    except OSError:
        return []
    return stat[stat.rfind(")") + 2:].split()  # after "pid (comm) "


def _group_alive(pgid: int) -> bool:
    """Whether a process of group ``pgid`` still runs. A zombie is done only when all its
    threads are: the leader of a killed multi-threaded process (numpy's BLAS threads) turns
    zombie first, while the others, which share its open files and their locks, may still
    be exiting."""
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        fields = _stat_fields(f"/proc/{name}/stat")
        if len(fields) <= 2 or int(fields[2]) != pgid:
            continue
        if fields[0] not in "ZX":
            return True
        try:
            tasks = os.listdir(f"/proc/{name}/task")
        except OSError:
            continue
        for t in tasks:
            tf = _stat_fields(f"/proc/{name}/task/{t}/stat")
            if tf and tf[0] not in "ZX":
                return True
    return False


def holders(path: Path) -> list[str]:
    """Processes that have ``path`` open (pid, state, process group, command), from /proc."""
    target = str(path.resolve())
    out = []
    for name in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            fds = os.listdir(f"/proc/{name}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{name}/fd/{fd}") != target:
                    continue
            except OSError:
                continue
            fields = _stat_fields(f"/proc/{name}/stat")
            try:
                with open(f"/proc/{name}/cmdline", "rb") as fh:
                    cmd = fh.read().replace(b"\0", b" ").decode(errors="replace")[:120]
            except OSError:
                cmd = "?"
            out.append(f"pid {name} state {fields[0] if fields else '?'} pgid "
                       f"{fields[2] if len(fields) > 2 else '?'}: {cmd}")
            break
    return out


def wait_unheld(path: Path, trial: Trial, timeout: float = 10) -> None:
    """After a kill: the store must not stay open in any process (a crash leaves none). Who
    still holds it is recorded; the trial waits for them, up to ``timeout``."""
    held = holders(path)
    if not held:
        return
    trial.info["open after the kill"] = "; ".join(held)
    deadline = time.monotonic() + timeout
    while holders(path):
        if time.monotonic() > deadline:
            trial.found(OP_ERROR, "the store stayed open after the kill: " + "; ".join(held))
            return
        time.sleep(0.01)


def kill_group(pgid: int, timeout: float = 30) -> bool:
    """SIGKILL process group ``pgid`` (a session this harness started) and wait until every
    process of it has gone: a killed process drops its file locks only as it exits, and the
    next command must find it gone, as it would after a real crash."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return True
    if not os.path.isdir("/proc"):
        time.sleep(0.2)
        return True
    deadline = time.monotonic() + timeout
    while _group_alive(pgid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return True


def kill_trial(session: Session, op: str, seed: int, *, control: bool = False) -> Trial:
    """Do ``op`` in a loop, SIGKILL it at a seeded random moment, then check the store.

    The moment: operation ``k`` (0, 1 or 2, from the seed), and a delay (from the seed, up to
    1.15 times the length of that operation's write window) after the store first changes in
    it; for API transactions, which have no start-up, after the operation starts.
    """
    t0 = time.monotonic()
    trial = Trial("kill", op, seed)
    if op == "repair" and not has_command("repair"):
        trial.outcome = SKIPPED
        trial.details.append("h5vc has no `repair` command yet")
        return trial
    window = 0.0 if control else session.duration(op)
    d = session.trial_dir("control" if control else "kill", op, seed)
    meta = json.loads((d / "meta.json").read_text())
    store = d / "store.h5"
    log = d / "log.jsonl"
    rng = random.Random(seed)
    anchor = rng.randrange(ANCHORS)
    delay = rng.uniform(0.0, 1.15) * window
    max_ops = 3 if control else ANCHORS + 3
    if not control:
        what = "it starts" if WINDOW[op] == "go" else "the store first changes"
        trial.info["kill"] = f"op {anchor} +{delay * 1000:.1f} ms after {what}"
    with open(d / "worker.err", "w") as err:
        proc = subprocess.Popen([PY, str(WORKER), "run", op, str(d), str(log), str(seed), str(max_ops)],
                                stdout=subprocess.DEVNULL, stderr=err, start_new_session=True,
                                env={**os.environ, **BASE_ENV})
    mon = Monitor(log, store)
    killed = False
    deadline = time.monotonic() + 300
    try:
        t_kill = None
        while proc.poll() is None and time.monotonic() < deadline:
            mon.poll()
            now = time.monotonic()
            if not control and t_kill is None:
                base = (mon.go if WINDOW[op] == "go" else mon.first_write).get(anchor)
                if base is None and anchor in mon.done:
                    base = mon.done[anchor]  # no write seen in that operation: just after it
                if base is not None:
                    t_kill = base + delay
            if t_kill is not None and now >= t_kill:
                os.killpg(proc.pid, signal.SIGKILL)  # the worker and the h5vc it runs
                killed = True
                break
            time.sleep(0.0005)
    finally:
        if proc.poll() is None and not killed:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        if not kill_group(proc.pid):
            trial.found(OP_ERROR, "a killed process did not go away within 30 s")
        wait_unheld(store, trial)
    mon.poll()
    events = mon.events
    trial.info["killed"] = killed
    trial.info["reported"] = sum(1 for e in events if e["ev"] == "done")
    if control:  # how long the write window of one operation is, here and now
        base = mon.go if WINDOW[op] == "go" else mon.first_write
        spans = [mon.done[k] - base[k] for k in mon.done if k in base]
        if spans:
            trial.info["window"] = sum(spans) / len(spans)
    if not mon.ready:
        trial.found(OP_ERROR, "the worker did not start: " + (d / "worker.err").read_text()[-800:])
        return session.finish(trial, d)
    for e in events:
        if e["ev"] == "fail":
            text = e.get("stderr", "")
            kind = TRACEBACK if "Traceback (most recent call last)" in text else OP_ERROR
            trial.found(kind, f"operation {e['k']} failed before the kill: "
                        + (text.strip().splitlines() or [""])[-1][:300])
    exp = expectation(op, meta, events)
    f = exp.flight
    if not killed:
        trial.info["killed_in"] = "not killed"
    elif f is None:
        trial.info["killed_in"] = "between operations"
    else:
        trial.info["killed_in"] = f"op {f['k']}" + ("" if f.get("go") else " (before h5vc ran)")
    if f is not None and op == "commit" and not f.get("go"):
        # killed inside the worker's own plain-h5py append: not h5vc's write, not its trial
        trial.outcome = SKIPPED
        trial.details.append("killed during the worker's own h5py append (not an h5vc write)")
        return session.finish(trial, d)
    check_after(trial, op, store, d, exp)
    trial.elapsed = time.monotonic() - t0
    return session.finish(trial, d)


def kill_trials(session: Session, op: str, n: int, first_seed: int = 1,
                on_done: Callable[[Trial], None] | None = None) -> list[Trial]:
    """``n`` kill trials of ``op`` that count: a trial skipped because the kill fell in the
    worker's own h5py write is replaced by one of the next seed (at most ``n`` more)."""
    if op == "repair" and not has_command("repair"):
        t = Trial("kill", op, first_seed, SKIPPED, ["h5vc has no `repair` command yet"])
        if on_done is not None:
            on_done(t)
        return [t]
    trials: list[Trial] = []
    seed = first_seed
    while True:
        counted = sum(1 for t in trials if t.outcome != SKIPPED)
        want = n - counted
        if want <= 0 or seed >= first_seed + 2 * n:
            return trials
        seeds = range(seed, min(seed + want, first_seed + 2 * n))
        seed = seeds.stop
        trials += run_trials(session, [lambda s=s: kill_trial(session, op, s) for s in seeds],
                             on_done)


def _wanted(exp: Expect, head: str | None) -> dict[str, str]:
    """The commits to check out, with their digests: all known, and a new HEAD made by the
    operation in flight."""
    w = dict(exp.known)
    if exp.flight_commits and head and _digest_of(exp, head) is None:
        w[head] = exp.flight["expect"]  # type: ignore[index]
    return w


def store_state(store: Path, d: Path, exp: Expect, *, real: bool = False
                ) -> tuple[Cmd, dict[str, Any] | None, dict[str, Any], Cmd]:
    """`h5vc status --json`, then one check: the content digest (h5py) and the checkouts."""
    st = h5vc("status", "--json", "-s", str(store), real=real)
    js = parse_json(st)
    head = js["head"] if js else None
    res, c = check(d, store=str(store), digest=True,
                   checkouts=[[k, v] for k, v in _wanted(exp, head).items()])
    return st, js, res, c


def check_after(trial: Trial, op: str, store: Path, d: Path, exp: Expect,
                recover_env: dict[str, str] | None = None,
                before_recovery: Callable[[], None] | None = None) -> None:
    """(a) the next command works and (d) the store is in an allowed state, recovering by the
    next writing command if need be; (b) verify is clean; (c) every commit checks out."""
    # (a) the next h5vc command: status, read only
    st, js, res, cc = store_state(store, d, exp, real=True)
    if st.rc == 1 and "is open in another process" in st.err:
        # nothing of the killed group runs (kill_group waited): find out who holds the file
        # and what HDF5 says, then try once more after a moment
        import h5py

        try:
            h5py.File(store, "r").close()
            raw = "h5py opens it now"
        except OSError as e:
            raw = f"h5py: {e}"
        trial.info["lock after kill"] = f"{raw}; holders: {'; '.join(holders(store)) or 'none'}"
        time.sleep(2)
        st, js, res, cc = store_state(store, d, exp, real=True)
        trial.info["lock after kill"] += ("; gone 2 s later" if st.rc == 0 else "; still there")
    digest = res.get("digest")
    state = None
    silent = False
    if st.crashed:
        trial.found(TRACEBACK, st.describe())
    if js is not None:
        state = allowed(op, exp, js["head"], digest, js["clean"])
        if js["clean"] and digest is None:
            err = (res.get("digest_error") or {}).get("error") or cc.describe()
            trial.found(SILENT, f"`h5vc status` says clean at {str(js['head'])[:10]}, but h5py "
                        f"cannot read the store's content: {err[:200]}")
        if js["clean"] and digest is not None:
            want = _wanted(exp, js["head"]).get(js["head"]) or _digest_of(exp, js["head"])
            silent = want is None or digest != want
            if want is None:
                trial.found(SILENT, f"HEAD is {js['head'][:10]}, a commit nobody made")
            elif digest != want:
                trial.found(SILENT, f"`h5vc status` says clean at {js['head'][:10]}, but the "
                            "content differs from that commit's recorded digest")
    if state is None and not silent:
        # (d) not an allowed state: the next command that writes must get it there
        why = (st.describe() if js is None else
               f"after the kill HEAD {str(js['head'])[:10]}, clean={js['clean']}, content "
               + ("unreadable by h5py" if digest is None else
                  "matches neither the last reported nor the in-flight state"))
        if before_recovery is not None:
            before_recovery()
        rec = h5vc("checkout", exp.last_rev, "-s", str(store), env=recover_env, real=True)
        if rec.crashed:
            trial.found(TRACEBACK, rec.describe())
        st2, js2, res2, cc2 = store_state(store, d, exp)
        if st2.crashed:
            trial.found(TRACEBACK, st2.describe())
        if js2 is None:
            trial.found(UNUSABLE, f"{why}; then {rec.describe()}; then {st2.describe()}")
            return
        digest2 = res2.get("digest")
        if digest2 is None:
            err = res2.get("digest_error", {}).get("error") or cc2.describe()
            trial.found(UNUSABLE, f"{why}; h5py cannot read the store: {err}")
            return
        state = allowed(op, exp, js2["head"], digest2, js2["clean"])
        if state is None:
            want = _digest_of(exp, js2["head"])
            if js2["clean"] and want is not None and want != digest2:
                trial.found(SILENT, f"`h5vc status` says clean at {js2['head'][:10]} but the content "
                            "differs from it")
            else:
                trial.found(MANUAL, f"{why}; the next writing command did not recover it: "
                            f"{rec.describe()}")
        elif js is None:
            trial.found(MANUAL, f"{why}; a writing command recovered it")
        else:
            trial.info["recovered_by"] = "the next writing command"
        res, cc = res2, cc2
    if state is not None:
        trial.info["state"] = state
    # (b) verify
    v = verify(store, d)
    trial.info["verify"] = v.mode
    for c in v.crashed:
        trial.found(TRACEBACK, f"verify: {c}")
    if not v.ok:
        trial.found(MANUAL, "verify: " + "; ".join(v.problems)[:600])
    # (c) every reported commit is in the log and checks out to its digest
    lg = h5vc("log", "main", "--json", "-s", str(store))  # main holds every commit made
    if lg.crashed:
        trial.found(TRACEBACK, lg.describe())
    if lg.rc != 0:
        lg = h5vc("log", "--json", "-s", str(store))
        if lg.crashed:
            trial.found(TRACEBACK, lg.describe())
    if lg.rc != 0:
        trial.found(UNUSABLE, lg.describe())
        return
    ids = [c["id"] for c in parse_json(lg) or []]
    wanted = res.get("checkouts", {})
    missing = [c for c in wanted if not any(_same(c, i) for i in ids)]
    if missing:  # HEAD may be behind a branch (checkout): look in every branch too
        for b in parse_json(h5vc("branch", "--json", "-s", str(store))) or {}:
            ids += [c["id"] for c in parse_json(h5vc("log", b, "--json", "-s", str(store))) or []]
        missing = [c for c in wanted if not any(_same(c, i) for i in ids)]
    for c in missing:
        trial.found(LOST, f"commit {c[:10]} is not in `h5vc log`")
    if cc.signal is not None or "checkouts" not in res:
        trial.found(UNUSABLE, f"checking out the commits: {cc.describe()}")
        return
    for rev, r in res["checkouts"].items():
        if "error" in r:
            if r["clean"]:
                trial.found(LOST, f"checkout {rev[:10]}: {r['error']}")
            else:
                trial.found(TRACEBACK, f"checkout {rev[:10]} raised {r['error']}")
        elif "read_error" in r:
            trial.found(UNUSABLE, f"after checkout {rev[:10]} h5py cannot read the store: "
                        f"{r['read_error']['error']}")
        elif not r["match"]:
            trial.found(SILENT, f"checkout {rev[:10]} gives other content than it recorded")
        elif not r.get("clean_after", True):
            trial.found(MANUAL, f"after checkout {rev[:10]} `status --verify` is not clean")


# -- two writers -----------------------------------------------------------------------------------------

def writers_trial(session: Session, seed: int, n: int = 5) -> Trial:
    """Two processes at once, each doing ``n`` commits (open with wait=30, append, close), with
    HDF5's own file locking off: every commit either was told succeeded is in the history and
    checks out to its data."""
    t0 = time.monotonic()
    trial = Trial("writers", "writers", seed)
    d = session.trial_dir("writers", "writers", seed)
    store = d / "store.h5"
    env = {**os.environ, **BASE_ENV, "HDF5_USE_FILE_LOCKING": "FALSE"}
    go = d / "go"
    logs = [d / f"w{i}.jsonl" for i in range(2)]
    procs = []
    for i in range(2):
        with open(d / f"w{i}.err", "w") as err:
            procs.append(subprocess.Popen(
                [PY, str(WORKER), "writer", str(store), str(i), str(n), str(logs[i]), str(go)],
                stdout=subprocess.DEVNULL, stderr=err, env=env, start_new_session=True))
    try:
        for i in range(2):
            _wait_for(_has_event(logs[i], "ready"), procs[i], 120)
        time.sleep(random.Random(seed).uniform(0, 0.01))
        go.touch()
        for p in procs:
            try:
                p.wait(timeout=30 * n + 60)
            except subprocess.TimeoutExpired:
                trial.found(OP_ERROR, "a writer hung")
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    done: list[dict[str, Any]] = []
    for i in range(2):
        events = read_log(logs[i])
        done += [e for e in events if e["ev"] == "done"]
        for e in events:
            if e["ev"] == "fail":
                trial.found(OP_ERROR if e.get("clean") else TRACEBACK,
                            f"writer {i} commit {e['i']}: {e['error'][:300]}")
        if procs[i].returncode != 0:
            err = (d / f"w{i}.err").read_text()
            kind = TRACEBACK if "Traceback" in err else OP_ERROR
            trial.found(kind, f"writer {i} exit {procs[i].returncode}: "
                        + (err.strip().splitlines() or [""])[-1][:300])
    trial.info["reported"] = len(done)
    trial.info["open"] = ",".join(sorted({e.get("open", "?") for e in done})) or "-"
    st = h5vc("status", "--json", "-s", str(store))
    js = parse_json(st)
    if st.crashed:
        trial.found(TRACEBACK, st.describe())
    if js is None:
        trial.found(UNUSABLE, st.describe())
        return session.finish(trial, d)
    if not js["clean"]:
        trial.found(MANUAL, "the store has uncommitted changes after both writers finished")
    v = verify(store, d)
    for c in v.crashed:
        trial.found(TRACEBACK, f"verify: {c}")
    if not v.ok:
        trial.found(MANUAL, "verify: " + "; ".join(v.problems)[:600])
    lg = h5vc("log", "--json", "-s", str(store))
    if lg.crashed:
        trial.found(TRACEBACK, lg.describe())
    ids = {c["id"] for c in parse_json(lg) or []}
    if lg.rc != 0:
        trial.found(UNUSABLE, lg.describe())
    present = []
    for e in done:
        if e["commit"] in ids:
            present.append(e)
        else:
            trial.found(LOST, f"writer {e['wid']} commit {e['i']} ({e['commit'][:10]}) is not in the log")
    res, cc = check(d, store=str(store), writers=True,
                    checkouts=[[e["commit"], [e["wid"], e["digest"]]] for e in present])
    if "checkouts" not in res:
        trial.found(UNUSABLE, f"checking out the commits: {cc.describe()}")
        return session.finish(trial, d)
    for rev, r in res["checkouts"].items():
        if "error" in r:
            trial.found(LOST if r["clean"] else TRACEBACK, f"checkout {rev[:10]}: {r['error']}")
        elif "read_error" in r:
            trial.found(UNUSABLE, f"after checkout {rev[:10]}: {r['read_error']['error']}")
        elif not r["match"] or not r["other_ok"]:
            trial.found(SILENT, f"checkout {rev[:10]} does not hold what its writer committed")
    trial.elapsed = time.monotonic() - t0
    return session.finish(trial, d)


# -- bit flips -------------------------------------------------------------------------------------------

def bitflip_trial(session: Session, seed: int) -> Trial:
    """Flip one byte of a store with a few commits; run status, log, show, verify, checkout."""
    t0 = time.monotonic()
    trial = Trial("bitflip", "bitflip", seed, outcome=HARMLESS)
    d = session.trial_dir("bitflip", "bitflip", seed)
    meta = json.loads((d / "meta.json").read_text())
    store = d / "store.h5"
    rng = random.Random(seed)
    size = store.stat().st_size
    off = rng.randrange(size)
    x = rng.randrange(1, 256)
    with open(store, "r+b") as fh:
        fh.seek(off)
        b = fh.read(1)[0]
        fh.seek(off)
        fh.write(bytes([b ^ x]))
    trial.info["offset"] = f"{off}/{size} ^{x:#04x}"
    s = str(store)
    commits = meta["commits"]
    cmds = [h5vc("status", "-s", s), h5vc("status", "--verify", "-s", s),
            h5vc("log", "--json", "-s", s), h5vc("show", commits[1]["id"], "-s", s)]
    v = verify(store, d)
    for c in v.crashed:
        trial.found(TRACEBACK, f"verify: {c}")
    # ground truth: is the committed content still what was committed?
    res, cc = check(d, store=s, digest=True,
                    checkouts=[[c["id"], c["digest"]] for c in commits])
    changed = []
    if res.get("digest") != commits[-1]["digest"]:
        changed.append("HEAD's content")
    for c in commits:
        r = res.get("checkouts", {}).get(c["id"], {})
        if not r.get("match"):
            changed.append(f"commit {c['id'][:10]}")
    ids = [c["id"] for c in parse_json(cmds[2]) or []]
    if ids != [c["id"] for c in reversed(commits)]:
        changed.append("the log")
    cmds += [h5vc("checkout", commits[0]["id"], "-s", s), h5vc("checkout", "main", "-s", s)]
    for c in cmds:
        if c.crashed:
            trial.found(TRACEBACK, c.describe())
    trial.info["verify"] = v.mode
    if changed:
        if v.ok:
            trial.found(SILENT_FLIP, "verify is clean but " + ", ".join(changed[:4]) + " changed")
        else:
            trial.found(DETECTED, "; ".join(v.problems)[:300])
    trial.elapsed = time.monotonic() - t0
    return session.finish(trial, d)


# -- disk full -------------------------------------------------------------------------------------------

def can_mount() -> str | None:
    """None if a tmpfs can be mounted here, else why not."""
    if not sys.platform.startswith("linux"):
        return "tmpfs mounts need Linux"
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root"
    if shutil.which("mount") is None:
        return "no mount command"
    return None


DISK_SCENARIOS = {
    # name: (operation, bytes left free, race): without a race the operations themselves fill
    # the disk (h5vc may refuse up front); with one, another program takes the last bytes
    # while h5vc writes, after any check of free space it made
    "add": ("add", 700 << 10, False),
    "checkout": ("checkout", 300 << 10, False),
    "add-race": ("add", 3 << 20, True),
    "checkout-race": ("checkout", 2560 << 10, True),
}


def _fill(path: Path) -> int:
    """Write zeros to ``path`` until the disk is full; returns the bytes written."""
    n = 0
    try:
        with open(path, "ab", buffering=0) as fh:
            while True:
                n += fh.write(b"\0" * 65536)
    except OSError:
        pass
    return n


def disk_full_trial(session: Session, scenario: str, seed: int = 0, size: str = "8m") -> Trial:
    """A store on a small tmpfs, the disk filled by ``add`` or ``checkout`` (or, in the race
    scenarios, by another program while h5vc writes): the failing command must print one
    ``Error:`` line and exit 1; then the history must be intact and the store in the last
    reported state (or, once space is freed, brought there by the next writing command)."""
    t0 = time.monotonic()
    trial = Trial("disk", scenario, seed)
    why = can_mount()
    if why:
        trial.outcome = SKIPPED
        trial.details.append(why)
        return trial
    op, keep, race = DISK_SCENARIOS[scenario]
    d = session.trial_dir("disk", scenario, seed, template=op)
    mnt = d / "tmpfs"
    mnt.mkdir()
    m = run_cmd(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)])
    if m.rc != 0:
        trial.outcome = SKIPPED
        trial.details.append(f"cannot mount a tmpfs: {m.err.strip()[:200]}")
        return session.finish(trial, d)
    ballast = mnt / "ballast"
    try:
        shutil.copyfile(session.template(op) / "store.h5", mnt / "store.h5")
        for name in ("meta.json", "model.pkl"):  # only the store takes room on the tmpfs
            (mnt / name).symlink_to(session.template(op) / name)
        meta = json.loads((mnt / "meta.json").read_text())
        fs = os.statvfs(mnt)
        with open(ballast, "wb") as fh:  # leave `keep` bytes free
            left = fs.f_bavail * fs.f_frsize - keep
            while left > 0:
                fh.write(b"\0" * min(left, 1 << 20))
                left -= 1 << 20
        log = d / "log.jsonl"
        rng = random.Random(seed)
        lag = rng.uniform(0.0, 0.08)  # race: how long after h5vc's first write the disk fills
        with open(d / "worker.err", "w") as err:
            proc = subprocess.Popen([PY, str(WORKER), "run", op, str(mnt), str(log), str(seed), "60"],
                                    stdout=subprocess.DEVNULL, stderr=err, start_new_session=True,
                                    env={**os.environ, **BASE_ENV})
        mon = Monitor(log, mnt / "store.h5")
        filled_at = None
        deadline = time.monotonic() + 600
        try:
            while proc.poll() is None and time.monotonic() < deadline:
                mon.poll()
                if race and filled_at is None and 0 in mon.first_write \
                        and time.monotonic() >= mon.first_write[0] + lag:
                    _fill(mnt / "ballast2")
                    filled_at = time.monotonic() - mon.first_write[0]
                time.sleep(0.0005)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                trial.found(OP_ERROR, "the worker did not finish in 10 minutes")
            proc.wait()
            kill_group(proc.pid)
        mon.poll()
        events = mon.events
        if race:
            trial.info["filled"] = ("never" if filled_at is None
                                    else f"{filled_at * 1000:.0f} ms after the first write")
        fails = [e for e in events if e["ev"] == "fail"]
        trial.info["reported"] = sum(1 for e in events if e["ev"] == "done")
        if proc.returncode not in (0, None):
            text = (d / "worker.err").read_text()
            trial.found(TRACEBACK if "Traceback" in text else OP_ERROR,
                        f"the worker exit {proc.returncode}: {text.strip()[-300:]}")
        if not fails:
            trial.found(OP_ERROR, "the disk never filled up")
        else:
            e = fails[0]
            err = e.get("stderr", "")
            fc = Cmd(["h5vc", op], e["rc"], "", err, 0.0)
            trial.info["error"] = err.strip()[-240:]
            if fc.signal is not None:
                trial.found(TRACEBACK, f"the failing `h5vc {op}` died by signal {fc.signal} "
                            f"({signal.Signals(fc.signal).name})")
            if fc.traceback:
                lines = err.strip().splitlines()
                i = max(i for i, x in enumerate(lines) if x.startswith("Traceback (most recent"))
                exc = next((x for x in lines[i + 1:] if not x.startswith(" ")), "?")
                trial.found(TRACEBACK, f"the failing `h5vc {op}` printed a Python traceback "
                            f"({exc[:200]}); its last line: {lines[-1][:200]}")
            elif not fc.clean_error and fc.signal is None:
                trial.found(OP_ERROR, f"the failing `h5vc {op}` did not print one `Error:` line and "
                            f"exit 1 (exit {e['rc']}): {err.strip()[:300]}")
        exp = expectation(op, meta, events)

        def free_space() -> None:  # before the recovering command: the user makes room
            ballast.unlink(missing_ok=True)
            (mnt / "ballast2").unlink(missing_ok=True)

        check_after(trial, op, mnt / "store.h5", d, exp, before_recovery=free_space)
    finally:
        um = run_cmd(["umount", str(mnt)])
        if um.rc != 0:
            run_cmd(["umount", "-l", str(mnt)])
    trial.elapsed = time.monotonic() - t0
    return session.finish(trial, d)


# -- running many -------------------------------------------------------------------------------------------

def run_trials(session: Session, jobs: Iterable[Callable[[], Trial]],
               on_done: Callable[[Trial], None] | None = None) -> list[Trial]:
    """Run trials ``session.jobs`` at a time (each is subprocesses: threads only wait)."""
    out: list[Trial] = []
    lock = threading.Lock()

    def one(fn: Callable[[], Trial]) -> Trial:
        t = fn()
        with lock:
            out.append(t)
            if on_done is not None:
                on_done(t)
        return t

    with ThreadPoolExecutor(max_workers=session.jobs) as pool:
        list(pool.map(one, list(jobs)))
    return out


def counts(trials: list[Trial]) -> Counter[str]:
    return Counter(t.outcome for t in trials)


def states(trials: list[Trial]) -> str:
    """Where the kills left the stores that came out ok: which allowed state, and how often
    the next writing command had to finish or undo the operation."""
    c = Counter(t.info["state"] for t in trials if "state" in t.info)
    rec = sum(1 for t in trials if t.info.get("recovered_by"))
    text = ", ".join(f"{k}: {v}" for k, v in c.most_common())
    return text + (f"; recovered by the next writing command: {rec}" if rec else "")


def table(trials: list[Trial]) -> str:
    """A Markdown table: one row per op, one column per outcome seen, and failing seeds."""
    ops: dict[str, list[Trial]] = {}
    for t in trials:
        ops.setdefault(f"{t.kind}/{t.op}", []).append(t)
    seen = [o for o in (*OUTCOMES, *FLIP_OUTCOMES) if any(t.outcome == o for t in trials)]
    seen = list(dict.fromkeys(seen))
    head = ["operation", "trials", *seen, "failing seeds"]
    rows = []
    for name, ts in ops.items():
        c = counts(ts)
        bad = sorted(t.seed for t in ts if t.bad)
        shown = ", ".join(map(str, bad[:12])) + (" ..." if len(bad) > 12 else "")
        rows.append([name, str(len(ts)), *[str(c.get(o, 0)) for o in seen], shown or "-"])
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows]
    return "\n".join(lines)
