"""The rollback journal of a writable open (h5vc/engine/undo.py): a process killed between two
checkpoints leaves the store, once rolled back, byte for byte as the first checkpoint left it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from h5vc import Repository
from h5vc.engine.undo import HEAD, MAGIC, REC, _check, roll_back, settle_undo, undo_path

H5VC = [sys.executable, "-m", "h5vc"]


def undoes_nothing(path: Path) -> bool:
    """The journal beside ``path`` is absent or emptied (generation 0: kept, holding nothing)."""
    up = undo_path(path)
    if not up.exists():
        return True
    head = up.read_bytes()[:HEAD.size]
    return len(head) == HEAD.size and HEAD.unpack(head)[2] == 0


def make_store(path: Path) -> None:
    with h5py.File(path, "w") as f:
        f.create_dataset("t/a", data=np.arange(20000.0).reshape(5000, 4), chunks=(500, 4),
                         maxshape=(None, 4))
        f.create_dataset("t/s", data=np.array([b"x%d" % i for i in range(300)], dtype=object),
                         dtype=h5py.string_dtype(), maxshape=(None,), chunks=(64,))
        f["t"].attrs["title"] = "undo"
    Repository.init(path).close()


KILLED = """
import os, signal, sys, shutil, numpy as np
from h5vc import Repository
path, copy = sys.argv[1], sys.argv[2]
repo = Repository.open(path)
f = repo.file
f["t/a"][100:900] = -1.0                      # rows rewritten in place
f["t/a"].resize(7000, axis=0)                 # grown
f["t"].attrs["title"] = "x" * 5000            # an attribute that grows the header
f.flush()                                     # a checkpoint: this state must survive
shutil.copyfile(path, copy)
f["t/a"][:] = 7.0                             # then everything rewritten again,
f["t/s"].resize(10, axis=0)                   # cut,
del f["t/s"]                                  # deleted,
f.create_dataset("t/new", data=np.arange(100000))
for i in range(40):
    f["t"].attrs[f"a{i}"] = np.arange(i + 1)
__import__("h5py").File.flush(f)             # written to the file, but no checkpoint
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_kill_between_checkpoints_is_rolled_back_byte_for_byte(tmp_path: Path) -> None:
    path, copy = tmp_path / "s.h5", tmp_path / "at-checkpoint.h5"
    make_store(path)
    r = subprocess.run([sys.executable, "-c", KILLED, str(path), str(copy)], capture_output=True,
                       text=True)
    assert r.returncode == -signal.SIGKILL, r.stderr
    assert not undoes_nothing(path)
    assert path.read_bytes() != copy.read_bytes()  # the killed session did write
    st = subprocess.run([*H5VC, "status", "-s", str(path)], capture_output=True, text=True)
    # the read-only command rolled the file back first (it could lock and write it)
    assert undoes_nothing(path)
    assert path.read_bytes() == copy.read_bytes()
    assert st.returncode == 0 and "Traceback" not in st.stderr, st.stderr
    with h5py.File(path, "r") as f:  # the checkpoint's content, readable by plain h5py
        assert f["t/a"].shape == (7000, 4) and (f["t/a"][100:900] == -1.0).all()
        assert "t/s" in f and "t/new" not in f and f["t"].attrs["title"] == "x" * 5000


def test_a_session_that_ends_leaves_a_journal_that_undoes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "s.h5"
    make_store(path)
    with Repository.open(path) as repo:
        with repo.transaction("rewrite") as tx:
            tx["/t/a"][0:10] = 3.0
        assert undoes_nothing(path)  # the commit's flush was a checkpoint
    assert undoes_nothing(path)
    fd = os.open(path, os.O_RDWR)
    try:
        assert not roll_back(fd, path)
    finally:
        os.close(fd)


def _journal(path: Path, base: int, gen: int, records: list[tuple[int, bytes]],
             torn: bytes = b"") -> None:
    out = HEAD.pack(MAGIC, base, gen)
    for off, data in records:
        out += REC.pack(off, len(data), _check(gen, off, data)) + data
    undo_path(path).write_bytes(out + torn)


def test_a_torn_last_record_and_older_generations_are_passed_over(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"A" * 100 + b"B" * 50)  # 50 bytes written past the checkpoint's end
    old = REC.pack(20, 4, _check(6, 20, b"zzzz")) + b"zzzz"  # a record of the previous generation
    _journal(path, 100, 7, [(0, b"0123"), (10, b"abcd")], torn=old)
    fd = os.open(path, os.O_RDWR)
    try:
        assert roll_back(fd, path)
    finally:
        os.close(fd)
    want = bytearray(b"A" * 100)
    want[0:4], want[10:14] = b"0123", b"abcd"
    assert path.read_bytes() == bytes(want)  # cut to its size, the old generation not applied
    assert undoes_nothing(path)
    # a record cut short (the write it guarded was never made) is not applied
    path.write_bytes(b"C" * 100)
    rec = REC.pack(50, 10, _check(1, 50, b"0123456789")) + b"01234"
    _journal(path, 100, 1, [(0, b"xy")], torn=rec)
    fd = os.open(path, os.O_RDWR)
    try:
        roll_back(fd, path)
    finally:
        os.close(fd)
    assert path.read_bytes() == b"xy" + b"C" * 98
    # an emptied journal (generation 0) undoes nothing
    _journal(path, 0, 0, [])
    assert not settle_undo(path) and path.read_bytes() == b"xy" + b"C" * 98
    assert undoes_nothing(path)


