"""A remote: a folder or bucket prefix that holds a store's history, content-addressed, reached
through fsspec (a local folder, ``file://``, ``s3://bucket/prefix``, any other protocol).

::

    <root>/h5vc-remote.json        {"format": 1}: marks the folder as an h5vc remote
    <root>/HEAD                    the default branch's name (set by the first push)
    <root>/packs/<id>.pack         payloads, one after another: commit records and row ranges
    <root>/packs/<id>.idx          JSON: where each payload of the pack lies (written after it)
    <root>/refs/heads/<b>/<n>.json {"commit", "previous"}: branch b's n-th tip, never rewritten
    <root>/refs/tags/<t>.json      {"commit"}: a tag, never rewritten

Every payload checks itself: a commit record's xxh3-128 is its id, a row range's (over its
dtype, shape and canonical bytes) is the hash commits name it by. A pack's index is written
only once the pack is whole, so a push killed halfway leaves a pack no index names (ignored,
and written again by the next push). A branch moves by creating its next numbered tip with
an exclusive create: of two pushers that read the same tip, one creates the next and the other
is refused, so neither can lose the other's commits.
"""

from __future__ import annotations

import json
import posixpath
import re
from dataclasses import dataclass, field
from typing import Any

import xxhash

from ..errors import H5vcError, IntegrityError, InvalidInputError

REMOTE_FORMAT = 1
MARKER = "h5vc-remote.json"
PACK_BYTES = 32 << 20  # a pack closes once it holds this much
_TIP = re.compile(r"^(\d{12})\.json$")
_NAME = re.compile(r"^[A-Za-z0-9._\-/]+$")


class RemoteError(H5vcError):
    """A remote cannot be reached, is not an h5vc remote, or refused an update."""


@dataclass
class RemoteIndex:
    """What a remote holds: payload locations by commit id and by range hash."""

    commits: dict[str, tuple[str, int, int]] = field(default_factory=dict)
    objects: dict[str, tuple[str, int, int, str]] = field(default_factory=dict)  # + kind
    packs: list[str] = field(default_factory=list)
    sizes: dict[str, int] = field(default_factory=dict)  # pack -> bytes its index covers


def _fs(url: str, options: dict[str, Any]) -> tuple[Any, str]:
    import fsspec

    try:
        fs, root = fsspec.core.url_to_fs(url, **options)
    except (ImportError, ValueError) as e:
        hint = " (pip install s3fs)" if url.startswith("s3://") else ""
        raise RemoteError(f"cannot reach remote {url}: {e}{hint}") from None
    return fs, root.rstrip("/")


