"""Bandwidth traces: the network a session replays.

A :class:`Trace` is piecewise constant: sample ``k`` holds ``bandwidth_bps[k]``
from ``start_s[k]`` until ``start_s[k + 1]`` (the last sample until
``duration_s``). Past ``duration_s`` the trace loops from its start.

Trace files are read by :func:`load_trace` and :func:`load_traces` (or by one
``read_*`` function per format: abrsim CSV, Pensieve "cooked", Sabre JSON,
Mahimahi) and written by :func:`write_trace` (or one ``write_*`` function per
format). Readers raise :class:`~abrsim.errors.InputError` naming the file and
the line (or field). :func:`trace_stats` summarises a trace (time-weighted mean
and percentiles, outage share, lag-1 autocorrelation of 1 s means).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, localcontext
from pathlib import Path
from typing import Any

import numpy as np

from abrsim import limits
from abrsim.errors import InputError, UnknownNameError, nesting_limit

__all__ = [
    "MAX_BANDWIDTH_BPS",
    "MAX_TRACE_DURATION_S",
    "OUTAGE_THRESHOLD_BPS",
    "TRACE_FORMATS",
    "TRACE_MEASURES",
    "Trace",
    "TraceStats",
    "interval_means_bps",
    "lag1_autocorrelation",
    "load_trace",
    "load_traces",
    "read_abrsim_csv",
    "read_mahimahi",
    "read_pensieve_cooked",
    "read_sabre_json",
    "trace_stats",
    "write_abrsim_csv",
    "write_mahimahi",
    "write_pensieve_cooked",
    "write_sabre_json",
    "write_trace",
]


#: The fastest link a trace may describe, bit/s (1 Tbit/s, i.e. 1e6 Mbit/s). Faster rates are refused:
#: a segment would arrive in less time than the session clock (float seconds) can tell from zero.
MAX_BANDWIDTH_BPS = 1e12
_BANDWIDTH_RANGE = ">= 0 and at most 1e6 Mbit/s (1 Tbit/s)"
#: The longest trace, seconds (about 32 years): times stay far from float overflow and keep a
#: resolution better than a microsecond.
MAX_TRACE_DURATION_S = 1e9
_LONGEST_TRACE_TIME = f"a time before {MAX_TRACE_DURATION_S:g} s (the longest trace)"


def _frozen(values: np.ndarray | list[float], name: str) -> np.ndarray:
    array = np.array(values, dtype=np.float64)  # always a private copy
    if array.ndim != 1:
        raise ValueError(f'"{name}" must be one-dimensional, got shape {array.shape}')
    array.flags.writeable = False
    return array


@dataclass(frozen=True, eq=False)
class Trace:
    """An immutable, looping, piecewise-constant bandwidth trace.

    Args:
        start_s: start time of each sample, seconds; begins at 0, strictly increasing.
        bandwidth_bps: bandwidth of each sample, bit/s; >= 0 and at most :data:`MAX_BANDWIDTH_BPS`
            (1 Tbit/s), not all zero.
        duration_s: total length of one pass, seconds; > the last ``start_s``, at most
            :data:`MAX_TRACE_DURATION_S`.
        latency_s: optional per-sample request latency (time to first byte), seconds.
        name: a label for results tables (usually the file name).
        measures: what the numbers are: ``goodput`` (a download's measured throughput, as in the
            FCC, HSDPA and 4G/5G measurement sets) or ``capacity`` (what the link delivers in IP
            packets, headers included, as in a Mahimahi link trace). The ``throughput`` network
            uses either as it is; the ``tcp`` network takes a goodput trace's numbers as the
            payload rate (capacity = goodput x packet size / MSS).

    Raises:
        ValueError: if the arrays do not satisfy the rules above (the message
            names the first offending sample).
    """

    start_s: np.ndarray
    bandwidth_bps: np.ndarray
    duration_s: float
    latency_s: np.ndarray | None = None
    name: str = field(default="")
    measures: str = field(default="goodput")

    def __post_init__(self) -> None:
        if self.measures not in TRACE_MEASURES:
            raise ValueError(f'"measures" must be one of {", ".join(TRACE_MEASURES)}, got {self.measures!r}')
        start_s = _frozen(self.start_s, "start_s")
        bandwidth_bps = _frozen(self.bandwidth_bps, "bandwidth_bps")
        object.__setattr__(self, "start_s", start_s)
        object.__setattr__(self, "bandwidth_bps", bandwidth_bps)
        object.__setattr__(self, "duration_s", float(self.duration_s))
        if start_s.size == 0:
            raise ValueError("a trace needs at least one sample")
        if bandwidth_bps.shape != start_s.shape:
            raise ValueError(
                f'"bandwidth_bps" has {bandwidth_bps.size} samples but "start_s" has {start_s.size}'
            )
        if start_s[0] != 0.0:
            raise ValueError(f'"start_s" must begin at 0, got {float(start_s[0])!r}')
        with np.errstate(invalid="ignore"):  # inf - inf: refused below, without a warning first
            steps = np.diff(start_s)
        bad = np.flatnonzero(~(steps > 0))
        if bad.size:
            k = int(bad[0]) + 1
            raise ValueError(
                f'"start_s" must be strictly increasing: sample {k} starts at {float(start_s[k])!r} '
                f"after {float(start_s[k - 1])!r}"
            )
        bad = np.flatnonzero(~((bandwidth_bps >= 0) & (bandwidth_bps <= MAX_BANDWIDTH_BPS)))
        if bad.size:
            k = int(bad[0])
            raise ValueError(
                f'"bandwidth_bps" must be >= 0 and at most {MAX_BANDWIDTH_BPS:g} (1 Tbit/s), '
                f"sample {k} is {float(bandwidth_bps[k])!r}"
            )
        if not (start_s[-1] < self.duration_s <= MAX_TRACE_DURATION_S):
            raise ValueError(
                f'"duration_s" must be > the last sample start {float(start_s[-1])!r} and at most '
                f"{MAX_TRACE_DURATION_S:g} s, got {self.duration_s!r}"
            )
        if not np.any(bandwidth_bps > 0):
            raise ValueError("a trace must have some sample with bandwidth > 0")
        if self.latency_s is not None:
            latency_s = _frozen(self.latency_s, "latency_s")
            if latency_s.shape != start_s.shape:
                raise ValueError(
                    f'"latency_s" has {latency_s.size} samples but "start_s" has {start_s.size}'
                )
            bad = np.flatnonzero(~(np.isfinite(latency_s) & (latency_s >= 0)))
            if bad.size:
                k = int(bad[0])
                raise ValueError(
                    f'"latency_s" must be finite and >= 0, sample {k} is {float(latency_s[k])!r}'
                )
            object.__setattr__(self, "latency_s", latency_s)

    def as_capacity(self, packet_per_payload: float) -> Trace:
        """This trace as link capacity: a goodput trace's bandwidths times ``packet_per_payload``
        (packet size / MSS), a capacity trace itself."""
        if self.measures == "capacity":
            return self
        return Trace(self.start_s, self.bandwidth_bps * packet_per_payload, self.duration_s, self.latency_s,
                     name=self.name, measures="capacity")

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """Pickled through the constructor, so that a copy's arrays are read-only too (and checked)."""
        return (Trace, (self.start_s, self.bandwidth_bps, self.duration_s, self.latency_s, self.name,
                        self.measures))

    @property
    def sample_duration_s(self) -> np.ndarray:
        """Length of each sample, seconds."""
        return np.diff(np.append(self.start_s, self.duration_s))

    @property
    def mean_bandwidth_bps(self) -> float:
        """Time-weighted mean bandwidth of one pass, bit/s."""
        return float(np.dot(self.sample_duration_s, self.bandwidth_bps) / self.duration_s)

    def sample_index(self, time_s: float) -> int:
        """Index of the sample in force at ``time_s`` (looping past the end)."""
        offset_s = float(time_s) % self.duration_s
        return int(np.searchsorted(self.start_s, offset_s, side="right") - 1)

    def bandwidth_at(self, time_s: float) -> float:
        """Bandwidth in force at ``time_s``, bit/s (looping past the end)."""
        return float(self.bandwidth_bps[self.sample_index(time_s)])

    def __repr__(self) -> str:
        return (
            f"Trace(name={self.name!r}, samples={self.start_s.size}, duration_s={self.duration_s:g}, "
            f"mean_bandwidth_bps={self.mean_bandwidth_bps:.6g})"
        )