HOLD = """
import sys, time
from h5vc import Repository
repo = Repository.open(sys.argv[1])
repo.file["t/a"][0:5] = 9.0
repo.file.flush()
repo.file["t/a"][0:5] = 8.0
__import__("h5py").File.flush(repo.file)  # written to the file, but no checkpoint
print("ready", flush=True)
time.sleep(30)
"""


def test_a_live_writers_journal_is_left_alone_and_no_one_else_writes(tmp_path: Path) -> None:
    path = tmp_path / "s.h5"
    make_store(path)
    p = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE,
                         text=True)
    try:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        before = undo_path(path).read_bytes()
        assert not settle_undo(path)  # the writer holds the lock: its journal is live
        assert undo_path(path).read_bytes() == before
        with pytest.raises(OSError, match="lock"):
            h5py.File(path, "r+")  # no other writer
        with h5py.File(path, "r") as f:  # plain h5py may read (the last checkpoint's bytes)
            assert (f["t/a"][0:5] == 9.0).all() or (f["t/a"][0:5] == 8.0).all()
        r = subprocess.run([*H5VC, "log", "-s", str(path)], capture_output=True, text=True)
        assert r.returncode == 1 and "Traceback" not in r.stderr
        assert "h5vc, which is writing it" in r.stderr and "--wait" in r.stderr
        assert undo_path(path).read_bytes() == before
    finally:
        p.kill()
        p.wait()
    # the writer was killed holding a written, uncheckpointed change: the next open undoes it
    with Repository.open(path) as repo:
        assert (repo.file["t/a"][0:5] == 9.0).all()


LONG = """
import sys
from h5vc import Repository
with Repository.open(sys.argv[1]) as repo:  # many records, then a checkpoint
    f = repo.file
    for i in range(40):
        f["t/a"][i * 100:(i + 1) * 100] = float(i)
        f["t"].attrs[f"k{i}"] = i
    f.flush()
"""

SHORT = """
import os, signal, sys, shutil
from h5vc import Repository
repo = Repository.open(sys.argv[1])
shutil.copyfile(sys.argv[1], sys.argv[2])  # the state this session starts from
repo.file["t/a"][0:3] = -5.0                # a few records, fewer than the last session's
__import__("h5py").File.flush(repo.file)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_records_an_earlier_session_left_in_the_journal_are_never_applied(tmp_path: Path) -> None:
    """The journal file is kept between sessions: a short session killed after a long one
    must be rolled back to its own start, not past it with the long one's records."""
    path, start = tmp_path / "s.h5", tmp_path / "start.h5"
    make_store(path)
    subprocess.run([sys.executable, "-c", LONG, str(path)], check=True, capture_output=True)
    long_size = undo_path(path).stat().st_size
    r = subprocess.run([sys.executable, "-c", SHORT, str(path), str(start)], capture_output=True,
                       text=True)
    assert r.returncode == -signal.SIGKILL, r.stderr
    assert undo_path(path).stat().st_size == long_size  # its records lie after the short ones
    fd = os.open(path, os.O_RDWR)
    try:
        assert roll_back(fd, path)
    finally:
        os.close(fd)
    assert path.read_bytes() == start.read_bytes()


def test_a_journal_is_never_applied_to_a_file_put_in_the_stores_place(tmp_path: Path) -> None:
    """Killed mid-write, then the store restored from a copy made at another commit: the
    journal's records are not the copy's, and applying them would damage it."""
    path, copy, torn = tmp_path / "s.h5", tmp_path / "backup.h5", tmp_path / "torn.h5"
    make_store(path)
    shutil.copyfile(path, copy)  # a backup, one commit behind
    with Repository.open(path) as repo:
        a = repo.file["t/a"]
        a.resize(5100, axis=0)
        a[5000:] = 3.0
        repo.commit("three")
    r = subprocess.run([sys.executable, "-c", KILLED, str(path), str(tmp_path / "ck.h5")],
                       capture_output=True, text=True)
    assert r.returncode == -signal.SIGKILL, r.stderr
    assert not undoes_nothing(path)
    shutil.copyfile(path, torn)
    shutil.copyfile(copy, path)  # the user puts the backup back
    journal = undo_path(path).read_bytes()
    r = subprocess.run([*H5VC, "log", "-s", str(path)], capture_output=True, text=True)
    assert r.returncode == 0 and "Traceback" not in r.stderr  # a reader reads it as it is
    assert path.read_bytes() == copy.read_bytes()
    r = subprocess.run([*H5VC, "commit", "-s", str(path), "-m", "x"], capture_output=True,
                       text=True)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert "not the file its rollback journal" in r.stderr and "delete s.h5.h5vc-undo" in r.stderr
    assert path.read_bytes() == copy.read_bytes() and undo_path(path).read_bytes() == journal
    undo_path(path).unlink()  # as the message says
    with Repository.open(path) as repo:
        assert repo.status().clean and len(list(repo.log())) == 1
    # the journal applied to its own file still rolls it back, to the last checkpoint
    shutil.copyfile(torn, path)
    undo_path(path).write_bytes(journal)
    fd = os.open(path, os.O_RDWR)
    try:
        assert roll_back(fd, path)
    finally:
        os.close(fd)
    assert path.read_bytes() == (tmp_path / "ck.h5").read_bytes()
