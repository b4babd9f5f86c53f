"""Canonical bytes, content hashes and the typed JSON encoding of dtypes and values.

A range hash is xxh3-128 over a header (the dtype and the shape of the rows) and the rows'
canonical bytes: C order, the dataset's own dtype. It does not depend on chunking or
compression, so the same rows hash the same wherever they are stored. Variable-length data
(strings, vlen arrays) is serialised element by element with length prefixes.
"""

from __future__ import annotations

import base64
import functools
import json
import struct
from collections.abc import Callable, Iterable
from typing import Any

import h5py
import numpy as np
import xxhash

from ..errors import InvalidInputError

__all__ = ["bytes_as_numpy", "decode_dtype", "decode_type", "decode_value", "encode_dtype",
           "encode_hdf5_type", "encode_value", "exact_type", "hdf5_type", "rows_hash"]


# -- dtypes -------------------------------------------------------------------------------

def encode_dtype(dt: np.dtype) -> Any:
    """A JSON value that recreates ``dt`` exactly, h5py's special types included."""
    s = h5py.check_string_dtype(dt)
    if s is not None:
        return {"str": s.encoding, "len": s.length}
    v = h5py.check_vlen_dtype(dt)
    if v is not None:
        return {"vlen": encode_dtype(v)}
    e = h5py.check_enum_dtype(dt)
    if e is not None:
        return {"enum": np.dtype(dt.str).str, "values": sorted([k, int(x)] for k, x in e.items())}
    r = h5py.check_ref_dtype(dt)
    if r is not None:
        if r is not h5py.Reference:
            raise InvalidInputError(
                "HDF5 region references cannot be versioned yet; store the referenced path "
                "and selection as a string instead"
            )
        return {"ref": "object"}
    if h5py.check_opaque_dtype(dt):
        return {"opaque": dt.str}
    if dt.names is not None:
        return {
            "fields": [[n, encode_dtype(dt.fields[n][0]), dt.fields[n][1]] for n in dt.names],
            "itemsize": dt.itemsize,
        }
    if dt.subdtype is not None:
        base, shape = dt.subdtype
        return {"sub": encode_dtype(base), "shape": list(shape)}
    if dt.kind == "O":
        raise InvalidInputError("object arrays without an HDF5 type cannot be stored")
    return dt.str


def encode_hdf5_type(tid: Any) -> dict[str, Any]:
    """An HDF5 datatype numpy cannot hold (H5T_TIME, 128-bit numbers, ...), recorded as HDF5
    encodes it (``H5Tencode``); its values are versioned as opaque bytes of its size."""
    return {"hdf5": base64.b64encode(tid.encode()).decode(), "size": int(tid.get_size())}


def exact_type(tid: Any, dt: np.dtype) -> str | None:
    """The HDF5 type ``tid`` of values that numpy holds as ``dt``, encoded as HDF5 encodes it,
    when it is not the type h5py makes for ``dt`` (null-terminated or space-padded strings,
    Fortran strings, bitfields, 1-byte integers of the other byte order, those inside
    compounds and arrays) and its values can be written with it exactly; None otherwise."""
    try:
        same = tid == h5py.h5t.py_create(dt, logical=True)
    except (TypeError, ValueError):
        same = False
    if same:
        return None
    # only types whose values h5vc can write back exactly: those laid out as numpy holds them
    # (written with no conversion) and variable-length strings (HDF5 converts them whole);
    # h5py converts the elements of other variable-length data itself, cutting a full
    # null-terminated string short, so those keep h5py's type and their exact values
    if not bytes_as_numpy(tid) and not (tid.get_class() == h5py.h5t.STRING
                                        and tid.is_variable_str()):
        return None
    return base64.b64encode(tid.encode()).decode()


def decode_type(enc: str) -> Any:
    """The HDF5 type :func:`exact_type` encoded."""
    return h5py.h5t.decode(base64.b64decode(enc))


