"""Pointer files, hook shims and git identity through the Python API (real git, no hooks run).

The end-to-end stories with git running the hooks are in test_git.py.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from contextlib import nullcontext
from pathlib import Path

import git as gitpython
import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from h5vc import InvalidInputError, ReadOnlyError, Repository
from h5vc.cli import app
from h5vc.git import link as gitlink

GIT_ENV_DROP = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL")


def git(cwd: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in GIT_ENV_DROP}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True,
                          text=True).stdout


def git_repo(path: Path) -> Path:
    with gitpython.Repo.init(path, initial_branch="main") as g, g.config_writer() as cw:
        cw.set_value("user", "name", "Grace Hopper")
        cw.set_value("user", "email", "grace@example.org")
    return path


def git_children() -> list[str]:
    """Command lines of this process's child processes that run git (Linux /proc)."""
    me, found = os.getpid(), []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == me and "git" in cmd:
            found.append(cmd)
    return found


def append_rows(store: Path | h5py.File, n: int = 5) -> None:
    """Rows appended with plain h5py: to a closed store, or through an open repository's
    ``repo.file`` (a second writable handle on its file is refused)."""
    with (h5py.File(store, "a") if isinstance(store, Path) else nullcontext(store)) as f:
        if "x" not in f:
            f.create_dataset("x", shape=(0,), maxshape=(None,), chunks=(8,), dtype="i8")
        d = f["x"]
        d.resize((d.shape[0] + n,))
        d[-n:] = np.arange(n) + d.shape[0]


# -- pointer files -------------------------------------------------------------------------

def test_pointer_round_trip_is_stable_text(tmp_path: Path) -> None:
    store = tmp_path / "my data" / 'q"uote ü.h5'
    store.parent.mkdir()
    cid = "0123456789abcdef0123456789abcdef"
    ptr = gitlink.pointer_path(store)
    assert ptr.name == 'q"uote ü.h5.h5vc'
    assert gitlink.write_pointer(store, cid) is True
    text = ptr.read_text("utf-8")
    assert 'store = "q\\"uote ü.h5"\n' in text and f'commit = "{cid}"\n' in text
    assert "format = 1\n" in text
    p = gitlink.read_pointer(ptr)
    assert p.store == store.absolute() and p.commit == cid and p.format == 1
    before = ptr.stat().st_mtime_ns
    assert gitlink.write_pointer(store, cid) is False  # unchanged: not rewritten
    assert ptr.stat().st_mtime_ns == before and ptr.read_text("utf-8") == text


@pytest.mark.parametrize("content, why", [
    (b"\x89HDF\r\n\x1a\n\x00\x00", "not UTF-8"),
    (b"store = [unclosed\n", "bad TOML"),
    (b'format = 1\nstore = "d.h5"\n', "needs format, store and commit"),
    (b'format = 1\nstore = "d.h5"\ncommit = "abc123"\n', "full 32-digit id"),
    (b'format = 1\nstore = ""\ncommit = "' + b"a" * 32 + b'"\n', "full 32-digit id"),
    (b'format = 9\nstore = "d.h5"\ncommit = "' + b"a" * 32 + b'"\n', "upgrade h5vc"),
    (b'format = 1\nstore = "d.h5"\n<<<<<<< HEAD\ncommit = "' + b"a" * 32 + b'"\n=======\n'
     b'commit = "' + b"b" * 32 + b'"\n>>>>>>> exp\n', "conflict markers"),
])
def test_bad_pointer_files_are_named(tmp_path: Path, content: bytes, why: str) -> None:
    p = tmp_path / "d.h5.h5vc"
    p.write_bytes(content)
    with pytest.raises(InvalidInputError) as e:
        gitlink.read_pointer(p)
    assert why in e.value.message and str(p) in e.value.message
    assert "\n" not in e.value.message


def test_repository_keeps_an_existing_pointer_naming_head(sensor_file: Path) -> None:
    with Repository.init(sensor_file, pointer=True) as repo:
        ptr = repo.pointer
        assert ptr == sensor_file.with_name("data.h5.h5vc")
        first = repo.head.id
        assert gitlink.read_pointer(ptr).commit == first
        with repo.transaction("more") as tx:
            tx["/sensors/b"].append(np.arange(5))
        assert gitlink.read_pointer(ptr).commit == repo.head.id != first
    append_rows(sensor_file)
    with Repository.open(sensor_file) as repo:
        c = repo.commit("rows")
        assert gitlink.read_pointer(ptr).commit == c.id
        repo.checkout(first)
        assert gitlink.read_pointer(ptr).commit == first
        repo.checkout("main")
        assert gitlink.read_pointer(ptr).commit == c.id


