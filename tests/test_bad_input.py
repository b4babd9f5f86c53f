"""A catalogue of bad input: one case per kind, each through the CLI as tests/test_cli.py runs it.

Every case asserts what docs/cli.md promises: exit code 1, exactly one line on stderr that
starts with ``Error: `` and names the problem, no traceback (CliRunner catches exceptions: an
unhandled one is a failure here), and the store unchanged: the bytes of the file and
``h5vc log --json`` before and after. A kind that misbehaves because of code outside this
change is marked ``xfail(strict=True)`` with the reason, so that it fails once it is fixed.

The end of the file holds what used to break without being a refusal: attributes over 64 KiB,
pointer files naming stores outside the git work tree, names with quotes and non-ASCII.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from h5vc import IntegrityError, InvalidInputError, Repository
from h5vc.cli import app
from h5vc.engine import scan as scan_mod
from h5vc.git import link as gitlink

runner = CliRunner()


# -- the harness --------------------------------------------------------------------------------

def cli(args: list[str], cwd: Path | None = None):
    old = os.getcwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        return runner.invoke(app, args)
    finally:
        os.chdir(old)


def snapshot(paths: list[Path]) -> list[tuple[str, str | None]]:
    """For each path: a digest of its bytes (or what it is), and `h5vc log --json` if a store."""
    out = []
    for p in paths:
        if p.is_file():
            what = hashlib.sha256(p.read_bytes()).hexdigest()
        else:
            what = "folder" if p.is_dir() else "missing"
        log = None
        if p.is_file():
            r = cli(["log", "--json", "-s", str(p)])
            log = r.stdout if r.exit_code == 0 else None
        out.append((what, log))
    return out


def fails_cleanly(args: list[str], watch: list[Path], *expect: str, cwd: Path | None = None) -> str:
    """Run the CLI; assert one clean `Error: ...` line naming ``expect`` and ``watch`` untouched."""
    before = snapshot(watch)
    r = cli(args, cwd)
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise AssertionError(f"unhandled {type(r.exception).__name__}: {r.exception}") from r.exception
    assert "Traceback" not in r.output and "Traceback" not in r.stderr
    assert r.exit_code == 1, (r.exit_code, r.output)
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), r.stderr
    for e in expect:
        assert e in lines[0], (e, lines[0])
    assert snapshot(watch) == before, "the store was changed"
    return lines[0]


@dataclass
class World:
    """A store with two commits, branch exp, tag v1, and files to import, good and bad."""

    root: Path
    store: Path
    ids: list[str] = field(default_factory=list)

    def fmt(self, args: list[str]) -> list[str]:
        return [a.replace("{root}", str(self.root)).replace("{store}", str(self.store)) for a in args]


def make_world(root: Path) -> World:
    store = root / "s.h5"
    with Repository.init(store, pointer=False) as repo:
        with repo.transaction("rows") as tx:
            tx.create_dataset("/x", data=np.arange(10), maxshape=(None,), chunks=(4,))
            tx.create_group("/g").attrs["units"] = "mV"
        with repo.transaction("more rows") as tx:
            tx["/x"].append(np.arange(5))
        repo.create_tag("v1")
        repo.create_branch("exp", "HEAD~1")
        ids = [c.id for c in repo.log()]
    np.save(root / "a.npy", np.arange(3))
    (root / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 13 + b"truncated")
    (root / "empty").mkdir()
    (root / "cats" / "_h5vc_sources").mkdir(parents=True)
    np.save(root / "cats" / "_h5vc_sources" / "b.npy", np.arange(3))
    (root / "notes.xyz").write_text("no importer reads this\n")
    (root / "notes.h5").write_text("not HDF5\n")
    (root / "pointer.h5.h5vc").write_text(f'format = 1\nstore = "s.h5"\ncommit = "{ids[0]}"\n')
    return World(root, store, ids)


@pytest.fixture
def world(tmp_path: Path) -> World:
    return make_world(tmp_path)


@dataclass(frozen=True)
class Case:
    id: str
    args: list[str]
    expect: list[str]
    store_opt: bool = True  # append -s STORE
    xfail: str | None = None


REF_CHARS = [("space", "a b"), ("tilde", "a~1"), ("caret", "a^"), ("colon", "a:b"),
             ("star", "a*b"), ("question-mark", "a?b"), ("bracket", "a[b"), ("backslash", "a\\b"),
             ("dotdot", "a..b"), ("leading-dot", ".a"), ("trailing-slash", "a/"),
             ("trailing-dot", "a."), ("HEAD", "HEAD"), ("at-brace", "a@{1}"), ("non-ascii", "zweig-ü"),
             ("empty", ""), ("tab", "a\tb"), ("newline-inside", "a\nb"), ("NUL", "a\0b")]

CASES = [
    Case("unknown-revision", ["checkout", "nope"], ["unknown revision 'nope'", "h5vc log"]),
    Case("beyond-history", ["checkout", "HEAD~99"], ["'HEAD~99' goes back 99 commits", "history has 3"]),
    Case("empty-revision", ["checkout", ""], ["an empty revision"]),
    Case("revision-without-name", ["checkout", "~1"], ["'~1' is not a revision", "HEAD~1"]),
    Case("show-missing-rev", ["show", "v9"], ["unknown revision 'v9'"]),
    Case("log-missing-rev", ["log", "nope"], ["unknown revision 'nope'"]),
    Case("log-negative-limit", ["log", "-n", "-1"], ["limit must be 0 or more"]),
    Case("tag-unknown-rev", ["tag", "t2", "nope"], ["unknown revision 'nope'"]),
    *[Case(f"ref-name-{kind}", ["branch", name], [repr(name), "not a valid branch name"])
      for kind, name in REF_CHARS],
    Case("ref-name-trailing-newline", ["branch", "abc\n"], ["not a valid branch name"]),
    Case("ref-name-double-slash", ["tag", "a//b"], ["not a valid tag name"]),
    Case("tag-name-bad", ["tag", "v 2"], ["'v 2' is not a valid tag name"]),
    Case("existing-branch", ["branch", "exp"], ["branch 'exp' already exists"]),
    Case("existing-tag", ["tag", "v1"], ["tag 'v1' already exists"]),
    Case("delete-checked-out-branch", ["branch", "-d", "main"], ["branch 'main' is checked out"]),
    Case("delete-missing-branch", ["branch", "-d", "zzz"], ["no branch 'zzz'"]),
    Case("delete-missing-tag", ["tag", "-d", "zzz"], ["no tag 'zzz'"]),
    Case("delete-without-name", ["branch", "-d"], ["give the name of the branch to delete"]),
    Case("commit-empty-message", ["commit", "-m", ""], ["needs a message"]),
    Case("commit-blank-message", ["commit", "-m", "  \t"], ["needs a message"]),
    Case("nothing-to-commit", ["commit", "-m", "again"], ["nothing to commit"]),
    Case("commit-author-newline", ["commit", "--allow-empty", "-m", "m", "--author", "a\nb"],
         ["author"]),
    Case("to-history-group", ["add", "{root}/a.npy", "--to", "/.h5vc"], ["/.h5vc", "history"]),
    Case("to-history-group-dot", ["add", "{root}/a.npy", "--to", "/./.h5vc"], ["'/./.h5vc'", "history"]),
    Case("to-history-group-slashes", ["add", "{root}/a.npy", "--to", "//.h5vc/x"], ["/.h5vc/x"]),
    Case("to-history-group-relative", ["add", "{root}/a.npy", "--to", ".h5vc"], ["/.h5vc"]),
    Case("to-dotdot", ["add", "{root}/a.npy", "--to", "/a/../.h5vc"], ["'..'"]),
    Case("to-dotdot-plain", ["add", "{root}/a.npy", "--to", "/train/.."], ["'..'"]),
    Case("to-empty", ["add", "{root}/a.npy", "--to", ""], ["--to is empty"]),
    Case("to-blank-name", ["add", "{root}/a.npy", "--to", "/a/ /b"], ["only white space"]),
    Case("to-newline", ["add", "{root}/a.npy", "--to", "/a\nb"], ["a newline"]),
    Case("to-tab", ["add", "{root}/a.npy", "--to", "/a\tb"], ["a tab"]),
    Case("to-NUL", ["add", "{root}/a.npy", "--to", "/a\0b"], ["a NUL character"]),
    Case("to-a-dataset", ["add", "{root}/a.npy", "--to", "/x"], ["/x is a dataset"]),
    Case("add-missing-file", ["add", "{root}/nope.npy"], ["nope.npy does not exist"]),
    Case("add-corrupt-png", ["add", "{root}/bad.png", "--to", "/img"], ["bad.png", "--skip-bad"]),
    Case("add-empty-folder", ["add", "{root}/empty"], ["holds no files to import"]),
    Case("add-unknown-suffix", ["add", "{root}/notes.xyz"], ["no importer for '.xyz'"]),
    Case("unknown-importer", ["add", "{root}/a.npy", "--importer", "nope"], ["no importer named 'nope'"]),
    Case("attr-without-equals", ["add", "{root}/a.npy", "--attr", "novalue"], ["is not key=value"]),
    Case("attr-empty-key", ["add", "{root}/a.npy", "--attr", "=1"], ["empty key"]),
    Case("attr-bad-json-list", ["add", "{root}/a.npy", "--attr", "k=[1,"], ["not a valid JSON list"]),
    Case("attr-nested-list", ["add", "{root}/a.npy", "--attr", "k=[[1]]"], ["flat and of one type"]),
    Case("attr-mixed-list", ["add", "{root}/a.npy", "--attr", 'k=[1, "a"]'], ["flat and of one type"]),
    Case("attr-value-NUL", ["add", "{root}/a.npy", "--to", "/v", "--attr", "k=a\0b"], ["'k'"]),
    Case("attr-name-newline", ["add", "{root}/a.npy", "--to", "/n", "--attr", "a\nb=1"], ["newline"]),
    Case("attr-name-NUL", ["add", "{root}/a.npy", "--to", "/n", "--attr", "a\0b=1"], ["NUL"]),
    Case("option-without-equals", ["add", "{root}/a.npy", "-o", "novalue"], ["not key=value"]),
    Case("bad-compression", ["add", "{root}/a.npy", "--compression", "zip"], ["unknown compression 'zip'"]),
    Case("bad-category-from", ["add", "{root}/a.npy", "--category-from", "x"], ["parent or none"]),
    Case("bad-resize", ["add", "{root}/bad.png", "--resize", "big"], ["WIDTHxHEIGHT"]),
    Case("resize-zero", ["add", "{root}/bad.png", "--resize", "0x0"], ["positive"]),
    Case("resize-huge", ["add", "{root}/bad.png", "--resize", "100000x100000"], ["smaller size"]),
    Case("store-is-a-folder", ["status", "-s", "{root}"], ["is a folder"], store_opt=False),
    Case("store-missing", ["status", "-s", "{root}/none.h5"], ["no store at", "h5vc init"], store_opt=False),
    Case("store-not-hdf5", ["log", "-s", "{root}/notes.h5"], ["not an HDF5 file"], store_opt=False),
    Case("store-is-a-pointer-file", ["log", "-s", "{root}/pointer.h5.h5vc"], ["not an HDF5 file"],
         store_opt=False),
    Case("init-existing-store", ["init", "{store}"], ["already an h5vc store"], store_opt=False),
    Case("init-not-hdf5", ["init", "{root}/notes.h5"], ["not an HDF5 file"], store_opt=False),
    Case("init-missing-folder", ["init", "{root}/no/such/x.h5"], ["does not exist"], store_opt=False),
    Case("init-empty-message", ["init", "{root}/new.h5", "-m", ""], ["message"], store_opt=False),
    Case("ls-missing-path", ["ls", "/nope"], ["/nope does not exist"]),
    Case("ls-history-group-dot", ["ls", "/./.h5vc"], ["does not exist"]),
    Case("unknown-git-hook", ["git-hook", "nope"], ["unknown hook 'nope'"], store_opt=False),
    Case("hooks-outside-git", ["hooks", "install"], ["not inside a git work tree"], store_opt=False),
    Case("sync-outside-git", ["sync"], ["not inside a git work tree"], store_opt=False),
]


def _param(c: Case):
    marks = [pytest.mark.xfail(strict=True, reason=c.xfail)] if c.xfail else []
    return pytest.param(c, id=c.id, marks=marks)


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_bad_input(world: World, case: Case) -> None:
    args = world.fmt(case.args) + (["-s", str(world.store)] if case.store_opt else [])
    watch = [world.store, world.root / "new.h5", world.root / "notes.h5"]
    fails_cleanly(args, watch, *case.expect, cwd=world.root)


def test_catalogue_is_large() -> None:
    kinds = len(CASES) + len([n for n in globals() if n.startswith("test_kind_")])
    assert kinds >= 40


# -- kinds that need more set-up ----------------------------------------------------------------

def test_kind_checkout_with_uncommitted_changes(world: World) -> None:
    with h5py.File(world.store, "a") as f:
        f["x"].resize((20,))
    fails_cleanly(["checkout", "exp", "-s", str(world.store)], [world.store], "uncommitted", "--force")


def test_kind_read_only_store(world: World) -> None:
    # tests run as root, who may write anything: h5vc goes by the permission bits
    with h5py.File(world.store, "a") as f:
        f["y"] = 1
    world.store.chmod(0o444)
    try:
        fails_cleanly(["commit", "-m", "m", "-s", str(world.store)], [world.store], "read-only", "chmod")
        fails_cleanly(["checkout", "exp", "-f", "-s", str(world.store)], [world.store], "read-only")
        fails_cleanly(["tag", "t9", "-s", str(world.store)], [world.store], "read-only")
        assert cli(["log", "-s", str(world.store)]).exit_code == 0  # reading still works
    finally:
        world.store.chmod(0o644)


def test_kind_no_store_in_folder(tmp_path: Path) -> None:
    (tmp_path / "plain.h5").write_bytes(b"")
    fails_cleanly(["status"], [tmp_path / "plain.h5"], "no h5vc store in", "--store", cwd=tmp_path)


def test_kind_several_stores_in_folder(tmp_path: Path) -> None:
    for name in ("a.h5", "b.h5"):
        Repository.init(tmp_path / name, pointer=False).close()
    fails_cleanly(["log"], [tmp_path / "a.h5", tmp_path / "b.h5"], "several stores", "--store",
                  cwd=tmp_path)


@pytest.fixture(scope="module")
def ambiguous(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A store with two commits whose ids share their first 4 hex digits (the shortest prefix)."""
    path = tmp_path_factory.mktemp("ambiguous") / "s.h5"
    seen: dict[str, str] = {}
    with Repository.init(path, pointer=False) as repo:
        for i in range(5000):
            c = repo.commit(f"c{i}", allow_empty=True)
            if c.id[:4] in seen:
                return path, c.id[:4]
            seen[c.id[:4]] = c.id
    raise AssertionError("no two commit ids shared a 4-digit prefix")


