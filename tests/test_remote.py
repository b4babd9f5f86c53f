"""Remotes on a local folder: push, clone, only what is missing moves, fast-forward only,
racing pushers, damaged payloads caught, kills during push and clone (through the CLI, as a
user runs it, and through the Python API)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import xxhash
from typer.testing import CliRunner

from h5vc import IntegrityError, Repository
from h5vc.cli import app
from h5vc.remote import clone, push

runner = CliRunner()
H5VC = [sys.executable, "-m", "h5vc"]


def cli(*args: str):
    return runner.invoke(app, list(args))


def run(*args: str, crash: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("H5VC_CRASH_AT", None)
    if crash:
        env["H5VC_CRASH_AT"] = crash
    r = subprocess.run([*H5VC, *args], capture_output=True, text=True, env=env)
    assert "Traceback" not in r.stderr, r.stderr
    return r


def digest(path: Path) -> str:
    """Every tracked object outside /.h5vc: names, shapes, dtypes, values, attributes."""
    h = xxhash.xxh3_128()
    with h5py.File(path, "r") as f:
        def visit(name: str, obj: object) -> None:
            if name.startswith(".h5vc"):
                return
            h.update(name.encode())
            for k in sorted(obj.attrs):  # type: ignore[attr-defined]
                v = obj.attrs[k]  # type: ignore[attr-defined]
                if isinstance(v, h5py.Reference):
                    v = f[v].name
                h.update(k.encode() + repr(v).encode())
            if isinstance(obj, h5py.Dataset):
                h.update(str((obj.shape, obj.dtype, obj.chunks, obj.compression)).encode())
                data = obj[()]
                if obj.dtype.hasobject:
                    for v in np.asarray(data).ravel():
                        h.update(v if isinstance(v, bytes) else repr(v).encode())
                else:
                    h.update(np.ascontiguousarray(data).tobytes())
        for k in sorted(f.attrs):
            v = f.attrs[k]
            h.update(k.encode() + repr(f[v].name if isinstance(v, h5py.Reference) else v).encode())
        f.visititems(visit)
    return h.hexdigest()


def make_store(path: Path) -> list[str]:
    """Categories of images (uint8, gzip), a table, strings, a scalar, attributes and an
    object reference, over three commits and a tag; returns the commit ids, oldest first."""
    rng = np.random.default_rng(7)
    with h5py.File(path, "w") as f:
        for cat in ("cat", "dog"):
            g = f.create_group(f"train/{cat}")
            g.attrs["label"] = cat
            g.create_dataset("images", data=rng.integers(0, 255, (40, 16, 16, 3), dtype="u1"),
                             maxshape=(None, 16, 16, 3), chunks=(8, 16, 16, 3), compression="gzip")
        f.create_dataset("table", data=rng.random((500, 4)), maxshape=(None, 4), chunks=(128, 4))
        f.create_dataset("names", data=np.array([f"n{i}-é" for i in range(60)], dtype=object),
                         dtype=h5py.string_dtype(), maxshape=(None,), chunks=(16,))
        f.create_dataset("scale", data=2.5)
        f.attrs["first"] = f["train/cat/images"].ref
    with Repository.init(path, message="first", pointer=False) as repo:
        with repo.transaction("more dogs") as tx:
            tx["/train/dog/images"].append(rng.integers(0, 255, (8, 16, 16, 3), dtype="u1"))
            tx["/names"][0:4] = np.array(["a", "b", "c", "d"], dtype=object)
            tx["/train"].attrs["split"] = "v2"
        repo.create_tag("v2")
        with repo.transaction("rewrite the table") as tx:
            tx["/table"][0:200] = rng.random((200, 4))
            tx["/scale"][()] = 3.0
        return [c.id for c in reversed(list(repo.log()))]


def checkouts(path: Path, ids: list[str]) -> dict[str, str]:
    """The digest of every commit, checked out in turn (then back to main)."""
    out = {}
    for cid in ids:
        r = cli("checkout", cid, "-s", str(path))
        assert r.exit_code == 0, r.output
        out[cid] = digest(path)
    assert cli("checkout", "main", "-s", str(path)).exit_code == 0
    return out


@pytest.fixture
def pushed(tmp_path: Path) -> tuple[Path, Path, list[str]]:
    a, remote = tmp_path / "a.h5", tmp_path / "remote"
    ids = make_store(a)
    assert cli("remote", "add", "origin", str(remote), "-s", str(a)).exit_code == 0
    r = cli("push", "-s", str(a))
    assert r.exit_code == 0, r.output
    return a, remote, ids


def test_push_then_clone_gives_every_commit_byte_for_byte(pushed, tmp_path: Path) -> None:
    a, remote, ids = pushed
    r = cli("clone", str(remote), str(tmp_path / "b.h5"))
    assert r.exit_code == 0, r.output
    assert "Cloned 3 commit(s)" in r.output and "on branch main" in r.output, r.output
    b = tmp_path / "b.h5"
    assert digest(b) == digest(a)
    assert cli("status", "-s", str(b)).output.endswith("nothing to commit: the store equals HEAD\n")
    log = json.loads(cli("log", "--json", "-s", str(b)).output)
    assert [c["id"] for c in reversed(log)] == ids
    assert json.loads(cli("tag", "--json", "-s", str(b)).output) == {"v2": ids[1]}
    assert checkouts(b, ids) == checkouts(a, ids)
    assert cli("verify", "-s", str(b)).exit_code == 0
    listed = json.loads(cli("remote", "list", "--json", "-s", str(b)).output)
    assert listed == {"default": "origin", "remotes": {"origin": {"url": str(remote), "options": {}}}}
    # a tag as --rev: a detached HEAD at it
    r = cli("clone", str(remote), str(tmp_path / "c.h5"), "--rev", "v2")
    assert r.exit_code == 0 and f"on commit {ids[1][:10]}" in r.output, r.output
    assert json.loads(cli("status", "--json", "-s", str(tmp_path / "c.h5")).output)["head"] == ids[1]


def test_push_sends_only_what_the_remote_lacks(pushed, tmp_path: Path) -> None:
    a, remote, ids = pushed
    again = json.loads(cli("push", "--json", "-s", str(a)).output)
    assert again["up_to_date"] == ["main"] and again["bytes"] == 0 and again["packs"] == 0
    with Repository.open(a) as repo:
        with repo.transaction("a few more cats") as tx:
            tx["/train/cat/images"].append(np.full((8, 16, 16, 3), 9, dtype="u1"))
        report = push(repo)  # the Python API
        new = repo.head.id  # type: ignore[union-attr]
    assert report.commits == 1 and report.objects == 1  # one block of 8 images
    assert 8 * 16 * 16 * 3 <= report.bytes <= 8 * 16 * 16 * 3 + 2048
    assert report.updated == {"main": (ids[-1], new)}
    got = clone(str(remote), tmp_path / "b.h5")
    assert got.commit == new and got.commits == 4
    assert digest(tmp_path / "b.h5") == digest(a)


def test_a_push_that_would_lose_commits_is_refused(pushed, tmp_path: Path) -> None:
    a, remote, ids = pushed
    b = tmp_path / "b.h5"
    assert cli("clone", str(remote), str(b)).exit_code == 0
    for store, n in ((b, 1), (a, 2)):
        with Repository.open(store) as repo, repo.transaction(f"from {store.name}") as tx:
            tx["/table"].append(np.full((n, 4), float(n)))
    r = cli("push", "-s", str(b))
    assert r.exit_code == 0, r.output
    with Repository.open(b, mode="r") as repo:
        b_tip = repo.head.id  # type: ignore[union-attr]
    r = cli("push", "-s", str(a))
    assert r.exit_code == 1
    assert r.output.strip().splitlines() == [
        f"Error: the remote origin's branch main has commits this store lacks ({b_tip[:10]}); "
        "bring them in first (h5vc pull origin), then push again"], r.output
    assert clone(str(remote), tmp_path / "c.h5").commit == b_tip  # the remote kept B's commit


def test_racing_pushers_one_wins_the_other_is_refused(pushed, tmp_path: Path) -> None:
    a, remote, ids = pushed
    stores = []
    for i in range(2):
        s = tmp_path / f"w{i}.h5"
        assert cli("clone", str(remote), str(s)).exit_code == 0
        stores.append(s)
    for rnd in range(4):
        tips = []
        for i, s in enumerate(stores):
            with Repository.open(s) as repo:
                with repo.transaction(f"round {rnd} writer {i}") as tx:
                    tx["/table"].append(np.full((1, 4), float(10 * rnd + i)))
                tips.append(repo.head.id)  # type: ignore[union-attr]
        procs = [subprocess.Popen([*H5VC, "push", "-s", str(s)], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for s in stores]
        outs = [(p.wait(), p.stdout.read(), p.stderr.read()) for p in procs]  # type: ignore[union-attr]
        codes = sorted(c for c, _o, _e in outs)
        assert codes == [0, 1], outs
        winner = [i for i, (c, _o, _e) in enumerate(outs) if c == 0][0]
        loser_err = outs[1 - winner][2]
        assert "Traceback" not in loser_err and loser_err.startswith("Error: "), loser_err
        assert "pull" in loser_err, loser_err
        got = clone(str(remote), tmp_path / f"check{rnd}.h5")
        assert got.commit == tips[winner]
        # the loser starts the next round from the winner's history
        loser = stores[1 - winner]
        loser.unlink()
        assert cli("clone", str(remote), str(loser)).exit_code == 0


def _flip(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x40
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("what", ["commit", "rows"])
def test_a_damaged_payload_on_the_remote_is_caught_and_nothing_is_cloned(
        pushed, tmp_path: Path, what: str) -> None:
    a, remote, ids = pushed
    packs = remote / "packs"
    for idx in packs.glob("*.idx"):
        rec = json.loads(idx.read_text())
        entries = rec["commits"] if what == "commit" else rec["objects"]
        if entries:
            h, (start, n, *_kind) = sorted(entries.items())[0]
            _flip(idx.with_suffix(".pack"), start + n // 2)
            break
    out = tmp_path / "b.h5"
    r = cli("clone", str(remote), str(out))
    assert r.exit_code == 1
    line = r.output.strip()
    assert line.startswith("Error: ") and len(line.splitlines()) == 1, r.output
    assert h[:10] in line and "damaged" in line and "nothing was cloned" in line, line
    assert not out.exists() and not list(tmp_path.glob("b.h5*"))


@pytest.mark.parametrize("point", ["clone.pack-read", "clone.before-rename"])
def test_a_killed_clone_leaves_no_store_and_runs_again(pushed, tmp_path: Path, point: str) -> None:
    a, remote, ids = pushed
    out = tmp_path / "b.h5"
    r = run("clone", str(remote), str(out), crash=point)
    assert r.returncode == -signal.SIGKILL, r.stderr
    assert not out.exists()
    r = run("clone", str(remote), str(out))
    assert r.returncode == 0, r.stderr
    assert digest(out) == digest(a) and not list(tmp_path.glob("b.h5.*"))
    assert run("verify", "-s", str(out)).returncode == 0


@pytest.mark.parametrize("point", ["push.pack-sent", "push.before-refs"])
def test_a_killed_push_runs_again_and_completes(tmp_path: Path, point: str) -> None:
    a, remote = tmp_path / "a.h5", tmp_path / "remote"
    ids = make_store(a)
    assert cli("remote", "add", "origin", str(remote), "-s", str(a)).exit_code == 0
    r = run("push", "-s", str(a), crash=point)
    assert r.returncode == -signal.SIGKILL, r.stderr
    assert not (remote / "refs" / "heads" / "main").exists()  # the branch did not move
    r = run("push", "-s", str(a))
    assert r.returncode == 0, r.stderr
    b = tmp_path / "b.h5"
    assert run("clone", str(remote), str(b)).returncode == 0
    assert checkouts(b, ids) == checkouts(a, ids)


def test_bad_input_is_one_line_and_changes_nothing(pushed, tmp_path: Path) -> None:
    a, remote, ids = pushed
    before = a.read_bytes()
    cases = [
        (["remote", "add", "s3", "s3://bucket/x", "-o", "secret=abc", "-s", str(a)], "credentials"),
        (["remote", "add", "s3", "s3://me:pw@bucket/x", "-s", str(a)], "credentials"),
        (["remote", "add", "bad name", str(remote), "-s", str(a)], "bad remote name"),
        (["remote", "add", "o", str(remote), "-o", "novalue", "-s", str(a)], "key=value"),
        (["remote", "remove", "nope", "-s", str(a)], "no remote named 'nope'"),
        (["push", "nope", "-s", str(a)], "no remote named 'nope'"),
        (["push", "origin", "nobranch", "-s", str(a)], "no branch or tag named 'nobranch'"),
        (["clone", str(remote), str(a)], "exists already"),
        (["clone", str(tmp_path / "empty"), str(tmp_path / "x.h5")], "holds no h5vc history"),
        (["clone", str(remote), str(tmp_path / "no" / "x.h5")], "does not exist"),
        (["clone", str(remote), str(tmp_path / "y.h5"), "--rev", "nothing"], "no branch, tag or commit"),
    ]
    (tmp_path / "empty").mkdir()
    for args, text in cases:
        r = cli(*args)
        assert r.exit_code == 1, (args, r.output)
        lines = r.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: ") and text in lines[0], (args, r.output)
    assert a.read_bytes() == before
    assert not (tmp_path / "x.h5").exists() and not (tmp_path / "y.h5").exists()
    b = tmp_path / "fresh.h5"
    with h5py.File(b, "w") as f:
        f["x"] = np.arange(3)
    assert cli("init", str(b)).exit_code == 0
    r = cli("push", "-s", str(b))
    assert r.exit_code == 1 and "add one with `h5vc remote add NAME URL`" in r.output, r.output


def test_remote_add_list_remove(tmp_path: Path) -> None:
    a = tmp_path / "a.h5"
    make_store(a)
    assert cli("remote", "add", "one", str(tmp_path / "r1"), "-s", str(a)).exit_code == 0
    r = cli("remote", "add", "two", "s3://bucket/data", "-o", "endpoint_url=http://127.0.0.1:1",
            "--default", "-s", str(a))
    assert r.exit_code == 0 and "(default)" in r.output, r.output
    r = cli("remote", "list", "-s", str(a))
    assert r.output.splitlines() == [f"  one  {tmp_path / 'r1'}",
                                     "* two  s3://bucket/data  endpoint_url=http://127.0.0.1:1"]
    assert cli("remote", "remove", "two", "-s", str(a)).exit_code == 0
    assert json.loads(cli("remote", "list", "--json", "-s", str(a)).output)["default"] == "one"
    assert cli("status", "-s", str(a)).output.endswith("nothing to commit: the store equals HEAD\n")


def test_teammates_share_a_store_through_push_and_pull(pushed, tmp_path: Path) -> None:
    """A pushes, B clones; B commits and pushes, A pulls; A commits and pushes, B pulls: every
    commit checks out byte for byte the same in both."""
    a, remote, ids = pushed
    b = tmp_path / "b.h5"
    assert cli("clone", str(remote), str(b)).exit_code == 0
    rng = np.random.default_rng(3)
    with Repository.open(b) as repo:
        with repo.transaction("B: new birds") as tx:
            g = tx.create_group("/train/bird")
            g.attrs["label"] = "bird"
            g.create_dataset("images", data=rng.integers(0, 255, (12, 16, 16, 3), dtype="u1"),
                             chunks=(8, 16, 16, 3))
            tx["/names"].append(np.array(["from b"], dtype=object))
        repo.create_tag("birds")
    assert cli("push", "origin", "main", "birds", "-s", str(b)).exit_code == 0
    r = cli("status", "-s", str(a))
    assert r.output.endswith("nothing to commit: the store equals HEAD\n")
    r = cli("pull", "-s", str(a))
    assert r.exit_code == 0, r.output
    assert "Fetched 1 commit(s)" in r.output and "New tag birds" in r.output, r.output
    assert "Fast-forwarded" in r.output, r.output
    assert digest(a) == digest(b)
    assert cli("status", "-s", str(a)).output.endswith("nothing to commit: the store equals HEAD\n")
    with Repository.open(a) as repo:
        with repo.transaction("A: fewer rows, a new attribute") as tx:
            tx["/table"].resize(300)
            tx["/train/cat"].attrs["checked"] = True
    assert cli("push", "-s", str(a)).exit_code == 0
    r = cli("pull", "--json", "-s", str(b))
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["commits"] == 1 and out["pulled"] is not None
    again = json.loads(cli("pull", "--json", "-s", str(b)).output)
    assert again["commits"] == 0 and again["bytes"] == 0 and "up to date" in again["note"]
    all_ids = [c["id"] for c in reversed(json.loads(cli("log", "--json", "-s", str(a)).output))]
    assert [c["id"] for c in reversed(json.loads(cli("log", "--json", "-s", str(b)).output))] == all_ids
    assert checkouts(a, all_ids) == checkouts(b, all_ids)
    for s in (a, b):
        assert cli("verify", "-s", str(s)).exit_code == 0


def test_pull_refuses_uncommitted_changes_and_diverged_histories(pushed, tmp_path: Path) -> None:
    a, remote, ids = pushed
    b = tmp_path / "b.h5"
    assert cli("clone", str(remote), str(b)).exit_code == 0
    with Repository.open(a) as repo, repo.transaction("A") as tx:
        tx["/table"].append(np.zeros((3, 4)))
    assert cli("push", "-s", str(a)).exit_code == 0
    with h5py.File(b, "a") as f:  # an edit not committed yet: rows appended
        f["table"].resize(f["table"].shape[0] + 2, axis=0)
        f["table"][-2:] = -1.0
    before = digest(b)
    r = cli("pull", "-s", str(b))
    assert r.exit_code == 1 and "uncommitted change" in r.output, r.output
    assert digest(b) == before  # the edit is still there; the commits were fetched
    assert cli("commit", "-m", "B's edit", "-s", str(b)).exit_code == 0
    r = cli("pull", "-s", str(b))
    assert r.exit_code == 1 and "have diverged" in r.output, r.output
    assert len(r.output.strip().splitlines()) == 1
    with Repository.open(b, mode="r") as repo:
        assert repo.head.message == "B's edit"  # type: ignore[union-attr]


@pytest.mark.parametrize("point", ["fetch.pack-read", "fetch.frame-written", "intent.flushed",
                                   "checkout.restored", "op.flushed"])
def test_a_killed_pull_leaves_the_store_as_it_was_or_updated(pushed, tmp_path: Path,
                                                              point: str) -> None:
    a, remote, ids = pushed
    b = tmp_path / "b.h5"
    assert cli("clone", str(remote), str(b)).exit_code == 0
    old = digest(b)
    with Repository.open(a) as repo:
        for i in range(2):
            with repo.transaction(f"A {i}") as tx:
                tx["/table"].append(np.full((130, 4), float(i)))
    assert cli("push", "-s", str(a)).exit_code == 0
    r = run("pull", "-s", str(b), crash=point)
    assert r.returncode == -signal.SIGKILL, r.stderr
    st = run("status", "--json", "-s", str(b))
    assert st.returncode == 0, st.stderr
    assert json.loads(st.stdout)["clean"]
    assert digest(b) in (old, digest(a))
    assert run("verify", "-s", str(b)).returncode == 0
    assert json.loads(st.stdout)["branch"] == "main", st.stdout  # never left detached
    r = run("pull", "-s", str(b))
    assert r.returncode == 0, r.stderr
    assert digest(b) == digest(a)
    all_ids = [c["id"] for c in reversed(json.loads(cli("log", "--json", "-s", str(a)).output))]
    assert checkouts(b, all_ids) == checkouts(a, all_ids)


def test_many_packs_in_flight_give_the_same_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Small packs: push sends many at once (threads), clone and fetch read ahead; the result
    is the same store, and every pack on the remote is indexed."""
    import h5vc.remote.sync as sync

    monkeypatch.setattr(sync, "PACK_BYTES", 4 << 10)
    a, remote = tmp_path / "a.h5", tmp_path / "remote"
    ids = make_store(a)
    with Repository.open(a) as repo:
        repo.set_remote("origin", str(remote))
        report = push(repo)
    assert report.packs > 2 * sync.WORKERS, report
    packs = sorted(p.name for p in (remote / "packs").iterdir())
    assert len(packs) == 2 * report.packs and all(
        (remote / "packs" / (p[:-5] + ".idx")).exists() for p in packs if p.endswith(".pack"))
    b = tmp_path / "b.h5"
    clone(str(remote), b)
    assert digest(b) == digest(a)
    with Repository.open(a) as repo:
        with repo.transaction("more") as tx:
            tx["/table"].append(np.random.default_rng(3).random((3000, 4)))
        push(repo)
    from h5vc.remote import pull

    with Repository.open(b) as repo:
        pull(repo)
    assert digest(b) == digest(a)
    all_ids = [c["id"] for c in reversed(json.loads(cli("log", "--json", "-s", str(a)).output))]
    assert all_ids[:3] == ids
    assert checkouts(b, all_ids) == checkouts(a, all_ids)


