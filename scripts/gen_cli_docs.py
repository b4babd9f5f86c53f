"""Write docs/cli.md from the CLI itself, so the reference never drifts (tests check it)."""

from __future__ import annotations

import sys
import typing
from pathlib import Path

import typer

from h5vc.cli import app

HEADER = """# CLI reference

Generated from the commands themselves by `python scripts/gen_cli_docs.py`; do not edit by hand.

Every command but `init` works on `--store/-s PATH`, or on the one store in the current
folder when it is omitted. Errors print one line `Error: ...` on stderr and exit with code 1;
usage mistakes exit with code 2. h5vc prints no colour, so `NO_COLOR` is always honoured.
"""


def _argument_help(cmd: object, name: str) -> str:
    # typer keeps argument help on the annotation, not always on the click parameter
    hints = typing.get_type_hints(cmd.callback, include_extras=True)  # type: ignore[attr-defined]
    for meta in getattr(hints.get(name), "__metadata__", ()):
        if getattr(meta, "help", None):
            return meta.help
    return ""


def commands() -> list[tuple[str, object]]:
    """Every visible command as (full name, click command), sub-commands of groups included."""
    group = typer.main.get_command(app)
    found = []
    for name, cmd in group.commands.items():  # type: ignore[attr-defined]
        if cmd.hidden:
            continue
        if hasattr(cmd, "commands"):
            found += [(f"{name} {sub}", c) for sub, c in cmd.commands.items() if not c.hidden]
        else:
            found.append((name, cmd))
    return found


def render() -> str:
    out = [HEADER]
    for name, cmd in commands():
        out.append(f"\n## h5vc {name}\n")
        args = " ".join(p.human_readable_name for p in cmd.params if p.param_type_name == "argument")
        out.append(f"    h5vc {name}{' ' + args if args else ''} [OPTIONS]\n")
        out.append((cmd.help or "").strip() + "\n")
        rows = []
        for p in cmd.params:
            if p.param_type_name == "argument":
                rows.append((f"`{p.human_readable_name}`", p.help or _argument_help(cmd, p.name)))
            else:
                flags = ", ".join(f"`{o}`" for o in p.opts)
                rows.append((flags, p.help or ""))
        if rows:
            out.append("| argument / option | meaning |\n|---|---|")
            out.extend(f"| {a} | {b} |" for a, b in rows)
            out.append("")
    return "\n".join(out).rstrip() + "\n"


if __name__ == "__main__":
    target = Path(__file__).resolve().parent.parent / "docs" / "cli.md"
    if sys.argv[1:] == ["--check"]:
        sys.exit(0 if target.read_text() == render() else 1)
    target.write_text(render())
    print(f"wrote {target}")
