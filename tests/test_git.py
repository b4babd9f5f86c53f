"""git integration end to end (docs/git.md): real git, real hooks, h5vc as a subprocess.

Every repository lives in tmp_path, is created with ``git init -q -b main`` and configured locally;
git and h5vc run with GIT_* variables dropped, no system/global git config and a throwaway HOME,
so nothing from the machine's own git setup leaks in. Each h5vc process costs ~0.3 s, so the
stories are few and long; setup commits go through the Python API, and hooks are installed only
once the history a test needs exists.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pytest

from h5vc import InvalidInputError, Repository

ROOT = Path(__file__).resolve().parents[1]
HOOKS = ("pre-commit", "post-checkout", "post-merge", "post-rewrite", "pre-push")
SHIM_MARK = "# h5vc-hook-shim"
GIT_NAME, GIT_EMAIL = "Ada Lovelace", "ada@example.org"
GIT_IDENTITY = f"{GIT_NAME} <{GIT_EMAIL}>"
POINTER_TEXT = (
    "# h5vc pointer: the version of the HDF5 store that goes with this code.\n"
    "# Track it with git; `h5vc sync` (or the git hooks) bring the store to it.\n"
    "format = 1\n"
    'store = "{store}"\n'
    'commit = "{commit}"\n'
)

# GIT_SEQUENCE_EDITOR for `git rebase -i`: stop (break) right after the first pick
SEQ_EDITOR = """import sys
path = sys.argv[1]
with open(path) as f:
    lines = f.readlines()
out, done = [], False
for line in lines:
    out.append(line)
    if not done and line.startswith("pick "):
        out.append("break\\n")
        done = True
with open(path, "w") as f:
    f.writelines(out)
"""


# -- processes ------------------------------------------------------------------------------

class Sandbox:
    """Runs git and h5vc in an environment that ignores the machine's git setup."""

    def __init__(self, root: Path) -> None:
        self.root = root
        home = root / "home"
        home.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        env.update(
            HOME=str(home),
            XDG_CONFIG_HOME=str(home / ".config"),
            GIT_CONFIG_NOSYSTEM="1",
            GIT_CONFIG_GLOBAL=os.devnull,
            GIT_CEILING_DIRECTORIES=str(root),
            GIT_TERMINAL_PROMPT="0",
            GIT_EDITOR="true",
        )
        self.env = env

    def run(self, cmd: list[str], cwd: Path, env: dict[str, str | None] | None = None,
            stdin: str = "") -> subprocess.CompletedProcess[str]:
        e = dict(self.env)
        for k, v in (env or {}).items():
            if v is None:
                e.pop(k, None)
            else:
                e[k] = v
        return subprocess.run(cmd, cwd=cwd, env=e, input=stdin, capture_output=True, text=True,
                              timeout=120)

    def git(self, cwd: Path, *args: str, ok: bool = True,
            env: dict[str, str | None] | None = None) -> subprocess.CompletedProcess[str]:
        p = self.run(["git", *args], cwd, env)
        if ok:
            assert p.returncode == 0, f"git {' '.join(args)} -> {p.returncode}\n{p.stdout}\n{p.stderr}"
        return p

    def h5vc(self, cwd: Path, *args: str, rc: int | None = 0, python: str = sys.executable,
             env: dict[str, str | None] | None = None) -> subprocess.CompletedProcess[str]:
        p = self.run([python, "-m", "h5vc", *args], cwd, env)
        if rc is not None:
            assert p.returncode == rc, (
                f"h5vc {' '.join(args)} -> {p.returncode}, expected {rc}\n{p.stdout}\n{p.stderr}"
            )
        assert "Traceback" not in p.stderr, p.stderr
        return p


@pytest.fixture
def sb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    return make_sandbox(tmp_path, monkeypatch)


def make_sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    box = Sandbox(tmp_path)
    # the in-process API calls git too: give it the same environment
    for k in list(os.environ):
        if k.startswith("GIT_"):
            monkeypatch.delenv(k)
    for k, v in box.env.items():
        if k.startswith("GIT_") or k in ("HOME", "XDG_CONFIG_HOME"):
            monkeypatch.setenv(k, v)
    return box


class SpecChecks:
    """Spec details (where a line goes, which stream) checked without stopping the story; a test
    calls ``done()`` last, so a deviation still fails it, after everything else has been checked."""

    def __init__(self) -> None:
        self.failed: list[str] = []

    def check(self, ok: bool, what: str) -> None:
        if not ok:
            self.failed.append(what)

    def on_stderr(self, r: subprocess.CompletedProcess[str], needle: str) -> None:
        """h5vc sync prints a store it could not sync on stderr (successes on stdout)."""
        self.check(needle in r.stderr and needle not in r.stdout,
                   f"{needle!r} should be on stderr: stdout={r.stdout!r} stderr={r.stderr!r}")

    def done(self) -> None:
        assert not self.failed, "deviations from the spec:\n" + "\n".join(self.failed)


@pytest.fixture
def spec() -> SpecChecks:
    return SpecChecks()