# --------------------------------------------------------------------------------------------
# Trace files
# --------------------------------------------------------------------------------------------

TRACE_FORMATS = ("abrsim", "pensieve", "sabre", "mahimahi")
#: What a trace's numbers can be (:attr:`Trace.measures`).
TRACE_MEASURES = ("goodput", "capacity")
"""Names accepted by :func:`load_trace`'s ``format``."""

_ABRSIM_HEADERS = (("time_s", "bandwidth_mbps"), ("time_s", "bandwidth_mbps", "latency_ms"))
_ABRSIM_HEADER_TEXT = "'time_s,bandwidth_mbps' or 'time_s,bandwidth_mbps,latency_ms'"
_SABRE_KEYS = ("duration_ms", "bandwidth_kbps", "latency_ms")
_MAHIMAHI_PACKET_BITS = 1500 * 8


def _to_decimal(cell: object, *, integer: bool = False) -> Decimal | None:
    """Parse one cell (text, or a JSON number) exactly; None if it is not a number of that kind.

    Text with underscores is not a number here, although Python's parsers take ``1_000``.
    """
    if isinstance(cell, bool) or (isinstance(cell, str) and "_" in cell):
        return None
    if isinstance(cell, Decimal):  # a JSON number parsed exactly
        return cell if not integer or cell == cell.to_integral_value() else None
    try:
        if integer:
            return Decimal(int(cell)) if isinstance(cell, (str, int)) else None
        if isinstance(cell, (str, int)):
            return Decimal(cell)
        return Decimal(repr(float(cell))) if isinstance(cell, float) else None
    except (ArithmeticError, ValueError):
        return None


def _scaled(number: Decimal, power10: int) -> float:
    """``number * 10**power10`` rounded once to a float (the shift itself is exact)."""
    sign, digits, exponent = number.as_tuple()
    return float(Decimal((sign, digits, int(exponent) + power10)))


def _format_scaled(value: float, power10: int) -> str:
    """The shortest text ``t`` of ``value * 10**power10`` with ``_scaled(Decimal(t), -power10) == value``."""
    sign, digits, exponent = Decimal(repr(value)).as_tuple()
    number = Decimal((sign, digits, int(exponent) + power10)).normalize()
    return f"{number:f}" if -8 < number.adjusted() < 16 else str(number)


def _read_text(source: Path) -> str:
    limits.check_file_size("trace_bytes", source)
    try:
        with open(source, encoding="utf-8-sig") as file:  # universal newlines; a BOM is dropped
            return file.read()
    except FileNotFoundError:
        raise InputError("file not found; expected a trace file", source=source) from None
    except UnicodeDecodeError as exc:
        raise InputError(
            f"found non-UTF-8 bytes ({exc.reason}); expected a text file", source=source
        ) from None
    except OSError as exc:
        raise InputError(f"cannot read it ({exc.strerror}); expected a trace file", source=source) from None


def _read_lines(source: Path) -> tuple[list[tuple[int, str]], int]:
    """Return the non-blank lines, stripped, with their 1-based numbers, and the number after the last."""
    lines = _read_text(source).split("\n")
    if lines[-1] == "":
        lines.pop()
    return [(number, text.strip()) for number, text in enumerate(lines, 1) if text.strip()], len(lines) + 1


