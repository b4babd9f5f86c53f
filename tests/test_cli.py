"""The CLI through CliRunner (exit codes and exact output) and one real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from h5vc import Repository
from h5vc.cli import app

runner = CliRunner()


def h5vc(*args: str, cwd: Path | None = None):
    old = os.getcwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        return runner.invoke(app, list(args))
    finally:
        os.chdir(old)


def test_user_story_end_to_end(tmp_path: Path) -> None:
    store = tmp_path / "data.h5"
    r = h5vc("init", str(store))
    assert r.exit_code == 0, r.output
    assert r.output.startswith(f"Created store {store} on branch main, commit ")
    # a pipeline writes with plain h5py
    with h5py.File(store, "a") as f:
        f.create_dataset("sensors/a", data=np.zeros((1000, 3)), maxshape=(None, 3), chunks=(500, 3))
        f["sensors"].attrs["units"] = "V"
    r = h5vc("status", cwd=tmp_path)
    assert r.exit_code == 0
    assert r.output.splitlines() == [
        f"On branch main, at {Repository.open(store, mode='r').head.short_id}",
        "Uncommitted changes (record them with `h5vc commit -m MESSAGE`):",
        "  created group    /sensors",
        "  attr set         /sensors@units = 'V'",
        "  created dataset  /sensors/a",
        "  +1,000 rows      /sensors/a (0 -> 1,000)",
    ]
    r = h5vc("commit", "-m", "day 1", cwd=tmp_path)
    assert r.exit_code == 0 and "] day 1: +1,000 rows /sensors/a, 2 created, 1 attr" in r.output
    with h5py.File(store, "a") as f:
        f["sensors/a"].resize((2000, 3))
        f["sensors/a"][1000:] = 1
        f["sensors"].attrs["units"] = "mV"
    r = h5vc("status", cwd=tmp_path)
    assert "  +1,000 rows      /sensors/a (1,000 -> 2,000)" in r.output
    assert "  attr changed     /sensors@units: 'V' -> 'mV'" in r.output
    assert h5vc("commit", "-m", "day 2", cwd=tmp_path).exit_code == 0
    r = h5vc("log", cwd=tmp_path)
    lines = r.output.splitlines()
    assert len(lines) == 3
    assert lines[0].endswith("day 2  (+1,000 rows /sensors/a, 1 attr)")
    assert "Test Author" in lines[0]
    r = h5vc("show", "HEAD~1", cwd=tmp_path)
    assert r.exit_code == 0 and "    day 1" in r.output and "created dataset  /sensors/a" in r.output
    r = h5vc("checkout", "HEAD~1", cwd=tmp_path)
    assert r.exit_code == 0 and "detached HEAD at" in r.output
    with h5py.File(store, "r") as f:
        assert f["sensors/a"].shape == (1000, 3) and f["sensors"].attrs["units"] == "V"
    r = h5vc("checkout", "main", cwd=tmp_path)
    assert r.exit_code == 0 and r.output.startswith("branch main at")
    with h5py.File(store, "r") as f:
        assert f["sensors/a"].shape == (2000, 3) and f["sensors/a"][1500, 0] == 1
    assert h5vc("tag", "v1", cwd=tmp_path).exit_code == 0
    assert h5vc("branch", "exp", "v1", cwd=tmp_path).exit_code == 0
    assert h5vc("checkout", "exp", cwd=tmp_path).exit_code == 0
    r = h5vc("branch", cwd=tmp_path)
    assert r.output.splitlines()[0].startswith("* exp ")
    r = h5vc("tag", "--json", cwd=tmp_path)
    assert list(json.loads(r.output)) == ["v1"]


def test_json_outputs(tmp_path: Path, sensor_file: Path) -> None:
    Repository.init(sensor_file).close()
    r = h5vc("log", "--json", "-s", str(sensor_file))
    data = json.loads(r.output)
    assert data[0]["message"] == "init" and len(data[0]["id"]) == 32
    r = h5vc("status", "--json", "-s", str(sensor_file))
    assert json.loads(r.output)["clean"] is True
    r = h5vc("show", "--json", "-s", str(sensor_file))
    assert {c["op"] for c in json.loads(r.output)["changes"]} >= {"add_dataset", "rows", "attr"}


def test_log_limit(tmp_path: Path) -> None:
    store = tmp_path / "s.h5"
    with Repository.init(store) as repo:
        for i in range(5):
            repo.commit(f"c{i}", allow_empty=True)
    r = h5vc("log", "-n", "2", "-s", str(store))
    assert [line.split("  ")[3] for line in r.output.splitlines()] == ["c4", "c3"]


def test_store_discovery_errors(tmp_path: Path) -> None:
    r = h5vc("status", cwd=tmp_path)
    assert r.exit_code == 1
    assert r.output.startswith("Error: no h5vc store in") and "h5vc init" in r.output
    Repository.init(tmp_path / "a.h5").close()
    Repository.init(tmp_path / "b.h5").close()
    r = h5vc("status", cwd=tmp_path)
    assert r.exit_code == 1 and "several stores" in r.output and "a.h5, b.h5" in r.output


def test_checkout_force_lists_discarded(tmp_path: Path, sensor_file: Path) -> None:
    Repository.init(sensor_file).close()
    with h5py.File(sensor_file, "a") as f:
        f["/sensors/b"].resize((33,))
    r = h5vc("checkout", "HEAD", "-s", str(sensor_file))
    assert r.exit_code == 1 and "uncommitted" in r.output and "--force" in r.output
    r = h5vc("checkout", "HEAD", "--force", "-s", str(sensor_file))
    assert r.exit_code == 0
    assert r.output.splitlines()[:2] == ["Discarded uncommitted changes:",
                                         "  +3 rows          /sensors/b (30 -> 33)"]


def test_usage_error_exit_code_2() -> None:
    r = h5vc("nonsense")
    assert r.exit_code == 2


def test_real_subprocess(tmp_path: Path) -> None:
    store = tmp_path / "p.h5"
    exe = [sys.executable, "-m", "h5vc"]
    out = subprocess.run([*exe, "init", str(store)], capture_output=True, text=True, check=True)
    assert "Created store" in out.stdout
    with h5py.File(store, "a") as f:
        f["x"] = np.arange(3)
    subprocess.run([*exe, "commit", "-m", "x", "-s", str(store)], check=True, capture_output=True)
    out = subprocess.run([*exe, "log", "-s", str(store)], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines()[0].endswith("x  (+3 rows /x, 1 created)")
    bad = subprocess.run([*exe, "checkout", "nope", "-s", str(store)], capture_output=True, text=True)
    assert bad.returncode == 1
    assert bad.stderr.strip().startswith("Error: unknown revision 'nope'")
    assert "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("cmd", [["--help"], ["status", "--help"], ["checkout", "-h"]])
def test_help(cmd: list[str]) -> None:
    r = h5vc(*cmd)
    assert r.exit_code == 0 and "Usage" in r.output


def test_cli_import_is_light() -> None:
    code = "import sys, h5vc.cli; print(sorted(m for m in ('h5py','numpy','git') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_output_cut_short_by_the_reader_ends_quietly(tmp_path: Path) -> None:
    """`h5vc ls | head -n 1`: the reader leaves early; no error line, no traceback."""
    import h5py
    import numpy as np

    store = tmp_path / "many.h5"
    with h5py.File(store, "w") as f:
        for i in range(3000):
            f.create_dataset(f"g{i:04d}", data=np.arange(3))
    Repository.init(store, message="init", pointer=False).close()
    p = subprocess.Popen([sys.executable, "-m", "h5vc", "ls", "-s", str(store)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.stdout is not None and p.stderr is not None
    first = p.stdout.readline()
    p.stdout.close()  # as head does after one line
    err = p.stderr.read().decode()
    assert p.wait(timeout=60) == 141
    assert first.startswith(b"/") and err == "", err
