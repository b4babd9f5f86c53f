"""The command line (parse, call one repository method, render): :data:`app`."""

from __future__ import annotations

from .app import app, main

__all__ = ["app", "main"]
