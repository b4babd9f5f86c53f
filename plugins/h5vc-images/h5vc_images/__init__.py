"""h5vc importer for images: ``.png .jpg .jpeg .bmp .gif .tif .tiff .webp`` (decoded with Pillow).

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
    (``<folder given>/<category>/<file>``), in the same order as ``images``. A file holding
    several frames (a multi-page TIFF, an animated GIF, WebP or PNG) gives one row per frame,
    named ``<path>#<frame>`` counted from 0 (``stack.tif#0``, ``stack.tif#1``, ...).

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
such files exactly. The EXIF orientation tag is not applied: pixels are stored as they are
encoded in the file.

Multi-frame files import every frame, one row each. The frames of one file that Pillow decodes
to different 8-bit kinds (an animated GIF's first frame is a palette image, the later ones RGB
or RGBA) are all stored as the widest of them (RGB, or RGBA if any frame has transparency).
JPEG files holding extra pictures (MPO: camera previews, stereo pairs) give their first picture
only, and the import says so once.

All images (frames) of one group must share one size and one stored layout (the datasets have
a fixed row shape). This is checked before anything is decoded, from the file headers only; a
mismatch stops the import with one error naming up to five offending images and the majority
size. A frame of another size follows the same rule as a file of another size.

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
or with ``--skip-bad`` they are skipped and listed (a file with a bad frame is skipped whole).
Decoding runs in threads (``ctx.map``) and batches of at most 64 images (or about 64 MiB) are
appended, so memory stays bounded: a TIFF stack is decoded in parts of about 8 MiB, other
multi-frame files frame by frame.
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

from h5vc import Batch, ImportContext, Importer, ImporterOption, Source, hookimpl
from h5vc.errors import InvalidInputError

__all__ = ["ImagesImporter"]

BATCH_IMAGES = 64  # images per appended batch ...
BATCH_BYTES = 64 << 20  # ... or about this many bytes, whichever comes first
ENCODED_CHUNK_ROWS = 256  # rows per chunk of the vlen `images` column (the bytes live in the heap)
NAMES_CHUNK_ROWS = 1024
PART_BYTES = 8 << 20  # a TIFF stack is decoded in parts of about this many bytes of pixels
SEEKABLE = ("TIFF",)  # formats whose frames can be reached without decoding the ones before
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
class _Frame:
    size: tuple[int, int]  # (width, height)
    mode: str
    layout: _Layout

    @property
    def nbytes(self) -> int:
        w, h = self.size
        return w * h * max(1, self.layout.channels) * np.dtype(self.layout.dtype).itemsize


@dataclass(frozen=True)
class _Header:
    frames: tuple[_Frame, ...]
    format: str | None = None
    extra: int = 0  # pictures of an MPO file that are not imported

    def label(self, src: Source, i: int) -> str:
        """A frame's row name: the recorded path, with ``#i`` when the file has several frames."""
        return src.rel if len(self.frames) == 1 else f"{src.rel}#{i}"


@dataclass(frozen=True)
class _Part:
    """Frames ``start`` to ``start + count`` of one file: one unit of decoding work."""

    src: Source
    start: int
    count: int
    last: bool  # this part completes the file


def _unify(frames: list[_Frame]) -> list[_Frame]:
    """One 8-bit kind for the frames of one file: the widest (L < RGB < RGBA)."""
    layouts = {f.layout for f in frames}
    if len(layouts) == 1 or any(lay.dtype != "uint8" for lay in layouts):
        return frames
    channels = max(lay.channels for lay in layouts)
    mode = {0: "L", 3: "RGB", 4: "RGBA"}[channels]
    return [_Frame(f.size, f.mode, _Layout(None if f.mode == mode else mode, channels, "uint8"))
            for f in frames]


