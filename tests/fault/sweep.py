"""Kill an h5vc operation at every write it makes to the store, and check the store each time.

HDF5 writes a file with ``pwrite``; ``strace -e inject=pwrite64:signal=KILL:when=N`` stops the
process with SIGKILL as it is about to make its N-th one. A sweep runs the operation once to
count its writes, then once per write, killed there, and after each kill checks what a user
would: ``h5vc status`` (which finishes or undoes the interrupted operation) and ``h5vc verify``
succeed, plain h5py reads every object of the file, and the store holds either what it held
before the operation or what the operation makes, at the matching HEAD. Random kills (the
fault harness, bench/fault.py) seldom land inside HDF5's flush, where the order of the writes
matters; this lands on every one of them.

    python bench/crash_sweep.py                          # every scenario
    python bench/crash_sweep.py --scenario checkout --jobs 2
    python bench/crash_sweep.py --scenario transaction --keep DIR   # keep failing stores

tests/fault/test_sweep.py runs the sweeps in the test suite. Needs strace (Debian: ``apt-get
install strace``; scripts/setup.sh installs it).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

PY = sys.executable
H5VC = [PY, "-m", "h5vc"]


# -- scenarios: a store, and one operation on it ------------------------------------------------

def _base(path: Path) -> None:
    with h5py.File(path, "w") as f:
        f.create_dataset("t/a", data=np.arange(40000, dtype="f8").reshape(10000, 4),
                         chunks=(1024, 4), maxshape=(None, 4))
        f.create_dataset("t/c", data=np.arange(16 * 3000, dtype="u2").reshape(3000, 16),
                         chunks=(512, 16), maxshape=(None, 16))
        f["t"].attrs["title"] = "sweep"
    subprocess.run([*H5VC, "init", str(path), "-m", "init"], check=True, capture_output=True)


TX_REWRITE = """
import sys, numpy as np
from h5vc import Repository
with Repository.open(sys.argv[1]) as repo:
    with repo.transaction("rewrite") as tx:
        tx["/t/c"][100:600] = np.full((500, 16), 7, dtype="u2")
        tx["/t/a"][0:2000] = np.full((2000, 4), 1.5)
        tx["/t/a"].append(np.full((3000, 4), 2.5))
        tx.create_dataset("/t/new", data=np.arange(5000, dtype="i8"), chunks=(512,),
                          maxshape=(None,))
        tx["/t"].attrs["edited"] = "yes"
"""

CLI = """
import os, sys
os.execv(sys.executable, [sys.executable, "-m", "h5vc", *sys.argv[2:], "-s", sys.argv[1]])
"""

COMMITS = """
import sys
from h5vc import Repository
with Repository.open(sys.argv[1]) as repo:
    for i in range(int(sys.argv[2]) if len(sys.argv) > 2 else 14):
        with repo.transaction(f"more {i}") as tx:
            tx["/t"].attrs["m"] = i
"""


def build_transaction(path: Path) -> None:
    """A new store whose first transaction rewrites rows of two dtypes: it makes the first
    packs, the first rows of the object index and the first writes of record slots."""
    _base(path)


def build_checkout(path: Path) -> None:
    """Two commits (rows rewritten, appended, a dataset made); the operation checks out the
    first: rows restored in place, a dataset truncated, another deleted."""
    _base(path)
    subprocess.run([PY, "-c", TX_REWRITE, str(path)], check=True, capture_output=True)


def build_commit(path: Path) -> None:
    """Plain h5py appends rows, adds a dataset and changes an attribute; the operation is
    `h5vc commit`."""
    _base(path)
    with h5py.File(path, "r+") as f:
        f["t/a"].resize(12000, axis=0)
        f["t/a"][10000:] = -1.0
        f["t"].attrs["title"] = "edited"
        f["t/c"].resize(3500, axis=0)
        f["t/c"][3000:] = 9
        f.create_dataset("u/x", data=np.arange(100, dtype="i4"))


def build_journal(path: Path) -> None:
    """A journal two commits short of the chunk count where its chunk index splits; the
    operation makes 14 small commits, across the split."""
    with h5py.File(path, "w") as f:
        f.create_dataset("t/a", data=np.arange(400, dtype="f8"), chunks=(64,), maxshape=(None,))
    subprocess.run([*H5VC, "init", str(path), "-m", "init"], check=True, capture_output=True)
    code = """