class RemoteStorage:
    """The files of one remote."""

    def __init__(self, url: str, options: dict[str, Any] | None = None, *, name: str | None = None):
        self.url = url
        self.name = name or url
        self.fs, self.root = _fs(url, dict(options or {}))
        protocol = self.fs.protocol
        self._local = "file" in (protocol if isinstance(protocol, (tuple, list)) else (protocol,))
        self.fs.invalidate_cache()  # fsspec shares instances: what another writer did since

    # -- paths and plain files -----------------------------------------------------------

    def _p(self, *parts: str) -> str:
        return posixpath.join(self.root, *parts)

    def _read(self, rel: str) -> bytes | None:
        try:
            return self.fs.cat_file(self._p(rel))
        except FileNotFoundError:
            return None
        except OSError as e:
            raise RemoteError(f"cannot read {rel} from remote {self.name}: {e}") from None

    def _write(self, rel: str, data: bytes, *, exclusive: bool = False) -> bool:
        """Write a whole file; with ``exclusive``, False when it exists already (atomic on a
        local folder; on object stores, as atomic as the store's conditional create)."""
        path = self._p(rel)
        try:
            if self._local:
                self.fs.makedirs(posixpath.dirname(path), exist_ok=True)
            if exclusive:
                self.fs.invalidate_cache()
                if self.fs.exists(path):
                    return False
                try:  # S3: a put with If-None-Match: * (s3fs's "x" mode)
                    with self.fs.open(path, "xb") as fh:
                        fh.write(data)
                except FileExistsError:
                    return False
                except ValueError:  # a filesystem without exclusive create
                    with self.fs.open(path, "wb") as fh:
                        fh.write(data)
                except OSError:
                    self.fs.invalidate_cache()
                    if self.fs.exists(path):  # the condition failed: another writer was first
                        return False
                    raise
                return True
            if not self._local:  # one put: an object appears whole or not at all
                self.fs.pipe_file(path, data)
                return True
            tmp = path + ".part"
            with self.fs.open(tmp, "wb") as fh:
                fh.write(data)
            self.fs.mv(tmp, path)
            return True
        except OSError as e:
            raise RemoteError(f"cannot write {rel} to remote {self.name}: {e}") from None

    def _list(self, rel: str) -> list[str]:
        try:
            self.fs.invalidate_cache(self._p(rel))
            return sorted(posixpath.basename(p.rstrip("/"))
                          for p in self.fs.ls(self._p(rel), detail=False))
        except FileNotFoundError:
            return []
        except OSError as e:
            raise RemoteError(f"cannot list {rel} on remote {self.name}: {e}") from None

    # -- the remote as a whole -----------------------------------------------------------

    def exists(self) -> bool:
        """True when the remote holds an h5vc history (checks its format)."""
        raw = self._read(MARKER)
        if raw is None:
            return False
        try:
            fmt = json.loads(raw)["format"]
        except (ValueError, KeyError, TypeError):
            raise RemoteError(f"remote {self.name} has a damaged {MARKER}") from None
        if fmt > REMOTE_FORMAT:
            raise RemoteError(f"remote {self.name} was written by a newer h5vc (remote format "
                              f"{fmt}); upgrade h5vc: pip install -U h5vc")
        return True

    def create(self) -> bool:
        """Make the folder an h5vc remote if it is not one yet; True when it was one."""
        if self.exists():
            return True
        self._write(MARKER, json.dumps({"format": REMOTE_FORMAT}).encode())
        return False

    def require(self) -> None:
        if not self.exists():
            raise RemoteError(f"{self.url} holds no h5vc history; push a store to it first "
                              "(h5vc push)")

    def default_branch(self) -> str | None:
        raw = self._read("HEAD")
        return raw.decode().strip() if raw else None

    def set_default_branch(self, name: str) -> None:
        self._write("HEAD", name.encode() + b"\n")

    # -- refs ----------------------------------------------------------------------------

    def _ref_files(self) -> list[str]:
        """Every file under ``refs/``, relative to it (one recursive listing: on S3 one LIST
        request per thousand refs)."""
        base = self._p("refs")
        try:
            self.fs.invalidate_cache(base)
            found = self.fs.find(base)
        except FileNotFoundError:
            return []
        except OSError as e:
            raise RemoteError(f"cannot list refs on remote {self.name}: {e}") from None
        strip = base.rstrip("/") + "/"
        return sorted(p[len(strip):] for p in found if p.startswith(strip))

    def branches(self, files: list[str] | None = None) -> dict[str, tuple[int, str]]:
        """Branch name -> (tip number, commit id)."""
        tips: dict[str, list[int]] = {}
        for rel in self._ref_files() if files is None else files:
            if not rel.startswith("heads/"):
                continue
            name, _, leaf = rel[len("heads/"):].rpartition("/")
            m = _TIP.match(leaf)
            if name and m:
                tips.setdefault(name, []).append(int(m.group(1)))
        out: dict[str, tuple[int, str]] = {}
        for name, ns in sorted(tips.items()):
            tip = self._branch_tip(name, sorted(ns))
            if tip is not None:
                out[name] = tip
        return out

    def _branch_tip(self, name: str, tips: list[int]) -> tuple[int, str] | None:
        """The newest readable tip of branch ``name`` among its numbered tip files ``tips``."""
        for n in reversed(tips):
            raw = self._read(f"refs/heads/{name}/{n:012d}.json")
            try:
                rec = json.loads(raw or b"")
                cid = rec["commit"]
                if isinstance(cid, str) and re.fullmatch(r"[0-9a-f]{32}", cid):
                    return n, cid
            except (ValueError, KeyError, TypeError):
                pass
            raise IntegrityError(f"branch {name} on remote {self.name} is damaged "
                                 f"(refs/heads/{name}/{n:012d}.json)")
        return None

    def refs(self) -> tuple[dict[str, tuple[int, str]], dict[str, str]]:
        """(branches, tags), from one listing of ``refs/``."""
        files = self._ref_files()
        return self.branches(files), self.tags(files)

    def move_branch(self, name: str, expect: tuple[int, str] | None, commit: str) -> bool:
        """Make ``commit`` the tip of branch ``name`` if its tip is still ``expect``; False when
        another push moved it first."""
        if not _NAME.match(name):
            raise InvalidInputError(f"cannot push branch {name!r}: its name cannot be a remote path")
        n = 0 if expect is None else expect[0] + 1
        rec = {"commit": commit, "previous": None if expect is None else expect[1]}
        return self._write(f"refs/heads/{name}/{n:012d}.json", json.dumps(rec).encode(),
                           exclusive=True)

    def tags(self, files: list[str] | None = None) -> dict[str, str]:
        out = {}
        for rel in self._ref_files() if files is None else files:
            if not rel.startswith("tags/") or not rel.endswith(".json") or rel.count("/") != 1:
                continue
            name = rel[len("tags/"):-5]
            raw = self._read(f"refs/{rel}")
            try:
                out[name] = json.loads(raw or b"")["commit"]
            except (ValueError, KeyError, TypeError):
                raise IntegrityError(f"tag {name} on remote {self.name} is damaged") from None
        return out

    def put_tag(self, name: str, commit: str) -> bool:
        if not _NAME.match(name) or "/" in name:
            raise InvalidInputError(f"cannot push tag {name!r}: its name cannot be a remote path")
        return self._write(f"refs/tags/{name}.json", json.dumps({"commit": commit}).encode(),
                           exclusive=True)

    # -- packs ---------------------------------------------------------------------------

    def index(self) -> RemoteIndex:
        idx = RemoteIndex()
        for entry in self._list("packs"):
            if not entry.endswith(".idx"):
                continue
            pack = entry[:-4]
            raw = self._read(f"packs/{entry}")
            try:
                rec = json.loads(raw or b"")
                end = 0
                for cid, (a, n) in rec["commits"].items():
                    idx.commits[cid] = (pack, int(a), int(n))
                    end = max(end, int(a) + int(n))
                for h, (a, n, kind) in rec["objects"].items():
                    idx.objects[h] = (pack, int(a), int(n), str(kind))
                    end = max(end, int(a) + int(n))
                idx.sizes[pack] = end
            except (ValueError, KeyError, TypeError):
                raise IntegrityError(f"the index of pack {pack} on remote {self.name} is "
                                     "damaged") from None
            idx.packs.append(pack)
        return idx

    def write_pack(self, commits: dict[str, bytes], objects: dict[str, tuple[bytes, str]]) -> str:
        """Write one pack holding ``commits`` (id -> record) and ``objects`` (hash -> (payload,
        kind)); its index last. Returns the pack's id."""
        parts: list[bytes] = []
        pos = 0
        where_c: dict[str, list[int]] = {}
        where_o: dict[str, list[Any]] = {}
        for cid, raw in commits.items():
            where_c[cid] = [pos, len(raw)]
            parts.append(raw)
            pos += len(raw)
        for h, (raw, kind) in objects.items():
            where_o[h] = [pos, len(raw), kind]
            parts.append(raw)
            pos += len(raw)
        index = json.dumps({"commits": where_c, "objects": where_o}, sort_keys=True).encode()
        pack = xxhash.xxh3_128(index).hexdigest()
        path = self._p("packs", pack + ".pack")
        try:
            if self._local:
                self.fs.makedirs(posixpath.dirname(path), exist_ok=True)
            with self.fs.open(path, "wb") as fh:
                for part in parts:
                    fh.write(part)
        except OSError as e:
            raise RemoteError(f"cannot write a pack to remote {self.name}: {e}") from None
        self._write(f"packs/{pack}.idx", index)
        return pack

    def read_range(self, pack: str, start: int, length: int) -> bytes:
        """``length`` bytes of pack ``pack`` from ``start`` (one ranged read)."""
        try:
            raw = self.fs.cat_file(self._p("packs", pack + ".pack"), start=start,
                                   end=start + length)
        except FileNotFoundError:
            raise IntegrityError(f"pack {pack} is missing from remote {self.name}") from None
        except OSError as e:
            raise RemoteError(f"cannot read pack {pack} from remote {self.name}: {e}") from None
        if len(raw) != length:
            raise IntegrityError(f"pack {pack} on remote {self.name} is shorter than its index says")
        return raw

    def read_pack(self, pack: str) -> bytes:
        raw = self._read(f"packs/{pack}.pack")
        if raw is None:
            raise IntegrityError(f"pack {pack} is missing from remote {self.name}")
        return raw
