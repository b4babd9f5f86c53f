"""Revision syntax: full or unique-prefix commit ids, branches, tags, HEAD, ``rev~N``."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from .errors import AmbiguousRevError, InvalidInputError, NotFoundError

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._/-]*$")
_HEX = re.compile(r"^[0-9a-f]+$")
MIN_PREFIX = 4


def check_ref_name(name: str, what: str) -> None:
    if (not _NAME.fullmatch(name) or name == "HEAD" or ".." in name or name.endswith("/")
            or name.endswith(".") or "//" in name):
        raise InvalidInputError(
            f"{name!r} is not a valid {what} name; use letters, digits, '.', '_', '-' and '/'"
        )


def parse_rev(rev: str) -> tuple[str, int]:
    """Split ``name~N`` (also ``name~`` and ``name^``) into (name, N)."""
    rev = rev.strip()
    if not rev:
        raise InvalidInputError("an empty revision; give a commit id, branch, tag or HEAD~N")
    depth = 0
    m = re.match(r"^(.*?)((?:~\d*|\^)*)$", rev)
    assert m is not None
    base, suffix = m.group(1), m.group(2)
    for part in re.findall(r"~\d*|\^", suffix):
        depth += 1 if part in ("~", "^") else int(part[1:])
    if not base:
        raise InvalidInputError(f"{rev!r} is not a revision; try HEAD~{depth or 1}")
    return base, depth


def resolve_base(base: str, *, head: str | None, branches: dict[str, str], tags: dict[str, str],
                 ids: Callable[[], Iterable[str]]) -> str:
    if base == "HEAD":
        if head is None:
            raise NotFoundError("the store has no commits yet")
        return head
    if base in branches:
        return branches[base]
    if base in tags:
        return tags[base]
    low = base.lower()
    if _HEX.match(low) and len(low) >= MIN_PREFIX:
        matches = [i for i in ids() if i.startswith(low)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise AmbiguousRevError(
                f"{base!r} matches {len(matches)} commits ("
                + ", ".join(sorted(m[:12] for m in matches)[:4])
                + "); give more characters of the id"
            )
    raise NotFoundError(
        f"unknown revision {base!r}; see `h5vc log` for commit ids, `h5vc branch` and "
        "`h5vc tag` for names"
    )
