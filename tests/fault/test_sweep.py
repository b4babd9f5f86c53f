"""A kill at every write: each scenario of tests/fault/sweep.py is run once per write the
operation makes to the store, killed there (strace), and every kill must leave a store that
recovers to the state before the operation or after it, reads with plain h5py, and verifies.

    H5VC_SWEEP_EVERY=1   kill at every K-th write of the long scenario (journal) only
"""

from __future__ import annotations

import os
import shutil

import pytest

from . import sweep

pytestmark = pytest.mark.fault

JOURNAL_EVERY = int(os.environ.get("H5VC_SWEEP_EVERY", "3"))


@pytest.mark.parametrize("scenario", ["transaction", "checkout", "anew", "commit", "journal"])
def test_a_kill_at_any_write_leaves_a_sound_store(scenario: str, tmp_path) -> None:  # noqa: ANN001
    assert shutil.which("strace"), "strace is needed for this test: apt-get install strace"
    every = JOURNAL_EVERY if scenario == "journal" else 1
    res = sweep.sweep(scenario, jobs=2, keep=tmp_path, every=every)
    assert len(res) >= 5, f"only {len(res)} kill points: the operation made too few writes"
    bad = {n: v for n, v in sorted(res.items()) if v != "ok"}
    assert not bad, f"{len(bad)} of {len(res)} kills left a bad store (kept under {tmp_path}):\n" \
        + "\n".join(f"  kill at write {n}: {v}" for n, v in bad.items())