def test_kind_ambiguous_prefix(ambiguous: tuple[Path, str], tmp_path: Path) -> None:
    store = tmp_path / "s.h5"
    shutil.copy(ambiguous[0], store)
    prefix = ambiguous[1]
    fails_cleanly(["checkout", prefix, "-s", str(store)], [store], f"'{prefix}' matches 2 commits",
                  "more characters")
    fails_cleanly(["show", prefix, "-s", str(store)], [store], "matches 2 commits")


def test_kind_nul_through_the_api(world: World) -> None:
    before = snapshot([world.store])
    with Repository.open(world.store) as repo:
        for bad in ("/g/a\0b", "a\0", "/./.h5vc/x", "/a/../x", "", b"/x", None):
            with pytest.raises(InvalidInputError) as e:
                with repo.transaction("m") as tx:
                    tx.create_group(bad)  # type: ignore[arg-type]
            assert "\n" not in str(e.value)
            with pytest.raises(InvalidInputError):
                with repo.transaction("m") as tx:
                    tx[bad]  # type: ignore[index]
        with pytest.raises(InvalidInputError, match="NUL"):
            with repo.transaction("m") as tx:
                tx.create_dataset("/x\0y", data=np.arange(3))
        with pytest.raises(InvalidInputError, match="NUL"):
            repo.add([world.root / "a.npy"], to="/t\0")
    assert snapshot([world.store]) == before


