"""Shared pieces of the command line: error handling, progress bars, output files."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import click

from abrsim.errors import AbrsimError

__all__ = ["abrsim_command", "compile_notice", "progress", "write_output"]

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


def abrsim_command(func: F) -> F:
    """Turn abrsim's errors into one line on stderr and exit code 2 (tracebacks with --debug)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except AbrsimError as exc:
            if click.get_current_context().find_root().params.get("debug"):
                raise
            click.echo(f"abrsim: error: {exc}", err=True)
            sys.exit(2)

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


def write_output(text: str, out: Path | None) -> None:
    """Echo ``text``, or write it atomically to ``out`` and say so on stderr."""
    if out is None:
        click.echo(text, nl=False)
        return
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(out)
    click.echo(f"abrsim: wrote {out}", err=True)