class _Table:
    """Numeric rows of one trace file, each remembered with where it came from.

    Cells are kept as exact decimals, so a change of unit (Mbit/s to bit/s, ms to s)
    is a shift of the decimal point and a file written by :func:`write_abrsim_csv`
    reads back bit for bit.

    Args:
        source: the file, for error messages.
        columns: the column (or JSON key) names, in the file's own units.
        integer: whether every cell must be an integer.
    """

    def __init__(self, source: Path, columns: tuple[str, ...], *, integer: bool = False) -> None:
        self.source = source
        self.columns = columns
        self.integer = integer
        self.lines: list[int | None] = []  # 1-based line of each row; None for a JSON list entry
        self.rows: list[tuple[Decimal, ...]] = []

    def __len__(self) -> int:
        return len(self.rows)

    def error(self, row: int, message: str, column: str | None = None) -> InputError:
        """An :class:`InputError` at ``row``: its line, or ``entry <row>`` for a JSON list."""
        line = self.lines[row]
        if line is None:
            field = f"entry {row}" if column is None else f"entry {row} {column}"
            return InputError(message, source=self.source, field=field)
        return InputError(message, source=self.source, line=line, field=column)

    def add(self, cells: Sequence[object], line: int | None = None) -> None:
        """Parse and append one row of cells, raising at the first bad one."""
        row = len(self.rows)
        self.lines.append(line)
        if len(cells) != len(self.columns):
            expected = f"{len(self.columns)} ({', '.join(self.columns)})"
            raise self.error(row, f"found {len(cells)} columns; expected {expected}")
        numbers = []
        for column, cell in zip(self.columns, cells, strict=True):
            number = _to_decimal(cell, integer=self.integer)
            if number is None or not number.is_finite():
                found = (
                    repr(cell.strip())
                    if isinstance(cell, str)
                    else str(cell) if isinstance(cell, Decimal) else json.dumps(cell)
                )
                kind = "an integer" if self.integer else "a finite number"
                raise self.error(row, f"found {found}; expected {kind}", column)
            numbers.append(number)
        self.rows.append(tuple(numbers))

    def cumulative(self, column: str, power10: int = 0) -> np.ndarray:
        """Running sums of one column, each summed exactly and then rounded once to a float."""
        index = self.columns.index(column)
        sums, total = [], Decimal(0)
        with localcontext() as context:
            context.prec = 200  # exact for any sum of float-sized decimals
            for row in self.rows:
                total += row[index]
                sums.append(_scaled(total, power10))
        return np.array(sums, dtype=np.float64)

    def cell(self, row: int, column: str) -> str:
        """The cell as written (up to surrounding whitespace), for messages."""
        return str(self.rows[row][self.columns.index(column)])

    def column(self, column: str, power10: int = 0) -> np.ndarray:
        """One column as floats, each multiplied by ``10**power10`` exactly, then rounded once."""
        index = self.columns.index(column)
        return np.array([_scaled(row[index], power10) for row in self.rows], dtype=np.float64)

    def require(self, column: str, ok: np.ndarray, expected: str) -> None:
        """Raise at the first row where ``ok`` is false, showing that row's cell."""
        bad = np.flatnonzero(~ok)
        if bad.size:
            row = int(bad[0])
            raise self.error(row, f"found {self.cell(row, column)}; expected {expected}", column)

    def require_increasing(self, column: str, *, strict: bool) -> None:
        """Raise at the first row whose value is not after (or, if not ``strict``, at) the previous one."""
        values = self.column(column)
        ok = values[1:] > values[:-1] if strict else values[1:] >= values[:-1]
        bad = np.flatnonzero(~ok)
        if bad.size:
            row = int(bad[0]) + 1
            relation = "after" if strict else "at or after"
            note = " (no zero-length samples)" if strict else ""
            raise self.error(
                row,
                f"found {self.cell(row, column)}; expected a value {relation} the previous "
                f"row's {self.cell(row - 1, column)}{note}",
                column,
            )


def _read_table(
    source: Path,
    lines: Iterable[tuple[int, str]],
    columns: tuple[str, ...],
    *,
    separator: str | None,
    integer: bool = False,
) -> _Table:
    """Parse the non-comment ``lines`` into a table; ``separator`` None splits on whitespace."""
    table = _Table(source, columns, integer=integer)
    for line, text in lines:
        if not text.startswith("#"):
            table.add(text.split(separator), line)
    return table


def _bandwidth_ok(bandwidth_bps: np.ndarray) -> np.ndarray:
    """Which samples are within the range a trace may hold (NaN is not)."""
    return (bandwidth_bps >= 0) & (bandwidth_bps <= MAX_BANDWIDTH_BPS)


def _make_trace(
    source: Path,
    start_s: np.ndarray,
    bandwidth_bps: np.ndarray,
    duration_s: float,
    latency_s: np.ndarray | None = None,
    *,
    bandwidth_field: str,
    measures: str = "goodput",
) -> Trace:
    """Build the trace named after ``source``; turn the constructor's ``ValueError`` into an InputError."""
    if not np.any(bandwidth_bps > 0):
        raise InputError(
            f"found only zero bandwidths ({bandwidth_bps.size} samples); expected at least one > 0",
            source=source,
            field=bandwidth_field,
        )
    try:
        return Trace(start_s, bandwidth_bps, duration_s, latency_s, name=source.stem, measures=measures)
    except ValueError as exc:
        raise InputError(str(exc), source=source) from exc


def _index_duration(index: Path, file_name: str) -> tuple[str, int] | None:
    """The ``duration_s`` cell and its line for ``file_name`` in an ``index.csv``, if it has one."""
    reader = csv.reader(io.StringIO(_read_text(index)))
    header = [name.strip() for name in next(reader, [])]
    if "file" not in header or "duration_s" not in header:
        return None
    file_column, duration_column = header.index("file"), header.index("duration_s")
    for cells in reader:
        if len(cells) > max(file_column, duration_column) and cells[file_column].strip() == file_name:
            return cells[duration_column], reader.line_num
    return None