def test_kind_bad_attribute_names_through_the_api(world: World) -> None:
    before = snapshot([world.store])
    with Repository.open(world.store) as repo:
        for bad in ("a\0b", ""):
            with pytest.raises(InvalidInputError):
                with repo.transaction("m") as tx:
                    tx["/g"].attrs[bad] = 1
    assert snapshot([world.store]) == before


# -- pointer files (git) ------------------------------------------------------------------------

@pytest.fixture
def git_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """git with no system or global configuration, for this process and its children."""
    home = tmp_path / "home"
    home.mkdir()
    for k in list(os.environ):
        if k.startswith("GIT_"):
            monkeypatch.delenv(k)
    env = {"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CEILING_DIRECTORIES": str(tmp_path),
           "GIT_TERMINAL_PROMPT": "0", "GIT_EDITOR": "true"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return dict(os.environ)


def git(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, (args, r.stdout, r.stderr)
    return r


@dataclass
class Project:
    top: Path
    store: Path  # inside the work tree
    outside: Path  # a store beside the work tree, not in it
    ids: list[str]  # of the outside store, newest first


@pytest.fixture
def project(tmp_path: Path, git_env: dict[str, str]) -> Project:
    top = tmp_path / "proj"
    top.mkdir()
    git(top, "init", "-q", "-b", "main")
    for k, v in (("user.name", "Ada"), ("user.email", "ada@example.org"), ("commit.gpgsign", "false")):
        git(top, "config", k, v)
    store = top / "data.h5"
    with Repository.init(store) as repo:  # writes data.h5.h5vc, ignores data.h5
        with repo.transaction("rows") as tx:
            tx.create_dataset("/x", data=np.arange(4))
    git(top, "add", ".gitignore", "data.h5.h5vc")
    git(top, "commit", "-q", "-m", "start")
    outside = tmp_path / "elsewhere" / "secret.h5"
    outside.parent.mkdir()
    with Repository.init(outside, pointer=False) as repo:
        with repo.transaction("private rows") as tx:
            tx.create_dataset("/x", data=np.arange(8))
        ids = [c.id for c in repo.log()]
    return Project(top, store, outside, ids)


def pointer_text(store: str, commit: str) -> str:
    return f'format = 1\nstore = {json.dumps(store)}\ncommit = "{commit}"\n'


def hostile_pointers(p: Project) -> Iterator[tuple[str, str]]:
    """(kind, what the pointer says) for pointers that name the outside store."""
    rel = os.path.relpath(p.outside, p.top)
    yield "relative", rel
    yield "absolute", str(p.outside)
    yield "dotdot-inside-out", f"sub/../../{Path(rel).parent.name}/{p.outside.name}"
    yield "symlink", "link.h5"


POINTER_KINDS = ["relative", "absolute", "dotdot-inside-out", "symlink", "pointer-is-a-symlink"]
SYNC_PREFIX = ("`h5vc sync` prints a pointer's problem as is, without 'Error: ' (cli.py sync: "
               "typer.echo(o.message, err=not o.ok))")


def write_hostile_pointer(p: Project, kind: str) -> Path:
    (p.top / "link.h5").symlink_to(p.outside)
    (p.top / "sub").mkdir()
    ptr = p.top / "evil.h5.h5vc"
    if kind == "pointer-is-a-symlink":  # the pointer file itself lives elsewhere
        real = p.outside.with_name("evil.h5.h5vc")
        real.write_text(pointer_text("../elsewhere/secret.h5", p.ids[-1]))
        ptr.symlink_to(real)
        return ptr
    said = dict(hostile_pointers(p))[kind]
    ptr.write_text(pointer_text(said, p.ids[-1]))  # the outside store's first commit
    return ptr


@pytest.mark.parametrize("kind", POINTER_KINDS)
def test_sync_refuses_a_store_outside_the_work_tree(project: Project, kind: str) -> None:
    ptr = write_hostile_pointer(project, kind)
    before = snapshot([project.outside, project.store])
    r = cli(["sync"], project.top)
    assert r.exception is None or isinstance(r.exception, SystemExit)
    assert r.exit_code == 1
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert "evil.h5.h5vc" in lines[0] and "outside the git work tree" in lines[0]
    assert snapshot([project.outside, project.store]) == before
    with Repository.open(project.outside, mode="r") as repo:
        assert repo.head.id == project.ids[0]  # not checked out
    st = {s.pointer.name: s for s in gitlink.store_states(project.top)}["evil.h5.h5vc"]
    assert st.state == "invalid pointer" and "outside the git work tree" in st.detail
    assert ptr.exists()


@pytest.mark.parametrize("kind", POINTER_KINDS)
def test_kind_pointer_outside_work_tree(project: Project, kind: str) -> None:
    write_hostile_pointer(project, kind)
    fails_cleanly(["sync"], [project.outside, project.store], "outside the git work tree",
                  cwd=project.top)


BAD_POINTERS = [
    ("conflict-markers", "<<<<<<< HEAD\ncommit = \"a\"\n=======\ncommit = \"b\"\n>>>>>>> x\n",
     "conflict markers"),
    ("bad-toml", "format = 1\nstore = \"data.h5\ncommit = 3\n", "bad TOML"),
    ("missing-keys", "format = 1\n", "needs format, store and commit"),
    ("short-commit", 'format = 1\nstore = "data.h5"\ncommit = "abc"\n', "full 32-digit id"),
    ("newer-format", 'format = 9\nstore = "data.h5"\ncommit = "%s"\n' % ("0" * 32), "upgrade h5vc"),
    ("not-utf8", b"format = 1\nstore = \"\xff\"\n", "not UTF-8"),
]


@pytest.mark.parametrize("text, expect", [pytest.param(t, e, id=k) for k, t, e in BAD_POINTERS])
def test_kind_bad_pointer(project: Project, text: str | bytes, expect: str) -> None:
    ptr = project.top / "data.h5.h5vc"
    if isinstance(text, bytes):
        ptr.write_bytes(text)
    else:
        ptr.write_text(text)
    fails_cleanly(["sync"], [project.store, ptr], expect, cwd=project.top)


def test_hooks_leave_a_store_outside_the_work_tree_alone(project: Project) -> None:
    """A clone whose pointer names a store elsewhere: git checkout goes on, the hook says why."""
    top = project.top
    r = cli(["hooks", "install"], top)
    assert r.exit_code == 0, r.output
    git(top, "checkout", "-q", "-b", "evil")
    ptr = write_hostile_pointer(project, "relative")
    git(top, "add", ptr.name)
    git(top, "commit", "-q", "--no-verify", "-m", "pointer elsewhere")
    git(top, "checkout", "-q", "main")
    before = snapshot([project.outside, project.store])
    r = git(top, "checkout", "evil")  # post-checkout runs h5vc: exit 0 all the same
    assert "Traceback" not in r.stderr
    said = [line for line in r.stderr.splitlines() if line.startswith("h5vc: ")]
    assert len(said) == 1 and "evil.h5.h5vc" in said[0] and "outside the git work tree" in said[0]
    assert snapshot([project.outside, project.store]) == before
    # post-merge: the same
    git(top, "checkout", "-q", "main")
    (top / "code.py").write_text("x = 1\n")
    git(top, "add", "code.py")
    git(top, "commit", "-q", "-m", "code on main")
    git(top, "checkout", "-q", "evil")
    r = git(top, "merge", "--no-edit", "main")
    assert "Traceback" not in r.stderr
    said = [line for line in r.stderr.splitlines() if line.startswith("h5vc: ")]
    assert len(said) == 1 and "outside the git work tree" in said[0], r.stderr
    assert snapshot([project.outside, project.store]) == before
    # pre-commit refuses to record code with such a pointer
    (top / "code.py").write_text("x = 2\n")
    git(top, "add", "code.py")
    bad = subprocess.run(["git", "commit", "-q", "-m", "more"], cwd=top, capture_output=True, text=True)
    assert bad.returncode != 0 and "outside the git work tree" in bad.stderr
    assert snapshot([project.outside, project.store]) == before


def test_pointer_inside_the_work_tree_is_followed(project: Project) -> None:
    """The check is no obstacle to a store in a sub-folder, named by a path with '..' inside."""
    sub = project.top / "data" / "raw"
    sub.mkdir(parents=True)
    store = sub / "d.h5"
    with Repository.init(store) as repo:
        with repo.transaction("one") as tx:
            tx.create_dataset("/y", data=np.arange(3))
        first = repo.log().__next__().id
        with repo.transaction("two") as tx:
            tx["/y"].append(np.arange(3))
    ptr = gitlink.pointer_path(store)
    ptr.write_text(pointer_text("../raw/d.h5", first))
    r = cli(["sync"], project.top)
    assert r.exit_code == 0, r.output
    with Repository.open(store, mode="r") as repo:
        assert repo.head.id == first


# -- attributes of any size ---------------------------------------------------------------------

BIG = np.arange(20_000, dtype="f8")  # 160 kB: dense attribute storage (version-2 object headers)


def big_attr_store(path: Path) -> None:
    """Written by plain h5py the way a user would, with a file format that allows big attributes."""
    with h5py.File(path, "w", libver=("v108", "v110")) as f:
        f.create_dataset("x", data=np.arange(10), maxshape=(None,), chunks=(4,))
        f.create_group("g")
    Repository.init(path, pointer=False).close()
    with h5py.File(path, "a", libver=("v108", "v110")) as f:
        f.attrs["big"] = BIG
        f["g"].attrs["big"] = BIG
        f["g"].attrs["small"] = "s"
        f["x"].attrs["big"] = BIG * 2
        new = f.create_group("new/deeper")
        new.attrs["big"] = BIG + 1
        new.attrs["text"] = np.array(["é" * 40_000], dtype=h5py.string_dtype())
        d = f.create_dataset("new/ds", data=np.arange(100_000, dtype="i4").reshape(1000, 100),
                             chunks=(100, 100), compression="gzip", maxshape=(None, 100))
        d.attrs["big"] = BIG + 2
        f.create_dataset("new/scalar", data=3.5).attrs["big"] = BIG + 3
        f.create_dataset("new/strings", data=np.array(["a", "bc"] * 50, dtype=h5py.string_dtype())
                         ).attrs["big"] = BIG + 4
        f["new"].attrs["big"] = np.arange(30_000, dtype="i8")


def attrs_of(path: Path) -> dict[str, dict[str, object]]:
    out: dict[str, dict[str, object]] = {}
    with h5py.File(path, "r") as f:
        def visit(name: str, obj: h5py.HLObject) -> None:
            if not name.startswith(".h5vc"):
                out[name] = {k: v if isinstance(v, str) else np.asarray(v).tolist()
                             if np.asarray(v).dtype.hasobject else np.asarray(v).tobytes()
                             for k, v in obj.attrs.items()}
        visit("/", f)
        f.visititems(visit)
        if "new/ds" in f:
            out["new/ds data"] = {"data": f["new/ds"][()].tobytes(),
                                  "strings": f["new/strings"][()].tolist(),
                                  "scalar": float(f["new/scalar"][()])}
    return out


def test_big_attributes_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "big.h5"
    big_attr_store(path)
    r = cli(["commit", "-m", "big attributes", "-s", str(path)])
    assert r.exit_code == 0, r.output
    want = attrs_of(path)
    assert want["new/deeper"]["big"] == (BIG + 1).tobytes()
    r = cli(["checkout", "HEAD~1", "-s", str(path)])
    assert r.exit_code == 0, r.output
    with h5py.File(path, "r") as f:
        assert "new" not in f and "big" not in f.attrs and "big" not in f["g"].attrs
    r = cli(["checkout", "main", "-s", str(path)])
    assert r.exit_code == 0 and not r.stderr, r.output
    assert attrs_of(path) == want
    r = cli(["status", "--json", "-s", str(path)])
    assert json.loads(r.stdout)["clean"] is True
    # and through a transaction's rollback, which also restores
    with Repository.open(path) as repo:
        with pytest.raises(RuntimeError):
            with repo.transaction("undone") as tx:
                del tx["/new"]
                raise RuntimeError("roll back")
    assert attrs_of(path) == want
    assert cli(["status", "--json", "-s", str(path)]).stdout.count('"clean": true') == 1


def test_big_attributes_on_objects_rebuilt_in_place(tmp_path: Path) -> None:
    """An object with a version-1 header (plain h5py, default format) gains a big attribute at
    checkout: h5vc rebuilds it with a version-2 header, keeping its data and children."""
    path = tmp_path / "v1.h5"
    with h5py.File(path, "w", libver=("v108", "v110")) as f:
        f.create_group("g").attrs["big"] = BIG
        f.create_dataset("d", data=np.arange(50), chunks=(10,), maxshape=(None,)).attrs["big"] = BIG
    with Repository.init(path, pointer=False) as repo:
        first = repo.head.id
    with h5py.File(path, "a") as f:  # recreated with the default format: version-1 headers
        del f["g"], f["d"]
        g = f.create_group("g")
        g.create_dataset("child", data=[1, 2, 3])
        g["soft"] = h5py.SoftLink("/d")  # not tracked by h5vc, but kept when g is rebuilt
        f.create_dataset("d", data=np.arange(50), chunks=(10,), maxshape=(None,))
        assert h5py.h5o.get_info(g.id).hdr.version == 1
    with Repository.open(path) as repo:
        repo.commit("small headers")
        repo.checkout(first, force=False)
        f = repo.file
        assert np.array_equal(f["g"].attrs["big"], BIG) and np.array_equal(f["d"].attrs["big"], BIG)
        assert list(f["g"]) == ["soft"] and f["g"].get("soft", getlink=True).path == "/d"
        assert np.array_equal(f["d"][()], np.arange(50)) and np.array_equal(f["g/soft"][()], f["d"][()])
        assert repo.status().clean
        repo.checkout("main")
        assert "big" not in f["g"].attrs and list(f["g"]["child"][()]) == [1, 2, 3]
        assert repo.status().clean
    r = subprocess.run(["h5dump", "-A", str(path)], capture_output=True, text=True) \
        if shutil.which("h5dump") else None
    assert r is None or r.returncode == 0, r.stderr


def test_transaction_conversion_keeps_big_attributes(tmp_path: Path) -> None:
    """A contiguous dataset made resizable by a transaction keeps its big attribute."""
    path = tmp_path / "c.h5"
    with h5py.File(path, "w", libver=("v108", "v110")) as f:
        f.create_dataset("d", data=np.arange(6)).attrs["big"] = BIG
    with Repository.init(path, pointer=False) as repo:
        with pytest.warns(UserWarning), repo.transaction("grow") as tx:
            tx["/d"].append(np.arange(3))
        assert np.array_equal(repo.file["d"].attrs["big"], BIG)
        assert repo.file["d"].shape == (9,) and repo.status().clean


def test_big_attribute_through_a_transaction(tmp_path: Path) -> None:
    with Repository.init(tmp_path / "t.h5", pointer=False) as repo:
        with repo.transaction("big") as tx:
            tx.create_group("/n").attrs["big"] = BIG
        assert np.array_equal(repo.file["n"].attrs["big"], BIG)


def test_attribute_hdf5_would_refuse_is_refused_at_commit(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """If HDF5 could not create an attribute again, commit refuses it, naming object and attribute.

    HDF5 creates every attribute h5py writes once the object has a version-2 header, so the
    refusal is provoked: the check's trial creation (in a scratch in-memory file) is made to fail.
    """
    path = tmp_path / "r.h5"
    big_attr_store(path)
    before = snapshot([path])
    real = h5py.AttributeManager.create

    def refusing(self: h5py.AttributeManager, name: str, *a: object, **kw: object) -> object:
        if h5py.h5f.get_name(self._id).startswith(b"h5vc-attr-check"):
            raise OSError("Unable to synchronously create attribute (simulated refusal)")
        return real(self, name, *a, **kw)

    monkeypatch.setattr(h5py.AttributeManager, "create", refusing)
    monkeypatch.setitem(scan_mod.read_attrs.__dict__, "tried", {})
    line = fails_cleanly(["commit", "-m", "m", "-s", str(path)], [path], "attribute 'big' of ",
                         "cannot be versioned", "simulated refusal")
    assert "dataset" in line
    with Repository.open(path) as repo, pytest.raises(InvalidInputError, match="'big' of /"):
        repo.commit("m")
    assert snapshot([path]) == before


def test_restore_error_is_clean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Should HDF5 refuse an attribute at checkout all the same, the error is an H5vcError."""
    from h5vc.engine.objects import set_attrs
    from h5vc.engine.scan import read_attrs

    path = tmp_path / "e.h5"
    with h5py.File(path, "w") as f:
        f["/"].attrs["a"] = 1
        enc = read_attrs(f["/"])
        f.create_group("g")
    real = h5py.AttributeManager.create

    def refusing(self: h5py.AttributeManager, name: str, *a: object, **kw: object) -> object:
        raise OSError("Unable to synchronously create attribute (object header message is too large)")

    with h5py.File(path, "a") as f:
        monkeypatch.setattr(h5py.AttributeManager, "create", refusing)
        with pytest.raises(IntegrityError, match="cannot restore attribute 'a' of /"):
            set_attrs(f["/"], enc, {})
        monkeypatch.setattr(h5py.AttributeManager, "create", real)
        assert set_attrs(f["g"], enc, {}) == 1 and f["g"].attrs["a"] == 1


# -- names that are not bad ----------------------------------------------------------------------

def test_quotes_and_unicode_in_names_work(world: World) -> None:
    to = "/données/it's \"quoted\""
    r = cli(["add", str(world.root / "a.npy"), "--to", to, "--attr", "ünï=x", "--attr",
             "it's \"q\"=1", "-s", str(world.store)])
    assert r.exit_code == 0, r.output
    with h5py.File(world.store, "r") as f:
        g = f[to]
        assert g.attrs["ünï"] == "x" and g.attrs["it's \"q\""] == 1
    r = cli(["show", "--json", "-s", str(world.store)])
    assert json.dumps(to, ensure_ascii=False) in r.stdout
    assert cli(["checkout", "HEAD~1", "-s", str(world.store)]).exit_code == 0
    with h5py.File(world.store, "r") as f:
        assert "données" not in f
    assert cli(["checkout", "main", "-s", str(world.store)]).exit_code == 0
    with h5py.File(world.store, "r") as f:
        assert f[to].attrs["ünï"] == "x"


def test_paths_are_normalised_once(world: World) -> None:
    with Repository.open(world.store) as repo:
        with repo.transaction("normal") as tx:
            tx.create_group(" //n/./m/ ")
            assert "/n/m" in tx and " /n//m" in tx
            tx["./n"].attrs["k"] = 1
        assert repo.file["n"].attrs["k"] == 1 and "n/m" in repo.file
    r = cli(["add", str(world.root / "a.npy"), "--to", "//t/./u/", "-s", str(world.store)])
    assert r.exit_code == 0 and "to /t/u" in r.stdout, r.output


def test_fast_path_still_caches(world: World) -> None:
    from h5vc import paths, transaction
    from h5vc.engine import format

    assert paths.HISTORY_GROUP == format.META

    transaction._NORMAL.clear()
    assert transaction._norm("/p/q") == "/p/q" and "/p/q" in transaction._NORMAL
    assert transaction._norm("p/q") == "/p/q" and "p/q" not in transaction._NORMAL
    with pytest.raises(InvalidInputError):
        transaction._norm("/.h5vc/journal")
    assert "/.h5vc/journal" not in transaction._NORMAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
