"""Failure statements: named yes/no questions asked of every session in a results table.

A mean over sessions hides the sessions that went badly. A failure statement
names one way a session can fail (it started slowly, it stalled, its quality
swung back and forth) as a threshold on one metric of the results schema, so
that a sweep or a comparison can count the sessions that fail that way.

The defaults (:data:`DEFAULT_STATEMENTS`) follow targets streaming services
commonly set for a session:

========================  ===========================================  =========================
name                      holds when                                   why
========================  ===========================================  =========================
``slow_start``            ``startup_s > 2``                            viewers notice a wait
``abandoned_start``       ``startup_s > 3``                            viewers start to leave
``any_rebuffer``          ``rebuffer_count > 0``                       any stall at all
``heavy_rebuffer``        ``rebuffer_ratio > 0.01``                    stalled over 1 % of the time
``switch_storm``          ``switch_count per minute played > 4``       quality keeps changing
========================  ===========================================  =========================

A sweep spec adjusts them in its ``[failures]`` table (:func:`statements_from_config`).

>>> rows = [{"startup_s": 2.5, "played_s": 60.0}, {"startup_s": 0.4, "played_s": 60.0}]
>>> evaluate(rows, [FailureStatement("slow_start", "startup_s", 2.0)])["slow_start"].tolist()
[True, False]
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from abrsim.errors import InputError, UnknownNameError
from abrsim.qoe import METRICS

__all__ = [
    "DEFAULT_STATEMENTS",
    "OPERATORS",
    "FailureStatement",
    "column_values",
    "evaluate",
    "failure_counts",
    "statements_from_config",
]

#: Comparison operators a statement may use, by their spelling in a spec.
OPERATORS: Mapping[str, Callable[[Any, Any], Any]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


@dataclass(frozen=True)
class FailureStatement:
    """A named predicate over one session's result row: ``metric op threshold``.

    Args:
        name: the statement's name, e.g. ``"slow_start"``.
        metric: a column of the results table (see :data:`abrsim.qoe.METRICS`).
        threshold: the value the metric is compared with, in the metric's unit
            (per minute of played media if ``per_minute``).
        op: one of :data:`OPERATORS` (``>``, ``>=``, ``<``, ``<=``).
        per_minute: divide the metric by the minutes played (``played_s / 60``) first,
            e.g. switches per minute.
        doc: one line saying what a failing session looks like.

    Raises:
        ValueError: if ``name`` is empty, ``op`` is unknown or ``threshold`` is NaN.

    A session whose metric is NaN (e.g. ``mean_quality`` without a quality table) does
    not fail the statement.
    """

    name: str
    metric: str
    threshold: float
    op: str = ">"
    per_minute: bool = False
    doc: str = ""

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError('"name" must not be empty')
        if self.op not in OPERATORS:
            raise ValueError(f'"op" must be one of {", ".join(OPERATORS)}, got {self.op!r}')
        object.__setattr__(self, "threshold", float(self.threshold))
        if np.isnan(self.threshold):
            raise ValueError(f'"threshold" of {self.name} must be a number, got NaN')

    @property
    def definition(self) -> str:
        """The statement as text, e.g. ``"startup_s > 2"``."""
        per = " per minute" if self.per_minute else ""
        return f"{self.metric}{per} {self.op} {self.threshold:g}"

    def holds(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Whether each row fails this way, as a boolean array (one entry per row).

        Raises:
            InputError: if a row lacks the metric (or ``played_s`` for a per-minute statement).
        """
        played_s = column_values(rows, "played_s") if self.per_minute else None
        return self.holds_for(column_values(rows, self.metric), played_s)

    def holds_for(self, values: np.ndarray, played_s: np.ndarray | None = None) -> np.ndarray:
        """Whether each session fails this way, from its metric's column (and ``played_s``, seconds,
        for a per-minute statement), as a boolean array."""
        if self.per_minute:
            minutes = np.asarray(played_s, dtype=np.float64) / 60.0
            with np.errstate(divide="ignore", invalid="ignore"):
                values = values / minutes
        with np.errstate(invalid="ignore"):
            return np.asarray(OPERATORS[self.op](values, self.threshold), dtype=bool)


def column_values(rows: Sequence[Mapping[str, Any]], name: str) -> np.ndarray:
    """One column of result rows as floats (cells may be numbers or their text).

    Raises:
        InputError: naming the column, if a row lacks it or a cell is not a number.
    """
    try:
        return np.array([float(row[name]) for row in rows], dtype=np.float64)
    except KeyError:
        raise InputError("results rows have no such column", field=name) from None
    except (TypeError, ValueError):
        raise InputError("expected numbers in this results column", field=name) from None