def bytes_as_numpy(tid: Any) -> bool:
    """Whether the values of HDF5 type ``tid`` are laid out byte for byte as numpy holds them
    (as h5py reads them): then they can be written with ``tid`` as the memory type, with no
    conversion, which for strings padded otherwise than h5py's would cut a full value short."""
    cls = tid.get_class()
    if cls == h5py.h5t.STRING:
        return not tid.is_variable_str()
    if cls in (h5py.h5t.OPAQUE, h5py.h5t.BITFIELD):
        return True
    if cls in (h5py.h5t.INTEGER, h5py.h5t.ENUM):
        base = tid.get_super() if cls == h5py.h5t.ENUM else tid
        return base.get_precision() == 8 * base.get_size() and base.get_offset() == 0
    if cls == h5py.h5t.FLOAT:
        return any(tid == t for t in (h5py.h5t.IEEE_F32LE, h5py.h5t.IEEE_F32BE,
                                      h5py.h5t.IEEE_F64LE, h5py.h5t.IEEE_F64BE))
    if cls == h5py.h5t.ARRAY:
        return bytes_as_numpy(tid.get_super())
    if cls == h5py.h5t.COMPOUND:
        return all(bytes_as_numpy(tid.get_member_type(i)) for i in range(tid.get_nmembers()))
    return False


def hdf5_type(enc: Any) -> Any:
    """The HDF5 datatype an encoded dtype records as such (see :func:`encode_hdf5_type`),
    None for the dtypes numpy holds."""
    if isinstance(enc, dict) and "hdf5" in enc:
        return h5py.h5t.decode(base64.b64decode(enc["hdf5"]))
    return None


def decode_dtype(enc: Any) -> np.dtype:
    if isinstance(enc, str):
        return np.dtype(enc)
    if "hdf5" in enc:  # bytes of a type numpy cannot hold
        return np.dtype(f"V{int(enc['size'])}")
    if "str" in enc:
        return h5py.string_dtype(enc["str"], enc["len"])
    if "vlen" in enc:
        return h5py.vlen_dtype(decode_dtype(enc["vlen"]))
    if "enum" in enc:
        return h5py.enum_dtype(dict(enc["values"]), basetype=np.dtype(enc["enum"]))
    if "opaque" in enc:
        return h5py.opaque_dtype(np.dtype(enc["opaque"]))
    if "ref" in enc:
        return h5py.ref_dtype
    if "fields" in enc:
        return np.dtype(
            {
                "names": [f[0] for f in enc["fields"]],
                "formats": [decode_dtype(f[1]) for f in enc["fields"]],
                "offsets": [f[2] for f in enc["fields"]],
                "itemsize": enc["itemsize"],
            }
        )
    if "sub" in enc:
        return np.dtype((decode_dtype(enc["sub"]), tuple(enc["shape"])))
    raise ValueError(f"unknown dtype encoding {enc!r}")


# -- canonical bytes and hashes ------------------------------------------------------------

def _canon_element(x: Any, out: list[bytes]) -> None:
    # a str is its UTF-8 bytes: h5py reads variable-length strings back as bytes, and a
    # hash taken from memory must equal the hash of what is read back
    if isinstance(x, str):
        x = x.encode("utf-8", "surrogatepass")
    if isinstance(x, bytes):
        out.append(b"b" + struct.pack("<Q", len(x)) + x)
    elif isinstance(x, np.void) and x.dtype.names is not None:
        for name in x.dtype.names:
            _canon_element(x[name], out)
    elif isinstance(x, np.ndarray):
        if x.dtype.hasobject:
            out.append(b"o" + struct.pack("<Q", x.size))
            for y in x.ravel():
                _canon_element(y, out)
        else:
            b = np.ascontiguousarray(x).tobytes()
            out.append(b"a" + struct.pack("<Q", len(b)) + b)
    elif isinstance(x, np.generic):
        out.append(x.tobytes())
    elif x is None:
        out.append(b"n")
    else:
        raise InvalidInputError(f"cannot store a value of type {type(x).__name__}")


@functools.lru_cache(maxsize=256)
def _packed(dt: np.dtype) -> np.dtype | None:
    """``dt`` without padding (fields back to back, in their order), or None when ``dt`` has
    none (no fields, or fields that already fill it in order)."""
    def pack(d: np.dtype) -> np.dtype:
        if d.subdtype is not None:
            base, shape = d.subdtype
            return np.dtype((pack(base), shape))
        if d.names is None:
            return d
        return np.dtype([(n, pack(d.fields[n][0])) for n in d.names])

    if dt.names is None and (dt.subdtype is None or dt.subdtype[0].names is None):
        return None
    packed = pack(dt)
    return None if packed == dt else packed