def _abrsim_duration_s(table: _Table, comments: list[tuple[int, str]]) -> float:
    """The trace length: a ``# duration_s=`` comment, else ``index.csv``, else one more interval."""
    start_s = table.column("time_s")
    found: tuple[str, int, Path] | None = None
    for line, text in comments:
        key, equals, value = text[1:].partition("=")
        if equals and key.strip() == "duration_s":
            found = (value, line, table.source)
            break
    index = table.source.with_name("index.csv")
    if found is None and index.is_file():
        cell_line = _index_duration(index, table.source.name)
        found = None if cell_line is None else (*cell_line, index)
    if found is None:
        if len(table) < 2:
            raise table.error(
                0,
                "found a single sample and no trace length; expected a '# duration_s=...' comment "
                "before the header or an index.csv row for this file",
            )
        duration_s = float(start_s[-1] + (start_s[-1] - start_s[-2]))
        if not duration_s <= MAX_TRACE_DURATION_S:
            raise table.error(
                len(table) - 1,
                f"found {table.cell(len(table) - 1, 'time_s')}, so the last sample (as long as the one "
                f"before it) ends at {duration_s:g} s; expected it to end by {MAX_TRACE_DURATION_S:g} s "
                "(the longest trace), or a '# duration_s=...' comment before the header",
                "time_s",
            )
        return duration_s
    text, line, where = found
    number = _to_decimal(text)
    duration_s = _scaled(number, 0) if number is not None and number.is_finite() else float("nan")
    if not start_s[-1] < duration_s <= MAX_TRACE_DURATION_S:
        last = table.cell(len(table) - 1, "time_s")
        raise InputError(
            f"found {text.strip()!r}; expected a number of seconds > {last}, the last time_s of "
            f"{table.source.name}, and at most {MAX_TRACE_DURATION_S:g} s (the longest trace)",
            source=where,
            line=line,
            field="duration_s",
        )
    return duration_s


def read_abrsim_csv(path: str | Path) -> Trace:
    """Read a trace in abrsim's own CSV format.

    The header is ``time_s,bandwidth_mbps`` or ``time_s,bandwidth_mbps,latency_ms``.
    Each row gives a sample's start (seconds, the first is 0), its bandwidth
    (Mbit/s, holding until the next row) and optionally its latency (ms). Lines
    starting with ``#`` are comments. The trace length comes from a
    ``# duration_s=<seconds>`` comment before the header, else from the row for
    this file in an ``index.csv`` beside it (columns ``file`` and ``duration_s``),
    else the last sample lasts as long as the one before it.

    Args:
        path: the file; the trace is named after its stem.

    Returns:
        The trace.

    Raises:
        InputError: naming the file and line, if the file is missing, empty or malformed.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> _ = (folder / "tiny.csv").write_text("# duration_s=6\\ntime_s,bandwidth_mbps\\n0,1.5\\n4,0.5\\n")
        >>> read_abrsim_csv(folder / "tiny.csv")
        Trace(name='tiny', samples=2, duration_s=6, mean_bandwidth_bps=1.16667e+06)
    """
    source = Path(path)
    lines, end_line = _read_lines(source)
    records = [(line, text) for line, text in lines if not text.startswith("#")]
    if not records:
        found = "an empty file" if not lines else "only comments"
        raise InputError(f"found {found}; expected the header {_ABRSIM_HEADER_TEXT}", source=source,
                         line=end_line)
    header_line, header = records[0]
    columns = tuple(cell.strip() for cell in header.split(","))
    if columns not in _ABRSIM_HEADERS:
        raise InputError(
            f"found {header!r}; expected the header {_ABRSIM_HEADER_TEXT}", source=source, line=header_line
        )
    table = _read_table(source, records[1:], columns, separator=",")
    if not table:
        raise InputError(
            "found no rows after the header; expected at least one sample", source=source, line=end_line
        )
    if table.rows[0][0] != 0:
        raise table.error(0, f"found {table.cell(0, 'time_s')}; expected 0 on the first row", "time_s")
    table.require_increasing("time_s", strict=True)
    table.require("time_s", table.column("time_s") < MAX_TRACE_DURATION_S, _LONGEST_TRACE_TIME)
    table.require("bandwidth_mbps", _bandwidth_ok(table.column("bandwidth_mbps", 6)), _BANDWIDTH_RANGE)
    for column in columns[2:]:
        table.require(column, table.column(column) >= 0, ">= 0")
    comments = [(line, text) for line, text in lines if line < header_line]
    return _make_trace(
        source,
        table.column("time_s"),
        table.column("bandwidth_mbps", 6),
        _abrsim_duration_s(table, comments),
        table.column("latency_ms", -3) if "latency_ms" in columns else None,
        bandwidth_field="bandwidth_mbps",
        measures=_abrsim_measures(source, comments),
    )


def _abrsim_measures(source: Path, comments: list[tuple[int, str]]) -> str:
    """What the trace measures: a ``# measures=goodput|capacity`` comment, else goodput."""
    for line, text in comments:
        key, equals, value = text[1:].partition("=")
        if equals and key.strip() == "measures":
            if value.strip() not in TRACE_MEASURES:
                raise InputError(f"found {value.strip()!r}; expected one of {', '.join(TRACE_MEASURES)}",
                                 source=source, line=line, field="measures")
            return value.strip()
    return "goodput"


def write_abrsim_csv(trace: Trace, path: str | Path) -> Path:
    """Write a trace in abrsim's CSV format, exactly: reading it back gives identical arrays.

    The file starts with ``# duration_s=<seconds>``, then the header, then one row
    per sample (with a ``latency_ms`` column when the trace has latencies). Each
    number is the shortest decimal that reads back to the same float.

    Args:
        trace: the trace to write; it reads back named after the file's stem.
        path: the file to create or overwrite.

    Returns:
        The path written.
    """
    target = Path(path)
    columns = [(trace.start_s, 0), (trace.bandwidth_bps, -6)]  # (values in SI, power of ten to file unit)
    if trace.latency_s is not None:
        columns.append((trace.latency_s, 3))
    header = ",".join(_ABRSIM_HEADERS[len(columns) - 2])
    rows = (
        ",".join(_format_scaled(float(values[k]), power10) for values, power10 in columns) + "\n"
        for k in range(trace.start_s.size)
    )
    measures = "# measures=capacity\n" if trace.measures == "capacity" else ""
    text = f"# duration_s={_format_scaled(trace.duration_s, 0)}\n{measures}{header}\n" + "".join(rows)
    target.write_text(text, encoding="utf-8", newline="\n")
    return target