#: The statements a sweep and ``abrsim compare`` use unless a spec changes them.
DEFAULT_STATEMENTS: tuple[FailureStatement, ...] = (
    FailureStatement("slow_start", "startup_s", 2.0, doc="startup took more than 2 s"),
    FailureStatement("abandoned_start", "startup_s", 3.0,
                     doc="startup took more than 3 s, when viewers begin to leave"),
    FailureStatement("any_rebuffer", "rebuffer_count", 0.0, doc="playback stalled at least once"),
    FailureStatement("heavy_rebuffer", "rebuffer_ratio", 0.01,
                     doc="stalled for more than 1 % of the watch time"),
    FailureStatement("switch_storm", "switch_count", 4.0, per_minute=True,
                     doc="more than 4 rung switches per minute of media"),
)


def evaluate(
    rows: Sequence[Mapping[str, Any]], statements: Iterable[FailureStatement] = DEFAULT_STATEMENTS
) -> dict[str, np.ndarray]:
    """Evaluate every statement on every row.

    Args:
        rows: result rows (dicts keyed by result field; values may be numbers or their text).
        statements: the statements to evaluate.

    Returns:
        For each statement name, in order, a boolean array with one entry per row: True
        where the session fails that way.

    Raises:
        InputError: if a row lacks a column a statement needs.
    """
    return {statement.name: statement.holds(rows) for statement in statements}


def failure_counts(
    rows: Sequence[Mapping[str, Any]], statements: Iterable[FailureStatement] = DEFAULT_STATEMENTS
) -> dict[str, int]:
    """How many rows fail each statement (see :func:`evaluate`)."""
    return {name: int(failed.sum()) for name, failed in evaluate(rows, statements).items()}


_STATEMENT_KEYS = ("metric", "threshold", "op", "per_minute", "doc")


def statements_from_config(
    config: Mapping[str, Any],
    base: Sequence[FailureStatement] = DEFAULT_STATEMENTS,
    source: str | Path | None = None,
    prefix: str = "failures",
) -> tuple[FailureStatement, ...]:
    """Adjust ``base`` with a spec's ``[failures]`` table.

    Each key of ``config`` names a statement. Its value is either ``false`` (drop the
    statement), ``true`` (keep it), a number (a new threshold for a statement of
    ``base``), or a table with any of ``metric``, ``threshold``, ``op``, ``per_minute``
    and ``doc`` (override fields of a statement of ``base``, or define a new one, which
    then needs ``metric`` and ``threshold``)::

        [failures]
        switch_storm = 6                                     # a new threshold
        any_rebuffer = false                                 # not counted
        long_stall = { metric = "rebuffer_s", threshold = 10 }

    Args:
        config: the table, as parsed from TOML.
        base: the statements to start from.
        source: the spec file, for error messages.
        prefix: the key path of ``config`` inside the spec, for error messages.

    Returns:
        The statements of ``base`` (changed, minus the dropped ones) in their order,
        then the new ones in the order given.

    Raises:
        InputError: naming the file and key, if an entry is malformed or refers to an
            unknown metric.
    """
    statements = {statement.name: statement for statement in base}
    for name, value in config.items():
        field = f"{prefix}.{name}"
        if isinstance(value, bool):
            if not value:
                statements.pop(name, None)
            elif name not in statements:
                raise InputError(
                    f"got true for an unknown statement; expected one of {', '.join(statements)} "
                    "or a table with metric and threshold", source=source, field=field)
            continue
        if isinstance(value, (int, float)):
            value = {"threshold": value}
        if not isinstance(value, Mapping):
            raise InputError(f"got {value!r}; expected false, a threshold or a table",
                             source=source, field=field)
        unknown = sorted(set(value) - set(_STATEMENT_KEYS))
        if unknown:
            raise InputError(f"unknown key {unknown[0]!r}; expected some of {', '.join(_STATEMENT_KEYS)}",
                             source=source, field=field)
        current = statements.get(name)
        if current is None and not {"metric", "threshold"} <= set(value):
            raise InputError("a new statement needs metric and threshold", source=source, field=field)
        fields: dict[str, Any] = (
            {"op": ">", "per_minute": False, "doc": ""} if current is None
            else {key: getattr(current, key) for key in _STATEMENT_KEYS}
        )
        fields.update(value)
        _check_types(fields, source, field)
        if fields["metric"] not in METRICS:
            raise InputError(str(UnknownNameError("metric", fields["metric"], METRICS)),
                             source=source, field=f"{field}.metric")
        try:
            statements[name] = FailureStatement(name=name, **fields)
        except ValueError as exc:
            raise InputError(str(exc), source=source, field=field) from None
    return tuple(statements.values())


def _check_types(fields: Mapping[str, Any], source: str | Path | None, field: str) -> None:
    expected = {"metric": ((str,), "a string"), "threshold": ((int, float), "a number"),
                "op": ((str,), "a string"), "per_minute": ((bool,), "true or false"),
                "doc": ((str,), "a string")}
    for key, (types, text) in expected.items():
        value = fields[key]
        if not isinstance(value, types) or (key == "threshold" and isinstance(value, bool)):
            raise InputError(f"got {value!r}; expected {text}", source=source, field=f"{field}.{key}")
