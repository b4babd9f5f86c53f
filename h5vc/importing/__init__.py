"""Importing files: the plugin API (:mod:`.api`), the registry of installed importers
(:mod:`.registry`, :mod:`.hookspecs`) and the pipeline (:mod:`.pipeline`).

The names below are loaded on first use, so that listing plugins does not load h5py.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = ["COMPRESSIONS", "AddResult", "Batch", "BadInputError", "ImportContext", "Importer",
           "ImporterOption", "Source", "compression_kwargs", "filters_for", "run_import"]

if TYPE_CHECKING:
    from .api import BadInputError, Batch, ImportContext, Importer, ImporterOption, Source
    from .pipeline import COMPRESSIONS, AddResult, compression_kwargs, filters_for, run_import

_WHERE = {"Batch": "api", "BadInputError": "api", "ImportContext": "api", "Importer": "api",
          "ImporterOption": "api", "Source": "api", "COMPRESSIONS": "pipeline",
          "AddResult": "pipeline", "compression_kwargs": "pipeline", "filters_for": "pipeline",
          "run_import": "pipeline"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module 'h5vc.importing' has no attribute {name!r}")
