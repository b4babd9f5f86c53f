"""The plugin manager: loads the ``h5vc`` entry points once and collects their importers."""

from __future__ import annotations

import importlib.metadata
import re
from dataclasses import dataclass
from typing import Any

import pluggy

from ..errors import InvalidInputError, PluginError
from . import hookspecs

ENTRY_POINT_GROUP = "h5vc"

_pm: pluggy.PluginManager | None = None


def get_plugin_manager() -> pluggy.PluginManager:
    global _pm
    if _pm is None:
        pm = pluggy.PluginManager("h5vc")
        pm.add_hookspecs(hookspecs)
        try:
            pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
        except Exception as e:  # a broken plugin must not break h5vc, but must be named
            raise PluginError(f"an h5vc plugin failed to load: {e}; reinstall or remove it") from None
        _pm = pm
    return _pm


def reset() -> None:
    """Forget loaded plugins (tests and long-running programs that install plugins)."""
    global _pm, _table
    _pm = _table = None
    importlib.invalidate_caches()


@dataclass(frozen=True)
class ImporterInfo:
    name: str
    suffixes: tuple[str, ...]
    description: str
    plugin: str
    distribution: str | None
    version: str | None
    importer: Any


_table: dict[str, ImporterInfo] | None = None


def importers() -> dict[str, ImporterInfo]:
    """Every registered importer by name (collected once per process)."""
    global _table
    if _table is None:
        _table = _collect()
    return _table


def _collect() -> dict[str, ImporterInfo]:
    pm = get_plugin_manager()
    dists = {id(p): d for p, d in pm.list_plugin_distinfo()}
    out: dict[str, ImporterInfo] = {}
    for plugin in pm.get_plugins():
        impl = getattr(plugin, "register_importers", None)
        if impl is None:
            continue
        found: list[Any] = []
        try:
            impl(register=found.append)
        except Exception as e:
            raise PluginError(f"plugin {pm.get_name(plugin)} failed to register importers: {e}") from None
        dist = dists.get(id(plugin))
        for imp in found:
            name = getattr(imp, "name", None)
            if not name or not hasattr(imp, "read"):
                raise PluginError(f"plugin {pm.get_name(plugin)} registered an importer without a "
                                  "name or read(); see docs/plugins.md")
            if name in out:
                raise PluginError(f"two plugins register an importer named {name!r}: "
                                  f"{out[name].plugin} and {pm.get_name(plugin)}; uninstall one")
            out[name] = ImporterInfo(
                name, tuple(s.lower() for s in getattr(imp, "suffixes", ())),
                getattr(imp, "description", "") or "", pm.get_name(plugin) or "?",
                dist.project_name if dist else None, dist.version if dist else None, imp)
    return dict(sorted(out.items()))


_KINDS = ("str", "int", "float", "flag")
_OPTION_NAME = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")


@dataclass(frozen=True)
class DeclaredOption:
    """An ``h5vc add`` option that importers declare, with the importers that read it."""

    name: str
    help: str
    kind: str
    key: str
    metavar: str
    importers: tuple[str, ...]


def importer_options(reserved: frozenset[str] | set[str] = frozenset()) -> list[DeclaredOption]:
    """Every option the installed importers declare, by name. Two importers may declare the
    same option (same kind and key: it reaches both); ``reserved`` names the core's own."""
    found: dict[str, DeclaredOption] = {}
    for info in importers().values():
        for opt in getattr(info.importer, "options", ()) or ():
            name = str(getattr(opt, "name", ""))
            kind = getattr(opt, "kind", "str")
            key = getattr(opt, "option_key", "") or name.replace("-", "_")
            where = f"importer {info.name!r} (plugin {info.plugin})"
            if not _OPTION_NAME.fullmatch(name):
                raise PluginError(f"{where} declares an option named {name!r}: use lower-case "
                                  "words joined by '-', e.g. 'category-column'")
            if kind not in _KINDS:
                raise PluginError(f"{where} declares --{name} of kind {kind!r}: choose one of "
                                  f"{', '.join(_KINDS)}")
            if name in reserved:
                raise PluginError(f"{where} declares --{name}, which is h5vc's own option; "
                                  "rename it")
            have = found.get(name)
            if have is not None:
                if (have.kind, have.key) != (kind, key):
                    raise PluginError(f"importers {have.importers[0]!r} and {info.name!r} both "
                                      f"declare --{name}, differently; uninstall one")
                found[name] = DeclaredOption(name, have.help, kind, key, have.metavar,
                                             (*have.importers, info.name))
                continue
            found[name] = DeclaredOption(name, str(getattr(opt, "help", "")), kind, key,
                                         str(getattr(opt, "metavar", "") or ""), (info.name,))
    return [found[n] for n in sorted(found)]


def importer_for(suffix: str, name: str | None = None) -> ImporterInfo:
    """The importer named ``name``, else the one that claims ``suffix``."""
    table = importers()
    if name is not None:
        if name not in table:
            raise InvalidInputError(
                f"no importer named {name!r}; installed: {', '.join(table) or 'none'} "
                "(see `h5vc plugins`)")
        return table[name]
    for info in table.values():
        if suffix.lower() in info.suffixes:
            return info
    known = sorted({s for i in table.values() for s in i.suffixes})
    raise InvalidInputError(
        f"no importer for {suffix or 'files without a suffix'!r} files; known suffixes: "
        f"{', '.join(known) or 'none'} (install a plugin, or choose one with --importer)")
