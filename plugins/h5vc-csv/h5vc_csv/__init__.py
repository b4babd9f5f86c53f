"""h5vc importer for CSV and TSV files: streamed with pyarrow, one dataset per column.

``h5vc add data.csv --to /sensors -m "..."`` appends every column of the file to a dataset of
the same name in the target group (or in its category sub-group). Files are read block by
block with :func:`pyarrow.csv.open_csv`, one :class:`~h5vc.importing.Batch` per block, so a
file larger than memory imports in bounded memory: pyarrow parses up to ~35 blocks ahead, so
about 35 x ``block_size`` (2 MiB by default: ~70 MB) whatever the file size. A row must fit in
one block; ``-o block_size=BYTES`` raises the limit (and the memory).

Format
    The first line is the header. ``.csv`` files are comma separated, ``.tsv`` files tab
    separated; ``-o delimiter=;`` (or ``tab``) overrides both. Quoted values may hold the
    delimiter, doubled quotes and newlines. Input is UTF-8 (a BOM is ignored); ``-o
    encoding=latin-1`` (any Python codec) transcodes other files.

Column names
    A dataset is named after its column. ``/`` in a name becomes ``_``; an empty name (e.g.
    the unnamed index column pandas writes) becomes ``column_<position>`` (counted from 0);
    ``.``, ``..`` and names starting with ``_h5vc`` get a ``_`` prefix. Two columns with
    the same (resulting) name make the file bad.

Types (decided once per import, from the first block of its first file that has rows)
    * whole numbers -> ``int64`` (``uint64`` if pyarrow needs it), other numbers -> ``float64``;
    * ``true``/``false`` (also ``True``/``TRUE``/``1``/``0`` as pyarrow reads them) -> ``bool``;
    * dates, times and timestamps -> text, exactly as written in the file (ISO 8601 in
      practice): no time-zone conversion and no loss of precision;
    * everything else -> variable-length UTF-8 text (``h5py.string_dtype()``);
    * a column that is empty in the whole first block -> text.

    pyarrow infers the types from that block; every later block, and every other file of
    the same import, is then read with exactly those types, so a dataset never changes
    type halfway. Force a type with ``-o floats=col1,col2`` (float64) or ``-o
    strings=col1,col2`` (text, e.g. zip codes with leading zeros).

Missing values (an empty cell, or pyarrow's usual markers ``NA``, ``N/A``, ``NaN``, ``null``, ...)
    * float columns: NaN;
    * an int column with a missing value in the first block is stored as ``float64``, NaN for
      the missing values; a bool column likewise (1.0 / 0.0 / NaN);
    * an int or bool column that first has a missing value in a later block (or a later file)
      makes the file bad, with a message naming the column and row and suggesting ``-o
      floats=COL``: the column was already committed to an integer type;
    * text columns never have missing values: an empty cell is ``""`` and ``NA`` stays the
      text ``"NA"``.

Schema of an import
    Every file of one import must have the columns of the first file (in any order); a file
    with missing or extra columns is bad and the message names the file and the columns.
    Values that do not fit the first file's types (text in a number column, ...) make the
    file bad, naming the column. Across imports the core checks each dataset's type when it
    appends, and names the dataset that differs.

Categories
    A file's sub-folder is a sub-group (``--category-from parent``, the default). With
    ``--category-column COL`` the rows of every block are split by the text of COL into
    sub-groups named by that value (below the folder's sub-group, if any): ``/`` becomes
    ``_``, an empty value becomes ``_empty``, a value starting with ``.`` or ``_h5vc`` gets a
    ``_`` prefix (values that end up with the same name share a group). The column itself is
    not stored (its value is the group name); ``-o keep_category_column=true`` stores it too.
    It is always read as text, so ``01`` and ``1`` are different groups.

Bad files
    An empty file, bad quoting (a quoted value that never closes), ragged rows, invalid
    UTF-8, duplicate column names, a different schema and values of the wrong type are
    reported with ``ctx.bad`` and pyarrow's message shortened to one line: the import stops
    (nothing written), or with ``--skip-bad`` the file is skipped and listed. With
    ``--skip-bad``, a file larger than one block is parsed once before its rows are handed
    on, so a file that turns out bad in its last block is skipped whole, never half
    imported.

Options (``-o key=value``): ``delimiter``, ``encoding``, ``block_size`` (bytes), ``floats``,
``strings``, ``keep_category_column``; and ``--category-column`` as ``category_column``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from h5vc import Batch, ImportContext, Importer, ImporterOption, Source, hookimpl
from h5vc.errors import InvalidInputError
from h5vc.importing import BadInputError

__all__ = ["CsvImporter", "register_importers"]

BLOCK_SIZE = 2 << 20  # bytes of CSV text per block (and per batch); pyarrow reads ~35 ahead
RESERVED = "_h5vc"  # h5vc keeps its own data under names starting with this
MAX_REASON = 240

# kinds of stored columns
INT, UINT, FLOAT, BOOL, BOOL_FLOAT, TEXT = "int64", "uint64", "float64", "bool", "bool->float64", "text"
ARROW = {INT: pa.int64(), UINT: pa.uint64(), FLOAT: pa.float64(), BOOL: pa.bool_(),
         BOOL_FLOAT: pa.bool_(), TEXT: pa.string()}


class _Bad(Exception):
    """A file cannot be imported; the message is the reason (one line)."""


@dataclass
class _Options:
    delimiter: str | None
    encoding: str
    block_size: int
    floats: set[str]
    strings: set[str]
    category_column: str | None
    keep_category_column: bool

    @classmethod
    def parse(cls, options: dict[str, Any]) -> _Options:
        delim = options.get("delimiter")
        if delim is not None:
            delim = str(delim)
            delim = {"tab": "\t", "\\t": "\t", "space": " "}.get(delim.lower(), delim)
            if len(delim) != 1 or delim in "\r\n\"":
                raise InvalidInputError(f"-o delimiter={options['delimiter']!r}: give one character "
                                        "(e.g. ';' or tab)")
        try:
            block = int(options.get("block_size", BLOCK_SIZE))
        except (TypeError, ValueError):
            block = 0
        if block < 1024:
            raise InvalidInputError(f"-o block_size={options.get('block_size')!r}: give a number of "
                                    f"bytes, at least 1024 (default {BLOCK_SIZE})")
        encoding = str(options.get("encoding") or "utf8")
        try:
            "x".encode(encoding)
        except LookupError:
            raise InvalidInputError(f"-o encoding={encoding!r} is not a known encoding") from None
        floats, strings = _names(options.get("floats")), _names(options.get("strings"))
        if floats & strings:
            raise InvalidInputError(f"column(s) {', '.join(sorted(floats & strings))} are in both "
                                    "-o floats and -o strings")
        cat = options.get("category_column")
        keep = options.get("keep_category_column", False)
        if isinstance(keep, str):
            keep = keep.strip().lower() in ("1", "true", "yes", "on")
        return cls(delim, encoding, block, floats, strings, str(cat) if cat else None, bool(keep))


def _names(value: Any) -> set[str]:
    if value is None or value == "":
        return set()
    items = value if isinstance(value, (list, tuple, set)) else str(value).split(",")
    return {str(v).strip() for v in items if str(v).strip()}


@dataclass
class _Schema:
    """The columns of an import, fixed by its first file."""

    raw: list[str]  # header names, in the first file's order
    names_from: str  # the file whose header this is
    kinds: dict[str, str] = field(default_factory=dict)  # raw name -> kind (once a file had rows)
    types_from: str = ""

    @property
    def datasets(self) -> dict[str, str]:
        """Raw column name -> dataset name."""
        return {n: _dataset_name(n, i) for i, n in enumerate(self.raw)}


class CsvImporter(Importer):
    name = "csv"
    suffixes = (".csv", ".tsv")
    description = "CSV/TSV (streamed with pyarrow), one dataset per column"
    options = (
        ImporterOption("category-column", "Split rows into sub-groups by this column.",
                       metavar="COLUMN"),
    )

    def read(self, sources: list[Source], ctx: ImportContext) -> Iterator[Batch]:
        opts = _Options.parse(ctx.options)
        state: dict[str, _Schema] = {}
        for src in sources:
            yield from self._file(src, ctx, opts, state)
            ctx.progress()

    # -- one file ------------------------------------------------------------------------

    def _file(self, src: Source, ctx: ImportContext, opts: _Options,
              state: dict[str, _Schema]) -> Iterator[Batch]:
        folder = ctx.group_of(src)
        try:
            schema = self._schema(src, opts, state)
            if schema is None:  # a header and no rows
                yield Batch({}, group=folder, sources=[src])
                return
            if ctx.skip_bad and src.size > opts.block_size:
                for _ in self._blocks(src, opts, schema):  # parse it all before handing rows on
                    pass
        except _Bad as e:
            _forget(state, src)
            ctx.bad(src, str(e))
            return
        pending: list[Batch] = []
        yielded = False
        try:
            for cols in self._blocks(src, opts, schema):
                batches = self._split(cols, schema, folder, opts)
                for b in pending:
                    yielded = True
                    yield b
                pending = batches
        except _Bad as e:
            if yielded and ctx.skip_bad:
                raise BadInputError(f"{src.rel}: {e}; its first rows were already imported, so it "
                                    "cannot be skipped: the import stopped and nothing was written; "
                                    "fix or remove the file") from None
            _forget(state, src)
            ctx.bad(src, str(e))
            return
        if not pending:
            pending = [Batch({}, group=folder)]
        pending[-1].sources.append(src)
        yield from pending

    def _schema(self, src: Source, opts: _Options, state: dict[str, _Schema]) -> _Schema | None:
        """The import's schema, checked against (or, for the first file, taken from) ``src``."""
        ref = state.get("ref")
        if ref is not None and ref.kinds:
            types = {n: ARROW[k] for n, k in ref.kinds.items()}
        else:
            types = self._forced(opts)
        with _open(src, opts, types, ref if ref is not None and ref.kinds else None) as reader:
            raw = list(reader.schema.names)
            _check_names(raw, opts)
            if ref is None:
                unknown = sorted((opts.floats | opts.strings) - set(raw))
                if unknown:
                    raise _Bad(f"-o floats/strings name column(s) it does not have: {_list(unknown)}; "
                               f"its columns are {_list(raw)}")
                ref = state["ref"] = _Schema(raw, src.rel)
            else:
                _check_same(raw, ref, opts)
            if ref.kinds:
                return ref
            try:
                first = reader.read_next_batch()
            except StopIteration:
                return None
            except (pa.ArrowException, OSError) as e:
                raise _Bad(_reason(e, raw)) from None
        ref.kinds = _kinds(first, opts)
        ref.types_from = src.rel
        return ref

    def _forced(self, opts: _Options) -> dict[str, pa.DataType]:
        types = {n: pa.string() for n in opts.strings}  # floats: after inference (bool columns)
        if opts.category_column:
            types[opts.category_column] = pa.string()
        return types

    def _blocks(self, src: Source, opts: _Options, schema: _Schema) -> Iterator[dict[str, Any]]:
        """Each block of ``src`` as ``{raw column name: numpy array}``, in the schema's types."""
        types = {n: ARROW[k] for n, k in schema.kinds.items()}
        rows = 0
        last: pa.RecordBatch | None = None
        with _open(src, opts, types, schema) as reader:
            raw = list(reader.schema.names)
            while True:
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    break
                except (pa.ArrowException, OSError) as e:
                    raise _Bad(_reason(e, raw, schema, rows)) from None
                if batch.num_rows == 0:
                    continue
                yield {n: _to_numpy(batch.column(i), n, schema, rows)
                       for i, n in enumerate(raw)}
                rows += batch.num_rows
                last = batch
        if last is not None:
            _check_closed(src, opts, last)

    def _split(self, cols: dict[str, Any], schema: _Schema, folder: str, opts: _Options) -> list[Batch]:
        """A block's rows as batches: one per category group, columns under their dataset names."""
        cat = opts.category_column
        named = {schema.datasets[n]: a for n, a in cols.items() if n != cat or opts.keep_category_column}
        dtypes = {d: h5py.string_dtype() for d, a in named.items() if a.dtype.kind == "O"}
        if not cat:
            return [Batch(named, group=folder, dtypes=dtypes, table=True)]
        values, codes = np.unique(cols[cat], return_inverse=True)
        groups = [_group_name(str(v)) for v in values]
        names = sorted(set(groups))
        number = {g: i for i, g in enumerate(names)}
        gcode = np.array([number[g] for g in groups], dtype=np.intp)[codes.reshape(-1)]
        order = np.argsort(gcode, kind="stable")
        ends = np.cumsum(np.bincount(gcode, minlength=len(names)))
        out = []
        for g, start, end in zip(names, [0, *ends[:-1]], ends, strict=True):
            idx = order[start:end]
            out.append(Batch({n: a[idx] for n, a in named.items()},
                             group=f"{folder}/{g}" if folder else g, dtypes=dict(dtypes), table=True))
        return out


