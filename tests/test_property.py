"""Stateful property test: random histories of edits, commits, checkouts and rollbacks.

A pure-Python model keeps, for every commit, the full expected content of the store (every
dataset's values, dtype, shape, chunks, maxshape, compression and fill value, and every
attribute, on groups and the root too). After every step the store on disk, read with a
fresh plain ``h5py.File``, must equal the model; after a commit or checkout ``status`` must be
clean.

Destructive edits (overwrite, shrink, delete, replace) go through transactions, which
preserve committed rows first; appends, grows, attributes and new datasets are done either
in transactions or with plain h5py followed by ``repo.commit``.

Run longer with ``H5VC_HYPOTHESIS_PROFILE=long``.
"""

from __future__ import annotations

import copy
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from h5vc import DirtyStoreError, InvalidInputError, Repository, ViewGroup

META = ".h5vc"

# no "explain" phase: it replays a failing history hundreds of times (minutes, not seconds)
PHASES = (Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink)
settings.register_profile(
    # one failure is shrunk and reported (several distinct ones take minutes to shrink)
    "h5vc-default", max_examples=25, stateful_step_count=20, deadline=None, phases=PHASES,
    report_multiple_bugs=False, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
settings.register_profile(
    "h5vc-long", max_examples=500, stateful_step_count=50, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
PROFILE = "h5vc-" + os.environ.get("H5VC_HYPOTHESIS_PROFILE", "default")

# -- dtypes and deterministic row data ---------------------------------------------------------

COMPOUND = np.dtype([("x", "<i4"), ("y", "<f8"), ("s", "S3")])
DTYPES: dict[str, Any] = {
    "f4": np.dtype("f4"),
    "i8": np.dtype("i8"),
    "bool": np.dtype(bool),
    "vstr": h5py.string_dtype(),
    "S4": np.dtype("S4"),
    "comp": COMPOUND,
    "2d": np.dtype("f8"),
}
TAIL = {"2d": (3,)}
FILLABLE = {"f4": -2.5, "i8": -7}


def rows(key: str, k: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if key == "f4":
        return rng.standard_normal(k).astype("f4")
    if key == "i8":
        return rng.integers(-(2**62), 2**62, size=k, dtype="i8")
    if key == "bool":
        return rng.integers(0, 2, size=k).astype(bool)
    if key == "vstr":
        words = ["", "a", "héllo", "☃" * 5, "x" * 40]
        return np.array([f"{words[int(rng.integers(5))]}{seed}:{i}" * int(rng.integers(0, 3))
                         for i in range(k)], dtype=object)
    if key == "S4":
        letters = np.frombuffer(b"abcdefgh", dtype="S1")
        return np.array([b"".join(rng.choice(letters, int(rng.integers(0, 5))))
                         for _ in range(k)], dtype="S4")
    if key == "comp":
        a = np.zeros(k, dtype=COMPOUND)
        a["x"] = rng.integers(-1000, 1000, size=k)
        a["y"] = rng.standard_normal(k)
        a["s"] = [b"s%d" % int(rng.integers(0, 99)) for _ in range(k)]
        return a
    if key == "2d":
        return rng.standard_normal((k, 3))
    raise AssertionError(key)


def fill_rows(node: dict[str, Any], k: int) -> np.ndarray:
    """Rows a grow exposes: the fill value (HDF5's default when none was set)."""
    key = node["key"]
    if key == "vstr":
        return np.array([""] * k, dtype=object)
    out = np.zeros((k, *TAIL.get(key, ())), dtype=DTYPES[key])
    if node["fill"] is not None:
        out[...] = node["fill"]
    return out


def _reference() -> tuple[dict[str, bytes], dict[str, Any]]:
    """The HDF5 type and default fill value of each dtype, as plain h5py writes them."""
    h5t, fills = {}, {}
    with h5py.File("ref.h5", "w", driver="core", backing_store=False) as f:
        for key, dt in DTYPES.items():
            ds = f.create_dataset(key, shape=(0, *TAIL.get(key, ())), dtype=dt, chunks=True,
                                  maxshape=(None, *TAIL.get(key, ())))
            h5t[key] = ds.id.get_type().encode()
            fills[key] = None if dt.hasobject else canon(ds.fillvalue)
    return h5t, fills


# -- canonical views: the model's and the file's ------------------------------------------------

def canon(x: Any) -> Any:
    if isinstance(x, (str, bytes)):
        return (type(x).__name__, x)
    if isinstance(x, np.ndarray) and x.dtype.hasobject:
        return ("o", x.shape, [canon(y) for y in x.reshape(-1)])
    a = np.asarray(x)
    if a.dtype.names is not None:
        return ("rec", a.shape, tuple((n, canon(a[n])) for n in a.dtype.names))
    return (a.dtype.str, a.shape, np.ascontiguousarray(a).tobytes())


def dtype_sig(dt: np.dtype) -> Any:
    s = h5py.check_string_dtype(dt)
    v = h5py.check_vlen_dtype(dt)
    return (dt.str, dt.names, None if s is None else (s.encoding, s.length),
            None if v is None else getattr(v, "__name__", str(v)))


H5T, REF_FILL = _reference()


def model_view(model: dict[str, dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for p, node in model.items():
        attrs = {k: canon(v) for k, v in node["attrs"].items()}
        if node["k"] == "g":
            out[p] = {"k": "g", "attrs": attrs}
            continue
        key = node["key"]
        data = node["data"]
        dt = DTYPES[key]
        fill = (None if dt.hasobject else REF_FILL[key] if node["fill"] is None
                else canon(np.array(node["fill"], dtype=dt)[()]))
        out[p] = {
            "k": "d", "attrs": attrs, "h5t": H5T[key], "dtype": dtype_sig(dt),
            "shape": data.shape, "chunks": node["chunks"],
            "maxshape": (None, *TAIL.get(key, ())),
            "compression": node["compression"],
            "compression_opts": 4 if node["compression"] == "gzip" else None,
            "fill": fill, "values": canon(data),
        }
    return out


def file_view(path: Path) -> dict[str, Any]:
    """The store at ``path`` read with a fresh plain h5py.File (no h5vc involved)."""
    out: dict[str, Any] = {}

    def attrs(obj: Any) -> dict[str, Any]:
        return {k: canon(obj.attrs[k]) for k in obj.attrs}

    with h5py.File(path, "r") as f:
        out["/"] = {"k": "g", "attrs": attrs(f)}

        def visit(name: str, obj: Any) -> None:
            if name == META or name.startswith(META + "/"):
                return
            p = "/" + name
            if not isinstance(obj, h5py.Dataset):
                out[p] = {"k": "g", "attrs": attrs(obj)}
                return
            dt = obj.dtype
            if h5py.check_string_dtype(dt) is not None and dt.hasobject:
                values = obj.asstr()[()]
            else:
                values = obj[()]
            out[p] = {
                "k": "d", "attrs": attrs(obj), "h5t": obj.id.get_type().encode(),
                "dtype": dtype_sig(dt), "shape": obj.shape, "chunks": obj.chunks,
                "maxshape": obj.maxshape, "compression": obj.compression,
                "compression_opts": obj.compression_opts,
                "fill": None if dt.hasobject else canon(obj.fillvalue),
                "values": canon(values),
            }

        f.visititems(visit)
    return out


VIEW_KEYS = ("k", "attrs", "dtype", "shape", "chunks", "maxshape", "compression", "values")


def revision_view(view: Any) -> dict[str, Any]:
    """A revision read through ``repo.at(rev)``, in the terms of :func:`file_view`."""
    def attrs(obj: Any) -> dict[str, Any]:
        return {k: canon(obj.attrs[k]) for k in obj.attrs}

    out: dict[str, Any] = {"/": {"k": "g", "attrs": attrs(view)}}

    def visit(name: str, obj: Any) -> None:
        p = "/" + name
        if isinstance(obj, ViewGroup):
            out[p] = {"k": "g", "attrs": attrs(obj)}
            return
        dt = obj.dtype
        values = obj[()]
        if h5py.check_string_dtype(dt) is not None and dt.hasobject:
            values = np.array([v.decode() if isinstance(v, bytes) else v
                               for v in np.asarray(values).reshape(-1)],
                              dtype=object).reshape(np.shape(values))
        out[p] = {"k": "d", "attrs": attrs(obj), "dtype": dtype_sig(dt), "shape": obj.shape,
                  "chunks": obj.chunks, "maxshape": obj.maxshape,
                  "compression": obj.compression, "values": canon(values)}

    view.visititems(visit)
    return out


def subset(v: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {p: {k: node[k] for k in keys if k in node} for p, node in v.items()}


def assert_views_equal(got: dict[str, Any], want: dict[str, Any], what: str) -> None:
    assert sorted(got) == sorted(want), f"{what}: paths differ"
    for p in want:
        for key in want[p]:
            assert got[p][key] == want[p][key], f"{what}: {p} {key} differs"
    assert got == want


# -- operations --------------------------------------------------------------------------------

DS_PATHS = ["/g/a", "/g/b", "/c"]
GROUPS = ["/g", "/h"]
ATTR_NAMES = ["x", "y", "z"]

attr_values = st.one_of(
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=False, width=64),
    st.text(alphabet=st.characters(blacklist_characters="\x00",
                                   blacklist_categories=("Cs",)), max_size=8),
    st.builds(lambda dt, n, seed: (np.arange(n * 2, dtype=dt) * (seed + 1)).reshape(n, 2),
              st.sampled_from(["i4", "f8", "u1"]), st.integers(1, 3), st.integers(0, 5)),
)

# An op names its target by index into what exists when it runs (so that most ops apply);
# the fixed histories below name paths directly.
IDX = st.integers(0, 50)
op_create = st.tuples(st.just("create"), IDX, st.sampled_from(sorted(DTYPES)),
                      st.integers(0, 7), st.integers(0, 1000), st.integers(2, 5), st.booleans(),
                      st.booleans())
op_append = st.tuples(st.just("append"), IDX, st.integers(1, 7), st.integers(0, 1000))
op_overwrite = st.tuples(st.just("overwrite"), IDX, st.integers(0, 100), st.integers(1, 6),
                         st.integers(0, 1000))
op_resize = st.tuples(st.just("resize"), IDX, st.integers(0, 12))
op_setattr = st.tuples(st.just("setattr"), IDX, st.sampled_from(ATTR_NAMES), attr_values)
op_delattr = st.tuples(st.just("delattr"), IDX, st.sampled_from(ATTR_NAMES))
op_delete = st.tuples(st.just("delete"), IDX)
op_group = st.tuples(st.just("group"), st.just("/h"))
op_replace = st.tuples(st.just("replace"), IDX, st.sampled_from(sorted(DTYPES)),
                       st.integers(0, 6), st.integers(0, 1000))

TX_OPS = st.one_of(op_create, op_append, op_overwrite, op_resize, op_setattr, op_delattr,
                   op_delete, op_group, op_replace)
PLAIN_OPS = st.one_of(op_create, op_append, op_resize, op_setattr, op_delattr, op_group)


def _is_ds(model: dict[str, Any], p: str) -> bool:
    return p in model and model[p]["k"] == "d"


def _new_node(key: str, data: np.ndarray, chunk: int, gzip: bool, fill: bool) -> dict[str, Any]:
    return {"k": "d", "key": key, "data": data, "chunks": (chunk, *TAIL.get(key, ())),
            "compression": "gzip" if gzip else None,
            "fill": FILLABLE[key] if fill and key in FILLABLE else None, "attrs": {}}


def _create_kwargs(node: dict[str, Any]) -> dict[str, Any]:
    kw: dict[str, Any] = {"dtype": DTYPES[node["key"]], "chunks": node["chunks"],
                          "maxshape": (None, *TAIL.get(node["key"], ()))}
    if node["compression"]:
        kw["compression"] = node["compression"]
    if node["fill"] is not None:
        kw["fillvalue"] = node["fill"]
    return kw


def resolve_target(model: dict[str, Any], op: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """``op`` with its target index replaced by a path (and attribute name) that exists."""
    kind, i = op[0], op[1]
    if isinstance(i, str):
        return op
    if kind == "create":
        cands = [p for p in DS_PATHS if p not in model]
    elif kind in ("append", "overwrite", "resize", "replace"):
        cands = [p for p in sorted(model) if model[p]["k"] == "d"]
    elif kind == "setattr":
        cands = sorted(model)
    elif kind == "delete":
        cands = [p for p in sorted(model) if p != "/"]
    elif kind == "delattr":
        pairs = [(p, a) for p in sorted(model) for a in sorted(model[p]["attrs"])]
        if not pairs:
            return None
        p, name = pairs[i % len(pairs)]
        return (kind, p, name)
    else:
        raise AssertionError(kind)
    if not cands:
        return None
    return (kind, cands[i % len(cands)], *op[2:])


def apply_op(model: dict[str, Any], op: tuple[Any, ...], target: Any, *, tx: bool) -> bool:
    """Apply ``op`` to the model and to ``target`` (a transaction, or the h5py file).

    Returns False (changing nothing) when the op does not apply to the current content.
    """
    resolved = resolve_target(model, op)
    if resolved is None:
        return False
    op = resolved
    kind, p = op[0], op[1]
    if kind in ("create", "replace"):
        if kind == "create":
            _, _, key, n, seed, chunk, gzip, fill = op
            if p in model:
                return False
        else:
            _, _, key, n, seed = op
            if not _is_ds(model, p):
                return False
            chunk, gzip, fill = 3, False, False
        node = _new_node(key, rows(key, n, seed), chunk, gzip, fill)
        kw = _create_kwargs(node)
        if kind == "replace":
            target.replace(p, node["data"], **kw)
        else:
            target.create_dataset(p, data=node["data"], **kw)
        parent = p.rsplit("/", 1)[0] or "/"
        if parent not in model:
            model[parent] = {"k": "g", "attrs": {}}
        model[p] = node
        return True
    if kind == "append":
        _, _, k, seed = op
        if not _is_ds(model, p):
            return False
        node = model[p]
        new = rows(node["key"], k, seed)
        if tx:
            target[p].append(new)
        else:
            ds = target[p]
            n = ds.shape[0]
            ds.resize(n + k, axis=0)
            ds[n:] = new
        node["data"] = np.concatenate([node["data"], new])
        return True
    if kind == "overwrite":
        _, _, lo, k, seed = op
        if not _is_ds(model, p) or len(model[p]["data"]) == 0:
            return False
        node = model[p]
        n = len(node["data"])
        lo = lo % n
        hi = min(n, lo + k)
        new = rows(node["key"], hi - lo, seed)
        target[p][lo:hi] = new
        node["data"] = node["data"].copy()
        node["data"][lo:hi] = new
        return True
    if kind == "resize":
        _, _, n_new = op
        if not _is_ds(model, p):
            return False
        node = model[p]
        n = len(node["data"])
        if not tx and n_new < n:
            return False  # shrinking with plain h5py destroys committed rows
        if tx:
            target[p].resize(n_new)
        else:
            target[p].resize(n_new, axis=0)
        if n_new <= n:
            node["data"] = node["data"][:n_new].copy()
        else:
            node["data"] = np.concatenate([node["data"], fill_rows(node, n_new - n)])
        return True
    if kind == "setattr":
        _, _, name, value = op
        if p not in model:
            return False
        target[p].attrs[name] = value
        model[p]["attrs"][name] = value
        return True
    if kind == "delattr":
        _, _, name = op
        if p not in model or name not in model[p]["attrs"]:
            return False
        del target[p].attrs[name]
        del model[p]["attrs"][name]
        return True
    if kind == "delete":
        if p not in model:
            return False
        del target[p]
        for q in [q for q in model if q == p or q.startswith(p + "/")]:
            del model[q]
        return True
    if kind == "group":
        if p in model:
            return False
        target.create_group(p)
        model[p] = {"k": "g", "attrs": {}}
        return True
    raise AssertionError(kind)


class _Same:
    """The machine's own open repository, as a context that does not close it."""

    def __init__(self, repo: Repository) -> None:
        self.repo = repo

    def __enter__(self) -> Repository:
        return self.repo

    def __exit__(self, *exc: object) -> None:
        return None


class Boom(Exception):
    pass


# -- the state machine ---------------------------------------------------------------------------

class H5vcMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="h5vc-prop-"))
        self.path = self.dir / "store.h5"
        self.repo: Repository | None = None
        self.model: dict[str, Any] = {}
        self.snapshots: dict[str, dict[str, Any]] = {}
        self.parents: dict[str, str | None] = {}
        self.commits: list[str] = []
        self.head: str = ""
        self.attached = True  # HEAD is on branch main
        self.main_tip: str = ""
        self.tags: dict[str, str] = {}

    # -- helpers

    def _record(self, cid: str) -> None:
        assert cid not in self.snapshots
        self.snapshots[cid] = copy.deepcopy(self.model)
        self.parents[cid] = self.head or None
        self.commits.append(cid)
        self.head = cid
        if self.attached:
            self.main_tip = cid

    @property
    def pending(self) -> bool:
        return model_view(self.model) != model_view(self.snapshots[self.head])

    def _reopen(self) -> Repository:
        assert self.repo is not None
        self.repo.close()
        self.repo = Repository.open(self.path)
        return self.repo

    def _checkout(self, rev: str, cid: str, attached: bool) -> None:
        assert not self.pending
        repo = self.repo
        assert repo is not None
        res = repo.checkout(rev)
        assert res.commit.id == cid
        assert res.discarded == []
        self.head = cid
        self.attached = attached
        self.model = copy.deepcopy(self.snapshots[cid])
        assert repo.head.id == cid
        assert repo.branch == ("main" if attached else None)
        assert repo.status().changes == []

    # -- setup / teardown

    @initialize(adopt=st.booleans(), key=st.sampled_from(sorted(DTYPES)), n=st.integers(0, 6),
                seed=st.integers(0, 1000))
    def init_store(self, adopt: bool, key: str, n: int, seed: int) -> None:
        self.model = {"/": {"k": "g", "attrs": {}}}
        if adopt:
            with h5py.File(self.path, "w") as f:
                apply_op(self.model, ("create", "/g/a", key, n, seed, 3, False, True), f, tx=False)
                apply_op(self.model, ("setattr", "/", "x", "adopted"), f, tx=False)
                apply_op(self.model, ("setattr", "/g", "y", np.arange(3.0)), f, tx=False)
        self.repo = Repository.init(self.path)
        self._record(self.repo.head.id)
        assert self.repo.branch == "main"
        assert self.repo.status().changes == []

    def teardown(self) -> None:
        if self.repo is not None:
            self.repo.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- rules: edits

    @precondition(lambda self: not self.pending)
    @rule(ops=st.lists(TX_OPS, min_size=1, max_size=4), msg=st.sampled_from(["tx", "edit"]))
    def transaction(self, ops: list[tuple[Any, ...]], msg: str) -> None:
        repo = self.repo
        assert repo is not None
        before = model_view(self.model)
        applied = 0
        with repo.transaction(msg) as tx:
            for op in ops:
                applied += apply_op(self.model, op, tx, tx=True)
        if not applied:
            assert tx.commit is None
            return
        if model_view(self.model) == before and tx.commit is None:
            return  # the ops cancelled out
        assert tx.commit is not None
        assert tx.commit.parents == (self.head,)
        assert tx.commit.message == msg
        self._record(tx.commit.id)
        assert repo.head.id == tx.commit.id
        assert repo.status().changes == []

    @precondition(lambda self: not self.pending)
    @rule(ops=st.lists(TX_OPS, min_size=0, max_size=4))
    def failing_transaction(self, ops: list[tuple[Any, ...]]) -> None:
        repo = self.repo
        assert repo is not None
        scratch = copy.deepcopy(self.model)
        with pytest.raises(Boom):
            with repo.transaction("doomed") as tx:
                for op in ops:
                    apply_op(scratch, op, tx, tx=True)
                raise Boom()
        assert tx.commit is None
        assert repo.head.id == self.head
        assert repo.status(verify=True).changes == []
        assert_views_equal(file_view(self.path), model_view(self.model), "after rollback")

    @rule(ops=st.lists(PLAIN_OPS, min_size=1, max_size=4))
    def plain_edit(self, ops: list[tuple[Any, ...]]) -> None:
        repo = self.repo
        assert repo is not None
        for op in ops:
            apply_op(self.model, op, repo.file, tx=False)

    @precondition(lambda self: self.pending)
    @rule(verify=st.booleans(), reopen=st.booleans())
    def commit(self, verify: bool, reopen: bool) -> None:
        repo = self._reopen() if reopen else self.repo
        assert repo is not None
        assert repo.status(verify=verify).changes != []
        c = repo.commit("plain", verify=verify)
        assert c.parents == (self.head,)
        self._record(c.id)
        assert repo.status().changes == []

    @precondition(lambda self: not self.pending)
    @rule()
    def commit_nothing(self) -> None:
        assert self.repo is not None
        with pytest.raises(InvalidInputError):
            self.repo.commit("nothing")

    # -- rules: history

    @precondition(lambda self: not self.pending)
    @rule(i=st.integers(0, 10**6), prefix=st.booleans())
    def checkout_commit(self, i: int, prefix: bool) -> None:
        cid = self.commits[i % len(self.commits)]
        self._checkout(cid[:16] if prefix else cid, cid, attached=False)

    @precondition(lambda self: not self.pending)
    @rule()
    def checkout_main(self) -> None:
        self._checkout("main", self.main_tip, attached=True)

    @precondition(lambda self: not self.pending and self.parents[self.head] is not None)
    @rule(depth=st.integers(1, 4))
    def checkout_back(self, depth: int) -> None:
        cid: str | None = self.head
        steps = 0
        while steps < depth and self.parents[cid] is not None:  # type: ignore[index]
            cid = self.parents[cid]  # type: ignore[index]
            steps += 1
        assert cid is not None
        self._checkout(f"HEAD~{steps}", cid, attached=False)

    @rule()
    def tag(self) -> None:
        assert self.repo is not None
        name = f"t{len(self.tags)}"
        assert self.repo.create_tag(name) == self.head
        self.tags[name] = self.head

    @precondition(lambda self: not self.pending and self.tags)
    @rule(i=st.integers(0, 100))
    def checkout_tag(self, i: int) -> None:
        name = sorted(self.tags)[i % len(self.tags)]
        self._checkout(name, self.tags[name], attached=False)

    @precondition(lambda self: self.pending)
    @rule()
    def checkout_refused_when_dirty(self) -> None:
        assert self.repo is not None
        with pytest.raises(DirtyStoreError):
            self.repo.checkout(self.commits[0])
        assert self.repo.head.id == self.head

    # -- invariants

    @invariant()
    def store_equals_model(self) -> None:
        if self.repo is None:
            return
        self.repo.close()
        assert_views_equal(file_view(self.path), model_view(self.model), "store vs model")
        self.repo = Repository.open(self.path)
        assert self.repo.head.id == self.head
        assert self.repo.branch == ("main" if self.attached else None)
        if self.attached:
            assert self.repo.branches()["main"] == self.main_tip
        changes = self.repo.status(verify=True).changes
        if self.pending:
            assert changes != []
        else:
            assert changes == []

    @invariant()
    def every_commit_reads_back_without_checkout(self) -> None:
        if self.repo is None:
            return
        before = self.path.stat().st_mtime_ns, self.path.stat().st_size
        with _Same(self.repo) as repo:
            for cid in self.commits:
                got = revision_view(repo.at(cid))
                want = subset(model_view(self.snapshots[cid]), VIEW_KEYS)
                assert_views_equal(got, want, f"at({cid[:10]})")
        assert (self.path.stat().st_mtime_ns, self.path.stat().st_size) == before

    @invariant()
    def history_is_consistent(self) -> None:
        if self.repo is None:
            return
        log = [c.id for c in self.repo.log()]
        chain = []
        cid: str | None = self.head
        while cid is not None:
            chain.append(cid)
            cid = self.parents[cid]
        assert log == chain


H5vcMachine.TestCase.settings = settings.get_profile(PROFILE)
TestH5vcHistory = H5vcMachine.TestCase


def test_every_commit_can_be_checked_out_at_the_end() -> None:
    """A fixed history touching every dtype; then every commit is checked out in turn."""
    m = H5vcMachine()
    try:
        m.init_store(adopt=True, key="comp", n=4, seed=1)
        for i, key in enumerate(sorted(DTYPES)):
            p = DS_PATHS[i % 3]
            m.transaction([("delete", p)], "d")
            m.transaction([("create", p, key, 5, i, 2 + i % 4, i % 2 == 0, True)], "c")
            m.store_equals_model()
            m.transaction([("append", p, 3, i), ("overwrite", p, 1, 3, i + 7)], "e")
            m.store_equals_model()
            m.transaction([("resize", p, 6)], "shrink")
            m.plain_edit([("append", p, 2, i), ("setattr", p, "x", np.arange(2.0) + i)])
            m.commit(verify=i % 2 == 0, reopen=True)
            m.store_equals_model()
            m.transaction([("resize", p, 10)], "grow")  # exposes the fill value
            m.store_equals_model()
        for i in range(len(m.commits)):
            m.checkout_commit(i, prefix=False)
            m.store_equals_model()
        m.checkout_main()
        m.store_equals_model()
    finally:
        m.teardown()


# -- regressions: minimal histories the state machine found ----------------------------------------

@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "store.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("g/a", data=np.arange(6.0), chunks=(2,), maxshape=(None,))
        f["g/a"].attrs["unit"] = "m"
    Repository.init(path).close()
    return path


def _values(path: Path, p: str = "g/a") -> list[float]:
    with h5py.File(path, "r") as f:
        return f[p][()].tolist()


@pytest.mark.parametrize("n", [6, 7, 4])
def test_overwrite_after_resize_in_one_transaction(store: Path, n: int) -> None:
    """Rows overwritten after a resize in the same transaction are committed and preserved."""
    with Repository.open(store) as repo:
        with repo.transaction("resize, then overwrite") as tx:
            tx["/g/a"].resize(n)
            tx["/g/a"][0:2] = [-1.0, -2.0]
        assert tx.commit is not None
        assert repo.status(verify=True).changes == []
        want = ([-1.0, -2.0, 2.0, 3.0, 4.0, 5.0, 0.0])[:n]
        assert _values(store) == want
        repo.checkout("HEAD~1")
        assert repo.status(verify=True).changes == []
    assert _values(store) == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    with Repository.open(store) as repo:
        repo.checkout("main")
    assert _values(store) == want


def test_rollback_after_resize_and_append(store: Path) -> None:
    with Repository.open(store) as repo:
        with pytest.raises(Boom):
            with repo.transaction("doomed") as tx:
                tx["/g/a"].resize(5)
                tx["/g/a"].append([99.0])
                raise Boom()
        assert repo.status(verify=True).changes == []
    assert _values(store) == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]


def test_overwrite_of_rows_appended_in_the_same_transaction(store: Path) -> None:
    with Repository.open(store) as repo:
        with repo.transaction("append, then fix the new row") as tx:
            tx["/g/a"].append([1.0])
            tx["/g/a"][6:7] = [7.0]
        assert repo.status(verify=True).changes == []
        repo.checkout("HEAD~1")
        repo.checkout("main")
        assert repo.status(verify=True).changes == []
    assert _values(store) == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 7.0]


def test_replace_with_same_shape_is_committed(store: Path) -> None:
    with Repository.open(store) as repo:
        with repo.transaction("replace") as tx:
            tx.replace("/g/a", np.full(6, 9.0), chunks=(2,), maxshape=(None,))
        assert tx.commit is not None
        assert repo.status(verify=True).changes == []
        repo.checkout("HEAD~1")
    assert _values(store) == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]


def test_rollback_of_replace_with_same_shape(store: Path) -> None:
    with Repository.open(store) as repo:
        with pytest.raises(Boom):
            with repo.transaction("doomed") as tx:
                tx.replace("/g/a", np.full(6, 9.0), chunks=(2,), maxshape=(None,))
                raise Boom()
        assert repo.status(verify=True).changes == []
    assert _values(store) == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]


@pytest.mark.parametrize("first", ["resize", "append", "dataset attr", "group attr"])
@pytest.mark.parametrize("delete", ["/g", "/g/a"])
def test_delete_after_own_edit_in_one_transaction(store: Path, first: str, delete: str) -> None:
    """Deleting what this transaction already changed is not an "uncommitted change"."""
    with Repository.open(store) as repo:
        with repo.transaction("edit, then delete") as tx:
            if first == "resize":
                tx["/g/a"].resize(3)
            elif first == "append":
                tx["/g/a"].append([1.0])
            elif first == "dataset attr":
                tx["/g/a"].attrs["unit"] = "km"
            else:
                tx["/g"].attrs["x"] = 1
            del tx[delete]
        assert tx.commit is not None
        assert delete not in repo.file
        assert repo.status(verify=True).changes == []
        repo.checkout("HEAD~1")
    assert _values(store) == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