@dataclass
class Project:
    sb: Sandbox
    dir: Path

    @property
    def store(self) -> Path:
        return self.dir / "data.h5"

    @property
    def pointer(self) -> Path:
        return self.dir / "data.h5.h5vc"

    @property
    def hooks(self) -> Path:
        return self.dir / ".git" / "hooks"

    def git(self, *args: str, **kw: object) -> subprocess.CompletedProcess[str]:
        return self.sb.git(self.dir, *args, **kw)  # type: ignore[arg-type]

    def h5vc(self, *args: str, **kw: object) -> subprocess.CompletedProcess[str]:
        return self.sb.h5vc(self.dir, *args, **kw)  # type: ignore[arg-type]

    def rev(self, ref: str = "HEAD") -> str:
        return self.git("rev-parse", ref).stdout.strip()

    def bump(self) -> None:
        """A code change, staged."""
        f = self.dir / "analysis.py"
        f.write_text(f.read_text() + "step += 1\n")
        self.git("add", "analysis.py")

    def porcelain(self) -> list[str]:
        return self.git("status", "--porcelain", "--untracked-files=all").stdout.splitlines()


def git_repo(sb: Sandbox, name: str) -> Project:
    d = sb.root / name
    d.mkdir(parents=True)
    sb.git(d, "init", "-q", "-b", "main")
    for key, value in (("user.name", GIT_NAME), ("user.email", GIT_EMAIL),
                       ("commit.gpgsign", "false"), ("advice.detachedHead", "false")):
        sb.git(d, "config", key, value)
    (d / "analysis.py").write_text("step = 0\n")
    return Project(sb, d)


def new_project(sb: Sandbox, name: str = "proj") -> Project:
    """A git repository with code and data.h5 (10 rows, seed 0) versioned by h5vc, committed; no hooks."""
    p = git_repo(sb, name)
    make_h5(p.store, 10, 0)
    Repository.init(p.store).close()
    assert p.pointer.is_file(), "Repository.init inside a git work tree writes the pointer"
    assert pointer_commit(p.pointer) == head_of(p.store)
    p.git("add", "analysis.py", ".gitignore", "data.h5.h5vc")
    p.git("commit", "-q", "-m", "start")
    return p


# -- data -----------------------------------------------------------------------------------

def block(n: int, seed: int) -> np.ndarray:
    return np.arange(n * 3, dtype="i8").reshape(n, 3) + 1000 * seed


def make_h5(path: Path, n: int, seed: int) -> None:
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=block(n, seed), maxshape=(None, 3), chunks=(16, 3))
        f.attrs["title"] = "demo"


def append_rows(path: Path, n: int, seed: int) -> np.ndarray:
    """Append with plain h5py (uncommitted); return the whole dataset."""
    with h5py.File(path, "a") as f:
        ds = f["x"]
        old = ds.shape[0]
        ds.resize(old + n, axis=0)
        ds[old:] = block(n, seed)
        return ds[()]


def rows(path: Path) -> np.ndarray:
    with h5py.File(path, "r") as f:
        return f["x"][()]


def head_of(path: Path) -> str:
    with Repository.open(path, mode="r") as r:
        assert r.head is not None
        return r.head.id


def is_clean(path: Path) -> bool:
    with Repository.open(path, mode="r") as r:
        return r.status().clean


def pointer_commit(pointer: Path) -> str:
    m = re.search(r'^commit = "([0-9a-f]{32})"$', pointer.read_text(), re.M)
    assert m, pointer.read_text()
    return m.group(1)


def api_commit(store: Path, n: int, seed: int, message: str) -> str:
    """Append n rows through the Python API (a transaction); return the new HEAD id."""
    with Repository.open(store) as r:
        with r.transaction(message) as tx:
            tx["/x"].append(block(n, seed))
        assert r.head is not None
        return r.head.id


def data_commit(p: Project, n: int, seed: int, message: str) -> tuple[str, np.ndarray]:
    """h5vc commit + code change, both committed to git (hooks skipped: this is setup)."""
    cid = api_commit(p.store, n, seed, message)
    assert pointer_commit(p.pointer) == cid, "a transaction rewrites the pointer"
    p.bump()
    p.git("add", "data.h5.h5vc")
    p.git("commit", "-q", "--no-verify", "-m", message)
    return cid, rows(p.store)


def move_store(p: Project, cid: str) -> None:
    """Check the store out at cid without leaving the pointer file modified."""
    saved = p.pointer.read_bytes()
    with Repository.open(p.store) as r:
        r.checkout(cid)
    p.pointer.write_bytes(saved)


def hook_line(lines: list[str], hook: str) -> str:
    pat = re.compile(rf"(?<![\w.-]){re.escape(hook)}(?![\w.-])")
    found = [line for line in lines if pat.search(line)]
    assert found, f"no line for {hook} in {lines}"
    return found[0]


def assert_same(a: np.ndarray, b: np.ndarray) -> None:
    assert a.shape == b.shape and np.array_equal(a, b)


# -- 1, 9: the user story, branches both ways, fast-forward merge -----------------------------

