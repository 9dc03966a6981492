"""The one exception hierarchy of abrsim.

Every error a user can cause derives from :class:`AbrsimError`. Its message is
one line naming where the problem is (file and line, or field), what was found
and what was expected. The CLI prints that line and exits with code 2.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["AbrsimError", "InputError", "NoProgressError", "UnknownNameError", "nesting_limit"]


class AbrsimError(Exception):
    """Base class of every error abrsim raises on bad input or configuration."""


class InputError(AbrsimError, ValueError):
    """A file, option or value that does not have the expected form.

    Args:
        message: what was found and what was expected.
        source: the file (or option) the problem is in, if any.
        line: 1-based line number inside ``source``, if known.
        field: the column, key or parameter name, if known.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.source = None if source is None else str(source)
        self.line = line
        self.field = field
        self.detail = message
        where = []
        if self.source is not None:
            where.append(self.source if line is None else f"{self.source}:{line}")
        elif line is not None:
            where.append(f"line {line}")
        if field is not None:
            where.append(f"field {field!r}")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class UnknownNameError(AbrsimError, KeyError):
    """A name (algorithm, ladder, preset, parameter) that is not registered.

    Args:
        kind: what sort of name it is, e.g. ``"algorithm"``.
        name: the name that was given.
        choices: the names that would have been accepted.
    """

    def __init__(self, kind: str, name: str, choices: list[str] | tuple[str, ...]) -> None:
        self.kind = kind
        self.name = name
        self.choices = tuple(choices)
        super().__init__(f"unknown {kind} {name!r}; expected one of: {', '.join(self.choices)}")

    def __str__(self) -> str:  # KeyError would quote the whole message otherwise
        return str(self.args[0])


class NoProgressError(AbrsimError):
    """A simulation that cannot finish: flows that no data can ever reach.

    Raised by the discrete-event engine when a link has active flows but carries no data for
    longer than its stall limit, e.g. when a shared link's trace and a player's access trace
    are never up at the same time.
    """


@contextmanager
def nesting_limit(source: str | Path, expected: str) -> Iterator[None]:
    """Turn a parser's ``RecursionError`` (JSON or TOML nested hundreds of levels deep) into an InputError.

    Python's JSON and TOML parsers recurse once per nesting level and give up past the
    interpreter's recursion limit (about 1,000 levels); no abrsim input nests more than a few.

    Args:
        source: the file being parsed (for the message).
        expected: what the file should hold, e.g. ``"a Sabre movie JSON object"``.

    Raises:
        InputError: naming ``source``, if the parser ran out of recursion depth.
    """
    try:
        yield
    except RecursionError:
        raise InputError(f"found values nested too deeply to parse (hundreds of levels); expected {expected}",
                         source=source) from None