def read_pensieve_cooked(path: str | Path) -> Trace:
    """Read a Pensieve "cooked" trace: one ``time_s bandwidth_mbps`` pair per line.

    As in Pensieve's simulator (Mao et al., SIGCOMM 2017, ``sim/env.py``), a row's
    bandwidth covers the interval since the previous row: row 0 only marks the
    start, sample ``k >= 1`` runs from ``time[k-1] - time[0]`` to ``time[k] - time[0]``,
    and the trace lasts ``time[-1] - time[0]``.

    Args:
        path: the file (two whitespace-separated numbers per line, at least two lines).

    Returns:
        The trace, named after the file's stem.

    Raises:
        InputError: naming the file and line, if the file is missing, short or malformed.
    """
    source = Path(path)
    lines, end_line = _read_lines(source)
    table = _read_table(source, lines, ("time_s", "bandwidth_mbps"), separator=None)
    if len(table) < 2:
        raise InputError(
            f"found {len(table)} data line(s); expected at least 2 lines of 'time_s bandwidth_mbps' "
            "(the first only marks the start)",
            source=source,
            line=end_line,
        )
    table.require_increasing("time_s", strict=True)
    time_s = table.column("time_s")
    table.require("time_s", time_s - time_s[0] <= MAX_TRACE_DURATION_S,
                  f"a time at most {MAX_TRACE_DURATION_S:g} s (the longest trace) after the first line's")
    table.require("bandwidth_mbps", _bandwidth_ok(table.column("bandwidth_mbps", 6)), _BANDWIDTH_RANGE)
    return _make_trace(
        source,
        time_s[:-1] - time_s[0],
        table.column("bandwidth_mbps", 6)[1:],
        time_s[-1] - time_s[0],
        bandwidth_field="bandwidth_mbps",
    )


def read_sabre_json(path: str | Path) -> Trace:
    """Read a Sabre network trace: a JSON list of periods.

    Each entry is an object with ``duration_ms``, ``bandwidth_kbps`` (1 kbit/s =
    1000 bit/s) and ``latency_ms`` (other keys are ignored) and becomes one sample
    (Spiteri, Sitaraman & Sparacio, MMSys 2018, Sabre ``network.json``).

    Args:
        path: the JSON file.

    Returns:
        The trace with per-sample ``latency_s``, named after the file's stem.

    Raises:
        InputError: naming the file and the 0-based list index as ``entry N``, if the
            file is missing or malformed.
    """
    source = Path(path)
    expected = f"a non-empty JSON list of objects with keys {', '.join(_SABRE_KEYS)}"
    try:
        with nesting_limit(source, expected):
            entries = json.loads(_read_text(source), parse_float=Decimal)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"found invalid JSON ({exc.msg}); expected {expected}", source=source, line=exc.lineno
        ) from None
    if not isinstance(entries, list) or not entries:
        raise InputError(f"found {json.dumps(entries, default=str)[:40]}; expected {expected}", source=source,
                         line=1)
    table = _Table(source, _SABRE_KEYS)
    for index, entry in enumerate(entries):
        missing = [key for key in _SABRE_KEYS if key not in entry] if isinstance(entry, dict) else _SABRE_KEYS
        if missing:
            shown = json.dumps(entry, default=str)[:40]  # (numbers are Decimals)
            found = f"no key {missing[0]!r}" if isinstance(entry, dict) else shown
            raise InputError(
                f"found {found}; expected an object with keys {', '.join(_SABRE_KEYS)}",
                source=source,
                field=f"entry {index}",
            )
        for key in _SABRE_KEYS:
            if isinstance(entry[key], str):  # (the table takes text cells, as CSV gives them)
                raise InputError(f"found {json.dumps(entry[key])[:40]}, a string; expected a number",
                                 source=source, field=f"entry {index} {key}")
        table.add([entry[key] for key in _SABRE_KEYS])
    durations_ms = table.column("duration_ms")
    table.require("duration_ms", (durations_ms > 0) & (durations_ms <= MAX_TRACE_DURATION_S * 1000),
                  f"> 0 (no zero-length samples) and at most {MAX_TRACE_DURATION_S * 1000:g} "
                  "(the longest trace)")
    table.require("bandwidth_kbps", _bandwidth_ok(table.column("bandwidth_kbps", 3)), _BANDWIDTH_RANGE)
    table.require("latency_ms", table.column("latency_ms") >= 0, ">= 0")
    ends_s = table.cumulative("duration_ms", -3)  # summed exactly, so written files read back exactly
    late = np.flatnonzero(~(ends_s <= MAX_TRACE_DURATION_S))
    if late.size:
        row = int(late[0])
        raise table.error(row, f"found {table.cell(row, 'duration_ms')}, which ends the trace at "
                               f"{ends_s[row]:g} s; expected every entry to end by "
                               f"{MAX_TRACE_DURATION_S:g} s (the longest trace)", "duration_ms")
    return _make_trace(
        source,
        np.concatenate(([0.0], ends_s[:-1])),
        table.column("bandwidth_kbps", 3),
        float(ends_s[-1]),
        table.column("latency_ms", -3),
        bandwidth_field="bandwidth_kbps",
    )


