"""h5vc importer for images: ``.png .jpg .jpeg .bmp .tif .tiff .webp`` (decoded with Pillow).

Layout
------
Each category (a file's sub-folder under the folder given, with ``--category-from parent``,
the default) becomes a sub-group of the target; with ``--category-from none`` every image goes
to the target group itself. Every group gets two row-aligned datasets:

``images``
    The decoded pixels, one row per image: ``(N, H, W)`` for single-channel images,
    ``(N, H, W, 3)`` for RGB, ``(N, H, W, 4)`` for RGBA. Chunked one image per chunk, so that
    reading any single image is fast.
``names``
    ``(N,)`` variable-length UTF-8 strings: each image's path as recorded by h5vc
    (``<folder given>/<category>/<file>``), in the same order as ``images``.

Modes and conversions (Pillow mode → stored)
--------------------------------------------
=========================================  ==================================
``L`` (8-bit grayscale)                     ``(H, W)`` uint8
``1`` (bilevel)                             ``(H, W)`` uint8, 0 or 255
``I;16`` ``I;16B`` ... (16-bit grayscale)   ``(H, W)`` uint16 (native order)
``I`` (32-bit integer)                      ``(H, W)`` int32
``F`` (32-bit float)                        ``(H, W)`` float32
``RGB``, and ``CMYK YCbCr LAB HSV RGBX``    ``(H, W, 3)`` uint8 (converted to RGB)
``RGBA``, and ``LA La RGBa PA``             ``(H, W, 4)`` uint8 (converted to RGBA)
``P`` (palette)                             RGBA if it has a transparent colour, else RGB
=========================================  ==================================

Pillow itself reads 16-bit-per-channel colour PNGs as 8-bit RGB/RGBA; use ``--encoded`` to keep
such files exactly. Multi-frame files (TIFF pages, animated WebP) contribute their first frame.
The EXIF orientation tag is not applied: pixels are stored as they are encoded in the file.

All images of one group must share one size and one stored layout (the datasets have a fixed
row shape). This is checked before anything is decoded, from the file headers only; a mismatch
stops the import with one error naming up to five offending files and the majority size.

Options (``h5vc add`` flags, or ``options=`` of ``Repository.add``)
-------------------------------------------------------------------
``category_from`` (``--category-from``)
    ``"parent"`` (default): sub-folder → sub-group; ``"none"``: no sub-groups.
``resize`` (``--resize WxH``)
    ``(width, height)``: every image is resized to exactly this size (aspect ratio is not
    kept) with Pillow's LANCZOS filter; 16-bit images are resized in 32-bit and clipped.
``encoded`` (``--encoded``)
    Store each file's original bytes instead of pixels: ``images`` is then ``(N,)`` of
    variable-length uint8 (``h5py.vlen_dtype(np.uint8)``), one element per file, bit-exact,
    any mix of sizes, modes and formats; there is no extra column (``names`` keeps each file's
    suffix; ``PIL.Image.open(io.BytesIO(row.tobytes()))`` decodes a row). Files are still
    fully decoded once to reject corrupt ones.
``mode`` (``-o mode=L|RGB|RGBA``)
    Convert every image to this Pillow mode first, e.g. to import a folder mixing grayscale
    and colour images as RGB.

Corrupt, truncated or unrecognised files are reported through ``ctx.bad``: the import stops,
or with ``--skip-bad`` they are skipped and listed. Decoding runs in threads (``ctx.map``) and
batches of at most 64 images (or about 64 MiB) are appended, so memory stays bounded.
"""

from __future__ import annotations

import io
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import h5py
import numpy as np
from PIL import Image, UnidentifiedImageError

from h5vc import hookimpl
from h5vc.errors import InvalidInputError
from h5vc.importing import Batch, ImportContext, Importer, Source

__all__ = ["ImagesImporter"]

BATCH_IMAGES = 64  # images per appended batch ...
BATCH_BYTES = 64 << 20  # ... or about this many bytes, whichever comes first
ENCODED_CHUNK_ROWS = 256  # rows per chunk of the vlen `images` column (the bytes live in the heap)
NAMES_CHUNK_ROWS = 1024
SHOWN = 5  # offending files named in a size/layout mismatch error
FORCED_MODES = ("L", "RGB", "RGBA")

_RGB = {"RGB", "CMYK", "YCbCr", "LAB", "HSV", "RGBX"}
_RGBA = {"RGBA", "LA", "La", "RGBa", "PA"}
_PIXEL_ERRORS = (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError,
                 UnidentifiedImageError, MemoryError)


@dataclass(frozen=True)
class _Layout:
    """How a file's pixels are stored: Pillow mode to convert to (or None), row tail, dtype."""

    convert: str | None = field(compare=False)
    channels: int  # 0: (H, W)
    dtype: str

    def describe(self) -> str:
        kind = {0: "single-channel", 3: "RGB", 4: "RGBA"}[self.channels]
        return kind if self.dtype == "uint8" else f"{kind} {self.dtype}"


