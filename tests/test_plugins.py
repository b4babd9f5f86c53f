"""Plugins register importers through the `h5vc` entry-point group, as a third party would."""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from h5vc import PluginError, Repository, plugins
from h5vc.cli import app

ROOT = Path(__file__).resolve().parent.parent


def _doc_example() -> str:
    """The complete plugin in docs/plugins.md: the test runs exactly what the guide shows."""
    text = (ROOT / "docs" / "plugins.md").read_text()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)[0]


PLUGIN = _doc_example()


@pytest.fixture
def third_party(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A package installed the way pip leaves one: a module and its dist-info with entry points."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "h5vc_lines.py").write_text(textwrap.dedent(PLUGIN))
    info = site / "h5vc_lines-1.2.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: h5vc-lines\nVersion: 1.2\n")
    (info / "entry_points.txt").write_text("[h5vc]\nlines = h5vc_lines\n")
    monkeypatch.syspath_prepend(str(site))
    plugins.reset()
    yield site
    sys.modules.pop("h5vc_lines", None)
    plugins.reset()


def test_third_party_importer_is_found_and_used(third_party: Path, tmp_path: Path) -> None:
    table = plugins.importers()
    info = table["lines"]
    assert info.suffixes == (".txt", ".log") and info.distribution == "h5vc-lines"
    assert info.version == "1.2"
    assert "npy" in table  # the built-in ones are plugins of the same kind
    r = CliRunner().invoke(app, ["plugins"])
    assert any(line.startswith("lines ") and "h5vc-lines 1.2" in line for line in r.output.splitlines())

    notes = tmp_path / "notes"
    (notes / "day1").mkdir(parents=True)
    (notes / "day1" / "a.txt").write_text("hello\nworld\n")
    (notes / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    store = tmp_path / "s.h5"
    with Repository.init(store) as repo:
        r = repo.add([notes], to="/notes", message="notes", skip_bad=True)
        assert r.imported == ["notes/day1/a.txt"]
        assert len(r.bad) == 1 and r.bad[0][0] == "notes/latin1.txt"
        assert r.bad[0][1].startswith("not UTF-8 text")
        assert [x.decode() for x in repo.file["/notes/day1/lines"][()]] == ["hello", "world"]


def test_choosing_an_importer_by_name(third_party: Path, tmp_path: Path) -> None:
    (tmp_path / "data.log").write_text("a\nb\n")
    with Repository.init(tmp_path / "s.h5") as repo:
        r = repo.add([tmp_path / "data.log"], to="/l", message="m", importer="lines")
        assert r.rows == {"/l/lines": 2}
        with pytest.raises(Exception, match="no importer named 'nope'"):
            repo.add([tmp_path / "data.log"], to="/l", message="m", importer="nope")


def test_a_broken_plugin_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "h5vc_broken.py").write_text("raise RuntimeError('boom')\n")
    info = site / "h5vc_broken-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: h5vc-broken\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[h5vc]\nbroken = h5vc_broken\n")
    monkeypatch.syspath_prepend(str(site))
    plugins.reset()
    try:
        with pytest.raises(PluginError, match="failed to load: boom"):
            plugins.importers()
        r = CliRunner().invoke(app, ["plugins"])
        assert r.exit_code == 1 and r.output.startswith("Error: an h5vc plugin failed to load")
    finally:
        sys.modules.pop("h5vc_broken", None)
        plugins.reset()