def test_progress_bar_on_a_terminal_only(pushed, tmp_path: Path) -> None:
    """A bar with bytes, rate and ETA on stderr when it is a terminal; none with -q, none when
    stderr is a pipe."""
    import pty

    a, remote, _ids = pushed
    with Repository.open(a) as repo:
        with repo.transaction("more") as tx:
            tx["/table"].append(np.random.default_rng(4).random((20000, 4)))

    def on_tty(*args: str) -> tuple[int, str]:
        master, slave = pty.openpty()
        p = subprocess.Popen([*H5VC, *args], stdout=subprocess.PIPE, stderr=slave)
        os.close(slave)
        chunks = []
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
        p.wait()
        os.close(master)
        return p.returncode, b"".join(chunks).decode(errors="replace")

    rc, err = on_tty("push", "-s", str(a))
    assert rc == 0, err
    assert "push" in err and "KiB" in err and "B/s" in err and "100%" in err, err
    rc, err = on_tty("clone", "-q", str(remote), str(tmp_path / "q.h5"))
    assert rc == 0 and err == "", err
    r = run("clone", str(remote), str(tmp_path / "p.h5"))
    assert r.returncode == 0 and r.stderr == "", r.stderr


def test_the_remote_backs_up_rows_lost_locally(pushed, tmp_path: Path) -> None:
    """Committed rows another program overwrote in place (so h5vc could not preserve them) come
    back from the default remote, checked: in a view of a store opened read-only, and in a
    checkout. Without a remote the same reads fail, naming the rows and the fix."""
    a, remote, ids = pushed
    with h5py.File(a, "r") as f:
        want = f["table"][()]
    bare = tmp_path / "bare.h5"
    import shutil

    shutil.copyfile(a, bare)
    for store in (a, bare):
        with h5py.File(store, "r+") as f:  # another program rewrites committed rows
            f["table"][10:20] = -1.0
    assert cli("remote", "remove", "origin", "-s", str(bare)).exit_code == 0

    with Repository.open(a, mode="r") as repo:
        got = repo.at("main")["/table"][()]
        assert np.array_equal(got, want)
        assert repo.backup_fetched >= 1
    with Repository.open(bare, mode="r") as repo:
        with pytest.raises(IntegrityError, match="no longer in the store.*h5vc remote add"):
            repo.at("main")["/table"][()]

    # a damaged copy on the remote is refused, never used
    damaged, d = tmp_path / "damaged-remote", tmp_path / "d.h5"
    shutil.copytree(remote, damaged)
    for p in (damaged / "packs").glob("*.pack"):
        raw = bytearray(p.read_bytes())
        for i in range(0, len(raw), 64):
            raw[i] ^= 0xFF
        p.write_bytes(bytes(raw))
    shutil.copyfile(a, d)
    assert cli("remote", "add", "origin", str(damaged), "-s", str(d)).exit_code == 0
    with Repository.open(d, mode="r") as repo:
        with pytest.raises(IntegrityError, match="remote origin.*damaged"):
            repo.at("main")["/table"][()]

    # discard the outside change, leave, come back: the checkout fetches what it lacks
    for store in (a, bare):
        r = cli("checkout", "--force", ids[0], "-s", str(store))
        assert r.exit_code == 0, r.output
    r = run("checkout", "main", "-s", str(a))
    assert r.returncode == 0, r.stderr
    assert "fetched 1 committed range(s)" in r.stderr and "remote origin" in r.stderr, r.stderr
    with h5py.File(a, "r") as f:
        assert np.array_equal(f["table"][()], want)
    assert cli("verify", "-s", str(a)).exit_code == 0
    r = cli("checkout", "main", "-s", str(bare))
    assert r.exit_code == 1 and "no longer in the store" in r.output, r.output