def _layout(mode: str, info: dict[str, Any], forced: str | None) -> _Layout:
    if forced is not None:
        return _Layout(None if mode == forced else forced, {"L": 0, "RGB": 3, "RGBA": 4}[forced], "uint8")
    if mode == "L":
        return _Layout(None, 0, "uint8")
    if mode == "1":
        return _Layout("L", 0, "uint8")
    if mode.startswith("I;16"):
        return _Layout(None, 0, "uint16")
    if mode == "I":
        return _Layout(None, 0, "int32")
    if mode == "F":
        return _Layout(None, 0, "float32")
    if mode == "RGB":
        return _Layout(None, 3, "uint8")
    if mode == "RGBA":
        return _Layout(None, 4, "uint8")
    if mode == "P":
        return _Layout("RGBA", 4, "uint8") if "transparency" in info else _Layout("RGB", 3, "uint8")
    if mode in _RGBA:
        return _Layout("RGBA", 4, "uint8")
    return _Layout("RGB", 3, "uint8")  # _RGB and anything else Pillow can convert


@dataclass(frozen=True)
class _Header:
    size: tuple[int, int]  # (width, height)
    mode: str
    layout: _Layout


def _fmt_size(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


class ImagesImporter(Importer):
    name = "images"
    suffixes = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
    description = "Images via Pillow: pixels (N,H,W[,C]) + names per category, or original bytes"

    def read(self, sources: list[Source], ctx: ImportContext) -> Iterator[Batch]:
        opts = ctx.options
        group_of = opts.get("category_from", "parent")
        encoded = bool(opts.get("encoded", False))
        resize = _resize_option(opts.get("resize"))
        forced = _mode_option(opts.get("mode"))

        def group(src: Source) -> str:
            return src.category if group_of == "parent" and src.category else ""

        # order by group, keeping the given order inside each (so a batch never spans groups)
        order: dict[str, int] = {}
        for s in sources:
            order.setdefault(group(s), len(order))
        sources = sorted(sources, key=lambda s: order[group(s)])

        if encoded:
            yield from self._batches(sources, ctx, group, _read_encoded, encoded=True)
            return

        # 1. headers only (lazy open): unreadable files, and sizes/layouts per group
        headers: dict[str, _Header] = {}
        good: list[Source] = []
        for src, head in zip(sources, ctx.map(lambda s: _probe(s, forced), sources), strict=True):
            if isinstance(head, str):
                ctx.bad(src, head)
                ctx.progress()
                continue
            headers[src.rel] = head
            good.append(src)
        _check_uniform(good, headers, group, resize)

        # 2. decode in threads, append in bounded batches
        def decode(src: Source) -> np.ndarray | str:
            return _decode(src, headers[src.rel], resize)

        yield from self._batches(good, ctx, group, decode, encoded=False)

    def _batches(self, sources: list[Source], ctx: ImportContext, group: Any, fn: Any, *,
                 encoded: bool) -> Iterator[Batch]:
        rows: list[np.ndarray] = []
        done: list[Source] = []
        size = 0
        current: str | None = None

        def flush() -> Batch:
            nonlocal rows, done, size
            batch = _batch(rows, done, current or "", encoded)
            rows, done, size = [], [], 0
            return batch

        # decode up to two batches ahead, so decoding goes on while a batch is written
        for src, out in zip(sources, ctx.map(fn, sources, ahead=2 * BATCH_IMAGES), strict=True):
            g = group(src)
            if rows and g != current:
                yield flush()
            current = g
            if isinstance(out, str):
                ctx.bad(src, out)
                ctx.progress()
                continue
            if rows and not encoded and out.shape != rows[0].shape:  # headers lied; never silently
                raise InvalidInputError(
                    f"{src.rel}: decoded to {out.shape}, not {rows[0].shape} like {done[0].rel}; "
                    "import with --resize WxH or --encoded")
            rows.append(out)
            done.append(src)
            size += out.nbytes
            ctx.progress()
            if len(rows) >= BATCH_IMAGES or size >= BATCH_BYTES:
                yield flush()
        if rows:
            yield flush()


def _batch(rows: list[np.ndarray], done: list[Source], group: str, encoded: bool) -> Batch:
    names = np.empty(len(done), dtype=object)
    names[:] = [s.rel for s in done]
    if encoded:
        images = np.empty(len(rows), dtype=object)
        for i, r in enumerate(rows):  # element by element: equal lengths must not become 2-D
            images[i] = r
        dtypes = {"images": h5py.vlen_dtype(np.uint8), "names": h5py.string_dtype()}
        chunks = {"images": ENCODED_CHUNK_ROWS, "names": NAMES_CHUNK_ROWS}
    else:
        images = np.stack(rows)
        dtypes = {"names": h5py.string_dtype()}
        chunks = {"images": 1, "names": NAMES_CHUNK_ROWS}
    return Batch({"images": images, "names": names}, group=group, sources=list(done),
                 chunk_rows=chunks, dtypes=dtypes)


def _resize_option(value: Any) -> tuple[int, int] | None:
    if value is None or value is False:
        return None
    try:
        w, h = (int(x) for x in value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"resize={value!r}: give (width, height), e.g. --resize 128x128") from None
    if w <= 0 or h <= 0:
        raise InvalidInputError(f"--resize {w}x{h}: width and height must be positive")
    return w, h


def _mode_option(value: Any) -> str | None:
    if value is None:
        return None
    m = str(value).upper()
    if m not in FORCED_MODES:
        raise InvalidInputError(f"-o mode={value}: choose one of {', '.join(FORCED_MODES)}")
    return m


def _open(data: Any) -> Image.Image:
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        return Image.open(data)


def _reason(e: BaseException) -> str:
    if isinstance(e, UnidentifiedImageError):
        return "not an image Pillow can read (unknown format or damaged header)"
    if isinstance(e, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        return f"too large to decode safely ({e})"
    text = str(e) or type(e).__name__
    hint = "" if "truncated" in text or "corrupt" in text else " (corrupt or truncated?)"
    return f"cannot decode the image: {text}{hint}"


def _probe(src: Source, forced: str | None) -> _Header | str:
    try:
        with _open(src.path) as im:
            return _Header(im.size, im.mode, _layout(im.mode, im.info, forced))
    except (*_PIXEL_ERRORS, Image.DecompressionBombWarning) as e:
        return _reason(e)


def _decode(src: Source, head: _Header, resize: tuple[int, int] | None) -> np.ndarray | str:
    try:
        with _open(src.path) as im:
            im.load()
            if head.layout.convert is not None:
                im = im.convert(head.layout.convert)
            if resize is not None and im.size != resize:
                if head.layout.dtype == "uint16":
                    big = im.convert("I").resize(resize, Image.Resampling.LANCZOS)
                    return np.clip(np.asarray(big), 0, 65535).astype(np.uint16)
                im = im.resize(resize, Image.Resampling.LANCZOS)
            arr = np.asarray(im)
    except (*_PIXEL_ERRORS, Image.DecompressionBombWarning) as e:
        return _reason(e)
    return np.ascontiguousarray(arr.astype(head.layout.dtype, copy=False))


def _read_encoded(src: Source) -> np.ndarray | str:
    try:
        data = src.path.read_bytes()
    except OSError as e:
        return f"cannot read the file: {e}"
    try:
        with _open(io.BytesIO(data)) as im:
            im.load()  # reject corrupt and truncated files, though their bytes would be kept
    except (*_PIXEL_ERRORS, Image.DecompressionBombWarning) as e:
        return _reason(e)
    return np.frombuffer(data, dtype=np.uint8)


def _check_uniform(sources: list[Source], headers: dict[str, _Header], group: Any,
                   resize: tuple[int, int] | None) -> None:
    """One error if the images of a group do not share one size (unless resized) and layout."""
    by_group: dict[str, list[Source]] = {}
    for s in sources:
        by_group.setdefault(group(s), []).append(s)

    def key(s: Source) -> tuple[Any, ...]:
        h = headers[s.rel]
        return (None if resize else h.size, h.layout)

    for g, members in by_group.items():
        counts = Counter(key(s) for s in members)
        if len(counts) == 1:
            continue
        (size, layout), n = counts.most_common(1)[0]
        odd = [s for s in members if key(s) != (size, layout)]
        where = f"group {g!r}" if g else "the target group"
        layouts = {k[1] for k in counts}

        def show(s: Source) -> str:
            h = headers[s.rel]
            return f"{s.rel} is {_fmt_size(h.size)} {h.layout.describe()}"

        listed = ", ".join(show(s) for s in odd[:SHOWN])
        more = f" and {len(odd) - SHOWN} more" if len(odd) > SHOWN else ""
        most = f"{_fmt_size(size)} {layout.describe()}" if size else layout.describe()
        if len(layouts) > 1:
            fix = ("convert them all with -o mode=RGB (or L, RGBA), or store the original files "
                   "with --encoded")
            what = "different sizes or kinds" if resize is None and len({k[0] for k in counts}) > 1 \
                else "different kinds"
        else:
            fix = "resize them all with --resize WxH, or store the original files with --encoded"
            what = "different sizes"
        raise InvalidInputError(
            f"images of {what} in {where}: {listed}{more} (most common: {most}, {n} of "
            f"{len(members)} files). One dataset holds one image shape: {fix}")


@hookimpl
def register_importers(register):  # noqa: ANN001 - pluggy passes the callable
    register(ImagesImporter())
