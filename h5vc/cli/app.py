"""The ``h5vc`` command line: a thin typer layer over :class:`h5vc.Repository`.

Every command opens a repository, calls one method and renders the result as text or JSON.
``main()`` is the one error boundary: an :class:`H5vcError` becomes ``Error: ...`` on stderr
and exit code 1. Heavy modules (h5py, numpy) are imported inside the commands.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import click
import typer
from typer.core import TyperCommand, TyperGroup

from ..errors import H5vcError, InvalidInputError, NotARepositoryError

if TYPE_CHECKING:
    from ..repository import Commit, Repository

class _ErrorBoundary(TyperGroup):
    """Turns every H5vcError into one ``Error: ...`` line on stderr and exit code 1."""

    def invoke(self, ctx: Any) -> Any:
        import os

        try:
            return super().invoke(ctx)
        except H5vcError as e:
            typer.echo(f"Error: {e.message}", err=True)
            if getattr(e, "hdf5_failed", False):
                _exit_now()
            raise typer.Exit(1) from None
        except (click.exceptions.Exit, click.exceptions.Abort, click.exceptions.ClickException):
            raise  # click's own control flow (--help, usage errors)
        except BrokenPipeError:
            # the reader of our output went away (`h5vc log | head`): end quietly, as a
            # process killed by SIGPIPE would, with nothing more written to the closed pipe
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            raise typer.Exit(141) from None
        except (OSError, KeyError, RuntimeError, ValueError, TypeError, IndexError) as e:
            # HDF5 reading damaged bytes, or a full disk: one line, never a traceback
            if os.environ.get("H5VC_DEBUG"):
                raise
            from ..engine.space import disk_full

            text = (str(e).splitlines() or [type(e).__name__])[0].strip()
            if disk_full(e):
                typer.echo("Error: the disk holding the store is full; free some space and try "
                           "again (`h5vc verify` checks that history is intact)", err=True)
                _exit_now()
            else:
                typer.echo(f"Error: unexpected failure ({type(e).__name__}: {text}); the store "
                           "may be damaged: check it with `h5vc verify` (set H5VC_DEBUG=1 to see "
                           "the traceback)", err=True)
            raise typer.Exit(1) from None


def _exit_now() -> None:
    """End the process without closing the store: after HDF5 failed to write (a full disk) it
    may crash while closing; committed history never depends on that close (a kill at any
    moment is survived), and the next command finishes or undoes what was under way."""
    import os
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(1)


app = typer.Typer(
    cls=_ErrorBoundary,
    name="h5vc",
    help="Version control for HDF5 stores: commit, log and check out appends and attribute changes.",
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

STORE_SUFFIXES = (".h5", ".hdf5", ".hdf", ".he5", ".h5vc.h5", ".nc", ".nc4", ".h5ad", ".mat")

StoreOpt = Annotated[
    Path | None,
    typer.Option("--store", "-s", help="The store (HDF5 file). Default: the one store in this folder."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def find_store(folder: Path) -> Path:
    """The single h5vc store in ``folder``; an error naming the choices otherwise."""
    cands = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in STORE_SUFFIXES)
    stores = [p for p in cands if _is_store(p)]
    if len(stores) == 1:
        return stores[0]
    if not stores:
        missing = missing_stores(folder)
        if len(missing) == 1:
            raise NotARepositoryError(_missing_store_text(missing[0]))
        rewritten = [ptr for ptr in _pointers(folder) if ptr.store in cands]
        if len(rewritten) == 1:
            raise NotARepositoryError(_rewritten_text(rewritten[0]))
        hint = f" ({', '.join(p.name for p in cands)} are not h5vc stores)" if cands else ""
        raise NotARepositoryError(
            f"no h5vc store in {folder}{hint}; create one with `h5vc init FILE.h5` or pass --store"
        )
    raise InvalidInputError(
        f"several stores in {folder}: {', '.join(p.name for p in stores)}; choose one with --store"
    )


def _pointer_of(store: Path) -> Any:
    """The readable pointer file beside ``store`` naming it, or None."""
    from ..pointer import pointer_path, read_pointer

    if not pointer_path(store).is_file():
        return None
    try:
        ptr = read_pointer(pointer_path(store))
    except H5vcError:
        return None
    return ptr if ptr.store == store.absolute() else None


def _pointers(folder: Path) -> list[Any]:
    """The readable pointer files in ``folder``."""
    from ..pointer import POINTER_SUFFIX, read_pointer

    out = []
    for p in sorted(folder.glob("*" + POINTER_SUFFIX)):
        try:
            out.append(read_pointer(p))
        except H5vcError:
            continue
    return out


def missing_stores(folder: Path) -> list[Any]:
    """The pointer files in ``folder`` whose store is not there (a fresh clone of the code)."""
    return [ptr for ptr in _pointers(folder) if not ptr.store.exists()]


def _rewritten_text(ptr: Any) -> str:
    """A pointer's store is an HDF5 file without its h5vc history: rewritten by another tool."""
    name = _relative(ptr.store)
    where = f" on remote {ptr.remote}" if ptr.remote else ""
    fix = (f"record the file as a new commit on top of that history: h5vc adopt -s {name}"
           if ptr.remote else "its history is lost unless a copy or a remote holds it: "
           f"h5vc adopt -s {name} --remote URL records the file on top of a remote's history")
    return (f"{name} no longer holds its h5vc history (another program rewrote the file?); "
            f"{_relative(ptr.path)} names commit {ptr.commit[:10]}{where}; {fix}")


def _missing_store_text(ptr: Any) -> str:
    name = _relative(ptr.store)
    if ptr.remote is None:
        return (f"{name} is not here: {_relative(ptr.path)} names its commit {ptr.commit[:10]} but "
                "no remote to get it from; copy the store here, or have its maker add one (h5vc remote add "
                "NAME URL) and push")
    return (f"{name} is not here: {_relative(ptr.path)} names its commit {ptr.commit[:10]} on "
            f"remote {ptr.remote}; get the store with `h5vc pull`")


def _is_store(p: Path) -> bool:
    from ..repository import Repository

    return Repository.is_store(p)


_WAIT = [0.0]  # --wait SECONDS (before the command), or $H5VC_WAIT


@app.callback()
def _options(
    wait: Annotated[float | None, typer.Option(
        "--wait", metavar="SECONDS", help="When another process is writing the store, wait up "
        "to SECONDS for it instead of failing (default: $H5VC_WAIT, else 0). Give it before "
        "the command: h5vc --wait 60 commit -m ...")] = None,
) -> None:
    """Version control for HDF5 stores."""
    import os

    if wait is None:
        try:
            wait = float(os.environ.get("H5VC_WAIT") or 0)
        except ValueError:
            raise InvalidInputError("H5VC_WAIT must be a number of seconds") from None
    if wait < 0:
        raise InvalidInputError("--wait takes a number of seconds, 0 or more")
    _WAIT[0] = wait


def _open(store: Path | None, *, write: bool, recover: bool = True) -> Repository:
    import os

    from ..repository import Repository

    path = store if store is not None else find_store(Path.cwd())
    ptr = _pointer_of(path)  # one stat when there is no pointer file
    if ptr is not None and not path.exists():  # a fresh clone of the code
        raise NotARepositoryError(_missing_store_text(ptr))
    if ptr is not None and path.is_file() and not Repository.is_store(path):
        raise NotARepositoryError(_rewritten_text(ptr))  # rewritten by another program
    if write:
        repo = Repository.open(path, mode="r+", wait=_WAIT[0], recover=recover)
    else:
        from ..repository import TruncatedStoreError

        try:
            repo = Repository.open(path, mode="r")
        except TruncatedStoreError:
            if not (recover and os.access(path, os.W_OK)):
                raise
            with Repository.open(path, mode="r+", wait=_WAIT[0]) as fixer:
                _echo_recovered(["extended the file to its recorded end (a write was "
                                 "interrupted)", *fixer.recovered])
            repo = Repository.open(path, mode="r")
        if repo.pending and recover and os.access(path, os.W_OK):
            # what a killed process left is finished or undone by any command that can write
            from ..errors import LockedError

            repo.close()
            try:
                with Repository.open(path, mode="r+", wait=_WAIT[0]) as fixer:
                    _echo_recovered(fixer.recovered)
            except LockedError:
                pass  # a writer is at work: it finishes what it started; read as it is
            repo = Repository.open(path, mode="r")
        for note in repo.pending:
            typer.echo(f"Note: {note}", err=True)
    _echo_recovered(repo.recovered)
    return repo