import sys, h5py
from h5vc import Repository
p = sys.argv[1]
i = 0
while True:
    with Repository.open(p) as repo:
        for _ in range(20 if i < 700 else 1):
            with repo.transaction(f"c {i}") as tx:
                tx["/t"].attrs["n"] = i
            i += 1
    with h5py.File(p, "r") as f:
        if f[".h5vc/journal"].id.get_num_chunks() >= 64:
            break
"""
    subprocess.run([PY, "-c", code, str(path)], check=True, capture_output=True)


ORDERED_EDIT = """
import sys, numpy as np
from h5vc import Repository
with Repository.open(sys.argv[1]) as repo:
    with repo.transaction("drop lat and air") as tx:
        del tx["/lat"]
        del tx["/air"]
        tx["/time"].attrs["units"] = "s"
"""


def build_anew(path: Path) -> None:
    """A netCDF-like file (creation order tracked in the root, the variables and their
    attributes) whose second commit deleted two variables and changed an attribute; the
    operation checks out the first: the variables made anew and linked again in their order,
    the attributes made again in theirs."""
    with h5py.File(path, "w", track_order=True) as f:
        f.attrs["title"] = "anew"
        for name in ("time", "lat", "lon", "air"):
            d = f.create_dataset(name, data=np.arange(3000, dtype="f4"), chunks=(500,),
                                 maxshape=(None,), track_order=True)
            for k in ("units", "long_name", "_FillValue"):
                d.attrs[k] = f"{name} {k}"
    subprocess.run([*H5VC, "init", str(path), "-m", "init"], check=True, capture_output=True)
    subprocess.run([PY, "-c", ORDERED_EDIT, str(path)], check=True, capture_output=True)


@dataclass
class Scenario:
    build: Callable[[Path], None]
    script: str
    args: list[str] = field(default_factory=list)
    # runs whose end states are allowed too (an operation of several commits may stop between)
    partial: list[list[str]] = field(default_factory=list)


SCENARIOS = {
    "transaction": Scenario(build_transaction, TX_REWRITE),
    "checkout": Scenario(build_checkout, CLI, ["checkout", "main~1"]),
    "anew": Scenario(build_anew, CLI, ["checkout", "main~1"]),
    "commit": Scenario(build_commit, CLI, ["commit", "-m", "edit"]),
    "journal": Scenario(build_journal, COMMITS, partial=[[str(k)] for k in range(1, 14)]),
}


# -- checks ---------------------------------------------------------------------------------------

def content(path: Path) -> str:
    """A digest of everything outside /.h5vc: links, values, attributes (plain h5py), and the
    order h5py lists links and attributes in (their creation order, where it is tracked)."""
    h = hashlib.sha256()

    def put(name: str, obj: h5py.HLObject) -> None:
        if name.split("/")[0] == ".h5vc":
            return
        h.update(name.encode() + b"\0")
        if isinstance(obj, h5py.Dataset):
            h.update(str((obj.shape, obj.dtype.str)).encode())
            h.update(np.ascontiguousarray(obj[()]).tobytes())
        else:
            h.update(repr([k for k in obj if k != ".h5vc"]).encode())
        for k in obj.attrs:
            h.update(k.encode() + repr(obj.attrs[k]).encode())

    with h5py.File(path, "r") as f:
        put("", f)
        f.visititems(put)
    return h.hexdigest()[:16]


def head_of(path: Path) -> tuple[str | None, bool, str]:
    """(HEAD's short id, clean, output) from `h5vc status`, which also recovers."""
    r = subprocess.run([*H5VC, "status", "-s", str(path)], capture_output=True, text=True)
    out = (r.stdout + r.stderr).strip()
    if r.returncode != 0:
        return None, False, out
    first = r.stdout.splitlines()[0] if r.stdout else ""
    head = first.rsplit(" at ", 1)[-1].strip() if " at " in first else None
    return head, "nothing to commit" in r.stdout, out


@dataclass
class Allowed:
    """The end states a kill may leave: the store as it was (its HEAD and content), or the
    content of the operation done (or of a partial run) at its HEAD, or at a commit the store
    did not hold before (a commit's id depends on its time, so a rerun makes another)."""
    before: tuple[str | None, str]
    before_clean: bool = True  # False: the operation commits changes made before it
    after: dict[str, str | None] = field(default_factory=dict)  # content -> HEAD (None: new)
    old_ids: set[str] = field(default_factory=set)

    def holds(self, head: str | None, digest: str) -> bool:
        if (head, digest) == self.before:
            return True
        if digest not in self.after:
            return False
        want = self.after[digest]
        return head == want if want in self.old_ids else head not in self.old_ids


def log_ids(path: Path) -> set[str]:
    r = subprocess.run([*H5VC, "log", "-s", str(path)], capture_output=True, text=True)
    return {line.split()[0] for line in r.stdout.splitlines() if line.strip()}


def judge(path: Path, allowed: Allowed) -> str:
    """"ok", or what is wrong with the store after a kill."""
    head, clean, out = head_of(path)
    if head is None:
        return "status: " + out.splitlines()[-1][:300]
    v = subprocess.run([*H5VC, "verify", "-s", str(path)], capture_output=True, text=True)
    if v.returncode != 0:
        return "verify: " + (v.stdout + v.stderr).strip().splitlines()[-1][:300]
    try:
        digest = content(path)
    except Exception as e:  # noqa: BLE001 - any failure of plain h5py is the finding
        return f"h5py cannot read the store: {e}"[:300]
    if not clean and (allowed.before_clean or (head, digest) != allowed.before):
        return "status shows uncommitted changes after recovery"
    if not allowed.holds(head, digest):
        return f"silent mismatch: HEAD {head} with content {digest}, not a state it may be in"
    return "ok"


def count_writes(script: str, store: Path, args: list[str]) -> int:
    r = subprocess.run(["strace", "-f", "-c", "-e", "trace=pwrite64", PY, "-c", script,
                        str(store), *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"the operation failed without a kill: {r.stdout}{r.stderr}")
    for line in r.stderr.splitlines():
        parts = line.split()
        if parts and parts[-1] == "pwrite64":
            return int(parts[3])
    return 0


def kill_at(script: str, store: Path, args: list[str], n: int) -> None:
    subprocess.run(["strace", "-f", "-o", os.devnull, "-e", "trace=pwrite64", "-e",
                    f"inject=pwrite64:signal=KILL:when={n}", PY, "-c", script, str(store), *args],
                   capture_output=True)


def sweep(name: str, jobs: int, keep: Path | None, every: int = 1) -> dict[int, str]:
    sc = SCENARIOS[name]
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base.h5"
        sc.build(base)
        head, clean, _ = head_of(base)
        allowed = Allowed((head, content(base)), clean, old_ids=log_ids(base))
        done = Path(tmp) / "done.h5"
        writes = 0
        for args in [sc.args, *sc.partial]:
            shutil.copy(base, done)
            if args is sc.args:
                writes = count_writes(sc.script, done, args)
            else:
                subprocess.run([PY, "-c", sc.script, str(done), *args], check=True,
                               capture_output=True)
            head = head_of(done)[0]
            allowed.after[content(done)] = head

        def one(n: int) -> tuple[int, str]:
            work = Path(tmp) / f"k{n}"
            work.mkdir()
            store = work / "store.h5"
            shutil.copy(base, store)
            kill_at(sc.script, store, sc.args, n)
            killed = work / "killed.h5"
            if keep is not None:
                shutil.copy(store, killed)
            verdict = judge(store, allowed)
            if verdict != "ok" and keep is not None:
                dest = keep / f"{name}-{n}"
                shutil.rmtree(dest, ignore_errors=True)
                shutil.copytree(work, dest)
            shutil.rmtree(work, ignore_errors=True)
            return n, verdict

        # the point after the last write too: a kill once everything is written
        points = list(range(1, writes + 2, every))
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            return dict(pool.map(one, points))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", action="append", choices=sorted(SCENARIOS))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--every", type=int, default=1, help="kill at every K-th write only")
    ap.add_argument("--keep", type=Path, help="copy the stores of failing kills here")
    a = ap.parse_args()
    if shutil.which("strace") is None:
        print("crash_sweep: strace is needed (apt-get install strace)", file=sys.stderr)
        return 1
    if a.keep:
        a.keep.mkdir(parents=True, exist_ok=True)
    bad = 0
    print(f"{'scenario':<12} {'kills':>6} {'ok':>6} {'failed':>7} {'seconds':>8}")
    for name in a.scenario or list(SCENARIOS):
        t0 = time.perf_counter()
        res = sweep(name, a.jobs, a.keep, a.every)
        fails = {n: v for n, v in sorted(res.items()) if v != "ok"}
        bad += len(fails)
        print(f"{name:<12} {len(res):>6} {len(res) - len(fails):>6} {len(fails):>7} "
              f"{time.perf_counter() - t0:>8.0f}")
        for n, v in fails.items():
            print(f"    kill at write {n}: {v}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
