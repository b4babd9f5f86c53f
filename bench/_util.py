"""Small helpers shared by the benchmark scripts (tables, statistics, profiling, provenance)."""

from __future__ import annotations

import cProfile
import datetime as _dt
import hashlib
import json
import os
import platform
import pstats
import statistics
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

median = statistics.median


def mean(xs: Sequence[float]) -> float:
    return statistics.fmean(xs)


def ms(seconds: float) -> str:
    """Seconds as a readable millisecond figure."""
    v = seconds * 1e3
    if v >= 100:
        return f"{v:.0f} ms"
    if v >= 10:
        return f"{v:.1f} ms"
    return f"{v:.2f} ms"


def ratio(x: float) -> str:
    return f"{x:.2f}x"


def verdict(value: float, target: float) -> str:
    return "ok" if value <= target else "MISS"


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, file: Any = None) -> None:
    """A plain fixed-width table (also valid Markdown)."""
    out = file or sys.stdout
    cells = [[str(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h)
              for i, h in enumerate(headers)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |", file=out)
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|", file=out)
    for r in cells:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |", file=out)


def progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def alternate(repeat: int, runs: dict[str, Callable[[int], float]]) -> dict[str, list[float]]:
    """Each variant once per round, the order reversed every other round; the times it returns."""
    names = list(runs)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(repeat):
        for name in names if r % 2 == 0 else names[::-1]:
            progress(f"round {r + 1}: {name}")
            times[name].append(runs[name](r))
    return times


def timed_add(source: Path, store: Path, to: str) -> float:
    """Seconds for ``repo.add([source], to=to)`` into a new store (creating it is not timed)."""
    import time

    from h5vc import Repository

    with Repository.init(store) as repo:
        t0 = time.perf_counter()
        repo.add([source], to=to, message="import")
        return time.perf_counter() - t0


def provenance() -> dict[str, Any]:
    """What was measured: h5vc revision (and whether the tree was dirty), versions, cores."""
    import h5py
    import numpy as np

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                                  timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    # a digest of the sources measured, since h5vc/ may have uncommitted changes
    digest = hashlib.sha1()
    for p in sorted((ROOT / "h5vc").glob("*.py")):
        digest.update(p.name.encode() + b"\0" + p.read_bytes())
    return {
        "date": _dt.date.today().isoformat(),
        "git": git("rev-parse", "--short", "HEAD"),
        "h5vc_dirty": bool(git("status", "--porcelain", "--", "h5vc")),
        "h5vc_sources_sha1": digest.hexdigest()[:12],
        "python": platform.python_version(),
        "h5py": h5py.__version__,
        "hdf5": h5py.version.hdf5_version,
        "numpy": np.__version__,
        "cpus": os.cpu_count(),
    }


def emit_json(name: str, figures: dict[str, Any]) -> None:
    """The final machine-readable line every script prints."""
    print(json.dumps({"bench": name, **provenance(), **figures}, sort_keys=False))


def profile_h5vc(fn: Callable[[], Any], *, top: int = 15, title: str = "") -> list[dict[str, Any]]:
    """Run ``fn`` under cProfile; print and return h5vc's functions by cumulative time.

    ``share`` is the function's cumulative time over the total profiled time.
    """
    prof = cProfile.Profile()
    prof.enable()
    fn()
    prof.disable()
    st = pstats.Stats(prof)
    total = max(st.total_tt, 1e-12)  # type: ignore[attr-defined]
    rows = []
    for (filename, line, func), (_cc, nc, tt, ct, _callers) in st.stats.items():  # type: ignore[attr-defined]
        norm = filename.replace("\\", "/")
        if "/h5vc/" not in norm or "/bench/" in norm:
            continue
        rows.append({"func": f"{Path(norm).stem}.{func}:{line}", "calls": nc,
                     "tottime": tt, "cumtime": ct, "share": ct / total})
    rows.sort(key=lambda r: r["cumtime"], reverse=True)
    rows = rows[:top]
    # the heaviest non-h5vc leaves too, to show where time ends up (h5py, json, ...)
    leaves = sorted(((tt, f"{Path(fn_).name}:{fn_name}") for (fn_, _l, fn_name), (_c, _n, tt, _ct, _cl)
                     in st.stats.items()), reverse=True)[:8]  # type: ignore[attr-defined]
    print(f"\nprofile{': ' + title if title else ''} (total {total:.3f} s)")
    print_table(["h5vc function", "calls", "self", "cumulative", "share"],
                [[r["func"], r["calls"], f"{r['tottime']:.3f} s", f"{r['cumtime']:.3f} s",
                  f"{100 * r['share']:.0f}%"] for r in rows])
    print("\nheaviest functions by self time (any module)")
    print_table(["function", "self", "share"],
                [[name, f"{tt:.3f} s", f"{100 * tt / total:.0f}%"] for tt, name in leaves])
    return rows