def _echo_recovered(notes: list[str]) -> None:
    for note in notes:
        typer.echo(f"Recovered: {note}", err=True)


def _relative(p: Path) -> str:
    from ..git.link import shown

    return shown(p)


def _pointer_note(repo: Repository, short_id: str) -> None:
    """After HEAD moved: the pointer file followed; git will see it changed."""
    from ..git.link import quoted

    if repo.pointer is not None:
        typer.echo(f"{_relative(repo.pointer)} now names {short_id}: commit it with your code "
                   f"(git add {quoted(repo.pointer)})")


def _echo_json(obj: Any) -> None:
    typer.echo(json.dumps(obj, indent=2, ensure_ascii=False))


# -- rendering ------------------------------------------------------------------------------

def _value_repr(enc: dict[str, Any] | None) -> str:
    if enc is None:
        return "-"
    from ..engine.hashing import decode_value

    arr, dt, shape = decode_value(enc)
    if shape is None:
        return f"empty {dt}"
    v = arr[()] if shape == () else arr.tolist()
    if isinstance(v, bytes):
        v = v.decode("utf-8", "replace")
    text = repr(v.item() if hasattr(v, "item") and shape == () and not isinstance(v, str) else v)
    return text if len(text) <= 60 else text[:57] + "..."


def change_lines(changes: list[dict[str, Any]]) -> list[str]:
    """One human line per change, as status and show print them."""
    out = []
    for ch in changes:
        op, p = ch["op"], ch["path"]
        if op == "add_group":
            out.append(f"created group    {p}")
        elif op == "add_dataset":
            out.append(f"created dataset  {p}")
        elif op == "delete":
            out.append(f"deleted          {p}")
        elif op == "redefine":
            diff = [k for k in ch["meta"] if ch["meta"][k] != ch["old"].get(k)]
            out.append(f"redefined        {p} ({', '.join(diff)} changed)")
        elif op == "rows":
            a, b = ch["from"], ch["to"]
            rew = sum(min(r[1], a) - r[0] for r in ch["ranges"] if r[0] < a)
            if b > a:
                out.append(f"+{b - a:,} rows".ljust(17) + f"{p} ({a:,} -> {b:,})")
            elif b < a:
                out.append(f"-{a - b:,} rows".ljust(17) + f"{p} ({a:,} -> {b:,})")
            if rew:
                out.append(f"~{rew:,} rewritten".ljust(17) + p)
        elif op == "attr_order":
            if ch["names"] is not None:
                out.append(f"attr order       {p}: {', '.join(ch['names'])}"[:160])
        elif op == "attr":
            name = f"{p}@{ch['name']}" if p != "/" else f"/@{ch['name']}"
            if ch["value"] is None:
                out.append(f"attr deleted     {name}")
            elif ch["old"] is None:
                out.append(f"attr set         {name} = {_value_repr(ch['value'])}")
            else:
                out.append(f"attr changed     {name}: {_value_repr(ch['old'])} -> "
                           f"{_value_repr(ch['value'])}")
    return out


def _log_line(c: Commit) -> str:
    when = c.time[:16].replace("T", " ")
    return f"{c.short_id}  {when}  {c.author}  {c.message}  ({c.summary})"


# -- commands -------------------------------------------------------------------------------

@app.command()
def init(
    path: Annotated[Path, typer.Argument(help="The HDF5 file: created, or adopted with its content.")],
    message: Annotated[str, typer.Option("--message", "-m", help="Message of the first commit.")] = "init",
    pointer: Annotated[bool | None, typer.Option(
        "--pointer/--no-pointer", help="Write the pointer file PATH.h5vc for git (default: when "
        "PATH is in a git work tree, which also gets PATH added to its .gitignore).")] = None,
) -> None:
    """Create a store, or adopt an existing HDF5 file (its content becomes the first commit)."""
    from ..repository import Repository

    existed = path.exists()
    with Repository.init(path, message=message, pointer=pointer) as repo:
        head = repo.head
        assert head is not None
        verb = "Adopted" if existed else "Created"
        typer.echo(f"{verb} store {path} on branch main, commit {head.short_id} ({head.summary})")
        for note in repo.git_notes:
            typer.echo(note[0].upper() + note[1:])
        if repo.pointer is not None and repo.in_git:
            from ..git.link import quoted

            track = [repo.pointer]
            if any(n.startswith("ignored") for n in repo.git_notes):
                track.append(repo.path.parent / ".gitignore")
            typer.echo(f"Track the pointer with your code: git add {' '.join(map(quoted, track))}")