def test_user_story_branches_and_merge(sb: Sandbox, spec: SpecChecks) -> None:
    from h5vc.git import link as gitlink

    p = git_repo(sb, "proj")
    make_h5(p.store, 10, 0)
    r = p.h5vc("init", "data.h5")
    lines = r.stdout.splitlines()
    assert "git add data.h5.h5vc .gitignore" in r.stdout
    assert lines[-1] == "Track the pointer with your code: git add data.h5.h5vc .gitignore", lines
    c0 = head_of(p.store)
    assert p.pointer.read_text() == POINTER_TEXT.format(store="data.h5", commit=c0)
    assert "/data.h5" in (p.dir / ".gitignore").read_text().splitlines()
    assert p.git("check-ignore", "-q", "data.h5", ok=False).returncode == 0
    listed = {line[3:] for line in p.porcelain()}
    assert {"data.h5.h5vc", ".gitignore", "analysis.py"} <= listed and "data.h5" not in listed
    # the Python side of the pointer
    assert gitlink.pointer_path(p.store) == p.pointer
    ptr = gitlink.read_pointer(p.pointer)
    assert (ptr.commit, ptr.format, Path(ptr.store).resolve()) == (c0, 1, p.store.resolve())

    r = p.h5vc("hooks", "install")
    for h in HOOKS:
        assert h in r.stdout
        shim = p.hooks / h
        text = shim.read_text()
        assert text.startswith("#!/bin/sh") and SHIM_MARK in text and sys.executable in text
        assert "git-hook" in text and os.access(shim, os.X_OK)
    p.git("add", "analysis.py", "data.h5.h5vc", ".gitignore")
    r = p.git("commit", "-q", "-m", "code v1")  # pre-commit passes: clean store, pointer staged
    assert "h5vc" not in r.stderr, "a passing pre-commit is silent"

    # a pipeline appends with plain h5py, then h5vc commit: the pointer follows
    append_rows(p.store, 5, 1)
    p.h5vc("commit", "-m", "day 2")
    c1 = head_of(p.store)
    assert c1 != c0 and pointer_commit(p.pointer) == c1
    assert " M data.h5.h5vc" in p.porcelain()
    p.git("add", "data.h5.h5vc")
    p.git("commit", "-q", "-m", "data day 2")
    main_rows = rows(p.store)
    assert main_rows.shape == (15, 3)

    p.git("checkout", "-q", "-b", "exp")
    append_rows(p.store, 7, 2)
    p.h5vc("commit", "-m", "exp rows")
    c2 = head_of(p.store)
    assert pointer_commit(p.pointer) == c2
    p.bump()
    p.git("add", "data.h5.h5vc")
    p.git("commit", "-q", "-m", "exp: code and data")
    exp_rows = rows(p.store)
    assert exp_rows.shape == (22, 3)

    # back to main: the store goes back to main's data
    r = p.git("checkout", "main")
    assert any(line.startswith("h5vc: ") and f"data.h5: checked out {c1[:10]}" in line
               for line in r.stderr.splitlines()), r.stderr
    assert_same(rows(p.store), main_rows)
    assert head_of(p.store) == c1 == pointer_commit(p.pointer)
    r = p.h5vc("status")
    assert "nothing to commit" in r.stdout
    assert r.stdout.startswith("HEAD detached"), "h5vc main's tip is c2, no branch has c1 as tip"

    # forward again: nothing lost, and h5vc's branch main (tip c2) is taken back
    p.git("checkout", "exp")
    assert_same(rows(p.store), exp_rows)
    with Repository.open(p.store, mode="r") as repo:
        assert repo.head is not None and repo.head.id == c2 and repo.branch == "main"
        assert repo.status().clean

    # 9: a fast-forward merge syncs through post-merge (no post-checkout involved)
    p.git("checkout", "-q", "main")
    assert head_of(p.store) == c1
    r = p.git("merge", "exp")
    assert "Fast-forward" in r.stdout
    assert pointer_commit(p.pointer) == c2 and head_of(p.store) == c2
    assert_same(rows(p.store), exp_rows)
    spec.done()


# -- 2: pre-commit refusals, each fix as printed, --no-verify ---------------------------------

