"""The plugin manager: loads the ``h5vc`` entry points once and collects their importers."""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from typing import Any

import pluggy

from . import hookspecs
from .errors import InvalidInputError, PluginError

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