def zero_padding(arr: np.ndarray) -> np.ndarray:
    """``arr`` with the padding bytes of its structured dtype zeroed (a copy), or ``arr`` itself
    when its dtype has none: padding holds whatever memory held, so it must never count in a
    hash or a comparison (a compound written with ``align=True`` or explicit offsets)."""
    packed = _packed(arr.dtype)
    if packed is None:
        return arr
    out = np.zeros(arr.shape, dtype=arr.dtype)
    out[...] = np.asarray(arr).astype(packed)  # field by field: the padding stays zero
    return out


_LD_BYTES = 10 if np.finfo(np.longdouble).nmant == 63 else None  # x87 80-bit, stored in 16
_LD_SIZE = np.dtype(np.longdouble).itemsize


@functools.lru_cache(maxsize=256)
def _unused_bytes(dt: np.dtype) -> np.ndarray | None:
    """A mask of the bytes of ``dt`` that hold nothing (1) or a value (0), for dtypes with
    x87 extended-precision floats, whose 80 bits sit in 12 or 16 bytes; None for others."""
    if _LD_BYTES is None:
        return None
    mask = np.zeros(dt.itemsize, dtype=bool)

    def mark(d: np.dtype, at: int) -> bool:
        if d.subdtype is not None:
            base, shape = d.subdtype
            found = False
            for i in range(int(np.prod(shape))):
                found |= mark(base, at + i * base.itemsize)
            return found
        if d.names is not None:
            found = False
            for n in d.names:
                sub, off = d.fields[n][:2]
                found |= mark(sub, at + off)
            return found
        if d.kind == "f" and d.itemsize == _LD_SIZE:
            mask[at + _LD_BYTES:at + d.itemsize] = True
            return True
        if d.kind == "c" and d.itemsize == 2 * _LD_SIZE:
            half = d.itemsize // 2
            mask[at + _LD_BYTES:at + half] = True
            mask[at + half + _LD_BYTES:at + d.itemsize] = True
            return True
        return False

    return mask if mark(dt, 0) else None


def zero_unused(arr: np.ndarray) -> np.ndarray:
    """``arr`` with the unused bytes of its extended-precision floats zeroed (a copy), or
    ``arr`` itself: like padding, they hold whatever memory held."""
    mask = _unused_bytes(arr.dtype)
    if mask is None or arr.dtype.hasobject:
        return arr
    out = np.ascontiguousarray(arr).copy()
    raw = out.reshape(-1).view(np.uint8).reshape(-1, arr.dtype.itemsize)
    raw[:, mask] = 0
    return out


def canonical_bytes(arr: np.ndarray) -> bytes | memoryview:
    """The bytes a hash is computed over: C-order raw bytes (padding zeroed), or a
    length-prefixed walk."""
    if not arr.dtype.hasobject:
        a = np.ascontiguousarray(zero_padding(arr))
        return a.reshape(-1).view(np.uint8).data if a.size else b""
    text = _text_bytes(arr)
    if text is not None:
        return text
    out: list[bytes] = []
    for x in arr.reshape(-1):
        _canon_element(x, out)
    return b"".join(out)


def _text_bytes(arr: np.ndarray, *, no_nul: bool = False) -> bytes | None:
    """Canonical bytes of an array of strings, in bulk (every length, then every byte).

    None if ``arr`` holds anything but strings, or (``no_nul``) a string holding NUL.
    """
    if arr.dtype.names is not None:
        return None
    flat = arr.reshape(-1).tolist()
    try:
        items = [x.encode("utf-8", "surrogatepass") if type(x) is str else x for x in flat]
        lens = np.fromiter(map(len, items), dtype="<u8", count=len(items))
        data = b"".join(items)  # TypeError unless every item is bytes
    except (TypeError, AttributeError):
        return None
    if no_nul and b"\0" in data:
        return None
    return b"S" + lens.tobytes() + data


def text_rows_hash(arr: np.ndarray, dkey: str) -> str | None:
    """:func:`rows_hash` of strings as HDF5 will store them, or None if it would change them.

    HDF5 ends a variable-length string at its first NUL, so such strings are hashed from
    the file after writing instead.
    """
    text = _text_bytes(arr, no_nul=True)
    if text is None:
        return None
    h = xxhash.xxh3_128(f"{dkey}{list(arr.shape)}".encode())
    h.update(text)
    return h.hexdigest()


def dtype_key(dt: np.dtype) -> str:
    """The dtype part of a range hash's header."""
    if not dt.hasobject and not dt.metadata:  # plain dtypes compare and hash exactly
        return _plain_dtype_key(dt)
    return json.dumps(encode_dtype(dt), sort_keys=True, separators=(",", ":"))


