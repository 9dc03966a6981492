"""Results tables: one row per session, the schema every engine and tool shares.

A row is a plain dict whose keys are :data:`RESULT_FIELDS`: identity first
(scenario, trace, ladder, model, policy, params, seed, abrsim_version), then
the metrics of :data:`abrsim.qoe.METRICS`.
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from collections.abc import Iterable, Sequence
from typing import Any

from abrsim import __version__
from abrsim.engine.fast import BatchRun
from abrsim.qoe import METRICS

__all__ = [
    "IDENTITY_FIELDS",
    "RESULT_FIELDS",
    "format_rows",
    "format_table",
    "rows_from_batch",
    "summarize_rows",
]

IDENTITY_FIELDS = ("scenario", "trace", "ladder", "model", "policy", "params", "seed", "abrsim_version")
RESULT_FIELDS = IDENTITY_FIELDS + METRICS
#: Metrics that are counts, written as integers.
INTEGER_METRICS = frozenset(
    {"rebuffer_count", "switch_count", "abandoned", "abandoned_downloads", "timed_out"})

Row = dict[str, Any]


def rows_from_batch(batch: BatchRun, scenario: str = "run") -> list[Row]:
    """One results row per session of ``batch``."""
    identity = {
        "scenario": scenario,
        "ladder": batch.ladder.name,
        "model": batch.model.name,
        "policy": batch.policy.name,
        "params": batch.policy.params_json,
        "seed": batch.seed,
        "abrsim_version": __version__,
    }
    rows = []
    for trace, values in zip(batch.traces, batch.metrics().tolist(), strict=True):
        row: Row = {"trace": trace, **identity}
        for name, value in zip(METRICS, values, strict=True):
            row[name] = int(value) if name in INTEGER_METRICS else value
        rows.append({key: row[key] for key in RESULT_FIELDS})
    return rows


def summarize_rows(rows: Sequence[Row], by: str = "policy") -> list[Row]:
    """Mean and median of every metric per value of ``by`` (NaNs ignored), in first-seen order."""
    groups: dict[str, list[Row]] = {}
    for row in rows:
        groups.setdefault(str(row[by]), []).append(row)
    summary = []
    for key, members in groups.items():
        out: Row = {by: key, "sessions": len(members)}
        for name in METRICS:
            values = [float(r[name]) for r in members if not math.isnan(float(r[name]))]
            out[f"{name}_mean"] = statistics.fmean(values) if values else math.nan
            out[f"{name}_median"] = statistics.median(values) if values else math.nan
        summary.append(out)
    return summary


def _cell(name: str, value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:,.0f}" if name.endswith(("_bps", "_bits")) else f"{value:.3f}"
    return str(value)


def format_table(columns: Sequence[str], cells: Sequence[Sequence[str]], text_columns: int) -> str:
    """Align a table: the first ``text_columns`` columns to the left, the rest to the right."""
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.ljust(w) if i < text_columns else v.rjust(w)
                         for i, (v, w) in enumerate(zip(values, widths, strict=True))).rstrip()

    return "\n".join([line(columns), line(["-" * w for w in widths]), *(line(r) for r in cells)])


#: Columns shown in the terminal table (all fields go to CSV and JSON).
TABLE_COLUMNS = ("trace", "policy", "startup_s", "rebuffer_s", "rebuffer_count", "mean_bitrate_bps",
                 "switch_count", "qoe_lin")
#: Metrics shown as "mean / median" in the terminal summary.
SUMMARY_METRICS = ("startup_s", "rebuffer_s", "rebuffer_ratio", "mean_bitrate_bps", "switch_count",
                   "qoe_lin")


def _json_value(name: str, value: Any) -> Any:
    """A row's value for JSON output: NaN as None, the params' JSON text as an object."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if name == "params" and isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def format_rows(rows: Sequence[Row], fmt: str, summary: Iterable[Row] = (),
                fields: Sequence[str] = RESULT_FIELDS) -> str:
    """Render rows as ``table`` (with a per-policy summary), ``json`` or ``csv``.

    JSON is a list of result objects with the field names of :data:`RESULT_FIELDS`; NaN
    becomes ``null`` and ``params`` is a nested object. CSV has one header line and one line
    per session, ``params`` in it as compact JSON text; ``fields`` are its columns (the results
    schema, or that schema and a caller's own columns after it).
    """
    if fmt == "json":
        clean = [{k: _json_value(k, v) for k, v in r.items()} for r in rows]
        return json.dumps(clean, indent=2) + "\n"
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(fields), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: repr(v) if isinstance(v, float) else v for k, v in row.items()})
        return buffer.getvalue()
    columns, cells = list(TABLE_COLUMNS), [[_cell(c, row[c]) for c in TABLE_COLUMNS] for row in rows]
    if any(row.get("timed_out") for row in rows):  # a session cut at the time limit says so
        columns.append("note")
        for row, line in zip(rows, cells, strict=True):
            line.append(f"timed out ({row['played_s']:,.0f} s played)" if row.get("timed_out") else "")
    text = format_table(columns, cells, 2)
    summary = list(summary)
    if summary:
        cells = [
            [str(row["policy"]), str(row["sessions"])]
            + [f"{_cell(m, row[m + '_mean'])} / {_cell(m, row[m + '_median'])}" for m in SUMMARY_METRICS]
            for row in summary
        ]
        text += "\n\nper-algorithm summary (mean / median over sessions)\n"
        text += format_table(["policy", "sessions", *SUMMARY_METRICS], cells, 1)
    return text + "\n"