def _fmt_size(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


class ImagesImporter(Importer):
    name = "images"
    suffixes = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
    description = ("Images via Pillow: pixels (N,H,W[,C]) + names per category (one row per "
                   "frame), or original bytes")
    options = (
        ImporterOption("resize", "Resize every image to WxH.", metavar="WxH"),
        ImporterOption("encoded", "Store the original file bytes (mixed sizes allowed, "
                       "bit-exact).", kind="flag"),
    )

    def read(self, sources: list[Source], ctx: ImportContext) -> Iterator[Batch]:
        opts = ctx.options
        encoded = bool(opts.get("encoded", False))
        resize = _resize_option(opts.get("resize"))
        forced = _mode_option(opts.get("mode"))

        group = ctx.group_of

        # order by group, keeping the given order inside each (so a batch never spans groups)
        order: dict[str, int] = {}
        for s in sources:
            order.setdefault(group(s), len(order))
        sources = sorted(sources, key=lambda s: order[group(s)])

        if encoded:
            parts = [_Part(s, 0, 1, True) for s in sources]
            labels = {s.rel: [s.rel] for s in sources}
            yield from self._batches(parts, ctx, group, lambda p: [_read_encoded(p.src)], labels,
                                     encoded=True)
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
        mpo = [s.rel for s in good if headers[s.rel].extra]
        if mpo:
            ctx.notice(f"{len(mpo)} JPEG file(s) hold extra pictures (MPO, e.g. camera previews; "
                       f"{mpo[0]}{', ...' if len(mpo) > 1 else ''}): only the first picture of "
                       "each is imported (--encoded keeps the whole files)")

        # 2. decode in threads, append in bounded batches
        parts = [p for s in good for p in _parts(s, headers[s.rel])]
        labels = {s.rel: [headers[s.rel].label(s, i) for i in range(len(headers[s.rel].frames))]
                  for s in good}
        biggest = max((_held(p, headers[p.src.rel]) for p in parts), default=1)

        def decode(part: _Part) -> Any:
            return _decode(part, headers[part.src.rel], resize)

        yield from self._batches(parts, ctx, group, decode, labels, encoded=False,
                                 ahead=max(4, min(2 * BATCH_IMAGES, 2 * BATCH_BYTES // max(1, biggest))))

    def _batches(self, parts: list[_Part], ctx: ImportContext, group: Any, fn: Any,
                 labels: dict[str, list[str]], *, encoded: bool,
                 ahead: int = 2 * BATCH_IMAGES) -> Iterator[Batch]:
        """Rows of ``fn(part)`` (an iterable of arrays, or of a reason string for a bad file) as
        batches of at most BATCH_IMAGES rows / about BATCH_BYTES.

        A batch with ``sources`` holds only rows of the files it completes; the rows of a file
        still being read (a large stack) go out in batches without sources, so that the pipeline
        takes them back if a later frame of that file turns out bad.
        """
        rows: list[np.ndarray] = []
        names: list[str] = []
        done: list[Source] = []
        size = 0
        first = 0  # rows[first:] belong to the file being read, rows[:first] to files in `done`
        current: str | None = None
        bad: set[str] = set()

        def flush(partial: bool) -> Iterator[Batch]:
            nonlocal rows, names, done, size, first
            if first:
                yield _batch(rows[:first], names[:first], done, current or "", encoded)
            if partial and len(rows) > first:
                yield _batch(rows[first:], names[first:], [], current or "", encoded)
                rows, names = [], []
            else:
                rows, names = rows[first:], names[first:]
            done, first = [], 0
            size = sum(r.nbytes for r in rows)

        def full() -> bool:
            return len(rows) >= BATCH_IMAGES or size >= BATCH_BYTES

        # decode ahead, so decoding goes on while a batch is written
        for part, out in zip(parts, ctx.map(fn, parts, ahead=ahead), strict=True):
            src = part.src
            if src.rel in bad:
                continue  # a later part of a file already found bad
            g = group(src)
            if rows and g != current:
                yield from flush(partial=False)
            current = g
            frame = part.start
            for arr in out:
                if isinstance(arr, str):
                    del rows[first:], names[first:]
                    size = sum(r.nbytes for r in rows)
                    bad.add(src.rel)
                    ctx.bad(src, arr)  # takes back rows of this file already written
                    ctx.progress()
                    break
                if rows and not encoded and arr.shape != rows[0].shape:  # headers lied; never silently
                    raise InvalidInputError(
                        f"{labels[src.rel][frame]}: decoded to {arr.shape}, not {rows[0].shape} like "
                        f"{names[0]}; import with --resize WxH or --encoded")
                if full():
                    yield from flush(partial=True)
                rows.append(arr)
                names.append(labels[src.rel][frame])
                size += arr.nbytes
                frame += 1
            else:
                if part.last:
                    done.append(src)
                    first = len(rows)
                    ctx.progress()
                    if full():
                        yield from flush(partial=False)
            if hasattr(out, "close"):
                out.close()  # a frame-by-frame reader left early
        if rows or done:
            yield from flush(partial=False)


def _held(part: _Part, head: _Header) -> int:
    """Bytes a decoded part holds while it waits to be appended (frame-by-frame ones: one frame)."""
    one = head.frames[part.start].nbytes
    return one if len(head.frames) > 1 and head.format not in SEEKABLE else one * part.count


def _parts(src: Source, head: _Header) -> list[_Part]:
    """The decoding work for one file: TIFF stacks in parts of about PART_BYTES, others whole."""
    n = len(head.frames)
    if n == 1 or head.format not in SEEKABLE:
        return [_Part(src, 0, n, True)]
    step = max(1, PART_BYTES // max(1, head.frames[0].nbytes))
    return [_Part(src, a, min(step, n - a), a + step >= n) for a in range(0, n, step)]


def _batch(rows: list[np.ndarray], labels: list[str], done: list[Source], group: str,
           encoded: bool) -> Batch:
    names = np.empty(len(labels), dtype=object)
    names[:] = labels
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
    if isinstance(value, str):  # --resize 128x128
        try:
            value = tuple(int(x) for x in value.lower().split("x"))
            if len(value) != 2:
                raise ValueError
        except ValueError:
            raise InvalidInputError(f"--resize {value!r}: give WIDTHxHEIGHT, e.g. 128x128") from None
    try:
        w, h = (int(x) for x in value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"resize={value!r}: give (width, height), e.g. --resize 128x128") from None
    if w <= 0 or h <= 0:
        raise InvalidInputError(f"--resize {w}x{h}: width and height must be positive")
    if w * h > MAX_RESIZE_PIXELS:
        raise InvalidInputError(
            f"--resize {w}x{h}: {w * h:,} pixels per image is more than this importer makes "
            f"({MAX_RESIZE_PIXELS:,}, Pillow's own limit against decompression bombs); give a "
            "smaller size")
    return w, h


MAX_RESIZE_PIXELS = 89_478_485  # Image.MAX_IMAGE_PIXELS: what Pillow decodes without a warning


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
            fmt = im.format
            n = getattr(im, "n_frames", 1) or 1
            count = 1 if fmt == "MPO" else n
            frames = []
            for i in range(count):
                if i:
                    im.seek(i)
                frames.append(_Frame(im.size, im.mode, _layout(im.mode, im.info, forced)))
            return _Header(tuple(_unify(frames)), fmt, n - count)
    except (*_PIXEL_ERRORS, Image.DecompressionBombWarning) as e:
        return _reason(e)


def _decode(part: _Part, head: _Header, resize: tuple[int, int] | None) -> Any:
    """The frames of ``part``: a list decoded now (in the worker thread), or, for a multi-frame
    file that must be read in order (GIF, WebP, APNG), a generator decoding frame by frame."""
    if len(head.frames) > 1 and head.format not in SEEKABLE:
        return _frames(part, head, resize)
    return list(_frames(part, head, resize))


def _frames(part: _Part, head: _Header, resize: tuple[int, int] | None) -> Iterator[np.ndarray | str]:
    """Each frame's pixels; a reason string (and nothing more) if the file cannot be decoded."""
    try:
        with _open(part.src.path) as im:
            for i in range(part.start, part.start + part.count):
                if len(head.frames) > 1:
                    im.seek(i)
                yield _pixels(im, head.frames[i].layout, resize)
    except (*_PIXEL_ERRORS, Image.DecompressionBombWarning) as e:
        yield _reason(e)


def _pixels(im: Image.Image, layout: _Layout, resize: tuple[int, int] | None) -> np.ndarray:
    im.load()
    if layout.convert is not None:
        im = im.convert(layout.convert)
    if resize is not None and im.size != resize:
        if layout.dtype == "uint16":
            big = im.convert("I").resize(resize, Image.Resampling.LANCZOS)
            return np.clip(np.asarray(big), 0, 65535).astype(np.uint16)
        im = im.resize(resize, Image.Resampling.LANCZOS)
    return np.ascontiguousarray(np.asarray(im).astype(layout.dtype, copy=False))


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
    """One error if the images (frames) of a group do not share one size (unless resized) and
    layout."""
    by_group: dict[str, list[tuple[str, _Frame]]] = {}
    files: Counter[str] = Counter()
    for s in sources:
        head = headers[s.rel]
        files[group(s)] += 1
        by_group.setdefault(group(s), []).extend(
            (head.label(s, i), f) for i, f in enumerate(head.frames))

    def key(f: _Frame) -> tuple[Any, ...]:
        return (None if resize else f.size, f.layout)

    for g, members in by_group.items():
        counts = Counter(key(f) for _, f in members)
        if len(counts) == 1:
            continue
        (size, layout), n = counts.most_common(1)[0]
        odd = [(name, f) for name, f in members if key(f) != (size, layout)]
        where = f"group {g!r}" if g else "the target group"
        layouts = {k[1] for k in counts}
        listed = ", ".join(f"{name} is {_fmt_size(f.size)} {f.layout.describe()}"
                           for name, f in odd[:SHOWN])
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
        unit = "images" if len(members) > files[g] else "files"
        raise InvalidInputError(
            f"images of {what} in {where}: {listed}{more} (most common: {most}, {n} of "
            f"{len(members)} {unit}). One dataset holds one image shape: {fix}")


@hookimpl
def register_importers(register):  # noqa: ANN001 - pluggy passes the callable
    register(ImagesImporter())
