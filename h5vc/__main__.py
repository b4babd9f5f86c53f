"""``python -m h5vc``: the CLI. ``python -m h5vc git-hook NAME ...`` (what the installed git
hooks run) skips the typer layer, so a hook starts about 30 ms sooner."""

import sys

if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "git-hook" and not sys.argv[2].startswith("-"):
        from .errors import H5vcError
        from .git.link import run_hook

        try:
            sys.exit(run_hook(sys.argv[2], sys.argv[3:]))
        except H5vcError as e:
            print(f"Error: {e.message}", file=sys.stderr)
            sys.exit(1)
    from .cli.app import main

    main()
