"""Remotes: a store's history pushed to, and cloned from, a folder or an object store."""

from .storage import RemoteError, RemoteStorage
from .sync import CloneReport, FetchReport, PushReport, clone, fetch, pull, push, remote_of

__all__ = ["CloneReport", "FetchReport", "PushReport", "RemoteError", "RemoteStorage", "clone", "fetch",
           "pull", "push", "remote_of"]
