"""Named points where a test can kill the process, to prove that h5vc survives a kill there.

``H5VC_CRASH_AT=name`` (or ``name:N``, the N-th time the point is reached) in the
environment makes :func:`crash_point` send SIGKILL to the process itself. Unset, each point
costs one comparison. The fault tests (tests/test_crash.py) run h5vc commands in child
processes with this set, one point at a time.
"""

from __future__ import annotations

import os
import signal

_SPEC = os.environ.get("H5VC_CRASH_AT") or None
_NAME, _, _NTH = (_SPEC or "").partition(":")
_COUNT = [0]


def crash_point(name: str) -> None:
    """SIGKILL this process when ``H5VC_CRASH_AT`` names this point (and its count is reached)."""
    if _SPEC is None or name != _NAME:
        return
    _COUNT[0] += 1
    if _COUNT[0] >= int(_NTH or 1):
        os.kill(os.getpid(), signal.SIGKILL)
