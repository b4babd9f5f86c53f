"""The docs keep up with the code: CLI reference generated, every command and API name documented."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import typer

from h5vc.cli import app

ROOT = Path(__file__).resolve().parent.parent


def test_cli_reference_is_current() -> None:
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_cli_docs.py"), "--check"])
    assert r.returncode == 0, "docs/cli.md is stale: run python scripts/gen_cli_docs.py"


def test_every_command_and_option_in_cli_reference() -> None:
    text = (ROOT / "docs" / "cli.md").read_text()
    group = typer.main.get_command(app)
    listed = []
    for name, cmd in group.commands.items():
        if cmd.hidden:
            assert f"h5vc {name}" not in text
            continue
        subs = getattr(cmd, "commands", {"": cmd})
        for sub, c in subs.items():
            listed.append(c)
            assert f"## h5vc {name} {sub}".rstrip() + "\n" in text
            for p in c.params:
                for opt in getattr(p, "opts", []):
                    if opt.startswith("-"):
                        assert f"`{opt}`" in text, f"{name} {sub} {opt} undocumented"
    assert len(listed) >= 17


def test_public_api_documented() -> None:
    import h5vc

    text = (ROOT / "docs" / "python.md").read_text()
    for name in h5vc.__all__:
        if name not in ("__version__", "Transaction"):
            assert name in text, f"{name} missing from docs/python.md"
    from h5vc.repository import Repository

    public = [m for m in vars(Repository) if not m.startswith("_")]
    for m in public:
        assert m in text, f"Repository.{m} missing from docs/python.md"


def test_readme_commands_exist() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "bash scripts/demo.sh" in readme and "bash scripts/test.sh" in readme
    assert (ROOT / ".ci" / "run").read_text().strip().endswith("bash scripts/test.sh")