@app.command()
def status(
    store: StoreOpt = None,
    verify: Annotated[bool, typer.Option("--verify", help="Rehash committed rows even when the "
                                         "file's seal says only h5vc wrote it (done anyway "
                                         "when another program did).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Show what differs from HEAD: created/deleted objects, rows, attributes."""
    with _open(store, write=False) as repo:
        st = repo.status(verify=verify)
        if as_json:
            _echo_json({"head": st.head, "branch": st.branch, "clean": st.clean,
                        "changes": st.changes, "pointer": st.pointer,
                        "interrupted": st.interrupted,
                        "lost": [loss.to_json() for loss in st.lost],
                        "selection": repo.selection})
            return
        where = f"On branch {st.branch}" if st.branch else "HEAD detached"
        named = ""
        if st.pointer and st.pointer == st.head and repo.pointer is not None:
            named = f" (the commit {_relative(repo.pointer)} names)"
        typer.echo(f"{where}, at {st.head[:10] if st.head else '(no commits)'}{named}")
        if st.pointer_stale:
            ptr = _relative(repo.pointer) if repo.pointer else "the pointer file"
            named = f"names {st.pointer[:10]}" if st.pointer else "is not a valid pointer"
            typer.echo(f"Pointer {ptr} {named}: `h5vc pointer` records HEAD in it, "
                       "`h5vc sync` brings the store to it")
        if st.interrupted:
            typer.echo(f"Unfinished: {st.interrupted}")
        sel = repo.selection
        if sel is not None:
            typer.echo(f"Partial store: holds {', '.join(sel)}; the rest is on remote "
                       f"{repo.default_remote} (`h5vc pull --select PATH` brings more in)")
        if st.lost:
            typer.echo("Committed rows destroyed outside h5vc (not preserved; `h5vc commit` "
                       "refuses unless --accept-loss):")
            for loss in st.lost:
                typer.echo(f"  {loss}")
        if st.clean:
            typer.echo("nothing to commit: the store equals HEAD")
        else:
            typer.echo("Uncommitted changes (record them with `h5vc commit -m MESSAGE`):")
            for line in change_lines(st.changes):
                typer.echo(f"  {line}")


@app.command()
def commit(
    message: Annotated[str, typer.Option("--message", "-m", help="What changed.")],
    store: StoreOpt = None,
    verify: Annotated[bool, typer.Option("--verify", help="Rehash committed rows even when the "
                                         "file's seal says only h5vc wrote it (done anyway "
                                         "when another program did).")] = False,
    author: Annotated[str | None, typer.Option("--author", help="Author (default: $H5VC_AUTHOR; "
                                               "in a git work tree git's user.name and user.email; "
                                               "else your user name).")] = None,
    allow_empty: Annotated[bool, typer.Option("--allow-empty", help="Commit even when nothing "
                                              "changed.")] = False,
    accept_loss: Annotated[bool, typer.Option("--accept-loss", help="Commit even though another "
                                              "tool destroyed committed rows h5vc never preserved "
                                              "(older commits then cannot be fully checked "
                                              "out).")] = False,
) -> None:
    """Record every change since HEAD, made by any tool, as a new commit."""
    with _open(store, write=True) as repo:
        c = repo.commit(message, verify=verify, author=author, allow_empty=allow_empty,
                        accept_loss=accept_loss)
        typer.echo(f"[{repo.branch or 'detached'} {c.short_id}] {c.message}: {c.summary}")
        _pointer_note(repo, c.short_id)


@app.command()
def log(
    rev: Annotated[str, typer.Argument(help="Start from this revision.")] = "HEAD",
    store: StoreOpt = None,
    n: Annotated[int | None, typer.Option("-n", "--max-count", help="Show at most N commits.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List commits, newest first: short id, date, author, message, summary."""
    with _open(store, write=False) as repo:
        commits = list(repo.log(rev, limit=n))
        if as_json:
            _echo_json([c.to_json() for c in commits])
            return
        for c in commits:
            typer.echo(_log_line(c))


@app.command()
def show(
    rev: Annotated[str, typer.Argument(help="The commit to show.")] = "HEAD",
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show one commit and its changes."""
    with _open(store, write=False) as repo:
        c = repo.get_commit(rev)
        if as_json:
            _echo_json(c.to_json(changes=True))
            return
        typer.echo(f"commit {c.id}")
        if c.parents:
            typer.echo(f"parent {c.parents[0]}")
        typer.echo(f"author {c.author}")
        typer.echo(f"date   {c.time}")
        typer.echo("")
        typer.echo(f"    {c.message}")
        typer.echo("")
        for line in change_lines(c.changes):
            typer.echo(f"  {line}")


@app.command()
def checkout(
    rev: Annotated[str, typer.Argument(help="Commit id or prefix, branch, tag, HEAD~N.")],
    store: StoreOpt = None,
    force: Annotated[bool, typer.Option("--force", "-f", help="Discard uncommitted changes "
                                        "(they are listed).")] = False,
) -> None:
    """Make the store equal to REV, in place; whatever it removes is preserved."""
    with _open(store, write=True) as repo:
        r = repo.checkout(rev, force=force)
        if r.discarded:
            typer.echo("Discarded uncommitted changes:")
            for line in change_lines(r.discarded):
                typer.echo(f"  {line}")
        where = f"branch {r.branch}" if r.branch else "detached HEAD"
        typer.echo(f"{where} at {r.commit.short_id} {r.commit.message} "
                   f"({r.report.rows_written:,} rows written, "
                   f"{r.report.rows_preserved:,} rows preserved)")
        if repo.backup_fetched:
            typer.echo(f"note: fetched {repo.backup_fetched} committed range(s) the store no "
                       f"longer held from remote {repo.default_remote} (checked)", err=True)
        _pointer_note(repo, r.commit.short_id)


@app.command()
def verify(
    store: StoreOpt = None,
    rev: Annotated[str | None, typer.Option("--rev", help="Check only what this commit needs "
                                            "(its history, its ranges, live or preserved).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check the whole store against its history: journal, refs, snapshot, preserved rows,
    HEAD's live rows. Exit 1 when anything committed is damaged or lost."""
    with _open(store, write=False) as repo:
        rep = repo.verify(rev)
        if as_json:
            _echo_json(rep.to_json())
        else:
            for p in rep.problems:
                typer.echo(f"problem: {p}")
            for note in rep.notes:
                typer.echo(f"note: {note}")
            what = f"what {rev} needs" if rev else "the whole store"
            typer.echo(f"Checked {what}: {rep.commits:,} commits, {rep.objects:,} preserved "
                       f"objects, {rep.live_rows:,} live rows; "
                       + ("no problems" if rep.ok else f"{len(rep.problems)} problem(s)"))
        if not rep.ok:
            raise typer.Exit(1)


@app.command()
def repair(store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Rebuild refs and the state snapshot from the history, finish or undo an interrupted
    operation, and say what could not be saved (exit 1 then)."""
    with _open(store, write=True, recover=False) as repo:
        rep = repo.repair()
        if as_json:
            _echo_json(rep.to_json())
        else:
            for a in rep.actions:
                typer.echo(f"repaired: {a}")
            for p in rep.unsaved:
                typer.echo(f"could not save: {p}")
            typer.echo("The store is sound." if not rep.unsaved
                       else f"{len(rep.unsaved)} problem(s) remain.")
        if rep.unsaved:
            raise typer.Exit(1)


def _refs_command(kind: str, name: str | None, rev: str, delete: bool, store: Path | None,
                  as_json: bool) -> None:
    if name is None:
        if delete:
            raise InvalidInputError(f"give the name of the {kind} to delete")
        with _open(store, write=False) as repo:
            refs = repo.branches() if kind == "branch" else repo.tags()
            current = repo.branch if kind == "branch" else None
            if as_json:
                _echo_json(refs)
                return
            for k, v in refs.items():
                mark = "*" if k == current else " "
                typer.echo(f"{mark} {k}  {v[:10]}")
        return
    with _open(store, write=True) as repo:
        if delete:
            (repo.delete_branch if kind == "branch" else repo.delete_tag)(name)
            typer.echo(f"Deleted {kind} {name}")
        else:
            cid = (repo.create_branch if kind == "branch" else repo.create_tag)(name, rev)
            typer.echo(f"Created {kind} {name} at {cid[:10]}")


@app.command()
def branch(
    name: Annotated[str | None, typer.Argument(help="New branch name; none lists branches.")] = None,
    rev: Annotated[str, typer.Argument(help="Where the branch starts.")] = "HEAD",
    store: StoreOpt = None,
    delete: Annotated[bool, typer.Option("--delete", "-d", help="Delete the branch.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """List branches, or create one at REV (switch to it with `h5vc checkout NAME`)."""
    _refs_command("branch", name, rev, delete, store, as_json)


@app.command()
def tag(
    name: Annotated[str | None, typer.Argument(help="New tag name; none lists tags.")] = None,
    rev: Annotated[str, typer.Argument(help="The commit to tag.")] = "HEAD",
    store: StoreOpt = None,
    delete: Annotated[bool, typer.Option("--delete", "-d", help="Delete the tag.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """List tags, or tag REV with NAME."""
    _refs_command("tag", name, rev, delete, store, as_json)


def _parse_attr(text: str) -> tuple[str, Any]:
    """``key=value``: int, float, bool, a JSON list, else a string."""
    if "=" not in text:
        raise InvalidInputError(f"--attr {text!r} is not key=value")
    key, raw = text.split("=", 1)
    if not key:
        raise InvalidInputError(f"--attr {text!r} has an empty key")
    from ..paths import check_text

    check_text(key, "--attr name")
    low = raw.lower()
    if low in ("true", "false"):
        return key, low == "true"
    for conv in (int, float):
        try:
            return key, conv(raw)
        except ValueError:
            pass
    if raw.startswith("["):
        try:
            value = json.loads(raw)
        except ValueError:
            raise InvalidInputError(f"--attr {key}: {raw!r} is not a valid JSON list") from None
        if not value or len({type(v) for v in value}) != 1 or isinstance(value[0], (list, dict)):
            raise InvalidInputError(f"--attr {key}: a list must be non-empty, flat and of one type")
        return key, value
    return key, raw


_PLUGIN_PARAM = "plugin_option_"  # click parameter names of importer-declared options


class _AddCommand(TyperCommand):
    """``h5vc add``, plus the options the installed importers declare (loaded when ``add``
    runs or shows its help, so other commands never load plugins)."""

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        if not getattr(self, "_with_importers", False):
            self._with_importers = True
            self.params.extend(_importer_params({o for p in self.params
                                                 for o in p.opts if o.startswith("--")}))
        return super().get_params(ctx)

    def invoke(self, ctx: click.Context) -> Any:
        from ..importing import registry as plugins_mod

        core = {o[2:] for p in self.params if not (p.name or "").startswith(_PLUGIN_PARAM)
                for o in p.opts if o.startswith("--")}
        plugins_mod.importer_options(core)  # a plugin's bad declaration: one clear error
        ctx.meta["importer_options"] = {
            k[len(_PLUGIN_PARAM):]: ctx.params.pop(k) for k in list(ctx.params)
            if k.startswith(_PLUGIN_PARAM)}
        return super().invoke(ctx)


def _importer_params(taken: set[str]) -> list[click.Parameter]:
    from ..importing import registry as plugins_mod

    try:
        declared = plugins_mod.importer_options({t[2:] for t in taken})
    except H5vcError:
        return []  # a broken plugin: `h5vc add` itself reports it when it loads the importers
    out: list[click.Parameter] = []
    for d in declared:
        who = ", ".join(d.importers)
        what = "importer" if len(d.importers) == 1 else "importers"
        text = f"{d.help} (the {who} {what})" if d.help else f"(the {who} {what})"
        if d.kind == "flag":
            out.append(click.Option([f"--{d.name}", _PLUGIN_PARAM + d.key], is_flag=True,
                                    default=None, help=text))
        else:
            kind = {"str": click.STRING, "int": click.INT, "float": click.FLOAT}[d.kind]
            out.append(click.Option([f"--{d.name}", _PLUGIN_PARAM + d.key], type=kind,
                                    default=None, help=text, metavar=d.metavar or None))
    return out


@app.command(cls=_AddCommand)
def add(
    paths: Annotated[list[Path], typer.Argument(help="Files and folders to import.")],
    to: Annotated[str, typer.Option("--to", help="Group to import into (created if needed).")] = "/",
    message: Annotated[str | None, typer.Option("--message", "-m", help="Commit message (default: "
                                                "'add PATHS to GROUP').")] = None,
    store: StoreOpt = None,
    importer: Annotated[str | None, typer.Option("--importer", help="Use this importer for every "
                                                 "file instead of choosing by suffix.")] = None,
    attr: Annotated[list[str] | None, typer.Option("--attr", help="key=value attribute on the "
                                                   "target group (int, float, bool, str, JSON list); "
                                                   "repeatable.")] = None,
    category_from: Annotated[str, typer.Option("--category-from", help="parent: a file's "
                                               "sub-folder becomes a sub-group; none: no "
                                               "categories.")] = "parent",
    compression: Annotated[str, typer.Option("--compression", help="gzip (level 1), lzf, none, "
                                             "blosc-zstd, blosc-lz4 (these need hdf5plugin).")] = "gzip",
    option: Annotated[list[str] | None, typer.Option("--option", "-o", help="key=value option "
                                                     "for the importer; repeatable.")] = None,
    no_commit: Annotated[bool, typer.Option("--no-commit", help="Write, but leave the changes "
                                            "uncommitted.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be imported; "
                                          "write nothing.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Import files again even if they were "
                                        "imported before.")] = False,
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Skip unreadable files (listed) "
                                           "instead of stopping.")] = False,
    follow_symlinks: Annotated[bool, typer.Option("--follow-symlinks", help="Follow symbolic "
                                                  "links in folders that lead outside them "
                                                  "(by default such a link stops the import).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Import images, CSV, npy ... into the store by category and attribute, as one commit.

    Options whose help ends in "(the ... importer)" are declared by the installed importers
    (`h5vc plugins` lists them)."""
    if category_from not in ("parent", "none"):
        raise InvalidInputError("--category-from is parent or none")
    options: dict[str, Any] = {"category_from": category_from}
    declared = click.get_current_context().meta.get("importer_options", {})
    options.update({k: v for k, v in declared.items() if v is not None})
    for o in option or []:
        k, v = _parse_attr(o)
        options[k] = v
    attrs = dict(_parse_attr(a) for a in attr or [])
    with _open(store, write=not dry_run) as repo:
        r = repo.add(paths, to=to, message=message, importer=importer, attrs=attrs,
                     compression=compression, force=force, commit=not no_commit, dry_run=dry_run,
                     skip_bad=skip_bad, options=options, progress=not as_json,
                     **({"follow_symlinks": True} if follow_symlinks else {}))
        if as_json:
            _echo_json(r.to_json())
            return
        for note in r.notices:
            typer.echo(f"note: {note}", err=True)
        for rel in r.already:
            typer.echo(f"skipped {rel}: already imported (use --force to import it again)", err=True)
        for rel, why in r.bad:
            typer.echo(f"skipped {rel}: {why}", err=True)
        if dry_run:
            per = ", ".join(f"{n} by {k}" for k, n in r.importers.items()) or "nothing"
            typer.echo(f"would import {len(r.imported)} file(s) into {r.target}: {per}")
            return
        if r.commit is not None:
            typer.echo(f"[{repo.branch or 'detached'} {r.commit.short_id}] {r.commit.message}: "
                       f"{len(r.imported)} file(s), {r.commit.summary}")
            _pointer_note(repo, r.commit.short_id)
        elif r.imported:
            typer.echo(f"imported {len(r.imported)} file(s) into {r.target}; not committed "
                       "(h5vc commit -m ... records them)")
        else:
            typer.echo("nothing new to import")


@app.command("ls")
def ls_(
    path: Annotated[str, typer.Argument(help="Group or dataset to list.")] = "/",
    rev: Annotated[str | None, typer.Option("--rev", help="As of this revision (commit, "
                                            "branch, tag, HEAD~N), without a checkout.")] = None,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show the tree under PATH: groups, datasets (shape, dtype), attributes, counts."""
    with _open(store, write=False) as repo:
        tree = repo.tree(path, rev=rev)
        if as_json:
            _echo_json(tree)
            return
        for line in _tree_lines(tree, 0):
            typer.echo(line)


@app.command()
def diff(
    args: Annotated[list[str] | None, typer.Argument(metavar="[A [B]] [PATH...]", help=(
        "No revision: uncommitted changes against HEAD; one: that revision against the live "
        "store; two: A against B. PATHs (from the root, /group/dataset) limit it."))] = None,
    stat: Annotated[bool, typer.Option("--stat", help="One line per path.")] = False,
    values: Annotated[bool, typer.Option("--values", help="Also show the rows that differ "
                                         f"(ranges of up to {_VALUES_MAX} rows).")] = False,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show what differs per path: rows appended, removed or rewritten, metadata, attributes,
    groups created or deleted (from recorded hashes; no rows are read without --values)."""
    revs = [a for a in args or [] if not a.startswith("/")]
    paths = [a for a in args or [] if a.startswith("/")]
    if len(revs) > 2:
        raise InvalidInputError(f"at most two revisions (got {', '.join(revs)}); paths start "
                                "with /")
    with _open(store, write=False) as repo:
        d = repo.diff(*revs, paths=paths or None)
        shown_values = _diff_values(repo, d) if values else {}
    if as_json:
        out = d.to_json()
        for p in out["paths"]:
            if p["path"] in shown_values:
                p["values"] = shown_values[p["path"]]
        _echo_json(out)
        return
    a = d.a[:10] if d.a else "(empty)"
    b = d.b[:10] if d.b else "the live store"
    if not d:
        typer.echo(f"no differences between {a} and {b}" + (f" under {', '.join(paths)}"
                                                               if paths else ""))
        return
    typer.echo(f"diff {a} .. {b}")
    code = {"created": "A", "deleted": "D", "changed": "M", "replaced": "R"}
    for p in d:
        head = f"{code[p.status]} {p.path}"
        if stat:
            detail = p.stat()
            typer.echo(f"{head}  {p.kind}" + (f"  {detail}" if detail else ""))
            continue
        rows = ""
        if p.rows is not None and p.kind == "dataset":
            rows = (f"  {p.rows[1]:,} rows" if p.status == "created" else
                    f"  {p.rows[0]:,} rows" if p.status == "deleted" else
                    f"  {p.rows[0]:,} -> {p.rows[1]:,} rows" if p.rows[0] != p.rows[1] else
                    f"  {p.rows[0]:,} rows")
        typer.echo(f"{head}  {p.kind}{rows}")
        if p.status in ("created", "deleted"):
            continue
        for k, (old, new) in p.meta.items():
            typer.echo(f"    meta {k}: {json.dumps(old)} -> {json.dumps(new)}")
        for label, sign, spans in (("appended", "+", p.appended), ("removed", "-", p.removed),
                                   ("rewritten", "~", p.rewritten)):
            for s0, e0 in spans:
                typer.echo(f"    {sign} rows {s0}:{e0} {label} ({e0 - s0:,})")
        for k, (old, new) in p.attrs.items():
            show = lambda v: "(absent)" if v is None else json.dumps(v, ensure_ascii=False)  # noqa: E731
            typer.echo(f"    @ {k}: {show(old)} -> {show(new)}")
        for line in shown_values.get(p.path, {}).get("text", []):
            typer.echo(f"      {line}")


_VALUES_MAX = 20


def _diff_values(repo: Repository, d: Any) -> dict[str, dict[str, Any]]:
    """Old and new rows of the small ranges that differ (for --values)."""
    import numpy as np

    from ..engine.hashing import plain_text

    old = repo.at(d.a) if d.a else None
    new = repo.at(d.b) if d.b else None
    out: dict[str, dict[str, Any]] = {}
    for p in d:
        if p.kind != "dataset":
            continue

        def rows(view: Any, s: int, e: int, path: str = p.path) -> Any:
            if view is not None:
                return np.asarray(view[path][s:e])
            return np.asarray(repo.file[path][s:e])  # the live store (opened read-only)

        text: list[str] = []
        data: list[dict[str, Any]] = []
        for label, spans, sides in (("appended", p.appended, (new,)),
                                    ("removed", p.removed, (old,)),
                                    ("rewritten", p.rewritten, (old, new))):
            for s0, e0 in spans:
                if e0 - s0 > _VALUES_MAX:
                    text.append(f"rows {s0}:{e0}: {e0 - s0:,} rows, more than --values shows "
                                f"(see h5vc cat REV:{p.path} --slice {s0}:{e0})")
                    continue
                got = [rows(v, s0, e0) for v in sides]
                entry: dict[str, Any] = {"kind": label, "rows": [s0, e0]}
                if label == "rewritten":
                    entry["old"], entry["new"] = (plain_text(g.tolist()) for g in got)
                    for i in range(e0 - s0):
                        if not np.array_equal(got[0][i], got[1][i]):
                            text.append(f"row {s0 + i}: {got[0][i].tolist()} -> {got[1][i].tolist()}")
                else:
                    entry["new" if label == "appended" else "old"] = plain_text(got[0].tolist())
                    sign = "+" if label == "appended" else "-"
                    text += [f"{sign} row {s0 + i}: {got[0][i].tolist()}" for i in range(e0 - s0)]
                data.append(entry)
        if text or data:
            out[p.path] = {"text": text, "ranges": data}
    return out


@app.command()
def export(
    rev: Annotated[str, typer.Argument(help="The revision to export: commit, branch, tag, "
                                       "HEAD~N.")],
    out: Annotated[Path, typer.Argument(help="The file (h5) or folder (npy, images) to write.")],
    select: Annotated[list[str] | None, typer.Option("--select", help="A group or dataset to "
                                                     "export, with all below it (repeat it; "
                                                     "default: everything).")] = None,
    where: Annotated[list[str] | None, typer.Option("--where", help="ATTR=VALUE: keep only "
                                                    "the groups and datasets with this "
                                                    "attribute value, and all below them "
                                                    "(repeat it: all must hold).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="h5: one plain HDF5 file; npy: a folder "
                                     "of .npy files, one per dataset; images: the image files "
                                     "of groups made by the images importer.")] = "h5",
    force: Annotated[bool, typer.Option("--force", "-f", help="Replace OUT if it exists.")] = False,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write a selection of any revision, by category and attribute, to a new file or folder."""
    with _open(store, write=False) as repo:
        rep = repo.export(rev, out, select=select, where=where, format=fmt, force=force)
    if as_json:
        _echo_json({"out": str(rep.out), "commit": rep.commit, "format": rep.format,
                    "datasets": rep.paths, "rows": rep.rows, "files": rep.files,
                    "bytes": rep.bytes})
        return
    what = (f"{len(rep.paths)} dataset{'s' if len(rep.paths) != 1 else ''}, {rep.rows:,} rows"
            if rep.format != "images" else f"{rep.files:,} images")
    typer.echo(f"exported {what} as of {rep.commit[:10]} to {rep.out} ({rep.bytes / 2**20:.1f} MiB)")


@app.command()
def cat(
    target: Annotated[str, typer.Argument(metavar="REV:PATH", help="A dataset as of a revision: "
                                          "v1:/train/cat/images, HEAD~2:/sensors/a (a bare "
                                          "PATH is HEAD's).")],
    attr: Annotated[str | None, typer.Option("--attr", help="Show this attribute of PATH "
                                             "instead of its rows.")] = None,
    rows: Annotated[str | None, typer.Option("--slice", help="Rows to show, as in Python: "
                                             "0:10, 5, ::2, -3: (axis 0; more axes after a "
                                             "comma: 0:10,2).")] = None,
    npy: Annotated[Path | None, typer.Option("--npy", help="Save the values to this .npy "
                                             "file instead of printing them.")] = None,
    force: Annotated[bool, typer.Option("--force", "-f", help="Overwrite the --npy file.")] = False,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print (or save) a dataset or an attribute as of any revision, without a checkout."""
    import numpy as np

    from ..engine.hashing import plain_text
    from ..errors import NotFoundError
    from ..view import ViewDataset

    rev, sep, path = target.partition(":")
    if not sep:
        rev, path = "HEAD", target
    if not path.startswith("/"):
        raise InvalidInputError(f"give the path from the root, as REV:/group/dataset (got "
                                f"{target!r})")
    key = _parse_slice(rows) if rows is not None else ()
    if npy is not None and npy.exists() and not force:
        raise InvalidInputError(f"{npy} exists; pass --force to overwrite it")
    with _open(store, write=False) as repo:
        view = repo.at(rev)
        if path not in view:
            raise NotFoundError(f"{path} does not exist at {rev} ({view.commit[:10]}); see "
                                f"`h5vc ls --rev {rev}`")
        obj = view[path]
        if attr is not None:
            if attr not in obj.attrs:
                raise NotFoundError(f"{path} has no attribute {attr!r} at {rev}; it has: "
                                    + (", ".join(obj.attrs) or "none"))
            if rows is not None:
                raise InvalidInputError("--slice reads rows of a dataset, not an attribute")
            value = obj.attrs[attr]
        elif not isinstance(obj, ViewDataset):
            raise InvalidInputError(f"{path} is a group at {rev}: list it with `h5vc ls --rev "
                                    f"{rev} {path}`, or show an attribute with --attr NAME")
        else:
            try:
                value = obj[key]
            except (IndexError, ValueError, TypeError) as e:
                raise InvalidInputError(f"--slice {rows}: {e} (shape {obj.shape})") from None
        commit = view.commit
    arr = np.asarray(value) if not hasattr(value, "shape") or value.shape is not None else None
    if npy is not None:
        if arr is None:
            raise InvalidInputError(f"{path} holds no values (an empty dataspace) to save")
        if arr.dtype.kind == "O":
            try:
                arr = arr.astype(str)
            except (TypeError, ValueError):
                raise InvalidInputError("variable-length values other than strings cannot be "
                                        "saved as .npy; use --json") from None
        np.save(npy, arr, allow_pickle=False)
        typer.echo(f"saved {path}{f' @{attr}' if attr else ''} as of {commit[:10]} "
                   f"({' x '.join(map(str, arr.shape)) or 'scalar'} {arr.dtype}) to {npy}")
        return
    if as_json:
        _echo_json({"rev": rev, "commit": commit, "path": path, "attr": attr,
                    "shape": None if arr is None else list(arr.shape),
                    "dtype": None if arr is None else str(arr.dtype),
                    "data": None if arr is None else plain_text(arr.tolist())})
        return
    if arr is None:
        typer.echo("(empty: no dataspace)")
        return
    if arr.dtype.kind == "O" and not all(isinstance(v, (str, bytes)) for v in arr.flat):
        typer.echo(json.dumps(plain_text(arr.tolist()), ensure_ascii=False))  # ragged values
        return
    if arr.dtype.kind in ("S", "O"):  # text as text, as h5py's .asstr() shows it
        arr = np.vectorize(lambda v: v.decode("utf-8", "replace") if isinstance(v, bytes)
                           else str(v), otypes=[object])(arr)
        if arr.ndim == 0:
            typer.echo(arr[()])
            return
    big = arr.size > 10_000
    with np.printoptions(threshold=1000 if big else arr.size + 1, linewidth=100):
        typer.echo(np.array2string(arr, separator=", ") if arr.ndim else str(arr[()]))
    if big:
        typer.echo(f"({arr.size:,} values, summarized: choose rows with --slice, or save them "
                   "with --npy FILE)", err=True)


def _parse_slice(text: str) -> tuple[Any, ...]:
    """``0:10,2`` -> (slice(0, 10), 2)."""
    out: list[Any] = []
    for part in text.split(","):
        part = part.strip()
        try:
            if ":" in part:
                bits = part.split(":")
                if len(bits) > 3:
                    raise ValueError
                out.append(slice(*(int(b) if b.strip() else None for b in bits)))
            else:
                out.append(int(part))
        except ValueError:
            raise InvalidInputError(f"--slice {text!r}: give rows as in Python, e.g. 0:10, 5, "
                                    "::2 or 0:10,1") from None
    return tuple(out)


@app.command()
def sources(
    group: Annotated[str, typer.Argument(help="Group to list (and the groups below it).")] = "/",
    rev: Annotated[str | None, typer.Option("--rev", help="As of this commit (default: "
                                               "HEAD, with imports not yet committed).")] = None,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List the files `h5vc add` imported into GROUP: name, size, content hash, when."""
    with _open(store, write=False) as repo:
        found = repo.sources(group, rev=rev)
        if as_json:
            _echo_json({g: [{"file": p.name, "size": p.size, "hash": p.hash, "time": p.time}
                            for p in files.values()] for g, files in found.items()})
            return
        if not found:
            typer.echo(f"no files were imported into {group}" + (f" as of {rev}" if rev else ""))
            return
        for g, files in found.items():
            typer.echo(f"{g}  ({len(files)} file{'s' if len(files) != 1 else ''})")
            for p in sorted(files.values(), key=lambda p: p.name):
                when = (p.time or "")[:19].replace("T", " ")
                typer.echo(f"  {p.hash[:12]}  {p.size:>12,}  {when:19}  {p.name}")


def _tree_lines(node: dict[str, Any], depth: int) -> list[str]:
    pad = "  " * depth
    name = node["name"]
    attrs = ", ".join(f"{k}={v}" for k, v in node["attrs"].items())
    attrs = f"  @{{{attrs}}}" if attrs else ""
    if node["kind"] == "dataset":
        shape = "scalar" if node["shape"] == [] else (
            "empty" if node["shape"] is None else " x ".join(f"{d:,}" for d in node["shape"]))
        return [f"{pad}{name}  {shape}  {node['dtype']}{attrs}"]
    count = f"  ({node['groups']} groups, {node['datasets']} datasets)" if depth == 0 else ""
    out = [f"{pad}{name.rstrip('/')}/{count}{attrs}"]
    for child in node["children"]:
        out += _tree_lines(child, depth + 1)
    return out


@app.command()
def plugins(as_json: JsonOpt = False) -> None:
    """List the importers that are installed and the packages they come from."""
    from ..importing import registry as plugins_mod

    table = plugins_mod.importers()
    rows = [{"name": i.name, "suffixes": list(i.suffixes), "description": i.description,
             "plugin": i.plugin, "package": i.distribution, "version": i.version,
             "options": [{"name": f"--{o.name}", "kind": o.kind, "key": o.option_key,
                          "metavar": o.metavar or o.kind.upper(), "help": o.help}
                         for o in getattr(i.importer, "options", ()) or ()]}
            for i in table.values()]
    if as_json:
        _echo_json(rows)
        return
    if not rows:
        typer.echo("no importers installed (pip install h5vc-images h5vc-csv h5vc-npy)")
    for r in rows:
        pkg = f"{r['package']} {r['version']}" if r["package"] else r["plugin"]
        typer.echo(f"{r['name']:<8} {' '.join(r['suffixes']):<40} {pkg}  {r['description']}")
        for o in r["options"]:
            value = "" if o["kind"] == "flag" else f" {o['metavar']}"
            typer.echo(f"{'':<8} {o['name'] + value:<40} {o['help']}")


@app.command()
def pointer(store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Write or refresh the pointer file STORE.h5vc (for git) naming the store's HEAD."""
    from ..git.link import pointer_path, read_pointer

    with _open(store, write=False) as repo:
        ptr = pointer_path(repo.path)
        before = None
        if ptr.exists():
            try:
                before = read_pointer(ptr).commit
            except H5vcError:
                before = ""
        path = repo.write_pointer()
        head = repo.head
        assert head is not None
        what = "created" if before is None else ("unchanged" if before == head.id else "updated")
        if as_json:
            _echo_json({"pointer": str(path), "store": str(repo.path), "commit": head.id,
                        "result": what})
            return
        typer.echo(f"{_relative(path)}: commit {head.short_id} ({what})")


@app.command()
def sync(
    force: Annotated[bool, typer.Option("--force", "-f", help="Discard uncommitted changes in "
                                        "the way (they are listed).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Bring every store with a pointer file in this git work tree to the pointer's commit."""
    from ..git.link import sync as do_sync

    outcomes = do_sync(Path.cwd(), force=force)
    if as_json:
        _echo_json([o.to_json() for o in outcomes])
    else:
        if not outcomes:
            typer.echo("no pointer files in this git work tree (`h5vc pointer -s STORE` writes one)")
        for o in outcomes:
            if o.discarded:
                typer.echo(f"{_relative(o.store or o.pointer)}: discarded uncommitted changes:")
                for line in change_lines(o.discarded):
                    typer.echo(f"  {line}")
            if o.outcome != "in sync":
                typer.echo(o.message if o.ok else f"Error: {o.message}", err=not o.ok)
        if outcomes and all(o.outcome == "in sync" for o in outcomes):
            typer.echo("stores are in sync with their pointer files")
    if not all(o.ok for o in outcomes):
        raise typer.Exit(1)


remote_app = typer.Typer(
    name="remote",
    help="The remotes a store is pushed to and pulled from: add, list, remove.",
    no_args_is_help=True,
)
app.add_typer(remote_app)


def _parse_options(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise InvalidInputError(f"bad --option {item!r}: give key=value (endpoint_url=http://...)")
        out[key] = value
    return out


@remote_app.command("add")
def remote_add(
    name: Annotated[str, typer.Argument(help="The remote's name (origin, backup, ...).")],
    url: Annotated[str, typer.Argument(help="A folder, file://..., s3://bucket/prefix, or any "
                                       "fsspec URL.")],
    default: Annotated[bool, typer.Option("--default", help="Make it the remote push and "
                                          "pull use when none is named.")] = False,
    option: Annotated[list[str] | None, typer.Option(
        "--option", "-o", metavar="KEY=VALUE", help="A filesystem option for fsspec "
        "(endpoint_url, profile, ...; never credentials). Repeatable.")] = None,
    store: StoreOpt = None,
) -> None:
    """Add (or change) a remote. A local folder is made absolute."""
    import os

    opts = _parse_options(option or [])
    if "://" not in url and not url.startswith("/"):
        url = os.path.abspath(url)
    with _open(store, write=True) as repo:
        repo.set_remote(name, url, options=opts, default=default)
        mark = " (default)" if repo.default_remote == name else ""
    typer.echo(f"Added remote {name}: {url}{mark}")


@remote_app.command("list")
def remote_list(store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """List the remotes; * marks the default."""
    with _open(store, write=False) as repo:
        remotes, default = repo.remotes, repo.default_remote
    if as_json:
        _echo_json({"default": default, "remotes": remotes})
        return
    for name, conf in remotes.items():
        opts = " ".join(f"{k}={v}" for k, v in conf.get("options", {}).items())
        typer.echo(f"{'*' if name == default else ' '} {name}  {conf['url']}" + (f"  {opts}" if opts else ""))


@remote_app.command("remove")
def remote_remove(
    name: Annotated[str, typer.Argument(help="The remote to forget (its data stays where it is).")],
    store: StoreOpt = None,
) -> None:
    """Forget a remote."""
    with _open(store, write=True) as repo:
        repo.remove_remote(name)
    typer.echo(f"Removed remote {name}")


def _bar(quiet: bool, what: str) -> Any:
    """A progress bar of bytes moved on stderr (rate and ETA) when it is a terminal, else None."""
    from ..progress import make_bar

    return make_bar(what, unit="bytes", enabled=not quiet)


def _close(bar: Any) -> None:
    if bar is not None:
        bar.close()


QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress on stderr.")]


@app.command()
def push(
    remote: Annotated[str | None, typer.Argument(help="The remote (default: the store's "
                                                 "default remote).")] = None,
    refs: Annotated[list[str] | None, typer.Argument(help="Branches and tags to push "
                                                     "(default: the current branch and its tags).")] = None,
    store: StoreOpt = None,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Send commits and the rows they hold to a remote: only what it lacks; a branch moves
    only forward (pull first when the remote has commits you lack)."""
    from ..remote import push as do_push

    bar = _bar(quiet, "push")
    try:
        with _open(store, write=False) as repo:
            report = do_push(repo, remote, refs or None, progress=bar)
    finally:
        _close(bar)
    if as_json:
        _echo_json(report.to_json())
        return
    for ref in report.up_to_date:
        typer.echo(f"{ref}: up to date on {report.remote}")
    for ref, (old, new) in report.updated.items():
        typer.echo(f"{ref}: {old[:10] if old else '(new)'} -> {new[:10]} on {report.remote}")
    typer.echo(f"Sent {report.commits} commit(s), {report.objects} range(s), "
               f"{report.bytes / 2**20:.2f} MiB in {report.packs} pack(s)")


def _fetch_command(which: str, remote: str | None, store: Path | None, quiet: bool,
                   as_json: bool, select: list[str] | None = None) -> None:
    from .. import remote as remotes

    if which == "pull" and remote is None:  # a fresh clone of the code: make the store
        if store is None:
            ptrs = [] if _has_store(Path.cwd()) else missing_stores(Path.cwd())
        else:
            ptr = None if store.exists() else _pointer_of(store)
            ptrs = [] if ptr is None else [ptr]
        if len(ptrs) == 1:
            _materialise(ptrs[0], quiet, as_json)
            return
    with _open(store, write=True) as repo:
        bar = _bar(quiet, which)
        try:
            if which == "pull":
                report = remotes.pull(repo, remote, select=select or None, progress=bar)
            else:
                report = remotes.fetch(repo, remote, progress=bar)
        finally:
            _close(bar)
    if as_json:
        _echo_json(report.to_json())
        return
    typer.echo(f"Fetched {report.commits} commit(s), {report.objects} range(s), "
               f"{report.bytes / 2**20:.2f} MiB from {report.remote}")
    for t in report.tags:
        typer.echo(f"New tag {t}")
    if report.pulled is not None:
        old, new = report.pulled
        typer.echo(f"Fast-forwarded {old[:10]} -> {new[:10]}")
    if report.note:
        typer.echo(report.note)


def _has_store(folder: Path) -> bool:
    return any(p.is_file() and p.suffix.lower() in STORE_SUFFIXES and _is_store(p)
               for p in folder.iterdir())


def _materialise(ptr: Any, quiet: bool, as_json: bool) -> None:
    from ..git.share import materialise

    if ptr.remote is None:
        raise NotARepositoryError(_missing_store_text(ptr))
    bar = _bar(quiet, "clone")
    try:
        report = materialise(ptr, progress=bar)
    finally:
        _close(bar)
    _echo_clone(report, as_json, f"Made {_relative(ptr.store)} from {ptr.remote}: "
                f"{report.commits} commit(s), on")


def _echo_clone(report: Any, as_json: bool, lead: str, tail: str = "") -> None:
    if as_json:
        _echo_json(report.to_json())
        return
    at = f"branch {report.branch}" if report.branch else f"commit {report.commit[:10]}"
    typer.echo(f"{lead} {at} ({report.bytes / 2**20:.2f} MiB fetched){tail}")


@app.command()
def fetch(
    remote: Annotated[str | None, typer.Argument(help="The remote (default: the store's "
                                                 "default remote).")] = None,
    store: StoreOpt = None,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Bring in a remote's commits and the rows they hold that this store lacks; no branch
    moves and the file's data is not touched."""
    _fetch_command("fetch", remote, store, quiet, as_json)


@app.command()
def pull(
    remote: Annotated[str | None, typer.Argument(help="The remote (default: the store's "
                                                 "default remote).")] = None,
    store: StoreOpt = None,
    select: Annotated[list[str] | None, typer.Option(
        "--select", metavar="PATH", help="A partial store: come to hold PATH too (its rows in "
        "every commit are fetched). Repeatable.")] = None,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Fetch, then bring the current branch forward to the remote's (refused with uncommitted
    changes, or when the histories have diverged). With --select, a partial store comes to
    hold more paths instead."""
    _fetch_command("pull", remote, store, quiet, as_json, select)


@app.command()
def adopt(
    store: StoreOpt = None,
    remote_url: Annotated[str | None, typer.Option(
        "--remote", metavar="URL", help="The remote holding the file's history (default: the "
        "one its pointer file names).")] = None,
    rev: Annotated[str | None, typer.Option(
        "--rev", help="The commit to record the file on top of (default: the pointer's "
        "commit, else the remote's default branch).")] = None,
    message: Annotated[str | None, typer.Option("--message", "-m", help="The commit message.")] = None,
    option: Annotated[list[str] | None, typer.Option(
        "--option", "-o", metavar="KEY=VALUE", help="A filesystem option for fsspec. Repeatable.")] = None,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Record an HDF5 file another program rewrote whole (its h5vc history gone) as a new
    commit on top of its history on a remote; the file's content is not changed."""
    import os

    from ..remote import adopt as do_adopt

    if store is None:
        ptrs = [p for p in _pointers(Path.cwd()) if p.store.is_file() and not _is_store(p.store)]
        if len(ptrs) != 1:
            raise InvalidInputError("name the file to adopt with -s FILE")
        store = ptrs[0].store
    ptr = _pointer_of(store)
    url = remote_url or (ptr.remote if ptr else None)
    if url is None:
        raise InvalidInputError(f"no remote to take {_relative(store)}'s history from: its pointer "
                                "file names none; pass --remote URL")
    if "://" not in url and not url.startswith("/"):
        url = os.path.abspath(url)
    bar = _bar(quiet, "adopt")
    try:
        report = do_adopt(store, url, rev=rev or (ptr.commit if ptr else None),
                          options=_parse_options(option or []), message=message, progress=bar)
    finally:
        _close(bar)
    if ptr is not None:
        with _open(store, write=True) as repo:
            repo.write_pointer()
    if as_json:
        _echo_json(report.to_json())
        return
    on = f"branch {report.branch}" if report.branch else "a detached HEAD"
    what = ("it equals that commit: nothing to record" if report.commit == report.base else
            f"recorded as {report.commit[:10]} on {on}")
    typer.echo(f"Adopted {_relative(store)} on top of {report.base[:10]} from {url} "
               f"({report.commits} commit(s), {report.bytes / 2**20:.2f} MiB fetched): {what}")


@app.command()
def clone(
    url: Annotated[str, typer.Argument(help="The remote: a folder, s3://bucket/prefix, ...")],
    store: Annotated[Path, typer.Argument(help="The new store's path (must not exist).")],
    rev: Annotated[str | None, typer.Option("--rev", help="The branch, tag or commit to check "
                                            "out (default: the remote's default branch).")] = None,
    option: Annotated[list[str] | None, typer.Option(
        "--option", "-o", metavar="KEY=VALUE", help="A filesystem option for fsspec. Repeatable.")] = None,
    select: Annotated[list[str] | None, typer.Option(
        "--select", metavar="PATH", help="Hold only PATH (and the groups on the way to it): a "
        "partial store; the rest stays on the remote. Repeatable.")] = None,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Make a new store from a remote: its whole history, REV checked out, the remote
    recorded as `origin`."""
    import os

    from ..remote import clone as do_clone

    if "://" not in url and not url.startswith("/"):
        url = os.path.abspath(url)
    bar = _bar(quiet, "clone")
    try:
        report = do_clone(url, store, rev=rev, options=_parse_options(option or []),
                          select=select or None, progress=bar)
    finally:
        _close(bar)
    _echo_clone(report, as_json, f"Cloned {report.commits} commit(s) into {store}, on",
                f"; a partial store holding {', '.join(select)}" if select else "")


hooks_app = typer.Typer(
    name="hooks",
    help="Git hooks that keep stores and code in step: install, uninstall, status.",
    no_args_is_help=True,
)
app.add_typer(hooks_app)


def _echo_hooks(d: Path, states: list[Any], extra: str, *, action: bool) -> None:
    typer.echo(f"git hooks in {_relative(d)}{extra}:")
    for line in _hook_lines(states, action):
        typer.echo(line)


def _hook_lines(states: list[Any], action: bool) -> list[str]:
    out = []
    for s in states:
        if action:
            text = s.action
        elif s.state == "installed":
            text = "installed" + ("" if s.python_ok else f" (but {s.python} is gone: install again)")
        elif s.state == "other":
            text = "other hook (not h5vc's; `h5vc hooks install` chains it)"
        else:
            text = "not installed"
        if s.chained and s.state == "installed":
            text += f", chains {s.name}.h5vc-chained"
        out.append(f"  {s.name:<14} {text}")
    return out


@hooks_app.command("install")
def hooks_install() -> None:
    """Install pre-commit, post-checkout, post-merge, post-rewrite and pre-push hooks."""
    from ..git.link import hooks_dir_is_shared, install_hooks, store_states

    d, states = install_hooks(Path.cwd())
    _echo_hooks(d, states, f" (python {states[0].python})", action=True)
    if hooks_dir_is_shared(Path.cwd()):
        typer.echo(f"note: core.hooksPath makes {d} the hooks folder of other repositories too; "
                   "the hooks run there as well and do nothing where there are no pointer files")
    if not store_states(Path.cwd()):
        typer.echo("no pointer files yet: `h5vc init FILE.h5` in this work tree writes one, "
                   "`h5vc pointer -s STORE` does for an existing store")


@hooks_app.command("uninstall")
def hooks_uninstall() -> None:
    """Remove h5vc's hooks, putting back the hooks they chained."""
    from ..git.link import uninstall_hooks

    d, states = uninstall_hooks(Path.cwd())
    _echo_hooks(d, states, "", action=True)


@hooks_app.command("status")
def hooks_status(as_json: JsonOpt = False) -> None:
    """Show which hooks are installed and whether each store matches its pointer file."""
    from ..git.link import hooks_status as get_status
    from ..git.link import store_states

    d, states = get_status(Path.cwd())
    stores = store_states(Path.cwd())
    if as_json:
        _echo_json({"hooks_dir": str(d), "hooks": {s.name: s.to_json() for s in states},
                    "stores": [s.to_json() for s in stores]})
        return
    _echo_hooks(d, states, "", action=False)
    typer.echo("stores:" if stores else "stores: no pointer files in this work tree")
    for st in stores:
        text = st.state
        if st.state == "pointer stale":
            text += f" (store at {(st.head or '-')[:10]}: `h5vc sync` or `h5vc pointer`)"
        elif st.detail:
            text += f" ({st.detail})"
        at = f" at {st.commit[:10]}" if st.commit else ""
        typer.echo(f"  {_relative(st.pointer)}{at}: {text}")


@app.command("git-hook", hidden=True,
             context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def git_hook(
    name: Annotated[str, typer.Argument(help="The git hook being run.")],
    args: Annotated[list[str] | None, typer.Argument(help="git's arguments to it.")] = None,
) -> None:
    """Run h5vc's part of a git hook (what the installed shims call)."""
    from ..git.link import run_hook

    code = run_hook(name, list(args or []))
    if code:
        raise typer.Exit(code)


@app.command()
def version() -> None:
    """Print the h5vc version."""
    from ..version import __version__

    typer.echo(f"h5vc {__version__}")


def _quiet_unraisable(hook: Any) -> Any:
    """h5py closes objects in their destructors; after a write failed because the disk is
    full, those closes fail too, and Python would print each as a traceback. The command's
    one-line error says it all."""

    def quiet(unraisable: Any) -> None:
        from ..engine.space import disk_full

        if unraisable.exc_value is not None and disk_full(unraisable.exc_value):
            return
        hook(unraisable)

    return quiet


class _DiskFullNoise:
    """stderr, without the tracebacks h5py prints (and swallows) when closing an object fails
    because the disk is full: each such close is a write HDF5 could not make, which the
    command's own one-line error already reports. Every other text passes through."""

    def __init__(self, out: Any) -> None:
        self._out = out
        self._held: list[str] = []

    def write(self, text: str) -> int:
        if self._held or text.startswith("Traceback (most recent call last)"):
            self._held.append(text)
            block = "".join(self._held)
            lines = block.splitlines()
            last = [ln for ln in lines[1:] if ln and not ln.startswith(" ")]
            if last and block.endswith("\n"):
                self._held = []
                from ..engine.space import disk_full

                noise = "h5py/_objects.pyx" in block and disk_full(RuntimeError(block))
                if not noise:
                    self._out.write(block)
            return len(text)
        if text.startswith("Exception ignored in: 'h5py._objects"):
            return len(text)
        return self._out.write(text)

    def flush(self) -> None:
        if self._held:
            self._out.write("".join(self._held))
            self._held = []
        self._out.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._out, name)


def main() -> None:
    """Entry point of the ``h5vc`` script."""
    import sys

    sys.unraisablehook = _quiet_unraisable(sys.unraisablehook)
    sys.stderr = _DiskFullNoise(sys.stderr)  # type: ignore[assignment]
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
