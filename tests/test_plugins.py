"""Plugins register importers through the `h5vc` entry-point group, as a third party would."""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from h5vc import PluginError, Repository
from h5vc.cli import app
from h5vc.importing import registry as plugins

ROOT = Path(__file__).resolve().parent.parent


def _doc_example() -> str:
    """The complete plugin in docs/plugins.md: the test runs exactly what the guide shows."""
    text = (ROOT / "docs" / "plugins.md").read_text()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)[0]


PLUGIN = _doc_example()


def install_fake(site: Path, module: str, dist: str, version: str, source: str,
                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A package as pip leaves one: a module, and a dist-info declaring its h5vc entry point."""
    site.mkdir(exist_ok=True)
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{module}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[h5vc]\n{module.removeprefix('h5vc_')} = {module}\n")
    monkeypatch.syspath_prepend(str(site))
    plugins.reset()


@pytest.fixture
def third_party(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    site = tmp_path / "site"
    install_fake(site, "h5vc_lines", "h5vc-lines", "1.2", PLUGIN, monkeypatch)
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
    install_fake(tmp_path / "site", "h5vc_broken", "h5vc-broken", "0.1", "raise RuntimeError('boom')\n",
                 monkeypatch)
    try:
        with pytest.raises(PluginError, match="failed to load: boom"):
            plugins.importers()
        r = CliRunner().invoke(app, ["plugins"])
        assert r.exit_code == 1 and r.output.startswith("Error: an h5vc plugin failed to load")
    finally:
        sys.modules.pop("h5vc_broken", None)
        plugins.reset()


class _Streaming:
    """An importer that yields a file in two batches and finds it bad after the first."""

    name = "stream"
    suffixes = (".st",)
    description = "test importer"

    def read(self, sources, ctx):
        from h5vc.importing import Batch

        for src in sources:
            text = src.path.read_text()
            yield Batch({"x": np.arange(3)}, table=True)  # first half, no sources yet
            if "bad" in text:
                ctx.bad(src, "turned out bad halfway")
                continue
            yield Batch({"x": np.arange(3, 6)}, sources=[src], table=True)


@pytest.fixture
def streaming():
    from h5vc import hookimpl

    class Plugin:
        @hookimpl
        def register_importers(self, register):
            register(_Streaming())

    plugins.reset()
    pm = plugins.get_plugin_manager()
    pm.register(Plugin(), name="streaming-test")
    yield
    plugins.reset()


def test_rows_of_a_file_found_bad_halfway_are_taken_back(streaming, tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.st").write_text("bad")
    (tmp_path / "in" / "b.st").write_text("good")
    with Repository.init(tmp_path / "s.h5") as repo:
        r = repo.add([tmp_path / "in"], to="/p", message="m", skip_bad=True)
        assert [p for p, _ in r.bad] == ["in/a.st"] and r.imported == ["in/b.st"]
        assert repo.file["/p/x"][()].tolist() == [0, 1, 2, 3, 4, 5]  # only b's rows
        assert r.rows == {"/p/x": 6}
        assert repo.status(verify=True).clean
        (tmp_path / "in" / "c.st").write_text("bad")
        with pytest.raises(Exception, match="every new file was skipped as bad"):
            repo.add([tmp_path / "in" / "c.st"], to="/q", message="m", skip_bad=True)
        assert "/q" not in repo.file


def test_a_table_that_lost_a_column_is_refused(tmp_path: Path) -> None:
    from h5vc.importing.pipeline import Batch, _write_batch

    with Repository.init(tmp_path / "s.h5") as repo:
        with repo.transaction("t") as tx:
            res = type("R", (), {"rows": {}, "created": []})()
            _write_batch(tx, "/m", Batch({"a": np.arange(2), "b": np.arange(2)}, table=True),
                         "gzip", {}, res, [])
        with pytest.raises(Exception, match=r"/m holds the columns a, b; the new data lacks b"):
            with repo.transaction("t2") as tx:
                _write_batch(tx, "/m", Batch({"a": np.arange(1)}, table=True), "gzip", {}, res, [])
        assert repo.file["/m/a"].shape == (2,) and repo.status().clean


OPTIONS_PLUGIN = '''
import numpy as np
from h5vc import Batch, Importer, ImporterOption, hookimpl


class WordsImporter(Importer):
    name = "words"
    suffixes = (".words",)
    description = "one row per word"
    options = (
        ImporterOption("max-words", "Keep at most this many words per file.", kind="int",
                       metavar="N"),
        ImporterOption("upper", "Upper-case every word.", kind="flag"),
    )

    def read(self, sources, ctx):
        limit = ctx.options.get("max_words")
        for src in sources:
            words = src.path.read_text().split()[:limit]
            if ctx.options.get("upper"):
                words = [w.upper() for w in words]
            yield Batch({"words": np.array(words, dtype="S16")}, group=ctx.group_of(src),
                        sources=[src])


@hookimpl
def register_importers(register):
    register(WordsImporter())
'''


@pytest.fixture
def words(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    install_fake(tmp_path / "site", "h5vc_words", "h5vc-words", "0.3", OPTIONS_PLUGIN, monkeypatch)
    yield
    sys.modules.pop("h5vc_words", None)
    plugins.reset()


def test_an_importer_declares_its_own_options(words, tmp_path: Path) -> None:
    import json

    runner = CliRunner()
    r = runner.invoke(app, ["add", "--help"], env={"COLUMNS": "200"})
    assert r.exit_code == 0
    assert "--max-words" in r.output and "Keep at most this many words" in r.output
    assert "(the words importer)" in r.output
    assert "--resize" in r.output and "(the images importer)" in r.output  # the built-in ones too
    r = runner.invoke(app, ["plugins", "--json"])
    opts = {i["name"]: i["options"] for i in json.loads(r.output)}
    assert [o["name"] for o in opts["words"]] == ["--max-words", "--upper"]
    assert opts["words"][0]["kind"] == "int" and opts["words"][0]["key"] == "max_words"
    assert [o["name"] for o in opts["csv"]] == ["--category-column"]

    src = tmp_path / "in" / "animals"
    src.mkdir(parents=True)
    (src / "a.words").write_text("cat dog emu fox")
    store = tmp_path / "s.h5"
    Repository.init(store, message="init", pointer=False).close()
    r = runner.invoke(app, ["add", str(tmp_path / "in"), "--to", "/w", "-s", str(store),
                            "--max-words", "2", "--upper"])
    assert r.exit_code == 0, r.output
    with Repository.open(store, mode="r") as repo:
        assert repo.file["/w/animals/words"][()].tolist() == [b"CAT", b"DOG"]
    r = runner.invoke(app, ["add", str(tmp_path / "in"), "-s", str(store), "--max-words", "x"])
    assert r.exit_code == 2 and "max-words" in r.output  # typed: click says what is wrong


def test_an_option_that_clashes_with_h5vc_own_is_refused(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    bad = OPTIONS_PLUGIN.replace('ImporterOption("upper"', 'ImporterOption("to"')
    install_fake(tmp_path / "site", "h5vc_clash", "h5vc-clash", "0.1", bad, monkeypatch)
    try:
        store = tmp_path / "s.h5"
        Repository.init(store, message="init", pointer=False).close()
        (tmp_path / "a.words").write_text("x")
        r = CliRunner().invoke(app, ["add", str(tmp_path / "a.words"), "-s", str(store)])
        assert r.exit_code == 1
        assert "declares --to, which is h5vc's own option" in r.output
    finally:
        sys.modules.pop("h5vc_clash", None)
        plugins.reset()
