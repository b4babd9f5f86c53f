"""h5vc: version control for HDF5 stores.

    from h5vc import Repository
    repo = Repository.init("data.h5")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import (
    AmbiguousRevError,
    DataLossError,
    DirtyStoreError,
    DiskFullError,
    FormatVersionError,
    H5vcError,
    IntegrityError,
    InvalidInputError,
    LockedError,
    NotARepositoryError,
    NotFoundError,
    PluginError,
    ReadOnlyError,
)
from .version import __version__

__all__ = [
    "AmbiguousRevError",
    "Batch",
    "CheckoutResult",
    "Commit",
    "ConversionWarning",
    "DataLossError",
    "Diff",
    "DirtyStoreError",
    "DiskFullError",
    "ExportReport",
    "FormatVersionError",
    "H5vcError",
    "ImportContext",
    "Importer",
    "ImporterOption",
    "IntegrityError",
    "InvalidInputError",
    "LockedError",
    "NotARepositoryError",
    "NotFoundError",
    "PathDiff",
    "PluginError",
    "ReadOnlyError",
    "Repository",
    "Source",
    "Status",
    "Transaction",
    "View",
    "ViewDataset",
    "ViewGroup",
    "__version__",
    "hookimpl",
]

if TYPE_CHECKING:
    from .diff import Diff, PathDiff
    from .export import ExportReport
    from .importing.api import Batch, ImportContext, Importer, ImporterOption, Source
    from .importing.hookspecs import hookimpl
    from .repository import CheckoutResult, Commit, Repository, Status
    from .transaction import ConversionWarning, Transaction
    from .view import View, ViewDataset, ViewGroup

_LAZY = {
    "hookimpl": "importing.hookspecs",
    "Repository": "repository", "Commit": "repository", "Status": "repository",
    "CheckoutResult": "repository", "Transaction": "transaction",
    "ConversionWarning": "transaction",
    "Importer": "importing.api", "Batch": "importing.api", "Source": "importing.api",
    "ImportContext": "importing.api", "ImporterOption": "importing.api",
    "Diff": "diff", "PathDiff": "diff", "ExportReport": "export",
    "View": "view", "ViewDataset": "view", "ViewGroup": "view",
}


def __getattr__(name: str) -> Any:
    # h5py and numpy load on first use, so `h5vc --help` starts fast
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'h5vc' has no attribute {name!r}")
