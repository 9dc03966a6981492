"""Shared pieces of the command line: error handling, progress bars, output files."""

from __future__ import annotations

import functools
import os
import re
import sys
import time
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import click

from abrsim.errors import AbrsimError, InputError

__all__ = ["WorkBar", "abrsim_command", "compile_notice", "prepare_output", "progress", "write_atomic",
           "write_output"]

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


#: Exit status after Ctrl-C (128 + SIGINT), as shells report an interrupted program.
EXIT_INTERRUPTED = 130


def abrsim_command(func: F) -> F:
    """Turn abrsim's errors into one line on stderr and exit code 2 (tracebacks with --debug),
    and Ctrl-C into one line and exit code 130 (output files are written whole, or not at all).

    An ``OSError`` on a named file (a folder that cannot be written) is one line too.
    Warnings raised meanwhile (numpy's about overflow or division, met while reading a bad
    input) are held back: an error is its one line alone; otherwise they are shown at the end.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        debug = click.get_current_context().find_root().params.get("debug")
        caught: list[warnings.WarningMessage] = []
        try:
            with warnings.catch_warnings(record=True) as caught:
                result = func(*args, **kwargs)
        except (AbrsimError, OSError) as exc:
            if debug or (isinstance(exc, OSError) and exc.filename is None):
                _show(caught)
                raise
            # An OSError here names a file the checks before the work could not foresee (a disk
            # that fills up, a folder made read-only meanwhile).
            message = str(exc) if isinstance(exc, AbrsimError) else \
                f"{exc.filename}: cannot read or write it ({exc.strerror or exc})"
            click.echo(f"abrsim: error: {message}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            if debug:
                raise
            click.echo("\nabrsim: interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except BaseException:
            _show(caught)
            raise
        _show(caught)
        return result

    return wrapper  # type: ignore[return-value]


def _show(caught: list[warnings.WarningMessage]) -> None:
    """Show held-back warnings as Python would have."""
    for item in caught:
        warnings.showwarning(item.message, item.category, item.filename, item.lineno, item.file, item.line)
    caught.clear()


class WorkBar:
    """A progress line on stderr for ``progress(done, total)`` callbacks (terminals only).

    Shows the share done, the units and an ETA from the rate so far; redraws at most ten
    times a second. Use as a context manager so the line ends when the work does.

    Args:
        label: what is being done, e.g. ``"simulating"``.
        unit: what ``done`` and ``total`` count, e.g. ``"segments"``.
    """

    def __init__(self, label: str, unit: str) -> None:
        self.label = label
        self.unit = unit
        self.enabled = sys.stderr.isatty()
        self.start_s = time.monotonic()
        self.shown_s = -1.0
        self.drawn = False

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        now_s = time.monotonic()
        if now_s - self.shown_s < 0.1 and done < total:
            return
        self.shown_s = now_s
        share = done / total if total else 1.0
        elapsed_s = now_s - self.start_s
        eta = f"ETA {elapsed_s * (1 - share) / share:,.0f} s" if 0 < share < 1 else ""
        bar = "#" * int(share * 30)
        click.echo(f"\r{self.label} [{bar:<30}] {share:4.0%}  {done:,}/{total:,} {self.unit}  {eta}   ",
                   nl=False, err=True)
        self.drawn = True

    def __enter__(self) -> WorkBar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.drawn:
            click.echo("", err=True)


def progress(items: Iterable[T], label: str) -> Iterable[T]:
    """A progress bar on stderr when it is a terminal; the bare iterable otherwise."""
    if not sys.stderr.isatty():
        yield from items
        return
    with click.progressbar(list(items), label=label, file=sys.stderr, show_eta=True) as bar:
        yield from bar


def compile_notice(*dispatchers: Any) -> None:
    """On a terminal, say so when the compiled kernels are not in numba's cache yet (the first run).

    Compiling takes 5 to 25 seconds, during which nothing else moves.
    """
    from abrsim._jit import is_cached

    if not all(is_cached(d) for d in dispatchers):
        say_compiling()


def say_compiling() -> None:
    """On a terminal: the first run compiles (see :func:`compile_notice`)."""
    if sys.stderr.isatty():
        click.echo("abrsim: first run: compiling the simulation kernels into numba's cache "
                   "(5 to 25 s; later runs load them)", err=True)


def prepare_output(out: Path | None) -> None:
    """Before any work: make ``out``'s folder (as every command does) and check it can be written.

    Raises:
        InputError: naming ``out``, if it is empty, a folder or a loop of symbolic links, or its
            folder cannot be made or written to.
    """
    if out is None:
        return
    if not out.name:
        raise InputError("empty path; expected a file name", source=out)
    target = _landing(out)
    if target is None:  # a device, a pipe, an open descriptor: written in place
        if not os.access(out, os.W_OK):
            raise InputError("cannot write the output here (permission denied)", source=out)
        return
    if target.is_dir():
        raise InputError("is a folder; expected a file", source=out)
    for folder in (target.parent, *target.parent.parents):
        if folder.exists():
            if not folder.is_dir():
                raise InputError(f"cannot write the output here ({folder} is a file, not a folder)",
                                 source=out)
            break
    probe = target.with_name(target.name + ".probe")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise InputError(f"cannot write the output here ({exc.strerror or exc})", source=out) from None


#: An open descriptor's path (``/dev/stdout`` leads to one): its file is written through it, never
#: replaced, so that a redirected stdout keeps what was written to it before.
_DESCRIPTOR = re.compile(r"^/(?:proc/[^/]+|dev)/fd/[^/]+$")


def _landing(out: Path) -> Path | None:
    """The regular file that writing ``out`` replaces (following symbolic links, which stay), or
    None if ``out`` is written in place: a device, a pipe, or a path through an open descriptor.

    Raises:
        InputError: naming ``out``, if its symbolic links loop.
    """
    path = Path(os.path.abspath(out))
    for _ in range(64):  # (the kernel's own limit on links followed is 40)
        if _DESCRIPTOR.match(str(path)):
            return None
        if not path.is_symlink():
            break
        path = Path(os.path.normpath(path.parent / os.readlink(path)))
    else:
        raise InputError("found a loop of symbolic links; expected a file", source=out)
    try:
        target = path.resolve()  # links in its folders
    except (OSError, RuntimeError):
        raise InputError("found a loop of symbolic links; expected a file", source=out) from None
    if target.exists() and not target.is_file() and not target.is_dir():
        return None
    return target


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """``write(tmp)`` a file next to ``path``, then rename it over ``path``: an interrupted or failed
    write leaves ``path`` as it was and no temporary file."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        write(tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def write_output(text: str, out: Path | None) -> None:
    """Echo ``text``, or write it to ``out`` (its folder made if needed) and say so on stderr.

    A regular file is replaced atomically (see :func:`write_atomic`), through a symbolic link its
    target; a device, a pipe or an open descriptor (``/dev/stdout``, a FIFO) is written in place,
    after what it holds.

    Raises:
        InputError: naming ``out``, if it cannot be written (see :func:`prepare_output`).
    """
    if out is None:
        click.echo(text, nl=False)
        return
    prepare_output(out)
    target = _landing(out)
    try:
        if target is None:
            with open(out, "a") as stream:
                stream.write(text)
        else:
            write_atomic(target, lambda tmp: tmp.write_text(text))
    except OSError as exc:
        raise InputError(f"cannot write the output ({exc.strerror or exc})", source=out) from None
    click.echo(f"abrsim: wrote {out}", err=True)
