"""Shared pieces of the command line: error handling, progress bars, output files."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import click

from abrsim.errors import AbrsimError, InputError

__all__ = ["abrsim_command", "compile_notice", "prepare_output", "progress", "write_output"]

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


#: Exit status after Ctrl-C (128 + SIGINT), as shells report an interrupted program.
EXIT_INTERRUPTED = 130


def abrsim_command(func: F) -> F:
    """Turn abrsim's errors into one line on stderr and exit code 2 (tracebacks with --debug), and
    Ctrl-C into one line and exit code 130 (outputs are written whole at the end, or not at all)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except AbrsimError as exc:
            if click.get_current_context().find_root().params.get("debug"):
                raise
            click.echo(f"abrsim: error: {exc}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            if click.get_current_context().find_root().params.get("debug"):
                raise
            click.echo("\nabrsim: interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)

    return wrapper  # type: ignore[return-value]


def progress(items: Iterable[T], label: str) -> Iterable[T]:
    """A progress bar on stderr when it is a terminal; the bare iterable otherwise."""
    if not sys.stderr.isatty():
        yield from items
        return
    with click.progressbar(list(items), label=label, file=sys.stderr, show_eta=True) as bar:
        yield from bar


def compile_notice(*dispatchers: Any) -> None:
    """On a terminal, say so when the compiled kernels are not in numba's cache yet (the first run).

    Compiling takes tens of seconds, during which nothing else moves.
    """
    from abrsim._jit import is_cached

    if sys.stderr.isatty() and not all(is_cached(d) for d in dispatchers):
        click.echo("abrsim: first run: compiling the simulation kernels into numba's cache "
                   "(10 s or so; later runs load them)", err=True)


def prepare_output(out: Path | None) -> None:
    """Before any work: make ``out``'s folder (as every command does) and check it can be written.

    Raises:
        InputError: naming ``out``, if its folder cannot be made or written to.
    """
    if out is None:
        return
    probe = out.with_name(out.name + ".probe")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise InputError(f"cannot write the output here ({exc.strerror or exc})", source=out) from None


def write_output(text: str, out: Path | None) -> None:
    """Echo ``text``, or write it atomically to ``out`` (its folder made if needed) and say so on stderr."""
    if out is None:
        click.echo(text, nl=False)
        return
    prepare_output(out)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(out)
    click.echo(f"abrsim: wrote {out}", err=True)