@functools.lru_cache(maxsize=256)
def _plain_dtype_key(dt: np.dtype) -> str:
    return json.dumps(encode_dtype(dt), sort_keys=True, separators=(",", ":"))


def rows_hash_parts(parts: Iterable[np.ndarray], shape: tuple[int, ...], dkey: str) -> str:
    """:func:`rows_hash` of the concatenation of ``parts`` (consecutive rows of ``shape``)."""
    h = xxhash.xxh3_128(f"{dkey}{list(shape)}".encode())
    for part in parts:
        h.update(canonical_bytes(part))
    return h.hexdigest()


@functools.lru_cache(maxsize=256)
def _expanded_dims(dkey: str) -> int:
    """How many trailing axes numpy adds to an array read from a dataset whose dtype is a
    sub-array (``('<i4', (2,))`` reads as rows of 2 ints): not part of the rows' shape."""
    if not dkey.startswith("{"):
        return 0
    try:
        enc = json.loads(dkey)
    except ValueError:
        return 0
    n = 0
    while isinstance(enc, dict) and "sub" in enc:
        n += len(enc["shape"])
        enc = enc["sub"]
    return n


def rows_hash(arr: np.ndarray, dkey: str) -> str:
    """xxh3-128 hex of the dtype (``dtype_key``), the shape and the canonical bytes of ``arr``.

    The dtype is passed in because arrays read back from h5py may lose the metadata that
    marks variable-length strings.
    """
    shape = arr.shape
    k = _expanded_dims(dkey)
    if k and arr.ndim > k:  # rows of a sub-array dtype: their shape as the dataset has it
        shape = shape[:arr.ndim - k]
    h = xxhash.xxh3_128(f"{dkey}{list(shape)}".encode())
    h.update(canonical_bytes(arr))
    return h.hexdigest()


# -- values (attributes, fill values) ------------------------------------------------------

RefPath = Callable[[Any], "str | None"]  # an object reference -> its target's path (None: null)
MakeRef = Callable[["str | None"], Any]  # a target's path (None: null) -> a reference


def dtype_holds_refs(dt: np.dtype) -> bool:
    """Whether an h5py dtype holds references anywhere (fields, sub-arrays, vlen)."""
    if h5py.check_ref_dtype(dt) is not None:
        return True
    v = h5py.check_vlen_dtype(dt)
    if v is not None:
        return v not in (str, bytes) and dtype_holds_refs(np.dtype(v))
    if dt.names is not None:
        return any(dtype_holds_refs(dt.fields[n][0]) for n in dt.names)
    if dt.subdtype is not None:
        return dtype_holds_refs(dt.subdtype[0])
    return False


def has_refs(enc_dtype: Any) -> bool:
    """Whether an encoded dtype holds object references anywhere (fields, vlen, arrays)."""
    return "{'ref'" in repr(enc_dtype) if not isinstance(enc_dtype, str) else False


def ref_targets(enc: Any) -> set[str]:
    """The target paths of the object references in an encoded value (null ones left out)."""
    out: set[str] = set()

    def walk(j: Any) -> None:
        if isinstance(j, dict):
            if "ref" in j and len(j) == 1:
                if j["ref"] is not None:
                    out.add(j["ref"])
                return
            for v in j.values():
                walk(v)
        elif isinstance(j, list):
            for v in j:
                walk(v)

    if has_refs(enc["dtype"]):
        walk(enc["data"])
    return out


def _jsonable(x: Any, rp: RefPath | None = None) -> Any:
    if isinstance(x, h5py.Reference):
        if rp is None:
            raise InvalidInputError("an object reference cannot be stored here")
        return {"ref": rp(x) if x else None}
    if isinstance(x, bytes):
        return {"b": base64.b64encode(x).decode()}
    if isinstance(x, str):
        return x
    if isinstance(x, np.void) and x.dtype.names is not None:
        return [_jsonable(x[n], rp) for n in x.dtype.names]
    if isinstance(x, np.ndarray):
        if x.dtype.hasobject:
            return {"o": [_jsonable(y, rp) for y in x.ravel()]}
        return {"a": base64.b64encode(np.ascontiguousarray(x).tobytes()).decode()}
    if isinstance(x, np.generic):
        return {"a": base64.b64encode(x.tobytes()).decode()}
    if x is None:
        return None
    raise InvalidInputError(f"cannot store a value of type {type(x).__name__}")