def test_a_store_rewritten_whole_is_adopted_on_top_of_its_history(pushed, tmp_path: Path) -> None:
    """Another program rewrites the store with h5py.File(path, "w"): the history inside is
    gone, the remote still has it. status says so and how to fix it; adopt records the new
    file as a commit on top of the remote's history, leaving its content as it is."""
    a, remote, ids = pushed
    before = checkouts(a, ids)
    assert cli("pointer", "-s", str(a)).exit_code == 0
    ptr = a.with_name(a.name + ".h5vc")
    assert f'remote = "{remote}"' in ptr.read_text()
    with h5py.File(a, "w") as f:  # rewritten whole by another program
        f.create_dataset("table", data=np.arange(40.0).reshape(10, 4), maxshape=(None, 4))
        f.create_group("fresh").attrs["note"] = "made elsewhere"
    new = digest(a)
    raw = a.read_bytes()

    r = run("status", "-s", str(a))
    assert r.returncode == 1 and "no longer holds its h5vc history" in r.stderr, r.stderr
    assert "h5vc adopt" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    r = subprocess.run([*H5VC, "status"], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 1 and "no longer holds its h5vc history" in r.stderr, r.stderr

    # killed just before the new file takes the old one's name: nothing changed
    r = run("adopt", "-s", str(a), crash="adopt.before-rename")
    assert r.returncode == -signal.SIGKILL
    assert a.read_bytes() == raw
    r = run("adopt", "-s", str(a), "-m", "rewritten by the pipeline")
    assert r.returncode == 0, r.stderr
    assert f"on top of {ids[-1][:10]}" in r.stdout, r.stdout
    assert not list(tmp_path.glob("a.h5.h5vc-adopt*"))
    assert digest(a) == new  # the content is as the other program left it
    log = json.loads(cli("log", "--json", "-s", str(a)).output)
    assert [c["id"] for c in reversed(log)][:3] == ids and log[0]["message"] == "rewritten by the pipeline"
    assert log[0]["parents"] == [ids[-1]]
    st = json.loads(cli("status", "--json", "-s", str(a)).output)
    assert st["clean"] and st["branch"] == "main"
    assert f'commit = "{log[0]["id"]}"' in ptr.read_text()
    assert cli("verify", "-s", str(a)).exit_code == 0
    assert {c: d for c, d in checkouts(a, ids).items()} == before
    # shared again: a push fast-forwards the remote's main onto the adopted commit
    assert cli("push", "-s", str(a)).exit_code == 0
    from h5vc.remote import RemoteStorage

    assert RemoteStorage(str(remote)).branches()["main"][1] == log[0]["id"]

    # bad input: one line, nothing changed
    raw = a.read_bytes()
    r = run("adopt", "-s", str(a))
    assert r.returncode == 1 and "holds an h5vc history already" in r.stderr, r.stderr
    assert a.read_bytes() == raw
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = np.arange(3)
    r = run("adopt", "-s", str(other))
    assert r.returncode == 1 and "--remote URL" in r.stderr, r.stderr


def test_a_killed_clone_resumes_without_fetching_again(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A clone killed after some packs: the next clone keeps what they brought (it fetches
    fewer bytes) and still makes the same store; a damaged leftover is started over."""
    import h5vc.remote.sync as sync

    monkeypatch.setattr(sync, "PACK_BYTES", 4 << 10)
    a, remote = tmp_path / "a.h5", tmp_path / "remote"
    make_store(a)
    with Repository.open(a) as repo:
        repo.set_remote("origin", str(remote))
        assert push(repo).packs > 8
    whole = json.loads(run("clone", "--json", str(remote), str(tmp_path / "w.h5")).stdout)
    assert whole["resumed"] == 0

    b = tmp_path / "b.h5"
    r = run("clone", str(remote), str(b), crash="clone.pack-read:6")
    assert r.returncode == -signal.SIGKILL
    assert not b.exists() and (tmp_path / "b.h5.h5vc-clone").exists()
    r = run("clone", "--json", str(remote), str(b))
    assert r.returncode == 0, r.stderr
    again = json.loads(r.stdout)
    assert again["resumed"] >= 4 and again["bytes"] < whole["bytes"], (again, whole)
    assert digest(b) == digest(a) and not list(tmp_path.glob("b.h5.*"))
    assert run("verify", "-s", str(b)).returncode == 0

    # the leftover damaged: it does not hold up, and the clone starts over
    c = tmp_path / "c.h5"
    r = run("clone", str(remote), str(c), crash="clone.pack-read:6")
    left = tmp_path / "c.h5.h5vc-clone"
    raw = bytearray(left.read_bytes())
    for i in range(4096, len(raw), 997):
        raw[i] ^= 0x5A
    left.write_bytes(bytes(raw))
    r = run("clone", str(remote), str(c))
    assert r.returncode == 0, r.stderr
    assert digest(c) == digest(a) and run("verify", "-s", str(c)).returncode == 0


def test_a_partial_clone_holds_only_the_selection(pushed, tmp_path: Path) -> None:
    """clone --select: every commit, the rows of the selected paths only; status is clean,
    commits and checkouts work on what it holds, reads of the rest come from the remote, and
    pull --select brings more in; nothing outside the selection can be committed."""
    a, remote, ids = pushed
    b = tmp_path / "b.h5"
    full = json.loads(run("clone", "--json", str(remote), str(tmp_path / "full.h5")).stdout)
    r = run("clone", "--json", str(remote), str(b), "--select", "/train/cat")
    assert r.returncode == 0, r.stderr
    part = json.loads(r.stdout)
    assert part["commits"] == full["commits"] and part["objects"] < full["objects"]
    with h5py.File(b, "r") as f, h5py.File(a, "r") as fa:
        assert sorted(f["train"].keys()) == ["cat"] and "table" not in f
        assert np.array_equal(f["train/cat/images"][()], fa["train/cat/images"][()])
        assert f["train"].attrs["split"] == "v2"  # a group on the way keeps its attributes
    st = json.loads(run("status", "--json", "-s", str(b)).stdout)
    assert st["clean"] and st["selection"] == ["/train/cat"], st
    r = run("status", "-s", str(b))
    assert "Partial store: holds /train/cat" in r.stdout, r.stdout
    assert run("verify", "-s", str(b)).returncode == 0

    # reads of what it lacks come from the remote, at any revision
    with Repository.open(b, mode="r") as repo, h5py.File(a, "r") as fa:
        assert np.array_equal(repo.at("main")["/table"][()], fa["table"][()])
    # checkouts move what it holds, and leave the rest out
    for cid in ids:
        r = run("checkout", cid, "-s", str(b))
        assert r.returncode == 0, r.stderr
        with h5py.File(b, "r") as f:
            assert "table" not in f and "dog" not in f["train"]
    assert run("checkout", "main", "-s", str(b)).returncode == 0
    # a commit of what it holds; a commit outside it is refused, nothing changed
    with h5py.File(b, "r+") as f:
        ds = f["train/cat/images"]
        ds.resize(ds.shape[0] + 2, axis=0)
        ds[-2:] = 7
    r = run("commit", "-m", "two cats", "-s", str(b))
    assert r.returncode == 0, r.stderr
    with h5py.File(b, "r+") as f:
        f.create_dataset("table", data=np.zeros((2, 4)))
    r = run("commit", "-m", "clobber", "-s", str(b))
    assert r.returncode == 1 and "not in this partial store" in r.stderr, r.stderr
    with h5py.File(b, "r+") as f:
        del f["table"]
    # the commit goes up and comes down to a full store, with the lacking paths intact
    assert run("push", "-s", str(b)).returncode == 0
    with Repository.open(a) as repo:
        from h5vc.remote import pull

        pull(repo)
    with h5py.File(a, "r") as fa:
        assert (fa["train/cat/images"][-2:] == 7).all() and "table" in fa
    # pull --select brings the rest of /train in, for every commit
    r = run("pull", "--select", "/train/dog", "-s", str(b))
    assert r.returncode == 0, r.stderr
    with h5py.File(b, "r") as f, h5py.File(a, "r") as fa:
        assert np.array_equal(f["train/dog/images"][()], fa["train/dog/images"][()])
    st = json.loads(run("status", "--json", "-s", str(b)).stdout)
    assert st["clean"] and st["selection"] == ["/train/cat", "/train/dog"], st
    assert run("verify", "-s", str(b)).returncode == 0
    r = run("checkout", ids[0], "-s", str(b))
    assert r.returncode == 0, r.stderr
    with h5py.File(b, "r") as f:
        assert f["train/dog/images"].shape[0] == 40  # as the first commit had it
    assert run("checkout", "main", "-s", str(b)).returncode == 0
    # new commits outside the selection come down as history only
    with Repository.open(a) as repo:
        with repo.transaction("more table") as tx:
            tx["/table"].append(np.full((50, 4), 9.0))
        push(repo)
    r = run("pull", "-s", str(b))
    assert r.returncode == 0, r.stderr
    st = json.loads(run("status", "--json", "-s", str(b)).stdout)
    assert st["clean"] and st["head"] == json.loads(run("status", "--json", "-s", str(a)).stdout)["head"]
    with Repository.open(b, mode="r") as repo, h5py.File(a, "r") as fa:
        assert "table" not in repo.file
        assert np.array_equal(repo.at("main")["/table"][()], fa["table"][()])
    r = run("clone", str(remote), str(tmp_path / "x.h5"), "--select", "/nowhere")
    assert r.returncode == 1 and "has no /nowhere" in r.stderr, r.stderr


@pytest.mark.parametrize("point", ["fetch.pack-read", "intent.flushed", "restore.created",
                                   "op.flushed"])
def test_a_killed_widening_leaves_the_store_as_it_was_or_widened(pushed, tmp_path: Path,
                                                                 point: str) -> None:
    a, remote, _ids = pushed
    b = tmp_path / "b.h5"
    assert run("clone", str(remote), str(b), "--select", "/train/cat").returncode == 0
    r = run("pull", "--select", "/train/dog", "-s", str(b), crash=point)
    assert r.returncode == -signal.SIGKILL, r.stderr
    st = run("status", "--json", "-s", str(b))
    assert st.returncode == 0, st.stderr
    got = json.loads(st.stdout)
    assert got["clean"] and got["selection"] in (["/train/cat"], ["/train/cat", "/train/dog"])
    assert run("verify", "-s", str(b)).returncode == 0
    if got["selection"] == ["/train/cat"]:
        r = run("pull", "--select", "/train/dog", "-s", str(b))
        assert r.returncode == 0, r.stderr
    with h5py.File(b, "r") as f, h5py.File(a, "r") as fa:
        assert np.array_equal(f["train/dog/images"][()], fa["train/dog/images"][()])
