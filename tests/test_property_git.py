"""Property test: random git histories over a store; every git commit's data comes back.

A hypothesis state machine records data (appends, attribute changes) with h5vc and code with
git on random branches, switches branches (git itself, then :func:`h5vc.git.link.sync`, which
is what the post-checkout hook runs), leaves uncommitted changes in the way and forces them
out. After every switch the store, read with plain h5py, must equal what was recorded for
that git commit, whatever was recorded on other branches in between, detached or not.
``H5VC_HYPOTHESIS_PROFILE=long`` runs many more histories.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from h5vc import Repository
from h5vc.git import link as gitlink

settings.register_profile(
    "h5vc-git-default", max_examples=20, stateful_step_count=15, deadline=None,
    report_multiple_bugs=False, suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "h5vc-git-long", max_examples=200, stateful_step_count=30, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
PROFILE = "h5vc-git-" + os.environ.get("H5VC_HYPOTHESIS_PROFILE", "default")
BRANCHES = ("main", "exp", "fix", "old")


def snapshot(store: Path) -> dict[str, Any]:
    """Everything a reader sees: each dataset's rows and every attribute."""
    out: dict[str, Any] = {}
    with h5py.File(store, "r") as f:
        def visit(name: str, obj: Any) -> None:
            if name.startswith(".h5vc"):
                return
            if isinstance(obj, h5py.Dataset):
                out[name] = obj[()].tolist()
            out[name + "@"] = {k: np.asarray(v).tolist() for k, v in obj.attrs.items()}
        f.visititems(visit)
        out["/@"] = {k: np.asarray(v).tolist() for k, v in f.attrs.items()}
    return out


class GitStoreMachine(RuleBasedStateMachine):
    @initialize()
    def setup(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="h5vc-git-prop-"))
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        self.env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull,
                        GIT_AUTHOR_NAME="p", GIT_AUTHOR_EMAIL="p@example.org",
                        GIT_COMMITTER_NAME="p", GIT_COMMITTER_EMAIL="p@example.org")
        self.git("init", "-q", "-b", "main")
        self.store = self.dir / "data.h5"
        with h5py.File(self.store, "w") as f:
            f.create_dataset("x", data=np.arange(4, dtype="i8"), maxshape=(None,), chunks=(4,))
        Repository.init(self.store).close()
        (self.dir / "code.txt").write_text("0\n")
        self.git("add", "-A")
        self.git("commit", "-q", "-m", "start")
        self.branch = "main"
        self.recorded = {"main": snapshot(self.store)}  # git branch -> data of its tip
        self.dirty = False
        self.counter = 0

    def teardown(self) -> None:
        if hasattr(self, "dir"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def git(self, *args: str) -> str:
        # no hooks: this machine runs sync itself, in process
        return subprocess.run(["git", "-c", "core.hooksPath=/dev/null", *args], cwd=self.dir,
                              env=self.env, check=True, capture_output=True, text=True).stdout

    def record_code(self) -> None:
        self.counter += 1
        (self.dir / "code.txt").write_text(f"{self.counter}\n")
        self.git("add", "code.txt", "data.h5.h5vc")
        self.git("commit", "-q", "-m", f"step {self.counter}")
        self.recorded[self.branch] = snapshot(self.store)

    @rule(n=st.integers(1, 9))
    def append_and_commit(self, n: int) -> None:
        if self.dirty:
            return
        with Repository.open(self.store) as repo, repo.transaction(f"+{n}") as tx:
            tx["/x"].append(np.arange(n, dtype="i8") + 100 * self.counter)
        self.record_code()

    @rule(value=st.integers(0, 5))
    def attr_with_plain_h5py_and_commit(self, value: int) -> None:
        if self.dirty:
            return
        with h5py.File(self.store, "a") as f:
            f["x"].attrs["v"] = value
        with Repository.open(self.store) as repo:
            if repo.status().clean:
                return
            repo.commit(f"v={value}")
        self.record_code()

    @rule(name=st.sampled_from(BRANCHES))
    def new_branch(self, name: str) -> None:
        if name in self.recorded:
            return
        self.git("checkout", "-q", "-b", name)
        self.recorded[name] = self.recorded[self.branch]
        self.branch = name

    @rule(name=st.sampled_from(BRANCHES))
    def switch(self, name: str) -> None:
        if name not in self.recorded:
            return
        before = snapshot(self.store)
        self.git("checkout", "-q", name)
        self.branch = name
        outcomes = gitlink.sync(self.dir)
        assert len(outcomes) == 1
        if self.dirty:
            assert outcomes[0].outcome in ("dirty", "in sync")
            assert snapshot(self.store) == before  # uncommitted changes are never touched
        else:
            assert outcomes[0].ok, outcomes[0].message

    @rule(n=st.integers(1, 3))
    def uncommitted_rows(self, n: int) -> None:
        with h5py.File(self.store, "a") as f:
            d = f["x"]
            d.resize((d.shape[0] + n,))
            d[-n:] = -1
        self.dirty = True

    @rule()
    def force_sync(self) -> None:
        [o] = gitlink.sync(self.dir, force=True)
        assert o.ok, o.message
        self.dirty = False

    @invariant()
    def store_matches_the_branch(self) -> None:
        if not hasattr(self, "dir") or self.dirty:
            return
        assert snapshot(self.store) == self.recorded[self.branch]
        ptr = gitlink.read_pointer(self.dir / "data.h5.h5vc")
        with Repository.open(self.store, mode="r") as repo:
            assert repo.head.id == ptr.commit and repo.status().clean


GitStoreMachine.TestCase.settings = settings.get_profile(PROFILE)
TestGitHistories = GitStoreMachine.TestCase