def _from_jsonable(j: Any, dt: np.dtype, mk: MakeRef | None = None) -> Any:
    if j is None:
        return None
    if isinstance(j, dict) and "ref" in j:  # the target's path, or a reference made from it
        return mk(j["ref"]) if mk is not None else j["ref"]
    s = h5py.check_string_dtype(dt)
    v = h5py.check_vlen_dtype(dt)
    if isinstance(j, str):
        return j if s is not None and s.encoding == "utf-8" and s.length is None else j.encode()
    if isinstance(j, dict) and "b" in j:
        return base64.b64decode(j["b"])
    if isinstance(j, list) and dt.names is not None:
        rec = np.zeros((), dtype=dt)
        for name, part in zip(dt.names, j, strict=True):
            rec[name] = _from_jsonable(part, dt.fields[name][0], mk)
        return rec[()]
    if "o" in j:
        base = v if v is not None else dt
        items = [_from_jsonable(y, base, mk) for y in j["o"]]
        out = np.empty(len(items), dtype=base)
        for i, y in enumerate(items):
            out[i] = y
        return out
    raw = base64.b64decode(j["a"])
    if v is not None:
        return np.frombuffer(raw, dtype=v).copy()
    return np.frombuffer(raw, dtype=dt).copy()


def encode_value(arr: np.ndarray | None, dt: np.dtype, shape: tuple[int, ...] | None,
                 refs: RefPath | None = None) -> Any:
    """Typed JSON for an attribute or fill value: dtype, shape (None = empty) and data.
    An object reference is recorded as its target's path (``refs`` tells it), so that it
    survives the target being rewritten elsewhere in the file."""
    enc: dict[str, Any] = {"dtype": encode_dtype(dt), "shape": None if shape is None else list(shape)}
    if shape is None or arr is None:
        enc["data"] = None
    elif dt.hasobject:
        enc["data"] = {"o": [_jsonable(x, refs) for x in np.asarray(arr, dtype=dt).reshape(-1)]}
    else:
        # (attributes and fill values are compared as encoded: no byte that holds nothing
        # may count, padding nor the unused bytes of an extended-precision float)
        a = np.ascontiguousarray(zero_unused(zero_padding(np.asarray(arr, dtype=dt))))
        enc["data"] = {"a": base64.b64encode(a.tobytes()).decode()}
    return enc


def decode_value(enc: Any, refs: MakeRef | None = None
                 ) -> tuple[np.ndarray | None, np.dtype, tuple[int, ...] | None]:
    """Inverse of :func:`encode_value`: (array or None, dtype, shape or None). An object
    reference comes back made by ``refs`` from its target's path, or as the path itself."""
    dt = decode_dtype(enc["dtype"])
    if enc["shape"] is None:
        return None, dt, None
    shape = tuple(enc["shape"])
    data = enc["data"]
    if "o" in data:
        items = [_from_jsonable(x, dt, refs) for x in data["o"]]
        arr = np.empty(len(items), dtype=dt)
        for i, x in enumerate(items):
            arr[i] = x
        return arr.reshape(shape), dt, shape
    raw = base64.b64decode(data["a"])
    return np.frombuffer(raw, dtype=dt).reshape(shape).copy(), dt, shape


def plain_value(enc: Any) -> Any:
    """An encoded value (an attribute as the state records it) as plain JSON: numbers, text
    (bytes decoded as UTF-8), lists; None for an empty dataspace, or for None (absent). An
    object reference is its target's path (None for a null one)."""
    if enc is None:
        return None
    arr, _dt, shape = decode_value(enc)
    if shape is None or arr is None:
        return None
    v = arr[()] if shape == () else arr.tolist()
    if hasattr(v, "item"):
        v = v.item()
    return plain_text(v)


def plain_text(x: Any) -> Any:
    """``x`` (values of ``ndarray.tolist()``) with bytes decoded as UTF-8, tuples as lists."""
    if isinstance(x, bytes):
        return x.decode("utf-8", "replace")
    if isinstance(x, (list, tuple)):
        return [plain_text(v) for v in x]
    if isinstance(x, np.ndarray):  # a variable-length value (its object references as paths)
        return [plain_text(v) for v in x.tolist()]
    if isinstance(x, np.generic):
        return x.item()
    return x