def read_mahimahi(path: str | Path, bin_ms: int = 100) -> Trace:
    """Read a Mahimahi packet-delivery trace and bin it into a bandwidth trace.

    Each line is an integer time in ms at which one 1500-byte packet (12000 bits)
    can be delivered; times are non-decreasing and may repeat. Mahimahi replays the
    file in a loop whose period is the last time (Netravali et al., USENIX ATC 2015).
    Packets are counted in bins of ``bin_ms`` (a packet at exactly the period falls
    in the last bin, which may be shorter) and each bin's bandwidth is its bits over
    its length, so one pass carries ``12000 * count`` bits (to float rounding:
    ``bandwidth_bps * sample_duration_s`` rounds to whole packets in every bin).

    Args:
        path: the file.
        bin_ms: bin length in milliseconds, an integer >= 1.

    Returns:
        The trace, named after the file's stem.

    Raises:
        ValueError: if ``bin_ms`` is not an integer >= 1.
        InputError: naming the file and line, if the file is missing, empty or malformed.
    """
    if isinstance(bin_ms, bool) or not isinstance(bin_ms, (int, np.integer)) or bin_ms < 1:
        raise ValueError(f'"bin_ms" must be an integer >= 1, got {bin_ms!r}')
    source = Path(path)
    lines, end_line = _read_lines(source)
    table = _read_table(source, lines, ("timestamp_ms",), separator=None, integer=True)
    if not table:
        raise InputError(
            "found no timestamps; expected one integer (ms) per line", source=source, line=end_line
        )
    max_ms = MAX_TRACE_DURATION_S * 1000
    timestamps = table.column("timestamp_ms")
    table.require("timestamp_ms", (timestamps >= 0) & (timestamps <= max_ms),
                  f">= 0 and at most {max_ms:g} ms (the longest trace)")
    table.require_increasing("timestamp_ms", strict=False)
    timestamps_ms = table.column("timestamp_ms").astype(np.int64)
    period_ms = int(timestamps_ms[-1])
    if period_ms == 0:
        raise table.error(len(table) - 1, "found a last timestamp (the loop period) of 0; expected > 0 ms")
    bin_count = -(-period_ms // int(bin_ms))
    # one sample per bin: refuse a long, sparse trace before allocating its bins
    limits.check("trace_samples", bin_count, f"bins of {bin_ms} ms up to the last timestamp", source=source,
                 line=table.lines[-1], field="timestamp_ms")
    counts = np.bincount(np.minimum(timestamps_ms // bin_ms, bin_count - 1), minlength=bin_count)
    start_s = np.arange(bin_count, dtype=np.int64) * bin_ms / 1000
    duration_s = period_ms / 1000
    # divide by the bin lengths the trace itself will report, so its integral is the packet count
    lengths_s = np.diff(np.append(start_s, duration_s))
    bandwidth_bps = counts * _MAHIMAHI_PACKET_BITS / lengths_s
    return _make_trace(source, start_s, bandwidth_bps, duration_s, bandwidth_field="timestamp_ms",
                       measures="capacity")


def _detect_format(source: Path) -> str:
    """The format of a trace file: by suffix (``.json``, ``.csv``), else by its first data line."""
    suffix = source.suffix.lower()
    if suffix in (".json", ".csv"):
        return "sabre" if suffix == ".json" else "abrsim"
    lines, end_line = _read_lines(source)
    line, text = next(((line, text) for line, text in lines if not text.startswith("#")), (end_line, ""))
    cells = text.split()
    if len(cells) == 2 and all(_to_decimal(cell) is not None for cell in cells):
        return "pensieve"
    if len(cells) == 1 and _to_decimal(cells[0], integer=True) is not None:
        return "mahimahi"
    raise InputError(
        f"found {text!r}; expected a trace in one of the formats abrsim (.csv), sabre (.json), "
        "pensieve (two numbers per line) or mahimahi (one integer per line)",
        source=source,
        line=line,
    )


def load_trace(path: str | Path, format: str | None = None) -> Trace:
    """Read a trace file in any supported format.

    Args:
        path: the file.
        format: one of :data:`TRACE_FORMATS`, or None to detect it: ``.json`` is
            sabre, ``.csv`` is abrsim; otherwise the first data line decides (two
            numbers: pensieve, one integer: mahimahi).

    Returns:
        The trace, named after the file's stem.

    Raises:
        UnknownNameError: if ``format`` is not one of :data:`TRACE_FORMATS`.
        InputError: naming the file and line, if the file cannot be read as a trace.
    """
    readers = {
        "abrsim": read_abrsim_csv,
        "pensieve": read_pensieve_cooked,
        "sabre": read_sabre_json,
        "mahimahi": read_mahimahi,
    }
    if format is not None and format not in readers:
        raise UnknownNameError("trace format", format, TRACE_FORMATS)
    source = Path(path)
    return readers[format or _detect_format(source)](source)


def _is_trace_file(path: Path) -> bool:
    name = path.name.lower()
    return (
        path.is_file()
        and not name.startswith((".", "readme"))
        and name != "index.csv"
        and not name.endswith(".md")
    )


def load_traces(paths: str | Path | Iterable[str | Path], format: str | None = None) -> list[Trace]:
    """Read traces from files and folders, in the order given.

    Args:
        paths: files, folders, or one of either. A folder contributes its files in
            name order, skipping ``index.csv``, ``README*``, ``*.md`` and hidden files.
        format: as in :func:`load_trace`, applied to every file.

    Returns:
        The traces (names may repeat).

    Raises:
        InputError: if a folder holds no trace files or a file cannot be read as a trace.
        UnknownNameError: if ``format`` is not one of :data:`TRACE_FORMATS`.
    """
    traces: list[Trace] = []
    for entry in [paths] if isinstance(paths, (str, Path)) else paths:
        source = Path(entry)
        if source.is_dir():
            files = sorted((file for file in source.iterdir() if _is_trace_file(file)), key=lambda f: f.name)
            if not files:
                folders = sorted(f.name for f in source.iterdir()
                                 if f.is_dir() and not f.name.startswith("."))
                if folders:  # e.g. Pensieve's cooked/<family>/ layout: folders are not searched
                    shown = ", ".join(folders[:3]) + (", ..." if len(folders) > 3 else "")
                    raise InputError(
                        f"found no trace files, only {len(folders)} subfolder(s) ({shown}); expected a "
                        f"folder of traces: name each subfolder, e.g. {source / folders[0]}",
                        source=source,
                    )
                raise InputError("found no trace files; expected a folder of traces", source=source)
            traces.extend(load_trace(file, format) for file in files)
        else:
            traces.append(load_trace(source, format))
    return traces


# --------------------------------------------------------------------------------------------
# Writers for the other formats
# --------------------------------------------------------------------------------------------


def _refuse_latency(trace: Trace, target: Path, format: str, drop_latency: bool) -> None:
    if trace.latency_s is not None and not drop_latency:
        raise InputError(
            f"the trace has per-sample latencies, which the {format} format cannot hold; "
            "expected a trace without latency_s (drop them with drop_latency, or --drop-latency)",
            source=target,
            field="latency_s",
        )


def write_pensieve_cooked(trace: Trace, path: str | Path, *, drop_latency: bool = False) -> Path:
    """Write a trace as Pensieve "cooked" text, exactly (:func:`read_pensieve_cooked` reads it back).

    The first line ``0<TAB>b0`` only marks the start (its bandwidth is sample 0's,
    ignored by readers); then one line per sample: the time its sample *ends*, in
    seconds, and its bandwidth in Mbit/s, as Pensieve's simulator reads them.

    Args:
        trace: the trace.
        path: the file to create or overwrite.
        drop_latency: allow writing a trace with latencies (the format has none).

    Returns:
        The path written.

    Raises:
        InputError: if the trace has latencies and ``drop_latency`` is false.
    """
    target = Path(path)
    _refuse_latency(trace, target, "pensieve", drop_latency)
    ends_s = np.append(trace.start_s[1:], trace.duration_s)
    mbps = [_format_scaled(float(b), -6) for b in trace.bandwidth_bps]
    lines = [f"0\t{mbps[0]}\n"] + [
        f"{_format_scaled(float(end), 0)}\t{value}\n" for end, value in zip(ends_s, mbps, strict=True)
    ]
    target.write_text("".join(lines), encoding="utf-8", newline="\n")
    return target


def write_sabre_json(trace: Trace, path: str | Path, *, latency_s: float | None = None) -> Path:
    """Write a trace as a Sabre network JSON list, exactly (:func:`read_sabre_json` reads it back).

    Each sample becomes ``{"duration_ms": ..., "bandwidth_kbps": ..., "latency_ms": ...}``.
    Durations are the exact decimal differences of the sample starts, so their
    exact running sums give back the same start times.

    Args:
        trace: the trace.
        path: the file to create or overwrite.
        latency_s: latency to write for every sample when the trace has none, seconds;
            Sabre's format requires one. Ignored when the trace has latencies.

    Returns:
        The path written.

    Raises:
        InputError: if the trace has no latencies and ``latency_s`` is None.
        ValueError: if ``latency_s`` is negative or not finite.
    """
    target = Path(path)
    if trace.latency_s is not None:
        latencies = [float(v) for v in trace.latency_s]
    elif latency_s is None:
        raise InputError(
            "the trace has no latencies but Sabre's format needs latency_ms on every sample; "
            "expected a latency to write (latency_s, or --latency-ms)",
            source=target,
            field="latency_ms",
        )
    else:
        if not (np.isfinite(latency_s) and latency_s >= 0):
            raise ValueError(f'"latency_s" must be finite and >= 0, got {latency_s!r}')
        latencies = [float(latency_s)] * trace.start_s.size
    edges = [Decimal(repr(float(t))) for t in np.append(trace.start_s, trace.duration_s)]
    entries = []
    with localcontext() as context:
        context.prec = 200
        for k in range(trace.start_s.size):
            duration_ms = ((edges[k + 1] - edges[k]) * 1000).normalize()
            duration_text = f"{duration_ms:f}" if -8 < duration_ms.adjusted() < 16 else str(duration_ms)
            entries.append(
                f'{{"duration_ms": {duration_text}, '
                f'"bandwidth_kbps": {_format_scaled(float(trace.bandwidth_bps[k]), -3)}, '
                f'"latency_ms": {_format_scaled(latencies[k], 3)}}}'
            )
    target.write_text("[\n  " + ",\n  ".join(entries) + "\n]\n", encoding="utf-8", newline="\n")
    return target


def write_mahimahi(trace: Trace, path: str | Path, *, drop_latency: bool = False) -> Path:
    """Write a trace as a Mahimahi packet-delivery trace (one ms timestamp per 1500-byte packet).

    Packet ``j`` (1, 2, ...) is delivered in the whole millisecond in which the
    trace's cumulative bits reach ``(j - 1/2) * 12000``, so up to any whole
    millisecond the file carries the trace's bits to within half a packet. The
    last packet is moved to the loop period (the trace's duration in whole ms),
    which Mahimahi reads from the last line; this shifts one more packet only if
    the trace's last 100 ms carry no packet. Reading the file back
    (:func:`read_mahimahi`, 100 ms bins) thus gives a trace whose cumulative bits
    at every bin edge are within half a packet of the original's; a trace made of
    whole packets per 100 ms bin (for example one read from a Mahimahi file) reads
    back exactly.

    Args:
        trace: the trace.
        path: the file to create or overwrite.
        drop_latency: allow writing a trace with latencies (the format has none).

    Returns:
        The path written.

    Raises:
        InputError: if the trace carries less than one packet per pass, is shorter
            than 1 ms, or has latencies and ``drop_latency`` is false.
    """
    target = Path(path)
    _refuse_latency(trace, target, "mahimahi", drop_latency)
    period_ms = round(trace.duration_s * 1000)
    cumulative_bits = np.concatenate(([0.0], np.cumsum(trace.bandwidth_bps * trace.sample_duration_s)))
    packets = int(np.floor(cumulative_bits[-1] / _MAHIMAHI_PACKET_BITS + 0.5))
    if packets < 1 or period_ms < 1:
        raise InputError(
            f"found {cumulative_bits[-1]:g} bits over {trace.duration_s:g} s; expected at least one "
            f"{_MAHIMAHI_PACKET_BITS}-bit packet and 1 ms for a Mahimahi trace",
            source=target,
        )
    # one line per packet: refuse a fast, long trace before allocating its packets
    limits.check("mahimahi_packets", packets,
                 f"packets of 1500 bytes to write for trace {trace.name!r} "
                 f"({trace.mean_bandwidth_bps / 1e6:g} Mbit/s mean over {trace.duration_s:g} s)",
                 source=target)
    targets_bits = (np.arange(packets) + 0.5) * _MAHIMAHI_PACKET_BITS
    # the sample in which each target is reached: cumulative[k] < target <= cumulative[k + 1], so its
    # bandwidth is > 0
    sample = np.searchsorted(cumulative_bits, targets_bits, side="left") - 1
    time_s = trace.start_s[sample] + (targets_bits - cumulative_bits[sample]) / trace.bandwidth_bps[sample]
    timestamps_ms = np.minimum(np.floor(time_s * 1000).astype(np.int64), period_ms)
    timestamps_ms[-1] = period_ms
    target.write_text("\n".join(map(str, timestamps_ms.tolist())) + "\n", encoding="utf-8", newline="\n")
    return target


def write_trace(
    trace: Trace,
    path: str | Path,
    format: str = "abrsim",
    *,
    latency_s: float | None = None,
    drop_latency: bool = False,
) -> Path:
    """Write a trace in any supported format.

    abrsim CSV, Pensieve and Sabre files read back to identical arrays (Pensieve
    and Mahimahi have no latencies; Sabre requires them). Mahimahi keeps the
    bits up to every 100 ms bin edge to within half a packet (see :func:`write_mahimahi`).

    Args:
        trace: the trace.
        path: the file to create or overwrite.
        format: one of :data:`TRACE_FORMATS`.
        latency_s: for ``sabre``, the latency to write when the trace has none, seconds.
        drop_latency: for ``pensieve`` and ``mahimahi``, allow losing the trace's latencies.

    Returns:
        The path written.

    Raises:
        UnknownNameError: if ``format`` is not one of :data:`TRACE_FORMATS`.
        InputError: if the format cannot hold the trace as it is (see the writers).
    """
    if format == "abrsim":
        return write_abrsim_csv(trace, path)
    if format == "pensieve":
        return write_pensieve_cooked(trace, path, drop_latency=drop_latency)
    if format == "sabre":
        return write_sabre_json(trace, path, latency_s=latency_s)
    if format == "mahimahi":
        return write_mahimahi(trace, path, drop_latency=drop_latency)
    raise UnknownNameError("trace format", format, TRACE_FORMATS)


# --------------------------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------------------------

OUTAGE_THRESHOLD_BPS = 50_000.0
"""Bandwidth below which a trace counts as in outage, bit/s: 50 kbit/s, a third of the
lowest rung of common ladders (145 kbit/s), so no video can be streamed."""


def interval_means_bps(trace: Trace, interval_s: float = 1.0) -> np.ndarray:
    """Mean bandwidth over consecutive intervals of one pass, bit/s (a partial last interval is dropped).

    Args:
        trace: the trace.
        interval_s: interval length, seconds; > 0.

    Returns:
        ``floor(duration_s / interval_s)`` means (possibly none).

    Raises:
        ValueError: if ``interval_s`` is not finite and > 0.
        InputError: if there would be more intervals than the trace sample limit.

    Example:
        >>> interval_means_bps(Trace([0.0, 1.5], [1e6, 3e6], 3.5))
        array([1000000., 2000000., 3000000.])
    """
    if not (np.isfinite(interval_s) and interval_s > 0):
        raise ValueError(f'"interval_s" must be finite and > 0, got {interval_s!r}')
    count = int(np.floor(trace.duration_s / interval_s + 1e-9))
    limits.check("trace_samples", count, f"intervals of {interval_s:g} s", source=f"trace {trace.name!r}")
    edges_s = np.minimum(np.arange(count + 1) * interval_s, trace.duration_s)
    sample_edges_s = np.append(trace.start_s, trace.duration_s)
    cumulative_bits = np.concatenate(([0.0], np.cumsum(trace.bandwidth_bps * trace.sample_duration_s)))
    return np.diff(np.interp(edges_s, sample_edges_s, cumulative_bits)) / interval_s


@dataclass(frozen=True)
class TraceStats:
    """Summary statistics of one pass of a trace (see :func:`trace_stats`).

    Bandwidths are bit/s; ``mean``, percentiles, ``min``/``max`` and the outage
    fraction weight each sample by its duration.
    """

    name: str
    duration_s: float
    samples: int
    mean_bps: float
    p10_bps: float
    p50_bps: float
    p90_bps: float
    min_bps: float
    max_bps: float
    outage_fraction: float
    lag1_autocorrelation: float
    measures: str = "goodput"


def _weighted_percentile(values: np.ndarray, weights: np.ndarray, percent: float) -> float:
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(weights[order])
    index = int(np.searchsorted(cumulative, percent / 100 * cumulative[-1], side="left"))
    return float(values[order][min(index, values.size - 1)])


def lag1_autocorrelation(values: np.ndarray) -> float:
    """Lag-1 autocorrelation of a series around its own mean; NaN if shorter than 3 or constant."""
    series = np.asarray(values, dtype=np.float64)
    if series.size < 3:
        return float("nan")
    centred = series - series.mean()
    denominator = float(np.dot(centred, centred))
    return float(np.dot(centred[:-1], centred[1:]) / denominator) if denominator > 0 else float("nan")


def trace_stats(trace: Trace, outage_threshold_bps: float = OUTAGE_THRESHOLD_BPS) -> TraceStats:
    """Summarise one pass of a trace.

    Percentiles are of the time-weighted bandwidth distribution (the lowest
    bandwidth held for at least that share of the time); the outage fraction is
    the share of time below ``outage_threshold_bps``; the lag-1 autocorrelation is
    that of the trace's 1 s means (:func:`interval_means_bps`).

    Args:
        trace: the trace.
        outage_threshold_bps: bandwidth below which the link counts as out, bit/s.

    Returns:
        The statistics.

    Example:
        >>> stats = trace_stats(Trace([0.0, 1.0, 3.0], [4e6, 0.0, 2e6], 4.0))
        >>> stats.mean_bps, stats.p50_bps, stats.outage_fraction
        (1500000.0, 0.0, 0.5)
    """
    durations_s = trace.sample_duration_s
    bandwidths_bps = trace.bandwidth_bps
    return TraceStats(
        name=trace.name,
        duration_s=trace.duration_s,
        samples=int(bandwidths_bps.size),
        mean_bps=trace.mean_bandwidth_bps,
        p10_bps=_weighted_percentile(bandwidths_bps, durations_s, 10),
        p50_bps=_weighted_percentile(bandwidths_bps, durations_s, 50),
        p90_bps=_weighted_percentile(bandwidths_bps, durations_s, 90),
        min_bps=float(bandwidths_bps.min()),
        max_bps=float(bandwidths_bps.max()),
        outage_fraction=float(durations_s[bandwidths_bps < outage_threshold_bps].sum() / trace.duration_s),
        lag1_autocorrelation=lag1_autocorrelation(interval_means_bps(trace, 1.0)),
        measures=trace.measures,
    )