def test_pre_commit_refusals_and_fixes(sb: Sandbox) -> None:
    p = new_project(sb)
    p.h5vc("hooks", "install")

    # dirty store
    base = p.rev()
    append_rows(p.store, 4, 1)
    p.bump()
    r = p.git("commit", "-m", "code", ok=False)
    assert r.returncode != 0 and p.rev() == base
    assert "h5vc commit -s data.h5 -m" in r.stderr
    assert "--no-verify" in r.stderr.strip().splitlines()[-1]

    # fix: h5vc commit -> the pointer is modified but not staged
    p.h5vc("commit", "-s", "data.h5", "-m", "rows")
    c1 = head_of(p.store)
    assert pointer_commit(p.pointer) == c1
    r = p.git("commit", "-m", "code", ok=False)
    assert r.returncode != 0 and p.rev() == base
    assert "git add data.h5.h5vc" in r.stderr
    p.git("add", "data.h5.h5vc")
    p.git("commit", "-q", "-m", "code + data")
    assert p.rev() != base
    assert c1 in p.git("show", "HEAD:data.h5.h5vc").stdout

    # stale pointer: a commit made while the pointer was away
    away = sb.root / "pointer.away"
    p.pointer.rename(away)
    c2 = api_commit(p.store, 3, 2, "api rows")
    assert not p.pointer.exists(), "a store without a pointer never gets one by committing"
    away.rename(p.pointer)
    assert pointer_commit(p.pointer) == c1
    base = p.rev()
    p.bump()
    r = p.git("commit", "-m", "more code", ok=False)
    assert r.returncode != 0 and p.rev() == base
    assert "h5vc pointer -s data.h5" in r.stderr and "git add" in r.stderr
    r = p.h5vc("pointer", "-s", "data.h5")
    assert re.fullmatch(rf"data\.h5\.h5vc: commit {c2[:10]} \(?updated\)?", r.stdout.strip()), r.stdout
    written = p.pointer.read_bytes()
    r = p.h5vc("pointer", "-s", "data.h5")
    assert re.fullmatch(rf"data\.h5\.h5vc: commit {c2[:10]} \(?unchanged\)?", r.stdout.strip()), r.stdout
    assert p.pointer.read_bytes() == written
    p.git("add", "data.h5.h5vc")
    p.git("commit", "-q", "-m", "more code")
    assert p.rev() != base

    # untracked pointer
    p.git("rm", "-q", "--cached", "data.h5.h5vc")
    p.bump()
    base = p.rev()
    r = p.git("commit", "-m", "untracked pointer", ok=False)
    assert r.returncode != 0 and p.rev() == base
    assert "git add data.h5.h5vc" in r.stderr
    p.git("add", "data.h5.h5vc")
    p.git("commit", "-q", "-m", "pointer tracked again")
    assert p.rev() != base

    # a missing store does not refuse
    p.store.rename(sb.root / "data.away")
    p.bump()
    base = p.rev()
    p.git("commit", "-q", "-m", "no store here")
    assert p.rev() != base
    (sb.root / "data.away").rename(p.store)

    # --no-verify bypasses a refusal
    append_rows(p.store, 2, 3)
    p.bump()
    base = p.rev()
    p.git("commit", "-q", "--no-verify", "-m", "bypass")
    assert p.rev() != base


# -- 3: chaining existing hooks, idempotent install, status, uninstall ------------------------

def test_existing_hooks_are_chained_and_restored(sb: Sandbox) -> None:
    p = new_project(sb)
    c0 = head_of(p.store)
    marker = sb.root / "marker.log"
    q = shlex.quote(str(marker))
    originals = {
        "pre-commit": f'#!/bin/sh\necho "pre-commit ran" >> {q}\n'.encode(),
        "post-checkout": f'#!/bin/sh\necho "post-checkout $3" >> {q}\nexit 0\n'.encode(),
    }
    for name, content in originals.items():
        (p.hooks / name).write_bytes(content)
        (p.hooks / name).chmod(0o755)

    r = p.h5vc("hooks", "install")
    for h in HOOKS:
        assert h in r.stdout
        assert SHIM_MARK in (p.hooks / h).read_text()
    for name, content in originals.items():
        assert (p.hooks / f"{name}.h5vc-chained").read_bytes() == content
    first = {f.name: f.read_bytes() for f in p.hooks.iterdir()}
    p.h5vc("hooks", "install")
    second = {f.name: f.read_bytes() for f in p.hooks.iterdir()}
    assert second == first, "install twice changes nothing"
    assert not any(n.endswith(".h5vc-chained.h5vc-chained") for n in second)
    assert all(SHIM_MARK.encode() not in c for n, c in second.items() if n.endswith(".h5vc-chained"))

    lines = p.h5vc("hooks", "status").stdout.splitlines()
    for h in HOOKS:
        line = hook_line(lines, h)
        assert "installed" in line and "not installed" not in line, line
        assert ("chains" in line) == (h in originals), line
    assert "chains pre-commit.h5vc-chained" in hook_line(lines, "pre-commit")
    assert any("data.h5" in line and "in sync" in line for line in lines), lines

    # the chained hooks still run
    p.bump()
    p.git("commit", "-q", "-m", "with chained pre-commit")
    assert "pre-commit ran" in marker.read_text()
    p.git("checkout", "-q", "-b", "other")
    assert "post-checkout 1" in marker.read_text()

    # a failing chained pre-commit fails the commit
    chained = p.hooks / "pre-commit.h5vc-chained"
    chained.write_text('#!/bin/sh\necho "chained hook says no" >&2\nexit 1\n')
    p.bump()
    base = p.rev()
    r = p.git("commit", "-m", "blocked", ok=False)
    assert r.returncode != 0 and "chained hook says no" in r.stderr and p.rev() == base
    chained.write_bytes(originals["pre-commit"])
    # a post-* hook exits with its chained hook's status (git checkout reports it)
    chained = p.hooks / "post-checkout.h5vc-chained"
    chained.write_text("#!/bin/sh\nexit 3\n")
    r = p.git("checkout", "-q", "main", ok=False)
    assert r.returncode != 0 and p.git("branch", "--show-current").stdout.strip() == "main"
    chained.write_bytes(originals["post-checkout"])

    # --json, with a stale pointer (commit made while the pointer was away)
    away = sb.root / "pointer.away"
    p.pointer.rename(away)
    c1 = api_commit(p.store, 2, 1, "behind the pointer's back")
    away.rename(p.pointer)
    js = json.loads(p.h5vc("hooks", "status", "--json").stdout)
    assert Path(js["hooks_dir"]).resolve() == p.hooks.resolve()
    for h in HOOKS:
        assert js["hooks"][h]["state"] == "installed"
        assert js["hooks"][h]["chained"] is (h in originals)
        assert js["hooks"][h]["python"] == sys.executable
    [st] = js["stores"]
    assert st["pointer"].endswith("data.h5.h5vc") and st["store"].endswith("data.h5")
    assert (st["commit"], st["head"], st["state"]) == (c0, c1, "pointer stale")

    r = p.h5vc("hooks", "uninstall")
    assert "restored" in r.stdout
    for name, content in originals.items():
        assert (p.hooks / name).read_bytes() == content
        assert os.access(p.hooks / name, os.X_OK)
    for h in ("post-merge", "post-rewrite", "pre-push"):
        assert not (p.hooks / h).exists()
    assert not [f for f in p.hooks.iterdir() if f.name.endswith(".h5vc-chained")]
    js = json.loads(p.h5vc("hooks", "status", "--json").stdout)
    assert js["hooks"]["pre-commit"]["state"] == "other"
    assert js["hooks"]["post-merge"]["state"] == "absent"


