"""User-given HDF5 paths: normalised once, refused when they are not plain paths or name /.h5vc.

Every path a user gives h5vc (``tx["/a/b"]``, ``h5vc add --to /train``) goes through
:func:`normalize_path`. The normal form is absolute, with single slashes and no ``.``
segments: ``" //a/./b/ "`` becomes ``/a/b``. Nothing else is resolved: a ``..`` segment is
refused rather than guessed at, and so are NUL and other control characters (HDF5 cannot
store NUL in a name; a newline or tab would break h5vc's one-line output). A path that is, or
lies under, ``/.h5vc`` is refused *after* normalising, so ``/./.h5vc``, ``//.h5vc/x`` and
``.h5vc`` cannot reach h5vc's own history.

This module imports nothing heavy: the command line may use it before h5py is loaded.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .errors import InvalidInputError

__all__ = ["HISTORY_GROUP", "check_text", "normalize_path", "quoted", "shown"]

HISTORY_GROUP = ".h5vc"  # h5vc.engine.format.META, the hidden group that holds the history

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")  # what breaks a line, or a terminal
_CONTROL_NAMES = {"\x00": "a NUL character", "\n": "a newline", "\r": "a carriage return",
                  "\t": "a tab"}


def normalize_path(path: object, what: str = "path") -> str:
    """``path`` in normal form (``/a/b``); :class:`InvalidInputError` if it cannot be one.

    Leading and trailing white space is stripped, ``//`` and ``/./`` collapse, a relative path
    starts at the root, ``/`` (or ``.``) is the root group. Refused, each with a one-line
    message naming the path and the fix: a non-string, an empty path, NUL and other control
    characters (line breaks included), a name of white space only, a ``..`` segment, and a
    path that is or lies in ``/.h5vc``. ``what`` names the path in messages, e.g. ``"--to"``.
    """
    if not isinstance(path, str):
        raise InvalidInputError(
            f"{what} must be a string such as '/sensors/a', not {type(path).__name__}")
    text = path.strip()
    bad = _CONTROL.search(text)
    if bad is not None:
        ch = bad.group()
        name = _CONTROL_NAMES.get(ch, f"the control character {ch!r}")
        raise InvalidInputError(
            f"{what} {path!r} contains {name}; HDF5 names in h5vc are printable text: remove it")
    if not text:
        raise InvalidInputError(
            f"{what} is empty; give a path such as '/sensors/a', or '/' for the root group")
    parts = [s for s in text.split("/") if s and s != "."]
    if any(not s.strip() for s in parts):
        raise InvalidInputError(
            f"{what} {path!r} has a name that is only white space; remove it or name the group")
    if ".." in parts:
        raise InvalidInputError(
            f"{what} {path!r} has a '..' segment, which h5vc does not resolve; give the path "
            "from the root, such as '/sensors/a'")
    p = "/" + "/".join(parts)
    if parts and parts[0] == HISTORY_GROUP:
        same = "" if p == path else f" (that is {p})"
        raise InvalidInputError(
            f"{what} {path!r}{same} lies in /{HISTORY_GROUP}, which holds h5vc's history and "
            "cannot be written directly; choose another group, such as '/data'")
    return p


def check_text(text: object, what: str, *, empty_ok: bool = False) -> str:
    """``text`` (an attribute name, an author, a message line) if it is printable on one line;
    :class:`InvalidInputError` naming ``what`` and the fix otherwise."""
    if not isinstance(text, str):
        raise InvalidInputError(f"{what} must be a string, not {type(text).__name__}")
    if not text.strip() and not empty_ok:
        raise InvalidInputError(f"{what} is empty; give some text")
    bad = _CONTROL.search(text)
    if bad is not None:
        ch = bad.group()
        name = _CONTROL_NAMES.get(ch, f"the control character {ch!r}")
        raise InvalidInputError(f"{what} {text!r} contains {name}; remove it")
    return text


def shown(p: Path) -> str:
    """``p`` as messages show it: relative to the current folder unless that climbs far."""
    try:
        r = os.path.relpath(p, Path.cwd())
    except ValueError:  # another drive
        return str(p)
    return str(p) if r.startswith(".." + os.sep + "..") else r


def quoted(p: Path) -> str:
    """``p`` as a shell word in a command to copy: shown, then quoted."""
    import shlex

    return shlex.quote(shown(p))
