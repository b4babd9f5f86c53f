"""Git hooks: what the store following `git checkout` costs, against doing it by hand.

Builds a git project whose store has --commits append commits of 1,000 x 64 float32 rows
(256 kB) on git branch main and as many again on branch exp, so the two branches' data differ
by --commits x 1,000 rows. Then, alternating the variants round by round (wall clock, whole
processes, median of --runs):

  by hand   `git checkout BRANCH` with no hooks, then `h5vc checkout COMMIT` (what a user
            would type without the integration)
  hooks     `git checkout BRANCH` with `h5vc hooks install`ed: post-checkout moves the store
  switch    `git checkout` between two commits with the same pointer (code differs, data
            does not), with and without hooks: the fixed cost of the hooks when no data moves
  commit    `git commit` of a code change, with and without the pre-commit check

No target is set for these in the benchmark brief; the figures are reported in
docs/benchmarks.md. Every checkout is verified (store HEAD equals the branch's pointer).

    python bench/git_hooks.py [--commits 100] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import emit_json, median, ms, print_table, progress, ratio  # noqa: E402

from h5vc import Repository  # noqa: E402
from h5vc.git import link as gitlink

H5VC = [sys.executable, "-m", "h5vc"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--commits", type=int, default=100)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="h5vc-bench-git-") as tmp:
        proj = Path(tmp) / "proj"
        proj.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull,
                   GIT_AUTHOR_NAME="bench", GIT_AUTHOR_EMAIL="bench@example.org",
                   GIT_COMMITTER_NAME="bench", GIT_COMMITTER_EMAIL="bench@example.org")
        no_hooks = Path(tmp) / "no-hooks"
        no_hooks.mkdir()

        def git(*a: str, hooks: bool = True) -> float:
            cmd = ["git"] if hooks else ["git", "-c", f"core.hooksPath={no_hooks}"]
            t = time.perf_counter()
            subprocess.run([*cmd, *a], cwd=proj, env=env, check=True, capture_output=True)
            return time.perf_counter() - t

        def h5vc(*a: str) -> float:
            t = time.perf_counter()
            subprocess.run([*H5VC, *a], cwd=proj, env=env, check=True, capture_output=True)
            return time.perf_counter() - t

        store = proj / "data.h5"
        rng = np.random.default_rng(0)
        git("init", "-q", "-b", "main")
        (proj / "train.py").write_text("step = 0\n")
        progress(f"building: {args.commits} commits on main, {args.commits} on exp")
        with Repository.init(store) as repo:
            with repo.transaction("dataset") as tx:
                tx.create_dataset("/x", shape=(0, 64), dtype="f4", chunks=(1000, 64),
                                  maxshape=(None, 64))
            for i in range(args.commits):
                with repo.transaction(f"main {i}") as tx:
                    tx["/x"].append(rng.random((1000, 64), dtype="f4"))
            main_id = repo.head.id
        git("add", "-A")
        git("commit", "-q", "-m", "main data", hooks=False)
        # branch same: main plus a code change, same pointer: a switch that moves no data
        git("checkout", "-q", "-b", "same", hooks=False)
        (proj / "train.py").write_text("step = 1\n")
        git("commit", "-q", "-am", "code only", hooks=False)
        git("checkout", "-q", "main", hooks=False)
        git("checkout", "-q", "-b", "exp", hooks=False)
        with Repository.open(store) as repo:
            for i in range(args.commits):
                with repo.transaction(f"exp {i}") as tx:
                    tx["/x"].append(rng.random((1000, 64), dtype="f4"))
            exp_id = repo.head.id
        git("commit", "-q", "-am", "exp data", hooks=False)
        gitlink.install_hooks(proj)
        tip = {"main": main_id, "exp": exp_id, "same": main_id}

        def at(branch: str) -> None:
            with Repository.open(store, mode="r") as r:
                assert r.head.id == tip[branch], (branch, r.head.id)

        def by_hand() -> float:  # main -> exp -> main
            t = 0.0
            for b in ("main", "exp"):
                t += git("checkout", "-q", b, hooks=False) + h5vc("checkout", tip[b])
                at(b)
            return t

        def hooked() -> float:
            t = 0.0
            for b in ("main", "exp"):
                t += git("checkout", "-q", b)
                at(b)
            return t

        def switch(hooks: bool) -> float:
            git("checkout", "-q", "main", hooks=False)
            h5vc("checkout", tip["main"])
            t = git("checkout", "-q", "same", hooks=hooks) + git("checkout", "-q", "main", hooks=hooks)
            at("main")
            return t

        def commit(hooks: bool) -> float:
            f = proj / "train.py"
            f.write_text(f.read_text() + "step += 1\n")
            git("add", "train.py", hooks=False)
            return git("commit", "-q", "-m", "code", hooks=hooks)

        h5vc("checkout", tip["exp"])  # start every round trip from exp
        git("checkout", "-q", "exp", hooks=False)
        runs = {"by hand": by_hand, "hooks": hooked,
                "switch, no hooks": lambda: switch(False), "switch, hooks": lambda: switch(True),
                "commit, no hooks": lambda: commit(False), "commit, hooks": lambda: commit(True)}
        times: dict[str, list[float]] = {k: [] for k in runs}
        for r in range(args.runs):
            for name in runs if r % 2 == 0 else list(runs)[::-1]:
                progress(f"round {r + 1}: {name}")
                if name in ("by hand", "hooks"):
                    git("checkout", "-q", "exp", hooks=False)
                    h5vc("checkout", tip["exp"])
                times[name].append(runs[name]())
        med = {k: median(v) for k, v in times.items()}

    rows_moved = args.commits * 1000
    print(f"\nGit hooks: branches differ by {rows_moved:,} rows ({rows_moved * 256 / 1e6:.1f} MB); "
          f"median of {args.runs} rounds, whole processes\n")
    print_table(["what", "median", "ratio"], [
        ["round trip main -> exp -> main, by hand (git checkout + h5vc checkout)",
         ms(med["by hand"]), ""],
        ["round trip main -> exp -> main, hooks (git checkout)", ms(med["hooks"]),
         ratio(med["hooks"] / med["by hand"]) + " of by hand"],
        ["git checkout x2, same data, no hooks", ms(med["switch, no hooks"]), ""],
        ["git checkout x2, same data, hooks", ms(med["switch, hooks"]),
         f"+{ms((med['switch, hooks'] - med['switch, no hooks']) / 2)} per checkout"],
        ["git commit, no hooks", ms(med["commit, no hooks"]), ""],
        ["git commit, pre-commit check", ms(med["commit, hooks"]),
         f"+{ms(med['commit, hooks'] - med['commit, no hooks'])}"],
    ])
    emit_json("git_hooks", {
        "commits": args.commits, "runs": args.runs, "rows_moved": rows_moved,
        "median_s": med, "ratio_hooks_by_hand": med["hooks"] / med["by hand"],
        "checkout_overhead_s": (med["switch, hooks"] - med["switch, no hooks"]) / 2,
        "commit_overhead_s": med["commit, hooks"] - med["commit, no hooks"],
    })


if __name__ == "__main__":
    main()