# -- 4: core.hooksPath relative ---------------------------------------------------------------

def test_relative_core_hooks_path(sb: Sandbox) -> None:
    p = new_project(sb)
    p.git("config", "core.hooksPath", ".githooks")
    (p.dir / "sub").mkdir()
    sb.h5vc(p.dir / "sub", "hooks", "install")  # from a subfolder
    for h in HOOKS:
        assert SHIM_MARK in (p.dir / ".githooks" / h).read_text()
        assert not (p.hooks / h).exists()
    assert not (p.dir / "sub" / ".githooks").exists()
    # git runs them from there
    append_rows(p.store, 3, 1)
    p.bump()
    base = p.rev()
    r = p.git("commit", "-m", "dirty", ok=False)
    assert r.returncode != 0 and "h5vc commit -s data.h5 -m" in r.stderr and p.rev() == base


# -- 5: linked worktree -----------------------------------------------------------------------

def test_linked_worktree(sb: Sandbox) -> None:
    p = new_project(sb)
    c0, d0 = head_of(p.store), rows(p.store)
    p.git("checkout", "-q", "-b", "exp")
    c1, d1 = data_commit(p, 6, 1, "exp rows")
    p.git("checkout", "-q", "main")
    move_store(p, c0)
    p.h5vc("hooks", "install")

    wt = sb.root / "wt"
    r = p.git("worktree", "add", "../wt", "exp")  # exit 0 although the store is not there
    assert "is not here" in r.stderr
    assert (wt / "data.h5.h5vc").is_file() and not (wt / "data.h5").exists()

    js = json.loads(sb.h5vc(wt, "hooks", "status", "--json").stdout)
    for h in HOOKS:
        assert js["hooks"][h]["state"] == "installed", js["hooks"]
    [st] = js["stores"]
    assert (st["commit"], st["state"]) == (c1, "store missing")

    shutil.copy2(p.store, wt / "data.h5")
    r = sb.h5vc(wt, "sync")
    assert f"data.h5: checked out {c1[:10]}" in r.stdout
    assert head_of(wt / "data.h5") == c1
    assert_same(rows(wt / "data.h5"), d1)
    # the main work tree's store is not touched
    assert head_of(p.store) == c0
    assert_same(rows(p.store), d0)


# -- 6: the store lacks the pointer's commit --------------------------------------------------

def test_store_lacking_the_commit_is_left_alone(sb: Sandbox, spec: SpecChecks) -> None:
    p = new_project(sb)
    c0, d0 = head_of(p.store), rows(p.store)
    elsewhere = sb.root / "elsewhere"
    elsewhere.mkdir()
    make_h5(elsewhere / "other.h5", 5, 9)
    with Repository.init(elsewhere / "other.h5", pointer=False) as other:
        assert other.head is not None
        foreign = other.head.id
    p.git("checkout", "-q", "-b", "foreign")
    p.pointer.write_text(POINTER_TEXT.format(store="data.h5", commit=foreign))
    p.git("commit", "-q", "-am", "pointer to another store's commit")
    p.git("checkout", "-q", "main")
    p.h5vc("hooks", "install")

    r = p.git("checkout", "foreign")
    assert "lacks commit" in r.stderr and foreign[:10] in r.stderr
    assert head_of(p.store) == c0 and is_clean(p.store)
    assert_same(rows(p.store), d0)
    r = p.h5vc("sync", rc=1)
    assert "lacks commit" in r.stdout + r.stderr
    spec.on_stderr(r, "lacks commit")

    # the store replaced by a fresh h5vc init copy
    p.git("checkout", "-q", "main")
    make_h5(elsewhere / "fresh.h5", 3, 5)
    with Repository.init(elsewhere / "fresh.h5", pointer=False) as fresh:
        assert fresh.head is not None
        fresh_id = fresh.head.id
    shutil.copy2(elsewhere / "fresh.h5", p.store)
    r = p.git("checkout", "-b", "again")  # the same git commit: nothing moved, the hook is quiet
    assert "h5vc" not in r.stderr
    p.git("commit", "-q", "--no-verify", "--allow-empty", "-m", "code only")
    r = p.git("checkout", "main")  # another git commit naming c0, which fresh.h5 lacks
    assert "lacks commit" in r.stderr and c0[:10] in r.stderr
    assert head_of(p.store) == fresh_id
    assert_same(rows(p.store), block(3, 5))
    spec.done()


