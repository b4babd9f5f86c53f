"""The hooks an h5vc plugin implements (pluggy project name and entry-point group: ``h5vc``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("h5vc")
hookimpl = pluggy.HookimplMarker("h5vc")


@hookspec
def register_importers(register: Callable[[Any], None]) -> None:
    """Call ``register(importer)`` once for each :class:`h5vc.importing.Importer` you provide."""
