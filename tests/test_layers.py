"""The package's imports only go down: every module belongs to a layer (docs/design.md,
"Modules and their layers"), imports only modules of its own layer or of layers below, and no
module reaches, directly or through others, a module that imports it.

Every import counts: at the top of a module, inside a function (a lazy import for start-up
speed is still a dependency), and under ``TYPE_CHECKING``. The graph is read from the source
with ``ast``, so the test needs nothing installed and names each cycle it finds.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "h5vc"


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The h5vc modules that module ``name`` imports, anywhere in its source."""
    is_pkg = path.name == "__init__.py"
    here = name if is_pkg else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            # `from . import x` imports the submodule x when there is one, else the package
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in known else mod
                       for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]  # h5vc.engine.rows.as_0d -> h5vc.engine.rows
            if t and t != name:
                out.add(t)
    return out


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {m: imports_of(m, p, known) for m, p in mods.items()}


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(g[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return found


def test_the_graph_is_read() -> None:
    g = graph()
    # a few edges that must be seen, or the test would pass for a reader that sees nothing
    assert "h5vc.engine.rows" in g["h5vc.engine.format"]
    assert "h5vc.repository" in g["h5vc.git.link"]
    assert "h5vc.engine.format" in g["h5vc.engine.scan"]
    assert "h5vc.transaction" in g["h5vc.repository"]  # imported inside a function
    assert "h5vc.importing.registry" in g["h5vc.cli.app"]  # `from ..importing import registry`


# lowest first; a name ending in ".*" stands for every module below that package
LAYERS: list[tuple[str, list[str]]] = [
    ("foundations", ["h5vc.errors", "h5vc.version", "h5vc.crashpoints", "h5vc.paths", "h5vc.progress",
                     "h5vc.refs"]),
    ("engine", ["h5vc.engine", "h5vc.engine.*"]),
    ("around the repository", ["h5vc.pointer", "h5vc.git", "h5vc.git.env", "h5vc.remote.storage",
                               "h5vc.remote.payload"]),
    ("operations on the history", ["h5vc.transaction", "h5vc.verify", "h5vc.view", "h5vc.diff", "h5vc.export",
                                   "h5vc.importing",
                                   "h5vc.importing.*"]),
    ("facade", ["h5vc.repository"]),
    ("remotes", ["h5vc.remote", "h5vc.remote.*"]),
    ("git link", ["h5vc.git.link", "h5vc.git.share"]),
    ("command line", ["h5vc.cli", "h5vc.cli.*", "h5vc.__main__"]),
    ("package", ["h5vc"]),
]


def layer_of(module: str) -> int | None:
    for i, (_name, members) in enumerate(LAYERS):
        for m in members:
            if module == m or (m.endswith(".*") and module.startswith(m[:-1])):
                return i
    return None


def test_every_module_has_a_layer() -> None:
    missing = sorted(m for m in graph() if layer_of(m) is None)
    assert not missing, f"modules in no layer (add them to LAYERS and docs/design.md): {missing}"


def test_imports_only_go_down() -> None:
    up = sorted(f"{a} ({LAYERS[layer_of(a)][0]}) imports {b} ({LAYERS[layer_of(b)][0]})"
                for a, deps in graph().items() for b in deps
                if layer_of(a) is not None and layer_of(b) is not None
                and layer_of(b) > layer_of(a))  # type: ignore[operator]
    assert not up, "imports that go up: " + "; ".join(up)


def test_engine_knows_no_repository_git_or_importers() -> None:
    g = graph()
    for m, deps in g.items():
        if m.startswith("h5vc.engine"):
            assert all(d.startswith("h5vc.engine") or layer_of(d) == 0 for d in deps), (m, deps)


def test_no_import_cycles() -> None:
    found = cycles(graph())
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def test_cycle_finder_finds_cycles() -> None:
    g = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(g) == [["a", "b", "c"]]


@pytest.mark.parametrize("module", ["h5vc.errors", "h5vc.engine.state", "h5vc.version",
                                    "h5vc.crashpoints"])
def test_foundations_import_no_other_module(module: str) -> None:
    assert graph()[module] == set()


def test_transactions_use_no_private_member_of_the_repository() -> None:
    """They work through the History interface (h5vc.transaction.History), whose members
    are all public: reaching past it (``repo._f``, ``self._repo._layout``) would hide a
    dependency from readers and from this graph."""
    import re

    src = (PACKAGE / "transaction.py").read_text()
    assert "class History(Protocol)" in src
    found = sorted(set(re.findall(r"\b(?:repo|_repo|_h|history|h)\._[a-z]\w*", src)))
    assert not found, f"private members reached from transaction.py: {found}"


def test_every_subpackage_is_packaged() -> None:
    """The layers are subpackages: a wheel that held only the top package would not import."""
    import tomllib
    from setuptools import find_packages

    conf = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())
    include = conf["tool"]["setuptools"]["packages"]["find"]["include"]
    found = set(find_packages(str(PACKAGE.parent), include=include))
    wanted = {module_name(p.parent) for p in PACKAGE.rglob("__init__.py")}
    assert wanted <= found and "h5vc.engine" in wanted, sorted(wanted - found)