# -- 7: a dirty store at git checkout ----------------------------------------------------------

def test_dirty_store_at_checkout(sb: Sandbox, spec: SpecChecks) -> None:
    p = new_project(sb)
    c0 = head_of(p.store)
    p.git("checkout", "-q", "-b", "exp")
    c1, d1 = data_commit(p, 6, 1, "exp rows")
    p.git("checkout", "-q", "main")
    move_store(p, c0)
    p.h5vc("hooks", "install")

    dirty = append_rows(p.store, 2, 7)
    r = p.git("checkout", "exp")
    assert "h5vc commit" in r.stderr and "h5vc sync --force" in r.stderr
    assert head_of(p.store) == c0 and not is_clean(p.store)
    assert_same(rows(p.store), dirty)

    r = p.h5vc("sync", rc=1)
    assert "h5vc sync --force" in r.stdout + r.stderr and "h5vc commit" in r.stdout + r.stderr
    spec.on_stderr(r, "h5vc sync --force")
    assert_same(rows(p.store), dirty)
    r = p.h5vc("sync", "--force")
    assert f"data.h5: checked out {c1[:10]}" in r.stdout
    assert head_of(p.store) == c1 and is_clean(p.store)
    assert_same(rows(p.store), d1)
    spec.done()


# -- 8: rebase, amend, file checkout ----------------------------------------------------------

def test_rebase_syncs_once_at_the_end(sb: Sandbox) -> None:
    p = new_project(sb)
    c_a = head_of(p.store)
    p.git("checkout", "-q", "-b", "feature")
    c_b, d_b = data_commit(p, 4, 1, "F1")
    c_c, d_c = data_commit(p, 5, 2, "F2")
    p.git("checkout", "-q", "main")
    (p.dir / "NOTES.txt").write_text("main moves on\n")
    p.git("add", "NOTES.txt")
    p.git("commit", "-q", "-m", "M1")
    p.git("checkout", "-q", "feature")  # no hooks yet: the store stayed at C
    assert head_of(p.store) == c_c
    p.h5vc("hooks", "install")

    # a file checkout (flag 0) leaves the store alone
    with Repository.open(p.store) as r:
        r.checkout(c_b)
    assert pointer_commit(p.pointer) == c_b
    p.git("checkout", "--", "data.h5.h5vc")
    assert pointer_commit(p.pointer) == c_c
    assert head_of(p.store) == c_b

    # stop the rebase after its first pick: the checkout of main (pointer A) was not synced
    editor = sb.root / "seq_editor.py"
    editor.write_text(SEQ_EDITOR)
    seq = f"{shlex.quote(sys.executable)} {shlex.quote(str(editor))}"
    p.git("rebase", "-i", "main", env={"GIT_SEQUENCE_EDITOR": seq})
    assert (p.dir / ".git" / "rebase-merge").is_dir(), "the rebase stopped at the break"
    assert head_of(p.store) != c_a
    assert head_of(p.store) == c_b
    p.git("rebase", "--continue")
    assert not (p.dir / ".git" / "rebase-merge").exists()
    assert pointer_commit(p.pointer) == c_c
    assert head_of(p.store) == c_c  # post-rewrite rebase
    assert_same(rows(p.store), d_c)
    assert p.git("log", "--format=%s", "-4").stdout.split() == ["F2", "F1", "M1", "start"]

    # post-rewrite amend does nothing
    move_store(p, c_b)
    p.git("commit", "-q", "--amend", "--no-verify", "-m", "F2 amended")
    assert head_of(p.store) == c_b


# -- 10: clone --------------------------------------------------------------------------------

def test_clone_then_copy_the_store_in(sb: Sandbox, spec: SpecChecks) -> None:
    src = new_project(sb, "src")
    c0, d0 = head_of(src.store), rows(src.store)
    c1, d1 = data_commit(src, 5, 1, "more data")
    spare = sb.root / "spare.h5"
    shutil.copy2(src.store, spare)
    with Repository.open(spare) as r:
        r.checkout(c0)
    assert not (sb.root / "spare.h5.h5vc").exists()

    sb.git(sb.root, "clone", "-q", "src", "clone")
    cl = Project(sb, sb.root / "clone")
    assert pointer_commit(cl.pointer) == c1 and not cl.store.exists()
    cl.h5vc("hooks", "install")
    r = cl.h5vc("sync", rc=1)
    assert "is not here" in r.stdout + r.stderr
    spec.on_stderr(r, "is not here")
    shutil.copy2(spare, cl.store)
    r = cl.h5vc("sync")
    assert f"data.h5: checked out {c1[:10]}" in r.stdout
    assert head_of(cl.store) == c1
    assert_same(rows(cl.store), d1)
    # the clone's hooks work
    cl.git("checkout", "-q", "HEAD~1")
    assert head_of(cl.store) == c0
    assert_same(rows(cl.store), d0)
    spec.done()


# -- 11: spaces in the repository path and in the interpreter path ----------------------------

