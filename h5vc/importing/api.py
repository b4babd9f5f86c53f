"""The plugin API: what an importer is given and what it returns.

An importer (a plugin) subclasses :class:`Importer`, declares its command-line options as
:class:`ImporterOption` s, and turns :class:`Source` files into :class:`Batch` es of rows,
using the :class:`ImportContext` for options, the category rule, bad-file reports, progress
and a thread pool. Everything else (finding files, provenance, datasets, the commit) is the
pipeline's (:mod:`h5vc.importing.pipeline`). These names are exported from ``h5vc``.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InvalidInputError

__all__ = ["Batch", "BadInputError", "ImportContext", "Importer", "ImporterOption", "Source"]


class BadInputError(InvalidInputError):
    """A file an importer cannot read (corrupt, truncated, wrong shape, ...)."""


@dataclass(frozen=True)
class Source:
    """One input file: its path, its path as recorded (relative), size and category."""

    path: Path
    rel: str
    size: int
    category: str | None


@dataclass
class Batch:
    """Rows for one group: ``columns`` maps dataset names to arrays (first axis = rows).

    ``group`` is a sub-group of the target (a category), ``""`` for the target itself.
    ``sources`` lists the files whose import this batch completes; a batch without sources
    continues the file being read (its rows are taken back if that file turns out bad).
    ``chunk_rows`` suggests rows per chunk for new datasets; ``dtypes`` gives HDF5 types (e.g.
    variable-length strings). ``table=True`` says the columns are a whole table: the group's
    existing datasets must be exactly these columns (a CSV file that lost a column is refused).
    """

    columns: dict[str, Any]
    group: str = ""
    sources: list[Source] = field(default_factory=list)
    chunk_rows: dict[str, int] = field(default_factory=dict)
    dtypes: dict[str, Any] = field(default_factory=dict)
    table: bool = False


@dataclass(frozen=True)
class ImporterOption:
    """A command-line option an importer declares: ``h5vc add --NAME`` (shown in ``h5vc add
    --help`` and ``h5vc plugins``), handed to the importer as ``ctx.options[key]``.

    ``kind`` is ``"str"``, ``"int"``, ``"float"`` or ``"flag"`` (a switch: True when given).
    ``key`` defaults to the name with ``-`` as ``_``. ``metavar`` names the value in help.
    The value arrives as typed; the importer checks its meaning (and says what is wrong).
    """

    name: str
    help: str
    kind: str = "str"
    key: str = ""
    metavar: str = ""

    @property
    def option_key(self) -> str:
        return self.key or self.name.replace("-", "_")


class Importer:
    """Base class of importers: set ``name`` and ``suffixes``, implement :meth:`read`;
    ``options`` declares the command-line options it reads (see :class:`ImporterOption`)."""

    name: str = ""
    suffixes: tuple[str, ...] = ()
    description: str = ""
    options: tuple[ImporterOption, ...] = ()

    def read(self, sources: list[Source], ctx: ImportContext) -> Iterator[Batch]:
        """Yield batches for ``sources``; call ``ctx.bad(source, reason)`` for unreadable files."""
        raise NotImplementedError


@dataclass
class ImportContext:
    """What an importer may use: options, bad-file reporting, progress, a thread pool."""

    options: dict[str, Any]
    skip_bad: bool = False
    skipped: list[tuple[str, str]] = field(default_factory=list)
    on_progress: Callable[[int], None] | None = None
    on_bad: Callable[[], None] | None = None  # the pipeline takes back a bad file's rows
    notices: list[str] = field(default_factory=list)

    @property
    def by_category(self) -> bool:
        """True unless ``--category-from none``: a file's sub-folder names its group."""
        return self.options.get("category_from", "parent") == "parent"

    def group_of(self, source: Source) -> str:
        """The sub-group of the target that ``source``'s rows go to: its category (the
        sub-folder it was found in) unless ``--category-from none``; ``""`` for the target."""
        return source.category if self.by_category and source.category else ""

    def bad(self, source: Source, reason: str) -> None:
        """Report an unreadable file: skipped with ``--skip-bad``, else the import stops.

        Rows already yielded for the file (batches without sources) are taken back.
        """
        if not self.skip_bad:
            raise BadInputError(f"{source.rel}: {reason}; fix or remove the file, or pass --skip-bad")
        if self.on_bad is not None:
            self.on_bad()
        self.skipped.append((source.rel, reason))

    def notice(self, text: str) -> None:
        """A one-line note for the user (printed once, however often it is given)."""
        if text not in self.notices:
            self.notices.append(text)

    def progress(self, files: int = 1) -> None:
        if self.on_progress is not None:
            self.on_progress(files)

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any], *, threads: int | None = None,
            ahead: int | None = None) -> Iterator[Any]:
        """``fn`` over ``items`` in threads, in order, at most ``ahead`` results in memory."""
        workers = threads or max(1, os.cpu_count() or 1)
        ahead = ahead or 4 * workers
        with cf.ThreadPoolExecutor(max_workers=workers) as pool:
            queue: deque[cf.Future[Any]] = deque()
            it = iter(items)
            for item in it:
                queue.append(pool.submit(fn, item))
                if len(queue) >= ahead:
                    yield queue.popleft().result()
            while queue:
                yield queue.popleft().result()