def test_no_pointer_unless_asked_outside_git(sensor_file: Path, tmp_path: Path) -> None:
    with Repository.init(sensor_file) as repo:
        assert repo.pointer is None and repo.git_notes == []
        with repo.transaction("more") as tx:
            tx["/sensors/b"].append(np.arange(5))
        assert not sensor_file.with_name("data.h5.h5vc").exists()
        path = repo.write_pointer()
        assert gitlink.read_pointer(path).commit == repo.head.id
    other = tmp_path / "other.h5"
    Repository.init(other, pointer=False).close()
    assert not gitlink.pointer_path(other).exists()


def test_pointer_that_cannot_be_written_names_the_fix(sensor_file: Path) -> None:
    with Repository.init(sensor_file, pointer=True) as repo:
        ptr = repo.pointer
    ptr.unlink()
    ptr.mkdir()  # something in the way: a folder where the pointer file should be
    append_rows(sensor_file)
    with Repository.open(sensor_file) as repo:
        with pytest.raises(ReadOnlyError) as e:
            repo.commit("rows")
        assert "`h5vc pointer`" in e.value.message and "is at commit" in e.value.message
        assert repo.status().clean  # the commit itself was recorded
    with Repository.open(sensor_file, mode="r") as repo:
        assert repo.head.message == "rows"


# -- init inside a git work tree -----------------------------------------------------------

def test_init_in_git_writes_pointer_and_ignores_store(tmp_path: Path) -> None:
    proj = git_repo(tmp_path / "proj")
    (proj / ".gitignore").write_text("*.log")  # no final newline: kept intact
    (proj / "sub").mkdir()
    with Repository.init(proj / "sub" / "a.h5") as repo:
        assert repo.pointer == proj / "sub" / "a.h5.h5vc"
        assert any("ignored a.h5" in n for n in repo.git_notes)
    with Repository.init(proj / "b.h5") as repo:
        assert repo.pointer == proj / "b.h5.h5vc"
    assert (proj / ".gitignore").read_text() == "*.log\n/b.h5\n/b.h5.h5vc-lock\n/b.h5.h5vc-undo\n"
    assert (proj / "sub" / ".gitignore").read_text() == "/a.h5\n/a.h5.h5vc-lock\n/a.h5.h5vc-undo\n"
    status = git(proj, "status", "--porcelain", "--untracked-files=all")
    assert "a.h5.h5vc" in status and "b.h5.h5vc" in status
    assert "a.h5\n" not in status and "b.h5\n" not in status
    assert "h5vc-lock" not in status  # the writer lock beside each store is ignored too
    # the author of the first commit is git's identity
    with Repository.open(proj / "b.h5", mode="r") as repo:
        assert repo.head.author in ("Grace Hopper <grace@example.org>",
                                    os.environ.get("H5VC_AUTHOR"))


def test_init_in_an_ignored_folder_writes_no_pointer(tmp_path: Path) -> None:
    proj = git_repo(tmp_path / "proj")
    (proj / ".gitignore").write_text("/scratch/\n")
    (proj / "scratch").mkdir()
    with Repository.init(proj / "scratch" / "s.h5") as repo:
        assert repo.pointer is None and repo.git_notes == []
    assert (proj / ".gitignore").read_text() == "/scratch/\n"


def test_init_of_a_tracked_file_says_how_to_untrack_it(tmp_path: Path) -> None:
    proj = git_repo(tmp_path / "proj")
    with h5py.File(proj / "old.h5", "w") as f:
        f["x"] = np.arange(3)
    git(proj, "add", "old.h5")
    git(proj, "commit", "-qm", "data in git")
    with Repository.init(proj / "old.h5") as repo:
        assert any("git rm --cached" in n for n in repo.git_notes)