def test_paths_with_spaces(sb: Sandbox) -> None:
    venv = sb.root / "py env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   capture_output=True)
    py = venv / ("Scripts" if os.name == "nt" else "bin") / "python"
    purelib = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    ours = sysconfig.get_paths()["purelib"]
    Path(purelib, "h5vc_test_deps.pth").write_text(f"import site; site.addsitedir({ours!r})\n")

    p = new_project(sb, "my project")
    c0, d0 = head_of(p.store), rows(p.store)
    p.git("checkout", "-q", "-b", "exp")
    c1, d1 = data_commit(p, 6, 1, "exp rows")
    p.git("checkout", "-q", "main")
    move_store(p, c0)

    sb.h5vc(p.dir, "hooks", "install", python=str(py))
    for h in HOOKS:
        assert str(py) in (p.hooks / h).read_text()
    r = p.git("checkout", "exp")
    assert "checked out" in r.stderr
    assert head_of(p.store) == c1
    assert_same(rows(p.store), d1)
    p.git("checkout", "main")
    assert head_of(p.store) == c0
    assert_same(rows(p.store), d0)


# -- 12: several stores -----------------------------------------------------------------------

def test_several_stores(sb: Sandbox) -> None:
    p = new_project(sb)
    a0, da0 = head_of(p.store), rows(p.store)
    (p.dir / "sub").mkdir()
    labels = p.dir / "sub" / "labels.h5"
    lptr = p.dir / "sub" / "labels.h5.h5vc"
    make_h5(labels, 4, 50)
    Repository.init(labels).close()
    assert lptr.read_text() == POINTER_TEXT.format(store="labels.h5", commit=head_of(labels))
    assert "/labels.h5" in (p.dir / "sub" / ".gitignore").read_text().splitlines()
    assert p.git("check-ignore", "-q", "sub/labels.h5", ok=False).returncode == 0
    p.git("add", "sub")
    p.git("commit", "-q", "-m", "labels")
    l0, dl0 = head_of(labels), rows(labels)
    p.h5vc("hooks", "install")

    p.git("checkout", "-q", "-b", "exp")
    l1 = api_commit(labels, 3, 51, "more labels")
    dl1 = rows(labels)
    assert pointer_commit(lptr) == l1 and pointer_commit(p.pointer) == a0
    p.git("add", "sub/labels.h5.h5vc")
    p.git("commit", "-q", "-m", "exp labels")  # pre-commit checks both stores

    r = p.git("checkout", "main")
    assert "labels.h5: checked out" in r.stderr and "data.h5: checked out" not in r.stderr
    assert head_of(labels) == l0 and head_of(p.store) == a0
    assert_same(rows(labels), dl0)

    a1 = api_commit(p.store, 2, 3, "main data")
    da1 = rows(p.store)
    p.git("add", "data.h5.h5vc")
    p.git("commit", "-q", "-m", "main data")

    p.git("checkout", "exp")
    assert (head_of(p.store), head_of(labels)) == (a0, l1)
    assert_same(rows(p.store), da0)
    assert_same(rows(labels), dl1)
    p.git("checkout", "main")
    assert (head_of(p.store), head_of(labels)) == (a1, l0)
    assert_same(rows(p.store), da1)
    assert_same(rows(labels), dl0)

    js = json.loads(sb.h5vc(p.dir / "sub", "hooks", "status", "--json").stdout)
    states = {Path(s["pointer"]).name: s["state"] for s in js["stores"]}
    assert states == {"data.h5.h5vc": "in sync", "labels.h5.h5vc": "in sync"}


# -- both branches recorded data: the pointer conflicts, and the fix is the printed one -------

def test_conflicting_pointers_at_merge(sb: Sandbox) -> None:
    p = new_project(sb)
    p.h5vc("hooks", "install")
    p.git("checkout", "-q", "-b", "exp")
    e1, exp_rows = data_commit(p, 4, 7, "exp data")
    p.git("checkout", "-q", "main")
    m1, main_rows = data_commit(p, 6, 8, "main data")
    r = p.git("merge", "exp", ok=False)
    assert r.returncode != 0 and "CONFLICT" in r.stdout and "data.h5.h5vc" in r.stdout
    assert head_of(p.store) == m1  # no post-merge on a conflict: the store stays
    # committing the conflicted pointer is refused, naming the conflict and the way out
    p.git("add", "data.h5.h5vc")
    r = p.git("commit", "--no-edit", ok=False)
    assert r.returncode != 0 and "conflict markers" in r.stderr and "h5vc pointer" in r.stderr
    # keep main's data: record the store's version, as printed
    r = p.h5vc("pointer", "-s", "data.h5")
    assert "(updated)" in r.stdout and pointer_commit(p.pointer) == m1
    p.git("add", "data.h5.h5vc")
    p.git("commit", "-q", "--no-edit")
    assert p.git("show", "HEAD:data.h5.h5vc").stdout.count(m1) == 1
    # both sides' data are still there to go back to
    p.git("checkout", "-q", "exp")
    assert head_of(p.store) == e1
    assert_same(rows(p.store), exp_rows)
    p.git("checkout", "-q", "main")
    assert head_of(p.store) == m1
    assert_same(rows(p.store), main_rows)


# -- 13: identity -----------------------------------------------------------------------------