# -- helpers -------------------------------------------------------------------------------


class _open:  # noqa: N801 - a context manager used like a function
    """``pyarrow.csv.open_csv`` for ``src`` with fixed column types; errors become :class:`_Bad`."""

    def __init__(self, src: Source, opts: _Options, types: dict[str, pa.DataType],
                 schema: _Schema | None = None) -> None:
        if src.size == 0:
            raise _Bad("the file is empty (not even a header line)")
        try:
            self.reader = _open_csv(src, opts, types)
        except (pa.ArrowException, OSError, UnicodeError) as e:
            raise _Bad(_reason(e, _header(src, opts) if _COLUMN_REF.search(str(e)) else None,
                               schema)) from None

    def __enter__(self) -> Any:
        return self.reader

    def __exit__(self, *exc: object) -> None:
        self.reader.close()


def _open_csv(src: Source, opts: _Options, types: dict[str, pa.DataType]) -> Any:
    delim = opts.delimiter or ("\t" if src.path.suffix.lower() == ".tsv" else ",")
    return pacsv.open_csv(
        src.path,
        read_options=pacsv.ReadOptions(block_size=opts.block_size, encoding=opts.encoding),
        parse_options=pacsv.ParseOptions(delimiter=delim, newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(column_types=types, strings_can_be_null=False))


def _header(src: Source, opts: _Options) -> list[str] | None:
    """The column names of ``src`` (to name a column pyarrow only numbers), None if unreadable."""
    try:
        reader = _open_csv(src, opts, {})
    except (pa.ArrowException, OSError, UnicodeError):
        return None
    reader.close()
    return list(reader.schema.names)


def _forget(state: dict[str, _Schema], src: Source) -> None:
    """A skipped file does not define the import's columns or types."""
    ref = state.get("ref")
    if ref is not None and ref.names_from == src.rel:
        del state["ref"]
    elif ref is not None and ref.types_from == src.rel:
        ref.kinds, ref.types_from = {}, ""


def _check_names(raw: list[str], opts: _Options) -> None:
    seen: dict[str, str] = {}
    for i, n in enumerate(raw):
        d = _dataset_name(n, i)
        if d in seen:
            if seen[d] == n:
                raise _Bad(f"the header names column {n!r} twice; rename one")
            raise _Bad(f"columns {seen[d]!r} and {n!r} would both be stored as {d!r}; rename one")
        seen[d] = n
    if opts.category_column and opts.category_column not in raw:
        raise _Bad(f"it has no column {opts.category_column!r} (--category-column); its columns "
                   f"are {_list(raw)}")


def _check_same(raw: list[str], ref: _Schema, opts: _Options) -> None:
    missing = [n for n in ref.raw if n not in raw]
    extra = [n for n in raw if n not in ref.raw]
    if missing or extra:
        parts = ([f"missing {_list(missing)}"] if missing else []) + (
            [f"extra {_list(extra)}"] if extra else [])
        raise _Bad(f"its columns differ from those of {ref.names_from}: {', '.join(parts)}; "
                   "import files with other columns into another --to group")


def _kinds(first: pa.RecordBatch, opts: _Options) -> dict[str, str]:
    """Column kinds from the first block (see the module docstring)."""
    kinds = {}
    for name, col in zip(first.schema.names, first.columns, strict=True):
        t = col.type
        nulls = col.null_count > 0
        if name in opts.strings or name == opts.category_column:
            k = TEXT
        elif pa.types.is_boolean(t):
            k = BOOL_FLOAT if nulls or name in opts.floats else BOOL
        elif name in opts.floats or pa.types.is_floating(t):
            k = FLOAT
        elif pa.types.is_integer(t):
            k = FLOAT if nulls else (UINT if pa.types.is_uint64(t) else INT)
        else:  # text, binary (checked as UTF-8 on the next read), null, dates, times, timestamps
            k = TEXT
        kinds[name] = k
    return kinds


def _to_numpy(col: pa.Array, name: str, schema: _Schema, before: int) -> np.ndarray:
    kind = schema.kinds[name]
    if kind in (INT, UINT, BOOL) and col.null_count:
        row = before + int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0]) + 1
        what = "whole numbers" if kind != BOOL else "true/false values"
        raise _Bad(f"column {name!r} has a missing value in data row {row:,}, but it holds {kind} "
                   f"({what} without gaps in the first rows of {schema.types_from}); pass "
                   f"-o floats={name} to store it as float64 with NaN for missing values")
    if kind == BOOL_FLOAT:
        col = pc.cast(col, pa.float64())
    if kind in (FLOAT, BOOL_FLOAT):
        return np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64)
    if kind == TEXT:
        return pc.fill_null(col, "").to_numpy(zero_copy_only=False).astype(object)
    return np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.dtype(kind))


