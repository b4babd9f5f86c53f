"""Data that travels with the code (docs/git.md, "Sharing the data"): real git, a bare hub
repository, a folder remote for the data, h5vc as a subprocess with the hooks installed.

Ada pushes code and data with one ``git push`` (the pre-push hook sends the data commits the
pointer files name); Bob's fresh ``git clone`` gets the store with ``h5vc pull``, and later data
with a plain ``git pull``; Carol's clone made with the hooks in git's template gets the store at
checkout; a push whose data cannot be sent stops git.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from test_git import (
    Project,
    Sandbox,
    api_commit,
    assert_same,
    head_of,
    make_sandbox,
    new_project,
    pointer_commit,
    rows,
)

from h5vc import Repository
from h5vc.pointer import read_pointer
from h5vc.remote import RemoteStorage


@pytest.fixture
def sb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    return make_sandbox(tmp_path, monkeypatch)


def remote_commits(url: Path) -> set[str]:
    return set(RemoteStorage(str(url)).index().commits)


def setup_team(sb: Sandbox) -> tuple[Project, Path, Path]:
    """Ada's project with a data remote and a bare hub for the code, hooks installed."""
    ada = new_project(sb, "ada")
    data_remote = sb.root / "data-remote"
    hub = sb.root / "hub.git"
    sb.git(sb.root, "init", "-q", "--bare", "-b", "main", str(hub))
    ada.git("remote", "add", "origin", str(hub))
    r = ada.h5vc("remote", "add", "origin", str(data_remote))
    assert "origin" in r.stdout
    ptr = read_pointer(ada.pointer)
    assert ptr.remote == str(data_remote), ada.pointer.read_text()
    assert ptr.commit == head_of(ada.store)
    ada.h5vc("hooks", "install")
    ada.git("commit", "-q", "-am", "the data has a remote")
    return ada, data_remote, hub


def test_push_clone_pull_through_git(sb: Sandbox) -> None:
    ada, data_remote, hub = setup_team(sb)
    c0 = head_of(ada.store)
    c1 = api_commit(ada.store, 4, 1, "batch 1")
    ada.bump()
    ada.git("add", "data.h5.h5vc")
    ada.git("commit", "-q", "-m", "train on batch 1")
    r = ada.git("push", "-q", "origin", "main")
    assert "data.h5: sent" in r.stderr, r.stderr
    assert {c0, c1} <= remote_commits(data_remote)
    d1 = rows(ada.store)
    # nothing new: the next push sends nothing and says nothing about sending
    ada.git("commit", "-q", "--allow-empty", "-m", "code only")
    r = ada.git("push", "-q", "origin", "main")
    assert "sent" not in r.stderr, r.stderr

    # Bob: a fresh clone has the pointer, not the store
    sb.git(sb.root, "clone", "-q", str(hub), "bob")
    bob = Project(sb, sb.root / "bob")
    assert not bob.store.exists() and pointer_commit(bob.pointer) == c1
    r = bob.h5vc("status", rc=1)
    err = r.stdout + r.stderr
    assert "data.h5" in err and "not here" in err and "h5vc pull" in err and str(data_remote) in err
    assert len(err.strip().splitlines()) == 1, err
    r = bob.h5vc("pull")
    assert head_of(bob.store) == c1
    assert_same(rows(bob.store), d1)
    with Repository.open(bob.store, mode="r") as repo:
        assert repo.branch == "main" or repo.branch is None
        assert repo.remotes["origin"]["url"] == str(data_remote)
        assert repo.status().clean
        assert repo.resolve(c0) == c0  # the whole history came along
    assert bob.porcelain() == [], "the clone's store is ignored, its pointer unchanged"
    bob.h5vc("hooks", "install")

    # Ada adds data; Bob's plain git pull brings it (post-merge hook: fetch, then checkout)
    c2 = api_commit(ada.store, 3, 2, "batch 2")
    ada.bump()
    ada.git("add", "data.h5.h5vc")
    ada.git("commit", "-q", "-m", "train on batch 2")
    ada.git("push", "-q", "origin", "main")
    d2 = rows(ada.store)
    r = bob.git("pull", "-q", "--ff-only")
    assert f"checked out {c2[:10]}" in r.stderr + r.stdout, r.stderr
    assert head_of(bob.store) == c2
    assert_same(rows(bob.store), d2)
    # and back: git checkout of the older code brings the older data
    bob.git("checkout", "-q", "HEAD~1")
    assert head_of(bob.store) == c1
    assert_same(rows(bob.store), d1)
    bob.git("checkout", "-q", "main")
    assert head_of(bob.store) == c2

    # Carol clones with the hooks in git's template: the checkout makes the store
    tpl = sb.root / "tpl"
    (tpl / "hooks").mkdir(parents=True)
    for h in bob.hooks.iterdir():
        if not h.name.endswith(".sample"):
            shutil.copy2(h, tpl / "hooks" / h.name)
    r = sb.git(sb.root, "clone", "-q", f"--template={tpl}", str(hub), "carol")
    carol = Project(sb, sb.root / "carol")
    assert "made from" in r.stderr, r.stderr
    assert head_of(carol.store) == c2
    assert_same(rows(carol.store), d2)


def test_a_push_whose_data_cannot_be_sent_stops_git(sb: Sandbox) -> None:
    ada, data_remote, hub = setup_team(sb)
    api_commit(ada.store, 4, 1, "batch 1")
    ada.git("commit", "-q", "--no-verify", "-am", "batch 1")
    # the remote's folder cannot be written (a file stands where its packs go)
    data_remote.mkdir()
    (data_remote / "h5vc-remote.json").write_text(json.dumps({"format": 1}))
    (data_remote / "packs").write_text("not a folder")
    before = sb.git(hub, "rev-parse", "main", ok=False).stdout
    r = ada.git("push", "-q", "origin", "main", ok=False)
    assert r.returncode != 0
    assert "cannot push the data of data.h5" in r.stderr and "git push stopped" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert sb.git(hub, "rev-parse", "main", ok=False).stdout == before, "git pushed nothing"
    # fixed: the push goes through with the data
    (data_remote / "packs").unlink()
    r = ada.git("push", "-q", "origin", "main")
    assert head_of(ada.store) in remote_commits(data_remote)


def test_a_store_without_remote_warns_and_pushes_the_code(sb: Sandbox) -> None:
    p = new_project(sb, "solo")
    hub = sb.root / "solo.git"
    sb.git(sb.root, "init", "-q", "--bare", "-b", "main", str(hub))
    p.git("remote", "add", "origin", str(hub))
    p.h5vc("hooks", "install")
    r = p.git("push", "-q", "origin", "main")
    assert "has no remote" in r.stderr and "h5vc remote add" in r.stderr, r.stderr
    assert sb.git(hub, "rev-parse", "main").stdout.strip() == p.rev()
    # a clone of it says how the store can be had
    sb.git(sb.root, "clone", "-q", str(hub), "other")
    r = sb.h5vc(sb.root / "other", "pull", rc=1)
    err = r.stdout + r.stderr
    assert "no remote to get it from" in err and "h5vc remote add" in err, err
