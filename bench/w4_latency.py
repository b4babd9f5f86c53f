"""W4 — command latency: `h5vc log -n 20` and `h5vc status` as whole processes on a long history.

Builds a store of --commits commits (default 10,000) as fast as the API allows: one open
Repository, small transactions. Five datasets /d0 .. /d4 of (rows, 16) float32, chunks
(1000, 16); commit i appends 10 rows to /d{i % 5}, and every 10th commit is instead an
attribute change (/d{k}@step = i). Then it times, as separate processes (wall clock, median
of --runs):

  h5vc log -n 20 -s STORE
  h5vc status -s STORE
  python -c "import h5py"        the floor: any h5vc command that reads HDF5 pays this
  python -c "pass"               the interpreter alone

Target: h5vc status / log -n 20 <= 0.25 s. The store is built in a temporary folder and removed
at the end unless --keep is given (or --store names an existing one to reuse).

    python bench/w4_latency.py [--commits 10000] [--runs 5] [--profile] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import emit_json, median, ms, print_table, profile_h5vc, progress, verdict  # noqa: E402

from h5vc import Repository  # noqa: E402

TARGET = 0.25
NDS = 5
COLS = 16
ROWS = 10


def h5vc_exe() -> str:
    """The h5vc console script of the interpreter running this benchmark."""
    here = Path(sys.executable).parent / ("h5vc.exe" if os.name == "nt" else "h5vc")
    if here.exists():
        return str(here)
    found = shutil.which("h5vc")
    if not found:
        raise SystemExit("no h5vc console script next to python or on PATH; pip install -e . first")
    return found


def build_store(path: Path, commits: int, seed: int = 0) -> tuple[float, list[float]]:
    """Returns the build time and the per-1000-commit times (to show whether it stays flat)."""
    rng = np.random.default_rng(seed)
    block = rng.random((ROWS * 64, COLS), dtype=np.float32)
    t0 = time.perf_counter()
    laps = []
    lap = t0
    with Repository.init(path) as repo:
        with repo.transaction("create datasets") as tx:
            for k in range(NDS):
                tx.create_dataset(f"/d{k}", shape=(0, COLS), maxshape=(None, COLS),
                                  chunks=(1000, COLS), dtype="f4")
        for i in range(1, commits - 1):  # init and "create" are the first two commits
            k = i % NDS
            with repo.transaction(f"commit {i}") as tx:
                if i % 10 == 0:
                    tx[f"/d{k}"].attrs["step"] = i
                else:
                    s = (i * ROWS) % (block.shape[0] - ROWS)
                    tx[f"/d{k}"].append(block[s:s + ROWS])
            if i % 1000 == 0:
                now = time.perf_counter()
                laps.append(now - lap)
                lap = now
                progress(f"  {i:,}/{commits:,} commits, {now - t0:.1f} s, "
                         f"last 1000: {laps[-1]:.2f} s")
    return time.perf_counter() - t0, laps


def time_process(cmd: list[str], runs: int, *, expect_lines: int | None = None,
                 env: dict[str, str] | None = None) -> tuple[float, list[float]]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        times.append(time.perf_counter() - t0)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr}")
        if expect_lines is not None:
            n = len(proc.stdout.splitlines())
            assert n == expect_lines, f"{' '.join(cmd)} printed {n} lines, expected {expect_lines}"
    return median(times), times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--commits", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--store", type=Path, help="reuse this store instead of building one")
    ap.add_argument("--keep", type=Path, help="build the store in this folder and keep it")
    ap.add_argument("--profile", action="store_true",
                    help="also profile log -n 20 and status in-process and print h5vc's hot spots")
    args = ap.parse_args()

    exe = h5vc_exe()
    tmp = Path(tempfile.mkdtemp(prefix="h5vc-w4-"))
    try:
        build_s: float | None = None
        laps: list[float] = []
        if args.store is not None:
            store = args.store
        else:
            folder = args.keep or tmp
            folder.mkdir(parents=True, exist_ok=True)
            store = folder / "w4.h5"
            if store.exists():
                store.unlink()
            progress(f"W4: building {args.commits:,} commits in {store} ...")
            build_s, laps = build_store(store, args.commits)
            progress(f"W4: built in {build_s:.1f} s")
        with Repository.open(store, mode="r") as repo:
            n_commits = sum(1 for _ in repo.log())
        size = os.path.getsize(store)

        # Python caches compiled modules only if allowed: PYTHONDONTWRITEBYTECODE=1 (set on some
        # machines) makes every process recompile h5vc's sources. So each command runs twice:
        # with the environment as it is, and with a warm bytecode cache kept in the temp folder
        # (PYTHONPYCACHEPREFIX, so nothing is written next to the sources).
        env_as_is = dict(os.environ)
        env_cached = dict(os.environ, PYTHONPYCACHEPREFIX=str(tmp / "pycache"))
        env_cached.pop("PYTHONDONTWRITEBYTECODE", None)
        dont = os.environ.get("PYTHONDONTWRITEBYTECODE")
        envs = [("", env_cached)]
        if dont:
            envs = [(" [no .pyc: PYTHONDONTWRITEBYTECODE=1]", env_as_is), ("", env_cached)]
        base = [
            ("h5vc log -n 20", "log", [exe, "log", "-n", "20", "-s", str(store)], min(20, n_commits)),
            ("h5vc status", "status", [exe, "status", "-s", str(store)], None),
        ]
        cmds = [(label + tag, key + ("_nopyc" if tag else ""), cmd, lines, env)
                for tag, env in envs for label, key, cmd, lines in base]
        cmds += [
            ('python -c "import h5py" (floor)', "import_h5py", [sys.executable, "-c", "import h5py"],
             None, env_cached),
            ('python -c "pass"', "python", [sys.executable, "-c", "pass"], None, env_cached),
        ]
        # one warm-up of each (page cache, bytecode cache), then interleaved runs
        for _, _, cmd, lines, env in cmds:
            time_process(cmd, 1, expect_lines=lines, env=env)
        results: dict[str, list[float]] = {key: [] for _, key, _, _, _ in cmds}
        for _ in range(args.runs):
            for _, key, cmd, lines, env in cmds:
                results[key] += time_process(cmd, 1, expect_lines=lines, env=env)[1]

        floor = median(results["import_h5py"])
        print(f"\nW4 latency: store of {n_commits:,} commits ({size / 2**20:.1f} MiB), "
              f"whole processes, median of {args.runs} runs (interleaved, after one warm-up)\n")
        rows = []
        fig: dict[str, object] = {"pythondontwritebytecode": bool(dont)}
        for label, key, _, _, _ in cmds:
            v = median(results[key])
            target = label.startswith("h5vc")
            rows.append([label, ms(v), ms(min(results[key])), ms(v - floor) if v >= floor else "",
                         f"<= {TARGET * 1e3:.0f} ms" if target else "",
                         verdict(v, TARGET) if target else ""])
            fig[key + "_ms"] = 1e3 * v
        print_table(["command", "median", "min", "minus h5py import", "target", ""], rows)

        # the same calls in-process, to split interpreter + imports from h5vc's own work
        def t_inproc(fn: object, n: int = 5) -> float:
            ts = []
            for _ in range(n):
                t0 = time.perf_counter()
                fn()  # type: ignore[operator]
                ts.append(time.perf_counter() - t0)
            return median(ts)

        def do_log() -> None:
            with Repository.open(store, mode="r") as repo:
                assert len(list(repo.log(limit=20))) == min(20, n_commits)

        def do_status() -> None:
            with Repository.open(store, mode="r") as repo:
                repo.status()

        inproc = {"open + log(limit=20)": t_inproc(do_log), "open + status()": t_inproc(do_status)}
        print("\nthe same work in-process (imports already done)\n")
        print_table(["call", "median"], [[k, ms(v)] for k, v in inproc.items()])
        fig.update({"inproc_log_ms": 1e3 * inproc["open + log(limit=20)"],
                    "inproc_status_ms": 1e3 * inproc["open + status()"]})
        if build_s is not None:
            print(f"\nstore build: {build_s:.1f} s for {args.commits:,} commits "
                  f"({1e3 * build_s / args.commits:.2f} ms/commit); seconds per 1000 commits: "
                  + ", ".join(f"{x:.2f}" for x in laps))

        if args.profile:
            profile_h5vc(lambda: [do_log() for _ in range(5)], title="5 x open + log(limit=20)")
            profile_h5vc(lambda: [do_status() for _ in range(5)], title="5 x open + status()")
            # import time of the CLI, split by module (what a whole process pays before any work)
            out = subprocess.run([sys.executable, "-X", "importtime", "-c",
                                  "import h5vc.cli, h5vc.repository"], capture_output=True,
                                 text=True, env=env_cached).stderr.splitlines()
            parsed = []
            for line in out:
                parts = line.split("|")
                if len(parts) == 3 and parts[1].strip().isdigit():
                    parsed.append((int(parts[1]), parts[2].rstrip()))
            parsed.sort(reverse=True)
            print("\nimport time, cumulative (python -X importtime), top 12")
            print_table(["module", "cumulative"], [[m.strip(), f"{us / 1e3:.1f} ms"]
                                                   for us, m in parsed[:12]])

        fig.update({"commits": n_commits, "runs": args.runs, "file_bytes": size,
                    "build_s": build_s, "build_laps_s": laps,
                    "samples_ms": {k: [round(1e3 * x, 1) for x in v] for k, v in results.items()}})
        emit_json("w4_latency", fig)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
