"""The one exception tree of h5vc.

Every error a user can cause derives from :class:`H5vcError`; the CLI prints its message as a
single ``Error: ...`` line and exits 1. Messages name the problem and the fix::

    H5vcError
    ├── NotARepositoryError      not an HDF5 file, or /.h5vc missing
    ├── NotFoundError            unknown rev, path, ref (also a KeyError)
    ├── InvalidInputError        bad argument or value (also a ValueError)
    │   └── AmbiguousRevError    an id prefix that matches several commits
    ├── DirtyStoreError          uncommitted changes in the way
    │   └── DataLossError        a commit would make older commits impossible to check out
    ├── IntegrityError           /.h5vc damaged, content missing or not matching its hash
    │   └── FormatVersionError   written by a newer h5vc
    ├── LockedError              another process has the store open for writing
    ├── ReadOnlyError            the file or folder cannot be written
    ├── DiskFullError            not enough free space for a write (nothing was changed)
    └── PluginError              an importer failed to load
"""

from __future__ import annotations

__all__ = [
    "AmbiguousRevError",
    "DataLossError",
    "DirtyStoreError",
    "DiskFullError",
    "FormatVersionError",
    "H5vcError",
    "IntegrityError",
    "InvalidInputError",
    "LockedError",
    "NotARepositoryError",
    "NotFoundError",
    "PluginError",
    "ReadOnlyError",
]


class H5vcError(Exception):
    """Base of every h5vc error; the message says what went wrong and what to do."""

    def __init__(self, message: str) -> None:
        if not message:
            raise TypeError("H5vcError needs a message")
        super().__init__(message)

    @property
    def message(self) -> str:
        return str(self.args[0])

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return self.message


class NotARepositoryError(H5vcError):
    """The path is not an HDF5 file, or not an h5vc store."""


class NotFoundError(H5vcError, KeyError):
    """A revision, ref or path that does not exist."""


class InvalidInputError(H5vcError, ValueError):
    """An argument or value h5vc cannot accept."""


class AmbiguousRevError(InvalidInputError):
    """A commit id prefix that matches more than one commit."""


class DirtyStoreError(H5vcError):
    """The store has uncommitted changes that an operation would discard."""


class DataLossError(DirtyStoreError):
    """Another tool destroyed committed rows that h5vc never preserved."""


class IntegrityError(H5vcError):
    """/.h5vc is damaged, or stored content does not match its hash."""


class FormatVersionError(IntegrityError):
    """The store was written by a newer version of h5vc."""


class LockedError(H5vcError):
    """Another process has the store open for writing."""


class ReadOnlyError(H5vcError):
    """The store cannot be written (file permissions or read-only open)."""


class DiskFullError(H5vcError):
    """The disk holding the store has not enough free space for a write.

    ``hdf5_failed`` is True when HDF5 itself failed to write (the disk filled up during the
    operation): the library may then be unable to close the file cleanly, and the process is
    best ended without closing it (committed history does not depend on it; see
    docs/reliability.md).
    """

    def __init__(self, message: str, *, hdf5_failed: bool = False) -> None:
        super().__init__(message)
        self.hdf5_failed = hdf5_failed


class PluginError(H5vcError):
    """An importer plugin failed to load or run."""
