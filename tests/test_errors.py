"""Bad input: one `Error: ...` line naming the fix, exit code 1, no traceback, store unchanged."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from h5vc import (
    FormatVersionError,
    H5vcError,
    IntegrityError,
    InvalidInputError,
    LockedError,
    NotARepositoryError,
    NotFoundError,
    ReadOnlyError,
    Repository,
)
from h5vc import errors as errors_mod
from h5vc.cli import app

runner = CliRunner()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fails_cleanly(args: list[str], path: Path, *expect: str) -> str:
    before = digest(path) if path.exists() else None
    r = runner.invoke(app, args)
    assert r.exit_code == 1, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), r.output
    assert "Traceback" not in r.output
    for e in expect:
        assert e in lines[0]
    if before is not None:
        assert digest(path) == before, "the store was changed"
    return lines[0]


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "s.h5"
    with Repository.init(path) as repo:
        with repo.transaction("rows") as tx:
            tx.create_dataset("/x", data=np.arange(10))
    return path


def test_error_tree_shape() -> None:
    assert issubclass(errors_mod.NotFoundError, KeyError)
    assert issubclass(errors_mod.InvalidInputError, ValueError)
    assert issubclass(errors_mod.AmbiguousRevError, errors_mod.InvalidInputError)
    assert issubclass(errors_mod.FormatVersionError, errors_mod.IntegrityError)
    for name in errors_mod.__all__:
        assert issubclass(getattr(errors_mod, name), H5vcError)
        assert name in errors_mod.__doc__


def test_not_an_hdf5_file(tmp_path: Path) -> None:
    p = tmp_path / "notes.h5"
    p.write_text("hello")
    fails_cleanly(["status", "-s", str(p)], p, "not an HDF5 file")
    fails_cleanly(["init", str(p)], p, "not an HDF5 file")
    with pytest.raises(NotARepositoryError):
        Repository.open(p)


def test_store_not_initialised(tmp_path: Path) -> None:
    p = tmp_path / "plain.h5"
    with h5py.File(p, "w") as f:
        f["x"] = 1
    fails_cleanly(["log", "-s", str(p)], p, "not an h5vc store", "h5vc init")


def test_missing_file(tmp_path: Path) -> None:
    p = tmp_path / "none.h5"
    fails_cleanly(["status", "-s", str(p)], p, "no store at", "h5vc init")
    with pytest.raises(NotFoundError):
        Repository.open(p)


def test_unknown_rev(store: Path) -> None:
    fails_cleanly(["checkout", "nope", "-s", str(store)], store, "unknown revision 'nope'")
    fails_cleanly(["show", "HEAD~9", "-s", str(store)], store, "goes back 9 commits")


def test_already_initialised(store: Path) -> None:
    fails_cleanly(["init", str(store)], store, "already an h5vc store")


def test_dirty_store_on_checkout(store: Path) -> None:
    with h5py.File(store, "a") as f:
        f["y"] = 2
    fails_cleanly(["checkout", "HEAD~1", "-s", str(store)], store, "uncommitted", "--force")


def test_empty_message(store: Path) -> None:
    with h5py.File(store, "a") as f:
        f["y"] = 2
    fails_cleanly(["commit", "-m", " ", "-s", str(store)], store, "needs a message")


def test_read_only_file(store: Path) -> None:
    with h5py.File(store, "a") as f:
        f["y"] = 2
    store.chmod(0o444)
    try:
        fails_cleanly(["commit", "-m", "m", "-s", str(store)], store, "read-only", "chmod")
        # reading still works
        assert runner.invoke(app, ["log", "-s", str(store)]).exit_code == 0
        with pytest.raises(ReadOnlyError):
            Repository.open(store)
    finally:
        store.chmod(0o644)


def test_read_only_open_refuses_writes(store: Path) -> None:
    with Repository.open(store, mode="r") as repo:
        with pytest.raises(ReadOnlyError, match="read-only"):
            repo.commit("x", allow_empty=True)


def test_locked_by_another_process(store: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import h5py, sys, time; f = h5py.File(sys.argv[1], 'r+'); print('open', flush=True); "
         "time.sleep(30)", str(store)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        line = fails_cleanly(["commit", "-m", "m", "--allow-empty", "-s", str(store)], store,
                             "another process")
        assert "writing it without h5vc" in line and "--wait SECONDS" in line
        with pytest.raises(LockedError):
            Repository.open(store)
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.1)
    with Repository.open(store) as repo:  # free again
        assert repo.head is not None


def test_damaged_metadata(store: Path) -> None:
    with h5py.File(store, "a") as f:
        del f[".h5vc/journal"]
    fails_cleanly(["log", "-s", str(store)], store, "damaged", "backup")
    with pytest.raises(IntegrityError):
        Repository.open(store)


def test_torn_journal_end_is_dropped_with_a_note(store: Path) -> None:
    """A journal whose last frame lost its trailer (what a kill during a commit's flush leaves)
    ends at the frame before it: that commit was never reported done."""
    with h5py.File(store, "a") as f:
        j = f[".h5vc/journal"]
        j.resize((j.shape[0] - 3,))
    r = runner.invoke(app, ["log", "--json", "-s", str(store)])
    assert r.exit_code == 0, r.output
    assert "Recovered: dropped an unfinished commit record" in r.output
    assert [c["message"] for c in json.loads(r.output[r.output.index("["):])] == ["init"]
    r = runner.invoke(app, ["verify", "-s", str(store)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["status", "-s", str(store)])
    assert "+10 rows /x" in r.output or "/x" in r.output  # the rows are uncommitted again


def test_damaged_commit_record(store: Path) -> None:
    """A flipped byte in a commit's message is caught by its id, never shown as that commit."""
    with h5py.File(store, "a") as f:
        j = f[".h5vc/journal"]
        data = j[()].tobytes()
        at = data.index(b'"rows"')  # the newest commit's message
        j[at + 1] = ord("R")
    fails_cleanly(["log", "-s", str(store)], store, "damaged", "h5vc verify")
    r = runner.invoke(app, ["verify", "-s", str(store)])
    assert r.exit_code == 1 and "does not match its id" in r.output, r.output


def test_corrupt_refs_slots_are_read_from_their_copy_and_repaired(store: Path) -> None:
    with h5py.File(store, "a") as f:
        for i in (0, 1):
            if f".h5vc/refs.{i}" in f and f[f".h5vc/refs.{i}"].shape[0]:  # a slot never written is empty
                f[f".h5vc/refs.{i}"][0:2] = np.frombuffer(b"@@", "u1")
    with Repository.open(store, mode="r") as repo:
        assert repo.branch == "main" and repo.head is not None and repo.head.message == "rows"
    r = runner.invoke(app, ["verify", "-s", str(store)])
    assert r.exit_code == 1 and "refs record" in r.output and "h5vc repair" in r.output, r.output
    r = runner.invoke(app, ["repair", "-s", str(store)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["verify", "-s", str(store)])
    assert r.exit_code == 0, r.output


def test_corrupt_refs_rebuilt(store: Path) -> None:
    with h5py.File(store, "a") as f:
        for i in (0, 1):
            if f".h5vc/refs.{i}" in f and f[f".h5vc/refs.{i}"].shape[0]:  # a slot never written is empty
                f[f".h5vc/refs.{i}"][0:2] = np.frombuffer(b"@@", "u1")
        copy = f[".h5vc"].attrs["refs.inline"]
        copy[4:6] = np.frombuffer(b"@@", "u1")  # and the copy kept in /.h5vc's attributes
        f[".h5vc"].attrs["refs.inline"] = copy
    with Repository.open(store, mode="r") as repo:
        with pytest.raises(IntegrityError, match="h5vc repair"):
            repo.head  # noqa: B018
    r = runner.invoke(app, ["repair", "-s", str(store)])
    assert r.exit_code == 0, r.output
    assert "rebuilt the damaged refs" in r.output
    with Repository.open(store, mode="r") as repo:
        assert repo.branch == "main" and repo.head is not None and repo.head.message == "rows"


def test_newer_format_version(store: Path) -> None:
    with h5py.File(store, "a") as f:
        f[".h5vc"].attrs["format_version"] = 99
    fails_cleanly(["status", "-s", str(store)], store, "newer h5vc", "upgrade")
    with pytest.raises(FormatVersionError):
        Repository.open(store)


def test_missing_preserved_content(tmp_path: Path) -> None:
    path = tmp_path / "lost.h5"
    with Repository.init(path) as repo:
        with repo.transaction("x") as tx:
            tx.create_dataset("/x", data=np.arange(10))
    with h5py.File(path, "a") as f:  # a plain h5py overwrite destroys committed rows
        f["x"][0] = 42
    with Repository.open(path) as repo:
        repo.commit("overwrite", verify=True, accept_loss=True)
    fails_cleanly(["checkout", "HEAD~1", "-s", str(path)], path, "no longer in the store")


def test_init_of_unsupported_content_changes_nothing(tmp_path: Path) -> None:
    p = tmp_path / "refs.h5"
    with h5py.File(p, "w") as f:
        f["a"] = np.arange(3)
        r = f.create_dataset("r", (1,), dtype=h5py.regionref_dtype)
        r[0] = f["a"].regionref[0:2]
    line = fails_cleanly(["init", str(p)], p, "dataset /r: HDF5 region references")
    assert "string" in line
    with h5py.File(p, "r") as f:
        assert ".h5vc" not in f


def test_history_group_is_out_of_reach(store: Path, tmp_path: Path) -> None:
    arr = tmp_path / "a.npy"
    np.save(arr, np.arange(3))
    for to in ("/.h5vc", "/./.h5vc", "//.h5vc/x", ".h5vc", "/x/../.h5vc"):
        fails_cleanly(["add", str(arr), "--to", to, "-s", str(store)], store, f"--to {to!r}")
    with Repository.open(store) as repo:
        for path in ("/./.h5vc/y", "/x\0y"):
            with pytest.raises(InvalidInputError, match="y"), repo.transaction("m") as tx:
                tx.create_dataset(path, data=[1])
    with h5py.File(store, "r") as f:
        assert sorted(f) == [".h5vc", "x"] and "a" not in f[".h5vc"]
    # and through a real process: one line, no traceback
    bad = subprocess.run([sys.executable, "-m", "h5vc", "add", str(arr), "--to", "/./.h5vc", "-s",
                          str(store)], capture_output=True, text=True)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: --to '/./.h5vc' (that is /.h5vc)")