def _check_closed(src: Source, opts: _Options, last: pa.RecordBatch) -> None:
    """Catch a quoted value that never closes: pyarrow reads it to the end of the file."""
    col = last.column(last.num_columns - 1)
    if not pa.types.is_string(col.type):
        return
    value = col[last.num_rows - 1].as_py() or ""
    quote = '"'.encode(opts.encoding)
    if "\n" not in value or quote != b'"':
        return
    with src.path.open("rb") as fh:
        fh.seek(max(0, src.size - 4096))
        tail = fh.read().rstrip(b" \t\r\n")
    if not tail.endswith(quote):
        raise _Bad("bad quoting: a quoted value in the last column never closes, so it runs to the "
                   "end of the file")


_COLUMN_REF = re.compile(r"In CSV column #(\d+): ")


def _reason(e: BaseException, raw: list[str] | None, schema: _Schema | None = None,
            rows: int = 0) -> str:
    """pyarrow's message on one line, with the column named instead of numbered."""
    text = " ".join(str(e).split()) or type(e).__name__
    if isinstance(e, UnicodeError):
        text = f"cannot decode it ({text}); pass -o encoding=... (e.g. latin-1)"
    m = _COLUMN_REF.search(text)
    hint = ""
    if m and raw is not None and int(m.group(1)) < len(raw):
        name = raw[int(m.group(1))]
        text = text.replace(m.group(0), f"column {name!r}: ")
        kind = schema.kinds.get(name) if schema else None
        if "invalid UTF8" in text:
            hint = "; pass -o encoding=... (e.g. latin-1) if it is not UTF-8"
        elif kind in (INT, UINT):
            fix = "floats" if _is_number(_INVALID.search(text)) else "strings"
            hint = (f" (it held whole numbers in the first rows of {schema.types_from}); pass "
                    f"-o {fix}={name}")
        elif kind is not None and kind != TEXT:
            hint = (f" (it held {kind} values in the first rows of {schema.types_from}); pass "
                    f"-o strings={name} to keep it as text")
    elif "invalid UTF8" in text:
        hint = "; pass -o encoding=... (e.g. latin-1) if it is not UTF-8"
    if text.startswith("Empty CSV file"):
        text = "the file is empty (not even a header line)"
    elif "straddles two block boundaries" in text:
        text = ("a row is longer than one block: pass -o block_size=BYTES larger than the longest "
                "row (default 2097152)")
    elif "cannot infer number of columns" in text:
        text = f"cannot read the header line (a quote that never closes?): {text}"
    if rows:
        text = f"after {rows:,} good rows: {text}"
    if len(text) > MAX_REASON:
        text = text[:MAX_REASON - 1] + "…"
    return text + hint


_INVALID = re.compile(r"invalid value '(.*)'")


def _is_number(m: re.Match[str] | None) -> bool:
    if m is None:
        return False
    try:
        float(m.group(1))
    except ValueError:
        return False
    return True


def _dataset_name(name: str, position: int) -> str:
    if not name:
        return f"column_{position}"
    name = name.replace("/", "_").replace("\0", "_")
    if name in (".", "..") or name.startswith(RESERVED):
        name = "_" + name
    return name


def _group_name(value: str) -> str:
    if not value:
        return "_empty"
    value = value.replace("/", "_").replace("\0", "_")
    if value.startswith(".") or value.startswith(RESERVED):
        value = "_" + value
    return value


def _list(names: list[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:8])
    return shown + (f" and {len(names) - 8} more" if len(names) > 8 else "")


@hookimpl
def register_importers(register):  # noqa: ANN001 - pluggy passes the callable
    register(CsvImporter())

