"""Fault injection: h5vc killed mid-operation, two writers at once, a full disk, flipped bits.

Each test runs a batch of seeded trials (tests/fault/harness.py), prints the outcome counts,
and asserts that none went bad; a failure lists the failing trials with their seeds and keeps
their folders (the store as the fault left it, the worker's log). A seed is replayed with
``python bench/fault.py --op OP --seed SEED --trials 1 --keep`` (a kill's effect also depends
on timing; see docs/reliability.md).

Sizes (defaults; environment variables to change them):

    H5VC_FAULT_KILLS=20     kills per operation (add, commit, checkout, transaction, repair)
    H5VC_FAULT_REMOTE=8     kills per remote operation (push, pull, clone)
    H5VC_FAULT_WRITERS=20   two-writer trials (5 commits per writer)
    H5VC_FAULT_FLIPS=50     bit flips
    H5VC_FAULT_SEED=1       the first seed (trial i: SEED + i)

The whole file takes about 3 minutes on 2 cores. ``bench/fault.py`` runs the same trials by
the hundred.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from . import harness as h
from . import remote as hr

pytestmark = pytest.mark.fault

KILLS = int(os.environ.get("H5VC_FAULT_KILLS", "20"))
WRITERS = int(os.environ.get("H5VC_FAULT_WRITERS", "20"))
FLIPS = int(os.environ.get("H5VC_FAULT_FLIPS", "50"))
SEED = int(os.environ.get("H5VC_FAULT_SEED", "1"))
REMOTE_KILLS = int(os.environ.get("H5VC_FAULT_REMOTE", "8"))


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[h.Session]:
    s = h.Session(tmp_path_factory.mktemp("fault"), jobs=os.cpu_count() or 1, keep_failed=2)
    yield s
    h.close_servers()


def report(capsys: pytest.CaptureFixture[str], title: str, trials: list[h.Trial]) -> None:
    with capsys.disabled():
        print(f"\n{title}\n{h.table(trials)}")


def assert_none_bad(trials: list[h.Trial]) -> None:
    bad = sorted((t for t in trials if t.bad), key=lambda t: t.seed)
    counts = ", ".join(f"{k}: {v}" for k, v in sorted(h.counts(trials).items()))
    assert not bad, (f"{len(bad)} of {len(trials)} trials went bad ({counts}):\n"
                     + "\n".join(t.line() for t in bad[:10]))


def seeds(n: int) -> range:
    return range(SEED, SEED + n)


@pytest.mark.parametrize("op", hr.REMOTE_OPS)
def test_kill_remote(session: h.Session, op: str, capsys: pytest.CaptureFixture[str]) -> None:
    """SIGKILL during push, pull or clone to a folder remote: the local store is as it was or
    fully updated, nothing half written is left, and a rerun finishes the job with every
    commit."""
    trials = hr.kill_trials(session, op, REMOTE_KILLS, SEED)
    report(capsys, f"kill during {op}: {len(trials)} trials", trials)
    assert sum(t.info.get("killed_in") == "op" for t in trials) >= REMOTE_KILLS // 2, \
        "most kills should land while the operation runs"
    assert_none_bad(trials)


@pytest.mark.parametrize("op", h.KILL_OPS)
def test_kill(session: h.Session, op: str, capsys: pytest.CaptureFixture[str]) -> None:
    """SIGKILL during the operation: the next command recovers, verify is clean, every
    reported commit checks out to its data, and the store is the last reported state or the
    state of the operation in flight."""
    if op == "repair" and not h.has_command("repair"):
        pytest.skip("h5vc has no `repair` command yet")
    session.duration(op)
    control = session.controls[op]
    assert not control.bad, f"the operation fails even without a kill:\n{control.line()}"
    trials = h.kill_trials(session, op, KILLS, SEED)
    counted = [t for t in trials if t.outcome != h.SKIPPED]
    report(capsys, f"kill during {op}: {len(trials)} trials", trials)
    assert len(counted) >= KILLS, f"only {len(counted)} kills hit h5vc"
    assert_none_bad(trials)


def test_two_writers(session: h.Session, capsys: pytest.CaptureFixture[str]) -> None:
    """Two processes committing at once with HDF5's file locking off: h5vc's own lock
    serialises them; every commit a writer was told about is in the history with its data."""
    trials = h.run_trials(session, [lambda s=s: h.writers_trial(session, s) for s in seeds(WRITERS)])
    report(capsys, f"two writers, HDF5_USE_FILE_LOCKING=FALSE: {len(trials)} trials", trials)
    assert_none_bad(trials)


@pytest.mark.parametrize("scenario", sorted(h.DISK_SCENARIOS))
def test_disk_full(session: h.Session, scenario: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A store on an 8 MB tmpfs: the command that fills the disk fails with one `Error:`
    line and exit 1, and the history stays readable and intact."""
    why = h.can_mount()
    if why:
        pytest.skip(why)
    t = h.disk_full_trial(session, scenario, SEED)
    if t.outcome == h.SKIPPED:
        pytest.skip("; ".join(t.details))
    report(capsys, f"disk full during {scenario}", [t])
    assert_none_bad([t])


def test_bit_flips(session: h.Session, capsys: pytest.CaptureFixture[str]) -> None:
    """One flipped byte: verify reports it whenever committed content changed, and no command
    (status, log, show, verify, checkout) prints a traceback."""
    trials = h.run_trials(session, [lambda s=s: h.bitflip_trial(session, s) for s in seeds(FLIPS)])
    report(capsys, f"bit flips: {len(trials)} trials", trials)
    assert_none_bad(trials)