def test_git_identity(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    proj = git_repo(tmp_path / "proj")
    monkeypatch.delenv("GIT_AUTHOR_NAME", raising=False)
    monkeypatch.delenv("GIT_AUTHOR_EMAIL", raising=False)
    assert gitlink.git_identity(proj) == "Grace Hopper <grace@example.org>"
    assert gitlink.git_identity(tmp_path / "elsewhere") is None
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Env Name")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "env@example.org")
    assert gitlink.git_identity(proj) == "Env Name <env@example.org>"
    monkeypatch.delenv("H5VC_AUTHOR", raising=False)
    with Repository.init(proj / "d.h5") as repo:
        assert repo.head.author == "Env Name <env@example.org>"


# -- hooks ---------------------------------------------------------------------------------

def _fake_python(folder: Path, log: Path) -> Path:
    """An 'interpreter' that records its arguments and stdin, so a shim can run without h5vc."""
    folder.mkdir(parents=True, exist_ok=True)
    py = folder / "py'thon"
    py.write_text(f'#!/bin/sh\n[ "$1" = -c ] && exit "${{FAKE_IMPORT:-0}}"\n'
                  f'echo "$@" >> "{log}"\ncat >> "{log}"\nexit "${{FAKE_STATUS:-0}}"\n')
    py.chmod(0o755)
    return py


def _run_shim(hook: Path, *args: str, stdin: str = "", status: int = 0, importable: bool = True) -> int:
    env = dict(os.environ, FAKE_STATUS=str(status), FAKE_IMPORT="0" if importable else "1")
    return subprocess.run([str(hook), *args], input=stdin, text=True, env=env,
                          stderr=subprocess.DEVNULL).returncode


def test_shims_chain_pass_stdin_and_quote_paths(tmp_path: Path) -> None:
    proj = git_repo(tmp_path / "my proj")
    hooks = proj / ".git" / "hooks"
    log = tmp_path / "log.txt"
    py = _fake_python(tmp_path / "inter preter", log)
    (hooks / "pre-push").write_text(f'#!/bin/sh\necho "chained $@" >> "{log}"\ncat >> "{log}"\n')
    (hooks / "pre-push").chmod(0o755)
    (hooks / "post-checkout").write_text("#!/bin/sh\nexit 3\n")
    (hooks / "post-checkout").chmod(0o755)
    original = (hooks / "pre-push").read_bytes()
    d, states = gitlink.install_hooks(proj, python=str(py))
    assert d == hooks
    assert {s.name: s.chained for s in states}["pre-push"] is True
    assert (hooks / "pre-push.h5vc-chained").read_bytes() == original
    assert os.access(hooks / "pre-commit", os.X_OK)
    assert gitlink._shim_python(hooks / "pre-commit") == str(py)

    assert _run_shim(hooks / "pre-push", "origin", "url", stdin="refs/heads/main abc\n") == 0
    assert log.read_text() == ("chained origin url\nrefs/heads/main abc\n"
                               "-m h5vc git-hook pre-push origin url\nrefs/heads/main abc\n")
    log.unlink()
    # a post-* hook keeps the chained hook's status and never fails on h5vc's account
    assert _run_shim(hooks / "post-checkout", "a", "b", "1", status=5) == 3
    assert log.read_text() == "-m h5vc git-hook post-checkout a b 1\n"
    # a pre-* hook fails when h5vc says so, but not when h5vc is gone from the interpreter
    assert _run_shim(hooks / "pre-commit", status=1) == 1
    assert _run_shim(hooks / "pre-commit", status=1, importable=False) == 0
    # install again: idempotent, the chained hook is not our own shim
    gitlink.install_hooks(proj, python=str(py))
    assert (hooks / "pre-push.h5vc-chained").read_bytes() == original
    assert not (hooks / "pre-commit.h5vc-chained").exists()
    # the interpreter is gone: the hook says so and lets git go on
    py.unlink()
    r = subprocess.run([str(hooks / "pre-commit")], capture_output=True, text=True)
    assert r.returncode == 0 and "run `h5vc hooks install` again" in r.stderr
    _, states = gitlink.hooks_status(proj)
    assert all(s.state == "installed" and not s.python_ok for s in states)
    # uninstall puts the chained hooks back byte for byte
    _, states = gitlink.uninstall_hooks(proj)
    assert (hooks / "pre-push").read_bytes() == original
    assert (hooks / "post-checkout").read_text() == "#!/bin/sh\nexit 3\n"
    assert not (hooks / "pre-commit").exists()
    assert not list(hooks.glob("*.h5vc-chained"))


def test_install_refuses_a_clash_and_changes_nothing(tmp_path: Path) -> None:
    proj = git_repo(tmp_path / "proj")
    hooks = proj / ".git" / "hooks"
    for name in ("pre-commit", "pre-commit.h5vc-chained"):
        (hooks / name).write_text(f"#!/bin/sh\n# {name}\n")
    before = sorted(p.name for p in hooks.iterdir())
    with pytest.raises(InvalidInputError) as e:
        gitlink.install_hooks(proj)
    assert "pre-commit.h5vc-chained" in e.value.message
    assert sorted(p.name for p in hooks.iterdir()) == before


def test_hooks_path_and_missing_folder(tmp_path: Path) -> None:
    proj = git_repo(tmp_path / "proj")
    git(proj, "config", "core.hooksPath", "tools/hooks")
    (proj / "src").mkdir()
    d, _ = gitlink.install_hooks(proj / "src")
    assert d.resolve() == (proj / "tools" / "hooks").resolve()
    assert (proj / "tools" / "hooks" / "post-merge").exists()
    assert not (proj / ".git" / "hooks" / "post-merge").exists()
    assert gitlink.hooks_dir_is_shared(proj) is False
    # a hooks folder outside the repository (a global core.hooksPath) is said to be shared
    shared = tmp_path / "all my hooks"
    git(proj, "config", "core.hooksPath", str(shared))
    old = os.getcwd()
    os.chdir(proj)
    try:
        r = CliRunner().invoke(app, ["hooks", "install"])
    finally:
        os.chdir(old)
    assert r.exit_code == 0, r.output
    assert "hooks folder of other repositories too" in r.output
    assert (shared / "pre-commit").exists()


def test_hook_cli_errors_are_one_line(tmp_path: Path) -> None:
    runner = CliRunner()
    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        r = runner.invoke(app, ["hooks", "install"])
        assert r.exit_code == 1 and r.output.count("\n") == 1
        assert r.output.startswith("Error: ") and "not inside a git work tree" in r.output
        r = runner.invoke(app, ["git-hook", "pre-rebase"])
        assert r.exit_code == 1 and "unknown hook 'pre-rebase'" in r.output
        r = runner.invoke(app, ["sync"])
        assert r.exit_code == 1 and "not inside a git work tree" in r.output
    finally:
        os.chdir(old)


def test_rev_for_prefers_a_branch_at_the_commit(sensor_file: Path) -> None:
    with Repository.init(sensor_file) as repo:
        first = repo.head.id
        append_rows(repo.file)
        second = repo.commit("two").id
        assert gitlink._rev_for(repo, second, None) == "main"  # the current branch
        assert gitlink._rev_for(repo, first, None) == first    # no branch there: detached
        repo.create_branch("exp", first)
        assert gitlink._rev_for(repo, first, None) == "exp"
        repo.create_branch("exp2", first)
        assert gitlink._rev_for(repo, first, None) == first    # two: none is chosen
        assert gitlink._rev_for(repo, first, "exp2") == "exp2"  # the git branch's namesake


def test_sync_outcomes_without_hooks(tmp_path: Path) -> None:
    proj = git_repo(tmp_path / "proj")
    store = proj / "d.h5"
    with Repository.init(store) as repo:
        first = repo.head.id
        append_rows(store)
        second = repo.commit("rows").id
    ptr = gitlink.pointer_path(store)
    gitlink.write_pointer(store, first)
    [o] = gitlink.sync(proj)
    assert o.outcome == "checked out" and "checked out" in o.message
    with Repository.open(store, mode="r") as repo:
        assert repo.head.id == first and "x" not in repo.file
    assert gitlink.read_pointer(ptr).commit == first
    assert [o.outcome for o in gitlink.sync(proj)] == ["in sync"]
    # uncommitted changes: left alone unless forced
    gitlink.write_pointer(store, second)
    with h5py.File(store, "a") as f:
        f.attrs["note"] = "wip"
    [o] = gitlink.sync(proj)
    assert o.outcome == "dirty" and "h5vc sync --force" in o.message and not o.ok
    [o] = gitlink.sync(proj, force=True)
    assert o.outcome == "checked out" and o.discarded
    with Repository.open(store, mode="r") as repo:
        assert repo.head.id == second and repo.status().clean
        assert repo.file["x"].shape == (5,)
    # a commit the store does not have
    gitlink.write_pointer(store, "f" * 32)
    [o] = gitlink.sync(proj)
    assert o.outcome == "lacks commit" and "f" * 10 in o.message
    [st] = gitlink.store_states(proj)
    assert st.state == "lacks commit"
    # the store is not here
    shutil.move(store, tmp_path / "away.h5")
    [o] = gitlink.sync(proj)
    assert o.outcome == "store missing" and "is not here" in o.message
    assert gitlink.store_states(proj)[0].state == "store missing"


def test_pointer_command(tmp_path: Path) -> None:
    runner = CliRunner()
    store = tmp_path / "d.h5"
    Repository.init(store).close()
    r = runner.invoke(app, ["pointer", "-s", str(store)])
    assert r.exit_code == 0 and r.output.endswith("(created)\n")
    r = runner.invoke(app, ["pointer", "-s", str(store)])
    assert r.exit_code == 0 and r.output.endswith("(unchanged)\n")
    gitlink.write_pointer(store, "a" * 32)
    r = runner.invoke(app, ["pointer", "-s", str(store), "--json"])
    assert r.exit_code == 0 and '"result": "updated"' in r.output
    mode = gitlink.pointer_path(store).stat().st_mode
    assert stat.S_IMODE(mode) & 0o600 == 0o600


def test_status_names_a_stale_pointer(tmp_path: Path) -> None:
    runner = CliRunner()
    store = tmp_path / "d.h5"
    with Repository.init(store, pointer=True) as repo:
        first = repo.head.id
        assert repo.status().pointer == first and not repo.status().pointer_stale
    r = runner.invoke(app, ["status", "-s", str(store)])
    assert "Pointer" not in r.output
    first_line = r.output.splitlines()[0]
    assert first_line.startswith("On branch main, at ") and first_line.endswith("d.h5.h5vc names)")
    append_rows(store)
    r = runner.invoke(app, ["commit", "-s", str(store), "-m", "rows"])
    assert r.exit_code == 0
    short = gitlink.read_pointer(gitlink.pointer_path(store)).commit[:10]
    note = r.output.splitlines()[1]
    assert f"d.h5.h5vc now names {short}: commit it with your code (git add " in note
    assert note.endswith("d.h5.h5vc)")
    r = runner.invoke(app, ["checkout", "-s", str(store), first])
    assert r.exit_code == 0 and f"now names {first[:10]}" in r.output
    gitlink.write_pointer(store, "c" * 32)
    r = runner.invoke(app, ["status", "-s", str(store)])
    assert r.exit_code == 0
    assert f"names {'c' * 10}: `h5vc pointer` records HEAD in it" in r.output
    gitlink.pointer_path(store).write_text("<<<<<<< HEAD\n")
    with Repository.open(store, mode="r") as repo:
        st = repo.status()
        assert st.pointer == "" and st.pointer_stale
    r = runner.invoke(app, ["status", "-s", str(store), "--json"])
    assert '"pointer": ""' in r.output


def test_no_git_processes_left_behind(tmp_path: Path) -> None:
    proj = git_repo(tmp_path / "proj")
    store = proj / "d.h5"
    with Repository.init(store) as repo:
        append_rows(store)
        repo.commit("rows")
    gitlink.install_hooks(proj)
    gitlink.sync(proj)
    gitlink.store_states(proj)
    gitlink.hooks_status(proj)
    old = os.getcwd()
    os.chdir(proj)
    try:
        with open(os.devnull, "w") as null:
            assert gitlink.run_hook("pre-commit", [], out=null) == 1  # the pointer is untracked
            assert gitlink.run_hook("post-checkout", ["0" * 40, "0" * 40, "1"], out=null) == 0
    finally:
        os.chdir(old)
    gitlink.uninstall_hooks(proj)
    assert git_children() == []


def test_init_pointer_outside_git_gives_no_git_advice(tmp_path: Path) -> None:
    runner = CliRunner()
    r = runner.invoke(app, ["init", str(tmp_path / "d.h5"), "--pointer"])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[1].startswith("Wrote pointer ") and lines[1].endswith("d.h5.h5vc")
    assert len(lines) == 2 and "git add" not in r.output
