"""Random histories for property tests: one transaction step chosen by (op, x)."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

OPS = st.lists(st.tuples(st.sampled_from(["append", "rewrite", "shrink", "attr", "new",
                                          "delete", "group"]),
                         st.integers(0, 2**16)), min_size=1, max_size=10)


def start(tx: Any) -> list[str]:
    """The first commit's content: a group with an attribute and two datasets."""
    tx.create_group("/g").attrs["split"] = "train"
    tx.create_dataset("/g/a", data=np.arange(80, dtype="f4").reshape(40, 2),
                      maxshape=(None, 2), chunks=(8, 2))
    tx.create_dataset("/b", data=np.arange(30, dtype="i8"), maxshape=(None,), chunks=(6,))
    return ["/g/a", "/b"]


def step(tx: Any, op: str, x: int, i: int, names: list[str]) -> None:
    """Apply operation ``op`` (seeded by ``x``) in transaction ``tx``: appends, rewrites in
    place, shrinks, attribute edits, new datasets and groups, deletes."""
    rng = np.random.default_rng(x)
    live = [p for p in names if p in tx]
    p = live[x % len(live)] if live else None
    if op == "append" and p:
        ds = tx[p]
        ds.append(rng.integers(-9, 9, (1 + x % 9, *ds.shape[1:])).astype(ds.dtype))
    elif op == "rewrite" and p and tx[p].shape[0]:
        ds = tx[p]
        a = x % ds.shape[0]
        b = min(ds.shape[0], a + 1 + x % 11)
        ds[a:b] = rng.integers(100, 200, (b - a, *ds.shape[1:])).astype(ds.dtype)
    elif op == "shrink" and p and tx[p].shape[0] > 1:
        tx[p].resize(tx[p].shape[0] - 1 - x % min(5, tx[p].shape[0] - 1))
    elif op == "attr":
        tx["/g"].attrs["step"] = i
        if x % 2 and "split" in tx["/g"].attrs:
            del tx["/g"].attrs["split"]
    elif op == "new":
        q = f"/g/n{i}"
        tx.create_dataset(q, data=rng.random((2 + x % 5, 3)), maxshape=(None, 3), chunks=(4, 3))
        names.append(q)
    elif op == "delete" and p:
        del tx[p]
    elif op == "group":
        tx.create_group(f"/h{i}").attrs["k"] = x
    else:
        tx["/g"].attrs["noop"] = i