def test_author_from_git_identity(sb: Sandbox, spec: SpecChecks, monkeypatch: pytest.MonkeyPatch) -> None:
    p = new_project(sb)
    no_h5vc_author = {"H5VC_AUTHOR": None}
    append_rows(p.store, 2, 1)
    p.h5vc("commit", "-m", "by git identity", env=no_h5vc_author)
    [entry] = json.loads(p.h5vc("log", "--json", "-n", "1").stdout)
    assert entry["author"] == GIT_IDENTITY
    # GIT_AUTHOR_* before the repository's config
    append_rows(p.store, 1, 2)
    p.h5vc("commit", "-m", "by env identity", env={**no_h5vc_author, "GIT_AUTHOR_NAME": "Env Person",
                                                  "GIT_AUTHOR_EMAIL": "env@example.org"})
    with Repository.open(p.store, mode="r") as r:
        assert r.head is not None and r.head.author == "Env Person <env@example.org>"

    # in process: $H5VC_AUTHOR first, then the repository's config, then GIT_AUTHOR_* as set now
    api_commit(p.store, 1, 3, "h5vc author")
    with Repository.open(p.store, mode="r") as r:
        assert r.head is not None and r.head.author == os.environ["H5VC_AUTHOR"]
    monkeypatch.delenv("H5VC_AUTHOR")
    api_commit(p.store, 1, 4, "config identity")
    with Repository.open(p.store, mode="r") as r:
        assert r.head is not None and r.head.author == GIT_IDENTITY
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Env Person")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "env@example.org")
    api_commit(p.store, 1, 5, "env identity")
    with Repository.open(p.store, mode="r") as r:
        assert r.head is not None
        spec.check(r.head.author == "Env Person <env@example.org>",
                   f"in one process, GIT_AUTHOR_* set after a first commit is ignored: {r.head.author!r}")
    monkeypatch.delenv("GIT_AUTHOR_NAME")
    monkeypatch.delenv("GIT_AUTHOR_EMAIL")

    # outside git: the login name
    out = sb.root / "outside"
    out.mkdir()
    make_h5(out / "o.h5", 2, 0)
    with Repository.init(out / "o.h5") as r:
        assert r.head is not None
        author = r.head.author
    assert not (out / "o.h5.h5vc").exists()
    try:
        login = getpass.getuser()
    except Exception:
        login = "unknown"
    assert author != GIT_IDENTITY and GIT_EMAIL not in author
    assert author == login
    spec.done()


# -- 14: bad input ----------------------------------------------------------------------------

def test_bad_input(sb: Sandbox) -> None:
    from h5vc.git import link as gitlink

    nogit = sb.root / "nogit"
    nogit.mkdir()
    r = sb.h5vc(nogit, "hooks", "install", rc=1)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:"), r.stderr
    r = sb.h5vc(nogit, "sync", rc=1)
    assert r.stderr.startswith("Error:") and "not inside a git work tree" in r.stderr

    p = new_project(sb)
    c0 = head_of(p.store)
    p.git("checkout", "-q", "-b", "anyway")
    p.git("commit", "-q", "--allow-empty", "-m", "code only")
    p.git("checkout", "-q", "main")
    p.h5vc("hooks", "install")
    p.pointer.write_text("this is not a pointer\n")
    with pytest.raises(InvalidInputError, match="not a valid h5vc pointer"):
        gitlink.read_pointer(p.pointer)
    r = p.h5vc("sync", rc=1)
    assert "not a valid h5vc pointer" in r.stdout + r.stderr
    r = p.git("checkout", "anyway")  # still exit 0 (the broken pointer is carried along)
    assert "not a valid h5vc pointer" in r.stderr
    assert head_of(p.store) == c0


# -- 15: pre-commit framework -----------------------------------------------------------------

def test_pre_commit_framework(sb: Sandbox) -> None:
    from pre_commit.clientlib import load_manifest

    manifest = ROOT / ".pre-commit-hooks.yaml"
    hooks = {h["id"]: h for h in load_manifest(str(manifest))}  # raises if the file is invalid
    assert {"h5vc-pre-commit", "h5vc-post-checkout", "h5vc-post-merge", "h5vc-post-rewrite"} <= set(hooks)
    for name in ("pre-commit", "post-checkout", "post-merge", "post-rewrite"):
        h = hooks[f"h5vc-{name}"]
        assert h["entry"] == f"h5vc git-hook {name}" and h["stages"] == [name]
        assert h["language"] == "python" and h["pass_filenames"] is False and h["always_run"]

    # the post-checkout hook as the framework calls it: no arguments, PRE_COMMIT_* variables
    p = new_project(sb)
    c0, d0 = head_of(p.store), rows(p.store)
    main_sha = p.rev()
    p.git("checkout", "-q", "-b", "exp")
    data_commit(p, 6, 1, "exp rows")
    exp_sha = p.rev()
    p.git("checkout", "-q", "main")  # no hooks installed: the store stays at exp's data
    assert head_of(p.store) != c0
    r = p.h5vc("git-hook", "post-checkout", env={"PRE_COMMIT_FROM_REF": exp_sha,
                                                 "PRE_COMMIT_TO_REF": main_sha,
                                                 "PRE_COMMIT_CHECKOUT_TYPE": "1"})
    assert head_of(p.store) == c0
    assert_same(rows(p.store), d0)
    r = p.h5vc("git-hook", "pre-push", "origin", "/nowhere")
    assert r.stdout == ""
