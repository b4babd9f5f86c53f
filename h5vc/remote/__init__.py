"""Remotes: a store's history pushed to, and cloned from, a folder or an object store.

The names load on first use: the repository imports :mod:`.payload` (the remote as a backup)
without loading push and clone, which sit above it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .storage import RemoteError, RemoteStorage
    from .sync import (
        AdoptReport,
        CloneReport,
        FetchReport,
        PushReport,
        adopt,
        clone,
        fetch,
        pull,
        push,
        remote_of,
    )

__all__ = ["AdoptReport", "CloneReport", "FetchReport", "PushReport", "RemoteError", "RemoteStorage",
           "adopt", "clone", "fetch", "pull", "push", "remote_of"]

_LAZY = {"RemoteError": "storage", "RemoteStorage": "storage"}


def __getattr__(name: str) -> Any:
    if name in __all__:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY.get(name, 'sync')}", __name__), name)
    raise AttributeError(f"module 'h5vc.remote' has no attribute {name!r}")
