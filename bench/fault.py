"""Fault injection at scale: kills, two writers, a full disk, bit flips (tests/fault/harness.py).

The same trials as tests/fault/test_fault.py, many more of them: by default 200 SIGKILLs per
operation (add, commit, checkout, transaction, repair; push, pull and clone to a folder remote,
tests/fault/remote.py), 100 two-writer trials, both disk-full scenarios and 200 bit flips.
Prints every failing trial (seed, where it was killed, what was found), a table of outcome
counts per operation, and the total time; the last line is JSON.

    python bench/fault.py                         # everything (~1.5 h on 2 cores)
    python bench/fault.py --op checkout --trials 50
    python bench/fault.py --op transaction --seed 1234 --trials 1 --keep   # replay one seed
    python bench/fault.py --op checkout --seed 8 --trials 1 --window 120   # ... with the window
                                                                           # the run printed
    python bench/fault.py --op writers --trials 100
    python bench/fault.py --op push --op pull --op clone --trials 100
    python bench/fault.py --op bitflip --trials 500 --verify fallback

Trial i of a run uses seed SEED + i, so ``--seed S --trials 1`` replays the trial of seed S
(the kill moment is drawn from the seed: an operation, and a fraction of the write window the
control trial measured, after the store's first write in that operation; pass the window the
first run printed with --window to get the same delay; on a loaded machine the same delay lands
close to, not exactly at, the same point of the operation).

``--src DIR`` runs the trials against another h5vc source tree, e.g. the last commit:
``git archive HEAD | tar -x -C /tmp/h5vc-head`` then ``--src /tmp/h5vc-head``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OPS = ("add", "commit", "checkout", "transaction", "repair", "writers", "disk", "bitflip",
       "push", "pull", "clone")
DEFAULTS = {"writers": 100, "bitflip": 200, "disk": 1}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--op", action="append", choices=[*OPS, "all"],
                    help="operation(s) to run (repeatable; default all)")
    ap.add_argument("--trials", type=int, default=None,
                    help="trials per operation (default: 200 kills per operation, 100 two-writer "
                         "trials, 200 bit flips, 1 per disk-full scenario)")
    ap.add_argument("--seed", type=int, default=1, help="first seed (trial i: SEED + i)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="trials at once")
    ap.add_argument("--commits", type=int, default=5, help="commits per writer (writers)")
    ap.add_argument("--keep", action="store_true",
                    help="keep the folders of failing trials (up to 3 per outcome) and print them")
    ap.add_argument("--verify", choices=["auto", "verify", "fallback"], default=None,
                    help="how stores are verified (default auto: `h5vc verify` if it exists)")
    ap.add_argument("--src", default=None, help="run against this h5vc source tree")
    ap.add_argument("--window", type=float, default=None, metavar="MS",
                    help="pin the write window of kill trials (default: measured by a control "
                         "trial; give the figure a run printed to replay its seeds' delays)")
    ap.add_argument("--quiet", action="store_true", help="do not print each failing trial")
    args = ap.parse_args()
    # the harness reads these when imported
    if args.verify:
        os.environ["H5VC_FAULT_VERIFY"] = args.verify
    if args.window:
        os.environ["H5VC_FAULT_WINDOW"] = str(args.window)
    if args.src:
        os.environ["H5VC_FAULT_SRC"] = str(Path(args.src).resolve())
    sys.path.insert(0, str(ROOT / "tests"))
    from fault import harness as h  # noqa: E402
    from fault import remote as hr  # noqa: E402

    ops = [o for o in OPS if not args.op or "all" in args.op or o in args.op]
    session = h.Session(jobs=args.jobs, keep_failed=3 if args.keep else 0,
                        log=lambda s: print(s, file=sys.stderr, flush=True))
    t0 = time.monotonic()
    per_op_time: dict[str, float] = {}
    results: list[h.Trial] = []
    shown = 0

    def done(t: h.Trial) -> None:
        nonlocal shown
        if (t.bad or t.outcome == h.SKIPPED) and not args.quiet and shown < 400:
            shown += 1
            print(t.line(), flush=True)
        n = len(results) + 1
        if n % 20 == 0:
            print(f"  ... {n} trials, {time.monotonic() - t0:.0f} s", file=sys.stderr, flush=True)

    try:
        for op in ops:
            n = args.trials if args.trials is not None else DEFAULTS.get(op, 200)
            seeds = range(args.seed, args.seed + n)
            t1 = time.monotonic()
            if op in h.KILL_OPS:
                if op != "repair" or h.has_command("repair"):
                    session.duration(op)  # the control trial, before the random ones
                print(f"{op}: {n} kill(s)", file=sys.stderr, flush=True)
                ts = h.kill_trials(session, op, n, args.seed, on_done=done)
                results += ts
                per_op_time[op] = time.monotonic() - t1
                continue
            if op in hr.REMOTE_OPS:
                print(f"{op}: {n} kill(s)", file=sys.stderr, flush=True)
                results += hr.kill_trials(session, op, n, args.seed, on_done=done)
                per_op_time[op] = time.monotonic() - t1
                continue
            if op == "writers":
                jobs = [lambda s=s: h.writers_trial(session, s, args.commits) for s in seeds]
            elif op == "bitflip":
                jobs = [lambda s=s: h.bitflip_trial(session, s) for s in seeds]
            else:  # disk: both scenarios per seed, each on its own small tmpfs
                jobs = [lambda sc=sc, s=s: h.disk_full_trial(session, sc, s)
                        for sc in h.DISK_SCENARIOS for s in seeds]
            print(f"{op}: {len(jobs)} trial(s)", file=sys.stderr, flush=True)
            ts = h.run_trials(session, jobs, on_done=done)
            results += ts
            per_op_time[op] = time.monotonic() - t1
    finally:
        h.close_servers()
        if not args.keep:
            session.cleanup()
    total = time.monotonic() - t0
    controls = [t for t in session.controls.values() if t.bad]
    print()
    if controls:
        print("control trials (no kill) that failed — the operation fails without a fault:")
        for t in controls:
            print(t.line())
        print()
    print(h.table(results))
    print()
    for op, sec in per_op_time.items():
        ts = [t for t in results if t.op == op or (op == "disk" and t.kind == "disk")]
        where = h.states(ts) if op in (*h.KILL_OPS, *hr.REMOTE_OPS) else ""
        print(f"{op}: {sec:.0f} s" + (f"; end states: {where}" if where else ""))
    src = os.environ.get("H5VC_FAULT_SRC")
    print(f"total: {total:.0f} s ({len(results)} trials, {args.jobs} at a time); verify: "
          f"{'h5vc verify' if h.uses_verify_command() else 'fallback'}"
          f"{'; h5vc from ' + src if src else ''}")
    if args.keep:
        print(f"failing trial folders under {session.root}/trials")
    by_op: dict[str, dict[str, int]] = {}
    for t in results:
        key = f"{t.kind}/{t.op}"
        by_op.setdefault(key, {})
        by_op[key][t.outcome] = by_op[key].get(t.outcome, 0) + 1
    failing = {f"{t.kind}/{t.op}": [] for t in results}
    for t in results:
        if t.bad:
            failing[f"{t.kind}/{t.op}"].append(t.seed)
    print(json.dumps({"bench": "fault", "seconds": round(total, 1), "outcomes": by_op,
                      "failing_seeds": {k: v for k, v in failing.items() if v},
                      "seed": args.seed, "jobs": args.jobs}))


if __name__ == "__main__":
    main()
