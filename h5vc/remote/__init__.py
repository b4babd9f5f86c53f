"""Remotes: a store's history pushed to, and cloned from, a folder or an object store."""

from .storage import RemoteError, RemoteStorage
from .sync import CloneReport, PushReport, clone, push, remote_of

__all__ = ["CloneReport", "PushReport", "RemoteError", "RemoteStorage", "clone", "push", "remote_of"]
